//! `/proc/sys/user/max_<kind>_namespaces` (namespaces(7), "The
//! /proc/sys/user directory"): reading, and setting with a guard that
//! restores the previous value.

use std::fs;
use std::os::unix::fs::FileExt;

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

/// A changed limit; dropping it writes back the value it replaced, through
/// the file opened when it was set, so into the same user namespace's table
/// even if the caller has moved to another user namespace since (where the
/// kernel re-checks the permission on each write).
#[derive(Debug)]
pub struct LimitGuard {
    file: fs::File,
    previous: u64,
}

impl LimitGuard {
    /// Sets `kind`'s limit to `value`, remembering the old one.
    pub fn set(kind: Kind, value: u64) -> Result<LimitGuard, SysError> {
        let p = path(kind);
        let file = fs::OpenOptions::new().read(true).write(true).open(&p).op(Op::Limit(p.clone()))?;
        let previous = read(kind)?;
        file.write_all_at(value.to_string().as_bytes(), 0).op(Op::Limit(p))?;
        Ok(LimitGuard { file, previous })
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
        let _ = self.file.write_all_at(self.previous.to_string().as_bytes(), 0);
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
