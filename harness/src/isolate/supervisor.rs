//! The runner side of isolation: starts the zygote, has it fork a case
//! child, waits for it under the deadline, kills and reaps its process
//! group, and reads back the verdict and output.

use std::fs::File;
use std::io::IoSlice;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::signal::{killpg, Signal};
use nix::sys::socket::{recv, sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType};
use nix::unistd::Pid;

use crate::case::{Case, Outcome};
use crate::sys::{self, Exit, WaitTarget};

use super::zygote::zygote_loop;
use super::{deadline, Verdict};

/// Most bytes of a child's output kept for the report.
const OUTPUT_LIMIT: u64 = 16 * 1024;

/// Process groups of every case child started by this process: the
/// no-trace check looks for survivors in them.
pub(crate) static CASE_GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// What came back from one isolated run.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Pass, Fail or Broken (skips are decided before running).
    pub outcome: Outcome,
    /// Why, for anything but a pass.
    pub message: String,
    /// `file:line` of the decision, when known.
    pub location: Option<String>,
    /// The body's stdout and stderr, truncated.
    pub output: String,
    /// Wall time from spawn to reaping the whole group.
    pub duration: Duration,
    /// The case child's process group id (gone when this returns).
    pub pgid: i32,
    /// Figures the body noted with [`note`](super::note).
    pub notes: Vec<(String, String)>,
}

impl Finished {
    fn broken(message: String, started: Instant, pgid: i32) -> Finished {
        Finished {
            outcome: Outcome::Broken,
            message,
            location: None,
            output: String::new(),
            duration: started.elapsed(),
            pgid,
            notes: Vec::new(),
        }
    }
}

/// Runs `case` in a child forked by the zygote (see [`start_zygote`]) and
/// collects the verdict. Safe to call from any thread.
pub fn run_isolated(case: &Case) -> Finished {
    let started = Instant::now();
    match spawn_and_wait(case, started) {
        Ok(f) => f,
        Err(e) => Finished::broken(format!("harness could not run the case: {e}"), started, 0),
    }
}

fn spawn_and_wait(case: &Case, started: Instant) -> Result<Finished, Errno> {
    let (verdict_r, verdict_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let output = memfd_create("nsverify-case-output", MFdFlags::MFD_CLOEXEC)?;
    let pid = ZYGOTE.get().ok_or(Errno::ESRCH)?.fork_case(&case.id, &verdict_w, &output)?;
    drop(verdict_w);
    CASE_GROUPS.lock().unwrap_or_else(|e| e.into_inner()).push(pid.as_raw());
    // Whatever happens below, the group is killed and what can be reaped is.
    let guard = GroupGuard(pid);
    let pidfd = sys::pidfd_open(pid)?;

    let limit = deadline(case);
    let timed_out = !wait_until_exit(&pidfd, started + limit)?;
    if timed_out {
        let _ = killpg(pid, Signal::SIGKILL);
    }
    // SIGKILLed or done, the leader exits at once unless the kernel holds
    // it (uninterruptible sleep): bounded, so that a stuck case cannot hang
    // the run.
    if !wait_until_exit(&pidfd, Instant::now() + KILL_GRACE)? {
        return Ok(Finished::broken(
            format!("case child {pid} does not die after SIGKILL within {KILL_GRACE:?} (stuck in the kernel?)"),
            started,
            pid.as_raw(),
        ));
    }
    // The leader is now a zombie: its pid, and so the group id, cannot be
    // reused until we reap it. Kill what is left of the group, then reap.
    let _ = killpg(pid, Signal::SIGKILL);
    let leader_exit = reap_group(pid, Instant::now() + KILL_GRACE)?;
    let group_gone = wait_group_gone(pid, Instant::now() + KILL_GRACE);
    std::mem::forget(guard);
    if group_gone {
        CASE_GROUPS.lock().unwrap_or_else(|e| e.into_inner()).retain(|g| *g != pid.as_raw());
    }

    let verdict = read_verdict(verdict_r);
    let notes = verdict.as_ref().map(|v| v.notes.clone()).unwrap_or_default();
    let output = read_output(output);
    let mut finished = match (timed_out, verdict.map(|v| v.result), leader_exit) {
        (true, _, _) => {
            Finished::broken(format!("deadline of {limit:?} passed: case killed with its process group {pid}"), started, pid.as_raw())
        }
        (false, Some(Ok(())), _) => Finished {
            outcome: Outcome::Pass,
            message: String::new(),
            location: None,
            output: String::new(),
            duration: Duration::ZERO,
            pgid: pid.as_raw(),
            notes: Vec::new(),
        },
        (false, Some(Err(e)), _) => Finished {
            outcome: e.outcome,
            message: e.message,
            location: Some(e.location),
            output: String::new(),
            duration: Duration::ZERO,
            pgid: pid.as_raw(),
            notes: Vec::new(),
        },
        (false, None, exit) => {
            let how = exit.map(|e| e.to_string()).unwrap_or_else(|| "ended unseen".into());
            Finished::broken(format!("case child ended without a verdict ({how})"), started, pid.as_raw())
        }
    };
    if !group_gone {
        finished.outcome = Outcome::Broken;
        finished.message = format!("{}; process group {pid} survived SIGKILL", finished.message);
    }
    finished.output = output;
    finished.notes = notes;
    finished.duration = started.elapsed();
    Ok(finished)
}

/// How long a SIGKILLed case may take to die and be reaped.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// Kills a case's process group and reaps what it can when the runner
/// leaves [`spawn_and_wait`] early.
struct GroupGuard(Pid);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let _ = killpg(self.0, Signal::SIGKILL);
        let _ = reap_group(self.0, Instant::now() + KILL_GRACE);
    }
}

