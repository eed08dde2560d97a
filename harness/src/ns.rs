//! Typed calls a case body makes on its own process (it runs in a child of
//! its own, so changing it is safe): unshare(2), setns(2) and the UTS NIS
//! domain name. Each error names its step ([`Op`]).
//!
//! To start a *peer* in new namespaces use [`crate::peer::Spawn`]; its
//! [`Spawn::new_ns`](crate::peer::Spawn::new_ns) is the one documented way
//! into a new namespace of a kind.

use std::os::fd::AsFd;

use nix::errno::Errno;

use crate::error::{Op, OpContext, SysError};
use crate::flags::NsFlags;
use crate::sys;

/// unshare(2) with `flags`: the caller leaves its namespaces of those kinds
/// (for pid and time only its later children move, unshare(2)). The error
/// carries [`Op::Unshare`], so `?` in a body is a failure naming the call.
pub fn unshare(flags: impl Into<NsFlags>) -> Result<(), SysError> {
    let flags = flags.into();
    sys::unshare(flags.bits()).op(Op::Unshare(flags))
}

/// unshare(2) timed: its duration in ns, read from CLOCK_MONOTONIC right
/// around the system call with nothing else between (the benches' fresh
/// and repeated unshare).
pub fn timed_unshare(flags: impl Into<NsFlags>) -> Result<u64, SysError> {
    let flags = flags.into();
    sys::timed_unshare(flags.bits()).op(Op::Unshare(flags))
}

/// setns(2): joins the namespace of `fd` (a `/proc/[pid]/ns` fd with
/// `nstype` 0 or its CLONE_NEW* type), or with a pidfd the target's
/// namespaces of every kind in `nstype` (5.8+).
pub fn setns(fd: impl AsFd, nstype: impl Into<NsFlags>) -> Result<(), SysError> {
    let nstype = nstype.into();
    sys::setns(fd.as_fd(), nstype.bits()).op(Op::Setns(nstype))
}

/// setdomainname(2): the NIS domain name of the caller's UTS namespace
/// (uts_namespaces(7)). The errno is returned as is: `?` in a body makes an
/// undeclared one a failure, as for any kernel answer.
pub fn setdomainname(name: &str) -> Result<(), Errno> {
    sys::setdomainname(name)
}
