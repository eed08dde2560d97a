//! Kernels that the project builds itself from Debian's kernel source
//! package: the mutants' base kernel (ci/mutants/base.toml) and its debug
//! variant.
//!
//! The source package is pinned by exact version in the data file and
//! downloaded through the same private apt as the VM kernels (crate::apt),
//! so nothing on the host changes. The tree is unpacked once under the build
//! directory (default `target/nsverify-vm/kbuild/`), configured as
//! `make tinyconfig`, `scripts/kconfig/merge_config.sh -m` of the fragments
//! and `make olddefconfig`, and built out of tree (`O=`) with `make -j$(nproc)`.
//!
//! Every `CONFIG_` line of the fragments is checked after olddefconfig: an
//! option the tree cannot set is an error, not a silent drop.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};

use crate::apt::Apt;
use crate::arch::Arch;

/// The data file of the pinned source and its variants, relative to the
/// repository root.
pub const BASE_SPEC: &str = "ci/mutants/base.toml";

/// The config fragment that makes a tree testable by the matrix: `make
/// tinyconfig`, `scripts/kconfig/merge_config.sh -m .config` of it, `make
/// olddefconfig`. The first fragment of every variant of [`BASE_SPEC`], so
/// the base kernel and a kernel of your own (`run --kernel-tree`) are
/// configured alike; relative to the repository root.
pub const KERNEL_FRAGMENT: &str = "ci/kernel.config";

/// The line of [`KERNEL_FRAGMENT`] that starts its x86_64-only block, which
/// runs to the end of the file.
pub const X86_ONLY_MARK: &str = "# x86_64 only";

/// What a kernel of `arch` must hold: [`KERNEL_FRAGMENT`] (without its
/// x86_64-only block on another architecture), then the architecture's own
/// fragment ([`Arch::kernel_fragment`]); the text, and the files it names.
pub fn fragment_for(root: &Path, arch: Arch) -> Result<(String, String)> {
    let read = |f: &str| std::fs::read_to_string(root.join(f)).with_context(|| format!("reading {f}"));
    let mut text = read(KERNEL_FRAGMENT)?;
    let mut names = KERNEL_FRAGMENT.to_string();
    if arch != Arch::Amd64 {
        if let Some(at) = text.find(&format!("\n{X86_ONLY_MARK}")) {
            text.truncate(at + 1);
        }
    }
    if let Some(extra) = arch.kernel_fragment() {
        text += &read(extra)?;
        names += &format!(" + {extra}");
    }
    Ok((text, names))
}

/// The lines of the fragments for `arch` ([`fragment_for`]) that the kernel
/// config at `config` does not hold (see [`unmet_options`]), and the
/// fragments' names.
pub fn fragment_gaps(root: &Path, config: &Path, arch: Arch) -> Result<(Vec<String>, String)> {
    let (fragment, names) = fragment_for(root, arch)?;
    let config = std::fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
    Ok((unmet_options(&fragment, &config), names))
}

/// Where sources are unpacked and built: `NSVERIFY_KBUILD_DIR`, else
/// `kbuild/` beside the kernel cache (`target/nsverify-vm/kbuild`).
pub fn dir_for(cache: &Path) -> PathBuf {
    match std::env::var_os("NSVERIFY_KBUILD_DIR") {
        Some(d) => PathBuf::from(d),
        None => cache.parent().unwrap_or(cache).join("kbuild"),
    }
}

/// `ci/mutants/base.toml`: the source and the configurations built from it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BaseSpec {
    /// The pinned source package.
    pub source: SourcePin,
    /// Configurations by variant name ("base", "debug"), each a list of
    /// fragments merged onto tinyconfig in order.
    pub variant: Vec<Variant>,
}

/// A Debian source package pinned by exact version.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourcePin {
    /// The Debian suite that carries it.
    pub suite: String,
    /// The package (`linux-source-6.12`).
    pub package: String,
    /// Its exact Debian version.
    pub version: String,
}

/// One configuration of the pinned source.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Its name: the `build` key of a ci/kernels.toml entry.
    pub name: String,
    /// Config fragments, relative to the repository root, merged in order.
    pub fragments: Vec<PathBuf>,
    /// What it is for.
    #[serde(default)]
    pub about: String,
}

