//! Peers: processes a case body starts in new namespaces, talks to over a
//! channel, and reaps. Case bodies never call fork, pipe or waitpid.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{kill, Signal};
use nix::unistd::{getegid, geteuid, Pid};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::case::{CaseError, CaseResult};
use crate::error::{Op, OpContext, SysError};
use crate::flags::NsFlags;
use crate::kind::Kind;
use crate::pidfd::Pidfd;
use crate::sys::{self, WaitTarget};

pub use crate::sys::{CloneCall, Exit};
use crate::userns;

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
    /// ([`Peer::detach`], [`Pidfd::kill`]).
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

#[derive(Serialize, Deserialize)]
enum Msg {
    Data(serde_json::Value),
    Done(CaseResult),
}

/// Write ends and read ends of every live channel in this process: a new
/// peer closes the ones that are not its own, so that a peer's death is seen
/// as end-of-file by its parent even while siblings live.
static CHANNEL_FDS: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

fn pipe() -> Result<(OwnedFd, OwnedFd), SysError> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).op(Op::Plumbing("pipe2"))?;
    let mut fds = CHANNEL_FDS.lock().unwrap_or_else(|e| e.into_inner());
    fds.push(r.as_raw_fd());
    fds.push(w.as_raw_fd());
    Ok((r, w))
}

fn forget_channel_fd(fd: RawFd) {
    CHANNEL_FDS.lock().unwrap_or_else(|e| e.into_inner()).retain(|&f| f != fd);
}

fn close_other_channels(keep: &[RawFd]) {
    let mut fds = CHANNEL_FDS.lock().unwrap_or_else(|e| e.into_inner());
    for &fd in fds.iter().filter(|fd| !keep.contains(fd)) {
        let _ = nix::unistd::close(fd);
    }
    fds.retain(|fd| keep.contains(fd));
    crate::isolate::close_verdict_fd();
}

/// The peer's side of its channel to the process that started it.
pub struct Channel {
    to_parent: Mutex<File>,
    from_parent: Mutex<BufReader<File>>,
}

impl Channel {
    /// Sends a value to the parent.
    pub fn send<T: Serialize>(&self, value: &T) -> CaseResult {
        let v = serde_json::to_value(value).map_err(|e| CaseError::broken(format!("encoding a message: {e}")))?;
        self.write_msg(&Msg::Data(v))
    }

    /// Tells the parent "ready" (a barrier).
    pub fn ready(&self) -> CaseResult {
        self.send(&())
    }

    /// Waits for a value from the parent.
    pub fn recv<T: DeserializeOwned>(&self) -> Result<T, CaseError> {
        let mut line = String::new();
        let n = self.from_parent.lock().unwrap_or_else(|e| e.into_inner()).read_line(&mut line).op(Op::Channel("reading from parent"))?;
        if n == 0 {
            return Err(CaseError::broken("parent closed the channel"));
        }
        serde_json::from_str(&line).map_err(|e| CaseError::broken(format!("decoding a message from parent: {e}")))
    }

    /// Waits for the parent's go-ahead (a barrier).
    pub fn wait(&self) -> CaseResult {
        self.recv::<()>()
    }

    fn write_msg(&self, msg: &Msg) -> CaseResult {
        let mut line = serde_json::to_string(msg).map_err(|e| CaseError::broken(format!("encoding: {e}")))?;
        line.push('\n');
        self.to_parent.lock().unwrap_or_else(|e| e.into_inner()).write_all(line.as_bytes()).op(Op::Channel("writing to parent"))?;
        Ok(())
    }
}

/// A running peer. Dropping it kills and reaps it.
pub struct Peer {
    pid: Pid,
    to_peer: Option<File>,
    from_peer: BufReader<File>,
    exit: Option<Exit>,
    detached: bool,
}

impl Peer {
    /// The peer's pid in the caller's pid namespace.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The peer as a `/proc` name.
    pub fn proc(&self) -> crate::nsid::Proc {
        crate::nsid::Proc::Pid(self.pid.as_raw())
    }

    /// Sends a value to the peer.
    pub fn send<T: Serialize>(&mut self, value: &T) -> CaseResult {
        let mut line = serde_json::to_string(value).map_err(|e| CaseError::broken(format!("encoding: {e}")))?;
        line.push('\n');
        let to = self.to_peer.as_mut().ok_or_else(|| CaseError::broken("channel to peer already closed"))?;
        to.write_all(line.as_bytes()).op(Op::Channel("writing to peer"))?;
        Ok(())
    }

