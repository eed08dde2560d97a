//! The bench's settings: what the environment (`NSVERIFY_BENCH_*`) and
//! criterion's command line ask for, and where criterion keeps its output.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::helper;

/// Settings read from the environment.
pub struct Settings {
    /// `NSVERIFY_BENCH_QUICK`: quick mode.
    pub quick: bool,
    /// Criterion samples per benchmark.
    pub sample_size: usize,
    /// Criterion's warm-up time per benchmark.
    pub warm_up: Duration,
    /// Criterion's measurement time per benchmark.
    pub measurement: Duration,
    /// Teardown bursts per kind.
    pub bursts: u32,
    /// Namespaces per teardown burst.
    pub burst_count: u64,
    /// `NSVERIFY_BENCH_REPORT`: where the report goes.
    pub report: Option<PathBuf>,
    /// How the helper is started (`NSVERIFY_BENCH_USERNS`, `NSVERIFY_BENCH_CPU`).
    pub helper: helper::Options,
}

/// Whether environment variable `name` is set to something other than
/// empty or `0`.
pub fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The CPU the helper and the floor share unless NSVERIFY_BENCH_CPU says
/// otherwise: the last one this process may run on. On one CPU both see the
/// same processor (here the two virtual CPUs ran up to 1.6x apart for
/// seconds at a time), and a child starts where its parent waits for it.
fn last_allowed_cpu() -> Option<usize> {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok()?;
    (0..nix::sched::CpuSet::count()).rev().find(|&c| set.is_set(c).unwrap_or(false))
}

impl Settings {
    /// Reads the settings; a malformed value is an error that names it.
    pub fn from_env() -> anyhow::Result<Settings> {
        let quick = env_flag("NSVERIFY_BENCH_QUICK");
        let cpu = match std::env::var("NSVERIFY_BENCH_CPU") {
            Ok(v) if v == "none" => None,
            Ok(v) => Some(v.parse().with_context(|| format!("NSVERIFY_BENCH_CPU={v:?} is neither a CPU number nor \"none\""))?),
            Err(_) => last_allowed_cpu(),
        };
        let (sample_size, warm_up, measurement, bursts, burst_count) = if quick {
            (10, Duration::from_millis(300), Duration::from_millis(900), 1, 300)
        } else {
            (50, Duration::from_secs(2), Duration::from_secs(5), 3, 1000)
        };
        Ok(Settings {
            quick,
            sample_size,
            warm_up,
            measurement,
            bursts,
            burst_count,
            report: std::env::var_os("NSVERIFY_BENCH_REPORT").map(PathBuf::from),
            helper: helper::Options { user_namespace: env_flag("NSVERIFY_BENCH_USERNS"), cpu },
        })
    }
}

/// Criterion's output directory, found as criterion finds it, so that our
/// report lands beside it and its estimates can be read back.
pub fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    let from_cargo = std::env::var_os("CARGO").and_then(|cargo| {
        let out = std::process::Command::new(cargo).args(["metadata", "--format-version", "1", "--no-deps"]).output().ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        Some(PathBuf::from(v.get("target_directory")?.as_str()?))
    });
    from_cargo.unwrap_or_else(|| PathBuf::from("target")).join("criterion")
}

/// Criterion's own median (`new/estimates.json`), ns, where present.
pub fn criterion_estimate(dir: &Path, id: &str) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join(id).join("new/estimates.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("median")?.get("point_estimate")?.as_f64()
}

/// Criterion's mode from the command line: `cargo bench` passes `--bench`;
/// `cargo test --benches` passes nothing and criterion then runs each
/// benchmark once as a test. Also the FILTER argument, if any.
pub struct Args {
    /// `--bench` without `--test`, `--list` or `--profile-time`: benchmarks run.
    pub benchmarking: bool,
    /// `--list`: criterion only prints the ids; nothing is run.
    pub listing: bool,
    /// Criterion's FILTER (the first argument that is not an option).
    pub filter: Option<String>,
}

/// Criterion's mode and FILTER from this process's command line.
pub fn parse_args() -> Args {
    const WITH_VALUE: [&str; 17] = [
        "-s",
        "--save-baseline",
        "-b",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--plotting-backend",
        "--output-format",
        "--profile-time",
        "--format",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    let has = |f: &str| args.iter().any(|a| a == f);
    let mut filter = None;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if WITH_VALUE.contains(&a.as_str()) || a == "-c" || a == "--color" {
            i += 1;
        } else if !a.starts_with('-') && filter.is_none() {
            filter = Some(a.clone());
        }
        i += 1;
    }
    Args { benchmarking: has("--bench") && !has("--test") && !has("--list") && !has("--profile-time"), listing: has("--list"), filter }
}