impl BaseSpec {
    /// Reads and checks the data file.
    pub fn load(path: &Path) -> Result<BaseSpec> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let spec: BaseSpec = toml::from_str(&text).with_context(|| format!("in {}", path.display()))?;
        ensure!(!spec.variant.is_empty(), "{}: no [[variant]]", path.display());
        for v in &spec.variant {
            ensure!(
                v.fragments.first().is_some_and(|f| f == Path::new(KERNEL_FRAGMENT)),
                "{}: variant {:?} must start from {KERNEL_FRAGMENT} (the one home of what a testable kernel needs)",
                path.display(),
                v.name
            );
        }
        Ok(spec)
    }

    /// The variant called `name`.
    pub fn variant(&self, name: &str) -> Result<&Variant> {
        self.variant.iter().find(|v| v.name == name).with_context(|| {
            let known: Vec<&str> = self.variant.iter().map(|v| v.name.as_str()).collect();
            format!("no build variant {name:?} (known: {})", known.join(", "))
        })
    }
}

/// The pristine source tree of `pin`, unpacked under `dir/src/`; downloads
/// the package through `apt` on first use.
pub fn ensure_source(pin: &SourcePin, dir: &Path, apt: &Apt) -> Result<PathBuf> {
    let base = dir.join("src").join(format!("{}_{}", pin.package, pin.version));
    let done = base.join(".unpacked");
    let tree = base.join("linux");
    if done.exists() && tree.join("Makefile").exists() {
        return Ok(tree);
    }
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base)?;
    let started = Instant::now();
    let deb = apt
        .download_exact(&pin.suite, &pin.package, &pin.version, &base)
        .with_context(|| format!("downloading {}={} from {}", pin.package, pin.version, pin.suite))?;
    // The package holds one tarball, /usr/src/<package>.tar.xz.
    let unpack = base.join("unpack");
    std::fs::create_dir_all(&unpack)?;
    let status = Command::new("sh")
        .arg("-c")
        .arg("dpkg-deb --fsys-tarfile \"$1\" | tar -x -C \"$2\" --wildcards './usr/src/linux-source-*.tar.*' && tar -x -C \"$2\" -f \"$2\"/usr/src/linux-source-*.tar.*")
        .args(["sh", &deb.display().to_string(), &unpack.display().to_string()])
        .status()
        .context("running dpkg-deb | tar")?;
    ensure!(status.success(), "unpacking {}: {status}", deb.display());
    let top = std::fs::read_dir(&unpack)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("Makefile").exists())
        .context("the source package holds no kernel tree")?;
    std::fs::rename(&top, &tree)?;
    std::fs::remove_dir_all(&unpack)?;
    std::fs::remove_file(&deb)?;
    std::fs::write(&done, format!("{} {}\n", pin.package, pin.version))?;
    eprintln!("kbuild: {} {} unpacked in {:.1}s -> {}", pin.package, pin.version, started.elapsed().as_secs_f64(), tree.display());
    Ok(tree)
}

/// An out-of-tree build of a source tree.
pub struct Build {
    /// The source tree.
    pub src: PathBuf,
    /// The `O=` directory.
    pub out: PathBuf,
    /// The log of the last make, for errors.
    pub log: PathBuf,
    /// The ccache directory, when ccache is used (`CC="ccache gcc"`).
    pub ccache: Option<PathBuf>,
}

/// Whether to compile through ccache: when it is installed and
/// `NSVERIFY_KBUILD_CCACHE` is not `0`. A mutant that touches a header makes
/// hundreds of objects recompile, and restoring the tree makes them
/// recompile again; with ccache both are cache hits from the second time on.
fn use_ccache() -> bool {
    std::env::var("NSVERIFY_KBUILD_CCACHE").map_or(true, |v| v != "0")
        && std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("ccache").is_file()))
}

impl Build {
    /// The build of `src` into `out`; ccache (if used) keeps its cache in
    /// `ccache/` beside the build directories.
    pub fn new(src: &Path, out: &Path) -> Build {
        let ccache = use_ccache().then(|| out.parent().and_then(Path::parent).unwrap_or(out).join("ccache"));
        Build { src: src.to_path_buf(), out: out.to_path_buf(), log: out.join("nsverify-make.log"), ccache }
    }