    /// Lets the peer go on (a barrier).
    pub fn go(&mut self) -> CaseResult {
        self.send(&())
    }

    /// Waits for a value from the peer. If the peer finished instead, its
    /// failure is returned as is (with the peer's location).
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T, CaseError> {
        match self.read_msg()? {
            Msg::Data(v) => serde_json::from_value(v).map_err(|e| CaseError::broken(format!("decoding a message from peer: {e}"))),
            Msg::Done(Err(e)) => Err(e),
            Msg::Done(Ok(())) => Err(CaseError::broken("peer finished without sending the expected message")),
        }
    }

    /// Waits for the peer's "ready" (a barrier).
    pub fn wait_ready(&mut self) -> CaseResult {
        self.recv::<()>()
    }

    fn read_msg(&mut self) -> Result<Msg, CaseError> {
        let mut line = String::new();
        let n = self.from_peer.read_line(&mut line).op(Op::Channel("reading from peer"))?;
        if n == 0 {
            let exit = self.reap()?;
            return Err(CaseError::broken(format!("peer {} ended without a result ({exit})", self.pid)));
        }
        serde_json::from_str(&line).map_err(|e| CaseError::broken(format!("decoding a message from peer: {e}")))
    }

    /// Closes the channel towards the peer (it sees end-of-file).
    pub fn close_channel(&mut self) {
        if let Some(f) = self.to_peer.take() {
            forget_channel_fd(f.as_raw_fd());
        }
    }

    /// Waits for the peer's body to finish and reaps it; returns the body's
    /// result (a failure inside the peer fails the case).
    pub fn join(mut self) -> CaseResult {
        loop {
            match self.read_msg()? {
                Msg::Data(_) => continue,
                Msg::Done(result) => {
                    self.reap()?;
                    return result;
                }
            }
        }
    }

    /// Waits for the peer to end however it ends (for peers the kernel kills)
    /// and reaps it.
    pub fn wait_exit(mut self) -> Result<Exit, CaseError> {
        self.reap()
    }

    /// Sends `signal` to the peer.
    pub fn signal(&self, signal: Signal) -> CaseResult {
        kill(self.pid, signal).op(Op::Process("kill"))?;
        Ok(())
    }

    /// Kills the peer with SIGKILL and reaps it.
    pub fn kill(mut self) -> Result<Exit, CaseError> {
        if self.exit.is_none() {
            let _ = kill(self.pid, Signal::SIGKILL);
        }
        self.reap()
    }

    /// A pidfd of the peer (pidfd_open(2), 5.3+).
    pub fn pidfd(&self) -> Result<Pidfd, SysError> {
        Pidfd::open(self.pid)
    }

    /// Waits up to `timeout` for the peer to end, without reaping it (its
    /// pidfd polls readable): `Ok(false)` when it still runs.
    pub fn wait_gone(&self, timeout: std::time::Duration) -> Result<bool, SysError> {
        if self.exit.is_some() {
            return Ok(true);
        }
        self.pidfd()?.wait_exited(timeout)
    }

    /// Leaves the peer running: dropping it no longer kills or reaps it
    /// (the channel is closed). For a peer started with
    /// [`Spawn::outlive_parent`] that must survive this process; watch it
    /// with [`Pidfd::open`] on the returned pid.
    pub fn detach(mut self) -> Pid {
        self.detached = true;
        self.pid
    }

    /// Whether the peer has ended (without reaping it).
    pub fn has_exited(&self) -> Result<bool, CaseError> {
        if self.exit.is_some() {
            return Ok(true);
        }
        Ok(sys::wait_exit(WaitTarget::Pid(self.pid), true, true).op(Op::Process("waitid"))?.is_some())
    }

    fn reap(&mut self) -> Result<Exit, CaseError> {
        if let Some(exit) = self.exit {
            return Ok(exit);
        }
        match sys::wait_exit(WaitTarget::Pid(self.pid), false, false) {
            Ok(Some((_, exit))) => {
                self.exit = Some(exit);
                Ok(exit)
            }
            Ok(None) => Err(CaseError::broken("waitid returned no child")),
            Err(Errno::ECHILD) => Err(CaseError::broken(format!("peer {} was already reaped", self.pid))),
            Err(e) => Err(SysError::new(Op::Process("waitid"), e).into()),
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.close_channel();
        forget_channel_fd(self.from_peer.get_ref().as_raw_fd());
        if self.exit.is_none() && !self.detached {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = self.reap();
        }
    }
}

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
