//! `nsverify-vm`: runs nsverify's case suite inside QEMU VMs, one per kernel
//! of the matrix in `ci/kernels.toml`, and builds the case x kernel table.
//! See ci/README.md. Exit codes: see [`EXIT_CODES`].

mod bzimage;
mod fetch;
mod initramfs;
mod matrix;
mod table;
mod vm;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use fetch::{Apt, Kernel};
use matrix::{KernelEntry, Matrix, Origin};
use table::{KernelResult, Loaded, Status, Table, RUNS};
use vm::{Accel, VmConfig};

/// Every case passed or was skipped on every kernel.
const EXIT_PASSED: u8 = 0;
/// Some case failed (or was broken) on some kernel; the infrastructure worked.
const EXIT_CASES_FAILED: u8 = 1;
/// Bad command line (clap's code).
#[allow(dead_code)]
const EXIT_USAGE: u8 = 2;
/// Infrastructure failure on some kernel: unknown kernel name, download,
/// boot, hang, guest or result transfer. Takes precedence over 1.
const EXIT_INFRASTRUCTURE: u8 = 3;

const EXIT_CODES: &str = "Exit codes: 0 all cases passed or skipped on every kernel; \
1 a case failed or was broken on some kernel; 2 bad command line; \
3 infrastructure failure (unknown kernel, download, boot, hang, lost results) on some kernel, even if cases also failed.";

/// The repository root (the driver lives in `<root>/ci`).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("ci/ has a parent").to_path_buf()
}

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
    /// Seconds allowed from QEMU start until the guest's /init runs.
    #[arg(long, default_value_t = 60)]
    boot_timeout: u64,
    /// auto: KVM only where /dev/kvm is writable and the CPU has vmx/svm.
    #[arg(long, value_enum, default_value_t = Accel::Auto, env = "VM_ACCEL")]
    accel: Accel,
    /// Guest RAM in MiB.
    #[arg(long, default_value_t = 1024)]
    memory: u32,
    /// vCPUs per guest (default: the host's CPUs divided among the parallel VMs).
    #[arg(long)]
    cpus: Option<u32>,
    /// Multiplies every case deadline (NSVERIFY_TIMEOUT_SCALE); default 4 under TCG, 1 under KVM.
    #[arg(long)]
    timeout_scale: Option<f64>,
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
    /// Extra KEY=VALUE for the guest's environment (repeatable), e.g. RUST_BACKTRACE=1.
    #[arg(long)]
    guest_env: Vec<String>,
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
                    println!("{:<10} {}", k.name, describe(k));
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

