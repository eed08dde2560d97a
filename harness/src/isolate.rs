//! Isolation: every case body runs in a fresh, single-threaded process, in
//! its own process group, dying with its parent, under a deadline. The
//! verdict comes back over a pipe; on the deadline the whole group is killed
//! and the case is broken.
//!
//! The processes come from a fork server (the zygote): a process forked
//! from `main` before any thread exists, holding the case table. For each
//! case a runner thread sends it the case id with the verdict pipe and the
//! output file (SCM_RIGHTS); the zygote forks the case child with
//! CLONE_PARENT, so that the child is the runner's own child, to wait for,
//! kill with its group and reap. A fork costs far less than re-executing
//! the test binary (under emulation, milliseconds against tens).

pub use crate::sys::become_subreaper;
use std::fs::File;
use std::io::{IoSlice, IoSliceMut};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::signal::{killpg, Signal};
use nix::sys::socket::{
    recv, recvmsg, send, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};
use nix::unistd::Pid;

use crate::case::{Case, CaseError, CaseResult, Outcome, Privilege};
use crate::sys::{self, Exit, WaitTarget};

/// Multiplies every deadline (for slow machines such as emulated VMs).
pub const TIMEOUT_SCALE_ENV: &str = "NSVERIFY_TIMEOUT_SCALE";

/// Most bytes of a child's output kept for the report.
const OUTPUT_LIMIT: u64 = 16 * 1024;

static CHILD_VERDICT_FD: AtomicI32 = AtomicI32::new(-1);

/// Process groups of every case child started by this process: the
/// no-trace check looks for survivors in them.
pub(crate) static CASE_GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// The verdict a case child sends: its result and the notes it took.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Verdict {
    result: CaseResult,
    notes: Vec<(String, String)>,
}

/// Notes taken by the running case body (measured figures worth keeping).
static NOTES: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Records a measured figure of the running case (for example a release
/// latency): it appears in the case's report record under `notes`.
pub fn note(key: impl Into<String>, value: impl std::fmt::Display) {
    NOTES.lock().unwrap_or_else(|e| e.into_inner()).push((key.into(), value.to_string()));
}

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
    /// Figures the body noted with [`note`].
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

/// `d` scaled by `NSVERIFY_TIMEOUT_SCALE` (1 when unset or invalid).
pub fn scaled(d: Duration) -> Duration {
    let scale = std::env::var(TIMEOUT_SCALE_ENV).ok().and_then(|s| s.parse::<f64>().ok()).filter(|s| *s > 0.0).unwrap_or(1.0);
    d.mul_f64(scale)
}

/// The deadline of `case` after scaling by `NSVERIFY_TIMEOUT_SCALE`.
pub fn deadline(case: &Case) -> Duration {
    scaled(case.timeout)
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

/// In a forked peer: closes the inherited verdict fd, so that only the case
/// child itself reports.
pub(crate) fn close_verdict_fd() {
    let fd = CHILD_VERDICT_FD.swap(-1, Ordering::SeqCst);
    if fd >= 0 {
        let _ = nix::unistd::close(fd);
    }
}

/// The failure of a body (or peer) that panicked: the message and location
/// the panic hook of the case child recorded.
pub(crate) fn panic_failure() -> CaseError {
    let (msg, loc) = PANIC.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_default();
    CaseError { outcome: Outcome::Fail, message: format!("panicked: {msg}"), location: loc, errno: None }
}

/// Message and location of the last panic in this process.
static PANIC: Mutex<Option<(String, String)>> = Mutex::new(None);

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
/// single-threaded.
pub fn start_zygote(cases: &[Case]) -> Result<(), Errno> {
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

/// The zygote: forks a case child per request until the runner closes the
/// socket (or dies: the zygote dies with it).
fn zygote_loop(cases: &[Case], sock: OwnedFd) -> ! {
    let _ = sys::die_with_parent();
    loop {
        let mut id = [0u8; 512];
        let mut iov = [IoSliceMut::new(&mut id)];
        let mut space = nix::cmsg_space!([RawFd; 2]);
        let (n, fds) = match recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Err(Errno::EINTR) => continue,
            Err(_) => sys::exit_now(0),
            Ok(msg) => {
                let fds: Vec<OwnedFd> = msg
                    .cmsgs()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| match c {
                        ControlMessageOwned::ScmRights(fds) => Some(fds),
                        _ => None,
                    })
                    .flatten()
                    // SAFETY: SCM_RIGHTS fds were just installed in this
                    // process by recvmsg; nothing else owns them.
                    .map(|fd| unsafe { sys::own_fd(fd) })
                    .collect();
                (msg.bytes, fds)
            }
        };
        if n == 0 {
            sys::exit_now(0);
        }
        let id = String::from_utf8_lossy(&id[..n]).into_owned();
        // SAFETY: the zygote is single-threaded (started before any thread
        // exists), so the case child may allocate.
        let forked = unsafe { sys::fork_with_flags(libc::CLONE_PARENT as u64, sys::CloneCall::Clone) };
        let reply: i64 = match (<[OwnedFd; 2]>::try_from(fds), forked) {
            (Ok([verdict, output]), Ok(None)) => case_child(cases, &id, verdict, output, sock.as_raw_fd()),
            (Ok(_), Ok(Some(pid))) => i64::from(pid.as_raw()),
            (Ok(_), Err(e)) => -(e as i64),
            (Err(_), _) => -(Errno::EBADMSG as i64),
        };
        let _ = send(sock.as_raw_fd(), &reply.to_ne_bytes(), MsgFlags::empty());
    }
}

/// Cuts `s` to at most `max` bytes at a character boundary.
fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str(" [...]");
    }
}

