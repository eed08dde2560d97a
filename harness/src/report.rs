//! Reports of a run: JSON lines, TAP (kselftest/KernelCI style) and JUnit
//! XML, each written atomically (a temporary file renamed into place).
//!
//! A run made of several processes (`cargo nextest run` starts one per
//! case) merges: each process adds its records to the JSON-lines report
//! under a lock, and TAP and JUnit are rendered again from the merged
//! records ([`merge_requested`]).

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::case::Outcome;

/// Environment variable: path of the JSON-lines report.
pub const REPORT_ENV: &str = "NSVERIFY_REPORT";
/// Environment variable: path of the TAP report.
pub const TAP_ENV: &str = "NSVERIFY_TAP";
/// Environment variable: path of the JUnit XML report.
pub const JUNIT_ENV: &str = "NSVERIFY_JUNIT";

/// One case's result: a line of the JSON report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Case id.
    pub id: String,
    /// Claim ids it verifies.
    pub claims: Vec<String>,
    /// pass, fail, skip or broken.
    pub outcome: Outcome,
    /// Why (empty for a pass): expected vs actual, skip reason, setup error.
    pub reason: String,
    /// `file:line` where the outcome was decided, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The running kernel, `uname -r`.
    pub kernel: String,
    /// Wall time of the case in milliseconds.
    pub duration_ms: f64,
    /// For a failure the project documents as a kernel deviation from the
    /// man page: that deviation (the run does not fail for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_deviation: Option<String>,
    /// For a pass where a known deviation was expected (its predicate holds
    /// on this kernel): that deviation. A kernel fixed it, or the predicate
    /// is wrong; the run does not fail for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xpass: Option<String>,
    /// Figures the case measured and noted (for example release latencies).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<(String, String)>,
    /// The case's output (failures only), truncated.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
    /// The run the record belongs to when several processes write one
    /// report (nextest's run id, [`NEXTEST_RUN_ID_ENV`]); absent for a
    /// report of one process (`cargo test`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

/// Writes `contents` to `path` atomically: readers see the old file or the
/// whole new one, never a part.
pub fn write_atomic(path: &Path, contents: &str) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name =
        path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a file path", path.display())))?;
    let tmp: PathBuf = dir.join(format!(".{}.tmp.{}", name.to_string_lossy(), std::process::id()));
    fs::write(&tmp, contents).and_then(|()| fs::rename(&tmp, path)).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// The JSON-lines report: one object per case.
pub fn jsonl(records: &[Record]) -> String {
    records.iter().map(|r| serde_json::to_string(r).expect("records serialize") + "\n").collect()
}

