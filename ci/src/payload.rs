//! What goes into the guest: the case (and fuzz, bench) executables, built
//! with cargo as `.ci/run` builds them but static (crate::arch), the guest's
//! busybox and setpriv, and the initramfs around them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, ensure, Context, Result};

use crate::apt::Apt;
use crate::arch::Arch;
use crate::initramfs::{self, Initramfs};
use crate::table::RUNS;

/// The repository root (the driver lives in `<root>/ci`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("ci/ has a parent").to_path_buf()
}

/// Runs `cargo <args> --no-run --message-format=json` in the repository and
/// returns the executable of the target named `name` of kind `kind`.
fn cargo_executable(args: &[&str], name: &str, kind: &str) -> Result<PathBuf> {
    // `cargo build` builds without running anyway and has no --no-run.
    let no_run: &[&str] = if args.first() == Some(&"build") { &[] } else { &["--no-run"] };
    let shown = format!("cargo {} {}", args.join(" "), no_run.join(" "));
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .args(no_run)
        .arg("--message-format=json")
        .current_dir(repo_root())
        .stderr(Stdio::inherit())
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

/// `base` plus `--release` if asked, plus the cross-build options of `arch`.
fn build_args(base: &[&str], release: bool, arch: Arch) -> Vec<String> {
    let mut args: Vec<String> = base.iter().map(|a| a.to_string()).collect();
    if release {
        args.push("--release".into());
    }
    args.extend(arch.cargo_args());
    args
}

fn cargo_for(base: &[&str], release: bool, arch: Arch, name: &str, kind: &str) -> Result<PathBuf> {
    let args = build_args(base, release, arch);
    cargo_executable(&args.iter().map(String::as_str).collect::<Vec<_>>(), name, kind)
}

/// Builds the case binary the way `.ci/run` does, static for `arch`'s
/// guests ([`Arch::cargo_args`]), and returns its path.
pub fn build_case_binary(release: bool, arch: Arch) -> Result<PathBuf> {
    cargo_for(&["test", "-p", "nsverify-cases", "--test", "cases"], release, arch, "cases", "test")
}

/// Builds the fuzz suite's test executable (fuzz/README.md).
pub fn build_fuzz_binary(release: bool, arch: Arch) -> Result<PathBuf> {
    cargo_for(&["test", "-p", "nsverify-fuzz", "--test", "fuzz"], release, arch, "fuzz", "test")
}

/// Builds the guest's static privilege drop (ci/setpriv): util-linux's
/// setpriv is dynamically linked.
pub fn build_setpriv(arch: Arch) -> Result<PathBuf> {
    cargo_for(&["build", "-p", "nsverify-setpriv", "--bin", "setpriv"], false, arch, "setpriv", "bin")
}

/// Builds the bench executable (benches/README.md, "Standalone") for
/// `arch`'s guests, static ([`Arch::bench_cargo_args`]). Only for the
/// host's architecture: criterion's build needs a C compiler for the
/// target, which the driver does not install.
pub fn build_bench_binary(arch: Arch) -> Result<PathBuf> {
    let Some(target) = arch.bench_cargo_args() else {
        bail!("--benches is not supported for {arch} kernels (building the benches needs a C cross compiler); run the {arch} kernels without it");
    };
    let args: Vec<&str> =
        ["bench", "-p", "nsverify-benches", "--bench", "namespaces"].into_iter().chain(target.iter().map(String::as_str)).collect();
    cargo_executable(&args, "namespaces", "bench").context("building the benches (is the nsverify-benches crate in the workspace?)")
}

/// The guest's busybox and setpriv, both static: the host's busybox-static
/// (from PATH) for the host's architecture, Debian's busybox-static for
/// another ([`foreign_busybox`]); setpriv built for the guest ([`build_setpriv`]).
pub fn guest_tools(apt: &Apt, cache: &Path, arch: Arch) -> Result<(PathBuf, PathBuf)> {
    let busybox = if arch.is_host() {
        find_in_path("busybox").context("busybox not found (apt-get install busybox-static)")?
    } else {
        foreign_busybox(apt, cache, arch)?
    };
    Ok((busybox, build_setpriv(arch)?))
}

/// The suite busybox-static comes from for foreign-architecture guests.
pub const BUSYBOX_SUITE: &str = "trixie";

/// A static busybox for `arch`'s guests: busybox-static of [`BUSYBOX_SUITE`]
/// through that architecture's private apt, cached in `cache/tools/<arch>/`.
pub fn foreign_busybox(apt: &Apt, cache: &Path, arch: Arch) -> Result<PathBuf> {
    let dir = cache.join("tools").join(arch.debian());
    let busybox = dir.join("busybox");
    if busybox.is_file() {
        return Ok(busybox);
    }
    let debs = apt.download(BUSYBOX_SUITE, "busybox-static", &dir.join("debs"))?;
    let (_, deb) = debs.first().context("apt-get download gave no busybox-static")?;
    let tree = dir.join("x");
    let status = Command::new("dpkg-deb").arg("-x").arg(deb).arg(&tree).status().context("running dpkg-deb -x")?;
    ensure!(status.success(), "dpkg-deb -x {}: {status}", deb.display());
    // trixie and later ship it in usr/bin, bookworm in bin.
    let found = ["usr/bin/busybox", "bin/busybox"].iter().map(|p| tree.join(p)).find(|p| p.is_file());
    let found = found.with_context(|| format!("no busybox in {}", deb.display()))?;
    std::fs::rename(found, &busybox)?;
    let _ = std::fs::remove_dir_all(&tree);
    let _ = std::fs::remove_dir_all(dir.join("debs"));
    Ok(busybox)
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|f| f.is_file()))
}

