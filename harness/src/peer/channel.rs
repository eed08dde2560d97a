//! The channel between a peer and the process that started it: a pipe
//! each way carrying JSON lines, and the registry of channel fds that a
//! new peer closes so that a peer's death reads as end-of-file.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

use nix::fcntl::OFlag;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::case::{CaseError, CaseResult};
use crate::error::{Op, OpContext, SysError};

#[derive(Serialize, Deserialize)]
pub(super) enum Msg {
    Data(serde_json::Value),
    Done(CaseResult),
}

/// Write ends and read ends of every live channel in this process: a new
/// peer closes the ones that are not its own, so that a peer's death is seen
/// as end-of-file by its parent even while siblings live.
static CHANNEL_FDS: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

pub(super) fn pipe() -> Result<(OwnedFd, OwnedFd), SysError> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).op(Op::Plumbing("pipe2"))?;
    let mut fds = CHANNEL_FDS.lock().unwrap_or_else(|e| e.into_inner());
    fds.push(r.as_raw_fd());
    fds.push(w.as_raw_fd());
    Ok((r, w))
}

pub(super) fn forget_channel_fd(fd: RawFd) {
    CHANNEL_FDS.lock().unwrap_or_else(|e| e.into_inner()).retain(|&f| f != fd);
}

pub(super) fn close_other_channels(keep: &[RawFd]) {
    let mut fds = CHANNEL_FDS.lock().unwrap_or_else(|e| e.into_inner());
    for &fd in fds.iter().filter(|fd| !keep.contains(fd)) {
        let _ = nix::unistd::close(fd);
    }
    fds.retain(|fd| keep.contains(fd));
    crate::isolate::close_verdict_fd();
}

/// The peer's side of its channel to the process that started it.
pub struct Channel {
    pub(super) to_parent: Mutex<File>,
    pub(super) from_parent: Mutex<BufReader<File>>,
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

    /// Replaces this peer with `command` (execve), its standard input and
    /// output wired to this channel; returns only if the exec failed. The
    /// program answers with [`serve_stdio`]. The peer's PDEATHSIG survives
    /// the exec.
    pub(super) fn exec(&self, mut command: std::process::Command) -> CaseError {
        use std::os::unix::process::CommandExt;
        let dup = |f: &File| f.try_clone().op(Op::Plumbing("dup of a channel fd"));
        let input = dup(self.from_parent.lock().unwrap_or_else(|e| e.into_inner()).get_ref());
        let output = dup(&self.to_parent.lock().unwrap_or_else(|e| e.into_inner()));
        match (input, output) {
            (Ok(input), Ok(output)) => {
                let err = command.stdin(input).stdout(output).exec();
                CaseError::broken(format!("execve of {:?}: {err}", command.get_program()))
            }
            (Err(e), _) | (_, Err(e)) => e.into(),
        }
    }

    pub(super) fn write_msg(&self, msg: &Msg) -> CaseResult {
        let mut line = serde_json::to_string(msg).map_err(|e| CaseError::broken(format!("encoding: {e}")))?;
        line.push('\n');
        self.to_parent.lock().unwrap_or_else(|e| e.into_inner()).write_all(line.as_bytes()).op(Op::Channel("writing to parent"))?;
        Ok(())
    }
}

/// The program side of [`super::Spawn::spawn_exec`]: runs `body` with the
/// channel on standard input and output (so `body` must not print to
/// standard output), then reports its result to the parent as a peer body
/// does. A panic in `body` is reported as a failure.
pub fn serve_stdio(body: impl FnOnce(&Channel) -> CaseResult) -> CaseResult {
    let own = |fd: std::os::fd::BorrowedFd<'_>| fd.try_clone_to_owned().op(Op::Plumbing("dup of standard input or output"));
    let channel = Channel {
        to_parent: Mutex::new(File::from(own(std::os::fd::AsFd::as_fd(&std::io::stdout()))?)),
        from_parent: Mutex::new(BufReader::new(File::from(own(std::os::fd::AsFd::as_fd(&std::io::stdin()))?))),
    };
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&channel))).unwrap_or_else(|_| Err(crate::isolate::panic_failure()));
    let reported = channel.write_msg(&Msg::Done(result.clone()));
    result.and(reported)
}
