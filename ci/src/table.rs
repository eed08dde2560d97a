//! Per-kernel results (`<out>/<kernel>/result.json` plus the JSONL reports
//! the guest sent) and the case x kernel table built from them, rendered for
//! the terminal, as Markdown and as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
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
    for (run, _) in RUNS {
        if let Ok(text) = std::fs::read_to_string(dir.join(format!("{run}.jsonl"))) {
            let records = parse_report(&text).with_context(|| format!("{}/{run}.jsonl", dir.display()))?;
            reports.insert(run.to_string(), records);
        }
    }
    Ok(Loaded { result, reports })
}

/// One cell: an outcome and the footnote of its reason.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// pass, fail, skip, broken.
    pub outcome: Outcome,
    /// A failure documented as a kernel deviation (shown as `dev`).
    pub known_deviation: bool,
    /// A pass where a known deviation was expected (shown as `xpass`).
    #[serde(default)]
    pub xpass: bool,
    /// Index into [`Table::reasons`] (1-based in renderings), if any.
    pub reason: Option<usize>,
}

/// The case x (kernel, run) table.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    /// Column headers: (kernel, run).
    pub columns: Vec<(String, String)>,
    /// Rows: case id and a cell per column (None: no result).
    pub rows: Vec<(String, Vec<Option<Cell>>)>,
    /// Distinct reasons, numbered in first-seen order.
    pub reasons: Vec<String>,
    /// The kernels' results, in column order.
    pub kernels: Vec<KernelResult>,
}

impl Table {
    /// Builds the table; rows in first-seen order across kernels.
    pub fn build(loaded: &[Loaded]) -> Table {
        let mut columns = Vec::new();
        let mut ids: Vec<String> = Vec::new();
        let mut cells: BTreeMap<(String, usize), Cell> = BTreeMap::new();
        let mut reasons: Vec<String> = Vec::new();
        // Kernels without any report have no column; the kernel summary and
        // the failures section name them.
        for l in loaded.iter().filter(|l| !l.reports.is_empty()) {
            for (run, label) in RUNS {
                let col = columns.len();
                columns.push((l.result.name.clone(), label.to_string()));
                for r in l.reports.get(run).map(Vec::as_slice).unwrap_or_default() {
                    if !ids.contains(&r.id) {
                        ids.push(r.id.clone());
                    }
                    let text = match (&r.known_deviation, &r.xpass) {
                        (Some(d), _) if r.outcome == Outcome::Fail => format!("known deviation: {d} (observed: {})", r.reason),
                        (_, Some(d)) if r.outcome == Outcome::Pass => format!("xpass: a known deviation expected here did not happen: {d}"),
                        _ => r.reason.clone(),
                    };
                    let reason = (!text.trim().is_empty()).then(|| {
                        reasons.iter().position(|x| *x == text).unwrap_or_else(|| {
                            reasons.push(text);
                            reasons.len() - 1
                        })
                    });
                    let known_deviation = r.outcome == Outcome::Fail && r.known_deviation.is_some();
                    let xpass = r.outcome == Outcome::Pass && r.xpass.is_some();
                    cells.insert((r.id.clone(), col), Cell { outcome: r.outcome, known_deviation, xpass, reason });
                }
            }
        }
        let rows =
            ids.into_iter().map(|id| (id.clone(), (0..columns.len()).map(|c| cells.get(&(id.clone(), c)).cloned()).collect())).collect();
        Table { columns, rows, reasons, kernels: loaded.iter().map(|l| l.result.clone()).collect() }
    }

    /// Rows whose outcomes differ between kernels for the same run (cells
    /// without a result are not compared).
    pub fn differing_rows(&self) -> Vec<&(String, Vec<Option<Cell>>)> {
        self.rows
            .iter()
            .filter(|(_, cells)| {
                RUNS.iter().enumerate().any(|(run, _)| {
                    let outcomes: Vec<Outcome> =
                        cells.iter().skip(run).step_by(RUNS.len()).filter_map(|c| c.as_ref().map(|c| c.outcome)).collect();
                    outcomes.windows(2).any(|w| w[0] != w[1])
                })
            })
            .collect()
    }

