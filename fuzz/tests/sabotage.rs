//! Sabotage runs of the fuzz suite: the model with a deliberately wrong
//! rule must be caught, and the counterexample shrunk. `cargo test` runs it.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    harness::runner::main("fuzz_sabotage", fuzz::sabotaged)
}
