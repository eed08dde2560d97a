//! From the helper's samples to the report's figures: medians, parts,
//! ratios to the fork baseline, teardown bursts and fidelity.

use harness::Kind;

use crate::helper::{Burst, Measured};
use crate::ops::{Bench, FORK_ID};
use crate::report::{Fidelity, Figure, Report, Source, Unit};
use crate::stats::{self, Summary};

/// One criterion sample: a call of `iter_custom`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Iterations criterion asked for.
    pub iters: u64,
    /// What the helper measured.
    pub measured: Measured,
}

/// The samples criterion analysed: its measurement phase makes exactly
/// `sample_size` calls after the warm-up calls, so they are the last ones.
pub fn analysed(samples: &[Sample], sample_size: usize) -> &[Sample] {
    &samples[samples.len().saturating_sub(sample_size)..]
}

fn per_iteration(samples: &[Sample], part: impl Fn(&Measured) -> Option<u64>) -> Option<Summary> {
    let values: Vec<f64> =
        samples.iter().filter(|s| s.iters > 0).filter_map(|s| Some(part(&s.measured)? as f64 / s.iters as f64)).collect();
    stats::summarize(&values)
}

fn figure(id: String, what: String, unit: Unit, s: Summary, iterations: u64, source: Source) -> Figure {
    Figure {
        id,
        what,
        unit,
        median: s.median,
        ci_low: s.ci_low,
        ci_high: s.ci_high,
        ratio_to_fork: None,
        samples: s.samples,
        iterations,
        source,
        floor_ns: None,
        ratio_to_floor: None,
    }
}

/// The figures of one benchmark from the samples criterion analysed: the
/// whole operation (the statistic criterion reports as its median: the
/// median of the per-sample means) and, for clones, the create and
/// exit+reap parts of the same samples.
pub fn figures_for(bench: &Bench, samples: &[Sample]) -> Vec<Figure> {
    let iterations = samples.iter().map(|s| s.iters).sum();
    let mut out = Vec::new();
    if let Some(s) = per_iteration(samples, |m| Some(m.measured_ns)) {
        out.push(figure(bench.id(), bench.what.clone(), Unit::Ns, s, iterations, Source::Criterion));
    }
    for (suffix, what, part) in [
        ("create", "until clone returns", (|m: &Measured| m.create_ns) as fn(&Measured) -> Option<u64>),
        ("exit_reap", "child's _exit until waitid returns", |m: &Measured| m.reap_ns),
    ] {
        if let Some(s) = per_iteration(samples, part) {
            out.push(figure(format!("{}:{suffix}", bench.id()), format!("{}: {what}", bench.what), Unit::Ns, s, iterations, Source::Split));
        }
    }
    out
}

/// The median iteration count of `samples` (at least 1): the batch size
/// of the minimal loop, so that its batches look like criterion's samples.
pub fn median_iters(samples: &[Sample]) -> u64 {
    let mut iters: Vec<u64> = samples.iter().map(|s| s.iters).collect();
    iters.sort_unstable();
    iters.get(iters.len() / 2).copied().unwrap_or(1).max(1)
}

/// The median per operation of the minimal loop's batches, ns.
pub fn minimal_median(batches: &[Measured], iters: u64) -> Option<f64> {
    let values: Vec<f64> = batches.iter().map(|m| m.measured_ns as f64 / iters.max(1) as f64).collect();
    stats::median(&values)
}

/// The fidelity entry for `id`: criterion's median against the minimal loop's.
pub fn fidelity(id: &str, criterion_ns: f64, minimal_ns: f64, criterion_estimate_ns: Option<f64>) -> Fidelity {
    Fidelity { id: id.into(), criterion_ns, minimal_ns, ratio: criterion_ns / minimal_ns, criterion_estimate_ns }
}

