//! Peers: processes a case body starts in new namespaces, talks to over a
//! channel, and reaps. Case bodies never call fork, pipe or waitpid.
//!
//! - this module: how to start a peer ([`Spawn`], [`Via`]), [`call`], [`in_child`];
//! - `channel`: the peer's side ([`Channel`]) and the pipes between them;
//! - `running`: the parent's handle on a running peer ([`Peer`]);
//! - `exiting`: [`ExitingChild`], a child that only exits (the benches' clone loop).

use std::fs::File;
use std::io::BufReader;
use std::os::fd::AsRawFd;
use std::sync::Mutex;

use nix::unistd::{getegid, geteuid};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::case::{CaseError, CaseResult};
use crate::error::{Op, OpContext, SysError};
use crate::flags::NsFlags;
use crate::kind::Kind;
use crate::sys;

use crate::userns;

mod channel;
mod exiting;
mod running;

pub use crate::sys::{CloneCall, Exit};
use channel::{close_other_channels, forget_channel_fd, pipe, Msg};
pub use channel::{serve_stdio, Channel};
pub use exiting::{timed_in_child, ExitingChild, MAX_CHILD_TIMINGS};
pub use running::Peer;

/// How a peer gets its namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// clone(2) with the flags: the child starts in them (A1).
    Clone,
    /// clone3(2) with the flags (5.3+; the only clone for CLONE_NEWTIME).
    Clone3,
    /// fork, then unshare(2) in the child (A3).
    Unshare,
}

impl Via {
    /// How [`Spawn::new_ns`] makes a new namespace of `kind`: clone(2) for
    /// the seven kinds clone(2) takes, unshare(2) in a forked child for
    /// time (see [`Spawn::new_ns`] for why).
    pub fn for_new_ns(kind: Kind) -> Via {
        if kind.info().legacy_clone {
            Via::Clone
        } else {
            Via::Unshare
        }
    }
}

/// How to start a peer.
#[derive(Debug, Clone)]
pub struct Spawn {
    flags: NsFlags,
    via: Via,
    user: Option<(u32, u32)>,
    map_root: bool,
    close_fds: bool,
    outlive_parent: bool,
}

impl Spawn {
    /// A plain child in the caller's namespaces.
    pub fn fork() -> Spawn {
        Spawn { flags: NsFlags::EMPTY, via: Via::Clone, user: None, map_root: false, close_fds: false, outlive_parent: false }
    }

    /// **The one way into a new namespace of a kind**: a peer with a new
    /// `kind` namespace, found at [`NsEntry::of_new_ns`](crate::kind::NsEntry::of_new_ns).
    ///
    /// For the seven kinds clone(2) takes, clone(2) with `kind`'s flag: the
    /// peer starts in the new namespace. For time, a forked child that calls
    /// unshare(CLONE_NEWTIME), the way time_namespaces(7) documents: the new
    /// namespace is the peer's `time_for_children` (its offsets may still be
    /// written), and its children start in it. clone(2) cannot carry
    /// CLONE_NEWTIME (its bit is CSIGNAL's), and clone3(2) refuses it on 5.6
    /// to 6.2 kernels without the a402f1e35313 backport
    /// ([`crate::known::CLONE3_NEWTIME_EINVAL`]), so unshare is the path every
    /// kernel with time namespaces takes. The same choice is [`Via::for_new_ns`].
    ///
    /// Cases, benches and the fuzz model enter new namespaces through this
    /// (or [`Spawn::new_ns_with`]), so all exercise the path the cases verify;
    /// [`Spawn::clone`], [`Spawn::clone3`] and [`Spawn::unshare`] are the
    /// named alternatives for callers that mean one system call.
    pub fn new_ns(kind: Kind) -> Spawn {
        Spawn::new_ns_with(kind, NsFlags::EMPTY)
    }

    /// [`Spawn::new_ns`] with `extra` namespace flags created by the same
    /// call (for example CLONE_NEWUSER). With CLONE_NEWUSER among them uid
    /// and gid 0 of the new user namespace are mapped to the creator
    /// ([`Spawn::map_root`]).
    pub fn new_ns_with(kind: Kind, extra: impl Into<NsFlags>) -> Spawn {
        let flags = kind.flag() | extra.into();
        let spawn = Spawn::with(Via::for_new_ns(kind), flags);
        if flags.contains(NsFlags::USER) {
            spawn.map_root()
        } else {
            spawn
        }
    }

