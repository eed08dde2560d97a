//! The independent floor (issue 14): `floor/floor.c`, the tightest loop for
//! each operation in plain C, built by `build.rs` and embedded in the bench.
//! This module runs it from a memfd as a server ([`Server`]) that the bench
//! asks for a few iterations of a figure right before each criterion sample
//! (by hand it also runs once over a list of figures). It
//! reads the output (one JSON line per figure id), puts the floor next to
//! criterion's figure (`floor_ns`, `ratio_to_floor`) and prints the comparison.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Command;

use serde::Deserialize;

use crate::report::{FloorEntry, Report};
use crate::suite::fmt_with_unit;

mod server;
pub use server::Server;

/// The floor executable, built by build.rs from `floor/floor.c` (empty
/// without a C compiler): embedded so that the bench executable stays
/// self-contained (the VM matrix copies it alone).
pub const EXE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/nsverify-floor"));

/// How build.rs linked [`EXE`] (static, or dynamic with which libraries).
pub const LINK: &str = env!("NSVERIFY_FLOOR_LINK");

/// A figure more than this many times its floor is suspect: the benches
/// then measure their own overhead as much as the kernel (issue 14).
pub const SUSPECT_RATIO: f64 = 1.10;

/// Iterations of a [`Server`] request, one request before each call
/// criterion makes, of which those before its samples count: full and quick
/// mode, so 50 × 40 = 2000 and 10 × 30 = 300 timings per figure.
pub const PER_SAMPLE: (u64, u64) = (40, 30);

/// Children a repeated-unshare floor request spans at least: a call's cost
/// differs from child to child (the floor's `unshare_repeated/mnt` medians
/// fell at about 38 or 60 µs per child, on this machine), so a request of
/// one child paired with a criterion sample of many was a coin toss.
const REPEATED_CHILDREN: u64 = 4;

/// Iterations of a [`Server`] request for figure `id`, `base` by default:
/// repeated unshares span at least [`REPEATED_CHILDREN`] children of 32
/// calls (24 for user), as the helper's samples do. Not net and ipc: their
/// namespaces are freed by kernel workers after the request, and a larger
/// request's backlog slowed the criterion sample after it (`unshare_repeated/net`
/// at 0.77 of the floor once in four runs with 128 calls a request).
pub fn request_iters(id: &str, base: u64) -> u64 {
    match id.strip_prefix("unshare_repeated/") {
        Some("net" | "ipc") | None => base,
        Some("user") => base.max(REPEATED_CHILDREN * 24),
        Some(_) => base.max(REPEATED_CHILDREN * 32),
    }
}

/// Whether a ratio to the floor is beyond [`SUSPECT_RATIO`].
pub fn suspect(ratio_to_floor: f64) -> bool {
    ratio_to_floor > SUSPECT_RATIO
}

/// Why the floor gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum FloorError {
    /// The build had no C compiler: the embedded executable is empty.
    #[error("the floor was not built (no working C compiler when the bench was built)")]
    NotBuilt,
    /// It could not be written or started.
    #[error("running the floor: {0}")]
    Io(#[from] std::io::Error),
    /// It ended badly.
    #[error("the floor exited with {status}: {stderr}")]
    Failed {
        /// Exit status.
        status: std::process::ExitStatus,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A line of its output is not what it prints.
    #[error("floor output line {line}: {why}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
}

/// One operation of one floor pass.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// Measured: per-operation figures in ns.
    Measured {
        /// Figure id (`unshare_fresh/uts`).
        id: String,
        /// Samples.
        n: u64,
        /// Median.
        median_ns: f64,
        /// 10th percentile.
        p10_ns: f64,
        /// 90th percentile.
        p90_ns: f64,
        /// Every timing (per operation, ns), from a [`Server`]; empty from a run by hand.
        samples_ns: Vec<f64>,
    },
    /// Not measured, with the reason.
    Skipped {
        /// Figure id.
        id: String,
        /// Why.
        reason: String,
    },
}

