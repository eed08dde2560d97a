//! `cargo bench -p nsverify-benches`: criterion benchmarks of clone, unshare
//! and setns for every namespace kind, timed by a single-threaded helper,
//! plus teardown bursts, a fidelity check, and one JSON report per run.
//!
//! Environment (see benches/README.md):
//! - `NSVERIFY_BENCH_QUICK=1`: 10 samples, short budgets (the suite in
//!   about a minute and a half).
//! - `NSVERIFY_BENCH_REPORT=path`: where to write the JSON report (default
//!   `<target>/nsverify-bench/<uname -r>.json`, with a `.md` beside it).
//! - `NSVERIFY_BENCH_CPU=n`: pin the helper to CPU n.
//! - `NSVERIFY_BENCH_USERNS=1`: measure in a fresh user namespace even as root.
//! - `NSVERIFY_BENCH_FLOOR_ITERS=n`: floor iterations before each criterion sample.

#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context};
use benches::floor;
use benches::helper::{self, Helper};
use benches::ops::{self, Bench, Operation, FORK_ID, GROUPS};
use benches::report::{self, Report, Run, Skipped};
use benches::settings::{criterion_dir, criterion_estimate, parse_args, Args, Settings};
use benches::suite::{self, Sample};
use criterion::Criterion;
use harness::probe::KernelVersion;
use harness::trace::Snapshot;
use harness::Kind;

/// Operations whose criterion median is checked against a minimal loop.
const FIDELITY: [&str; 5] = ["baseline/fork", "clone/net", "unshare_fresh/uts", "unshare_repeated/uts", "setns/net"];

/// Batches of the minimal loop per fidelity check.
const FIDELITY_BATCHES: u32 = 10;

/// Skip reason of benchmarks left out by criterion's FILTER.
const FILTERED: &str = "not run: excluded by the command-line filter";

/// Iterations for the probe run that checks an operation works here.
fn probe_iters(op: Operation) -> u64 {
    match op {
        Operation::NullSyscall => 10_000,
        Operation::SetnsToggle { .. } => 1000,
        _ => 8,
    }
}

struct Suite {
    settings: Settings,
    args: Args,
    helper: Rc<RefCell<Helper>>,
    figures: Vec<report::Figure>,
    skipped: Vec<Skipped>,
    fidelity: Vec<report::Fidelity>,
    criterion_dir: PathBuf,
    /// Criterion's median sample size of the fork baseline.
    fork_batch: Option<u64>,
    /// The floor server (`None` if it could not start: the reason was
    /// printed), its iterations per request, and its answers so far.
    floor: Option<Rc<RefCell<floor::Server>>>,
    floor_iters: u64,
    floor_passes: Vec<Vec<floor::Line>>,
    /// Per figure id, its samples' ratios to the floor answers before them.
    sample_ratios: Vec<(String, Vec<f64>)>,
}

impl Suite {
    fn skip(&mut self, id: String, reason: String) {
        if !reason.starts_with(FILTERED) {
            eprintln!("nsverify-bench: {id} skipped: {reason}");
        }
        self.skipped.push(Skipped { id, reason });
    }

    /// Whether criterion's FILTER (a regex) may select `id`: a plain
    /// substring is decided here, anything else is left to criterion.
    fn selected(&self, id: &str) -> bool {
        match &self.args.filter {
            Some(f) if !f.contains(|c: char| "\\.*+?()[]{}|^$".contains(c)) => id.contains(f.as_str()),
            _ => true,
        }
    }

