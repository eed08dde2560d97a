//! The command line of `nsverify-vm`: the clap definitions of every
//! subcommand, flag, default and help text, and the guest settings they
//! turn into (dispatch is in main.rs).

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand};

mod values;

use values::{archive_uri, built_tree, case_binary, existing_file, image_arch, kernel_image, kernel_name, tree_image};

use crate::arch::Arch;
use crate::matrix::{KernelEntry, Matrix};
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
    /// The Debian archive to fetch kernels and the kernel source from, instead
    /// of the data file's [apt].uri: a mirror, or a caching proxy's URL for
    /// one (http://proxy:3142/deb.debian.org/debian). Also sets the security
    /// archive to URI-security unless --debian-security-mirror is given.
    #[arg(long, global = true, env = "NSVERIFY_DEBIAN_MIRROR", value_name = "URI", value_parser = archive_uri)]
    pub(crate) debian_mirror: Option<String>,
    /// The archive of the `*-security` suites, instead of [apt].security_uri.
    #[arg(long, global = true, env = "NSVERIFY_DEBIAN_SECURITY_MIRROR", value_name = "URI", value_parser = archive_uri)]
    pub(crate) debian_security_mirror: Option<String>,
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
    /// Write DEVIATIONS.md from the known deviations and the matrix results
    /// (ci/results/deviations.json, refreshed from result directories if given).
    Deviations(crate::deviations::DeviationsArgs),
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
        self.vm_for(Arch::Amd64, cpus, timeout)
    }

    /// [`GuestArgs::vm`] for guests of `arch`: a foreign architecture runs
    /// under TCG whatever /dev/kvm offers, and its `timeout` grows by
    /// [`Arch::timeout_factor`].
    pub(crate) fn vm_for(&self, arch: Arch, cpus: u32, timeout: u64) -> (VmConfig, String, f64) {
        let (accel, why) = if arch.is_host() {
            vm::choose_accel(self.accel)
        } else {
            (Accel::Tcg, format!("{arch} guests on a {} host: TCG", Arch::host()))
        };
        let timeout = (timeout as f64 * arch.timeout_factor()).round() as u64;
        let scale = self.timeout_scale.unwrap_or(self.slowdown * if accel == Accel::Tcg { 4.0 } else { 1.0 });
        let cfg = VmConfig {
            arch,
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
#[command(group(ArgGroup::new("own_kernel").args(["kernel_image", "kernel_tree"])))]
pub(crate) struct RunArgs {
    /// Kernels by name (default: all in the matrix, or none when
    /// --kernel-image or --kernel-tree is given).
    pub(crate) kernels: Vec<String>,
    /// Also run a kernel image of your own (arch/x86/boot/bzImage, or
    /// arch/arm64/boot/Image for an arm64 kernel, of a tree you built), next
    /// to the named kernels; no data file is edited.
    #[arg(long, value_name = "PATH", value_parser = kernel_image)]
    pub(crate) kernel_image: Option<PathBuf>,
    /// The .config of --kernel-image: recorded, given to the guest (which
    /// kinds are built in), and CONFIG_PVH=y allows the faster TCG boot.
    #[arg(long, value_name = "PATH", value_parser = existing_file, requires = "kernel_image")]
    pub(crate) kernel_config: Option<PathBuf>,
    /// Also run the kernel of a built tree (or of its O= build directory):
    /// its arch/x86/boot/bzImage or arch/arm64/boot/Image, and .config. See
    /// ci/kernel.config (and ci/kernel.arm64.config) for a configuration
    /// that runs every case.
    #[arg(long, value_name = "DIR", value_parser = built_tree)]
    pub(crate) kernel_tree: Option<PathBuf>,
    /// The name of that kernel's column and of its result directory.
    #[arg(long, value_name = "NAME", default_value = "own", value_parser = kernel_name, requires = "own_kernel")]
    pub(crate) kernel_name: String,
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
    /// A static executable to run in place of the case binary, for the
    /// kernels of its architecture (read from the ELF header); repeat it
    /// for the other architecture (default: built with `cargo test -p
    /// nsverify-cases --test cases --no-run --target
    /// <x86_64|aarch64>-unknown-linux-musl`).
    #[arg(long, value_name = "PATH", value_parser = case_binary, conflicts_with = "release")]
    pub(crate) case_bin: Vec<(Arch, PathBuf)>,
    /// Build the case binary with `--release` (about half the guest time under TCG).
    #[arg(long)]
    pub(crate) release: bool,
    /// Also run the benches in each guest, as root after the cases: builds
    /// `cargo bench -p nsverify-benches --bench namespaces --no-run`, static
    /// (glibc with crt-static, for x86_64-unknown-linux-gnu), and runs it
    /// with `--bench` in quick mode (NSVERIFY_BENCH_QUICK=1; override with
    /// --guest-env). Give a larger --timeout: benches under TCG take minutes.
    #[arg(long)]
    pub(crate) benches: bool,
    /// A static bench executable to run instead of building one (implies
    /// --benches; amd64 kernels only).
    #[arg(long)]
    pub(crate) bench_bin: Option<PathBuf>,
    /// Arguments for the bench executable (repeatable; default `--bench`).
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) bench_arg: Vec<String>,
    /// Also run the fuzz suite in each guest, as root after the cases
    /// (`cargo test -p nsverify-fuzz --test fuzz`): its rows join the table
    /// in a `fuzz` column per kernel.
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

impl Cli {
    /// The data file with the archive flags applied.
    pub(crate) fn matrix(&self) -> anyhow::Result<Matrix> {
        let mut matrix = Matrix::load(&self.kernels_file)?;
        matrix.apt = matrix.apt.with_mirrors(self.debian_mirror.as_deref(), self.debian_security_mirror.as_deref());
        Ok(matrix)
    }
}

impl RunArgs {
    /// An error (for clap to print, exit code 2) when two `--case-bin` are
    /// for one architecture.
    pub(crate) fn check_case_bins(&self) -> Result<(), clap::Error> {
        use clap::CommandFactory;
        for (i, (arch, path)) in self.case_bin.iter().enumerate() {
            if let Some((_, other)) = self.case_bin[..i].iter().find(|(a, _)| a == arch) {
                let msg = format!(
                    "--case-bin: {} and {} are both {arch} executables; give one per architecture",
                    other.display(),
                    path.display()
                );
                return Err(Cli::command().error(clap::error::ErrorKind::ArgumentConflict, msg));
            }
        }
        Ok(())
    }

    /// The kernel of --kernel-image or --kernel-tree, as a self-built entry;
    /// an error (for clap to print, exit code 2) when its name is a
    /// kernel of the matrix too.
    pub(crate) fn own_kernel(&self, matrix: &Matrix) -> Result<Option<KernelEntry>, clap::Error> {
        let (image, config) = match (&self.kernel_image, &self.kernel_tree) {
            (Some(image), _) => (image.clone(), self.kernel_config.clone()),
            (None, Some(tree)) => (tree_image(tree).unwrap_or_else(|| tree.join(Arch::Amd64.tree_image())), Some(tree.join(".config"))),
            (None, None) => return Ok(None),
        };
        use clap::CommandFactory;
        // The parsers checked the image; a tree rebuilt since reads again.
        let arch = image_arch(&image).map_err(|e| Cli::command().error(clap::error::ErrorKind::ValueValidation, e))?;
        if matrix.kernels.iter().any(|k| k.name == self.kernel_name) {
            let msg = format!("--kernel-name {0:?}: a kernel of the matrix is called {0:?}; choose another name", self.kernel_name);
            return Err(Cli::command().error(clap::error::ErrorKind::ValueValidation, msg));
        }
        Ok(Some(KernelEntry::local(&self.kernel_name, arch, image, config)))
    }
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

    fn run_args(argv: &[&str]) -> Result<RunArgs, clap::Error> {
        let cli = Cli::try_parse_from(["nsverify-vm", "run"].iter().chain(argv))?;
        let Cmd::Run(args) = cli.command else { panic!() };
        Ok(args)
    }

    fn error_of(argv: &[&str]) -> String {
        run_args(argv).err().expect("refused").to_string()
    }

    #[test]
    fn a_kernel_of_your_own_from_one_flag() {
        let matrix = Matrix::load(&repo_root().join("ci/kernels.toml")).unwrap();
        let tree = std::env::temp_dir().join(format!("nsverify-cli-tree-{}", std::process::id()));
        let tree_image = tree.join(Arch::Amd64.tree_image());
        std::fs::create_dir_all(tree.join("arch/x86/boot")).unwrap();
        std::fs::write(tree.join(".config"), "CONFIG_PVH=y\n").unwrap();
        let t = tree.to_str().unwrap();
        assert!(error_of(&["--kernel-tree", t]).contains("has no arch/x86/boot/bzImage or arch/arm64/boot/Image: build it first"));
        std::fs::write(&tree_image, "").unwrap();
        assert!(error_of(&["--kernel-tree", t]).contains("not a bzImage or an arm64 Image"));
        let mut image = vec![0u8; 0x300];
        image[0x202..0x206].copy_from_slice(b"HdrS");
        image[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        std::fs::write(&tree_image, image).unwrap();

        let args = run_args(&["6.12", "--kernel-tree", t]).unwrap();
        assert_eq!(args.kernels, ["6.12"]);
        let own = args.own_kernel(&matrix).unwrap().unwrap();
        assert_eq!(
            (own.name.as_str(), own.path.clone(), own.config.clone()),
            ("own", Some(tree_image.clone()), Some(tree.join(".config")))
        );
        assert_eq!(own.arch, Arch::Amd64);

        let image = tree_image.clone();
        let i = image.to_str().unwrap();
        let args = run_args(&["--kernel-image", i, "--kernel-name", "mine"]).unwrap();
        let own = args.own_kernel(&matrix).unwrap().unwrap();
        assert_eq!((own.name.as_str(), own.path.clone(), own.config.clone()), ("mine", Some(image.clone()), None));
        assert!(run_args(&["5.10"]).unwrap().own_kernel(&matrix).unwrap().is_none());

        for (argv, needle) in [
            (vec!["--kernel-image", i, "--kernel-tree", t], "cannot be used with"),
            (vec!["--kernel-config", i], "--kernel-image <PATH>"),
            (vec!["--kernel-name", "x"], "--kernel-image <PATH>"),
            (vec!["--kernel-image", "/nonexistent/bzImage"], "/nonexistent/bzImage: No such file"),
            (vec!["--kernel-image", t], "is not a file"),
            (vec!["--kernel-image", tree.join(".config").to_str().unwrap()], "not a bzImage or an arm64 Image"),
            (vec!["--kernel-image", i, "--kernel-name", "My kernel"], "lowercase"),
            (vec!["--debian-mirror", "deb.debian.org/debian"], "not an archive URI"),
        ] {
            let err = error_of(&argv);
            assert!(err.contains(needle), "{argv:?}: {err}");
        }
        let clash = run_args(&["--kernel-image", i, "--kernel-name", "sid"]).unwrap().own_kernel(&matrix).unwrap_err();
        assert_eq!(clash.exit_code(), 2);
        assert!(clash.to_string().contains("a kernel of the matrix is called \"sid\""), "{clash}");
        std::fs::remove_dir_all(&tree).unwrap();
    }

    #[test]
    fn case_binaries_are_static_and_one_per_architecture() {
        let exe = std::env::current_exe().unwrap();
        let e = exe.to_str().unwrap();
        // This test executable is dynamic (a gnu host build) or static.
        match crate::initramfs::is_static(&std::fs::read(&exe).unwrap()).unwrap() {
            false => assert!(error_of(&["--case-bin", e]).contains("dynamically linked"), "{}", error_of(&["--case-bin", e])),
            true => {
                let args = run_args(&["--case-bin", e, "--case-bin", e]).unwrap();
                assert!(args.check_case_bins().unwrap_err().to_string().contains("give one per architecture"));
            }
        }
        let script = std::env::temp_dir().join(format!("nsverify-cli-script-{}", std::process::id()));
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        assert!(error_of(&["--case-bin", script.to_str().unwrap()]).contains("not an x86_64 or aarch64 ELF"));
        std::fs::remove_file(&script).unwrap();
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x12] = 183;
        elf[0x36] = 56; // e_phentsize, no program headers: static
        let arm = std::env::temp_dir().join(format!("nsverify-cli-arm64-{}", std::process::id()));
        std::fs::write(&arm, &elf).unwrap();
        let args = run_args(&["--case-bin", arm.to_str().unwrap()]).unwrap();
        assert_eq!(args.case_bin, [(Arch::Arm64, arm.clone())]);
        assert!(args.check_case_bins().is_ok());
        std::fs::remove_file(&arm).unwrap();
    }

    #[test]
    fn an_arm64_tree_gives_an_arm64_kernel() {
        let matrix = Matrix::load(&repo_root().join("ci/kernels.toml")).unwrap();
        let tree = std::env::temp_dir().join(format!("nsverify-cli-arm64-tree-{}", std::process::id()));
        let image = tree.join(Arch::Arm64.tree_image());
        std::fs::create_dir_all(image.parent().unwrap()).unwrap();
        std::fs::write(tree.join(".config"), "CONFIG_ARM64=y\n").unwrap();
        let mut bytes = vec![0u8; 64];
        bytes[0x38..0x3c].copy_from_slice(b"ARM\x64");
        std::fs::write(&image, bytes).unwrap();
        for argv in [vec!["--kernel-tree", tree.to_str().unwrap()], vec!["--kernel-image", image.to_str().unwrap()]] {
            let own = run_args(&argv).unwrap().own_kernel(&matrix).unwrap().unwrap();
            assert_eq!((own.arch, own.path.clone()), (Arch::Arm64, Some(image.clone())), "{argv:?}");
        }
        std::fs::remove_dir_all(&tree).unwrap();
    }

    #[test]
    fn the_debian_archive_from_a_flag_or_the_environment() {
        use clap::CommandFactory;
        let cli = Cli::try_parse_from(["nsverify-vm", "--debian-mirror", "http://m/debian", "list"]).unwrap();
        let matrix = cli.matrix().unwrap();
        assert_eq!((matrix.apt.uri.as_str(), matrix.apt.security_uri.as_str()), ("http://m/debian", "http://m/debian-security"));
        let cli = Cli::try_parse_from(["nsverify-vm", "list", "--debian-security-mirror", "http://s/ds"]).unwrap();
        assert_eq!(cli.matrix().unwrap().apt.security_uri, "http://s/ds");
        let command = Cli::command();
        let env = |id: &str| command.get_arguments().find(|a| a.get_id() == id).and_then(|a| a.get_env()).map(|e| e.to_os_string());
        assert_eq!(env("debian_mirror").unwrap(), "NSVERIFY_DEBIAN_MIRROR");
        assert_eq!(env("debian_security_mirror").unwrap(), "NSVERIFY_DEBIAN_SECURITY_MIRROR");
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