impl Line {
    /// The figure id.
    pub fn id(&self) -> &str {
        match self {
            Line::Measured { id, .. } | Line::Skipped { id, .. } => id,
        }
    }
}

#[derive(Deserialize)]
struct RawLine {
    id: Option<String>,
    floor: Option<String>,
    skipped: Option<String>,
    n: Option<u64>,
    median_ns: Option<f64>,
    p10_ns: Option<f64>,
    p90_ns: Option<f64>,
    #[serde(default)]
    samples_ns: Vec<f64>,
}

/// Parses the floor's standard output: a header line, then one line per
/// operation. Blank lines are ignored; anything else is an error.
pub fn parse(text: &str) -> Result<Vec<Line>, FloorError> {
    let mut out = Vec::new();
    for (i, text) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let err = |why: String| FloorError::Parse { line: i + 1, why };
        let raw: RawLine = serde_json::from_str(text).map_err(|e| err(format!("{e}: {text:?}")))?;
        if raw.floor.is_some() {
            continue;
        }
        let id = raw.id.ok_or_else(|| err("no \"id\"".into()))?;
        out.push(match (raw.skipped, raw.n, raw.median_ns, raw.p10_ns, raw.p90_ns) {
            (Some(reason), ..) => Line::Skipped { id, reason },
            (None, Some(n), Some(median_ns), Some(p10_ns), Some(p90_ns)) if median_ns.is_finite() && median_ns > 0.0 => {
                let samples_ns = raw.samples_ns;
                if !samples_ns.is_empty() && samples_ns.len() as u64 != n {
                    return Err(err(format!("{id}: {} samples for n = {n}", samples_ns.len())));
                }
                Line::Measured { id, n, median_ns, p10_ns, p90_ns, samples_ns }
            }
            _ => return Err(err(format!("{id}: neither \"skipped\" nor a positive median with n, p10 and p90"))),
        });
    }
    Ok(out)
}

/// The passes (or server answers) of each figure id combined: `floor_ns` is
/// the median of every timing where the answers carry them (a [`Server`]),
/// else the mean of the passes' medians; a pass that skipped leaves its
/// reason.
pub fn combine(passes: &[Vec<Line>]) -> Vec<FloorEntry> {
    let mut out: Vec<FloorEntry> = Vec::new();
    let mut pooled: Vec<Vec<f64>> = Vec::new();
    for line in passes.iter().flatten() {
        let id = match line {
            Line::Measured { id, .. } | Line::Skipped { id, .. } => id,
        };
        let i = match out.iter().position(|e| e.id == *id) {
            Some(i) => i,
            None => {
                out.push(FloorEntry { id: id.clone(), ..FloorEntry::default() });
                pooled.push(Vec::new());
                out.len() - 1
            }
        };
        let e = &mut out[i];
        match line {
            Line::Measured { n, median_ns, p10_ns, p90_ns, samples_ns, .. } => {
                pooled[i].extend(samples_ns);
                e.pass_medians_ns.push(*median_ns);
                e.p10_ns.push(*p10_ns);
                e.p90_ns.push(*p90_ns);
                e.iterations += n;
            }
            Line::Skipped { reason, .. } => e.skipped = Some(reason.clone()),
        }
    }
    for (e, samples) in out.iter_mut().zip(pooled) {
        let m = &e.pass_medians_ns;
        e.floor_ns = crate::stats::median(&samples).or_else(|| (!m.is_empty()).then(|| m.iter().sum::<f64>() / m.len() as f64));
    }
    out
}