    fn run_bench(&mut self, group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>, bench: &Bench) {
        let id = bench.id();
        if !self.selected(&id) {
            return self.skip(id, FILTERED.into());
        }
        // A short probe run first: an operation the kernel refuses here is
        // skipped with its errno instead of failing inside criterion.
        if !self.args.listing {
            let probe = self.helper.borrow_mut().measure(bench.op, probe_iters(bench.op));
            if let Err(e) = probe {
                return self.skip(id, format!("the operation fails here: {e}"));
            }
        }
        // Criterion sizes its loops from the wall time of each iter_custom
        // call, so untimed work per iteration (a fresh child's fork) costs
        // iterations, not wall time: the budgets need no scaling.
        let (warm, measure) = (self.settings.warm_up, self.settings.measurement);
        group.warm_up_time(warm).measurement_time(measure);
        let samples: Rc<RefCell<Vec<Sample>>> = Rc::default();
        let failure: Rc<RefCell<Option<String>>> = Rc::default();
        let (helper, op) = (self.helper.clone(), bench.op);
        let (s, f) = (samples.clone(), failure.clone());
        // The floor of this figure, a few iterations right before each call
        // criterion makes: both are measured in the same seconds (floor
        // passes before and after each group saw the machine's speed move
        // by up to 1.9x between them).
        let floor = self.floor.clone().filter(|_| self.args.benchmarking);
        let floor_lines: Rc<RefCell<Vec<floor::Line>>> = Rc::default();
        let (fl, floor_iters, floor_id) = (floor_lines.clone(), floor::request_iters(&id, self.floor_iters), id.clone());
        group.bench_function(bench.name.as_str(), move |b| {
            b.iter_custom(|iters| {
                if f.borrow().is_some() {
                    return Duration::from_nanos(1);
                }
                if let Some(server) = &floor {
                    match server.borrow_mut().ask(&floor_id, floor_iters) {
                        Ok(line) => fl.borrow_mut().push(line),
                        Err(e) => {
                            fl.borrow_mut().push(floor::Line::Skipped { id: floor_id.clone(), reason: format!("the floor server: {e}") })
                        }
                    }
                }
                match helper.borrow_mut().measure(op, iters) {
                    Ok(measured) => {
                        s.borrow_mut().push(Sample { iters, measured });
                        Duration::from_nanos(measured.measured_ns.max(1))
                    }
                    Err(e) => {
                        *f.borrow_mut() = Some(e.to_string());
                        Duration::from_nanos(1)
                    }
                }
            })
        });
        let samples = samples.borrow().clone();
        // Criterion's warm-up calls come first, then one call per sample:
        // the floor answers that count are those of the samples, each
        // paired with the sample that followed it.
        let mut lines = floor_lines.take();
        let lines = lines.split_off(lines.len().saturating_sub(self.settings.sample_size));
        let per_iteration: Vec<f64> = suite::analysed(&samples, self.settings.sample_size)
            .iter()
            .map(|s| s.measured.measured_ns as f64 / s.iters.max(1) as f64)
            .collect();
        self.sample_ratios.push((id.clone(), floor::sample_ratios(&per_iteration, &lines)));
        self.floor_passes.push(lines);
        if samples.is_empty() {
            return self.skip(id, FILTERED.into());
        }
        if let Some(why) = failure.borrow_mut().take() {
            self.skip(id.clone(), format!("failed during measurement: {why}"));
        } else if self.args.benchmarking {
            self.figures.extend(suite::figures_for(bench, suite::analysed(&samples, self.settings.sample_size)));
        }
        self.drain(&op.async_teardown());
        if id == FORK_ID {
            self.fork_batch = Some(suite::median_iters(suite::analysed(&samples, self.settings.sample_size)));
        }
        if self.args.benchmarking && FIDELITY.contains(&id.as_str()) {
            let per_batch = suite::median_iters(suite::analysed(&samples, self.settings.sample_size));
            let batches = self.minimal_loop(op, per_batch);
            self.record_fidelity(&id, per_batch, batches);
        }
    }

    fn drain(&mut self, kinds: &[Kind]) {
        if kinds.is_empty() {
            return;
        }
        match self.helper.borrow_mut().drain(kinds) {
            Ok(d) if !d.complete => eprintln!("nsverify-bench: {kinds:?} backlog still pending after {:.0} ms", d.ms),
            Ok(_) => {}
            Err(e) => eprintln!("nsverify-bench: draining {kinds:?}: {e}"),
        }
    }

    /// The minimal loop: the same operation in batches as large as
    /// criterion's median sample, timed by the helper with nothing of
    /// criterion around, right after criterion's run (and a drain).
    fn minimal_loop(&mut self, op: Operation, per_batch: u64) -> Result<Vec<benches::helper::Measured>, String> {
        let batches = self.helper.borrow_mut().batches(op, per_batch, FIDELITY_BATCHES).map_err(|e| e.to_string());
        self.drain(&op.async_teardown());
        batches
    }

