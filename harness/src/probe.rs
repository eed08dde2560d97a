//! Probes of the running kernel and process: release, capabilities, and
//! whether unprivileged user namespaces are allowed.

use std::fs;

use serde::{Deserialize, Serialize};

pub use crate::version::KernelVersion;

/// The running kernel's release string, `uname -r`.
pub fn kernel_release() -> String {
    nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_else(|_| "unknown".into())
}

/// A capability number, capabilities(7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cap(pub u32);

impl Cap {
    /// CAP_SETGID.
    pub const SETGID: Cap = Cap(6);
    /// CAP_SETUID.
    pub const SETUID: Cap = Cap(7);
    /// CAP_NET_ADMIN.
    pub const NET_ADMIN: Cap = Cap(12);
    /// CAP_SYS_CHROOT.
    pub const SYS_CHROOT: Cap = Cap(18);
    /// CAP_SYS_ADMIN.
    pub const SYS_ADMIN: Cap = Cap(21);
    /// CAP_SYS_RESOURCE.
    pub const SYS_RESOURCE: Cap = Cap(24);
    /// CAP_SYS_TIME (libc lacks it): needed in the owning user namespace to
    /// write timens_offsets (time_namespaces(7)).
    pub const SYS_TIME: Cap = Cap(25);

    /// The name capabilities(7) gives it.
    pub fn name(self) -> String {
        match self.0 {
            6 => "CAP_SETGID".into(),
            7 => "CAP_SETUID".into(),
            12 => "CAP_NET_ADMIN".into(),
            18 => "CAP_SYS_CHROOT".into(),
            21 => "CAP_SYS_ADMIN".into(),
            24 => "CAP_SYS_RESOURCE".into(),
            n => format!("capability {n}"),
        }
    }
}

/// The value of the line `<name>:` in the text of a `/proc/[pid]/status`
/// file (proc(5)), trimmed.
pub fn status_line<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')).map(str::trim)
}

/// The value of the line `<name>:` of `<proc_root>/<pid>/status` (proc(5)):
/// `proc_root` is `/proc` or another proc mount, `pid` a number or "self".
pub fn status_field(proc_root: &str, pid: &str, name: &str) -> std::io::Result<String> {
    let path = format!("{proc_root}/{pid}/status");
    let status = fs::read_to_string(&path)?;
    status_line(&status, name).map(str::to_string).ok_or_else(|| std::io::Error::other(format!("no {name} line in {path}")))
}

/// Reads a capability set (`CapEff`, `CapPrm`, `CapBnd` ...) of `pid`
/// ("self" for the caller) from `/proc/[pid]/status`.
pub fn cap_set(pid: &str, field: &str) -> std::io::Result<u64> {
    let v = status_field("/proc", pid, field)?;
    u64::from_str_radix(&v, 16).map_err(|_| std::io::Error::other(format!("{field} {v:?} of /proc/{pid}/status is not hexadecimal")))
}

/// Whether the caller has `cap` in its effective set (in its own user namespace).
pub fn has_cap(cap: Cap) -> bool {
    cap_set("self", "CapEff").is_ok_and(|eff| eff & (1u64 << cap.0) != 0)
}

/// Reads a sysctl under `/proc/sys` as an integer; `None` if the file is absent.
pub fn sysctl_int(path: &str) -> Option<i64> {
    fs::read_to_string(format!("/proc/sys/{path}")).ok()?.trim().parse().ok()
}

/// Why the environment forbids an unprivileged user to create a user
/// namespace, or `None` where nothing does. Decided from the documented knobs
/// (Debian's `kernel.unprivileged_userns_clone`, Ubuntu's AppArmor
/// restriction, `user.max_user_namespaces`), never from a failed attempt.
pub fn unprivileged_userns_forbidden() -> Option<String> {
    if sysctl_int("kernel/unprivileged_userns_clone") == Some(0) {
        return Some("kernel.unprivileged_userns_clone=0 forbids unprivileged user namespaces".into());
    }
    if sysctl_int("kernel/apparmor_restrict_unprivileged_userns") == Some(1) {
        return Some("kernel.apparmor_restrict_unprivileged_userns=1 restricts unprivileged user namespaces".into());
    }
    if sysctl_int("user/max_user_namespaces") == Some(0) {
        return Some("user.max_user_namespaces=0 forbids new user namespaces".into());
    }
    None
}

/// `PROC_USER_INIT_INO` of `<linux/proc_ns.h>` (3.8+): st_ino of the
/// initial user namespace.
pub const INITIAL_USER_NS_INO: u64 = 0xEFFF_FFFD;

/// Whether the caller is in the initial user namespace.
pub fn in_initial_user_ns() -> bool {
    crate::nsid::NsId::current(crate::kind::Kind::User).is_ok_and(|id| id.ino == INITIAL_USER_NS_INO)
}

/// Whether the process runs with effective uid 0 and CAP_SYS_ADMIN.
pub fn is_privileged() -> bool {
    nix::unistd::geteuid().is_root() && has_cap(Cap::SYS_ADMIN)
}

/// The caller's cgroup v2 path (the `0::` line of /proc/<pid>/cgroup).
pub fn cgroup2_path(pid: &str) -> Result<String, String> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|e| format!("reading /proc/{pid}/cgroup: {e}"))?;
    text.lines().find_map(|l| l.strip_prefix("0::")).map(str::to_string).ok_or_else(|| format!("no cgroup v2 line in /proc/{pid}/cgroup"))
}

/// The directory of the caller's cgroup v2 cgroup, or why there is none.
pub fn own_cgroup2_dir() -> Result<std::path::PathBuf, String> {
    let info = fs::read_to_string("/proc/self/mountinfo").map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
    let (root, point) = info
        .lines()
        .find_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            (post.split(' ').next()? == "cgroup2").then(|| {
                let f: Vec<&str> = pre.split(' ').collect();
                (f.get(3).copied().unwrap_or("/").to_string(), f.get(4).copied().unwrap_or("").to_string())
            })
        })
        .ok_or("no cgroup2 filesystem is mounted")?;
    let path = cgroup2_path("self")?;
    let rel = path.strip_prefix(root.as_str()).ok_or(format!("the cgroup2 mount at {point} shows {root}, not our cgroup {path}"))?;
    let dir = std::path::PathBuf::from(point).join(rel.trim_start_matches('/'));
    if !dir.is_dir() {
        return Err(format!("our cgroup directory {} does not exist", dir.display()));
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_caps() {
        assert!(cap_set("self", "CapEff").is_ok());
        assert!(cap_set("self", "NoSuchField").is_err());
    }
}
