//! Reports from several kernels side by side: per operation, the median and
//! ratio to fork on each kernel, and the change against the first report,
//! flagged when it is beyond noise; and, where the reports have the
//! independent floor, each figure's ratio to it, with a report whose
//! figures exceed [`crate::floor::SUSPECT_RATIO`] flagged as suspect.

use crate::floor::{suspect, SUSPECT_RATIO};
use crate::report::{Figure, Report, Unit};
use crate::suite::{fmt_ratio, fmt_with_unit};

/// A change counts as beyond noise when it exceeds this fraction and the
/// two 95% confidence intervals do not overlap.
pub const DEFAULT_NOISE: f64 = 0.05;

/// A relative change against the first report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    /// `value / first - 1`.
    pub fraction: f64,
    /// Beyond noise: larger than the threshold and the intervals are disjoint.
    pub beyond_noise: bool,
}

/// One report's entry in a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Measured.
    Value {
        /// The figure.
        figure: Figure,
        /// Median against the first report's.
        change: Option<Change>,
        /// Ratio to fork against the first report's.
        ratio_change: Option<Change>,
    },
    /// Skipped in that report, with the reason.
    Skipped(String),
    /// Not in that report at all.
    Missing,
}

/// One operation across the reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Figure id.
    pub id: String,
    /// Unit of the figure.
    pub unit: Unit,
    /// One cell per report, in argument order.
    pub cells: Vec<Cell>,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Column names: kernel release (and a suffix when one repeats).
    pub labels: Vec<String>,
    /// Operations, in the first report's order, then any new ones.
    pub rows: Vec<Row>,
    /// Differences between the runs that make figures less comparable.
    pub caveats: Vec<String>,
    /// The threshold used.
    pub noise: f64,
    /// Whether any report has ratios to the floor (older ones have none).
    pub has_floor: bool,
    /// Reports with figures above [`SUSPECT_RATIO`] times their floor.
    pub suspects: Vec<Suspect>,
}

/// A report whose figures are not all within [`SUSPECT_RATIO`] of the floor:
/// what it shows is the benches' overhead as much as the kernel's cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Suspect {
    /// The report's column name.
    pub label: String,
    /// Figures with a floor.
    pub with_floor: usize,
    /// Those above the limit, with their ratio.
    pub over: Vec<(String, f64)>,
}

/// The suspect figures of `r`, if any.
pub fn suspect_of(r: &Report, label: &str) -> Option<Suspect> {
    let ratios: Vec<(&str, f64)> = r.figures.iter().filter_map(|f| Some((f.id.as_str(), f.ratio_to_floor?))).collect();
    let over: Vec<(String, f64)> = ratios.iter().filter(|(_, x)| suspect(*x)).map(|(id, x)| (id.to_string(), *x)).collect();
    (!over.is_empty()).then(|| Suspect { label: label.into(), with_floor: ratios.len(), over })
}

fn change(first: (f64, f64, f64), this: (f64, f64, f64), noise: f64) -> Option<Change> {
    let (m0, lo0, hi0) = first;
    let (m, lo, hi) = this;
    if m0 == 0.0 || !m0.is_finite() || !m.is_finite() {
        return None;
    }
    let fraction = m / m0 - 1.0;
    let disjoint = lo > hi0 || hi < lo0;
    Some(Change { fraction, beyond_noise: fraction.abs() > noise && disjoint })
}

fn fork_median(r: &Report) -> Option<f64> {
    r.figure(crate::ops::FORK_ID).map(|f| f.median)
}

fn labels(reports: &[Report]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in reports {
        let base = r.label().to_string();
        let n = out.iter().filter(|l| **l == base || l.starts_with(&format!("{base} #"))).count();
        out.push(if n == 0 { base } else { format!("{base} #{}", n + 1) });
    }
    out
}

