//! Reports of a run: JSON lines, TAP (kselftest/KernelCI style) and JUnit
//! XML, each written atomically (a temporary file renamed into place).

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
}