/// Single-quotes `s` for the guest's shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Lines of a `/nsverify/<run>.args` file: one argument each.
fn arg_lines(args: &[String]) -> Vec<u8> {
    args.iter().map(|a| format!("{a}\n")).collect::<String>().into_bytes()
}

/// What the guest runs, and how.
#[derive(Debug, Clone)]
pub struct Payload {
    /// The guests' architecture.
    pub arch: Arch,
    /// The guest's static busybox and setpriv ([`guest_tools`]).
    pub tools: (PathBuf, PathBuf),
    /// The case binary.
    pub case_bin: PathBuf,
    /// Its arguments (libtest's), for the root and the unprivileged run.
    pub case_args: Vec<String>,
    /// The optional bench executable and its arguments.
    pub bench: Option<(PathBuf, Vec<String>)>,
    /// The optional fuzz suite executable (run as root after the cases).
    pub fuzz: Option<PathBuf>,
    /// NSVERIFY_TIMEOUT_SCALE in the guest.
    pub timeout_scale: f64,
    /// Extra KEY=VALUE for the guest's environment.
    pub guest_env: Vec<String>,
}

impl Payload {
    /// The shell lines of `/nsverify/env`, sourced by /init.
    fn env_file(&self) -> Result<String> {
        let mut env = format!("export NSVERIFY_TIMEOUT_SCALE={}\n", shell_quote(&self.timeout_scale.to_string()));
        env += &format!("export NSVERIFY_CHANNEL={}\n", self.arch.results_channel());
        if self.bench.is_some() {
            env += "export NSVERIFY_BENCH_QUICK=1\n";
        }
        for kv in &self.guest_env {
            let valid = |k: &str| !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            let Some((k, v)) = kv.split_once('=').filter(|(k, _)| valid(k)) else {
                bail!("--guest-env {kv:?}: expected KEY=VALUE");
            };
            env += &format!("export {k}={}\n", shell_quote(v));
        }
        Ok(env)
    }

