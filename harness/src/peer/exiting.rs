//! A child that only exits: the cheapest create-and-destroy of
//! namespaces, timed, for the benches' clone loop.

use std::time::Duration;

use crate::error::{Op, OpContext, SysError};
use crate::flags::NsFlags;
use crate::sys;
use crate::sys::WaitTarget;

use super::{CloneCall, Exit};

/// One clone + _exit + waitid, timed: a child created with namespace flags
/// by clone(2) or clone3(2) that runs nothing but exit_group(2) (sound even
/// when the caller has threads), reaped before this returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitingChild {
    /// From just before the system call until it returned in the parent.
    pub created: Duration,
    /// From just before the system call until the child was reaped.
    pub total: Duration,
}

impl ExitingChild {
    /// Creates the child with `flags` by `call`, reaps it and says how long
    /// that took. The error is [`Op::Clone`] if the child could not be
    /// created, [`Op::Process`] if it could not be reaped or did not exit 0.
    pub fn run(flags: impl Into<NsFlags>, call: CloneCall) -> Result<ExitingChild, SysError> {
        let flags = flags.into();
        match sys::clone_exit_reap(flags.bits(), call) {
            Ok((t0, t1, t2, Exit::Code(0))) => Ok(ExitingChild { created: t1 - t0, total: t2 - t0 }),
            Ok(_) => Err(SysError::new(Op::Process("waitid: the exiting child did not exit 0"), nix::errno::Errno::ECHILD)),
            Err(errno) if errno == nix::errno::Errno::ECHILD => Err(SysError::new(Op::Process("waitid"), errno)),
            Err(errno) => Err(SysError::new(Op::Clone(flags), errno)),
        }
    }
}

/// Most timings a [`timed_in_child`] child may send back.
pub const MAX_CHILD_TIMINGS: usize = 64;

/// Runs `f` in a bare forked child that dies with the caller and returns the
/// timings (ns, at most [`MAX_CHILD_TIMINGS`]) it measured: for the benches'
/// fresh-child paths, where the child's work must look like the floor's
/// three-line C child. Unlike [`super::in_child`] the child sets up no
/// channel, closes nothing and serialises nothing: it writes its numbers
/// into a pipe and exits. Its error comes back as the errno of [`Op::Process`]
/// ("the measuring child").
///
/// The caller must be single-threaded (the benches' helper is): the child
/// allocates.
pub fn timed_in_child(f: impl FnOnce() -> Result<Vec<u64>, SysError>) -> Result<Vec<u64>, SysError> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).op(Op::Plumbing("pipe2"))?;
    // SAFETY: the benches' helper, the only caller, is single-threaded, so
    // the child may allocate; it ends in exit_group without unwinding.
    let forked = unsafe { sys::fork_with_flags(0, CloneCall::Clone) }.op(Op::Process("fork"))?;
    let Some(pid) = forked else {
        drop(r);
        let words: Vec<i64> = match sys::die_with_parent().op(Op::Process("prctl(PR_SET_PDEATHSIG)")).and_then(|()| f()) {
            Ok(t) if t.len() <= MAX_CHILD_TIMINGS => std::iter::once(t.len() as i64).chain(t.into_iter().map(|v| v as i64)).collect(),
            Ok(_) => vec![-(nix::errno::Errno::E2BIG as i64)],
            Err(e) => vec![-(e.errno as i64)],
        };
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let _ = nix::unistd::write(&w, &bytes);
        sys::exit_now(0);
    };
    drop(w);
    let mut bytes = Vec::new();
    let read = std::io::Read::read_to_end(&mut std::fs::File::from(r), &mut bytes).map_err(|e| {
        SysError::new(Op::Plumbing("reading the measuring child"), nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)))
    });
    let reaped = sys::wait_exit(WaitTarget::Pid(pid), false, false).op(Op::Process("waitid"));
    read?;
    reaped?;
    let words: Vec<i64> = bytes.chunks_exact(8).map(|c| i64::from_ne_bytes(c.try_into().expect("8 bytes"))).collect();
    match words.split_first() {
        Some((&n, rest)) if n >= 0 && n as usize == rest.len() => Ok(rest.iter().map(|&v| v as u64).collect()),
        Some((&e, _)) if e < 0 => Err(SysError::new(Op::Process("the measuring child"), nix::errno::Errno::from_raw(-e as i32))),
        _ => Err(SysError::new(Op::Process("the measuring child ended without its timings"), nix::errno::Errno::EIO)),
    }
}