    fn cell_text(c: &Option<Cell>) -> String {
        match c {
            None => "-".into(),
            Some(c) => {
                let word = match c.outcome {
                    Outcome::Pass if c.xpass => "xpass",
                    Outcome::Pass => "pass",
                    Outcome::Fail if c.known_deviation => "dev",
                    Outcome::Fail => "FAIL",
                    Outcome::Skip => "skip",
                    Outcome::Broken => "BROKEN",
                };
                match (c.outcome, c.reason) {
                    (Outcome::Pass, _) if !c.xpass => word.into(),
                    (_, None) => word.into(),
                    (_, Some(i)) => format!("{word}[{}]", i + 1),
                }
            }
        }
    }

    /// The kernels' summary: version, accel, image, times, status.
    fn kernel_lines(&self, md: bool) -> String {
        let mut out = String::new();
        let head = ["kernel", "debian version", "uname -r", "boot", "init at", "boot to result", "fetch", "status"];
        let rows: Vec<[String; 8]> = self
            .kernels
            .iter()
            .map(|k| {
                let vm = k.vm.as_ref();
                [
                    k.name.clone(),
                    k.version.clone().unwrap_or("-".into()),
                    k.release.clone().unwrap_or("-".into()),
                    format!("{} {}", k.accel, k.boot_image.clone().unwrap_or_default()),
                    vm.and_then(|v| v.boot_s).map(|s| format!("{s:.1}s")).unwrap_or("-".into()),
                    vm.map(|v| format!("{:.1}s", v.total_s)).unwrap_or("-".into()),
                    match (k.cached, k.fetch_s) {
                        (Some(true), _) => "cached".into(),
                        (_, Some(s)) => format!("{s:.1}s"),
                        _ => "-".into(),
                    },
                    k.status.word().into(),
                ]
            })
            .collect();
        grid(&mut out, &head.map(String::from), &rows, md);
        out
    }

    /// Problems per kernel: infrastructure errors with the console's tail.
    fn problems(&self, md: bool) -> String {
        let mut out = String::new();
        for k in self.kernels.iter().filter(|k| !k.console_reports.is_empty()) {
            let _ = writeln!(
                out,
                "{}kernel {}: harness.kernel_health (console): {}",
                if md { "- " } else { "" },
                k.name,
                k.console_reports.join(" | ")
            );
        }
        for k in self.kernels.iter().filter(|k| k.error.is_some()) {
            let _ = writeln!(out, "{}kernel {}: {}", if md { "- " } else { "" }, k.name, k.error.as_deref().unwrap_or(""));
            let tail = k.vm.as_ref().map(|v| v.console_tail.clone()).unwrap_or_default();
            if !tail.is_empty() {
                out.push_str("  last console lines:\n");
                if md {
                    out.push_str("  ```\n");
                }
                for l in tail {
                    let _ = writeln!(out, "    {l}");
                }
                if md {
                    out.push_str("  ```\n");
                }
            }
        }
        out
    }

    /// Plain-text rendering for the terminal; unless `full`, rows that pass
    /// in every column are counted instead of listed.
    pub fn terminal(&self, full: bool) -> String {
        self.render(false, full)
    }

    /// Markdown rendering (the artifact), every row.
    pub fn markdown(&self) -> String {
        self.render(true, true)
    }

