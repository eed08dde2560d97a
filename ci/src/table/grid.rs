//! The case x (kernel, run) table: built from the kernels' loaded reports,
//! rendered for the terminal and as Markdown (the JSON is its serde form).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use harness::Outcome;
use serde::Serialize;

use super::{KernelResult, Loaded, FUZZ_RUN, RUNS};

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
    /// The runs' labels, the columns of each kernel in order ([`RUNS`],
    /// then [`FUZZ_RUN`] when a kernel has fuzz records).
    pub runs: Vec<String>,
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
        let fuzz = loaded.iter().any(|l| l.reports.contains_key(FUZZ_RUN.0));
        let runs: Vec<(&str, &str)> = RUNS.into_iter().chain(fuzz.then_some(FUZZ_RUN)).collect();
        // Kernels without any report have no column; the kernel summary and
        // the failures section name them.
        for l in loaded.iter().filter(|l| !l.reports.is_empty()) {
            for &(run, label) in &runs {
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
        let runs = runs.iter().map(|(_, label)| label.to_string()).collect();
        Table { columns, rows, runs, reasons, kernels: loaded.iter().map(|l| l.result.clone()).collect() }
    }

    /// A row's cells of one run, one per kernel.
    fn run_cells<'a>(&self, cells: &'a [Option<Cell>], run: usize) -> impl Iterator<Item = &'a Option<Cell>> + Clone + use<'a> {
        let stride = self.runs.len().max(1);
        cells.iter().skip(run).step_by(stride)
    }

    /// Rows whose outcomes differ between kernels for the same run (cells
    /// without a result are not compared).
    pub fn differing_rows(&self) -> Vec<&(String, Vec<Option<Cell>>)> {
        self.rows
            .iter()
            .filter(|(_, cells)| {
                (0..self.runs.len()).any(|run| {
                    let outcomes: Vec<Outcome> = self.run_cells(cells, run).filter_map(|c| c.as_ref().map(|c| c.outcome)).collect();
                    outcomes.windows(2).any(|w| w[0] != w[1])
                })
            })
            .collect()
    }

    /// Whether a row folds in the terminal: it passes in every column of
    /// every run that has it (a fuzz row has no root or uid 65534 result; a
    /// case missing on one kernel only is shown).
    fn passes_everywhere(&self, cells: &[Option<Cell>]) -> bool {
        (0..self.runs.len()).all(|run| {
            let mut of_run = self.run_cells(cells, run);
            of_run.clone().all(Option::is_none) || of_run.all(|c| c.as_ref().is_some_and(|c| c.outcome == Outcome::Pass && !c.xpass))
        })
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
        let shown: Vec<&(String, Vec<Option<Cell>>)> =
            self.rows.iter().filter(|(_, cells)| full || !self.passes_everywhere(cells)).collect();
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
    use super::super::tests::rec;
    use super::super::{Record, Status};
    use super::*;

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

    #[test]
    fn fuzz_rows_join_the_table_in_their_own_column() {
        let runs = |fuzz: Option<Vec<Record>>| {
            let mut r = BTreeMap::from([
                ("root".to_string(), vec![rec("a", Outcome::Pass, ""), rec("c", Outcome::Pass, "")]),
                ("unprivileged".to_string(), vec![rec("a", Outcome::Pass, "")]),
            ]);
            if let Some(f) = fuzz {
                r.insert("fuzz".into(), f);
            }
            r
        };
        let with = Loaded { result: kernel("6.12", Status::CasesFailed), reports: runs(Some(vec![rec("fuzz.x", Outcome::Fail, "boom")])) };
        let passing = Loaded { result: kernel("sid", Status::Passed), reports: runs(Some(vec![rec("fuzz.x", Outcome::Pass, "")])) };
        let without = Loaded { result: kernel("5.10", Status::Passed), reports: runs(None) };
        let t = Table::build(&[with, passing, without]);
        assert_eq!(t.runs, ["root", "uid 65534", "fuzz"]);
        assert_eq!(t.columns.len(), 9, "every kernel gets the fuzz column");
        assert_eq!(t.columns[2], ("6.12".to_string(), "fuzz".to_string()));
        let ids: Vec<&str> = t.differing_rows().iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["fuzz.x"], "fail against pass in the fuzz run; 5.10's missing cell is not compared");
        let folded = t.terminal(false);
        assert!(folded.contains("fuzz.x") && folded.contains("FAIL[1]"), "{folded}");
        // `a` passes wherever it ran; `c` has no uid 65534 result anywhere:
        // both fold, the fuzz row does not.
        assert!(folded.contains("2 more cases"), "{folded}");
        let fine = Loaded { result: kernel("sid", Status::Passed), reports: runs(Some(vec![rec("fuzz.x", Outcome::Pass, "")])) };
        assert!(Table::build(&[fine]).terminal(false).contains("3 more cases"), "a passing fuzz row folds");
    }
}