/// Figures of teardown bursts of `kind` (one value per burst).
pub fn burst_figures(kind: Kind, count: u64, bursts: &[Burst]) -> Vec<Figure> {
    let summary = |f: fn(&Burst) -> f64| stats::summarize(&bursts.iter().map(f).collect::<Vec<_>>());
    let what = |x: &str| format!("{x}, burst of {count} sequential clone(CLONE_NEW{}) + _exit + waitid", kind.to_string().to_uppercase());
    let mut out = Vec::new();
    type Row = (&'static str, String, Unit, fn(&Burst) -> f64);
    let rows: [Row; 4] = [
        ("per_create", what("time per creation"), Unit::Ns, |b| 1e9 / b.per_second),
        ("throughput", what("creations per second"), Unit::PerSecond, |b| b.per_second),
        ("pending", what("namespaces pending release when the burst ended"), Unit::Count, |b| b.pending as f64),
        ("drain", what("time until none is pending"), Unit::Ms, |b| b.drain_ms),
    ];
    for (suffix, what, unit, f) in rows {
        if let Some(s) = summary(f) {
            out.push(figure(format!("teardown/{kind}/{suffix}"), what, unit, s, count * bursts.len() as u64, Source::Teardown));
        }
    }
    out
}

/// Sets `ratio_to_fork` of every time figure from the run's fork baseline.
pub fn add_ratios(figures: &mut [Figure]) {
    let Some(fork) = figures.iter().find(|f| f.id == FORK_ID).map(|f| f.median) else {
        return;
    };
    for f in figures.iter_mut().filter(|f| f.unit == Unit::Ns) {
        f.ratio_to_fork = Some(f.median / fork);
    }
}

fn fmt_value(unit: Unit, v: f64) -> String {
    let v = unit.display(v);
    match v.abs() {
        x if x >= 100.0 => format!("{v:.0}"),
        x if x >= 10.0 => format!("{v:.1}"),
        x if x >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    }
}

/// A value with its unit, for tables.
pub fn fmt_with_unit(unit: Unit, v: f64) -> String {
    let label = unit.label();
    if label.is_empty() {
        fmt_value(unit, v)
    } else {
        format!("{} {label}", fmt_value(unit, v))
    }
}

/// A ratio to fork, for tables.
pub fn fmt_ratio(r: f64) -> String {
    if r >= 0.1 {
        format!("{r:.2}")
    } else {
        format!("{r:.4}")
    }
}

/// A Markdown table of one report: every figure with its median, 95% CI
/// and ratio to fork, then the skipped operations and the fidelity checks.
pub fn markdown(report: &Report) -> String {
    let mut s = format!(
        "Kernel {} ({}), {} × {}, helper as {}{}, load average {:.2} at start, {:.2} at end, {:.0} s\n\n| Operation | Median | 95% CI | ×fork |\n|---|---:|---:|---:|\n",
        report.kernel.release,
        report.kernel.version,
        report.machine.cpus_online,
        report.machine.cpu_model,
        report.run.privilege,
        if report.run.quick { ", quick mode" } else { "" },
        report.run.load_average[0][0],
        report.run.load_average[1][0],
        report.run.wall_seconds,
    );
    for f in &report.figures {
        s += &format!(
            "| {} | {} | {}–{} | {} |\n",
            f.id,
            fmt_with_unit(f.unit, f.median),
            fmt_value(f.unit, f.ci_low),
            fmt_value(f.unit, f.ci_high),
            f.ratio_to_fork.map(fmt_ratio).unwrap_or_default()
        );
    }
    if !report.skipped.is_empty() {
        s += "\nSkipped:\n";
        for k in &report.skipped {
            s += &format!("- {}: {}\n", k.id, k.reason);
        }
    }
    if !report.fidelity.is_empty() {
        s += "\n| Fidelity | criterion | minimal loop | ratio | criterion's estimates.json |\n|---|---:|---:|---:|---:|\n";
        for f in &report.fidelity {
            s += &format!(
                "| {} | {} | {} | {:.3} | {} |\n",
                f.id,
                fmt_with_unit(Unit::Ns, f.criterion_ns),
                fmt_with_unit(Unit::Ns, f.minimal_ns),
                f.ratio,
                f.criterion_estimate_ns.map(|v| fmt_with_unit(Unit::Ns, v)).unwrap_or_else(|| "—".into())
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Operation;

    fn m(measured_ns: u64, create: Option<u64>) -> Measured {
        Measured { measured_ns, wall_ns: measured_ns, create_ns: create, reap_ns: create.map(|c| measured_ns - c), summed_ns: None }
    }

    #[test]
    fn figures_from_samples() {
        let bench = Bench {
            group: "clone",
            name: "net".into(),
            what: "x".into(),
            op: Operation::Clone { flags: harness::flags::NsFlags::EMPTY, clone3: false },
        };
        let samples: Vec<Sample> = (1..=10).map(|i| Sample { iters: i, measured: m(i * 1000, Some(i * 300)) }).collect();
        let figs = figures_for(&bench, analysed(&samples, 10));
        let ids: Vec<&str> = figs.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["clone/net", "clone/net:create", "clone/net:exit_reap"]);
        assert_eq!((figs[0].median, figs[1].median, figs[2].median), (1000.0, 300.0, 700.0));
        assert_eq!(figs[0].iterations, 55);
        assert_eq!(analysed(&samples, 3).len(), 3);
        assert_eq!(analysed(&samples, 3)[0].iters, 8);
    }

    #[test]
    fn ratios_use_the_fork_baseline() {
        let mut r = crate::report::tests::sample("k", 80_000.0, 320_000.0);
        r.figures.iter_mut().for_each(|f| f.ratio_to_fork = None);
        add_ratios(&mut r.figures);
        assert_eq!(r.figures[1].ratio_to_fork, Some(4.0));
        assert!(markdown(&r).contains("| clone/net | 320 µs |"));
    }

    #[test]
    fn median_iteration_count() {
        let samples: Vec<Sample> = [5, 1, 3].iter().map(|&iters| Sample { iters, measured: m(1, None) }).collect();
        assert_eq!(median_iters(&samples), 3);
        assert_eq!(median_iters(&[]), 1);
    }

    #[test]
    fn bursts() {
        let b = Burst { per_second: 2000.0, pending: 300, drain_ms: 150.0, drained: true };
        let figs = burst_figures(Kind::Net, 1000, &[b]);
        assert_eq!(figs[0].id, "teardown/net/per_create");
        assert_eq!(figs[0].median, 500_000.0);
        assert_eq!(figs[2].median, 300.0);
    }
}