    /// A child created by clone(2) with `flags` (CLONE_NEW* bits): the
    /// named alternative to [`Spawn::new_ns`] for callers that mean clone(2).
    pub fn clone(flags: impl Into<NsFlags>) -> Spawn {
        Spawn { flags: flags.into(), ..Spawn::fork() }
    }

    /// A child created by clone3(2) with `flags` (any bits: the fuzz suite
    /// passes non-namespace ones): the named alternative for callers that
    /// mean clone3(2).
    pub fn clone3(flags: impl Into<NsFlags>) -> Spawn {
        Spawn { flags: flags.into(), via: Via::Clone3, ..Spawn::fork() }
    }

    /// A forked child that calls unshare(2) with `flags` first: the named
    /// alternative for callers that mean unshare(2).
    pub fn unshare(flags: impl Into<NsFlags>) -> Spawn {
        Spawn { flags: flags.into(), via: Via::Unshare, ..Spawn::fork() }
    }

    /// A child created with `flags` by `via`.
    pub fn with(via: Via, flags: impl Into<NsFlags>) -> Spawn {
        Spawn { flags: flags.into(), via, ..Spawn::fork() }
    }

    /// The peer does not die with its parent (no PR_SET_PDEATHSIG): for a
    /// peer that must outlive the process that started it, ended only by
    /// the kernel (a pid namespace's init exiting) or by its pidfd
    /// ([`Peer::detach`], [`Pidfd::kill`](crate::pidfd::Pidfd::kill)).
    pub fn outlive_parent(mut self) -> Spawn {
        self.outlive_parent = true;
        self
    }

    /// Runs the peer as `uid`/`gid` with no supplementary groups, dropping
    /// capabilities. With [`Via::Unshare`] this happens before unshare(2);
    /// with clone it happens in the child, after the namespaces exist.
    pub fn as_user(mut self, uid: u32, gid: u32) -> Spawn {
        self.user = Some((uid, gid));
        self
    }

    /// When `flags` has CLONE_NEWUSER, maps uid and gid 0 of the new user
    /// namespace to the creator's effective ids (the peer writes its own
    /// maps, denying setgroups, as an unprivileged creator may).
    pub fn map_root(mut self) -> Spawn {
        self.map_root = true;
        self
    }

    /// Closes every fd the peer inherits but stdin, stdout, stderr and its
    /// channel: a peer that must not pin namespaces through fds its parent
    /// happens to hold (observer probes, controls).
    pub fn close_inherited_fds(mut self) -> Spawn {
        self.close_fds = true;
        self
    }

    /// The namespace flags.
    pub fn flags(&self) -> NsFlags {
        self.flags
    }

    /// How the namespaces are created.
    pub fn via(&self) -> Via {
        self.via
    }

    /// For [`Via::Unshare`]: the same spawn without the unshare (ids still
    /// changed, fds still closed), so that the body can make the call and
    /// tell its errno apart from a failure of the other steps.
    pub(crate) fn without_unshare(&self) -> Spawn {
        Spawn { flags: NsFlags::EMPTY, via: Via::Unshare, map_root: false, ..self.clone() }
    }

    /// Whether [`Spawn::map_root`] was asked for.
    pub(crate) fn maps_root(&self) -> bool {
        self.map_root
    }

