//! Per-kernel results (`<out>/<kernel>/result.json` plus the JSONL reports
//! the guest sent) and the case x kernel table built from them ([`grid`]),
//! rendered for the terminal, as Markdown and as JSON.

mod grid;

pub use grid::Table;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use harness::Outcome;
use serde::{Deserialize, Serialize};

use crate::apt::Package;
use crate::vm::VmOutcome;

/// The fields of a report line (harness::report::Record) the table needs.
/// Read leniently: newer harnesses add fields, and `known_deviation` (a
/// failure the project documents as a kernel deviating from its man page,
/// which does not fail the run) is absent from older ones.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// Case id.
    pub id: String,
    /// pass, fail, skip, broken.
    pub outcome: Outcome,
    /// Why (empty for a pass).
    #[serde(default)]
    pub reason: String,
    /// The documented deviation, for a failure that is one.
    #[serde(default)]
    pub known_deviation: Option<String>,
    /// The claim ids the case verifies.
    #[serde(default)]
    pub claims: Vec<String>,
    /// `file:line` of the decision, for failures.
    #[serde(default)]
    pub location: Option<String>,
    /// A known deviation expected on this kernel that did not happen.
    #[serde(default)]
    pub xpass: Option<String>,
}

impl Record {
    /// A failure or broken case that fails the run (not a known deviation).
    pub fn fails_run(&self) -> bool {
        match self.outcome {
            Outcome::Broken => true,
            Outcome::Fail => self.known_deviation.is_none(),
            Outcome::Pass | Outcome::Skip => false,
        }
    }
}

/// Parses a JSON-lines report; an empty one is an error.
pub fn parse_report(text: &str) -> Result<Vec<Record>> {
    let records = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("line {}", i + 1)))
        .collect::<Result<Vec<Record>>>()?;
    anyhow::ensure!(!records.is_empty(), "empty report");
    Ok(records)
}

/// The runs the guest makes, in column order: name and column label.
pub const RUNS: [(&str, &str); 2] = [("root", "root"), ("unprivileged", "uid 65534")];

/// The fuzz suite's run (`--fuzz`, as root after the cases): its column
/// follows [`RUNS`] for every kernel when any kernel has its report.
pub const FUZZ_RUN: (&str, &str) = ("fuzz", "fuzz");

/// How one kernel ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Every case passed or was skipped, as root and unprivileged.
    Passed,
    /// Some case failed or was broken on this kernel.
    CasesFailed,
    /// Download, boot, guest or result transfer failed: results incomplete.
    Infrastructure,
}

impl Status {
    /// Short word for tables.
    pub fn word(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::CasesFailed => "CASES FAILED",
            Status::Infrastructure => "INFRA FAILURE",
        }
    }
}

/// Everything known about one kernel's run: `result.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KernelResult {
    /// Matrix name.
    pub name: String,
    /// "bullseye-security/linux-image-amd64" or the self-built path.
    pub origin: String,
    /// Debian version ("local" for self-built), once fetched.
    pub version: Option<String>,
    /// `uname -r` (from the image header; the guest confirms it).
    pub release: Option<String>,
    /// Debian packages it came from.
    pub packages: Vec<Package>,
    /// Path of the kernel config in the output directory, if known.
    pub config: Option<String>,
    /// tcg or kvm.
    pub accel: String,
    /// What was booted: "vmlinux (PVH)" or "bzImage".
    pub boot_image: Option<String>,
    /// Taken from the cache (no download).
    pub cached: Option<bool>,
    /// Seconds spent fetching (or checking the cache).
    pub fetch_s: Option<f64>,
    /// The VM, if one was started.
    pub vm: Option<VmOutcome>,
    /// Verdict.
    pub status: Status,
    /// The infrastructure failure, naming what broke.
    pub error: Option<String>,
    /// Kernel-health lines of the console, boot to poweroff (claim K1):
    /// WARNING, BUG, KASAN, lockdep ... Any fails the kernel's run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub console_reports: Vec<String>,
}

impl KernelResult {
    /// A result with nothing known yet but the kernel's name and origin.
    pub fn new(name: &str, origin: &str) -> KernelResult {
        KernelResult {
            name: name.into(),
            origin: origin.into(),
            version: None,
            release: None,
            packages: vec![],
            config: None,
            accel: "-".into(),
            boot_image: None,
            cached: None,
            fetch_s: None,
            vm: None,
            status: Status::Infrastructure,
            error: None,
            console_reports: Vec::new(),
        }
    }
}

/// A kernel's result with the reports of its runs.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// result.json.
    pub result: KernelResult,
    /// Records by run name.
    pub reports: BTreeMap<String, Vec<Record>>,
}

/// Reads `dir/result.json` and the runs' reports next to it.
pub fn load(dir: &Path) -> Result<Loaded> {
    let text = std::fs::read_to_string(dir.join("result.json")).with_context(|| format!("reading {}/result.json", dir.display()))?;
    let result: KernelResult = serde_json::from_str(&text).with_context(|| format!("parsing {}/result.json", dir.display()))?;
    let mut reports = BTreeMap::new();
    for (run, _) in RUNS.into_iter().chain([FUZZ_RUN]) {
        if let Ok(text) = std::fs::read_to_string(dir.join(format!("{run}.jsonl"))) {
            let records = parse_report(&text).with_context(|| format!("{}/{run}.jsonl", dir.display()))?;
            reports.insert(run.to_string(), records);
        }
    }
    Ok(Loaded { result, reports })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record for tests of this module and of [`grid`](super::grid).
    pub(crate) fn rec(id: &str, outcome: Outcome, reason: &str) -> Record {
        Record { id: id.into(), outcome, reason: reason.into(), known_deviation: None, claims: vec![], location: None, xpass: None }
    }

    #[test]
    fn reports_from_older_and_newer_harnesses_parse() {
        let old = r#"{"id":"a","claims":[],"outcome":"fail","reason":"r","kernel":"k","duration_ms":1}"#;
        let new = r#"{"id":"a","claims":[],"outcome":"fail","reason":"r","kernel":"k","duration_ms":1,"known_deviation":"d","notes":[["x","1"]]}"#;
        assert!(parse_report(old).unwrap()[0].fails_run());
        assert!(!parse_report(new).unwrap()[0].fails_run());
        assert!(parse_report("\n").is_err());
    }
}
