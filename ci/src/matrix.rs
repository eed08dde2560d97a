//! The kernel matrix as data: `ci/kernels.toml`, parsed and checked.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::arch::Arch;

/// Where Debian kernels come from.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AptSource {
    /// The Debian archive, for every suite but `*-security`.
    pub uri: String,
    /// The security archive, for `*-security` suites.
    pub security_uri: String,
    /// The keyring that signs both.
    pub keyring: PathBuf,
}

impl AptSource {
    /// This source with the archive replaced by `mirror` (a Debian mirror, or
    /// a caching proxy's URL for one) and the security archive by `security`;
    /// with a mirror but no security archive given, the security archive is
    /// the mirror's URI with `-security` appended, the layout of
    /// deb.debian.org and of proxies that prefix it (`--debian-mirror`,
    /// `NSVERIFY_DEBIAN_MIRROR`; ci/README.md).
    pub fn with_mirrors(mut self, mirror: Option<&str>, security: Option<&str>) -> AptSource {
        if let Some(m) = mirror {
            self.uri = m.trim_end_matches('/').to_string();
            self.security_uri = format!("{}-security", self.uri);
        }
        if let Some(s) = security {
            self.security_uri = s.trim_end_matches('/').to_string();
        }
        self
    }
}

/// Checks a kernel's name: the key on the command line, in reports and in
/// directory names, so non-empty lowercase ascii, digits, `.`, `_`, `-`.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)) {
        bail!("kernel name {name:?} must be non-empty lowercase ascii, digits, '.', '_' or '-'");
    }
    Ok(())
}

/// One kernel of the matrix: a Debian package in a suite, or a self-built
/// bzImage.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KernelEntry {
    /// Key on the command line and in reports.
    pub name: String,
    /// Debian suite (Debian kernels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// The kernel's architecture, `amd64` unless given (crate::arch).
    #[serde(default, skip_serializing_if = "is_amd64")]
    pub arch: Arch,
    /// Debian package, `linux-image-<arch>` by default (Debian kernels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// A self-built bzImage, relative to the repository root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// The self-built kernel's .config, relative to the repository root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<PathBuf>,
    /// A variant of ci/mutants/base.toml that the driver builds from
    /// Debian's kernel source ("base", "debug").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
}

fn is_amd64(arch: &Arch) -> bool {
    *arch == Arch::Amd64
}

/// Where a kernel comes from, decided from its entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// `apt-get download` of `package` from `suite`.
    Debian {
        /// Debian suite.
        suite: String,
        /// Package to start the dependency walk from.
        package: String,
    },
    /// Built by the driver from the pinned kernel source (crate::kbuild).
    Built {
        /// The variant of ci/mutants/base.toml.
        variant: String,
    },
    /// A bzImage on disk.
    Local {
        /// The bzImage.
        bzimage: PathBuf,
        /// Its .config, if given.
        config: Option<PathBuf>,
    },
}

impl KernelEntry {
    /// `suite/package` or `self-built <path>`, for listings.
    pub fn describe(&self, root: &Path) -> String {
        if self.suite.is_none() && self.path.is_none() && self.build.is_none() {
            return "(not in the matrix)".into();
        }
        match self.origin(root) {
            Origin::Debian { suite, package } => format!("{suite}/{package}"),
            Origin::Built { variant } => format!("built: {variant} (ci/mutants/base.toml)"),
            Origin::Local { bzimage, .. } => format!("self-built {}", bzimage.display()),
        }
    }

    /// An entry for a name that is not in the matrix (reported, never run).
    pub fn unknown(name: &str) -> KernelEntry {
        KernelEntry { name: name.into(), arch: Arch::Amd64, suite: None, package: None, path: None, config: None, build: None }
    }

    /// A self-built kernel of `arch` given on the command line (`run
    /// --kernel-image`, `--kernel-tree`) rather than in the data file.
    pub fn local(name: &str, arch: Arch, image: PathBuf, config: Option<PathBuf>) -> KernelEntry {
        KernelEntry { arch, path: Some(image), config, ..KernelEntry::unknown(name) }
    }