/// Waits until the process of `pidfd` exits or `until` passes; true if it
/// exited.
fn wait_until_exit(pidfd: &OwnedFd, until: Instant) -> Result<bool, Errno> {
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let ms = u16::try_from(left.as_millis().min(u16::MAX as u128)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms.max(1))) {
            Ok(0) => continue,
            Ok(_) => return Ok(true),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Reaps every child of ours in process group `pgid` (the leader and any
/// orphans reparented to us as subreaper) until none is left or `until`
/// passes; returns the leader's exit.
fn reap_group(pgid: Pid, until: Instant) -> Result<Option<Exit>, Errno> {
    let mut leader = None;
    loop {
        match sys::wait_exit(WaitTarget::Pgid(pgid), false, true) {
            Ok(Some((pid, exit))) => {
                if pid == pgid {
                    leader = Some(exit);
                }
            }
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_micros(200)),
            Ok(None) => return Ok(leader),
            Err(Errno::ECHILD) => return Ok(leader),
            Err(e) => return Err(e),
        }
    }
}

/// Polls until no process is left in group `pgid` (members not ours are
/// reaped by their own parents), up to `until`.
fn wait_group_gone(pgid: Pid, until: Instant) -> bool {
    loop {
        match killpg(pgid, None) {
            Err(Errno::ESRCH) => return true,
            _ if Instant::now() >= until => return false,
            _ => {
                let _ = killpg(pgid, Signal::SIGKILL);
                std::thread::yield_now();
            }
        }
    }
}

fn read_verdict(r: OwnedFd) -> Option<Verdict> {
    // Peers may still hold a copy of the write end until the group dies, so
    // read what is there without waiting for end-of-file.
    let _ = fcntl(&r, FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
    let mut buf = Vec::new();
    let mut f = File::from(r);
    let mut chunk = [0u8; 4096];
    loop {
        match f.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&buf);
    serde_json::from_str(text.lines().next()?).ok()
}

fn read_output(fd: OwnedFd) -> String {
    let mut f = File::from(fd);
    let len = f.seek(SeekFrom::End(0)).unwrap_or(0);
    let start = len.saturating_sub(OUTPUT_LIMIT);
    let mut buf = Vec::new();
    if f.seek(SeekFrom::Start(start)).is_ok() {
        let _ = f.read_to_end(&mut buf);
    }
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    if start > 0 {
        text.insert_str(0, "[... output truncated ...]\n");
    }
    text
}

/// The fork server of this process, once started.
static ZYGOTE: OnceLock<Zygote> = OnceLock::new();

/// The runner's handle on the zygote.
struct Zygote {
    /// Requests go out and pids come back over this socket; one request at a
    /// time, so that each reply is the requester's.
    sock: Mutex<Option<OwnedFd>>,
    pid: Pid,
}

impl Zygote {
    /// Asks the zygote to fork the child of case `id`; returns its pid.
    fn fork_case(&self, id: &str, verdict: &OwnedFd, output: &OwnedFd) -> Result<Pid, Errno> {
        let guard = self.sock.lock().unwrap_or_else(|e| e.into_inner());
        let sock = guard.as_ref().ok_or(Errno::ESRCH)?;
        let fds = [verdict.as_raw_fd(), output.as_raw_fd()];
        sendmsg::<()>(sock.as_raw_fd(), &[IoSlice::new(id.as_bytes())], &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)?;
        let mut reply = [0u8; 8];
        let n = loop {
            match recv(sock.as_raw_fd(), &mut reply, MsgFlags::empty()) {
                Err(Errno::EINTR) => continue,
                other => break other?,
            }
        };
        if n != reply.len() {
            return Err(Errno::EPIPE);
        }
        match i64::from_ne_bytes(reply) {
            pid if pid > 0 => Ok(Pid::from_raw(pid as i32)),
            errno => Err(Errno::from_raw(-errno as i32)),
        }
    }
}

/// Starts the fork server for `cases`. Must be called from `main` before
/// any thread exists; the zygote and the case children it forks are then
/// single-threaded. The calling process becomes the runner that
/// [`scratch_name`](super::scratch_name)s name.
pub fn start_zygote(cases: &[Case]) -> Result<(), Errno> {
    super::RUNNER_PID.store(std::process::id(), std::sync::atomic::Ordering::Relaxed);
    let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)?;
    // SAFETY: called from `main` before any thread exists (documented
    // above), so the zygote child may allocate.
    match unsafe { sys::fork_with_flags(0, sys::CloneCall::Clone) }? {
        None => {
            drop(ours);
            zygote_loop(cases, theirs)
        }
        Some(pid) => {
            drop(theirs);
            let _ = ZYGOTE.set(Zygote { sock: Mutex::new(Some(ours)), pid });
            Ok(())
        }
    }
}

/// Stops the fork server and reaps it (before the no-trace check).
pub fn stop_zygote() {
    if let Some(z) = ZYGOTE.get() {
        drop(z.sock.lock().unwrap_or_else(|e| e.into_inner()).take());
        let _ = sys::wait_exit(WaitTarget::Pid(z.pid), false, false);
    }
}