    fn record_fidelity(&mut self, id: &str, per_batch: u64, batches: Result<Vec<benches::helper::Measured>, String>) {
        let Some(criterion_ns) = self.figures.iter().find(|f| f.id == id).map(|f| f.median) else { return };
        match batches.map(|b| suite::minimal_median(&b, per_batch)) {
            Ok(Some(minimal)) => {
                let estimate = criterion_estimate(&self.criterion_dir, id);
                self.fidelity.push(suite::fidelity(id, criterion_ns, minimal, estimate));
            }
            Ok(None) => {}
            Err(e) => self.skip(format!("fidelity/{id}"), format!("minimal loop failed: {e}")),
        }
    }

    /// The fork baseline again at the end of the run, by the minimal loop
    /// with the batch size criterion used: its ratio to the first fork
    /// figure shows how much the machine drifted during the run (ratios of
    /// later benchmarks are only as good as that).
    fn fork_at_end(&mut self, fork_batch: Option<u64>) {
        let id = format!("{FORK_ID}_at_end");
        let Some(per_batch) = fork_batch else {
            return self.skip(id, "baseline/fork did not run".into());
        };
        match self.minimal_loop(Operation::Clone { flags: harness::flags::NsFlags::EMPTY, clone3: false }, per_batch) {
            Ok(batches) => {
                let values: Vec<f64> = batches.iter().map(|m| m.measured_ns as f64 / per_batch as f64).collect();
                if let Some(s) = benches::stats::summarize(&values) {
                    self.figures.push(report::Figure {
                        id,
                        what: "the fork baseline again at the end of the run (minimal loop): drift of the machine".into(),
                        unit: report::Unit::Ns,
                        median: s.median,
                        ci_low: s.ci_low,
                        ci_high: s.ci_high,
                        ratio_to_fork: None,
                        samples: s.samples,
                        iterations: per_batch * s.samples as u64,
                        source: report::Source::Minimal,
                        floor_ns: None,
                        ratio_to_floor: None,
                    });
                }
            }
            Err(e) => self.skip(id, format!("minimal loop failed: {e}")),
        }
    }

    fn teardown(&mut self) {
        for kind in ops::ASYNC_TEARDOWN {
            let id = format!("teardown/{kind}");
            if !self.selected(&id) {
                self.skip(id, FILTERED.into());
                continue;
            }
            eprintln!("nsverify-bench: {id}: {} burst(s) of {}", self.settings.bursts, self.settings.burst_count);
            let mut bursts = Vec::new();
            for _ in 0..self.settings.bursts {
                let burst = self.helper.borrow_mut().burst(kind, self.settings.burst_count);
                match burst {
                    Ok(b) => bursts.push(b),
                    Err(e) => {
                        self.skip(id.clone(), format!("burst failed: {e}"));
                        break;
                    }
                }
            }
            if bursts.iter().any(|b| !b.drained) {
                eprintln!("nsverify-bench: {id}: a backlog did not drain before the deadline");
            }
            self.figures.extend(suite::burst_figures(kind, self.settings.burst_count, &bursts));
        }
    }
}

fn default_report_path(criterion_dir: &Path, release: &str) -> PathBuf {
    criterion_dir.parent().unwrap_or(Path::new(".")).join("nsverify-bench").join(format!("{release}.json"))
}

