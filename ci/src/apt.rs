//! The private apt configuration through which kernels and the pinned
//! kernel source are fetched: its own sources, lists and package cache
//! under the cache directory and an empty dpkg status, so the host's apt
//! sources and package state are never read or touched and nothing is
//! installed. The host's apt.conf.d still applies (proxies, validity
//! checks). Used by [`crate::fetch`] (Debian kernels) and [`crate::kbuild`]
//! (the source package).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};

use crate::arch::Arch;
use crate::matrix::AptSource;

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

/// The private apt configuration, shared by all workers. apt locks its
/// lists and archives directories, so its commands run one at a time.
pub struct Apt {
    dir: PathBuf,
    arch: Arch,
    source: AptSource,
    suites: Vec<String>,
    /// None until `apt-get update` ran; then what it complained about (one
    /// broken suite must not stop the kernels of the others).
    lock: Mutex<Option<String>>,
}

impl Apt {
    /// A private amd64 apt under `cache/apt` that knows `suites`.
    pub fn new(cache: &Path, source: AptSource, suites: Vec<String>) -> Apt {
        Apt::for_arch(cache, Arch::Amd64, source, suites)
    }

    /// A private apt for `arch` packages only, under `cache/<Arch::apt_dir>`.
    pub fn for_arch(cache: &Path, arch: Arch, source: AptSource, suites: Vec<String>) -> Apt {
        Apt { dir: cache.join(arch.apt_dir()), arch, source, suites, lock: Mutex::new(None) }
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
            ("APT::Architecture", self.arch.debian().into()),
            ("APT::Architectures", self.arch.debian().into()),
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
        Ok(self.output(tool, args, cwd)?.0)
    }

    /// Runs an apt tool; its stdout and stderr (warnings) on success.
    fn output(&self, tool: &str, args: &[&str], cwd: &Path) -> Result<(String, String)> {
        let out = Command::new(tool)
            .args(self.options())
            .args(args)
            .current_dir(cwd)
            .output()
            .with_context(|| format!("running {tool} (is apt installed?)"))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(out.status.success(), "{tool} {} failed ({}): {}", args.join(" "), out.status, stderr.trim());
        Ok((String::from_utf8_lossy(&out.stdout).into_owned(), stderr.into_owned()))
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
        // apt-get update succeeds with unreachable sources; its warnings
        // (W: Failed to fetch ...) explain a package found nowhere later.
        *updated = Some(match self.output("apt-get", &["-q", "update"], &self.dir) {
            Ok((_, warnings)) => warnings.lines().filter(|l| l.starts_with("W: Failed")).collect::<Vec<_>>().join("\n"),
            Err(e) => format!("{e:#}"),
        });
        Ok(())
    }

    /// Resolves `package` in `suite` to the packages that carry the kernel,
    /// then downloads them into `into`.
    pub(crate) fn download(&self, suite: &str, package: &str, into: &Path) -> Result<Vec<(Package, PathBuf)>> {
        let mut updated = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.update(&mut updated)?;
        let mut todo = vec![format!("{package}/{suite}")];
        let mut found: Vec<Package> = Vec::new();
        while let Some(spec) = todo.pop() {
            let not_found = || {
                let complaints = updated.as_deref().unwrap_or_default();
                // apt names a suite as "URI suite InRelease" or ".../dists/suite/...".
                let about_suite: Vec<&str> =
                    complaints.lines().filter(|l| l.contains(&format!(" {suite} ")) || l.contains(&format!("/{suite}/"))).collect();
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
