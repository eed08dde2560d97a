//! The command line of `nsverify-vm`: the clap definitions of every
//! subcommand, flag, default and help text, and the guest settings they
//! turn into (dispatch is in main.rs).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::outcome::EXIT_CODES;
use crate::payload::repo_root;
use crate::vm::{self, Accel, VmConfig};

#[derive(Parser)]
#[command(name = "nsverify-vm", version, about = "Run nsverify's case suite in QEMU VMs across the kernel matrix", after_help = EXIT_CODES)]
pub(crate) struct Cli {
    /// The kernel matrix data file.
    #[arg(long, global = true, default_value_os_t = repo_root().join("ci/kernels.toml"))]
    pub(crate) kernels_file: PathBuf,
    /// Kernel cache (downloaded kernels, private apt state).
    #[arg(long, global = true, env = "NSVERIFY_VM_CACHE", default_value_os_t = repo_root().join("target/nsverify-vm/cache"))]
    pub(crate) cache_dir: PathBuf,
    #[command(subcommand)]
    pub(crate) command: Cmd,
}

#[derive(Subcommand)]
pub(crate) enum Cmd {
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
pub(crate) const DEFAULT_MUTANT_VM_TIMEOUT: u64 = 600;
/// `--boot-timeout` unless given.
pub(crate) const DEFAULT_BOOT_TIMEOUT: u64 = 60;
/// `--memory` unless given.
pub(crate) const DEFAULT_MEMORY_MB: u32 = 1024;

/// How guests are booted, for `run` and `mutants` alike.
#[derive(Args, Clone)]
pub(crate) struct GuestArgs {
    /// Seconds allowed from QEMU start until the guest's /init runs.
    #[arg(long, default_value_t = DEFAULT_BOOT_TIMEOUT)]
    pub(crate) boot_timeout: u64,
    /// auto: KVM only where /dev/kvm is writable and the CPU has vmx/svm.
    #[arg(long, value_enum, default_value_t = Accel::Auto, env = "VM_ACCEL")]
    pub(crate) accel: Accel,
    /// Guest RAM in MiB.
    #[arg(long, default_value_t = DEFAULT_MEMORY_MB)]
    pub(crate) memory: u32,
    /// Multiplies every case deadline (NSVERIFY_TIMEOUT_SCALE); default 4 under TCG, 1 under KVM (4 times that for `mutants --debug-kernel`).
    #[arg(long)]
    pub(crate) timeout_scale: Option<f64>,
    /// Extra KEY=VALUE for the guest's environment (repeatable), e.g. RUST_BACKTRACE=1.
    #[arg(long)]
    pub(crate) guest_env: Vec<String>,
    /// How much slower than a plain kernel the guest kernel runs (1; 4 for
    /// the debug kernel): multiplies the default deadline scale.
    #[arg(skip = 1.0)]
    pub(crate) slowdown: f64,
}

impl GuestArgs {
    /// The debug kernel's settings where the defaults stand: 4 times the
    /// deadline scale, 2 GiB (KASAN's shadow), 300 s to reach /init.
    pub(crate) fn debug_kernel_defaults(&mut self) {
        self.slowdown = 4.0;
        if self.memory == DEFAULT_MEMORY_MB {
            self.memory = 2 * DEFAULT_MEMORY_MB;
        }
        if self.boot_timeout == DEFAULT_BOOT_TIMEOUT {
            self.boot_timeout = 300;
        }
    }

