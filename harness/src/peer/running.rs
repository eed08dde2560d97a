//! The parent's handle on a running peer: messages, barriers, signals,
//! and reaping (a dropped peer is killed and reaped).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::case::{CaseError, CaseResult};
use crate::error::{Op, OpContext, SysError};
use crate::pidfd::Pidfd;
use crate::sys::{self, WaitTarget};

use super::Exit;

use super::channel::{forget_channel_fd, Msg};

/// A running peer. Dropping it kills and reaps it.
pub struct Peer {
    pub(super) pid: Pid,
    pub(super) to_peer: Option<File>,
    pub(super) from_peer: BufReader<File>,
    pub(super) exit: Option<Exit>,
    pub(super) detached: bool,
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
    /// [`Spawn::outlive_parent`](super::Spawn::outlive_parent) that must survive this process; watch it
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
