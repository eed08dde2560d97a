//! `nsverify-vm`: runs nsverify's case suite inside QEMU VMs, one per kernel
//! of the matrix in `ci/kernels.toml`, and builds the case x kernel table.
//! See ci/README.md. Exit codes: see [`EXIT_CODES`].

mod apt;
mod bzimage;
mod fetch;
mod initramfs;
mod kbuild;
mod matrix;
mod mutants;
mod payload;
mod run;
mod table;
mod vm;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use apt::Apt;
use matrix::{KernelEntry, Matrix};
use payload::{repo_root, Payload};
use run::{Progress, RunContext};
use table::{KernelResult, Loaded, Status, Table};
use vm::{Accel, VmConfig};

/// Every case passed or was skipped on every kernel.
const EXIT_PASSED: u8 = 0;
/// Some case failed (or was broken) on some kernel; the infrastructure worked.
const EXIT_CASES_FAILED: u8 = 1;
// 2: bad command line (clap's own exit code).
/// Infrastructure failure on some kernel: unknown kernel name, download,
/// boot, hang, guest or result transfer. Takes precedence over 1.
const EXIT_INFRASTRUCTURE: u8 = 3;

const EXIT_CODES: &str = "Exit codes: 0 all cases passed or skipped on every kernel; \
1 a case failed or was broken on some kernel; 2 bad command line; \
3 infrastructure failure (unknown kernel, download, boot, hang, lost results) on some kernel, even if cases also failed.";

#[derive(Parser)]
#[command(name = "nsverify-vm", version, about = "Run nsverify's case suite in QEMU VMs across the kernel matrix", after_help = EXIT_CODES)]
struct Cli {
    /// The kernel matrix data file.
    #[arg(long, global = true, default_value_os_t = repo_root().join("ci/kernels.toml"))]
    kernels_file: PathBuf,
    /// Kernel cache (downloaded kernels, private apt state).
    #[arg(long, global = true, env = "NSVERIFY_VM_CACHE", default_value_os_t = repo_root().join("target/nsverify-vm/cache"))]
    cache_dir: PathBuf,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List the kernels of the matrix (--json: the GitHub Actions job matrix).
    List {
        /// Print `{"kernel": [names]}` for a GitHub `strategy.matrix`.
        #[arg(long)]
        json: bool,
    },
    /// Download kernels into the cache without booting them.
    Fetch {
        /// Kernels by name (default: all).
        kernels: Vec<String>,
        /// Ignore the cache: fetch the archive's current builds.
        #[arg(long)]
        refresh: bool,
    },
    /// Fetch, boot and run the case suite under each kernel; print the table.
    Run(RunArgs),
    /// Mutant kernels: build the base kernel from Debian's source, prove it
    /// green, then boot every mutant of ci/mutants/mutants.toml and report
    /// which the suite kills (ci/mutants/README.md).
    Mutants(MutantArgs),
    /// Build the table from per-kernel result directories (e.g. CI artifacts).
    Table {
        /// Directory holding one `<kernel>/` result directory per kernel.
        results: PathBuf,
        /// Kernels expected (default: all in the matrix); missing ones count as infrastructure failures.
        kernels: Vec<String>,
        /// Where to write matrix.md and matrix.json (default: RESULTS).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print every row, not only those with something other than pass.
        #[arg(long)]
        full_table: bool,
    },
}

/// `mutants --timeout` unless given.
const DEFAULT_MUTANT_VM_TIMEOUT: u64 = 600;
/// `--boot-timeout` unless given.
const DEFAULT_BOOT_TIMEOUT: u64 = 60;
/// `--memory` unless given.
const DEFAULT_MEMORY_MB: u32 = 1024;

