//! What goes into the guest: the case (and bench) executables, built with
//! cargo like `.ci/run` builds them, and the initramfs around them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::initramfs::{self, Initramfs};
use crate::table::RUNS;

/// The repository root (the driver lives in `<root>/ci`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("ci/ has a parent").to_path_buf()
}

/// Runs `cargo <args> --no-run --message-format=json` in the repository and
/// returns the executable of the target named `name` of kind `kind`.
fn cargo_executable(args: &[&str], name: &str, kind: &str) -> Result<PathBuf> {
    let shown = format!("cargo {} --no-run", args.join(" "));
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .args(["--no-run", "--message-format=json"])
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

/// Builds the case binary the way `.ci/run` does and returns its path.
pub fn build_case_binary(release: bool) -> Result<PathBuf> {
    let mut args = vec!["test", "-p", "nsverify-cases", "--test", "cases"];
    if release {
        args.push("--release");
    }
    cargo_executable(&args, "cases", "test")
}

/// Builds the fuzz suite's test executable (fuzz/README.md).
pub fn build_fuzz_binary(release: bool) -> Result<PathBuf> {
    let mut args = vec!["test", "-p", "nsverify-fuzz", "--test", "fuzz"];
    if release {
        args.push("--release");
    }
    cargo_executable(&args, "fuzz", "test")
}

/// Builds the bench executable (benches/README.md, "Standalone").
pub fn build_bench_binary() -> Result<PathBuf> {
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

/// Lines of a `/nsverify/<run>.args` file: one argument each.
fn arg_lines(args: &[String]) -> Vec<u8> {
    args.iter().map(|a| format!("{a}\n")).collect::<String>().into_bytes()
}

/// What the guest runs, and how.
#[derive(Debug, Clone)]
pub struct Payload {
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

    /// Writes `work/initramfs.cpio`, shared by every kernel (it needs no
    /// modules), and returns its path.
    pub fn build_initramfs(&self, work: &Path) -> Result<PathBuf> {
        let mut fs = Initramfs::new();
        let busybox = find_in_path("busybox").context("busybox not found (apt-get install busybox-static)")?;
        if !initramfs::shared_libraries(&busybox)?.is_empty() {
            bail!("{} is dynamically linked; install busybox-static", busybox.display());
        }
        fs.copy("/bin/busybox", &busybox, 0o755)?;
        fs.file("/init", include_bytes!("../guest/init.sh").to_vec(), 0o755);
        fs.executable("/nsverify/cases", &initramfs::without_debug_info(&self.case_bin, work)?)?;
        let setpriv = find_in_path("setpriv").context("setpriv not found (apt-get install util-linux)")?;
        fs.executable("/nsverify/setpriv", &setpriv)?;
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
    fn quoting_survives_the_guest_shell() {
        assert_eq!(shell_quote("a'b"), "'a'\\''b'");
    }

    #[test]
    fn guest_env_is_checked_and_quoted() {
        let mut p = Payload {
            case_bin: "x".into(),
            case_args: vec![],
            bench: None,
            fuzz: None,
            timeout_scale: 4.0,
            guest_env: vec!["RUST_BACKTRACE=1".into()],
        };
        assert_eq!(p.env_file().unwrap(), "export NSVERIFY_TIMEOUT_SCALE='4'\nexport RUST_BACKTRACE='1'\n");
        p.guest_env = vec!["no equals".into()];
        assert!(p.env_file().unwrap_err().to_string().contains("KEY=VALUE"));
    }
}