    /// Where this kernel comes from; paths are resolved against `root`.
    pub fn origin(&self, root: &Path) -> Origin {
        if let Some(variant) = &self.build {
            return Origin::Built { variant: variant.clone() };
        }
        match (&self.suite, &self.path) {
            (Some(suite), _) => {
                Origin::Debian { suite: suite.clone(), package: self.package.clone().unwrap_or_else(|| self.arch.default_kernel_package()) }
            }
            (None, Some(path)) => Origin::Local { bzimage: root.join(path), config: self.config.as_ref().map(|c| root.join(c)) },
            (None, None) => unreachable!("checked by Matrix::parse"),
        }
    }
}

/// The parsed data file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    /// Debian archive settings.
    pub apt: AptSource,
    /// The kernels, in table order.
    #[serde(rename = "kernel")]
    pub kernels: Vec<KernelEntry>,
}

impl Matrix {
    /// Reads and checks the data file.
    pub fn load(path: &Path) -> Result<Matrix> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading the kernel matrix {}", path.display()))?;
        Matrix::parse(&text).with_context(|| format!("in the kernel matrix {}", path.display()))
    }

    /// Parses and checks the data file's text: names unique and well formed,
    /// each entry either a suite or a path.
    pub fn parse(text: &str) -> Result<Matrix> {
        let matrix: Matrix = toml::from_str(text)?;
        let mut seen = std::collections::HashSet::new();
        for k in &matrix.kernels {
            check_name(&k.name)?;
            if !seen.insert(k.name.as_str()) {
                bail!("kernel {:?} is listed twice", k.name);
            }
            let origins = [k.suite.is_some(), k.path.is_some(), k.build.is_some()].iter().filter(|x| **x).count();
            if origins > 1 {
                bail!("kernel {:?}: give one of suite (Debian), path (self-built) or build (from source), not both", k.name);
            }
            if k.arch != Arch::Amd64 && k.suite.is_none() {
                bail!("kernel {:?}: arch {} applies to Debian kernels (suite) only", k.name, k.arch);
            }
            if k.build.is_some() && (k.package.is_some() || k.config.is_some()) {
                bail!("kernel {:?}: package and config do not apply to build", k.name);
            }
            match (&k.suite, &k.path) {
                (None, None) if k.build.is_some() => {}
                (None, None) => bail!("kernel {:?}: needs a suite (Debian), a path (self-built bzImage) or a build variant", k.name),
                (None, Some(_)) if k.package.is_some() => bail!("kernel {:?}: package only applies to Debian kernels", k.name),
                (Some(_), None) if k.config.is_some() => bail!("kernel {:?}: config only applies to self-built kernels", k.name),
                _ => {}
            }
        }
        if matrix.kernels.is_empty() {
            bail!("no [[kernel]] entries");
        }
        Ok(matrix)
    }

    /// The entries named in `names` (all when empty), in matrix order, and the
    /// names that are not in the data file.
    pub fn select(&self, names: &[String]) -> (Vec<KernelEntry>, Vec<String>) {
        if names.is_empty() {
            return (self.kernels.clone(), vec![]);
        }
        let chosen = self.kernels.iter().filter(|k| names.contains(&k.name)).cloned().collect();
        let unknown = names.iter().filter(|n| !self.kernels.iter().any(|k| &k.name == *n)).cloned().collect();
        (chosen, unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "[apt]\nuri = \"u\"\nsecurity_uri = \"s\"\nkeyring = \"k\"\n";

    #[test]
    fn the_shipped_matrix_parses() {
        let m = Matrix::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels.toml")).unwrap();
        assert!(m.kernels.len() >= 4);
        assert!(m.kernels.iter().any(|k| k.suite.as_deref() == Some("sid")));
    }

    #[test]
    fn bad_entries_are_refused_with_the_kernel_named() {
        for (body, needle) in [
            ("[[kernel]]\nname = \"a\"\n", "needs a suite"),
            ("[[kernel]]\nname = \"a\"\nsuite = \"sid\"\npath = \"x\"\n", "not both"),
            ("[[kernel]]\nname = \"A b\"\nsuite = \"sid\"\n", "lowercase"),
            ("[[kernel]]\nname = \"a\"\nsuite = \"sid\"\n[[kernel]]\nname = \"a\"\nsuite = \"sid\"\n", "twice"),
            ("[[kernel]]\nname = \"a\"\nsuite = \"sid\"\nflavour = \"x\"\n", "unknown field"),
            ("[[kernel]]\nname = \"a\"\nsuite = \"sid\"\narch = \"mips\"\n", "unknown variant"),
            ("[[kernel]]\nname = \"a\"\npath = \"x\"\narch = \"arm64\"\n", "Debian kernels (suite) only"),
        ] {
            let err = format!("{:#}", Matrix::parse(&format!("{HEAD}{body}")).unwrap_err());
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn select_keeps_matrix_order_and_reports_unknown_names() {
        let m = Matrix::parse(&format!(
            "{HEAD}[[kernel]]\nname = \"a\"\nsuite = \"x\"\n[[kernel]]\nname = \"b\"\npath = \"bz\"\n[[kernel]]\nname = \"c\"\nsuite = \"y\"\n"
        ))
        .unwrap();
        let (chosen, unknown) = m.select(&["c".into(), "nope".into(), "a".into()]);
        assert_eq!(chosen.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(unknown, ["nope"]);
        assert_eq!(m.kernels[1].origin(Path::new("/r")), Origin::Local { bzimage: "/r/bz".into(), config: None });
        assert_eq!(m.kernels[0].origin(Path::new("/r")), Origin::Debian { suite: "x".into(), package: "linux-image-amd64".into() });
    }

    #[test]
    fn an_arm64_entry_defaults_to_its_meta_package() {
        let m = Matrix::parse(&format!("{HEAD}[[kernel]]\nname = \"a\"\nsuite = \"trixie\"\narch = \"arm64\"\n")).unwrap();
        assert_eq!(m.kernels[0].arch, Arch::Arm64);
        assert_eq!(m.kernels[0].origin(Path::new("/r")), Origin::Debian { suite: "trixie".into(), package: "linux-image-arm64".into() });
    }

    #[test]
    fn a_kernel_from_the_command_line_is_a_self_built_entry() {
        let k = KernelEntry::local("own", Arch::Amd64, "/t/arch/x86/boot/bzImage".into(), Some("/t/.config".into()));
        let want = Origin::Local { bzimage: "/t/arch/x86/boot/bzImage".into(), config: Some("/t/.config".into()) };
        assert_eq!(k.origin(Path::new("/r")), want, "absolute paths stay as given");
        assert_eq!(k.describe(Path::new("/r")), "self-built /t/arch/x86/boot/bzImage");
        assert!(check_name("own").is_ok() && check_name("My kernel").is_err() && check_name("").is_err());
    }

    #[test]
    fn a_mirror_replaces_both_archives_unless_the_security_one_is_given() {
        let shipped = Matrix::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels.toml")).unwrap().apt;
        let same = shipped.clone().with_mirrors(None, None);
        assert_eq!((same.uri.as_str(), same.security_uri.as_str()), (shipped.uri.as_str(), shipped.security_uri.as_str()));
        let m = shipped.clone().with_mirrors(Some("http://proxy:3142/deb.debian.org/debian/"), None);
        assert_eq!(m.uri, "http://proxy:3142/deb.debian.org/debian");
        assert_eq!(m.security_uri, "http://proxy:3142/deb.debian.org/debian-security");
        let m = shipped.clone().with_mirrors(Some("http://m/debian"), Some("http://s/debian-security"));
        assert_eq!((m.uri.as_str(), m.security_uri.as_str()), ("http://m/debian", "http://s/debian-security"));
        let m = shipped.clone().with_mirrors(None, Some("http://s/sec"));
        assert_eq!((m.uri.as_str(), m.security_uri.as_str()), (shipped.uri.as_str(), "http://s/sec"));
        assert_eq!(m.keyring, shipped.keyring);
    }
}