/// How guests are booted, for `run` and `mutants` alike.
#[derive(Args, Clone)]
struct GuestArgs {
    /// Seconds allowed from QEMU start until the guest's /init runs.
    #[arg(long, default_value_t = DEFAULT_BOOT_TIMEOUT)]
    boot_timeout: u64,
    /// auto: KVM only where /dev/kvm is writable and the CPU has vmx/svm.
    #[arg(long, value_enum, default_value_t = Accel::Auto, env = "VM_ACCEL")]
    accel: Accel,
    /// Guest RAM in MiB.
    #[arg(long, default_value_t = DEFAULT_MEMORY_MB)]
    memory: u32,
    /// Multiplies every case deadline (NSVERIFY_TIMEOUT_SCALE); default 4 under TCG, 1 under KVM (4 times that for `mutants --debug-kernel`).
    #[arg(long)]
    timeout_scale: Option<f64>,
    /// Extra KEY=VALUE for the guest's environment (repeatable), e.g. RUST_BACKTRACE=1.
    #[arg(long)]
    guest_env: Vec<String>,
    /// How much slower than a plain kernel the guest kernel runs (1; 4 for
    /// the debug kernel): multiplies the default deadline scale.
    #[arg(skip = 1.0)]
    slowdown: f64,
}

impl GuestArgs {
    /// The debug kernel's settings where the defaults stand: 4 times the
    /// deadline scale, 2 GiB (KASAN's shadow), 300 s to reach /init.
    fn debug_kernel_defaults(&mut self) {
        self.slowdown = 4.0;
        if self.memory == DEFAULT_MEMORY_MB {
            self.memory = 2 * DEFAULT_MEMORY_MB;
        }
        if self.boot_timeout == DEFAULT_BOOT_TIMEOUT {
            self.boot_timeout = 300;
        }
    }

    /// The accelerator (and why), the VM settings and the deadline scale.
    fn vm(&self, cpus: u32, timeout: u64) -> (VmConfig, String, f64) {
        let (accel, why) = vm::choose_accel(self.accel);
        let scale = self.timeout_scale.unwrap_or(self.slowdown * if accel == Accel::Tcg { 4.0 } else { 1.0 });
        let cfg = VmConfig {
            accel,
            memory_mb: self.memory,
            cpus,
            boot_timeout: Duration::from_secs(self.boot_timeout),
            timeout: Duration::from_secs(timeout),
            append: String::new(),
        };
        (cfg, why, scale)
    }
}

#[derive(Args)]
struct MutantArgs {
    /// Mutant ids (default: all); `*` matches any run of characters.
    ids: Vec<String>,
    /// List the mutants and exit.
    #[arg(long)]
    list: bool,
    /// Only check that every patch applies to the pinned source (dry run).
    #[arg(long)]
    check: bool,
    /// Mutant VMs at once (builds run one at a time, in one tree, meanwhile).
    /// 3 on 2 cores: a third VM uses the time the others spend waiting out
    /// release deadlines (the whole list took 35 min, against 39 with 2).
    #[arg(long, short, default_value_t = 3)]
    jobs: usize,
    /// Boots per mutant: a kill counts only when every boot kills it.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Seconds allowed per VM, boot to poweroff (3600 with --debug-kernel).
    #[arg(long, default_value_t = DEFAULT_MUTANT_VM_TIMEOUT)]
    timeout: u64,
    #[command(flatten)]
    guest: GuestArgs,
    /// Instead of the mutants: build the debug variant of the base kernel
    /// (KASAN, lockdep, refcount and list debugging; ci/mutants/debug.config)
    /// and run the case suite and the fuzz suite with --fuzz-cases inputs
    /// per fuzz case; any WARNING, BUG, KASAN or lockdep report on its
    /// console fails the run (claim K1).
    #[arg(long)]
    debug_kernel: bool,
    /// Inputs per fuzz case (NSVERIFY_FUZZ_CASES) for --debug-kernel: its long mode.
    #[arg(long, default_value_t = 300)]
    fuzz_cases: u32,
    /// Boot the case and fuzz binaries of the dev profile instead of
    /// `--release` ones (which take about half the guest time under TCG).
    #[arg(long)]
    debug_binaries: bool,
    /// Output directory: base/, one directory per mutant, mutants.md, mutants.json.
    #[arg(long, default_value_os_t = repo_root().join("target/nsverify-vm/mutants"))]
    out: PathBuf,
    /// Leave the fuzz suite out of the guest (for quick reruns of some cases).
    #[arg(long)]
    no_fuzz: bool,
    /// Arguments for the case binary (filters, --exact, --skip): the base run
    /// and every mutant run only those cases, and `must_fail` patterns that
    /// name none of them are dropped with a note instead of refused.
    #[arg(last = true)]
    case_args: Vec<String>,
}

