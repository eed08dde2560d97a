//! A kernel release as a plain value: `major.minor.patch`. No I/O but
//! [`KernelVersion::running`]'s uname(2) and `/proc/version_signature`, so
//! every module may use it (the kind table included) without an import
//! cycle.

use std::fmt;
use std::sync::OnceLock;

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

    /// A version `major.minor.patch` (a stable release).
    pub const fn stable(major: u32, minor: u32, patch: u32) -> Self {
        KernelVersion { major, minor, patch }
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

    /// The running kernel's version: the upstream stable release where the
    /// distribution names it (see [`KernelVersion::upstream`]), else
    /// uname(2) `release`. Probed once per process.
    pub fn running() -> Self {
        static RUNNING: OnceLock<KernelVersion> = OnceLock::new();
        *RUNNING.get_or_init(|| {
            let u = nix::sys::utsname::uname().ok();
            let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
                u.as_ref().map(|u| f(u).to_string_lossy().into_owned()).unwrap_or_default()
            };
            let signature = std::fs::read_to_string("/proc/version_signature").ok();
            KernelVersion::upstream(&field(|u| u.release()), &field(|u| u.version()), signature.as_deref())
                .unwrap_or(KernelVersion::new(0, 0))
        })
    }

    /// The upstream release a kernel is built from. Distribution release
    /// strings carry only `major.minor` and an ABI number (Debian's
    /// `5.10.0-46-amd64` is 5.10.262), which would put every Debian kernel
    /// before any stable backport; the upstream patch level is read from
    /// uname(2) `version` (Debian: `#1 SMP Debian 5.10.262-1 (2026-07-31)`)
    /// or `/proc/version_signature` (Ubuntu: `Ubuntu 5.15.0-91.101-generic
    /// 5.15.131`), and used only when its `major.minor` matches `release`.
    pub fn upstream(release: &str, version: &str, signature: Option<&str>) -> Option<Self> {
        let base = KernelVersion::parse(release)?;
        let named = version
            .split_whitespace()
            .skip_while(|w| *w != "Debian")
            .nth(1)
            .or_else(|| signature.and_then(|s| s.split_whitespace().last()))
            .and_then(KernelVersion::parse)
            .filter(|v| (v.major, v.minor) == (base.major, base.minor) && v.patch >= base.patch);
        Some(named.unwrap_or(base))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u32, minor: u32, patch: u32) -> KernelVersion {
        KernelVersion { major, minor, patch }
    }

    #[test]
    fn parses_releases() {
        assert_eq!(KernelVersion::parse("6.1.0-56-amd64"), Some(v(6, 1, 0)));
        assert_eq!(KernelVersion::parse("5.10.262"), Some(v(5, 10, 262)));
        assert_eq!(KernelVersion::parse("6.18.44-fc-v595"), Some(v(6, 18, 44)));
        assert_eq!(KernelVersion::parse("7.0-rc1"), Some(v(7, 0, 0)));
        assert_eq!(KernelVersion::parse("garbage"), None);
        assert!(KernelVersion::new(5, 6) < KernelVersion::new(5, 10));
        assert!(v(5, 10, 174) < v(5, 10, 175));
    }

    #[test]
    fn upstream_release_of_distribution_kernels() {
        let debian = "#1 SMP Debian 5.10.262-1 (2026-07-31)";
        assert_eq!(KernelVersion::upstream("5.10.0-46-amd64", debian, None), Some(v(5, 10, 262)));
        let debian_rt = "#1 SMP PREEMPT_RT Debian 6.1.192-3 (2026-10-01)";
        assert_eq!(KernelVersion::upstream("6.1.0-57-rt-amd64", debian_rt, None), Some(v(6, 1, 192)));
        let ubuntu = Some("Ubuntu 5.15.0-91.101-generic 5.15.131\n");
        assert_eq!(KernelVersion::upstream("5.15.0-91-generic", "#101-Ubuntu SMP", ubuntu), Some(v(5, 15, 131)));
        // Upstream and self-built kernels: the release says it all.
        assert_eq!(KernelVersion::upstream("6.12.117", "#1 SMP PREEMPT_DYNAMIC", None), Some(v(6, 12, 117)));
        // A named version of another series, or an older patch level, is not trusted.
        assert_eq!(KernelVersion::upstream("6.12.0-1-amd64", "#1 SMP Debian 6.11.9-1", None), Some(v(6, 12, 0)));
        assert_eq!(KernelVersion::upstream("6.12.40", "#1 SMP Debian 6.12.3-1", None), Some(v(6, 12, 40)));
        assert_eq!(KernelVersion::upstream("garbage", "", None), None);
    }
}
