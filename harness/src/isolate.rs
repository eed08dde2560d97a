//! Isolation: every case body runs in a fresh, single-threaded re-execution
//! of the test binary, in its own process group, dying with its parent,
//! under a deadline. The verdict comes back over a pipe; on the deadline the
//! whole group is killed and the case is broken.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::panic::{self, AssertUnwindSafe};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::case::{Case, CaseError, CaseResult, Outcome, Privilege};
use crate::sys::{self, Exit, WaitTarget};

/// Environment variable naming the case a re-executed child must run.
pub const CHILD_ENV: &str = "NSVERIFY_CHILD_CASE";
/// Multiplies every deadline (for slow machines such as emulated VMs).
pub const TIMEOUT_SCALE_ENV: &str = "NSVERIFY_TIMEOUT_SCALE";

/// The fd on which a child writes its verdict.
const VERDICT_FD: RawFd = 3;
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

/// The deadline of `case` after scaling by `NSVERIFY_TIMEOUT_SCALE`.
pub fn deadline(case: &Case) -> Duration {
    let scale = std::env::var(TIMEOUT_SCALE_ENV).ok().and_then(|s| s.parse::<f64>().ok()).filter(|s| *s > 0.0).unwrap_or(1.0);
    case.timeout.mul_f64(scale)
}

/// Runs `case` in a re-executed child of this test binary and collects the
/// verdict. Safe to call from any thread.
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
    let exe = std::env::current_exe().map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::ENOENT)))?;
    let mut cmd = Command::new(exe);
    cmd.env(CHILD_ENV, &case.id)
        .stdin(Stdio::null())
        .stdout(Stdio::from(output.try_clone().map_err(|_| Errno::EMFILE)?))
        .stderr(Stdio::from(output.try_clone().map_err(|_| Errno::EMFILE)?));
    let w = verdict_w.as_raw_fd();
    // SAFETY: the closure runs between fork and exec in the child and calls
    // only async-signal-safe functions (dup2, fcntl, setpgid, prctl) on
    // integers; it allocates nothing and touches no lock.
    unsafe {
        cmd.pre_exec(move || {
            if w == VERDICT_FD {
                if libc::fcntl(w, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(w, VERDICT_FD) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::setpgid(0, 0) == -1 || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    drop(verdict_w);
    drop(cmd);
    let pid = Pid::from_raw(child.id() as i32);
    CASE_GROUPS.lock().unwrap_or_else(|e| e.into_inner()).push(pid.as_raw());

    let limit = deadline(case);
    let timed_out = !wait_until_exit(pid, started + limit)?;
    if timed_out {
        let _ = killpg(pid, Signal::SIGKILL);
    }
    // The leader is now a zombie (or dying): its pid, and so the group id,
    // cannot be reused until we reap it. Kill what is left of the group.
    sys::wait_exit(WaitTarget::Pid(pid), true, false)?;
    let _ = killpg(pid, Signal::SIGKILL);
    let leader_exit = reap_group(pid)?;
    let group_gone = wait_group_gone(pid, Instant::now() + Duration::from_secs(2));

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

/// Waits until `pid` exits or `until` passes; true if it exited.
fn wait_until_exit(pid: Pid, until: Instant) -> Result<bool, Errno> {
    let pidfd = sys::pidfd_open(pid)?;
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
/// orphans reparented to us as subreaper); returns the leader's exit.
fn reap_group(pgid: Pid) -> Result<Option<Exit>, Errno> {
    let mut leader = None;
    loop {
        match sys::wait_exit(WaitTarget::Pgid(pgid), false, false) {
            Ok(Some((pid, exit))) if pid == pgid => leader = Some(exit),
            Ok(_) => {}
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

/// Message and location of the last panic in this process.
static PANIC: Mutex<Option<(String, String)>> = Mutex::new(None);

/// Child side: if this process is a re-executed case child, runs the case
/// named by [`CHILD_ENV`] from `cases`, writes the verdict and exits.
/// Returns only in the parent. Must be called before any thread exists.
pub fn child_main_if_requested(cases: &[Case]) {
    let Ok(id) = std::env::var(CHILD_ENV) else {
        return;
    };
    std::env::remove_var(CHILD_ENV);
    // SAFETY: fd 3 was set up by our parent's pre_exec as the verdict pipe;
    // nothing else in this fresh process owns it.
    let mut verdict = unsafe { File::from_raw_fd(VERDICT_FD) };
    let _ = fcntl(&verdict, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
    CHILD_VERDICT_FD.store(VERDICT_FD, Ordering::SeqCst);

    let result = match cases.iter().find(|c| c.id == id) {
        None => Err(CaseError::broken(format!("no case with id {id:?} in this binary"))),
        Some(case) => run_body(case),
    };
    let notes = std::mem::take(&mut *NOTES.lock().unwrap_or_else(|e| e.into_inner()));
    let encoded = serde_json::to_string(&Verdict { result, notes });
    let mut line = encoded.unwrap_or_else(|e| {
        let broken = Verdict { result: Err(CaseError::broken(format!("encoding the verdict: {e}"))), notes: Vec::new() };
        serde_json::to_string(&broken).unwrap_or_default()
    });
    line.push('\n');
    let _ = verdict.write_all(line.as_bytes());
    let _ = std::io::stdout().flush();
    std::process::exit(0);
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
        crate::userns::enter_fresh().map_err(|e| CaseError::from(e).context("entering a user namespace to gain CAP_SYS_ADMIN"))?;
    }
    match panic::catch_unwind(AssertUnwindSafe(|| (case.body)())) {
        Ok(result) => result,
        Err(_) => {
            let (msg, loc) = PANIC.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_default();
            Err(CaseError { outcome: Outcome::Fail, message: format!("panicked: {msg}"), location: loc, errno: None })
        }
    }
}
