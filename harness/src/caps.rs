//! Capability sets as a process sees them, and the exec probe: the case binary
//! re-executed to report its capabilities after execve(2).
//!
//! capabilities(7), "Transformation of capabilities during execve()" and
//! user_namespaces(7), "Capabilities": what a process holds after execve(2)
//! depends on its effective uid in its user namespace, so a case that checks
//! it must run a new program image. The exec probe is that image: the case
//! binary itself (`/proc/self/exe`) started with [`EXEC_PROBE_ENV`] set, which
//! the runner's `main` hands to [`exec_probe_entry`] before anything else
//! runs (no case table, no thread, no fork server); it prints what
//! `/proc/self/status` shows and exits.

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::case::CaseError;
use nix::errno::Errno;

use crate::error::{Op, OpContext, SysError};
use crate::nsid::Proc;
use crate::probe::Cap;

/// The environment variable that turns the case binary into the exec probe
/// (any value).
pub const EXEC_PROBE_ENV: &str = "NSVERIFY_EXEC_PROBE";

/// The five capability sets of a thread, as `/proc/[pid]/status` shows them
/// (`CapInh`, `CapPrm`, `CapEff`, `CapBnd`, `CapAmb`; proc(5)): bit `n` is
/// capability `n` of capabilities(7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapSets {
    /// `CapInh`: the inheritable set.
    pub inheritable: u64,
    /// `CapPrm`: the permitted set.
    pub permitted: u64,
    /// `CapEff`: the effective set.
    pub effective: u64,
    /// `CapBnd`: the bounding set.
    pub bounding: u64,
    /// `CapAmb`: the ambient set (4.3+).
    pub ambient: u64,
}

/// The ids of a process as `/proc/[pid]/status` shows them to the reader
/// (`Uid:` and `Gid:` lines: real, effective, saved set, filesystem), each
/// translated into the reader's user namespace (user_namespaces(7)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusIds {
    /// Real, effective, saved set and filesystem uid.
    pub uid: [u32; 4],
    /// Real, effective, saved set and filesystem gid.
    pub gid: [u32; 4],
}

fn status_text(proc: Proc) -> std::io::Result<String> {
    match proc {
        Proc::Myself => fs::read_to_string("/proc/self/status"),
        Proc::Pid(pid) => fs::read_to_string(format!("/proc/{pid}/status")),
    }
}

fn field<'a>(status: &'a str, name: &str) -> std::io::Result<&'a str> {
    crate::probe::status_line(status, name).ok_or_else(|| std::io::Error::other(format!("no {name} line in /proc/[pid]/status")))
}

fn hex_field(status: &str, name: &str) -> std::io::Result<u64> {
    let v = field(status, name)?;
    u64::from_str_radix(v, 16).map_err(|_| std::io::Error::other(format!("{name} {v:?} is not hexadecimal")))
}

fn id_field(status: &str, name: &str) -> std::io::Result<[u32; 4]> {
    let v = field(status, name)?;
    let ids: Vec<u32> = v.split_whitespace().filter_map(|n| n.parse().ok()).collect();
    ids.try_into().map_err(|_| std::io::Error::other(format!("{name} {v:?} is not four ids")))
}

impl CapSets {
    /// Reads the capability sets of `proc` from `/proc/[pid]/status`.
    pub fn of(proc: Proc) -> std::io::Result<CapSets> {
        let s = status_text(proc)?;
        Ok(CapSets {
            inheritable: hex_field(&s, "CapInh")?,
            permitted: hex_field(&s, "CapPrm")?,
            effective: hex_field(&s, "CapEff")?,
            bounding: hex_field(&s, "CapBnd")?,
            ambient: hex_field(&s, "CapAmb").unwrap_or(0),
        })
    }
}

impl StatusIds {
    /// Reads the `Uid:` and `Gid:` lines of `proc`'s `/proc/[pid]/status`.
    pub fn of(proc: Proc) -> std::io::Result<StatusIds> {
        let s = status_text(proc)?;
        Ok(StatusIds { uid: id_field(&s, "Uid")?, gid: id_field(&s, "Gid")? })
    }
}