/// A case child, forked by the zygote as the runner's child: its own
/// process group, dying with the runner, output to `output`, the verdict
/// to `verdict`.
fn case_child(cases: &[Case], id: &str, verdict: OwnedFd, output: OwnedFd, zygote_sock: RawFd) -> ! {
    let _ = nix::unistd::close(zygote_sock);
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    let _ = sys::die_with_parent();
    let null = nix::fcntl::open("/dev/null", OFlag::O_RDONLY, nix::sys::stat::Mode::empty());
    if let Ok(null) = null {
        let _ = nix::unistd::dup2_stdin(&null);
    }
    let _ = nix::unistd::dup2_stdout(&output);
    let _ = nix::unistd::dup2_stderr(&output);
    drop(output);
    CHILD_VERDICT_FD.store(verdict.as_raw_fd(), Ordering::SeqCst);
    let mut verdict = File::from(verdict);
    let result = match cases.iter().find(|c| c.id == id) {
        None => Err(CaseError::broken(format!("no case with id {id:?} in this binary"))),
        Some(case) => run_body(case),
    };
    // The runner reads the verdict after the child exits: keep it well
    // under a pipe's capacity (64 KiB) so that writing it never blocks.
    let result = result.map_err(|mut e| {
        truncate(&mut e.message, 16 * 1024);
        e
    });
    let mut notes = std::mem::take(&mut *NOTES.lock().unwrap_or_else(|e| e.into_inner()));
    notes.truncate(64);
    for (k, v) in &mut notes {
        truncate(k, 256);
        truncate(v, 256);
    }
    let encoded = serde_json::to_string(&Verdict { result, notes });
    let mut line = encoded.unwrap_or_else(|e| {
        let broken = Verdict { result: Err(CaseError::broken(format!("encoding the verdict: {e}"))), notes: Vec::new() };
        serde_json::to_string(&broken).unwrap_or_default()
    });
    line.push('\n');
    let _ = verdict.write_all(line.as_bytes());
    let _ = std::io::stdout().flush();
    sys::exit_now(0)
}

fn run_body(case: &Case) -> CaseResult {
    panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic with a non-string payload".into());
        let loc = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        *PANIC.lock().unwrap_or_else(|e| e.into_inner()) = Some((msg, loc));
    }));
    if case.requires.privilege == Privilege::Admin && !crate::probe::has_cap(crate::probe::Cap::SYS_ADMIN) {
        crate::userns::enter_fresh()
            .map_err(|e| CaseError::broken(format!("setup failed: entering a user namespace to gain CAP_SYS_ADMIN: {e}")))?;
    }
    panic::catch_unwind(AssertUnwindSafe(|| (case.body)())).unwrap_or_else(|_| Err(panic_failure()))
}
