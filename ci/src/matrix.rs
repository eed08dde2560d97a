//! The kernel matrix as data: `ci/kernels.toml`, parsed and checked.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

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
    /// Debian package, `linux-image-amd64` by default (Debian kernels).
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
        KernelEntry { name: name.into(), suite: None, package: None, path: None, config: None, build: None }
    }

    /// Where this kernel comes from; paths are resolved against `root`.
    pub fn origin(&self, root: &Path) -> Origin {
        if let Some(variant) = &self.build {
            return Origin::Built { variant: variant.clone() };
        }
        match (&self.suite, &self.path) {
            (Some(suite), _) => {
                Origin::Debian { suite: suite.clone(), package: self.package.clone().unwrap_or_else(|| "linux-image-amd64".into()) }
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
            if k.name.is_empty() || !k.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)) {
                bail!("kernel name {:?} must be non-empty lowercase ascii, digits, '.', '_' or '-'", k.name);
            }
            if !seen.insert(k.name.as_str()) {
                bail!("kernel {:?} is listed twice", k.name);
            }
            let origins = [k.suite.is_some(), k.path.is_some(), k.build.is_some()].iter().filter(|x| **x).count();
            if origins > 1 {
                bail!("kernel {:?}: give one of suite (Debian), path (self-built) or build (from source), not both", k.name);
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
    }
}
