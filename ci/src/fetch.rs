//! Kernels into the cache: Debian packages fetched with `apt-get download`
//! through a private apt configuration ([`crate::apt`]), so the host's apt
//! sources and package state are never read or touched and nothing is
//! installed.
//!
//! Cache layout (`<cache>/kernels/<name>/`): `bzImage` (arm64: `Image`), `vmlinux` (when the
//! payload could be decompressed), `config`, `kernel.json` (what was fetched:
//! packages, versions, sha256). A complete entry whose origin matches the data
//! file is used as is: a second run downloads nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};

use crate::apt::{Apt, Package};
use crate::arch::{self, Arch};
use crate::bzimage;
use crate::kbuild;
use crate::matrix::{KernelEntry, Origin};

/// A kernel ready to boot: what `kernel.json` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Kernel {
    /// Matrix name.
    pub name: String,
    /// The entry it was made from (a changed entry invalidates the cache).
    pub entry: KernelEntry,
    /// `uname -r`, from the bzImage header.
    pub release: String,
    /// The bzImage's full version string.
    pub version_string: String,
    /// Debian version of the kernel package ("local" for self-built).
    pub version: String,
    /// Packages downloaded, in dependency order.
    pub packages: Vec<Package>,
    /// CONFIG_PVH=y (the vmlinux can be booted directly).
    pub pvh: bool,
    /// Directory holding bzImage, vmlinux, config.
    #[serde(skip)]
    pub dir: PathBuf,
    /// Whether `vmlinux` exists.
    pub has_vmlinux: bool,
    /// Whether `config` exists.
    pub has_config: bool,
    /// Whether this run downloaded (or re-extracted) it.
    #[serde(skip)]
    pub fetched_now: bool,
}

impl Kernel {
    /// The image QEMU's `-kernel` takes: the bzImage on amd64, the
    /// uncompressed Image on arm64.
    pub fn bzimage(&self) -> PathBuf {
        self.dir.join(self.entry.arch.image_file())
    }
    /// The uncompressed ELF, when present.
    pub fn vmlinux(&self) -> Option<PathBuf> {
        self.has_vmlinux.then(|| self.dir.join("vmlinux"))
    }
    /// The kernel config, when known.
    pub fn config(&self) -> Option<PathBuf> {
        self.has_config.then(|| self.dir.join("config"))
    }
}

/// Extracts the kernel image and config from `deb` into `dir`, if it has them.
fn extract_from_deb(deb: &Path, dir: &Path, image_file: &str) -> Result<()> {
    let tmp = dir.join("x");
    std::fs::create_dir_all(&tmp)?;
    // tar exits 2 when a pattern matches nothing; what was found is checked below.
    let status = Command::new("sh")
        .arg("-c")
        .arg(
            "dpkg-deb --fsys-tarfile \"$1\" | tar -x -C \"$2\" --wildcards \
             './boot/vmlinuz-*' './boot/config-*' './usr/lib/modules/*/vmlinuz' './usr/lib/modules/*/config' 2>/dev/null; \
             exit 0",
        )
        .args(["sh", &deb.display().to_string(), &tmp.display().to_string()])
        .status()
        .context("running dpkg-deb | tar")?;
    ensure!(status.success(), "extracting {}: {status}", deb.display());
    for (pattern_dir, image, config) in [("boot", "vmlinuz-", "config-"), ("usr/lib/modules", "vmlinuz", "config")] {
        let base = tmp.join(pattern_dir);
        let Ok(entries) = std::fs::read_dir(&base) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let (img, cfg) = if pattern_dir == "boot" {
                (name.starts_with(image).then(|| p.clone()), name.starts_with(config).then(|| p.clone()))
            } else {
                (Some(p.join(image)).filter(|x| x.exists()), Some(p.join(config)).filter(|x| x.exists()))
            };
            if let Some(img) = img {
                std::fs::rename(img, dir.join(image_file))?;
            }
            if let Some(cfg) = cfg {
                std::fs::rename(cfg, dir.join("config"))?;
            }
        }
    }
    std::fs::remove_dir_all(&tmp)?;
    Ok(())
}

fn config_has(config: &Path, line: &str) -> bool {
    std::fs::read_to_string(config).is_ok_and(|t| t.lines().any(|l| l.trim() == line))
}

