//! The JSON report one `cargo bench` run writes, and reading it back with
//! errors that name the file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Value of [`Report::format`]: tells our reports from any other JSON.
pub const FORMAT: &str = "nsverify-bench-report";
/// Version of the report layout this crate writes and reads.
pub const VERSION: u32 = 1;

/// One run of the benchmark suite on one kernel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`] for reports this crate writes.
    pub version: u32,
    /// The kernel measured.
    pub kernel: Kernel,
    /// The machine it ran on.
    pub machine: Machine,
    /// How the run was made.
    pub run: Run,
    /// Every measured figure, in suite order.
    pub figures: Vec<Figure>,
    /// Operations not measured, each with the reason.
    pub skipped: Vec<Skipped>,
    /// Criterion's median against a minimal timing loop of the same operation.
    pub fidelity: Vec<Fidelity>,
    /// What the run left behind (no-trace check); empty when nothing.
    pub leftovers: Vec<String>,
    /// The independent floor (`floor/floor.c`), per figure id; empty in
    /// reports made before it existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub floor: Vec<FloorEntry>,
}

/// The independent floor of one figure id, over the run's floor passes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FloorEntry {
    /// Figure id.
    pub id: String,
    /// Mean of the passes' medians, ns: the figure's `floor_ns`.
    pub floor_ns: Option<f64>,
    /// Median per operation of each pass, ns, in run order.
    pub pass_medians_ns: Vec<f64>,
    /// 10th percentile of each pass, ns.
    pub p10_ns: Vec<f64>,
    /// 90th percentile of each pass, ns.
    pub p90_ns: Vec<f64>,
    /// Timed operations over all passes.
    pub iterations: u64,
    /// Per criterion sample, its time per iteration over the median of the
    /// floor answer taken right before it (in run order); `ratio_to_floor`
    /// is their median when present.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample_ratios: Vec<f64>,
    /// Why a pass could not measure it, if one could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// The kernel under test (uname(2)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kernel {
    /// `uname -r`.
    pub release: String,
    /// `uname -v` (build number, date, PREEMPT model).
    pub version: String,
}

/// Facts about the machine that move the figures.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Machine {
    /// `model name` of /proc/cpuinfo.
    pub cpu_model: String,
    /// Online CPUs.
    pub cpus_online: usize,
    /// CPUs the benchmark process may run on (sched_getaffinity(2)).
    pub cpus_allowed: Vec<usize>,
    /// MemTotal of /proc/meminfo, in KiB.
    pub memory_kib: u64,
    /// Current clocksource (the cost of reading CLOCK_MONOTONIC).
    pub clocksource: String,
    /// /sys/devices/system/cpu/vulnerabilities: mitigations change syscall costs.
    pub vulnerabilities: BTreeMap<String, String>,
}

/// How the helper ran its operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Privilege {
    /// As root in the initial user namespace.
    Root,
    /// In a fresh user namespace where the helper is uid 0 (non-root runs,
    /// or asked for with `NSVERIFY_BENCH_USERNS=1`).
    UserNamespace,
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Privilege::Root => "root",
            Privilege::UserNamespace => "user namespace",
        })
    }
}

/// Settings of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Privilege of the measuring helper.
    pub privilege: Privilege,
    /// Quick mode (`NSVERIFY_BENCH_QUICK=1`).
    pub quick: bool,
    /// Start, seconds since the Unix epoch.
    pub started_unix: u64,
    /// Wall time of the whole run, in seconds.
    pub wall_seconds: f64,
    /// Criterion samples per benchmark.
    pub sample_size: usize,
    /// CPU the helper was pinned to (`NSVERIFY_BENCH_CPU`), if any.
    pub helper_cpu: Option<usize>,
    /// How net and ipc teardown backlogs were drained between benchmarks.
    pub drain_method: String,
    /// /proc/loadavg (1, 5, 15 min) at the start and at the end: other
    /// load on the machine is the first suspect for noisy figures.
    #[serde(default)]
    pub load_average: [[f64; 3]; 2],
}

/// Unit of a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Nanoseconds per operation.
    Ns,
    /// Milliseconds (drain times).
    Ms,
    /// Operations per second.
    PerSecond,
    /// A count (pending namespaces).
    Count,
}

impl Unit {
    /// Short name for tables.
    pub fn label(self) -> &'static str {
        match self {
            Unit::Ns => "µs",
            Unit::Ms => "ms",
            Unit::PerSecond => "/s",
            Unit::Count => "",
        }
    }

    /// `value` in the unit's display scale (ns are shown as µs).
    pub fn display(self, value: f64) -> f64 {
        match self {
            Unit::Ns => value / 1000.0,
            _ => value,
        }
    }

    /// Whether a larger value is better (throughput) rather than worse.
    pub fn higher_is_better(self) -> bool {
        self == Unit::PerSecond
    }
}