#[derive(Args)]
struct RunArgs {
    /// Kernels by name (default: all in the matrix).
    kernels: Vec<String>,
    /// VMs at once (default: the number of CPUs).
    #[arg(long, short)]
    jobs: Option<usize>,
    /// Seconds allowed per kernel, boot to poweroff.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    #[command(flatten)]
    guest: GuestArgs,
    /// vCPUs per guest (default: the host's CPUs divided among the parallel VMs).
    #[arg(long)]
    cpus: Option<u32>,
    /// The case binary (default: built with `cargo test -p nsverify-cases --test cases --no-run`).
    #[arg(long, conflicts_with = "release")]
    case_bin: Option<PathBuf>,
    /// Build the case binary with `--release` (about half the guest time under TCG).
    #[arg(long)]
    release: bool,
    /// Also run the benches in each guest, as root after the cases: builds
    /// `cargo bench -p nsverify-benches --bench namespaces --no-run` and runs it
    /// with `--bench` in quick mode (NSVERIFY_BENCH_QUICK=1; override with
    /// --guest-env). Give a larger --timeout: benches under TCG take minutes.
    #[arg(long)]
    benches: bool,
    /// A bench executable to run instead of building one (implies --benches).
    #[arg(long)]
    bench_bin: Option<PathBuf>,
    /// Arguments for the bench executable (repeatable; default `--bench`).
    #[arg(long, allow_hyphen_values = true)]
    bench_arg: Vec<String>,
    /// Also run the fuzz suite in each guest, as root after the cases
    /// (`cargo test -p nsverify-fuzz --test fuzz`): its rows join the table.
    #[arg(long)]
    fuzz: bool,
    /// Extra kernel command line, appended after nsverify's own (e.g. "mitigations=off").
    #[arg(long, default_value = "")]
    append: String,
    /// Output directory: per-kernel results, matrix.md, matrix.json.
    #[arg(long, default_value_os_t = repo_root().join("target/nsverify-vm/out"))]
    out: PathBuf,
    /// Ignore the kernel cache: fetch the archive's current builds.
    #[arg(long)]
    refresh: bool,
    /// Print every row of the table, not only those with something other than pass.
    #[arg(long)]
    full_table: bool,
    /// Arguments for the case binary, as for `cargo test --test cases -- ARGS` (filters, --exact, --skip, ...).
    #[arg(last = true)]
    case_args: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("nsverify-vm: error: {e:#}");
            ExitCode::from(EXIT_INFRASTRUCTURE)
        }
    }
}

