//! The fuzz suite: `cargo test` runs every fuzz case with a bounded number
//! of inputs (NSVERIFY_FUZZ_CASES raises it; see fuzz/README.md).

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    harness::runner::main("fuzz", fuzz::cases)
}