/// Fills in the image-derived fields and writes `kernel.json` in `dir`.
fn finish(dir: &Path, mut k: Kernel) -> Result<Kernel> {
    if k.entry.arch == Arch::Arm64 {
        return finish_arm64(dir, k);
    }
    let image = std::fs::read(dir.join("bzImage")).context("reading bzImage")?;
    let header = bzimage::header(&image).context("reading the bzImage header")?;
    k.release = bzimage::release(&image)?;
    k.version_string = header.version;
    k.has_config = dir.join("config").exists();
    k.pvh = k.has_config && config_has(&dir.join("config"), "CONFIG_PVH=y");
    // Without a config, try anyway: QEMU refuses an ELF without the PVH note
    // and the VM phase then reports it, so only skip when the config says no.
    k.has_vmlinux = if k.pvh || !k.has_config {
        match bzimage::extract_vmlinux(&image, &dir.join("vmlinux")) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("{}: no uncompressed vmlinux, will boot the bzImage: {e:#}", k.name);
                let _ = std::fs::remove_file(dir.join("vmlinux"));
                false
            }
        }
    } else {
        false
    };
    k.pvh = k.pvh || (!k.has_config && k.has_vmlinux);
    std::fs::write(dir.join("kernel.json"), serde_json::to_string_pretty(&k)? + "\n")?;
    Ok(k)
}

/// [`finish`] for an arm64 Image: booted as is (no PVH, no vmlinux); the
/// release comes from the banner in the uncompressed image.
fn finish_arm64(dir: &Path, mut k: Kernel) -> Result<Kernel> {
    let image = std::fs::read(dir.join(Arch::Arm64.image_file())).context("reading the arm64 Image")?;
    k.release = arch::banner_release(&image).context("no \"Linux version\" banner in the arm64 Image")?;
    k.version_string = format!("Linux version {}", k.release);
    k.has_config = dir.join("config").exists();
    std::fs::write(dir.join("kernel.json"), serde_json::to_string_pretty(&k)? + "\n")?;
    Ok(k)
}

/// Whether the files `a` and `b` both exist with the same contents.
fn same_contents(a: &Path, b: &Path) -> bool {
    let same_length = matches!((std::fs::metadata(a), std::fs::metadata(b)), (Ok(x), Ok(y)) if x.len() == y.len());
    same_length && matches!((std::fs::read(a), std::fs::read(b)), (Ok(x), Ok(y)) if x == y)
}

/// The cached kernel for `entry` if it is complete and still matches the
/// data file.
fn cached(dir: &Path, entry: &KernelEntry, origin: &Origin) -> Option<Kernel> {
    let mut k: Kernel = serde_json::from_str(&std::fs::read_to_string(dir.join("kernel.json")).ok()?).ok()?;
    if &k.entry != entry || !dir.join(entry.arch.image_file()).exists() || (k.has_vmlinux && !dir.join("vmlinux").exists()) {
        return None;
    }
    // A self-built kernel is the cached one only if its image and config
    // are byte for byte the copies in the cache (a rebuild can keep the
    // size, and a copied tree can keep the mtime); reading a few MB costs
    // milliseconds.
    if let Origin::Local { bzimage, config } = origin {
        let config_same = match config {
            Some(c) => k.has_config && same_contents(c, &dir.join("config")),
            None => !k.has_config,
        };
        if !config_same || !same_contents(bzimage, &dir.join(entry.arch.image_file())) {
            return None;
        }
    }
    k.dir = dir.to_path_buf();
    Some(k)
}