fn main() -> ExitCode {
    // Started again as the measuring helper: serve it, nothing else.
    if let Some(code) = helper::serve_if_asked() {
        return code;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nsverify-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    let started_unix = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let settings = Settings::from_env()?;
    let load_at_start = benches::machine::load_average();
    let args = parse_args();
    let before = Snapshot::take();
    // Start the helper first, while this process is single-threaded.
    let helper = Helper::start(settings.helper).context("starting the measuring helper")?;
    let privilege = helper.privilege();
    let criterion_dir = criterion_dir();
    let mut criterion = Criterion::default().without_plots().output_directory(&criterion_dir);
    if settings.quick {
        criterion = criterion.nresamples(20_000);
    }
    let mut criterion = criterion.configure_from_args();
    let (benches, skips) = ops::catalogue(KernelVersion::running());
    let floor_iters = match std::env::var("NSVERIFY_BENCH_FLOOR_ITERS") {
        Ok(v) => v.parse().with_context(|| format!("NSVERIFY_BENCH_FLOOR_ITERS={v:?} is not a number"))?,
        Err(_) => {
            if settings.quick {
                floor::PER_SAMPLE.1
            } else {
                floor::PER_SAMPLE.0
            }
        }
    };
    if floor_iters < 2 {
        bail!("NSVERIFY_BENCH_FLOOR_ITERS={floor_iters}: at least 2");
    }
    // The floor server, in the helper's privilege mode and CPU.
    let mut floor_args = Vec::new();
    floor_args.extend((privilege == report::Privilege::UserNamespace).then(|| "--userns".to_string()));
    floor_args.extend(settings.helper.cpu.iter().flat_map(|c| ["--cpu".to_string(), c.to_string()]));
    let floor = match args.benchmarking.then(|| floor::Server::start(floor::EXE, &floor_args)) {
        Some(Ok(server)) => Some(Rc::new(RefCell::new(server))),
        Some(Err(e)) => {
            eprintln!("nsverify-bench: no floor in this run: {e}");
            None
        }
        None => None,
    };
    let mut suite = Suite {
        helper: Rc::new(RefCell::new(helper)),
        figures: Vec::new(),
        skipped: Vec::new(),
        fidelity: Vec::new(),
        criterion_dir: criterion_dir.clone(),
        fork_batch: None,
        floor,
        floor_iters,
        sample_ratios: Vec::new(),
        floor_passes: Vec::new(),
        settings,
        args,
    };
    for s in skips {
        suite.skip(s.id, s.reason);
    }
    for name in GROUPS {
        let mut group = criterion.benchmark_group(name);
        group.sample_size(suite.settings.sample_size);
        for bench in benches.iter().filter(|b| b.group == name) {
            suite.run_bench(&mut group, bench);
        }
        group.finish();
    }
    if suite.args.benchmarking {
        suite.teardown();
        let fork_batch = suite.fork_batch;
        suite.fork_at_end(fork_batch);
    }
    let Suite { settings, args, helper, mut figures, skipped, fidelity, floor, floor_passes, sample_ratios, .. } = suite;
    // The floor server ends at end-of-file and is reaped.
    drop(floor);
    let helper = Rc::try_unwrap(helper).map_err(|_| anyhow::anyhow!("helper still borrowed"))?.into_inner();
    helper.stop().context("stopping the measuring helper")?;
    let leftovers = Snapshot::take().differences(&before);
    for l in &leftovers {
        eprintln!("nsverify-bench: left behind: {l}");
    }
    criterion.final_summary();
    if !args.benchmarking {
        if !leftovers.is_empty() {
            bail!("the run left {} trace(s) behind", leftovers.len());
        }
        return Ok(());
    }
    suite::add_ratios(&mut figures);
    let kernel = benches::machine::kernel();
    let path = settings.report.clone().unwrap_or_else(|| default_report_path(&criterion_dir, &kernel.release));
    let mut report = Report {
        format: report::FORMAT.into(),
        version: report::VERSION,
        kernel,
        machine: benches::machine::machine(),
        run: Run {
            privilege,
            quick: settings.quick,
            started_unix,
            wall_seconds: started.elapsed().as_secs_f64(),
            sample_size: settings.sample_size,
            helper_cpu: settings.helper.cpu,
            drain_method: "after each benchmark creating net or ipc namespaces: a marker namespace released in a fresh user \
                           namespace, polled with the limit at 1 until creation no longer fails with ENOSPC"
                .into(),
            load_average: [load_at_start, benches::machine::load_average()],
        },
        figures,
        skipped,
        fidelity,
        leftovers,
        floor: floor::combine(&floor_passes),
    };
    for entry in &mut report.floor {
        if let Some((_, ratios)) = sample_ratios.iter().find(|(id, _)| *id == entry.id) {
            entry.sample_ratios = ratios.clone();
        }
    }
    floor::apply(&mut report);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&path, report.to_json()).with_context(|| format!("writing {}", path.display()))?;
    let table = format!("{}\n{}", suite::markdown(&report), floor::table(&report));
    std::fs::write(path.with_extension("md"), &table).with_context(|| format!("writing {}", path.with_extension("md").display()))?;
    println!("\n{table}\nnsverify-bench: report written to {} ({:.0} s)", path.display(), report.run.wall_seconds);
    if !report.leftovers.is_empty() {
        bail!("the run left {} trace(s) behind", report.leftovers.len());
    }
    Ok(())
}
