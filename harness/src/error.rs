//! Typed errors of harness steps, each keeping its errno.

use std::fmt;

use nix::errno::Errno;

use crate::flags::NsFlags;

/// The harness step that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// clone(2) or clone3(2) with the given flags.
    Clone(NsFlags),
    /// unshare(2) with the given flags.
    Unshare(NsFlags),
    /// setns(2) with the given nstype.
    Setns(NsFlags),
    /// An ioctl_ns(2) request.
    IoctlNs(&'static str),
    /// Writing `/proc/<pid>/{uid_map,gid_map,setgroups}`.
    WriteIdMap(&'static str),
    /// Opening a `/proc/[pid]/ns` entry.
    OpenNs(String),
    /// Reading or writing a `/proc/sys/user` limit.
    Limit(String),
    /// setresuid/setresgid/setgroups to run as another user.
    SetId,
    /// Creating a pipe, memfd or other plumbing.
    Plumbing(&'static str),
    /// Waiting for or signalling a process.
    Process(&'static str),
    /// Talking to a peer over its channel.
    Channel(&'static str),
}

impl Op {
    /// Whether the step is a namespace operation whose errno is the kernel's
    /// answer to the claim under test (so an undeclared errno is a failure),
    /// rather than plumbing (whose failure is a broken setup).
    pub fn is_namespace_operation(&self) -> bool {
        matches!(self, Op::Clone(_) | Op::Unshare(_) | Op::Setns(_) | Op::IoctlNs(_) | Op::WriteIdMap(_) | Op::OpenNs(_) | Op::Limit(_))
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Clone(flags) => write!(f, "clone({})", flags),
            Op::Unshare(flags) => write!(f, "unshare({})", flags),
            Op::Setns(nstype) => write!(f, "setns(fd, {})", nstype),
            Op::IoctlNs(req) => write!(f, "ioctl({req})"),
            Op::WriteIdMap(file) => write!(f, "write {file}"),
            Op::OpenNs(path) => write!(f, "open {path}"),
            Op::Limit(path) => write!(f, "limit {path}"),
            Op::SetId => f.write_str("set uid/gid"),
            Op::Plumbing(what) | Op::Process(what) | Op::Channel(what) => f.write_str(what),
        }
    }
}

/// A failed harness step with its errno.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op}: {errno:?} ({})", errno.desc())]
pub struct SysError {
    /// The step.
    pub op: Op,
    /// The errno it returned.
    pub errno: Errno,
}

impl SysError {
    /// A step that failed with `errno`.
    pub fn new(op: Op, errno: Errno) -> SysError {
        SysError { op, errno }
    }
}

/// Extension to tag a raw errno result with its step.
pub trait OpContext<T> {
    /// Tags the error with `op`.
    fn op(self, op: Op) -> Result<T, SysError>;
}

impl<T> OpContext<T> for Result<T, Errno> {
    fn op(self, op: Op) -> Result<T, SysError> {
        self.map_err(|errno| SysError::new(op, errno))
    }
}

impl<T> OpContext<T> for std::io::Result<T> {
    fn op(self, op: Op) -> Result<T, SysError> {
        self.map_err(|e| SysError::new(op, Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))
    }
}

/// Anything that carries an errno: used by `expect_errno!`.
pub trait HasErrno {
    /// The errno.
    fn errno(&self) -> Errno;
}

impl HasErrno for Errno {
    fn errno(&self) -> Errno {
        *self
    }
}

impl HasErrno for SysError {
    fn errno(&self) -> Errno {
        self.errno
    }
}

impl HasErrno for std::io::Error {
    fn errno(&self) -> Errno {
        Errno::from_raw(self.raw_os_error().unwrap_or(0))
    }
}

/// Reduces a result to its errno, dropping (and so closing) any success value.
pub fn errno_of<T, E: HasErrno>(result: Result<T, E>) -> Result<(), Errno> {
    result.map(drop).map_err(|e| e.errno())
}