fn describe(k: &KernelEntry) -> String {
    if k.suite.is_none() && k.path.is_none() {
        return String::new();
    }
    match k.origin(&repo_root()) {
        Origin::Debian { suite, package } => format!("{suite}/{package}"),
        Origin::Local { bzimage, .. } => format!("self-built {}", bzimage.display()),
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
    suites.dedup();
    Apt::new(cache, matrix.apt.clone(), suites)
}

/// Results for names that are not in the matrix, so the table shows them.
fn unknown_results(unknown: &[String]) -> Vec<Loaded> {
    unknown
        .iter()
        .map(|u| {
            let mut l = missing(&KernelEntry { name: u.clone(), suite: None, package: None, path: None, config: None }, "");
            l.result.origin = "(not in the matrix)".into();
            l.result.error = Some(format!("kernel {u:?} is not in the kernel matrix file"));
            l
        })
        .collect()
}

/// A result for a kernel that produced none.
fn missing(e: &KernelEntry, why: &str) -> Loaded {
    Loaded {
        result: KernelResult {
            name: e.name.clone(),
            origin: describe(e),
            version: None,
            release: None,
            packages: vec![],
            config: None,
            accel: "-".into(),
            boot_image: None,
            cached: None,
            fetch_s: None,
            vm: None,
            status: Status::Infrastructure,
            error: Some(why.into()),
        },
        reports: Default::default(),
    }
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

/// Runs `cargo <args> --no-run --message-format=json` in the repository and
/// returns the executable of the target named `name` of kind `kind`.
fn cargo_executable(args: &[&str], name: &str, kind: &str) -> Result<PathBuf> {
    let shown = format!("cargo {} --no-run", args.join(" "));
    let out = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .args(["--no-run", "--message-format=json"])
        .current_dir(repo_root())
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {shown}"))?;
    if !out.status.success() {
        bail!("{shown} failed ({})", out.status);
    }
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(m) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if m["reason"] == "compiler-artifact" && m["target"]["name"] == name && m["target"]["kind"] == serde_json::json!([kind]) {
            if let Some(exe) = m["executable"].as_str() {
                return Ok(PathBuf::from(exe));
            }
        }
    }
    bail!("{shown} reported no executable for the {kind} target `{name}`")
}

/// Builds the case binary the way `.ci/run` does and returns its path.
fn build_case_binary(release: bool) -> Result<PathBuf> {
    let mut args = vec!["test", "-p", "nsverify-cases", "--test", "cases"];
    if release {
        args.push("--release");
    }
    cargo_executable(&args, "cases", "test")
}

/// Builds the bench executable (benches/README.md, "Standalone").
fn build_bench_binary() -> Result<PathBuf> {
    cargo_executable(&["bench", "-p", "nsverify-benches", "--bench", "namespaces"], "namespaces", "bench")
        .context("building the benches (is the nsverify-benches crate in the workspace?)")
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|f| f.is_file()))
}

