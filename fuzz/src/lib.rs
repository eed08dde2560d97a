//! nsverify's fuzz suite (issue 7): argument fuzzing of the namespace
//! system calls against a table of documented outcomes ([`args`],
//! [`idmap`], [`table`]), and model-based fuzzing of operation sequences
//! ([`model`]). Every fuzz run is a harness case whose body runs proptest
//! inside the isolated case child, so a failing input leaves nothing
//! behind; see fuzz/README.md.

#![forbid(unsafe_code)]

pub mod args;
pub mod idmap;
pub mod known;
pub mod model;
pub mod run;
pub mod table;

use harness::Case;

/// Every fuzz case, in a stable order.
pub fn cases() -> Vec<Case> {
    let mut out = args::cases();
    out.extend(idmap::cases());
    out.extend(model::cases());
    out.extend(known::cases());
    out
}

/// The sabotage runs of the fuzz suite: each passes only if fuzzing with a
/// deliberately wrong rule finds (and shrinks) a counterexample.
pub fn sabotaged() -> Vec<Case> {
    model::sabotaged()
}