    /// Starts the peer running `body`; returns once it exists (not once it
    /// is ready: use the channel for that).
    pub fn spawn<F>(&self, body: F) -> Result<Peer, SysError>
    where
        F: FnOnce(&Channel) -> CaseResult,
    {
        let (down_r, down_w) = pipe()?;
        let (up_r, up_w) = pipe()?;
        let outer = (geteuid().as_raw(), getegid().as_raw());
        let (flags, call) = match self.via {
            Via::Clone => (self.flags.bits(), CloneCall::Clone),
            Via::Clone3 => (self.flags.bits(), CloneCall::Clone3),
            Via::Unshare => (0, CloneCall::Clone),
        };
        // SAFETY: case bodies and peers run in single-threaded processes
        // (the harness's isolation; a peer's own peers likewise), so the
        // child may allocate.
        let creating = unsafe { sys::fork_with_flags(flags, call) };
        let forked = match (self.via, creating) {
            (_, Ok(forked)) => forked,
            (via, Err(errno)) => {
                for fd in [&down_r, &down_w, &up_r, &up_w] {
                    forget_channel_fd(fd.as_raw_fd());
                }
                let op = if via == Via::Unshare { Op::Process("fork") } else { Op::Clone(self.flags) };
                return Err(SysError::new(op, errno));
            }
        };
        let Some(pid) = forked else {
            // In the child.
            // Closes the parent's ends too (they are registered channel fds);
            // forget them so that nothing closes them twice.
            close_other_channels(&[down_r.as_raw_fd(), up_w.as_raw_fd()]);
            std::mem::forget((down_w, up_r));
            if self.close_fds {
                // SAFETY: a freshly forked child: it goes on to use only
                // its channel fds (kept) and what it opens itself.
                unsafe { sys::close_fds_except(&[down_r.as_raw_fd(), up_w.as_raw_fd()]) };
            }
            let channel = Channel { to_parent: Mutex::new(File::from(up_w)), from_parent: Mutex::new(BufReader::new(File::from(down_r))) };
            // A panic must not unwind into the copy of the parent's stack
            // (running its destructors in this process): it ends the peer
            // as a failure with the panic's message.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.enter(outer).and_then(|()| body(&channel))))
                .unwrap_or_else(|_| Err(crate::isolate::panic_failure()));
            let _ = channel.write_msg(&Msg::Done(result));
            sys::exit_now(0);
        };
        forget_channel_fd(down_r.as_raw_fd());
        forget_channel_fd(up_w.as_raw_fd());
        drop((down_r, up_w));
        Ok(Peer { pid, to_peer: Some(File::from(down_w)), from_peer: BufReader::new(File::from(up_r)), exit: None, detached: false })
    }

    /// Child side: die with the parent, then unshare, map and drop ids.
    fn enter(&self, outer: (u32, u32)) -> CaseResult {
        if !self.outlive_parent {
            sys::die_with_parent().op(Op::Process("prctl(PR_SET_PDEATHSIG)"))?;
        }
        let mut outer = outer;
        if self.via == Via::Unshare {
            if let Some((uid, gid)) = self.user {
                userns::become_user(uid, gid)?;
                outer = (uid, gid);
            }
            crate::ns::unshare(self.flags)?;
        }
        if self.map_root && self.flags.contains(NsFlags::USER) {
            userns::map_self_as_root(outer.0, outer.1)?;
        }
        if self.via != Via::Unshare {
            if let Some((uid, gid)) = self.user {
                userns::become_user(uid, gid)?;
            }
        }
        Ok(())
    }
}

impl Spawn {
    /// Starts a peer that becomes `command` (execve after the peer's set-up):
    /// a fresh process image, not a copy of the caller's, that talks to the
    /// returned [`Peer`] over its standard input and output with
    /// [`serve_stdio`]. The benches start their measuring helper so, that
    /// its address space is as small as the floor's.
    pub fn spawn_exec(&self, command: std::process::Command) -> Result<Peer, SysError> {
        self.spawn(move |ch| Err(ch.exec(command)))
    }

    /// Starts a peer that only holds what it was made with (namespaces,
    /// ids) until let go ([`Peer::go`], then [`Peer::join`]) or dropped;
    /// returns once it is ready.
    pub fn spawn_idle(&self) -> Result<Peer, CaseError> {
        let mut peer = self.spawn(|ch| {
            ch.ready()?;
            ch.wait()
        })?;
        peer.wait_ready()?;
        Ok(peer)
    }
}

/// Runs `f` in a peer started by `spawn` and returns its value.
pub fn call<T, F>(spawn: &Spawn, f: F) -> Result<T, CaseError>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T, CaseError>,
{
    let mut peer = spawn.spawn(|ch| ch.send(&f()?))?;
    let value = peer.recv()?;
    peer.join()?;
    Ok(value)
}

/// Runs `f` in a plain forked child (same namespaces), returning its value:
/// for steps that change the caller (setns, unshare) without changing it.
pub fn in_child<T, F>(f: F) -> Result<T, CaseError>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T, CaseError>,
{
    call(&Spawn::fork(), f)
}