/// Parses a JSON-lines report (for comparing reports from several kernels).
pub fn parse_jsonl(text: &str) -> Result<Vec<Record>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// TAP version 13, as kselftest prints it: `ok`, `not ok`, `# SKIP reason`;
/// failures and broken cases carry a YAML block with outcome and reason.
pub fn tap(records: &[Record]) -> String {
    let mut out = format!("TAP version 13\n1..{}\n", records.len());
    for (i, r) in records.iter().enumerate() {
        let n = i + 1;
        match r.outcome {
            Outcome::Pass if r.xpass.is_some() => {
                writeln!(
                    out,
                    "ok {n} {} # TODO xpass, known deviation did not happen: {}",
                    r.id,
                    one_line(r.xpass.as_deref().unwrap_or_default())
                )
            }
            Outcome::Pass => writeln!(out, "ok {n} {}", r.id),
            Outcome::Skip => writeln!(out, "ok {n} {} # SKIP {}", r.id, one_line(&r.reason)),
            Outcome::Fail if r.known_deviation.is_some() => {
                writeln!(out, "not ok {n} {} # TODO known deviation: {}", r.id, one_line(r.known_deviation.as_deref().unwrap_or_default()))
            }
            Outcome::Fail | Outcome::Broken => {
                let _ = writeln!(out, "not ok {n} {}", r.id);
                let _ = writeln!(out, "  ---");
                let _ = writeln!(out, "  outcome: {}", r.outcome);
                let _ = writeln!(out, "  message: {}", serde_json::to_string(&r.reason).unwrap_or_default());
                if let Some(loc) = &r.location {
                    let _ = writeln!(out, "  at: {}", serde_json::to_string(loc).unwrap_or_default());
                }
                let _ = writeln!(out, "  claims: [{}]", r.claims.join(", "));
                writeln!(out, "  ...")
            }
        }
        .expect("writing to a String");
    }
    out
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters even as references.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one `<testsuite>`, a `<testcase>` per case; fail is
/// `<failure>`, broken is `<error>`, skip is `<skipped>`.
pub fn junit(records: &[Record], kernel: &str) -> String {
    let count = |o: Outcome| records.iter().filter(|r| r.outcome == o).count();
    let total: f64 = records.iter().map(|r| r.duration_ms).sum::<f64>() / 1000.0;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"nsverify\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{total:.3}\">",
        records.len(),
        count(Outcome::Fail),
        count(Outcome::Broken),
        count(Outcome::Skip)
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"nsverify\" hostname=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{total:.3}\">",
        xml_escape(kernel),
        records.len(),
        count(Outcome::Fail),
        count(Outcome::Broken),
        count(Outcome::Skip)
    );
    let _ = writeln!(out, "    <properties><property name=\"kernel\" value=\"{}\"/></properties>", xml_escape(kernel));
    for r in records {
        let class = r.id.split('.').next().unwrap_or("nsverify");
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            xml_escape(class),
            xml_escape(&r.id),
            r.duration_ms / 1000.0
        );
        let msg = xml_escape(&r.reason);
        let body = xml_escape(&format!(
            "{}\nclaims: {}\nat: {}\n{}",
            r.reason,
            r.claims.join(", "),
            r.location.as_deref().unwrap_or("?"),
            r.output
        ));
        match r.outcome {
            Outcome::Pass if r.xpass.is_some() => {
                let text = xml_escape(&format!("XPASS: known deviation did not happen: {}", r.xpass.as_deref().unwrap_or_default()));
                let _ = writeln!(out, ">\n      <system-out>{text}</system-out>\n    </testcase>");
            }
            Outcome::Pass => out.push_str("/>\n"),
            Outcome::Skip => {
                let _ = writeln!(out, ">\n      <skipped message=\"{msg}\"/>\n    </testcase>");
            }
            Outcome::Fail => {
                let kind = if r.known_deviation.is_some() { "known-deviation" } else { "fail" };
                let _ = writeln!(out, ">\n      <failure message=\"{msg}\" type=\"{kind}\">{body}</failure>\n    </testcase>");
            }
            Outcome::Broken => {
                let _ = writeln!(out, ">\n      <error message=\"{msg}\" type=\"broken\">{body}</error>\n    </testcase>");
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// The suite whose reports go to the paths exactly as given: the case suite.
pub const PRIMARY_SUITE: &str = "cases";

/// Environment variable: when set (to anything), every suite writes the
/// report paths exactly as given (a runner that starts one binary, such as
/// the VM matrix's guest).
pub const REPORT_EXACT_ENV: &str = "NSVERIFY_REPORT_EXACT";

/// Where `suite`'s report goes when `path` was asked for: `path` itself for
/// the primary suite (or with [`REPORT_EXACT_ENV`]), else `path` with the
/// suite's name before its extension.
pub fn suite_path(path: &Path, suite: &str) -> PathBuf {
    if suite == PRIMARY_SUITE || std::env::var_os(REPORT_EXACT_ENV).is_some() {
        return path.to_path_buf();
    }
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.{suite}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{suite}"),
    };
    path.with_file_name(name)
}

/// Writes every report whose environment variable is set, for `suite` (see
/// [`suite_path`]).
pub fn write_requested(records: &[Record], kernel: &str, suite: &str) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (var, render) in [(REPORT_ENV, jsonl(records)), (TAP_ENV, tap(records)), (JUNIT_ENV, junit(records, kernel))] {
        if let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) {
            let path = suite_path(Path::new(&path), suite);
            write_atomic(&path, &render).map_err(|e| io::Error::new(e.kind(), format!("{var}={}: {e}", path.display())))?;
            written.push(path);
        }
    }
    Ok(written)
}

/// Environment variable that cargo nextest sets in every process of a run:
/// the run's id (a UUID), shared by the processes whose reports merge.
pub const NEXTEST_RUN_ID_ENV: &str = "NEXTEST_RUN_ID";

/// Prefix of the records about a whole process rather than a case
/// (`harness.no_trace`, `harness.kernel_health`).
pub const PROCESS_RECORD_PREFIX: &str = "harness.";

/// One process's share of a run that several processes report together.
#[derive(Debug, Clone, Copy)]
pub struct Share<'a> {
    /// The run id ([`Record::run`]).
    pub run: &'a str,
    /// Records of the cases this process ran, then its
    /// [`PROCESS_RECORD_PREFIX`] records.
    pub ran: &'a [Record],
    /// Records decided without running (skips from declared requirements,
    /// the same in every process): added where the report has none yet.
    pub listed: &'a [Record],
    /// Every case id of the suite in table order: the order of the report.
    pub order: &'a [String],
}