    fn render(&self, md: bool, full: bool) -> String {
        let mut out = String::new();
        if md {
            out.push_str("# nsverify: case x kernel matrix\n\n");
        }
        out.push_str(&self.kernel_lines(md));
        out.push('\n');
        let head: Vec<String> = std::iter::once("case".to_string()).chain(self.columns.iter().map(|(k, r)| format!("{k} {r}"))).collect();
        let all_pass = |cells: &[Option<Cell>]| cells.iter().all(|c| c.as_ref().is_some_and(|c| c.outcome == Outcome::Pass && !c.xpass));
        let shown: Vec<&(String, Vec<Option<Cell>>)> = self.rows.iter().filter(|(_, cells)| full || !all_pass(cells)).collect();
        let rows: Vec<Vec<String>> =
            shown.iter().map(|(id, cells)| std::iter::once(id.clone()).chain(cells.iter().map(Self::cell_text)).collect()).collect();
        grid(&mut out, &head, &rows, md);
        if shown.len() < self.rows.len() {
            let _ = writeln!(
                out,
                "... and {} more cases that pass in every column (--full-table or matrix.md lists them)",
                self.rows.len() - shown.len()
            );
        }
        if !self.reasons.is_empty() {
            out.push_str(if md { "\n## Reasons\n\n" } else { "\nreasons:\n" });
            for (i, r) in self.reasons.iter().enumerate() {
                let _ = writeln!(out, "{}[{}] {}", if md { "- " } else { "  " }, i + 1, r.split_whitespace().collect::<Vec<_>>().join(" "));
            }
        }
        let diff = self.differing_rows();
        if md {
            out.push_str("\n## Differences between kernels\n\n");
            if diff.is_empty() {
                out.push_str("none\n");
            }
            for (id, cells) in &diff {
                let cols: Vec<String> =
                    self.columns.iter().zip(cells).map(|((k, r), c)| format!("{k} {r}: {}", Self::cell_text(c))).collect();
                let _ = writeln!(out, "- `{id}`: {}", cols.join(", "));
            }
        } else {
            // The rows are in the table above; name them only.
            let ids: Vec<&str> = diff.iter().map(|(id, _)| id.as_str()).collect();
            let _ = writeln!(
                out,
                "\ndifferences between kernels: {}",
                if ids.is_empty() { "none".into() } else { format!("{} case(s)", ids.len()) }
            );
            for id in ids {
                let _ = writeln!(out, "  {id}");
            }
        }
        let problems = self.problems(md);
        if !problems.is_empty() {
            out.push_str(if md { "\n## Infrastructure failures\n\n" } else { "\ninfrastructure failures:\n" });
            out.push_str(&problems);
        }
        out
    }
}

/// Writes an aligned text grid or a Markdown table.
fn grid<R: AsRef<[String]>>(out: &mut String, head: &[String], rows: &[R], md: bool) {
    if md {
        let _ = writeln!(out, "| {} |", head.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(head.len()));
        for r in rows {
            let _ = writeln!(out, "| {} |", r.as_ref().iter().map(|c| c.replace('|', "\\|")).collect::<Vec<_>>().join(" | "));
        }
        return;
    }
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r.as_ref()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_string() + "\n"
    };
    out.push_str(&line(head));
    for r in rows {
        out.push_str(&line(r.as_ref()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, outcome: Outcome, reason: &str) -> Record {
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

    fn kernel(name: &str, status: Status) -> KernelResult {
        let mut k = KernelResult::new(name, "sid/linux-image-amd64");
        k.status = status;
        k.error = (status == Status::Infrastructure).then(|| "download failed".into());
        k
    }

    #[test]
    fn differences_and_reasons_show() {
        let both = |b: Record| {
            let a = rec("a", Outcome::Pass, "");
            BTreeMap::from([("root".to_string(), vec![a.clone(), b.clone()]), ("unprivileged".to_string(), vec![a, b])])
        };
        let old = Loaded { result: kernel("5.10", Status::Passed), reports: both(rec("b", Outcome::Skip, "needs Linux 5.6")) };
        let new = Loaded { result: kernel("sid", Status::CasesFailed), reports: both(rec("b", Outcome::Fail, "expected ENOENT")) };
        let broken = Loaded { result: kernel("6.1", Status::Infrastructure), reports: BTreeMap::new() };
        let t = Table::build(&[old, new, broken]);
        assert_eq!(t.columns.len(), 4, "6.1 has no report, so no column");
        assert_eq!(t.differing_rows().len(), 1, "only b differs");
        let text = t.terminal(true);
        assert!(!t.terminal(false).contains("\na "), "all-pass rows are folded");
        assert!(t.terminal(false).contains("1 more cases"));
        assert!(text.contains("skip[1]") && text.contains("FAIL[2]"), "{text}");
        assert!(text.contains("kernel 6.1: download failed"), "{text}");
        let md = t.markdown();
        assert!(md.contains("| case | 5.10 root | 5.10 uid 65534 |"), "{md}");
    }
}