/// Compares `reports` (at least one) against the first.
pub fn compare(reports: &[Report], noise: f64) -> Comparison {
    let mut ids: Vec<(String, Unit)> = Vec::new();
    for r in reports {
        for f in &r.figures {
            if !ids.iter().any(|(id, _)| *id == f.id) {
                ids.push((f.id.clone(), f.unit));
            }
        }
    }
    let forks: Vec<Option<f64>> = reports.iter().map(fork_median).collect();
    let rows = ids
        .into_iter()
        .map(|(id, unit)| {
            let first = reports.first().and_then(|r| r.figure(&id));
            let cells = reports
                .iter()
                .zip(&forks)
                .enumerate()
                .map(|(i, (r, fork))| match r.figure(&id) {
                    Some(f) => {
                        let (change, ratio_change) = match (i, first) {
                            (0, _) | (_, None) => (None, None),
                            (_, Some(f0)) => {
                                let scaled = |f: &Figure, fork: Option<f64>| {
                                    let k = fork?;
                                    f.ratio_to_fork.map(|r| (r, f.ci_low / k, f.ci_high / k))
                                };
                                let ratio = scaled(f0, forks[0]).zip(scaled(f, *fork)).and_then(|(a, b)| change(a, b, noise));
                                (change((f0.median, f0.ci_low, f0.ci_high), (f.median, f.ci_low, f.ci_high), noise), ratio)
                            }
                        };
                        Cell::Value { figure: f.clone(), change, ratio_change }
                    }
                    None => r.skip_reason(&id).map(|s| Cell::Skipped(s.to_string())).unwrap_or(Cell::Missing),
                })
                .collect();
            Row { id, unit, cells }
        })
        .collect();
    let mut caveats = Vec::new();
    let labels = labels(reports);
    if let Some(r0) = reports.first() {
        for (r, label) in reports.iter().zip(&labels).skip(1) {
            if r.run.privilege != r0.run.privilege {
                caveats.push(format!("{label} measured as {}, {} as {}", r.run.privilege, labels[0], r0.run.privilege));
            }
            if r.run.quick != r0.run.quick {
                caveats.push(format!("{label} and {} differ in quick mode", labels[0]));
            }
            if r.machine.cpu_model != r0.machine.cpu_model || r.machine.cpus_online != r0.machine.cpus_online {
                caveats.push(format!(
                    "{label} ran on {} × {}: compare ratios to fork rather than times",
                    r.machine.cpus_online, r.machine.cpu_model
                ));
            }
        }
        for (r, label) in reports.iter().zip(&labels) {
            if !r.leftovers.is_empty() {
                caveats.push(format!("{label}: the run left {} trace(s) behind", r.leftovers.len()));
            }
        }
    }
    let has_floor = reports.iter().any(|r| r.figures.iter().any(|f| f.ratio_to_floor.is_some()));
    let suspects = reports.iter().zip(&labels).filter_map(|(r, l)| suspect_of(r, l)).collect();
    Comparison { labels, rows, caveats, noise, has_floor, suspects }
}

fn fmt_change(c: Option<Change>, markdown: bool) -> String {
    match c {
        None => String::new(),
        Some(c) => {
            let pct = format!("{:+.0}%", c.fraction * 100.0);
            match (c.beyond_noise, markdown) {
                (true, true) => format!(" (**{pct}**)"),
                (true, false) => format!(" ({pct}!)"),
                (false, _) => format!(" ({pct})"),
            }
        }
    }
}

fn fmt_floor(r: f64, markdown: bool) -> String {
    match (suspect(r), markdown) {
        (true, true) => format!("{r:.2} ⚠"),
        (true, false) => format!("{r:.2}*"),
        (false, _) => format!("{r:.2}"),
    }
}

