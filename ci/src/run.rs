//! The matrix run: workers take kernels in order, each fetching, booting
//! and judging one kernel at a time; per-kernel results land in
//! `<out>/<name>/result.json` next to the files the guest sent.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::apt::Apt;
use crate::arch::Arch;
use crate::cli::RunArgs;
use crate::fetch;
use crate::kbuild;
use crate::matrix::{KernelEntry, Matrix};
use crate::outcome::{apt_for, finish_table, report_unknown, unknown_results, EXIT_INFRASTRUCTURE};
use crate::payload::{self, repo_root, Payload};
use crate::table::{self, KernelResult, Loaded, Status, RUNS};
use crate::vm::{self, VmConfig};

/// Progress lines, stamped with the time since the run started.
pub struct Progress {
    started: Instant,
    lock: Mutex<()>,
}

impl Progress {
    /// Starts the clock.
    pub fn new(started: Instant) -> Progress {
        Progress { started, lock: Mutex::new(()) }
    }

    /// Prints `msg` about `kernel`, stamped.
    pub fn say(&self, kernel: &str, msg: &str) {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        println!("[{:6.1}s] {kernel}: {msg}", self.started.elapsed().as_secs_f64());
    }
}

/// What every worker shares.
pub struct RunContext {
    /// Output directory.
    pub out: PathBuf,
    /// Kernel cache.
    pub cache: PathBuf,
    /// The private apt.
    pub apt: Apt,
    /// Ignore the cache.
    pub refresh: bool,
    /// QEMU settings.
    pub vm: VmConfig,
    /// The initramfs every kernel boots.
    pub initramfs: PathBuf,
    /// Progress output.
    pub progress: Progress,
    /// Whether the guest runs benches too.
    pub bench: bool,
    /// Whether the guest runs the fuzz suite too.
    pub fuzz: bool,
}

/// Runs every entry, `jobs` at a time; results in entry order.
pub fn run_matrix(entries: &[KernelEntry], ctx: &RunContext, jobs: usize) -> Vec<Loaded> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Loaded>>> = Mutex::new(vec![None; entries.len()]);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(entry) = entries.get(i) else { break };
                let loaded = run_kernel(entry, ctx);
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(loaded);
            });
        }
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner()).into_iter().flatten().collect()
}

/// Fetches, boots and judges one kernel; writes `<out>/<name>/result.json`.
fn run_kernel(entry: &KernelEntry, ctx: &RunContext) -> Loaded {
    let dir = ctx.out.join(&entry.name);
    let say = |m: &str| ctx.progress.say(&entry.name, m);
    let mut result = KernelResult::new(&entry.name, &entry.describe(&repo_root()));
    result.accel = ctx.vm.accel.to_string();
    if let Err(e) = boot_kernel(entry, ctx, &dir, &mut result) {
        result.error.get_or_insert(format!("{e:#}"));
    }
    let mut loaded = Loaded { result, reports: Default::default() };
    judge(&mut loaded, &dir, ctx.bench, ctx.fuzz);
    let r = &loaded.result;
    let written = std::fs::create_dir_all(&dir)
        .map_err(anyhow::Error::from)
        .and_then(|()| Ok(std::fs::write(dir.join("result.json"), serde_json::to_string_pretty(r)? + "\n")?));
    if let Err(e) = written {
        say(&format!("could not write result.json: {e:#}"));
    }
    match &r.error {
        Some(e) => {
            say(&format!("INFRASTRUCTURE FAILURE: {e}"));
            for l in r.vm.as_ref().map(|v| v.console_tail.as_slice()).unwrap_or_default() {
                say(&format!("  console| {l}"));
            }
        }
        None => say(&format!(
            "{} in {:.1}s (boot to result; /init at {:.1}s)",
            r.status.word(),
            r.vm.as_ref().map_or(0.0, |v| v.total_s),
            r.vm.as_ref().and_then(|v| v.boot_s).unwrap_or(0.0)
        )),
    }
    loaded
}

