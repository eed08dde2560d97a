//! nsverify's benchmarks: what namespace operations cost on the running
//! kernel, and the comparison of reports made on several kernels.
//!
//! - [`ops`]: the operations, generated from the harness's kind table.
//! - [`helper`]: the single-threaded measuring process criterion talks to.
//! - [`suite`]: turning samples into figures and ratios to fork.
//! - [`report`], [`machine`]: the JSON report of a run.
//! - [`floor`]: the independent floor (`floor/floor.c`) and the ratios to it.
//! - [`stats`]: medians and their confidence intervals.
//! - [`compare`], [`chart`]: tables and an SVG chart across reports.
//!
//! See `benches/README.md` for how to run it.

#![forbid(unsafe_code)]

pub mod chart;
pub mod compare;
pub mod floor;
pub mod helper;
pub mod machine;
pub mod ops;
pub mod report;
pub mod settings;
pub mod stats;
pub mod suite;