fn dispatch(cli: Cli) -> Result<u8> {
    let matrix = Matrix::load(&cli.kernels_file)?;
    match cli.command {
        Cmd::List { json } => {
            if json {
                let names: Vec<&str> = matrix.kernels.iter().map(|k| k.name.as_str()).collect();
                println!("{}", serde_json::json!({ "kernel": names }));
            } else {
                for k in &matrix.kernels {
                    println!("{:<10} {}", k.name, k.describe(&repo_root()));
                }
            }
            Ok(EXIT_PASSED)
        }
        Cmd::Fetch { kernels, refresh } => {
            let (entries, unknown) = matrix.select(&kernels);
            report_unknown(&unknown, &matrix);
            let apt = apt_for(&matrix, &entries, &cli.cache_dir);
            let mut code = if unknown.is_empty() { EXIT_PASSED } else { EXIT_INFRASTRUCTURE };
            for e in &entries {
                match fetch::ensure_kernel(e, &cli.cache_dir, &repo_root(), &apt, refresh) {
                    Ok((k, s)) => println!(
                        "{}: {} {} ({}) in {s:.1}s -> {}",
                        k.name,
                        if k.fetched_now { "fetched" } else { "cached" },
                        k.version,
                        k.release,
                        k.dir.display()
                    ),
                    Err(err) => {
                        eprintln!("{}: fetch failed: {err:#}", e.name);
                        code = EXIT_INFRASTRUCTURE;
                    }
                }
            }
            Ok(code)
        }
        Cmd::Run(args) => run(&matrix, &cli.cache_dir, args),
        Cmd::Mutants(args) => run_mutants(&matrix, &cli.cache_dir, args),
        Cmd::Table { results, kernels, out, full_table } => {
            let (entries, unknown) = matrix.select(&kernels);
            report_unknown(&unknown, &matrix);
            let mut loaded: Vec<Loaded> = entries
                .iter()
                .map(|e| {
                    let dir = results.join(&e.name);
                    table::load(&dir).unwrap_or_else(|err| missing(e, &format!("no usable result: {err:#}")))
                })
                .collect();
            loaded.extend(unknown_results(&unknown));
            finish_table(&loaded, out.as_deref().unwrap_or(&results), !unknown.is_empty(), full_table)
        }
    }
}

fn report_unknown(unknown: &[String], matrix: &Matrix) {
    let known: Vec<&str> = matrix.kernels.iter().map(|k| k.name.as_str()).collect();
    for u in unknown {
        eprintln!("nsverify-vm: kernel {u:?} is not in the matrix (known: {}); the other kernels still run", known.join(", "));
    }
}

fn apt_for(matrix: &Matrix, entries: &[KernelEntry], cache: &Path) -> Apt {
    let mut suites: Vec<String> = entries.iter().filter_map(|e| e.suite.clone()).collect();
    if entries.iter().any(|e| e.build.is_some()) {
        // The pinned kernel source's suite; an unreadable spec is reported when the build starts.
        if let Ok(spec) = kbuild::BaseSpec::load(&repo_root().join(kbuild::BASE_SPEC)) {
            suites.push(spec.source.suite);
        }
    }
    suites.sort();
    suites.dedup();
    Apt::new(cache, matrix.apt.clone(), suites)
}

/// Results for names that are not in the matrix, so the table shows them.
fn unknown_results(unknown: &[String]) -> Vec<Loaded> {
    unknown.iter().map(|u| missing(&KernelEntry::unknown(u), &format!("kernel {u:?} is not in the kernel matrix file"))).collect()
}

/// A result for a kernel that produced none.
fn missing(e: &KernelEntry, why: &str) -> Loaded {
    let mut result = KernelResult::new(&e.name, &e.describe(&repo_root()));
    result.error = Some(why.into());
    Loaded { result, reports: Default::default() }
}

/// Prints the table, writes matrix.md and matrix.json, returns the exit code.
fn finish_table(loaded: &[Loaded], out: &Path, unknown_kernels: bool, full: bool) -> Result<u8> {
    let table = Table::build(loaded);
    println!("\n{}", table.terminal(full));
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("matrix.md"), table.markdown())?;
    std::fs::write(out.join("matrix.json"), serde_json::to_string_pretty(&table)? + "\n")?;
    println!("wrote {0}/matrix.md and {0}/matrix.json", out.display());
    let worst = loaded.iter().map(|l| l.result.status).max().unwrap_or(Status::Passed);
    Ok(if unknown_kernels || worst == Status::Infrastructure {
        EXIT_INFRASTRUCTURE
    } else if worst == Status::CasesFailed {
        EXIT_CASES_FAILED
    } else {
        EXIT_PASSED
    })
}

