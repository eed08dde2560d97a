//! Sabotage runs: every case here runs a real case body with a wrong
//! expectation or a broken step and passes only if that body fails, so a
//! case that could never fail is caught. `cargo test` runs it.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    harness::runner::main("sabotage", cases::sabotaged)
}
