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
use crate::sys::{self, CloneCall, Exit, WaitTarget};
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

/// How to start a peer.
#[derive(Debug, Clone)]
pub struct Spawn {
    flags: u64,
    via: Via,
    user: Option<(u32, u32)>,
    map_root: bool,
    close_fds: bool,
}

impl Spawn {
    /// A plain child in the caller's namespaces.
    pub fn fork() -> Spawn {
        Spawn { flags: 0, via: Via::Clone, user: None, map_root: false, close_fds: false }
    }

    /// A child created by clone(2) with `flags` (CLONE_NEW* bits).
    pub fn clone(flags: u64) -> Spawn {
        Spawn { flags, ..Spawn::fork() }
    }

    /// A child created by clone3(2) with `flags`.
    pub fn clone3(flags: u64) -> Spawn {
        Spawn { flags, via: Via::Clone3, ..Spawn::fork() }
    }

    /// A forked child that calls unshare(2) with `flags` first.
    pub fn unshare(flags: u64) -> Spawn {
        Spawn { flags, via: Via::Unshare, ..Spawn::fork() }
    }

    /// A child created with `flags` by `via`.
    pub fn with(via: Via, flags: u64) -> Spawn {
        Spawn { flags, via, ..Spawn::fork() }
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
    pub fn flags(&self) -> u64 {
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
        Spawn { flags: 0, via: Via::Unshare, map_root: false, ..self.clone() }
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
        let creating = match self.via {
            Via::Clone => sys::fork_with_flags(self.flags, CloneCall::Clone),
            Via::Clone3 => sys::fork_with_flags(self.flags, CloneCall::Clone3),
            Via::Unshare => sys::fork_with_flags(0, CloneCall::Clone),
        };
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
                sys::close_fds_except(&[down_r.as_raw_fd(), up_w.as_raw_fd()]);
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
        Ok(Peer { pid, to_peer: Some(File::from(down_w)), from_peer: BufReader::new(File::from(up_r)), exit: None })
    }

    /// Child side: die with the parent, then unshare, map and drop ids.
    fn enter(&self, outer: (u32, u32)) -> CaseResult {
        sys::die_with_parent().op(Op::Process("prctl(PR_SET_PDEATHSIG)"))?;
        let mut outer = outer;
        if self.via == Via::Unshare {
            if let Some((uid, gid)) = self.user {
                userns::become_user(uid, gid)?;
                outer = (uid, gid);
            }
            sys::unshare(self.flags).op(Op::Unshare(self.flags))?;
        }
        if self.map_root && self.flags & libc::CLONE_NEWUSER as u64 != 0 {
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
        if self.exit.is_none() {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = self.reap();
        }
    }
}