fn run(matrix: &Matrix, cache: &Path, args: RunArgs) -> Result<u8> {
    let started = Instant::now();
    let (entries, unknown) = matrix.select(&args.kernels);
    report_unknown(&unknown, matrix);
    if entries.is_empty() {
        eprintln!("nsverify-vm: no kernel to run");
        return Ok(EXIT_INFRASTRUCTURE);
    }
    let cpus_host = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = args.jobs.unwrap_or(cpus_host).clamp(1, entries.len());
    let cpus = args.cpus.unwrap_or((cpus_host / jobs).max(1) as u32).max(1);
    let (mut vm_config, why, scale) = args.guest.vm(cpus, args.timeout);
    vm_config.append = args.append.clone();
    let accel = vm_config.accel;
    println!(
        "nsverify-vm: {} kernel(s), {jobs} at a time, {cpus} vCPU and {} MiB each; accel {accel} ({why}); case deadlines x{scale}",
        entries.len(),
        args.guest.memory
    );
    let payload = Payload {
        case_bin: match &args.case_bin {
            Some(p) => p.clone(),
            None => payload::build_case_binary(args.release)?,
        },
        case_args: args.case_args.clone(),
        bench: match (&args.bench_bin, args.benches) {
            (Some(p), _) => Some(p.clone()),
            (None, true) => Some(payload::build_bench_binary()?),
            (None, false) => None,
        }
        .map(|b| (b, if args.bench_arg.is_empty() { vec!["--bench".to_string()] } else { args.bench_arg.clone() })),
        fuzz: if args.fuzz { Some(payload::build_fuzz_binary(args.release)?) } else { None },
        timeout_scale: scale,
        guest_env: args.guest.guest_env.clone(),
    };
    let work = args.out.join("initramfs");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let initramfs = payload.build_initramfs(&work)?;
    println!(
        "nsverify-vm: case binary {}; initramfs {} ({:.1} MB)",
        payload.case_bin.display(),
        initramfs.display(),
        std::fs::metadata(&initramfs)?.len() as f64 / 1e6
    );
    let ctx = RunContext {
        out: args.out.clone(),
        cache: cache.to_path_buf(),
        apt: apt_for(matrix, &entries, cache),
        refresh: args.refresh,
        vm: vm_config,
        initramfs,
        progress: Progress::new(started),
        bench: payload.bench.is_some(),
        fuzz: payload.fuzz.is_some(),
    };
    let mut loaded = run::run_matrix(&entries, &ctx, jobs);
    loaded.extend(unknown_results(&unknown));
    let code = finish_table(&loaded, &args.out, !unknown.is_empty(), args.full_table)?;
    println!("nsverify-vm: whole matrix in {:.1}s (accel {accel}); exit code {code}", started.elapsed().as_secs_f64());
    Ok(code)
}

