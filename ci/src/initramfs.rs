//! The guest's initramfs, written directly as a `newc` cpio archive: no
//! mknod, no root, no dependence on the host's umask. Every directory is
//! 0755 (a 0700 root would make every path EACCES for the unprivileged run).
//! Contents: busybox-static, `/init` (guest/init.sh), the case binary (and
//! optional bench binary) with the shared libraries `ldd` lists, util-linux
//! `setpriv`, and the run's settings in `/nsverify/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, ensure, Context, Result};

/// One archive member.
#[derive(Debug, Clone)]
enum Node {
    Dir,
    File { data: Vec<u8>, mode: u32 },
    CharDev { major: u32, minor: u32, mode: u32 },
}

/// An initramfs being assembled: absolute paths to nodes. Parent directories
/// are added automatically.
#[derive(Debug, Default)]
pub struct Initramfs {
    nodes: BTreeMap<String, Node>,
}

impl Initramfs {
    /// An archive with the root and the directories init mounts on.
    pub fn new() -> Initramfs {
        let mut fs = Initramfs::default();
        for d in ["/bin", "/dev", "/proc", "/sys", "/tmp", "/run", "/etc", "/nsverify"] {
            fs.dir(d);
        }
        // DEVTMPFS_MOUNT is off in Debian's kernels: the console must exist
        // before init mounts devtmpfs.
        fs.nodes.insert("/dev/console".into(), Node::CharDev { major: 5, minor: 1, mode: 0o600 });
        fs
    }

    fn dir(&mut self, path: &str) {
        let mut at = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            at.push('/');
            at.push_str(part);
            self.nodes.entry(at.clone()).or_insert(Node::Dir);
        }
    }

    /// Adds a file with `data` at `path`.
    pub fn file(&mut self, path: &str, data: Vec<u8>, mode: u32) {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        self.nodes.insert(path.into(), Node::File { data, mode });
    }

    /// Adds the host file `src` at `path`.
    pub fn copy(&mut self, path: &str, src: &Path, mode: u32) -> Result<()> {
        let data = std::fs::read(src).with_context(|| format!("reading {}", src.display()))?;
        self.file(path, data, mode);
        Ok(())
    }

    /// Adds the executable `src` at `path` with every shared library `ldd`
    /// lists, each at the path the dynamic loader looks for it.
    pub fn executable(&mut self, path: &str, src: &Path) -> Result<()> {
        self.copy(path, src, 0o755)?;
        for lib in shared_libraries(src)? {
            let at = lib.to_string_lossy().into_owned();
            if !self.nodes.contains_key(&at) {
                self.copy(&at, &lib, 0o755)?;
            }
        }
        Ok(())
    }

    /// Total size of file contents.
    pub fn payload_bytes(&self) -> usize {
        self.nodes.values().map(|n| if let Node::File { data, .. } = n { data.len() } else { 0 }).sum()
    }

    /// The archive in `newc` format (parents before children, then TRAILER!!!).
    pub fn to_cpio(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.payload_bytes() + 4096);
        let mut ino = 1;
        let mut entry = |out: &mut Vec<u8>, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]| {
            let fields = [ino, mode, 0, 0, 1, 0, data.len() as u32, 0, 0, rdev.0, rdev.1, name.len() as u32 + 1, 0];
            out.extend_from_slice(b"070701");
            for f in fields {
                out.extend_from_slice(format!("{f:08x}").as_bytes());
            }
            out.extend_from_slice(name.as_bytes());
            out.push(0);
            pad4(out);
            out.extend_from_slice(data);
            pad4(out);
            ino += 1;
        };
        entry(&mut out, ".", 0o040755, (0, 0), &[]);
        for (path, node) in &self.nodes {
            let name = &path[1..];
            match node {
                Node::Dir => entry(&mut out, name, 0o040755, (0, 0), &[]),
                Node::File { data, mode } => entry(&mut out, name, 0o100000 | mode, (0, 0), data),
                Node::CharDev { major, minor, mode } => entry(&mut out, name, 0o020000 | mode, (*major, *minor), &[]),
            }
        }
        entry(&mut out, "TRAILER!!!", 0, (0, 0), &[]);
        out
    }
}