/// Single-quotes `s` for the guest's shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Assembles the initramfs shared by every kernel (it needs no modules).
fn build_initramfs(args: &RunArgs, case_bin: &Path, bench_bin: Option<&Path>, scale: f64, work: &Path) -> Result<PathBuf> {
    let mut fs = initramfs::Initramfs::new();
    let busybox = find_in_path("busybox").context("busybox not found (apt-get install busybox-static)")?;
    if !initramfs::shared_libraries(&busybox)?.is_empty() {
        bail!("{} is dynamically linked; install busybox-static", busybox.display());
    }
    fs.copy("/bin/busybox", &busybox, 0o755)?;
    fs.file("/init", include_bytes!("../guest/init.sh").to_vec(), 0o755);
    fs.executable("/nsverify/cases", &initramfs::without_debug_info(case_bin, work)?)?;
    let setpriv = find_in_path("setpriv").context("setpriv not found (apt-get install util-linux)")?;
    fs.executable("/nsverify/setpriv", &setpriv)?;
    fs.file("/etc/passwd", b"root:x:0:0:root:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n".to_vec(), 0o644);
    fs.file("/etc/group", b"root:x:0:\nnogroup:x:65534:\n".to_vec(), 0o644);
    let case_args: String = args.case_args.iter().map(|a| format!("{a}\n")).collect();
    for (run, _) in RUNS {
        fs.file(&format!("/nsverify/{run}.args"), case_args.clone().into_bytes(), 0o644);
    }
    let mut env = format!("export NSVERIFY_TIMEOUT_SCALE={}\n", shell_quote(&scale.to_string()));
    if let Some(bench) = bench_bin {
        fs.executable("/nsverify/bench", &initramfs::without_debug_info(bench, work)?)?;
        let bench_args = if args.bench_arg.is_empty() { vec!["--bench".to_string()] } else { args.bench_arg.clone() };
        fs.file("/nsverify/bench.args", bench_args.iter().map(|a| format!("{a}\n")).collect::<String>().into_bytes(), 0o644);
        env += "export NSVERIFY_BENCH_QUICK=1\n";
    }
    for kv in &args.guest_env {
        let Some((k, v)) = kv.split_once('=').filter(|(k, _)| !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        else {
            bail!("--guest-env {kv:?}: expected KEY=VALUE");
        };
        env += &format!("export {k}={}\n", shell_quote(v));
    }
    fs.file("/nsverify/env", env.into_bytes(), 0o644);
    let path = work.join("initramfs.cpio");
    std::fs::write(&path, fs.to_cpio())?;
    Ok(path)
}

/// Progress lines, stamped with the time since the run started.
struct Progress {
    started: Instant,
    lock: Mutex<()>,
}

impl Progress {
    fn say(&self, kernel: &str, msg: &str) {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        println!("[{:6.1}s] {kernel}: {msg}", self.started.elapsed().as_secs_f64());
    }
}

/// Fetches, boots and runs one kernel; writes `<out>/<name>/result.json`.
fn run_kernel(entry: &KernelEntry, ctx: &RunContext) -> Loaded {
    let dir = ctx.out.join(&entry.name);
    let say = |m: &str| ctx.progress.say(&entry.name, m);
    let mut result = missing(entry, "").result;
    result.error = None;
    result.accel = ctx.vm.accel.to_string();
    let loaded = (|| -> Result<Loaded> {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let kernel: Kernel = match fetch::ensure_kernel(entry, &ctx.cache, &repo_root(), &ctx.apt, ctx.refresh) {
            Ok((k, s)) => {
                result.cached = Some(!k.fetched_now);
                result.fetch_s = Some(s);
                say(&format!(
                    "{} {} ({}){}",
                    if k.fetched_now { "fetched" } else { "from cache:" },
                    k.version,
                    k.release,
                    if k.fetched_now { format!(" in {s:.1}s") } else { String::new() }
                ));
                k
            }
            Err(e) => {
                result.error = Some(format!("fetch failed: {e:#}"));
                return Ok(Loaded { result: result.clone(), reports: Default::default() });
            }
        };
        result.version = Some(kernel.version.clone());
        result.release = Some(kernel.release.clone());
        result.packages = kernel.packages.clone();
        if let Some(cfg) = kernel.config() {
            std::fs::copy(cfg, dir.join("config"))?;
            result.config = Some("config".into());
        }
        let (image, what) = vm::boot_image(ctx.vm.accel, kernel.bzimage(), kernel.vmlinux(), kernel.pvh);
        result.boot_image = Some(what.into());
        say(&format!("booting {what} under {}", ctx.vm.accel));
        let outcome = vm::run_vm(&ctx.vm, &image, &ctx.initramfs, &dir, &|m| say(m))?;
        result.vm = Some(outcome.clone());
        if let Some(e) = &outcome.error {
            result.error = Some(e.clone());
        }
        if let Some(guest) = &outcome.guest_release {
            if !guest.is_empty() && guest != &kernel.release {
                say(&format!("note: the guest reports {guest}, the image header said {}", kernel.release));
                result.release = Some(guest.clone());
            }
        }
        Ok(Loaded { result: result.clone(), reports: Default::default() })
    })();
    let mut loaded = loaded.unwrap_or_else(|e| {
        result.error = Some(format!("{e:#}"));
        Loaded { result, reports: Default::default() }
    });
    judge(&mut loaded, &dir, ctx.bench);
    let r = &loaded.result;
    let _ = std::fs::create_dir_all(&dir);
    if let Err(e) =
        serde_json::to_string_pretty(r).map_err(anyhow::Error::from).and_then(|j| Ok(std::fs::write(dir.join("result.json"), j + "\n")?))
    {
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

/// Loads the runs' reports and decides the kernel's status: infrastructure
/// if anything is missing (a report, an exit code, an exit code other than
/// 0 or 101), cases-failed if a run exited 101 or a record failed/broke.
fn judge(loaded: &mut Loaded, dir: &Path, bench: bool) {
    let r = &mut loaded.result;
    let mut problems = Vec::new();
    let mut failed = false;
    if r.error.is_none() {
        let runs = r.vm.as_ref().map(|v| v.runs.clone()).unwrap_or_default();
        let expected = RUNS.iter().map(|(n, _)| *n).chain(bench.then_some("bench"));
        for run in expected {
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
    } else if failed {
        Status::CasesFailed
    } else {
        Status::Passed
    };
}

/// What every worker shares.
struct RunContext {
    out: PathBuf,
    cache: PathBuf,
    apt: Apt,
    refresh: bool,
    vm: VmConfig,
    initramfs: PathBuf,
    progress: Progress,
    bench: bool,
}

fn run(matrix: &Matrix, cache: &Path, args: RunArgs) -> Result<u8> {
    let started = Instant::now();
    let (entries, unknown) = matrix.select(&args.kernels);
    report_unknown(&unknown, matrix);
    if entries.is_empty() {
        eprintln!("nsverify-vm: no kernel to run");
        return Ok(EXIT_INFRASTRUCTURE);
    }
    let (accel, why) = vm::choose_accel(args.accel);
    let cpus_host = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = args.jobs.unwrap_or(cpus_host).clamp(1, entries.len());
    let cpus = args.cpus.unwrap_or((cpus_host / jobs).max(1) as u32).max(1);
    let scale = args.timeout_scale.unwrap_or(if accel == Accel::Tcg { 4.0 } else { 1.0 });
    println!(
        "nsverify-vm: {} kernel(s), {jobs} at a time, {cpus} vCPU and {} MiB each; accel {accel} ({why}); case deadlines x{scale}",
        entries.len(),
        args.memory
    );
    let case_bin = match &args.case_bin {
        Some(p) => p.clone(),
        None => build_case_binary(args.release)?,
    };
    let work = args.out.join("initramfs");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let bench_bin = match (&args.bench_bin, args.benches) {
        (Some(p), _) => Some(p.clone()),
        (None, true) => Some(build_bench_binary()?),
        (None, false) => None,
    };
    let initramfs = build_initramfs(&args, &case_bin, bench_bin.as_deref(), scale, &work)?;
    println!(
        "nsverify-vm: case binary {}; initramfs {} ({:.1} MB)",
        case_bin.display(),
        initramfs.display(),
        std::fs::metadata(&initramfs)?.len() as f64 / 1e6
    );
    let ctx = RunContext {
        out: args.out.clone(),
        cache: cache.to_path_buf(),
        apt: apt_for(matrix, &entries, cache),
        refresh: args.refresh,
        vm: VmConfig {
            accel,
            memory_mb: args.memory,
            cpus,
            boot_timeout: Duration::from_secs(args.boot_timeout),
            timeout: Duration::from_secs(args.timeout),
            append: args.append.clone(),
        },
        initramfs,
        progress: Progress { started, lock: Mutex::new(()) },
        bench: bench_bin.is_some(),
    };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Loaded>>> = Mutex::new(vec![None; entries.len()]);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(entry) = entries.get(i) else { break };
                let loaded = run_kernel(entry, &ctx);
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(loaded);
            });
        }
    });
    let mut loaded: Vec<Loaded> = results.into_inner().unwrap_or_else(|e| e.into_inner()).into_iter().flatten().collect();
    loaded.extend(unknown_results(&unknown));
    let code = finish_table(&loaded, &args.out, !unknown.is_empty(), args.full_table)?;
    println!("nsverify-vm: whole matrix in {:.1}s (accel {accel}); exit code {code}", started.elapsed().as_secs_f64());
    Ok(code)
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
    fn quoting_survives_the_guest_shell() {
        assert_eq!(shell_quote("a'b"), "'a'\\''b'");
    }

    #[test]
    fn trailing_arguments_go_to_the_case_binary() {
        let cli = Cli::try_parse_from(["nsverify-vm", "run", "5.10", "sid", "--", "--exact", "create.clone.uts"]).unwrap();
        let Cmd::Run(args) = cli.command else { panic!() };
        assert_eq!(args.kernels, ["5.10", "sid"]);
        assert_eq!(args.case_args, ["--exact", "create.clone.uts"]);
    }
}