/// Where a figure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Criterion's samples (median of the per-sample means).
    Criterion,
    /// The helper's per-sample split of the same criterion samples
    /// (create / exit+reap parts of a clone).
    Split,
    /// A one-shot teardown burst.
    Teardown,
    /// The helper's minimal loop, without criterion (`baseline/fork_at_end`).
    Minimal,
}

/// One measured figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// Stable id, also criterion's benchmark id (`clone/net`), or with a
    /// suffix for parts (`clone/net:create`) and teardown (`teardown/net/drain`).
    pub id: String,
    /// What was measured, in words.
    pub what: String,
    /// Unit of `median`, `ci_low`, `ci_high`.
    pub unit: Unit,
    /// Median.
    pub median: f64,
    /// Lower bound of the 95% confidence interval of the median.
    pub ci_low: f64,
    /// Upper bound of the 95% confidence interval of the median.
    pub ci_high: f64,
    /// `median` divided by this run's fork baseline (time figures only).
    pub ratio_to_fork: Option<f64>,
    /// Samples summarised.
    pub samples: usize,
    /// Iterations of the operation behind the samples.
    pub iterations: u64,
    /// Where it comes from.
    pub source: Source,
    /// The independent floor's median of the same operation, ns, where it
    /// has one (absent in older reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_ns: Option<f64>,
    /// `median / floor_ns`: above [`crate::floor::SUSPECT_RATIO`] the figure
    /// measures the benches' overhead as much as the kernel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio_to_floor: Option<f64>,
}

/// An operation the run did not measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// The figure id it would have had.
    pub id: String,
    /// Why.
    pub reason: String,
}

/// Criterion against a minimal loop, for one operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fidelity {
    /// Figure id.
    pub id: String,
    /// Median per operation from criterion's samples, ns.
    pub criterion_ns: f64,
    /// Median per operation of the minimal loop (same batch sizes, no criterion), ns.
    pub minimal_ns: f64,
    /// `criterion_ns / minimal_ns`; the goal is within 1/1.10 ..= 1.10.
    pub ratio: f64,
    /// Criterion's own median from its `estimates.json`, ns, where found: a
    /// cross-check that [`Fidelity::criterion_ns`] is what criterion computed.
    pub criterion_estimate_ns: Option<f64>,
}

impl Report {
    /// The figure with `id`.
    pub fn figure(&self, id: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.id == id)
    }

    /// The reason `id` was skipped, if it was.
    pub fn skip_reason(&self, id: &str) -> Option<&str> {
        self.skipped.iter().find(|s| s.id == id).map(|s| s.reason.as_str())
    }

    /// A short column name: the kernel release.
    pub fn label(&self) -> &str {
        &self.kernel.release
    }
}

/// Why a file is not a usable report. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The JSON ends early (an interrupted run or copy).
    #[error("{}: truncated: the JSON ends at line {line}, column {column}", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Line where the text ended.
        line: usize,
        /// Column where the text ended.
        column: usize,
    },
    /// The file is not JSON.
    #[error("{}: not JSON: {source}", path.display())]
    NotJson {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// JSON, but not an nsverify bench report.
    #[error("{}: not an nsverify bench report: {why}", path.display())]
    Foreign {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        why: String,
    },
    /// A report of a layout version this build does not read.
    #[error("{}: report format version {found}, this tool reads version {VERSION}", path.display())]
    Version {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: u64,
    },
}

impl ReportError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ReportError::Read { path, .. }
            | ReportError::Truncated { path, .. }
            | ReportError::NotJson { path, .. }
            | ReportError::Foreign { path, .. }
            | ReportError::Version { path, .. } => path,
        }
    }
}

/// Parses report text; `path` only names the source in errors.
pub fn parse(text: &str, path: &Path) -> Result<Report, ReportError> {
    let path = path.to_path_buf();
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Eof => ReportError::Truncated { path: path.clone(), line: e.line(), column: e.column() },
        _ => ReportError::NotJson { path: path.clone(), source: e },
    })?;
    let Some(object) = value.as_object() else {
        return Err(ReportError::Foreign { path, why: "the top level is not an object".into() });
    };
    match object.get("format").and_then(|f| f.as_str()) {
        Some(FORMAT) => {}
        Some(other) => return Err(ReportError::Foreign { path, why: format!("\"format\" is {other:?}, expected {FORMAT:?}") }),
        None => return Err(ReportError::Foreign { path, why: format!("no \"format\": {FORMAT:?} field") }),
    }
    match object.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(found) => return Err(ReportError::Version { path, found }),
        None => return Err(ReportError::Foreign { path, why: "no numeric \"version\" field".into() }),
    }
    serde_json::from_value(value).map_err(|e| ReportError::Foreign { path, why: format!("malformed report: {e}") })
}