    fn make(&self, args: &[&str]) -> Result<()> {
        std::fs::create_dir_all(&self.out)?;
        let log = File::create(&self.log)?;
        let mut make = Command::new("make");
        if let Some(dir) = &self.ccache {
            make.arg("CC=ccache gcc").env("CCACHE_DIR", dir).env("CCACHE_MAXSIZE", "8G");
        }
        let status = make
            .arg("-C")
            .arg(&self.src)
            .arg(format!("O={}", self.out.display()))
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .context("running make (apt-get install make gcc flex bison bc libelf-dev)")?;
        if !status.success() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect();
            bail!("make {} failed ({status}); last lines of {}:\n{}", args.join(" "), self.log.display(), tail.join("\n"));
        }
        Ok(())
    }

    /// Configures the tree: tinyconfig, then the fragments merged in order,
    /// then olddefconfig; every `CONFIG_` line of the fragments must hold in
    /// the result. Skipped when the same fragments configured it last.
    pub fn configure(&self, root: &Path, fragments: &[PathBuf]) -> Result<()> {
        let mut merged = String::new();
        for f in fragments {
            let path = root.join(f);
            merged += &std::fs::read_to_string(&path).with_context(|| format!("reading config fragment {}", path.display()))?;
            merged.push('\n');
        }
        let stamp = self.out.join("nsverify-fragments");
        if std::fs::read_to_string(&stamp).ok().as_deref() == Some(merged.as_str()) && self.out.join(".config").exists() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.out)?;
        let fragment = self.out.join("nsverify.config");
        std::fs::write(&fragment, &merged)?;
        self.make(&["tinyconfig"])?;
        let log = File::create(&self.log)?;
        let status = Command::new(self.src.join("scripts/kconfig/merge_config.sh"))
            .arg("-m")
            .arg("-O")
            .arg(&self.out)
            .arg(self.out.join(".config"))
            .arg(&fragment)
            .current_dir(&self.src)
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .context("running scripts/kconfig/merge_config.sh")?;
        ensure!(status.success(), "merge_config.sh failed ({status}); see {}", self.log.display());
        self.make(&["olddefconfig"])?;
        let config = std::fs::read_to_string(self.out.join(".config"))?;
        let missing = unmet_options(&merged, &config);
        ensure!(
            missing.is_empty(),
            "the kernel config does not hold these fragment lines (unknown option or unmet dependency): {}",
            missing.join(", ")
        );
        std::fs::write(&stamp, merged)?;
        Ok(())
    }

    /// Builds `targets` with `make -j<jobs>`; returns how long it took.
    pub fn build(&self, targets: &[&str], jobs: usize) -> Result<Duration> {
        let started = Instant::now();
        let j = format!("-j{jobs}");
        let mut args = vec![j.as_str()];
        args.extend_from_slice(targets);
        self.make(&args)?;
        Ok(started.elapsed())
    }

    /// The uncompressed kernel (booted through its PVH entry).
    pub fn vmlinux(&self) -> PathBuf {
        self.out.join("vmlinux")
    }

    /// The bzImage.
    pub fn bzimage(&self) -> PathBuf {
        self.out.join("arch/x86/boot/bzImage")
    }

    /// The resulting .config.
    pub fn config(&self) -> PathBuf {
        self.out.join(".config")
    }
}

/// The `CONFIG_X=v` and `# CONFIG_X is not set` lines of `fragment` that do
/// not hold in `config`.
pub fn unmet_options(fragment: &str, config: &str) -> Vec<String> {
    let have: std::collections::HashSet<&str> = config.lines().map(str::trim).collect();
    fragment
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("CONFIG_") || (l.starts_with("# CONFIG_") && l.ends_with(" is not set")))
        .filter(|l| {
            if let Some(name) = l.strip_prefix("# ").and_then(|l| l.strip_suffix(" is not set")) {
                // "not set" also holds when the option is absent altogether.
                have.iter().any(|h| h.starts_with(&format!("{name}="))) && !have.contains(l)
            } else {
                !have.contains(l)
            }
        })
        .map(str::to_string)
        .collect()
}

/// Builds `variant` of the base spec (configure + make) and returns the
/// build, ready to boot.
pub fn build_variant(root: &Path, spec: &BaseSpec, variant: &str, dir: &Path, apt: &Apt, jobs: usize) -> Result<(Build, Duration)> {
    let v = spec.variant(variant)?;
    let src = ensure_source(&spec.source, dir, apt)?;
    let build = Build::new(&src, &dir.join("build").join(&v.name));
    // Two drivers (a matrix and a mutant run, say) building one variant in
    // one tree at once would break each other's make: the second waits.
    let _lock = lock_build(&dir.join("build"), &v.name)?;
    build.configure(root, &v.fragments)?;
    let took = build.build(&["vmlinux", "bzImage"], jobs)?;
    Ok((build, took))
}

