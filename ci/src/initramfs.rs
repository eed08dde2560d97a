//! The guest's initramfs, written directly as a `newc` cpio archive: no
//! mknod, no root, no dependence on the host's umask. Every directory is
//! 0755 (a 0700 root would make every path EACCES for the unprivileged run).
//! Contents: busybox-static, `/init` (guest/init.sh), the case binary (and
//! the optional fuzz and bench binaries), the static `setpriv` (ci/setpriv),
//! and the run's settings in `/nsverify/`. Every executable must be static:
//! the guest has no shared libraries, and nothing is copied from the host's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

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

    /// Adds the executable `src` at `path`; it must be a static ELF
    /// executable (see [`is_static`]).
    pub fn executable(&mut self, path: &str, src: &Path) -> Result<()> {
        let data = std::fs::read(src).with_context(|| format!("reading {}", src.display()))?;
        if !is_static(&data).with_context(|| format!("{}", src.display()))? {
            bail!(
                "{} is dynamically linked; a guest has no shared libraries, so it needs a static executable \
                 (cargo --target x86_64-unknown-linux-musl or aarch64-unknown-linux-musl, or cc -static)",
                src.display()
            );
        }
        self.file(path, data, 0o755);
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

/// Whether the ELF executable `elf` is static: it names no program
/// interpreter (no `PT_INTERP` program header), so the kernel starts it
/// without a dynamic loader or shared libraries. A static PIE (musl's, or
/// glibc's with crt-static) has a `PT_DYNAMIC` but no interpreter, and is
/// static here. Not an ELF file, or a truncated one, is an error.
pub fn is_static(elf: &[u8]) -> Result<bool> {
    const PT_INTERP: u64 = 3;
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" {
        bail!("not an ELF executable");
    }
    let (class64, little) = (elf[4] == 2, elf[5] == 1);
    // The unsigned integer of `n` bytes at `at`, in the file's byte order.
    let int_at = |at: usize, n: usize| -> Option<u64> {
        let bytes = elf.get(at..at.checked_add(n)?)?;
        let fold = |v: u64, b: &u8| v << 8 | u64::from(*b);
        Some(if little { bytes.iter().rev().fold(0, fold) } else { bytes.iter().fold(0, fold) })
    };
    // e_phoff, e_phentsize and e_phnum (ELF64 / ELF32 layouts).
    let header =
        if class64 { (int_at(0x20, 8), int_at(0x36, 2), int_at(0x38, 2)) } else { (int_at(0x1c, 4), int_at(0x2a, 2), int_at(0x2c, 2)) };
    let (Some(phoff), Some(phentsize), Some(phnum)) = header else { bail!("truncated ELF header") };
    for i in 0..phnum {
        let at = phentsize.checked_mul(i).and_then(|o| o.checked_add(phoff)).and_then(|o| usize::try_from(o).ok());
        match at.and_then(|at| int_at(at, 4)) {
            Some(PT_INTERP) => return Ok(false),
            Some(_) => {}
            None => bail!("truncated ELF program headers"),
        }
    }
    Ok(true)
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

    /// A minimal ELF64 little-endian header with the program header types `types`.
    fn elf64(types: &[u32]) -> Vec<u8> {
        let mut e = vec![0u8; 64];
        e[..4].copy_from_slice(b"\x7fELF");
        (e[4], e[5]) = (2, 1);
        e[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        e[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        e[0x38..0x3a].copy_from_slice(&(types.len() as u16).to_le_bytes());
        for t in types {
            let mut ph = vec![0u8; 56];
            ph[..4].copy_from_slice(&t.to_le_bytes());
            e.extend(ph);
        }
        e
    }

    #[test]
    fn static_means_no_program_interpreter() {
        // PT_PHDR, PT_INTERP, PT_LOAD, PT_DYNAMIC: a dynamic executable.
        assert!(!is_static(&elf64(&[6, 3, 1, 2])).unwrap());
        // PT_LOAD, PT_DYNAMIC, PT_GNU_STACK: a static PIE.
        assert!(is_static(&elf64(&[1, 2, 0x6474e551])).unwrap());
        let mut truncated = elf64(&[1, 3]);
        truncated.truncate(64 + 56 + 2);
        assert!(is_static(&truncated).unwrap_err().to_string().contains("truncated"));
        assert!(is_static(b"#!/bin/sh\n").unwrap_err().to_string().contains("not an ELF"));
    }

    #[test]
    fn the_hosts_shell_is_dynamic_and_a_dynamic_executable_is_refused() {
        let Ok(sh) = std::fs::read("/bin/sh") else { return };
        if is_static(&sh).unwrap() {
            return; // a static /bin/sh (busybox systems) proves nothing here
        }
        let err = Initramfs::new().executable("/bin/sh", Path::new("/bin/sh")).unwrap_err();
        assert!(err.to_string().contains("dynamically linked"), "{err}");
    }
}