/// `/proc/sys/kernel/cap_last_cap` (3.2+): the highest capability number the
/// running kernel knows (capabilities(7)).
pub fn cap_last_cap() -> std::io::Result<u32> {
    let text = fs::read_to_string("/proc/sys/kernel/cap_last_cap")?;
    text.trim().parse().map_err(|_| std::io::Error::other(format!("cap_last_cap {text:?} is not a number")))
}

/// Every capability up to `last` (the kernel's `CAP_FULL_SET` for
/// `CAP_LAST_CAP` = `last`): what a new user namespace's first process, or a
/// process that setns()es into a user namespace, holds there
/// (user_namespaces(7), "Capabilities").
pub fn full_set(last: u32) -> u64 {
    if last >= 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    }
}

/// What the exec probe reports about the new program image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecReport {
    /// Its capability sets right after execve(2).
    pub caps: CapSets,
    /// Its ids, as it reads them itself (in its own user namespace).
    pub ids: StatusIds,
}

/// The exec probe's side: when [`EXEC_PROBE_ENV`] is set, prints an
/// [`ExecReport`] of this process as one JSON line on stdout and exits, else
/// returns at once. The runner's `main` calls it first, so the report shows
/// the image as execve(2) left it.
pub fn exec_probe_entry() {
    if std::env::var_os(EXEC_PROBE_ENV).is_none() {
        return;
    }
    let report = CapSets::of(Proc::Myself).and_then(|caps| Ok(ExecReport { caps, ids: StatusIds::of(Proc::Myself)? }));
    let code = match report {
        Ok(r) => {
            let line = serde_json::to_string(&r).unwrap_or_default();
            let mut out = std::io::stdout().lock();
            if writeln!(out, "{line}").and_then(|()| out.flush()).is_ok() {
                0
            } else {
                3
            }
        }
        Err(e) => {
            eprintln!("nsverify exec probe: {e}");
            3
        }
    };
    std::process::exit(code);
}

/// Runs the exec probe: a child of the caller execve()s `/proc/self/exe` (the
/// case binary) with [`EXEC_PROBE_ENV`] set and nothing else changed, and
/// its report is returned. A probe that cannot be run or that reports
/// nothing is a broken setup.
pub fn exec_probe() -> Result<ExecReport, CaseError> {
    let out = Command::new("/proc/self/exe")
        .arg("--exact")
        .arg("nsverify-exec-probe")
        .env(EXEC_PROBE_ENV, "1")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| {
            let errno = nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
            CaseError::from(SysError::new(Op::Process("execve /proc/self/exe"), errno))
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next().unwrap_or("");
    serde_json::from_str(line)
        .map_err(|e| CaseError::broken(format!("the exec probe ({}) reported {line:?}, not a capability report: {e}", out.status)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_sets_and_ids() {
        let caps = CapSets::of(Proc::Myself).unwrap();
        assert_eq!(caps.effective & !caps.permitted, 0, "effective is a subset of permitted");
        let ids = StatusIds::of(Proc::Myself).unwrap();
        assert_eq!(ids.uid[1], nix::unistd::geteuid().as_raw());
        assert!(cap_last_cap().unwrap() >= 36);
    }

    #[test]
    fn full_set_ends_at_last_cap() {
        assert_eq!(full_set(40), 0x1ff_ffff_ffff);
        assert_eq!(full_set(63), u64::MAX);
    }
}

/// `struct __user_cap_header_struct` of capget(2).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct` of capget(2).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets in two words.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Removes capability `cap` from the caller's effective and permitted
/// sets (capset(2)); the rest stay. An error is a broken setup
/// ([`Op::Plumbing`] "capset").
pub fn drop_capability(cap: Cap) -> Result<(), SysError> {
    drop_raw(cap.0).op(Op::Plumbing("capset"))
}

fn drop_raw(cap: u32) -> Result<(), Errno> {
    let mut header = CapHeader { version: CAPABILITY_VERSION_3, pid: 0 };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and a two-element data array, as version 3 requires,
    // valid and writable for the call.
    Errno::result(unsafe { libc::syscall(libc::SYS_capget, &mut header as *mut CapHeader, data.as_mut_ptr()) })?;
    let (word, bit) = ((cap / 32) as usize, 1u32 << (cap % 32));
    data[word].effective &= !bit;
    data[word].permitted &= !bit;
    // SAFETY: as above; the kernel only reads the structures.
    Errno::result(unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut CapHeader, data.as_ptr()) }).map(drop)
}