/// The fetch and VM phases, filling in `result`; an `Err` is an
/// infrastructure failure.
fn boot_kernel(entry: &KernelEntry, ctx: &RunContext, dir: &Path, result: &mut KernelResult) -> Result<()> {
    let say = |m: &str| ctx.progress.say(&entry.name, m);
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (kernel, seconds) = fetch::ensure_kernel(entry, &ctx.cache, &repo_root(), &ctx.apt, ctx.refresh).context("fetch failed")?;
    result.cached = Some(!kernel.fetched_now);
    result.fetch_s = Some(seconds);
    result.version = Some(kernel.version.clone());
    result.release = Some(kernel.release.clone());
    result.packages = kernel.packages.clone();
    say(&if kernel.fetched_now {
        format!("fetched {} ({}) in {seconds:.1}s", kernel.version, kernel.release)
    } else {
        format!("from cache: {} ({})", kernel.version, kernel.release)
    });
    if let Some(cfg) = kernel.config() {
        std::fs::copy(cfg, dir.join("config"))?;
        result.config = Some("config".into());
    }
    let (image, what) = match entry.arch {
        Arch::Amd64 => vm::boot_image(ctx.vm.accel, kernel.bzimage(), kernel.vmlinux(), kernel.pvh),
        Arch::Arm64 => (kernel.bzimage(), "Image (arm64)"),
    };
    result.boot_image = Some(what.into());
    say(&format!("booting {what} under {}", ctx.vm.accel));
    let initramfs = match kernel.config() {
        Some(cfg) => payload::with_kernel_config(&ctx.initramfs, &cfg, dir)?,
        None => ctx.initramfs.clone(),
    };
    let outcome = vm::run_vm(&ctx.vm, &image, &initramfs, dir, &|m| say(m))?;
    if initramfs != ctx.initramfs {
        let _ = std::fs::remove_file(&initramfs);
    }
    if let Some(guest) = outcome.guest_release.as_ref().filter(|g| !g.is_empty() && **g != kernel.release) {
        say(&format!("note: the guest reports {guest}, the image header said {}", kernel.release));
        result.release = Some(guest.clone());
    }
    result.error = outcome.error.clone();
    result.vm = Some(outcome);
    let console = std::fs::read(dir.join("console.log")).unwrap_or_default();
    result.console_reports = vm::health_reports(&String::from_utf8_lossy(&console));
    Ok(())
}

/// Says which lines of ci/kernel.config (and the architecture's fragment) a
/// kernel of your own does not hold: it still runs, but may skip cases (a
/// namespace kind left out) or halt instead of powering off (no ACPI).
fn note_fragment_gaps(own: &KernelEntry) {
    let Some(config) = &own.config else {
        println!(
            "nsverify-vm: {}: no .config given (--kernel-config): the guest reads the kinds built in from /proc/config.gz, if it has one",
            own.name
        );
        return;
    };
    match kbuild::fragment_gaps(&repo_root(), config, own.arch) {
        Ok((gaps, _)) if gaps.is_empty() => {}
        Ok((gaps, names)) => println!(
            "nsverify-vm: {}: note: {} does not hold {} line(s) of {names}: {}",
            own.name,
            config.display(),
            gaps.len(),
            gaps.join(", ")
        ),
        Err(e) => println!("nsverify-vm: {}: note: could not compare its config with {}: {e:#}", own.name, kbuild::KERNEL_FRAGMENT),
    }
}

/// Loads the runs' reports and decides the kernel's status: infrastructure
/// if anything is missing (a report, an exit code, an exit code other than
/// 0 or 101), cases-failed if a run exited 101 or a record fails the run.
pub fn judge(loaded: &mut Loaded, dir: &Path, bench: bool, fuzz: bool) {
    let r = &mut loaded.result;
    let mut problems = Vec::new();
    let mut failed = false;
    if r.error.is_none() {
        let runs = r.vm.as_ref().map(|v| v.runs.clone()).unwrap_or_default();
        for run in RUNS.iter().map(|(n, _)| *n).chain(fuzz.then_some("fuzz")).chain(bench.then_some("bench")) {
            match runs.get(run).and_then(|x| x.exit) {
                Some(0) => {}
                Some(101) if run != "bench" => failed = true,
                Some(code) => {
                    let out = std::fs::read_to_string(dir.join(format!("{run}.out"))).unwrap_or_default();
                    let tail: Vec<&str> = out.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect();
                    problems.push(format!("{run} run exited with {code} (not 0 or 101): {}", tail.join(" / ")));
                }
                None => problems.push(format!("{run} run sent no exit code")),
            }
            if run == "bench" {
                continue;
            }
            match std::fs::read_to_string(dir.join(format!("{run}.jsonl"))) {
                Ok(text) => match table::parse_report(&text) {
                    Ok(records) => {
                        failed |= records.iter().any(table::Record::fails_run);
                        loaded.reports.insert(run.to_string(), records);
                    }
                    Err(e) => problems.push(format!("{run}.jsonl is not a valid report: {e:#}")),
                },
                Err(_) => problems.push(format!("{run} run sent no report")),
            }
        }
        if !problems.is_empty() {
            r.error = Some(problems.join("; "));
        }
    }
    r.status = if r.error.is_some() {
        Status::Infrastructure
    } else if failed || !r.console_reports.is_empty() {
        Status::CasesFailed
    } else {
        Status::Passed
    };
}