/// Returns the kernel for `entry`, from the cache or freshly fetched.
/// `refresh` ignores the cache (moves Debian kernels to the archive's newest).
pub fn ensure_kernel(entry: &KernelEntry, cache: &Path, root: &Path, apt: &Apt, refresh: bool) -> Result<(Kernel, f64)> {
    let started = Instant::now();
    let dir = cache.join("kernels").join(&entry.name);
    // A kernel built from source: make brings the build up to date (a no-op
    // when nothing changed), then it is cached like a self-built bzImage.
    let built = match entry.origin(root) {
        Origin::Built { variant } => {
            let spec = kbuild::BaseSpec::load(&root.join(kbuild::BASE_SPEC))?;
            let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
            let (build, took) = kbuild::build_variant(root, &spec, &variant, &kbuild::dir_for(cache), apt, jobs)
                .with_context(|| format!("building the {variant} kernel from {}", spec.source.package))?;
            eprintln!("{}: make took {:.1}s", entry.name, took.as_secs_f64());
            Some(Origin::Local { bzimage: build.bzimage(), config: Some(build.config()) })
        }
        _ => None,
    };
    let origin = built.clone().unwrap_or_else(|| entry.origin(root));
    if !refresh {
        if let Some(k) = cached(&dir, entry, &origin) {
            return Ok((k, started.elapsed().as_secs_f64()));
        }
    }
    let partial = cache.join("kernels").join(format!(".{}.partial", entry.name));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let mut k = Kernel {
        name: entry.name.clone(),
        entry: entry.clone(),
        release: String::new(),
        version_string: String::new(),
        version: "local".into(),
        packages: vec![],
        pvh: false,
        dir: dir.clone(),
        has_vmlinux: false,
        has_config: false,
        fetched_now: true,
    };
    match origin {
        Origin::Built { .. } => unreachable!("replaced by the build's Local origin above"),
        Origin::Debian { suite, package } => {
            let debs = apt.download(&suite, &package, &partial.join("debs"))?;
            for (_, deb) in &debs {
                extract_from_deb(deb, &partial, entry.arch.image_file())?;
            }
            std::fs::remove_dir_all(partial.join("debs"))?;
            if !partial.join(entry.arch.image_file()).exists() {
                let names: Vec<&str> = debs.iter().map(|(p, _)| p.name.as_str()).collect();
                bail!("no vmlinuz in {} (looked in /boot and /usr/lib/modules/*/)", names.join(", "));
            }
            // The package that holds the image names the kernel's version.
            k.version = debs.iter().find(|(p, _)| p.name.starts_with("linux-image-")).map(|(p, _)| p.version.clone()).unwrap_or_default();
            k.packages = debs.into_iter().map(|(p, _)| p).collect();
        }
        Origin::Local { bzimage, config } => {
            std::fs::copy(&bzimage, partial.join(entry.arch.image_file()))
                .with_context(|| format!("copying self-built kernel {}", bzimage.display()))?;
            if let Some(config) = config {
                std::fs::copy(&config, partial.join("config")).with_context(|| format!("copying config {}", config.display()))?;
            }
        }
    }
    let mut k = finish(&partial, k)?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&partial, &dir).with_context(|| format!("moving {} into place", dir.display()))?;
    k.dir = dir;
    Ok((k, started.elapsed().as_secs_f64()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_built_kernel_is_cached_only_with_the_same_bytes() {
        let tmp = std::env::temp_dir().join(format!("nsverify-fetch-cache-{}", std::process::id()));
        let (src, dir) = (tmp.join("tree"), tmp.join("cache"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        let (image, config) = (src.join("bzImage"), src.join(".config"));
        std::fs::write(&image, b"kernel one").unwrap();
        std::fs::write(&config, b"CONFIG_PVH=y\n").unwrap();
        let entry = KernelEntry::local("own", Arch::Amd64, image.clone(), Some(config.clone()));
        let k = Kernel {
            name: "own".into(),
            entry: entry.clone(),
            release: "6.12.0".into(),
            version_string: String::new(),
            version: "local".into(),
            packages: vec![],
            pvh: true,
            dir: dir.clone(),
            has_vmlinux: false,
            has_config: true,
            fetched_now: false,
        };
        std::fs::write(dir.join("kernel.json"), serde_json::to_string(&k).unwrap()).unwrap();
        std::fs::copy(&image, dir.join("bzImage")).unwrap();
        std::fs::copy(&config, dir.join("config")).unwrap();
        let origin = entry.origin(Path::new("/"));
        assert!(cached(&dir, &entry, &origin).is_some());
        // A rebuild of the same size, and a changed config, are both misses.
        std::fs::write(&image, b"kernel two").unwrap();
        assert!(cached(&dir, &entry, &origin).is_none());
        std::fs::copy(&image, dir.join("bzImage")).unwrap();
        assert!(cached(&dir, &entry, &origin).is_some());
        std::fs::write(&config, b"CONFIG_PVH=n\n").unwrap();
        assert!(cached(&dir, &entry, &origin).is_none());
        let without_config = KernelEntry::local("own", Arch::Amd64, image, None);
        assert!(cached(&dir, &without_config, &without_config.origin(Path::new("/"))).is_none(), "the entry differs");
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