fn pad4(out: &mut Vec<u8>) {
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

/// The shared libraries of `exe` as `ldd` resolves them (none for a static
/// executable), including the dynamic loader.
pub fn shared_libraries(exe: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd").arg(exe).output().context("running ldd")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if text.contains("not a dynamic executable") || err.contains("not a dynamic executable") {
            return Ok(vec![]);
        }
        bail!("ldd {}: {}", exe.display(), err.trim());
    }
    let mut libs = Vec::new();
    for line in text.lines() {
        ensure!(!line.contains("not found"), "{}: shared library {}", exe.display(), line.trim());
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
        let path = line.split_once("=>").map_or(line, |(_, p)| p).split_whitespace().next().unwrap_or("");
        if path.starts_with('/') {
            libs.push(PathBuf::from(path));
        }
    }
    Ok(libs)
}

/// Copies `exe` to `dir` without its DWARF sections (symbols stay, so
/// backtraces keep function names): a debug build shrinks about tenfold, and
/// under TCG every megabyte of initramfs costs boot time. Falls back to the
/// original when objcopy is missing. The host's binutils objcopy reads only
/// its own architecture; for a foreign one (arm64 guests) the Rust
/// toolchain's llvm-objcopy (rustup component llvm-tools) does the job.
pub fn without_debug_info(exe: &Path, dir: &Path) -> Result<PathBuf> {
    let name = exe.file_name().context("executable path has no file name")?;
    let out = dir.join(name);
    let strip = |tool: &Path| Command::new(tool).arg("--strip-debug").arg(exe).arg(&out).stderr(Stdio::null()).status();
    if matches!(strip(Path::new("objcopy")), Ok(s) if s.success()) {
        return Ok(out);
    }
    match llvm_objcopy().map(|t| strip(&t)) {
        Some(Ok(s)) if s.success() => Ok(out),
        _ => Ok(exe.to_path_buf()),
    }
}

/// The Rust toolchain's llvm-objcopy, when the llvm-tools component is installed.
fn llvm_objcopy() -> Option<PathBuf> {
    let out = Command::new("rustc").args(["--print", "sysroot"]).output().ok()?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let host = if cfg!(target_arch = "aarch64") { "aarch64-unknown-linux-gnu" } else { "x86_64-unknown-linux-gnu" };
    Some(sysroot.join("lib/rustlib").join(host).join("bin/llvm-objcopy")).filter(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_headers_and_modes() {
        let mut fs = Initramfs::new();
        fs.file("/nsverify/args", b"--exact\n".to_vec(), 0o644);
        let cpio = fs.to_cpio();
        assert_eq!(&cpio[..6], b"070701");
        // The root entry comes first, mode 040755 (not mktemp's 0700).
        assert_eq!(&cpio[6 + 8..6 + 16], b"000041ed");
        let text = String::from_utf8_lossy(&cpio);
        assert!(text.contains("dev/console"));
        assert!(text.contains("nsverify/args\0"));
        assert!(text.ends_with("TRAILER!!!\0\0\0\0") || text.contains("TRAILER!!!"));
        assert_eq!(cpio.len() % 4, 0);
    }

    #[test]
    fn parent_directories_are_added() {
        let mut fs = Initramfs::new();
        fs.file("/lib/x86_64-linux-gnu/libc.so.6", vec![1, 2, 3], 0o755);
        assert!(matches!(fs.nodes.get("/lib/x86_64-linux-gnu"), Some(Node::Dir)));
        assert!(matches!(fs.nodes.get("/lib"), Some(Node::Dir)));
        assert_eq!(fs.payload_bytes(), 3);
    }

    #[test]
    fn ldd_of_a_dynamic_binary_lists_the_loader() {
        let Ok(libs) = shared_libraries(Path::new("/bin/sh")) else { return };
        assert!(libs.iter().any(|l| l.to_string_lossy().contains("ld-linux")), "{libs:?}");
    }
}
