//! Mutant kernels: the share of deliberately broken kernels that the suite
//! catches (ci/mutants/README.md).
//!
//! Each mutant of `ci/mutants/mutants.toml` is a small patch against the
//! pinned kernel source of `ci/mutants/base.toml`, with the claims it
//! breaks and the cases that must fail on it. The run builds the base
//! kernel and proves it green, then, one mutant at a time, applies the
//! patch, rebuilds incrementally, copies the vmlinux out and restores the
//! tree; up to `--jobs` VMs boot the mutants meanwhile and run the case
//! suite (root and uid 65534) and the fuzz suite. A mutant is *killed* when
//! every case it lists fails, *partly killed* when only some do (or only
//! other cases fail), *crashed* when the kernel panicked or hung (counted
//! apart: it proves nothing about the cases), *survived* when nothing
//! failed. Survivors and partial kills need an `accepted` reason.
//!
//! The parts: [`list`] (the data file and case patterns), [`patch`] (a
//! source tree with one mutant applied), [`runs`] (building and booting
//! the base kernel, the mutants and the debug variant), [`judge`] (the
//! verdict of a boot), [`report`] (the summary, `mutants.json` and
//! `mutants.md`) and [`command`] (`nsverify-vm mutants`).

pub mod command;
pub mod judge;
pub mod list;
pub mod patch;
pub mod report;
pub mod runs;