/// `nsverify-vm run`: fetches, boots and runs the suite under each chosen
/// kernel, prints and writes the table; returns the exit code.
pub fn command(matrix: &Matrix, cache: &Path, args: RunArgs) -> Result<u8> {
    let started = Instant::now();
    let own = args.own_kernel(matrix).unwrap_or_else(|e| e.exit());
    args.check_case_bins().unwrap_or_else(|e| e.exit());
    // A kernel of your own runs alone unless kernels are named next to it.
    let (mut entries, unknown) = if own.is_some() && args.kernels.is_empty() { (vec![], vec![]) } else { matrix.select(&args.kernels) };
    report_unknown(&unknown, matrix);
    if let Some(own) = own {
        note_fragment_gaps(&own);
        entries.push(own);
    }
    if entries.is_empty() {
        eprintln!("nsverify-vm: no kernel to run");
        return Ok(EXIT_INFRASTRUCTURE);
    }
    let cpus_host = std::thread::available_parallelism().map_or(1, |n| n.get());
    if entries.iter().any(|e| e.suite.is_some() || e.build.is_some()) {
        println!("nsverify-vm: Debian archive {} (security: {})", matrix.apt.uri, matrix.apt.security_uri);
    }
    // One payload, initramfs and private apt per architecture; the kernels
    // of each run in turn, and the table keeps the matrix's order.
    let mut by_name: Vec<Loaded> = Vec::new();
    let mut accels = Vec::new();
    for arch in Arch::ALL {
        let group: Vec<KernelEntry> = entries.iter().filter(|e| e.arch == arch).cloned().collect();
        if group.is_empty() {
            continue;
        }
        // The architectures run one after the other: each has the host to itself.
        let jobs = args.jobs.unwrap_or(cpus_host).clamp(1, group.len());
        let cpus = args.cpus.unwrap_or((cpus_host / jobs).max(1) as u32).max(1);
        let (loaded, accel) = run_arch(matrix, cache, &args, arch, &group, jobs, cpus, started)?;
        by_name.extend(loaded);
        accels.push(format!("{arch}: {accel}"));
    }
    let mut loaded: Vec<Loaded> =
        entries.iter().filter_map(|e| by_name.iter().position(|l| l.result.name == e.name).map(|i| by_name.swap_remove(i))).collect();
    loaded.extend(unknown_results(&unknown));
    let code = finish_table(&loaded, &args.out, !unknown.is_empty(), args.full_table)?;
    println!("nsverify-vm: whole matrix in {:.1}s (accel {}); exit code {code}", started.elapsed().as_secs_f64(), accels.join(", "));
    Ok(code)
}

