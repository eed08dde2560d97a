//! The case suite: `cargo test` runs every case on the running kernel.
//! Arguments are libtest's (`--list`, filters, `--exact`, `--skip`,
//! `--test-threads`); reports via NSVERIFY_REPORT, NSVERIFY_TAP,
//! NSVERIFY_JUNIT (see README.md).

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    harness::runner::main(harness::report::PRIMARY_SUITE, cases::all)
}