    /// Writes `work/initramfs.cpio`, shared by every kernel of the
    /// architecture (it needs no modules), and returns its path.
    pub fn build_initramfs(&self, work: &Path) -> Result<PathBuf> {
        let mut fs = Initramfs::new();
        let (busybox, setpriv) = &self.tools;
        fs.executable("/bin/busybox", busybox).context("the guest's /init and shell (apt-get install busybox-static)")?;
        fs.file("/init", include_bytes!("../guest/init.sh").to_vec(), 0o755);
        fs.executable("/nsverify/cases", &initramfs::without_debug_info(&self.case_bin, work)?)?;
        fs.executable("/nsverify/setpriv", &initramfs::without_debug_info(setpriv, work)?)?;
        fs.file("/etc/passwd", b"root:x:0:0:root:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n".to_vec(), 0o644);
        fs.file("/etc/group", b"root:x:0:\nnogroup:x:65534:\n".to_vec(), 0o644);
        for (run, _) in RUNS {
            fs.file(&format!("/nsverify/{run}.args"), arg_lines(&self.case_args), 0o644);
        }
        if let Some(fuzz) = &self.fuzz {
            fs.executable("/nsverify/fuzz", &initramfs::without_debug_info(fuzz, work)?)?;
            fs.file("/nsverify/fuzz.args", Vec::new(), 0o644);
        }
        if let Some((bench, args)) = &self.bench {
            fs.executable("/nsverify/bench", &initramfs::without_debug_info(bench, work)?)?;
            fs.file("/nsverify/bench.args", arg_lines(args), 0o644);
        }
        fs.file("/nsverify/env", self.env_file()?.into_bytes(), 0o644);
        let path = work.join("initramfs.cpio");
        std::fs::write(&path, fs.to_cpio()).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

/// The shared initramfs `base` with the kernel's recorded config appended
/// as a second cpio archive (`/nsverify/kernel.config`, which /init hands to
/// the suite as NSVERIFY_KERNEL_CONFIG): the suite learns which namespace
/// kinds are built in from the config, not from the entries it verifies.
/// Written to `dir/initramfs.cpio`.
pub fn with_kernel_config(base: &Path, config: &Path, dir: &Path) -> Result<PathBuf> {
    let mut bytes = std::fs::read(base).with_context(|| format!("reading {}", base.display()))?;
    let mut extra = Initramfs::new();
    extra.copy("/nsverify/kernel.config", config, 0o644)?;
    bytes.extend(extra.to_cpio());
    let path = dir.join("initramfs.cpio");
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_builds_add_the_target() {
        let amd = build_args(&["test"], true, Arch::Amd64);
        assert_eq!(&amd[..2], ["test", "--release"]);
        assert_eq!(&amd[amd.len() - 2..], ["--target", "x86_64-unknown-linux-musl"]);
        let arm = build_args(&["test"], false, Arch::Arm64);
        assert_eq!(&arm[arm.len() - 2..], ["--target", "aarch64-unknown-linux-musl"]);
        assert!(build_bench_binary(Arch::Arm64).unwrap_err().to_string().contains("not supported for arm64"));
    }

    #[test]
    fn quoting_survives_the_guest_shell() {
        assert_eq!(shell_quote("a'b"), "'a'\\''b'");
    }

    #[test]
    fn guest_env_is_checked_and_quoted() {
        let mut p = Payload {
            arch: Arch::Amd64,
            tools: ("busybox".into(), "setpriv".into()),
            case_bin: "x".into(),
            case_args: vec![],
            bench: None,
            fuzz: None,
            timeout_scale: 4.0,
            guest_env: vec!["RUST_BACKTRACE=1".into()],
        };
        assert_eq!(
            p.env_file().unwrap(),
            "export NSVERIFY_TIMEOUT_SCALE='4'\nexport NSVERIFY_CHANNEL=/dev/ttyS1\nexport RUST_BACKTRACE='1'\n"
        );
        p.arch = Arch::Arm64;
        assert!(p.env_file().unwrap().contains("NSVERIFY_CHANNEL=/dev/ttyS0\n"));
        p.guest_env = vec!["no equals".into()];
        assert!(p.env_file().unwrap_err().to_string().contains("KEY=VALUE"));
    }
}