/// Builds the payload and initramfs for `arch` and runs its kernels
/// `group`; returns their results and the accelerator used.
#[allow(clippy::too_many_arguments)]
fn run_arch(
    matrix: &Matrix,
    cache: &Path,
    args: &RunArgs,
    arch: Arch,
    group: &[KernelEntry],
    jobs: usize,
    cpus: u32,
    started: Instant,
) -> Result<(Vec<Loaded>, vm::Accel)> {
    let (mut vm_config, why, scale) = args.guest.vm_for(arch, cpus, args.timeout);
    vm_config.append = args.append.clone();
    let accel = vm_config.accel;
    println!(
        "nsverify-vm: {} {arch} kernel(s), {jobs} at a time, {cpus} vCPU and {} MiB each; accel {accel} ({why}); case deadlines x{scale}; {}s per kernel",
        group.len(),
        args.guest.memory,
        vm_config.timeout.as_secs()
    );
    let apt = apt_for(matrix, group, cache, arch);
    let payload = Payload {
        arch,
        tools: payload::guest_tools(&apt, cache, arch)?,
        case_bin: match args.case_bin.iter().find(|(a, _)| *a == arch) {
            Some((_, p)) => p.clone(),
            None => payload::build_case_binary(args.release, arch)?,
        },
        case_args: args.case_args.clone(),
        bench: match (&args.bench_bin, args.benches) {
            (Some(p), _) if arch == Arch::Amd64 => Some(p.clone()),
            (Some(_), _) | (None, true) => Some(payload::build_bench_binary(arch)?),
            (None, false) => None,
        }
        .map(|b| (b, if args.bench_arg.is_empty() { vec!["--bench".to_string()] } else { args.bench_arg.clone() })),
        fuzz: if args.fuzz { Some(payload::build_fuzz_binary(args.release, arch)?) } else { None },
        timeout_scale: scale,
        guest_env: args.guest.guest_env.clone(),
    };
    let work = args.out.join(if arch == Arch::Amd64 { "initramfs".to_string() } else { format!("initramfs-{arch}") });
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let initramfs = payload.build_initramfs(&work)?;
    println!(
        "nsverify-vm: {arch} case binary {}; initramfs {} ({:.1} MB)",
        payload.case_bin.display(),
        initramfs.display(),
        std::fs::metadata(&initramfs)?.len() as f64 / 1e6
    );
    let ctx = RunContext {
        out: args.out.clone(),
        cache: cache.to_path_buf(),
        apt,
        refresh: args.refresh,
        vm: vm_config,
        initramfs,
        progress: Progress::new(started),
        bench: payload.bench.is_some(),
        fuzz: payload.fuzz.is_some(),
    };
    Ok((run_matrix(group, &ctx, jobs), accel))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::{Phase, RunResult, VmOutcome};

    fn finished(runs: &[(&str, i32)]) -> Loaded {
        let mut result = KernelResult::new("k", "sid/linux-image-amd64");
        result.vm = Some(VmOutcome {
            phase: Phase::Done,
            guest_release: None,
            boot_s: Some(1.0),
            total_s: 2.0,
            runs: runs.iter().map(|(n, c)| (n.to_string(), RunResult { exit: Some(*c), at_s: 1.0 })).collect(),
            error: None,
            console_tail: vec![],
            halted: false,
        });
        Loaded { result, reports: Default::default() }
    }

    #[test]
    fn verdicts_from_exit_codes_and_reports() {
        let dir = std::env::temp_dir().join(format!("nsverify-judge-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let line =
            |o: &str| format!("{{\"id\":\"a\",\"claims\":[],\"outcome\":\"{o}\",\"reason\":\"\",\"kernel\":\"k\",\"duration_ms\":1}}\n");
        std::fs::write(dir.join("root.jsonl"), line("pass")).unwrap();
        std::fs::write(dir.join("unprivileged.jsonl"), line("fail")).unwrap();

        let mut l = finished(&[("root", 0), ("unprivileged", 101)]);
        judge(&mut l, &dir, false, false);
        assert_eq!(l.result.status, Status::CasesFailed);

        let mut l = finished(&[("root", 0), ("unprivileged", 127)]);
        judge(&mut l, &dir, false, false);
        assert_eq!(l.result.status, Status::Infrastructure, "127 is not a verdict");

        let mut l = finished(&[("root", 0), ("unprivileged", 0)]);
        judge(&mut l, &dir, true, false);
        assert!(l.result.error.as_deref().unwrap().contains("bench run sent no exit code"));

        let mut l = finished(&[("root", 0), ("unprivileged", 0)]);
        std::fs::write(dir.join("unprivileged.jsonl"), line("pass")).unwrap();
        l.result.console_reports = vec!["WARNING: CPU: 0 PID: 1 at kernel/ucount.c:10".into()];
        judge(&mut l, &dir, false, false);
        assert_eq!(l.result.status, Status::CasesFailed, "a console report fails the kernel's run (K1)");

        std::fs::remove_file(dir.join("unprivileged.jsonl")).unwrap();
        let mut l = finished(&[("root", 0), ("unprivileged", 0)]);
        judge(&mut l, &dir, false, false);
        assert!(l.result.error.as_deref().unwrap().contains("unprivileged run sent no report"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
