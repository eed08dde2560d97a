//! A kernel release as a plain value: `major.minor.patch`. No I/O but
//! [`KernelVersion::running`]'s uname(2), so every module may use it (the
//! kind table included) without an import cycle.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A kernel release `major.minor.patch`, as uname(2) reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KernelVersion {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
    /// Patch level (0 where the release string has none).
    pub patch: u32,
}

impl KernelVersion {
    /// A version `major.minor`.
    pub const fn new(major: u32, minor: u32) -> Self {
        KernelVersion { major, minor, patch: 0 }
    }

    /// Parses the leading `a.b[.c]` of a release string such as
    /// `6.1.0-56-amd64` or `6.18.44-fc-v595`.
    pub fn parse(release: &str) -> Option<Self> {
        let mut nums = release.split(|c: char| !c.is_ascii_digit());
        let major = nums.next()?.parse().ok()?;
        let minor = nums.next()?.parse().ok()?;
        // The patch level is optional ("7.0-rc1" has none).
        let rest = &release[format!("{major}.{minor}").len()..];
        let patch =
            rest.strip_prefix('.').and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next()).and_then(|p| p.parse().ok()).unwrap_or(0);
        Some(KernelVersion { major, minor, patch })
    }

    /// The running kernel's version (uname(2) `release`).
    pub fn running() -> Self {
        KernelVersion::parse(&crate::probe::kernel_release()).unwrap_or(KernelVersion::new(0, 0))
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)?;
        if self.patch != 0 {
            write!(f, ".{}", self.patch)?;
        }
        Ok(())
    }
}