fn run_mutants(matrix: &Matrix, cache: &Path, args: MutantArgs) -> Result<u8> {
    let started = Instant::now();
    let root = repo_root();
    let spec = kbuild::BaseSpec::load(&root.join(kbuild::BASE_SPEC))?;
    let all = mutants::load(&root)?;
    let chosen: Vec<mutants::Mutant> = if args.ids.is_empty() {
        all.clone()
    } else {
        let unknown: Vec<&String> = args.ids.iter().filter(|p| !all.iter().any(|m| mutants::matches(p, &m.id))).collect();
        anyhow::ensure!(unknown.is_empty(), "no mutant matches {unknown:?} (`nsverify-vm mutants --list` lists them)");
        all.iter().filter(|m| args.ids.iter().any(|p| mutants::matches(p, &m.id))).cloned().collect()
    };
    if args.list {
        for m in &chosen {
            println!("{:<40} {:<12} {}", m.id, m.claims.join(","), m.what);
        }
        return Ok(EXIT_PASSED);
    }
    anyhow::ensure!(args.jobs >= 1 && args.repeat >= 1, "--jobs and --repeat must be at least 1");
    let mut guest_env = args.guest.guest_env.clone();
    if args.debug_kernel {
        guest_env.push(format!("NSVERIFY_FUZZ_CASES={}", args.fuzz_cases));
    }
    let apt = Apt::new(cache, matrix.apt.clone(), vec![spec.source.suite.clone()]);
    let kbuild_dir = kbuild::dir_for(cache);
    let src = kbuild::ensure_source(&spec.source, &kbuild_dir, &apt)?;
    mutants::restore_tree(&src)?;
    let broken = mutants::check_patches(&root, &src, &chosen);
    for (id, why) in &broken {
        eprintln!("mutants: {id}: the patch does not apply: {why}");
    }
    if args.check {
        println!(
            "mutants: {} of {} patches apply to {} {}",
            chosen.len() - broken.len(),
            chosen.len(),
            spec.source.package,
            spec.source.version
        );
        return Ok(if broken.is_empty() { EXIT_PASSED } else { EXIT_CASES_FAILED });
    }
    anyhow::ensure!(broken.is_empty(), "{} patch(es) do not apply; fix them first (--check)", broken.len());
    let cpus_host = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut timeout = args.timeout;
    let mut guest = args.guest.clone();
    if args.debug_kernel {
        // KASAN and lockdep make each case about 7 times slower under TCG:
        // unless given, 4 times the deadline scale, room for the KASAN
        // shadow, and an hour per VM (its last run took 963 s).
        guest.debug_kernel_defaults();
        if timeout == DEFAULT_MUTANT_VM_TIMEOUT {
            timeout = 3600;
        }
    }
    let (vm_config, why, scale) = guest.vm((cpus_host / args.jobs).max(1) as u32, timeout);
    let accel = vm_config.accel;
    let payload = Payload {
        case_bin: payload::build_case_binary(!args.debug_binaries)?,
        case_args: args.case_args.clone(),
        bench: None,
        fuzz: if args.no_fuzz { None } else { Some(payload::build_fuzz_binary(!args.debug_binaries)?) },
        timeout_scale: scale,
        guest_env,
    };
    std::fs::create_dir_all(&args.out)?;
    let work = args.out.join("initramfs");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let initramfs = payload.build_initramfs(&work)?;
    let ctx = mutants::MutantRun {
        root: root.clone(),
        spec: spec.clone(),
        kbuild_dir,
        apt: &apt,
        vm: vm_config,
        initramfs,
        out: args.out.clone(),
        jobs: args.jobs,
        repeat: args.repeat,
        fuzz: !args.no_fuzz,
        progress: Progress::new(started),
    };
    if args.debug_kernel {
        println!("nsverify-vm mutants --debug-kernel: accel {accel} ({why}); source {} {}", spec.source.package, spec.source.version);
        return debug_kernel(&ctx);
    }
    println!(
        "nsverify-vm mutants: {} mutant(s), {} boot(s) each, {} VM(s) at a time; accel {accel} ({why}); source {} {}",
        chosen.len(),
        args.repeat,
        args.jobs,
        spec.source.package,
        spec.source.version
    );
    let (build, ids, base) = match mutants::prove_base(&ctx) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("nsverify-vm mutants: {e:#}");
            return Ok(EXIT_INFRASTRUCTURE);
        }
    };
    let mut dead = Vec::new();
    for m in &chosen {
        let (_, unmatched) = mutants::expand(&m.must_fail, &ids);
        dead.extend(unmatched.into_iter().map(|p| format!("{}: {p}", m.id)));
    }
    if args.case_args.is_empty() {
        anyhow::ensure!(dead.is_empty(), "must_fail patterns that name no case of the base run: {}", dead.join(", "));
    } else if !dead.is_empty() {
        println!("nsverify-vm mutants: not run with {:?}, so not judged: {}", args.case_args, dead.join(", "));
    }
    let results = mutants::run_all(&ctx, &build, &ids, &chosen);
    let summary = mutants::Summary::new(format!("{} {}", spec.source.package, spec.source.version), base, results, started.elapsed());
    let md = summary.markdown();
    println!("\n{md}");
    std::fs::write(args.out.join("mutants.md"), &md)?;
    std::fs::write(args.out.join("mutants.json"), serde_json::to_string_pretty(&summary)? + "\n")?;
    println!("wrote {0}/mutants.md and {0}/mutants.json; whole run {1:.0}s", args.out.display(), started.elapsed().as_secs_f64());
    let unaccepted: Vec<&str> = summary.mutants.iter().filter(|r| !r.acceptable()).map(|r| r.mutant.id.as_str()).collect();
    // A kill (or an accepted survivor) for each; the figure itself is in mutants.md.
    if unaccepted.is_empty() {
        Ok(EXIT_PASSED)
    } else {
        eprintln!("nsverify-vm mutants: not killed and not accepted (ci/mutants/mutants.toml `accepted`): {}", unaccepted.join(", "));
        Ok(EXIT_CASES_FAILED)
    }
}