impl Comparison {
    fn cells(&self, row: &Row, markdown: bool) -> Vec<String> {
        let mut medians = Vec::new();
        let mut ratios = Vec::new();
        let mut floors = Vec::new();
        for cell in &row.cells {
            match cell {
                Cell::Value { figure, change, ratio_change } => {
                    medians.push(format!("{}{}", fmt_with_unit(figure.unit, figure.median), fmt_change(*change, markdown)));
                    ratios.push(
                        figure
                            .ratio_to_fork
                            .map(|r| format!("{}{}", fmt_ratio(r), fmt_change(*ratio_change, markdown)))
                            .unwrap_or_default(),
                    );
                    floors.push(figure.ratio_to_floor.map(|r| fmt_floor(r, markdown)).unwrap_or_default());
                }
                Cell::Skipped(_) => {
                    medians.push("skipped".into());
                    ratios.push(String::new());
                    floors.push(String::new());
                }
                Cell::Missing => {
                    medians.push("—".into());
                    ratios.push(String::new());
                    floors.push(String::new());
                }
            }
        }
        let mut out = vec![row.id.clone()];
        out.extend(medians);
        out.extend(ratios);
        if self.has_floor {
            out.extend(floors);
        }
        out
    }

    fn header(&self) -> Vec<String> {
        let mut h = vec!["operation".to_string()];
        h.extend(self.labels.iter().map(|l| format!("median {l}")));
        h.extend(self.labels.iter().map(|l| format!("×fork {l}")));
        if self.has_floor {
            h.extend(self.labels.iter().map(|l| format!("×floor {l}")));
        }
        h
    }

    fn footer(&self, markdown: bool) -> String {
        let mark = if markdown { "bold" } else { "marked !" };
        let mut s = format!(
            "\nChanges are against {}; {mark} when beyond noise (more than {:.0}% and disjoint 95% confidence intervals).\n",
            self.labels.first().map(String::as_str).unwrap_or("the first report"),
            self.noise * 100.0
        );
        if self.has_floor {
            let mark = if markdown { "⚠" } else { "*" };
            s += &format!("×floor: median / the independent floor's median in the same run; {mark} above {SUSPECT_RATIO:.2}.\n");
        }
        for x in &self.suspects {
            let list: Vec<String> = x.over.iter().map(|(id, r)| format!("{id} {r:.2}")).collect();
            s += &format!(
                "{}: {}: {} of {} figures above {SUSPECT_RATIO:.2}× the floor: {}\n",
                if markdown { "**SUSPECT**" } else { "SUSPECT" },
                x.label,
                x.over.len(),
                x.with_floor,
                list.join(", ")
            );
        }
        for c in &self.caveats {
            s += &format!("Caveat: {c}\n");
        }
        let skipped: Vec<String> = self
            .rows
            .iter()
            .flat_map(|r| {
                r.cells.iter().zip(&self.labels).filter_map(move |(c, l)| match c {
                    Cell::Skipped(why) => Some(format!("{} on {l}: {why}", r.id)),
                    _ => None,
                })
            })
            .collect();
        for s2 in skipped {
            s += &format!("Skipped: {s2}\n");
        }
        s
    }

