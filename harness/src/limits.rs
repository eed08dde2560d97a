//! `/proc/sys/user/max_<kind>_namespaces` (namespaces(7), "The
//! /proc/sys/user directory"): reading, and setting with a guard that
//! restores the previous value.

use std::fs;

use crate::error::{Op, OpContext, SysError};
use crate::kind::Kind;

/// Path of `kind`'s limit file.
pub fn path(kind: Kind) -> String {
    format!("/proc/sys/user/{}", kind.info().max_sysctl)
}

/// Reads `kind`'s limit in the caller's user namespace. A file that does
/// not parse as a number is reported as EINVAL.
pub fn read(kind: Kind) -> Result<u64, SysError> {
    let p = path(kind);
    let text = fs::read_to_string(&p).op(Op::Limit(p.clone()))?;
    text.trim().parse().map_err(|_| SysError::new(Op::Limit(format!("{p} = {text:?}")), nix::errno::Errno::EINVAL))
}

/// Writes `kind`'s limit in the caller's user namespace.
pub fn write(kind: Kind, value: u64) -> Result<(), SysError> {
    let p = path(kind);
    fs::write(&p, value.to_string()).op(Op::Limit(p))
}

/// A changed limit; dropping it writes back the value it replaced.
#[derive(Debug)]
pub struct LimitGuard {
    kind: Kind,
    previous: u64,
}

impl LimitGuard {
    /// Sets `kind`'s limit to `value`, remembering the old one.
    pub fn set(kind: Kind, value: u64) -> Result<LimitGuard, SysError> {
        let previous = read(kind)?;
        write(kind, value)?;
        Ok(LimitGuard { kind, previous })
    }

    /// The value that will be restored.
    pub fn previous(&self) -> u64 {
        self.previous
    }
}

impl Drop for LimitGuard {
    fn drop(&mut self) {
        // Nothing to report to from a destructor; the no-trace check of the
        // runner compares /proc/sys/user before and after the run.
        let _ = write(self.kind, self.previous);
    }
}

/// Every file in `/proc/sys/user` with its value, for the no-trace check.
pub fn snapshot_all() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = fs::read_dir("/proc/sys/user")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let value = fs::read_to_string(e.path()).unwrap_or_else(|e| format!("<{e}>"));
            (name, value.trim().to_string())
        })
        .collect();
    out.sort();
    out
}