/// Reads and parses the report at `path`.
pub fn load(path: &Path) -> Result<Report, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read { path: path.to_path_buf(), source })?;
    parse(&text, path)
}

impl Report {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        // A Report holds only strings, numbers, maps and vectors: it always serialises.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small report for tests: `fork` and `clone/net` with the given medians (ns).
    pub(crate) fn sample(release: &str, fork: f64, net: f64) -> Report {
        let fig = |id: &str, median: f64, ratio: f64| Figure {
            id: id.into(),
            what: id.into(),
            unit: Unit::Ns,
            median,
            ci_low: median * 0.98,
            ci_high: median * 1.02,
            ratio_to_fork: Some(ratio),
            samples: 10,
            iterations: 550,
            source: Source::Criterion,
            floor_ns: None,
            ratio_to_floor: None,
        };
        Report {
            format: FORMAT.into(),
            version: VERSION,
            kernel: Kernel { release: release.into(), version: "#1 SMP PREEMPT_DYNAMIC".into() },
            machine: Machine::default(),
            run: Run {
                privilege: Privilege::Root,
                quick: true,
                started_unix: 0,
                wall_seconds: 1.0,
                sample_size: 10,
                helper_cpu: None,
                drain_method: "test".into(),
                load_average: [[0.0; 3]; 2],
            },
            figures: vec![fig("baseline/fork", fork, 1.0), fig("clone/net", net, net / fork)],
            skipped: vec![Skipped { id: "setns/user".into(), reason: "cannot toggle".into() }],
            fidelity: vec![],
            leftovers: vec![],
            floor: vec![],
        }
    }

    #[test]
    fn round_trips() {
        let r = sample("6.18.44", 76_000.0, 343_000.0);
        assert_eq!(parse(&r.to_json(), Path::new("a.json")).unwrap(), r);
    }

    #[test]
    fn reports_without_floor_fields_still_read() {
        let mut r = sample("6.18.44", 76_000.0, 343_000.0);
        let old = r.to_json();
        assert!(!old.contains("floor"), "optional fields are left out when empty");
        r.figures[0].floor_ns = Some(70_000.0);
        r.figures[0].ratio_to_floor = Some(76.0 / 70.0);
        r.floor.push(FloorEntry { id: "baseline/fork".into(), floor_ns: Some(70_000.0), ..FloorEntry::default() });
        assert_eq!(parse(&r.to_json(), Path::new("new.json")).unwrap(), r);
        let back = parse(&old, Path::new("old.json")).unwrap();
        assert!(back.floor.is_empty() && back.figures.iter().all(|f| f.floor_ns.is_none()));
    }

    #[test]
    fn truncated_file_is_named() {
        let text = sample("6.18.44", 76_000.0, 343_000.0).to_json();
        let err = parse(&text[..text.len() / 2], Path::new("k6.18.json")).unwrap_err();
        assert!(matches!(err, ReportError::Truncated { .. }), "{err:?}");
        assert!(err.to_string().starts_with("k6.18.json: truncated"), "{err}");
    }

    #[test]
    fn foreign_json_is_refused() {
        let p = Path::new("critcmp.json");
        for (text, want) in [
            ("[1, 2]", "top level is not an object"),
            ("{\"benchmarks\": {}}", "no \"format\""),
            ("{\"format\": \"criterion\", \"version\": 1}", "\"format\" is \"criterion\""),
            ("{\"format\": \"nsverify-bench-report\"}", "no numeric \"version\""),
            ("{\"format\": \"nsverify-bench-report\", \"version\": 1, \"kernel\": 3}", "malformed report"),
        ] {
            let err = parse(text, p).unwrap_err();
            assert!(matches!(err, ReportError::Foreign { .. }), "{text}: {err:?}");
            assert!(err.to_string().contains(want), "{text}: {err}");
            assert_eq!(err.path(), p);
        }
        let err = parse("{\"format\": \"nsverify-bench-report\", \"version\": 9}", p).unwrap_err();
        assert!(matches!(err, ReportError::Version { found: 9, .. }), "{err:?}");
        assert!(matches!(parse("not json", p).unwrap_err(), ReportError::NotJson { .. }));
    }

    #[test]
    fn missing_file_is_named() {
        let err = load(Path::new("/nonexistent/k.json")).unwrap_err();
        assert!(err.to_string().starts_with("/nonexistent/k.json: cannot read"), "{err}");
    }
}