    /// A plain-text table with aligned columns.
    pub fn text(&self) -> String {
        let mut table = vec![self.header()];
        table.extend(self.rows.iter().map(|r| self.cells(r, false)));
        let widths: Vec<usize> = (0..table[0].len()).map(|c| table.iter().map(|row| row[c].chars().count()).max().unwrap_or(0)).collect();
        let mut s = String::new();
        for row in &table {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (cell, w))| if i == 0 { format!("{cell:<w$}") } else { format!("{cell:>w$}") })
                .collect();
            s += line.join("  ").trim_end();
            s.push('\n');
        }
        s + &self.footer(false)
    }

    /// A Markdown table.
    pub fn markdown(&self) -> String {
        let header = self.header();
        let mut s = format!("| {} |\n|---|{}\n", header.join(" | "), "---:|".repeat(header.len() - 1));
        for r in &self.rows {
            s += &format!("| {} |\n", self.cells(r, true).join(" | "));
        }
        s + &self.footer(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    #[test]
    fn flags_changes_beyond_noise_only() {
        let a = sample("6.1.0", 80_000.0, 320_000.0);
        let mut b = sample("6.18.44", 80_000.0, 480_000.0);
        b.figures[0].median = 81_000.0; // +1.25%, within noise
        let c = compare(&[a, b], DEFAULT_NOISE);
        assert_eq!(c.labels, ["6.1.0", "6.18.44"]);
        let fork = &c.rows[0].cells[1];
        let Cell::Value { change: Some(ch), .. } = fork else { panic!("{fork:?}") };
        assert!(!ch.beyond_noise);
        let net = &c.rows[1].cells[1];
        let Cell::Value { change: Some(ch), ratio_change: Some(rc), .. } = net else { panic!("{net:?}") };
        assert!(ch.beyond_noise && (ch.fraction - 0.5).abs() < 1e-9);
        assert!(rc.beyond_noise);
        let text = c.text();
        assert!(text.contains("480 µs (+50%!)"), "{text}");
        assert!(c.markdown().contains("(**+50%**)"));
    }

    #[rstest::rstest]
    #[case::within(&[1.0, 1.05], None)]
    #[case::at_the_limit(&[1.10, 0.95], None)]
    #[case::one_above(&[1.0, 1.34], Some(1))]
    #[case::all_above(&[1.2, 1.5], Some(2))]
    fn reports_above_the_floor_are_suspect(#[case] ratios: &[f64], #[case] over: Option<usize>) {
        let old = sample("6.1", 80_000.0, 320_000.0);
        let mut new = sample("6.18", 80_000.0, 320_000.0);
        for (f, r) in new.figures.iter_mut().zip(ratios) {
            f.floor_ns = Some(f.median / r);
            f.ratio_to_floor = Some(*r);
        }
        let c = compare(&[old, new], DEFAULT_NOISE);
        assert!(c.has_floor);
        assert_eq!(c.suspects.first().map(|s| s.over.len()), over);
        let (text, md) = (c.text(), c.markdown());
        assert!(text.contains("×floor 6.18"), "{text}");
        assert_eq!(text.contains("SUSPECT: 6.18: "), over.is_some(), "{text}");
        assert_eq!(md.contains("**SUSPECT**: 6.18"), over.is_some(), "{md}");
        assert_eq!(text.contains("1.34*"), ratios.contains(&1.34), "{text}");
        assert!(!text.contains("SUSPECT: 6.1:"), "the old report has no floor: {text}");
    }

    #[test]
    fn old_reports_have_no_floor_columns() {
        let c = compare(&[sample("a", 80_000.0, 320_000.0), sample("b", 80_000.0, 320_000.0)], DEFAULT_NOISE);
        assert!(!c.has_floor && c.suspects.is_empty());
        assert!(!c.text().contains("floor"), "{}", c.text());
    }

    #[test]
    fn overlapping_intervals_are_noise() {
        let a = sample("a", 80_000.0, 320_000.0);
        let mut b = sample("b", 80_000.0, 352_000.0); // +10%
        b.figures[1].ci_low = 300_000.0;
        let c = compare(&[a, b], DEFAULT_NOISE);
        let Cell::Value { change: Some(ch), .. } = &c.rows[1].cells[1] else { panic!() };
        assert!(!ch.beyond_noise);
    }

    #[test]
    fn skipped_and_missing_are_shown() {
        let a = sample("6.1", 80_000.0, 320_000.0);
        let mut b = sample("6.1", 80_000.0, 320_000.0);
        b.figures.pop();
        b.skipped.push(crate::report::Skipped { id: "clone/net".into(), reason: "no CONFIG_NET_NS".into() });
        b.run.privilege = crate::report::Privilege::UserNamespace;
        let mut c3 = sample("6.6", 80_000.0, 320_000.0);
        c3.figures.pop();
        c3.skipped.clear();
        let c = compare(&[a, b, c3], DEFAULT_NOISE);
        assert_eq!(c.labels, ["6.1", "6.1 #2", "6.6"]);
        assert!(matches!(c.rows[1].cells[1], Cell::Skipped(_)));
        assert_eq!(c.rows[1].cells[2], Cell::Missing);
        let text = c.text();
        assert!(text.contains("Skipped: clone/net on 6.1 #2: no CONFIG_NET_NS"), "{text}");
        assert!(text.contains("Caveat: 6.1 #2 measured as user namespace"), "{text}");
    }
}