/// An exclusive lock on `<builds>/<name>.lock` (flock(2)), held until
/// dropped; waits while another process holds it, and says so.
fn lock_build(builds: &Path, name: &str) -> Result<nix::fcntl::Flock<std::fs::File>> {
    use nix::fcntl::{Flock, FlockArg};
    std::fs::create_dir_all(builds)?;
    let path = builds.join(format!("{name}.lock"));
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(lock),
        Err((file, nix::errno::Errno::EWOULDBLOCK)) => {
            eprintln!("nsverify-vm: another build of {name} is running ({}); waiting for it", path.display());
            Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| anyhow::anyhow!("flock {}: {e}", path.display()))
        }
        Err((_, e)) => Err(anyhow::anyhow!("flock {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_lines_are_checked_against_the_config() {
        let fragment = "# comment\nCONFIG_A=y\nCONFIG_B=\"x\"\n# CONFIG_C is not set\n# CONFIG_D is not set\n";
        let config = "CONFIG_A=y\nCONFIG_B=\"y\"\nCONFIG_C=y\n";
        assert_eq!(unmet_options(fragment, config), ["CONFIG_B=\"x\"", "# CONFIG_C is not set"]);
    }

    #[test]
    fn the_base_kernel_is_configured_from_the_shared_fragment() {
        let root = crate::payload::repo_root();
        let spec = BaseSpec::load(&root.join(BASE_SPEC)).unwrap();
        assert_eq!(spec.variant("base").unwrap().fragments, [PathBuf::from(KERNEL_FRAGMENT)]);
        let fragment = std::fs::read_to_string(root.join(KERNEL_FRAGMENT)).unwrap();
        // What a guest needs to power off rather than halt, and to tell the
        // suite its kinds; what the README's commands merge.
        for line in ["CONFIG_ACPI=y", "CONFIG_PCI=y", "CONFIG_SUSPEND=y", "CONFIG_IKCONFIG_PROC=y", "CONFIG_PVH=y"] {
            assert!(fragment.lines().any(|l| l.trim() == line), "{KERNEL_FRAGMENT} lacks {line}");
        }
        let readme = std::fs::read_to_string(root.join("ci/README.md")).unwrap();
        assert!(readme.contains("make tinyconfig"), "ci/README.md shows the commands");
        assert!(
            readme.contains(&format!("merge_config.sh -m .config $NSVERIFY/{KERNEL_FRAGMENT}")),
            "ci/README.md merges {KERNEL_FRAGMENT}"
        );
        let arm64 = Arch::Arm64.kernel_fragment().unwrap();
        assert!(readme.contains(&format!("$NSVERIFY/{KERNEL_FRAGMENT} $NSVERIFY/{arm64}")), "ci/README.md merges {arm64} for arm64");
        // A config holding every line has no gaps; one without ACPI names it.
        let dir = std::env::temp_dir().join(format!("nsverify-gaps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("full"), &fragment).unwrap();
        assert!(fragment_gaps(&root, &dir.join("full"), Arch::Amd64).unwrap().0.is_empty());
        std::fs::write(dir.join("no-acpi"), fragment.replace("CONFIG_ACPI=y", "# CONFIG_ACPI is not set")).unwrap();
        assert_eq!(fragment_gaps(&root, &dir.join("no-acpi"), Arch::Amd64).unwrap().0, ["CONFIG_ACPI=y"]);
        // arm64: no x86_64-only line is asked for, the board's lines are.
        let (arm64, names) = fragment_for(&root, Arch::Arm64).unwrap();
        assert_eq!(names, "ci/kernel.config + ci/kernel.arm64.config");
        assert!(!arm64.contains("CONFIG_PVH=y") && !arm64.contains("CONFIG_ACPI=y") && arm64.contains("CONFIG_USER_NS=y"));
        assert_eq!(fragment_gaps(&root, &dir.join("no-acpi"), Arch::Arm64).unwrap().0[0], "CONFIG_SERIAL_AMBA_PL011=y");
        std::fs::write(dir.join("arm64"), &arm64).unwrap();
        assert!(fragment_gaps(&root, &dir.join("arm64"), Arch::Arm64).unwrap().0.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_data_file_parses() {
        let spec = BaseSpec::load(&crate::payload::repo_root().join("ci/mutants/base.toml")).unwrap();
        assert!(spec.variant("base").is_ok());
        assert!(spec.variant("nope").unwrap_err().to_string().contains("known: base"));
        assert!(spec.source.version.chars().next().unwrap().is_ascii_digit());
    }
}
