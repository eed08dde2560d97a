//! A child that only calls `_exit(0)`: the cheapest create-and-destroy
//! of namespaces, for the benches' clone loop.

use nix::errno::Errno;
use nix::unistd::Pid;

use crate::error::{Op, OpContext, SysError};
use crate::flags::NsFlags;
use crate::sys::{self, WaitTarget};

use super::{CloneCall, Exit};

/// A child that only calls `_exit(0)`, created by clone(2) or clone3(2)
/// with namespace flags: the cheapest create-and-destroy of namespaces
/// (the benches' clone loop). The child runs nothing but `_exit`, which is
/// sound even when the caller has threads. Dropping it reaps it.
#[must_use = "an exiting child is reaped by reap() or on drop"]
pub struct ExitingChild {
    pid: Pid,
    reaped: bool,
}

impl ExitingChild {
    /// Creates the child with `flags` by `call`; returns as soon as the
    /// system call returns in the parent. The error is [`Op::Clone`].
    pub fn clone(flags: impl Into<NsFlags>, call: CloneCall) -> Result<ExitingChild, SysError> {
        let flags = flags.into();
        // SAFETY: the child calls only _exit, which is async-signal-safe,
        // so a multi-threaded caller is fine too.
        match unsafe { sys::fork_with_flags(flags.bits(), call) } {
            Ok(Some(pid)) => Ok(ExitingChild { pid, reaped: false }),
            Ok(None) => sys::exit_now(0),
            Err(errno) => Err(SysError::new(Op::Clone(flags), errno)),
        }
    }

    /// The child's pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Waits for the child's exit and reaps it (waitid(2), [`Op::Process`]).
    pub fn reap(mut self) -> Result<Exit, SysError> {
        self.reaped = true;
        match sys::wait_exit(WaitTarget::Pid(self.pid), false, false).op(Op::Process("waitid"))? {
            Some((_, exit)) => Ok(exit),
            None => Err(SysError::new(Op::Process("waitid"), Errno::ECHILD)),
        }
    }
}

impl Drop for ExitingChild {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = sys::wait_exit(WaitTarget::Pid(self.pid), false, false);
        }
    }
}
