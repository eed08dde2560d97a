//! The clap value parsers of the command line: paths made absolute, kernel
//! images and built trees checked before anything runs, names and archive
//! URIs as the data file allows them. Each error is the message clap prints
//! (exit code 2).

use std::path::{Path, PathBuf};

use crate::arch::Arch;
use crate::bzimage;
use crate::initramfs;
use crate::matrix;

/// A path as given, made absolute against the current directory (the
/// driver keeps it in the kernel cache's record).
fn absolute(arg: &str) -> Result<PathBuf, String> {
    std::path::absolute(arg).map_err(|e| format!("{arg}: {e}"))
}

/// Clap parser: a file that exists, made absolute.
pub(super) fn existing_file(arg: &str) -> Result<PathBuf, String> {
    let path = absolute(arg)?;
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(path),
        Ok(_) => Err(format!("{} is not a file", path.display())),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Clap parser: a kernel image the matrix boots (an x86 bzImage or an
/// arm64 Image), made absolute.
pub(super) fn kernel_image(arg: &str) -> Result<PathBuf, String> {
    let path = existing_file(arg)?;
    image_arch(&path)?;
    Ok(path)
}

/// Clap parser: a static executable for the guests, with the architecture
/// its ELF header names.
pub(super) fn case_binary(arg: &str) -> Result<(Arch, PathBuf), String> {
    let path = existing_file(arg)?;
    let elf = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let arch = Arch::of_elf(&elf).ok_or_else(|| format!("{}: not an x86_64 or aarch64 ELF executable", path.display()))?;
    match initramfs::is_static(&elf) {
        Ok(true) => Ok((arch, path)),
        Ok(false) => Err(format!(
            "{}: dynamically linked; a guest has no shared libraries (build with --target {}, or cc -static)",
            path.display(),
            arch.rust_target()
        )),
        Err(e) => Err(format!("{}: {e:#}", path.display())),
    }
}

/// The architecture of the kernel image at `path`; for a bzImage its setup
/// header must parse (the matrix reads the release from it).
pub(super) fn image_arch(path: &Path) -> Result<Arch, String> {
    let image = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let arch = Arch::of_image(&image).ok_or_else(|| {
        format!("{}: not a bzImage or an arm64 Image (give arch/x86/boot/bzImage or arch/arm64/boot/Image, not vmlinux)", path.display())
    })?;
    if arch == Arch::Amd64 {
        bzimage::header(&image).map_err(|e| format!("{}: {e:#} (give arch/x86/boot/bzImage, not vmlinux)", path.display()))?;
    }
    Ok(arch)
}

/// The image of a built tree: the first architecture's that exists.
pub(super) fn tree_image(dir: &Path) -> Option<PathBuf> {
    Arch::ALL.iter().map(|a| dir.join(a.tree_image())).find(|p| p.is_file())
}

/// Clap parser: a directory with a built kernel and its .config.
pub(super) fn built_tree(arg: &str) -> Result<PathBuf, String> {
    let dir = absolute(arg)?;
    if !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    if !dir.join(".config").is_file() {
        return Err(format!("{} has no .config: configure it first (ci/README.md, \"Your own kernel\")", dir.display()));
    }
    let Some(image) = tree_image(&dir) else {
        let wanted: Vec<&str> = Arch::ALL.iter().map(|a| a.tree_image()).collect();
        let built: Vec<String> = std::fs::read_dir(dir.join("arch"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("boot").is_dir())
            .map(|e| format!("arch/{}/boot", e.file_name().to_string_lossy()))
            .collect();
        let seen = if built.is_empty() {
            String::new()
        } else {
            format!(" (found {}; the matrix boots x86_64 and arm64 kernels)", built.join(", "))
        };
        return Err(format!("{} has no {}: build it first with `make -j$(nproc)`{seen}", dir.display(), wanted.join(" or ")));
    };
    image_arch(&image)?;
    Ok(dir)
}

/// Clap parser: a kernel name as the data file allows it.
pub(super) fn kernel_name(arg: &str) -> Result<String, String> {
    matrix::check_name(arg).map(|()| arg.to_string()).map_err(|e| e.to_string())
}

/// Clap parser: an apt archive URI (scheme, no spaces).
pub(super) fn archive_uri(arg: &str) -> Result<String, String> {
    let scheme = arg.split_once(':').map(|(s, _)| s).unwrap_or("");
    let scheme_ok = !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
    if !scheme_ok || arg.chars().any(char::is_whitespace) || arg.len() <= scheme.len() + 1 {
        return Err(format!("{arg:?} is not an archive URI like http://deb.debian.org/debian"));
    }
    Ok(arg.to_string())
}