/// The paired ratios of one figure: each criterion sample's time per
/// iteration (`per_iteration`, in call order) over the median of the floor
/// answer taken right before it (`answers`, the same calls). Skipped
/// answers pair with nothing. Both lists end with the same call; the
/// longer one's extra head is ignored.
pub fn sample_ratios(per_iteration: &[f64], answers: &[Line]) -> Vec<f64> {
    let n = per_iteration.len().min(answers.len());
    let (values, answers) = (&per_iteration[per_iteration.len() - n..], &answers[answers.len() - n..]);
    values
        .iter()
        .zip(answers)
        .filter_map(|(v, a)| match a {
            Line::Measured { median_ns, .. } if *median_ns > 0.0 && v.is_finite() => Some(v / median_ns),
            _ => None,
        })
        .collect()
}

/// Sets `floor_ns` and `ratio_to_floor` of every figure (criterion's, not
/// their parts) that has a floor. The ratio is the median of the figure's
/// paired sample ratios where it has them: each sample against the floor
/// measured within a second of it, so that the machine's speed changing
/// during a figure (here by up to 1.9× within seconds) cancels out. Without
/// them it is `median / floor_ns`.
pub fn apply(report: &mut Report) {
    let floors: BTreeMap<&str, &FloorEntry> = report.floor.iter().map(|e| (e.id.as_str(), e)).collect();
    for f in report.figures.iter_mut().filter(|f| f.source == crate::report::Source::Criterion) {
        let Some(entry) = floors.get(f.id.as_str()) else { continue };
        let Some(floor) = entry.floor_ns else { continue };
        f.floor_ns = Some(floor);
        f.ratio_to_floor = Some(crate::stats::median(&entry.sample_ratios).unwrap_or(f.median / floor));
    }
}

/// The table printed at the end of the run: figure | floor | nsverify | ratio.
pub fn table(report: &Report) -> String {
    let rows: Vec<_> = report.figures.iter().filter_map(|f| Some((f, f.floor_ns?, f.ratio_to_floor?))).collect();
    if rows.is_empty() {
        return String::new();
    }
    let over = rows.iter().filter(|(_, _, r)| suspect(*r)).count();
    let mut s = String::from("| figure | floor | nsverify | ratio |\n|---|---:|---:|---:|\n");
    for (f, floor, ratio) in &rows {
        let mark = if suspect(*ratio) { " **>1.10**" } else { "" };
        s += &format!("| {} | {} | {} | {ratio:.2}{mark} |\n", f.id, fmt_with_unit(f.unit, *floor), fmt_with_unit(f.unit, f.median));
    }
    s += &format!("\n{over} of {} figures above {SUSPECT_RATIO:.2}× the floor (linked {LINK}).\n", rows.len());
    for e in report.floor.iter().filter(|e| e.skipped.is_some()) {
        s += &format!("Floor skipped {}: {}\n", e.id, e.skipped.as_deref().unwrap_or_default());
    }
    s
}

/// The embedded floor `exe` as a command run from memory, with the memfd
/// it runs from, which must stay open until the command is spawned.
fn in_memory(exe: &[u8]) -> Result<(std::fs::File, Command), FloorError> {
    if exe.is_empty() {
        return Err(FloorError::NotBuilt);
    }
    let file = in_memfd(exe)?;
    let command = Command::new(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&file)));
    Ok((file, command))
}

/// `exe` in a memfd, returned as a read-only descriptor (an executable
/// still open for writing cannot be executed: ETXTBSY).
fn in_memfd(exe: &[u8]) -> std::io::Result<std::fs::File> {
    use nix::sys::memfd::{memfd_create, MFdFlags};
    let fd = memfd_create("nsverify-floor", MFdFlags::MFD_CLOEXEC).map_err(std::io::Error::from)?;
    let mut file = std::fs::File::from(fd);
    file.write_all(exe)?;
    let read_only = std::fs::File::open(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&file)))?;
    drop(file);
    Ok(read_only)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    const PASS: &str = r#"{"floor":"nsverify-floor","version":1,"privilege":"root","iters":300}
{"id":"baseline/fork","n":300,"batch":1,"median_ns":80000.0,"p10_ns":70000.0,"p90_ns":90000.0}