    /// The accelerator (and why), the VM settings and the deadline scale.
    pub(crate) fn vm(&self, cpus: u32, timeout: u64) -> (VmConfig, String, f64) {
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
pub(crate) struct MutantArgs {
    /// Mutant ids (default: all); `*` matches any run of characters.
    pub(crate) ids: Vec<String>,
    /// List the mutants and exit.
    #[arg(long)]
    pub(crate) list: bool,
    /// Only check that every patch applies to the pinned source (dry run).
    #[arg(long)]
    pub(crate) check: bool,
    /// Mutant VMs at once (builds run one at a time, in one tree, meanwhile).
    /// 3 on 2 cores: a third VM uses the time the others spend waiting out
    /// release deadlines (the whole list took 35 min, against 39 with 2).
    #[arg(long, short, default_value_t = 3)]
    pub(crate) jobs: usize,
    /// Boots per mutant: a kill counts only when every boot kills it.
    #[arg(long, default_value_t = 1)]
    pub(crate) repeat: usize,
    /// Seconds allowed per VM, boot to poweroff (3600 with --debug-kernel).
    #[arg(long, default_value_t = DEFAULT_MUTANT_VM_TIMEOUT)]
    pub(crate) timeout: u64,
    #[command(flatten)]
    pub(crate) guest: GuestArgs,
    /// Instead of the mutants: build the debug variant of the base kernel
    /// (KASAN, lockdep, refcount and list debugging; ci/mutants/debug.config)
    /// and run the case suite and the fuzz suite with --fuzz-cases inputs
    /// per fuzz case; any WARNING, BUG, KASAN or lockdep report on its
    /// console fails the run (claim K1).
    #[arg(long)]
    pub(crate) debug_kernel: bool,
    /// Inputs per fuzz case (NSVERIFY_FUZZ_CASES) for --debug-kernel: its long mode.
    #[arg(long, default_value_t = 300)]
    pub(crate) fuzz_cases: u32,
    /// Boot the case and fuzz binaries of the dev profile instead of
    /// `--release` ones (which take about half the guest time under TCG).
    #[arg(long)]
    pub(crate) debug_binaries: bool,
    /// Output directory: base/, one directory per mutant, mutants.md, mutants.json.
    #[arg(long, default_value_os_t = repo_root().join("target/nsverify-vm/mutants"))]
    pub(crate) out: PathBuf,
    /// Leave the fuzz suite out of the guest (for quick reruns of some cases).
    #[arg(long)]
    pub(crate) no_fuzz: bool,
    /// Arguments for the case binary (filters, --exact, --skip): the base run
    /// and every mutant run only those cases, and `must_fail` patterns that
    /// name none of them are dropped with a note instead of refused.
    #[arg(last = true)]
    pub(crate) case_args: Vec<String>,
}

#[derive(Args)]
pub(crate) struct RunArgs {
    /// Kernels by name (default: all in the matrix).
    pub(crate) kernels: Vec<String>,
    /// VMs at once (default: the number of CPUs).
    #[arg(long, short)]
    pub(crate) jobs: Option<usize>,
    /// Seconds allowed per kernel, boot to poweroff.
    #[arg(long, default_value_t = 300)]
    pub(crate) timeout: u64,
    #[command(flatten)]
    pub(crate) guest: GuestArgs,
    /// vCPUs per guest (default: the host's CPUs divided among the parallel VMs).
    #[arg(long)]
    pub(crate) cpus: Option<u32>,
    /// The case binary (default: built with `cargo test -p nsverify-cases --test cases --no-run`).
    #[arg(long, conflicts_with = "release")]
    pub(crate) case_bin: Option<PathBuf>,
    /// Build the case binary with `--release` (about half the guest time under TCG).
    #[arg(long)]
    pub(crate) release: bool,
    /// Also run the benches in each guest, as root after the cases: builds
    /// `cargo bench -p nsverify-benches --bench namespaces --no-run` and runs it
    /// with `--bench` in quick mode (NSVERIFY_BENCH_QUICK=1; override with
    /// --guest-env). Give a larger --timeout: benches under TCG take minutes.
    #[arg(long)]
    pub(crate) benches: bool,
    /// A bench executable to run instead of building one (implies --benches).
    #[arg(long)]
    pub(crate) bench_bin: Option<PathBuf>,
    /// Arguments for the bench executable (repeatable; default `--bench`).
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) bench_arg: Vec<String>,
    /// Also run the fuzz suite in each guest, as root after the cases
    /// (`cargo test -p nsverify-fuzz --test fuzz`): its rows join the table.
    #[arg(long)]
    pub(crate) fuzz: bool,
    /// Extra kernel command line, appended after nsverify's own (e.g. "mitigations=off").
    #[arg(long, default_value = "")]
    pub(crate) append: String,
    /// Output directory: per-kernel results, matrix.md, matrix.json.
    #[arg(long, default_value_os_t = repo_root().join("target/nsverify-vm/out"))]
    pub(crate) out: PathBuf,
    /// Ignore the kernel cache: fetch the archive's current builds.
    #[arg(long)]
    pub(crate) refresh: bool,
    /// Print every row of the table, not only those with something other than pass.
    #[arg(long)]
    pub(crate) full_table: bool,
    /// Arguments for the case binary, as for `cargo test --test cases -- ARGS` (filters, --exact, --skip, ...).
    #[arg(last = true)]
    pub(crate) case_args: Vec<String>,
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
