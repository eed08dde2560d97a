//! Kernels into the cache: Debian packages fetched with `apt-get download`
//! through a private apt configuration (its own sources, lists and package
//! cache under the cache directory, an empty dpkg status), so the host's apt
//! sources and package state are never read or touched and nothing is
//! installed. The host's apt.conf.d still applies (proxies, validity checks).
//!
//! Cache layout (`<cache>/kernels/<name>/`): `bzImage`, `vmlinux` (when the
//! payload could be decompressed), `config`, `kernel.json` (what was fetched:
//! packages, versions, sha256). A complete entry whose origin matches the data
//! file is used as is: a second run downloads nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};

use crate::bzimage;
use crate::kbuild;
use crate::matrix::{AptSource, KernelEntry, Origin};

/// One Debian package that went into a cached kernel.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Package {
    /// Package name.
    pub name: String,
    /// Exact Debian version.
    pub version: String,
    /// SHA256 from the archive's index (apt verified the download against it).
    pub sha256: String,
}

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
    /// Size and mtime of a self-built bzImage (its cache key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_stamp: Option<String>,
    /// Whether this run downloaded (or re-extracted) it.
    #[serde(skip)]
    pub fetched_now: bool,
}

impl Kernel {
    /// The compressed image.
    pub fn bzimage(&self) -> PathBuf {
        self.dir.join("bzImage")
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

/// The private apt configuration, shared by all workers. apt locks its
/// lists and archives directories, so its commands run one at a time.
pub struct Apt {
    dir: PathBuf,
    source: AptSource,
    suites: Vec<String>,
    /// None until `apt-get update` ran; then what it complained about (one
    /// broken suite must not stop the kernels of the others).
    lock: Mutex<Option<String>>,
}

impl Apt {
    /// A private apt under `cache/apt` that knows `suites`.
    pub fn new(cache: &Path, source: AptSource, suites: Vec<String>) -> Apt {
        Apt { dir: cache.join("apt"), source, suites, lock: Mutex::new(None) }
    }

    /// Options for every apt command (`-o`, applied after the host's
    /// apt.conf.d, whose proxy and validity settings are kept): every
    /// directory apt reads sources from or writes state to is in the cache.
    fn options(&self) -> Vec<String> {
        let d = self.dir.display();
        [
            ("Dir::Etc::SourceList", "/dev/null".to_string()),
            ("Dir::Etc::SourceParts", format!("{d}/sources.list.d")),
            ("Dir::Etc::Preferences", "/dev/null".into()),
            ("Dir::Etc::PreferencesParts", format!("{d}/preferences.d")),
            ("Dir::State", format!("{d}/state")),
            ("Dir::State::Lists", format!("{d}/lists")),
            ("Dir::State::status", "/dev/null".into()),
            ("Dir::Cache", format!("{d}/cache")),
            ("Dir::Cache::pkgcache", "pkgcache.bin".into()),
            ("Dir::Cache::srcpkgcache", "srcpkgcache.bin".into()),
            ("APT::Architectures", "amd64".into()),
            ("APT::Sandbox::User", "root".into()),
            ("Acquire::Languages", "none".into()),
            ("Acquire::IndexTargets::deb::DEP-11::DefaultEnabled", "false".into()),
            ("Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled", "false".into()),
            ("Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled", "false".into()),
            ("Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled", "false".into()),
            ("Acquire::Retries", "3".into()),
        ]
        .into_iter()
        .flat_map(|(k, v)| ["-o".to_string(), format!("{k}={v}")])
        .collect()
    }

    fn run(&self, tool: &str, args: &[&str], cwd: &Path) -> Result<String> {
        let out = Command::new(tool)
            .args(self.options())
            .args(args)
            .current_dir(cwd)
            .output()
            .with_context(|| format!("running {tool} (is apt installed?)"))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(out.status.success(), "{tool} {} failed ({}): {}", args.join(" "), out.status, stderr.trim());
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Writes the sources and runs `apt-get update`, once per process.
    fn update(&self, updated: &mut Option<String>) -> Result<()> {
        if updated.is_some() {
            return Ok(());
        }
        for sub in ["sources.list.d", "preferences.d", "state/lists/partial", "lists/partial", "cache/archives/partial"] {
            std::fs::create_dir_all(self.dir.join(sub))?;
        }
        let (security, main): (Vec<&String>, Vec<&String>) = self.suites.iter().partition(|s| s.ends_with("-security"));
        let mut sources = String::from("# Written by nsverify-vm: the private apt source of the VM kernel matrix.\n");
        for (uri, suites) in [(&self.source.uri, main), (&self.source.security_uri, security)] {
            if !suites.is_empty() {
                let names: Vec<&str> = suites.iter().map(|s| s.as_str()).collect();
                sources += &format!(
                    "\nTypes: deb\nURIs: {uri}\nSuites: {}\nComponents: main\nSigned-By: {}\n",
                    names.join(" "),
                    self.source.keyring.display()
                );
            }
        }
        std::fs::write(self.dir.join("sources.list.d/nsverify.sources"), sources)?;
        *updated = Some(match self.run("apt-get", &["-q", "update"], &self.dir) {
            Ok(_) => String::new(),
            Err(e) => format!("{e:#}"),
        });
        Ok(())
    }

    /// Resolves `package` in `suite` to the packages that carry the kernel,
    /// then downloads them into `into`.
    fn download(&self, suite: &str, package: &str, into: &Path) -> Result<Vec<(Package, PathBuf)>> {
        let mut updated = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.update(&mut updated)?;
        let mut todo = vec![format!("{package}/{suite}")];
        let mut found: Vec<Package> = Vec::new();
        while let Some(spec) = todo.pop() {
            let not_found = || {
                let complaints = updated.as_deref().unwrap_or_default();
                let about_suite: Vec<&str> = complaints.lines().filter(|l| l.contains(&format!(" {suite} "))).collect();
                if about_suite.is_empty() {
                    format!("{spec} is not in the archive")
                } else {
                    format!("{spec} is not in the archive; apt-get update said: {}", about_suite.join(" "))
                }
            };
            let text = self.run("apt-cache", &["show", &spec], &self.dir).with_context(not_found)?;
            if text.trim().is_empty() {
                bail!("{}", not_found());
            }
            let fields = first_stanza(&text);
            let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone()).unwrap_or_default();
            let name = get("Package");
            ensure!(!name.is_empty(), "apt-cache show {spec} printed no package");
            if !found.iter().any(|p| p.name == name) {
                for (dep, version) in pinned_depends(&get("Depends")) {
                    // Modules are not needed: the initramfs loads none.
                    if !dep.starts_with("linux-modules-") {
                        todo.push(format!("{dep}={version}"));
                    }
                }
                found.push(Package { name, version: get("Version"), sha256: get("SHA256") });
            }
        }
        std::fs::create_dir_all(into)?;
        let specs: Vec<String> = found.iter().map(|p| format!("{}={}", p.name, p.version)).collect();
        let mut args = vec!["-q", "download"];
        args.extend(specs.iter().map(String::as_str));
        self.run("apt-get", &args, into).context("apt-get download")?;
        drop(updated);
        let debs = std::fs::read_dir(into)?.filter_map(|e| e.ok().map(|e| e.path())).collect::<Vec<_>>();
        found
            .into_iter()
            .map(|p| {
                let prefix = format!("{}_", p.name);
                let deb = debs
                    .iter()
                    .find(|d| d.file_name().is_some_and(|f| f.to_string_lossy().starts_with(&prefix)))
                    .with_context(|| format!("apt-get download left no .deb for {}", p.name))?
                    .clone();
                Ok((p, deb))
            })
            .collect()
    }
}

impl Apt {
    /// Downloads exactly `package=version` from `suite` into `into` and
    /// returns the .deb (a source package pinned by the data file).
    pub fn download_exact(&self, suite: &str, package: &str, version: &str, into: &Path) -> Result<PathBuf> {
        let mut updated = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.update(&mut updated)?;
        let spec = format!("{package}={version}");
        let shown = self.run("apt-cache", &["show", &spec], &self.dir).unwrap_or_default();
        if shown.trim().is_empty() {
            let policy = self.run("apt-cache", &["policy", package], &self.dir).unwrap_or_default();
            bail!("{spec} is not in {suite} any more (the archive keeps only the newest builds); pin a version it has:\n{}", policy.trim());
        }
        std::fs::create_dir_all(into)?;
        self.run("apt-get", &["-q", "download", &spec], into).context("apt-get download")?;
        let prefix = format!("{package}_");
        std::fs::read_dir(into)?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.file_name().is_some_and(|f| f.to_string_lossy().starts_with(&prefix) && f.to_string_lossy().ends_with(".deb")))
            .with_context(|| format!("apt-get download left no .deb for {spec}"))
    }
}

/// The fields of the first stanza of `apt-cache show` output.
fn first_stanza(text: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !fields.is_empty() {
                break;
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = fields.last_mut() {
                v.push('\n');
                v.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            fields.push((k.to_string(), v.trim().to_string()));
        }
    }
    fields
}

/// Dependencies pinned to one version, `name (= version)`: the packages a
/// Debian kernel meta package is made of (alternatives are never pinned).
fn pinned_depends(depends: &str) -> Vec<(String, String)> {
    depends
        .split(',')
        .filter(|d| !d.contains('|'))
        .filter_map(|d| {
            let (name, rest) = d.trim().split_once(" (= ")?;
            Some((name.trim().to_string(), rest.strip_suffix(')')?.trim().to_string()))
        })
        .collect()
}

/// Extracts the kernel image and config from `deb` into `dir`, if it has them.
fn extract_from_deb(deb: &Path, dir: &Path) -> Result<()> {
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
                std::fs::rename(img, dir.join("bzImage"))?;
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

fn stamp(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).with_context(|| format!("self-built kernel {}", path.display()))?;
    let mtime = meta.modified()?.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Ok(format!("{} bytes, mtime {}.{:09}", meta.len(), mtime.as_secs(), mtime.subsec_nanos()))
}

/// The cached kernel for `entry` if it is complete and still matches the
/// data file.
fn cached(dir: &Path, entry: &KernelEntry, origin: &Origin) -> Option<Kernel> {
    let mut k: Kernel = serde_json::from_str(&std::fs::read_to_string(dir.join("kernel.json")).ok()?).ok()?;
    if &k.entry != entry || !dir.join("bzImage").exists() || (k.has_vmlinux && !dir.join("vmlinux").exists()) {
        return None;
    }
    if let Origin::Local { bzimage, .. } = origin {
        if k.source_stamp != stamp(bzimage).ok() {
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
        source_stamp: None,
        fetched_now: true,
    };
    match origin {
        Origin::Built { .. } => unreachable!("replaced by the build's Local origin above"),
        Origin::Debian { suite, package } => {
            let debs = apt.download(&suite, &package, &partial.join("debs"))?;
            for (_, deb) in &debs {
                extract_from_deb(deb, &partial)?;
            }
            std::fs::remove_dir_all(partial.join("debs"))?;
            if !partial.join("bzImage").exists() {
                let names: Vec<&str> = debs.iter().map(|(p, _)| p.name.as_str()).collect();
                bail!("no vmlinuz in {} (looked in /boot and /usr/lib/modules/*/)", names.join(", "));
            }
            // The package that holds the image names the kernel's version.
            k.version = debs.iter().find(|(p, _)| p.name.starts_with("linux-image-")).map(|(p, _)| p.version.clone()).unwrap_or_default();
            k.packages = debs.into_iter().map(|(p, _)| p).collect();
        }
        Origin::Local { bzimage, config } => {
            std::fs::copy(&bzimage, partial.join("bzImage")).with_context(|| format!("copying self-built kernel {}", bzimage.display()))?;
            if let Some(config) = config {
                std::fs::copy(&config, partial.join("config")).with_context(|| format!("copying config {}", config.display()))?;
            }
            k.source_stamp = Some(stamp(&bzimage)?);
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
    fn sid_meta_package_dependencies_are_followed_but_not_alternatives() {
        let deps = "dracut | initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool, linux-base-7.2.13+deb14-amd64 (= 7.2.13-1), \
                    linux-binary-7.2.13+deb14-amd64 (= 7.2.13-1), kmod, linux-base (>= 4.3~)";
        assert_eq!(
            pinned_depends(deps),
            [
                ("linux-base-7.2.13+deb14-amd64".to_string(), "7.2.13-1".to_string()),
                ("linux-binary-7.2.13+deb14-amd64".to_string(), "7.2.13-1".to_string())
            ]
        );
    }

    #[test]
    fn first_stanza_only() {
        let text = "Package: a\nVersion: 1\nDescription: x\n more\n\nPackage: a\nVersion: 0\n";
        let f = first_stanza(text);
        assert_eq!(f[1], ("Version".into(), "1".into()));
        assert_eq!(f[2].1, "x\nmore");
        assert_eq!(f.len(), 3);
    }
}