{"id":"setns/pid","skipped":"open: No such file or directory"}
"#;

    #[test]
    fn parses_measured_and_skipped_lines() {
        let lines = parse(PASS).unwrap();
        assert_eq!(
            lines,
            [
                Line::Measured {
                    id: "baseline/fork".into(),
                    n: 300,
                    median_ns: 80000.0,
                    p10_ns: 70000.0,
                    p90_ns: 90000.0,
                    samples_ns: vec![]
                },
                Line::Skipped { id: "setns/pid".into(), reason: "open: No such file or directory".into() },
            ]
        );
    }

    #[rstest]
    #[case::not_json("garbage", 1, "expected value")]
    #[case::truncated(r#"{"id":"clone/net","n":3"#, 1, "EOF")]
    #[case::no_id(r#"{"n":3,"median_ns":1.0,"p10_ns":1.0,"p90_ns":1.0}"#, 1, "no \"id\"")]
    #[case::no_median(r#"{"id":"clone/net","n":3}"#, 1, "clone/net: neither")]
    #[case::zero_median(r#"{"id":"clone/net","n":3,"median_ns":0.0,"p10_ns":0.0,"p90_ns":0.0}"#, 1, "positive median")]
    #[case::second_line("{\"floor\":\"x\"}\n[1]", 2, "invalid type")]
    fn refuses_bad_lines(#[case] text: &str, #[case] line: usize, #[case] want: &str) {
        let err = parse(text).unwrap_err();
        assert!(matches!(err, FloorError::Parse { line: l, .. } if l == line), "{err:?}");
        assert!(err.to_string().contains(want), "{err}");
    }

    #[test]
    fn passes_combine_into_the_mean_of_their_medians() {
        let second = PASS.replace("80000.0", "90000.0");
        let floors = combine(&[parse(PASS).unwrap(), parse(&second).unwrap()]);
        assert_eq!(floors[0].id, "baseline/fork");
        assert_eq!(floors[0].floor_ns, Some(85000.0));
        assert_eq!(floors[0].pass_medians_ns, [80000.0, 90000.0]);
        assert_eq!(floors[0].iterations, 600);
        assert_eq!((floors[1].floor_ns, floors[1].skipped.as_deref()), (None, Some("open: No such file or directory")));
    }

    #[rstest]
    #[case::at_floor(80_000.0, 1.0, false)]
    #[case::at_the_limit(88_000.0, 1.1, false)]
    #[case::above(96_000.0, 1.2, true)]
    #[case::below(40_000.0, 0.5, false)]
    fn ratio_and_suspect(#[case] median: f64, #[case] ratio: f64, #[case] is_suspect: bool) {
        let mut r = crate::report::tests::sample("k", median, 320_000.0);
        r.floor = combine(&[parse(PASS).unwrap()]);
        apply(&mut r);
        let got = r.figures[0].ratio_to_floor.unwrap();
        assert!((got - ratio).abs() < 1e-9, "{got}");
        assert_eq!(suspect(got), is_suspect);
        assert_eq!(r.figures[1].floor_ns, None, "clone/net has no floor here");
        let t = table(&r);
        assert_eq!(t.contains("**>1.10**"), is_suspect, "{t}");
        assert!(t.contains("Floor skipped setns/pid"), "{t}");
    }

    #[test]
    fn served_timings_pool_into_their_median() {
        let a = r#"{"id":"setns/uts","n":3,"batch":100,"median_ns":2.0,"p10_ns":1.0,"p90_ns":3.0,"samples_ns":[1.0,2.0,3.0]}"#;
        let b = r#"{"id":"setns/uts","n":2,"batch":100,"median_ns":9.5,"p10_ns":9.0,"p90_ns":10.0,"samples_ns":[9.0,10.0]}"#;
        let floors = combine(&[parse(a).unwrap(), parse(b).unwrap()]);
        // The pooled median (of 1, 2, 3, 9, 10), not the mean of the medians (5.75).
        assert_eq!(floors[0].floor_ns, Some(3.0));
        assert_eq!(floors[0].iterations, 5);
        let short = a.replace("[1.0,2.0,3.0]", "[1.0]");
        assert!(parse(&short).unwrap_err().to_string().contains("1 samples for n = 3"));
    }

    #[test]
    fn the_server_answers_each_request_and_refuses_bad_ones() {
        if EXE.is_empty() {
            return eprintln!("skipped: the floor was not built here");
        }
        let mut server = Server::start(EXE, &[]).unwrap();
        match server.ask("baseline/null_syscall", 3).unwrap() {
            Line::Measured { id, n, samples_ns, .. } => assert_eq!((id.as_str(), n, samples_ns.len()), ("baseline/null_syscall", 3, 3)),
            other => panic!("{other:?}"),
        }
        assert_eq!(server.ask("nope/x", 3).unwrap(), Line::Skipped { id: "nope/x".into(), reason: "no such figure".into() });
        assert!(server.ask("two words", 3).is_err());
        assert!(server.ask("baseline/fork", 1).is_err());
        // Still in step after the refusals.
        assert!(matches!(server.ask("baseline/fork", 2).unwrap(), Line::Measured { n: 2, .. }));
    }

    #[test]
    fn samples_pair_with_the_answers_before_them() {
        let answer = |m: f64| Line::Measured { id: "x/y".into(), n: 3, median_ns: m, p10_ns: m, p90_ns: m, samples_ns: vec![] };
        let skipped = Line::Skipped { id: "x/y".into(), reason: "r".into() };
        // The machine slows 2x half-way, then recovers: the pairs still say
        // 1.0; a skipped answer pairs with nothing.
        let answers = [answer(9.0), answer(10.0), skipped, answer(20.0), answer(10.0)];
        let per_iteration = [9.0, 10.0, 10.0, 20.0, 11.0];
        assert_eq!(sample_ratios(&per_iteration, &answers), [1.0, 1.0, 1.0, 1.1]);
        assert_eq!(sample_ratios(&per_iteration[3..], &answers), [1.0, 1.1], "the longer list's head is ignored");
        assert!(sample_ratios(&[], &answers).is_empty());
    }

    #[test]
    fn paired_ratios_decide_the_figure_s_ratio() {
        let mut r = crate::report::tests::sample("k", 96_000.0, 320_000.0);
        r.floor = combine(&[parse(PASS).unwrap()]);
        r.floor[0].sample_ratios = vec![1.02, 0.98, 1.0];
        apply(&mut r);
        assert_eq!(r.figures[0].ratio_to_floor, Some(1.0), "not 96000 / 80000 = 1.2");
        assert_eq!(r.figures[0].floor_ns, Some(80_000.0));
    }

    #[rstest]
    #[case::fresh("unshare_fresh/mnt", 30, 30)]
    #[case::repeated("unshare_repeated/mnt", 30, 128)]
    #[case::repeated_user("unshare_repeated/user", 30, 96)]
    #[case::more_asked("unshare_repeated/mnt", 200, 200)]
    #[case::freed_by_workers("unshare_repeated/net", 30, 30)]
    fn repeated_requests_span_several_children(#[case] id: &str, #[case] base: u64, #[case] want: u64) {
        assert_eq!(request_iters(id, base), want);
    }

    #[test]
    fn an_unbuilt_floor_says_so() {
        assert!(matches!(Server::start(b"", &[]), Err(FloorError::NotBuilt)));
    }

    #[test]
    fn runs_an_executable_from_memory() {
        let sh = std::fs::read("/bin/sh").unwrap();
        let (_file, mut command) = in_memory(&sh).unwrap();
        let out = command.args(["-c", "echo hi"]).output().unwrap();
        assert_eq!(out.stdout, b"hi\n");
    }
}