fn worse(a: Outcome, b: Outcome) -> Outcome {
    let rank = |o: Outcome| [Outcome::Pass, Outcome::Skip, Outcome::Fail, Outcome::Broken].iter().position(|x| *x == o);
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// Note key of a merged process record: how many processes it combines.
pub const PROCESSES_NOTE: &str = "processes";

/// Folds a process record into the run's record of the same id: the worse
/// outcome, the reasons of both (each process's after the cases it ran),
/// the notes of both and a count of processes.
fn fold(into: &mut Record, new: &Record, ran: &str) {
    let count = |r: &Record| r.notes.iter().find(|(k, _)| k == PROCESSES_NOTE).and_then(|(_, v)| v.parse::<u64>().ok()).unwrap_or(1);
    let processes = count(into) + count(new);
    into.outcome = worse(into.outcome, new.outcome);
    if !new.reason.is_empty() {
        let reason = format!("after {ran}: {}", new.reason);
        into.reason = if into.reason.is_empty() { reason } else { format!("{}; {reason}", into.reason) };
    }
    for note in &new.notes {
        if note.0 != PROCESSES_NOTE && !into.notes.contains(note) {
            into.notes.push(note.clone());
        }
    }
    into.notes.retain(|(k, _)| k != PROCESSES_NOTE);
    into.notes.push((PROCESSES_NOTE.to_string(), processes.to_string()));
}

/// The report after adding `share` to `existing` (a report of the same
/// run, or anything else, which it replaces): a case's record replaces one
/// of the same id (a retry), process records fold into one per id, listed
/// records fill gaps. Cases come in table order, process records last.
pub fn merge(existing: Vec<Record>, share: Share<'_>) -> Vec<Record> {
    let mut out: Vec<Record> = existing.into_iter().filter(|r| r.run.as_deref() == Some(share.run)).collect();
    let ran = share.ran.iter().filter(|r| !r.id.starts_with(PROCESS_RECORD_PREFIX)).map(|r| r.id.as_str()).collect::<Vec<_>>();
    let ran = if ran.is_empty() { "no case".to_string() } else { ran.join(", ") };
    for r in share.listed {
        if !out.iter().any(|o| o.id == r.id) {
            out.push(r.clone());
        }
    }
    for r in share.ran {
        match out.iter_mut().find(|o| o.id == r.id) {
            Some(o) if r.id.starts_with(PROCESS_RECORD_PREFIX) => fold(o, r, &ran),
            Some(o) => *o = r.clone(),
            None if r.id.starts_with(PROCESS_RECORD_PREFIX) => {
                let mut first = r.clone();
                if !first.reason.is_empty() {
                    first.reason = format!("after {ran}: {}", r.reason);
                }
                first.notes.push((PROCESSES_NOTE.to_string(), "1".to_string()));
                out.push(first);
            }
            None => out.push(r.clone()),
        }
    }
    out.sort_by_key(|r| share.order.iter().position(|id| *id == r.id).unwrap_or(usize::MAX));
    out
}

/// Adds `share` to the reports whose environment variables are set, for
/// `suite` (see [`suite_path`]): under an exclusive lock on
/// `<JSON-lines report>.lock`, reads the JSON-lines report, [`merge`]s,
/// and writes it and the TAP and JUnit reports rendered from it. TAP and
/// JUnit need the JSON-lines report, their source, to be asked for too.
pub fn merge_requested(share: Share<'_>, kernel: &str, suite: &str) -> io::Result<Vec<PathBuf>> {
    let path = |var: &str| std::env::var_os(var).filter(|p| !p.is_empty()).map(|p| suite_path(Path::new(&p), suite));
    let (tap_path, junit_path) = (path(TAP_ENV), path(JUNIT_ENV));
    let Some(jsonl_path) = path(REPORT_ENV) else {
        if tap_path.is_some() || junit_path.is_some() {
            let msg =
                format!("{TAP_ENV} and {JUNIT_ENV} of a run in several processes are rendered from the merged {REPORT_ENV}: set it too");
            return Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        }
        return Ok(Vec::new());
    };
    merge_into(&jsonl_path, tap_path, junit_path, share, kernel)
}

/// [`merge_requested`] with the paths given.
pub fn merge_into(
    jsonl_path: &Path,
    tap_path: Option<PathBuf>,
    junit_path: Option<PathBuf>,
    share: Share<'_>,
    kernel: &str,
) -> io::Result<Vec<PathBuf>> {
    let named = |e: io::Error, what: &Path| io::Error::new(e.kind(), format!("{}: {e}", what.display()));
    let lock_path = PathBuf::from(format!("{}.lock", jsonl_path.display()));
    let lock_file = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(|e| named(e, &lock_path))?;
    let _lock =
        nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| named(io::Error::from(e), &lock_path))?;
    let existing = match fs::read_to_string(jsonl_path) {
        Ok(text) => parse_jsonl(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", jsonl_path.display())))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(named(e, jsonl_path)),
    };
    let records = merge(existing, share);
    let mut written = Vec::new();
    for (path, render) in
        [(Some(jsonl_path.to_path_buf()), jsonl(&records)), (tap_path, tap(&records)), (junit_path, junit(&records, kernel))]
    {
        if let Some(path) = path {
            write_atomic(&path, &render).map_err(|e| named(e, &path))?;
            written.push(path);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_suites_write_beside_the_primary_report() {
        let p = Path::new("/tmp/r.jsonl");
        assert_eq!(suite_path(p, PRIMARY_SUITE), PathBuf::from("/tmp/r.jsonl"));
        assert_eq!(suite_path(p, "sabotage"), PathBuf::from("/tmp/r.sabotage.jsonl"));
        assert_eq!(suite_path(Path::new("out/report"), "fuzz"), PathBuf::from("out/report.fuzz"));
    }

    fn rec(id: &str, outcome: Outcome, reason: &str, run: &str) -> Record {
        Record {
            id: id.into(),
            claims: vec![],
            outcome,
            reason: reason.into(),
            location: None,
            kernel: "k".into(),
            duration_ms: 0.0,
            known_deviation: None,
            xpass: None,
            notes: vec![],
            output: String::new(),
            run: Some(run.into()),
        }
    }

    fn order() -> Vec<String> {
        ["a", "b", "c"].map(String::from).to_vec()
    }

    #[test]
    fn shares_of_a_run_merge_in_table_order_with_one_record_per_process_check() {
        let order = order();
        let listed = [rec("c", Outcome::Skip, "needs 9.9", "r1")];
        let share = |ran| Share { run: "r1", ran, listed: &listed, order: &order };
        let stale = vec![rec("a", Outcome::Fail, "old", "r0"), Record { run: None, ..rec("z", Outcome::Pass, "", "") }];
        let b = [rec("b", Outcome::Pass, "", "r1"), rec("harness.no_trace", Outcome::Pass, "", "r1")];
        let a = [rec("a", Outcome::Pass, "", "r1"), rec("harness.no_trace", Outcome::Fail, "cgroup appeared: /x/nsverify-cg-r7c8", "r1")];
        let merged = merge(merge(stale, share(&b)), share(&a));
        let ids: Vec<&str> = merged.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c", "harness.no_trace"]);
        let no_trace = &merged[3];
        assert_eq!(no_trace.outcome, Outcome::Fail, "one process's trace fails the run's check");
        assert_eq!(no_trace.reason, "after a: cgroup appeared: /x/nsverify-cg-r7c8");
        assert_eq!(no_trace.notes, [(PROCESSES_NOTE.to_string(), "2".to_string())]);
        // A retry of a replaces its record; the check folds a third process.
        let retry = [rec("a", Outcome::Fail, "now", "r1"), rec("harness.no_trace", Outcome::Pass, "", "r1")];
        let merged = merge(merged, share(&retry));
        assert_eq!((merged[0].outcome, merged.len()), (Outcome::Fail, 4));
        assert_eq!(merged[3].notes, [(PROCESSES_NOTE.to_string(), "3".to_string())]);
        assert_eq!(merged[3].outcome, Outcome::Fail);
    }

    /// Threads stand in for processes: each opens the lock file itself, so
    /// flock(2) orders them as it orders processes. No share is lost.
    #[test]
    fn concurrent_shares_all_land_in_every_report() {
        let dir = std::env::temp_dir().join(format!("nsverify-merge-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let jsonl_path = dir.join("r.jsonl");
        let order: Vec<String> = (0..16).map(|i| format!("case{i}")).collect();
        std::thread::scope(|s| {
            for i in 0..16 {
                let (order, jsonl_path, dir) = (&order, &jsonl_path, &dir);
                s.spawn(move || {
                    let ran = [rec(&format!("case{i}"), Outcome::Pass, "", "run"), rec("harness.no_trace", Outcome::Pass, "", "run")];
                    let share = Share { run: "run", ran: &ran, listed: &[], order };
                    merge_into(jsonl_path, Some(dir.join("r.tap")), Some(dir.join("r.xml")), share, "k").unwrap();
                });
            }
        });
        let records = parse_jsonl(&fs::read_to_string(&jsonl_path).unwrap()).unwrap();
        assert_eq!(records.len(), 17);
        assert_eq!(records[16].notes, [(PROCESSES_NOTE.to_string(), "16".to_string())]);
        assert!(fs::read_to_string(dir.join("r.tap")).unwrap().starts_with("TAP version 13\n1..17\n"));
        assert!(fs::read_to_string(dir.join("r.xml")).unwrap().contains("tests=\"17\""));
        fs::remove_dir_all(&dir).unwrap();
    }
}