/// `mutants --debug-kernel`: the debug variant's run and its findings.
fn debug_kernel(ctx: &mutants::MutantRun) -> Result<u8> {
    let (figures, loaded) = match mutants::debug_run(ctx) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("nsverify-vm mutants --debug-kernel: {e:#}");
            return Ok(EXIT_INFRASTRUCTURE);
        }
    };
    let r = &loaded.result;
    let failing: Vec<String> = loaded
        .reports
        .iter()
        .flat_map(|(run, recs)| recs.iter().filter(|r| r.fails_run()).map(move |r| format!("{run}: {}", r.id)))
        .collect();
    let mut md = format!(
        "# Debug kernel ({})\n\nBuilt in {:.0}s; suite and fuzz suite in the VM: {:.0}s; {} records; status {}.\n\n",
        figures.release,
        figures.build_s,
        figures.vm_s,
        figures.cases,
        r.status.word()
    );
    md += &format!("Kernel-health reports on the console (claim K1): {}\n", figures.console_reports.len());
    for l in &figures.console_reports {
        md += &format!("    {l}\n");
    }
    if !failing.is_empty() {
        md += &format!("\nFailing cases: {}\n", failing.join(", "));
    }
    if let Some(e) = &r.error {
        md += &format!("\nInfrastructure: {e}\n");
    }
    println!("\n{md}");
    std::fs::write(ctx.out.join("debug.md"), &md)?;
    std::fs::write(ctx.out.join("debug.json"), serde_json::to_string_pretty(&figures)? + "\n")?;
    Ok(if r.status == Status::Infrastructure {
        EXIT_INFRASTRUCTURE
    } else if !figures.console_reports.is_empty() || r.status == Status::CasesFailed {
        EXIT_CASES_FAILED
    } else {
        EXIT_PASSED
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn trailing_arguments_go_to_the_case_binary() {
        let cli = Cli::try_parse_from(["nsverify-vm", "run", "5.10", "sid", "--", "--exact", "create.clone.uts"]).unwrap();
        let Cmd::Run(args) = cli.command else { panic!() };
        assert_eq!(args.kernels, ["5.10", "sid"]);
        assert_eq!(args.case_args, ["--exact", "create.clone.uts"]);
    }

    #[test]
    fn the_debug_kernel_gets_slower_defaults_unless_given() {
        let cli = Cli::try_parse_from(["nsverify-vm", "mutants", "--accel", "tcg"]).unwrap();
        let Cmd::Mutants(args) = cli.command else { panic!() };
        let (cfg, _, scale) = args.guest.vm(1, args.timeout);
        assert_eq!((scale, cfg.memory_mb, args.jobs), (4.0, DEFAULT_MEMORY_MB, 3));
        let mut debug = args.guest.clone();
        debug.debug_kernel_defaults();
        let (cfg, _, scale) = debug.vm(1, 3600);
        assert_eq!((scale, cfg.memory_mb, cfg.boot_timeout), (16.0, 2048, Duration::from_secs(300)));
        let cli = Cli::try_parse_from(["nsverify-vm", "mutants", "--accel", "tcg", "--timeout-scale", "9", "--memory", "4096"]).unwrap();
        let Cmd::Mutants(args) = cli.command else { panic!() };
        let mut given = args.guest.clone();
        given.debug_kernel_defaults();
        let (cfg, _, scale) = given.vm(1, 3600);
        assert_eq!((scale, cfg.memory_mb), (9.0, 4096));
    }
}
