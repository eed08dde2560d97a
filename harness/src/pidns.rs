//! pid namespaces: clone3(2) set_tid at several levels, signal information,
//! and the pid levels of a process (NSpid), for pid_namespaces(7) cases.

use std::fs;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::case::CaseError;
use crate::error::{Op, OpContext, SysError};
use crate::flags::NsFlags;
use crate::probe::status_field;
use crate::sys::{self, WaitTarget};

/// `MAX_PID_NS_LEVEL` of `include/linux/pid_namespace.h`: pid namespaces
/// nest this many levels below the initial one (level 0); clone(2) says a
/// deeper one fails with ENOSPC (since 4.9, EUSERS before). It also bounds
/// clone3(2)'s `set_tid_size`.
pub const MAX_PID_NS_LEVEL: usize = 32;

/// NSpid of `<proc_root>/<pid>/status` (proc(5), 4.1+): the process's pid in
/// each pid namespace from the one of that proc mount down to its own, the
/// outermost first.
pub fn nspid_at(proc_root: &str, pid: &str) -> Result<Vec<i32>, CaseError> {
    let line = status_field(proc_root, pid, "NSpid")?;
    line.split_whitespace().map(|n| n.parse().map_err(|_| CaseError::fail(format!("bad NSpid {line:?} of {proc_root}/{pid}")))).collect()
}

/// NSpid of `pid` (`None`: the caller) as `/proc` shows it.
pub fn nspid(pid: Option<Pid>) -> Result<Vec<i32>, CaseError> {
    match pid {
        Some(p) => nspid_at("/proc", &p.as_raw().to_string()),
        None => nspid_at("/proc", "self"),
    }
}

/// The state letter of `<proc_root>/<pid>/stat` (proc(5) field 3: `R`,
/// `S`, `T` stopped, `Z` ...), read after the last `)` so that a command
/// name with spaces or parentheses does not shift it.
pub fn proc_state(pid: Pid) -> Result<char, CaseError> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path)?;
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .ok_or_else(|| CaseError::fail(format!("no state field in {path}: {stat:?}")))
}

/// The signals pending for `pid`, thread-directed (`SigPnd`) and
/// process-wide (`ShdPnd`) together, as a mask with bit `n - 1` for signal
/// `n` (proc(5)).
pub fn pending_signals(pid: Pid) -> Result<u64, CaseError> {
    let mut mask = 0;
    for field in ["SigPnd", "ShdPnd"] {
        let text = status_field("/proc", &pid.as_raw().to_string(), field)?;
        mask |= u64::from_str_radix(&text, 16).map_err(|_| CaseError::fail(format!("bad {field} {text:?} of /proc/{pid}/status")))?;
    }
    Ok(mask)
}

/// The mask bit of `signal` in `SigPnd`-like fields of proc(5).
pub fn signal_bit(signal: Signal) -> u64 {
    1u64 << (signal as i32 - 1)
}

/// Whether `/proc` is a proc mount of the initial pid namespace, so that
/// NSpid's length says how deep the caller is (its level). Decided from a
/// fact of the environment: the initial pid namespace has the kernel
/// threads, and pid 2 there is `kthreadd` with parent 0; a container's
/// namespace has no kernel threads. `Some(reason)` where it is not (for
/// [`crate::Requires::probe`]).
pub fn proc_is_initial() -> Option<String> {
    let name = status_field("/proc", "2", "Name").ok();
    let ppid = status_field("/proc", "2", "PPid").ok();
    if name.as_deref() == Some("kthreadd") && ppid.as_deref() == Some("0") {
        None
    } else {
        Some("/proc is not the initial pid namespace's (pid 2 is not kthreadd): the suite's pid namespace level is unknown".into())
    }
}

/// [`proc_is_initial`], and the suite's pid namespace is above the deepest
/// level ([`MAX_PID_NS_LEVEL`]), so that at least one more level can be
/// created below it (for [`crate::Requires::probe`]): an environment fact,
/// where the suite itself runs, not a kernel behaviour.
pub fn level_below_max() -> Option<String> {
    proc_is_initial().or_else(|| match own_level() {
        Ok(level) if level < MAX_PID_NS_LEVEL => None,
        Ok(level) => Some(format!("the suite runs at pid namespace level {level}, the deepest: no level can be created below it")),
        Err(e) => Some(format!("the suite's pid namespace level is unknown: {e}")),
    })
}

/// Succeeds only when the calling process has exactly one thread
/// (`Threads:` of `/proc/self/status`, proc(5)); otherwise a broken setup
/// naming `what`. A process found single-threaded stays so until its one
/// thread, the caller, starts another, so nothing can make the answer stale
/// before the caller's next step. For steps that fork without exec (the
/// child of a multi-threaded process may only make async-signal-safe calls,
/// signal-safety(7), and must not allocate) or that rely on a
/// process-directed signal reaching the caller's thread.
pub fn single_threaded(what: &str) -> Result<(), CaseError> {
    let threads = status_field("/proc", "self", "Threads")
        .map_err(|e| CaseError::broken(format!("{what}: cannot tell whether the caller is single-threaded: {e}")))?;
    if threads == "1" {
        Ok(())
    } else {
        Err(CaseError::broken(format!("{what} needs a single-threaded caller; /proc/self/status shows Threads: {threads}")))
    }
}

/// The level of the caller's pid namespace (0 for the initial one): NSpid's
/// length less one, where `/proc` is the initial namespace's
/// ([`proc_is_initial`]).
pub fn own_level() -> Result<usize, CaseError> {
    Ok(nspid(None)?.len() - 1)
}

/// A child created by [`clone3_set_tid`]: its pid in the caller's namespace
/// and its NSpid as it read it from `/proc/self/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetTidChild {
    /// The pid clone3() returned.
    pub pid: i32,
    /// NSpid of the child, the outermost level (of the `/proc` mount's
    /// namespace) first.
    pub nspid: Vec<i32>,
}

/// clone3(2) with `flags` and `set_tid` (5.5): `set_tid[0]` is the pid asked
/// for in the child's own pid namespace, `set_tid[1]` in its parent, and so
/// on outwards (clone(2), "set_tid"). The child reads its NSpid from
/// `/proc/self/status` (by `self`, which names it whatever namespace the
/// caller numbers pids in), writes it to a pipe and exits; it is reaped
/// here.
///
/// The inner result is the kernel's answer: the child, or clone3's errno
/// (op [`Op::Clone`], so that `?` on it fails the case). The outer `Err` is
/// a broken setup: the pipe, the wait, the child's report, or a caller with
/// more than one thread ([`single_threaded`], checked first: the child
/// allocates and reads a file, which the child of a multi-threaded process
/// must not do), so a case never takes one of those for clone3's errno.
pub fn clone3_set_tid(flags: NsFlags, set_tid: &[i32]) -> Result<Result<SetTidChild, SysError>, CaseError> {
    single_threaded("clone3() with set_tid (the child allocates)")?;
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).op(Op::Plumbing("pipe2"))?;
    let args = sys::CloneArgsV1::with_set_tid(flags.bits(), set_tid);
    // SAFETY: `args` is a valid clone_args of the size passed; its set_tid
    // points at `set_tid_size` elements of `set_tid`, borrowed across the
    // call. Without CLONE_VM or a stack the child runs on a copy of our
    // memory, like fork(2), and ends with _exit.
    let ret = unsafe { libc::syscall(libc::SYS_clone3, &args as *const sys::CloneArgsV1, std::mem::size_of::<sys::CloneArgsV1>()) };
    let pid = match ret {
        -1 => return Ok(Err(SysError::new(Op::Clone(flags), Errno::last()))),
        0 => {
            drop(r);
            let line = status_field("/proc", "self", "NSpid").unwrap_or_default();
            let mut w = std::fs::File::from(w);
            let written = std::io::Write::write_all(&mut w, line.as_bytes());
            sys::exit_now(if written.is_ok() { 0 } else { 1 })
        }
        pid => Pid::from_raw(pid as i32),
    };
    drop(w);
    let mut line = String::new();
    let read =
        std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut line).op(Op::Plumbing("reading NSpid from a clone3() child"));
    let waited = sys::wait_exit(WaitTarget::Pid(pid), false, false).op(Op::Process("waitid"))?;
    read?;
    let nspid: Option<Vec<i32>> = line.split_whitespace().map(|n| n.parse().ok()).collect();
    match (waited, nspid) {
        (Some((_, sys::Exit::Code(0))), Some(nspid)) if !nspid.is_empty() => Ok(Ok(SetTidChild { pid: pid.as_raw(), nspid })),
        (waited, _) => Err(CaseError::broken(format!(
            "the clone3() child did not report its NSpid (it sent {line:?}, ended {})",
            waited.map_or("unseen".to_string(), |(_, e)| e.to_string())
        ))),
    }
}

/// clone3(2) with `set_tid` = `[tid]` (5.5): asks for a child whose pid in
/// the caller's `pid_for_children` namespace is `tid`. A child that is
/// created exits at once and is reaped here; `Err` carries the errno of a
/// refused clone3 (returned as is: cases match it).
pub fn clone3_with_tid(tid: i32) -> Result<(), Errno> {
    let tids = [tid];
    let args = sys::CloneArgsV1::with_set_tid(0, &tids);
    // SAFETY: `args` is a valid clone_args of the size passed, and its
    // set_tid points at `tids`, alive across the call. Without CLONE_VM or a
    // stack the child runs on a copy of our memory, like fork(2), and only
    // calls _exit.
    let ret = unsafe { libc::syscall(libc::SYS_clone3, &args as *const sys::CloneArgsV1, std::mem::size_of::<sys::CloneArgsV1>()) };
    match ret {
        -1 => Err(Errno::last()),
        0 => sys::exit_now(0),
        pid => sys::wait_exit(WaitTarget::Pid(Pid::from_raw(pid as i32)), false, false).map(drop),
    }
}

/// Whether a process `pid` exists in the caller's pid namespace: kill(2)
/// with signal 0, which checks without sending (ESRCH: none; EPERM: one the
/// caller may not signal).
pub fn pid_exists(pid: Pid) -> Result<bool, SysError> {
    match nix::sys::signal::kill(pid, None) {
        Ok(()) | Err(Errno::EPERM) => Ok(true),
        Err(Errno::ESRCH) => Ok(false),
        Err(e) => Err(SysError::new(Op::Process("kill(pid, 0)"), e)),
    }
}

/// kill(2): sends `signal` to `pid` as the caller's pid namespace numbers
/// it (pid 1 is the caller's namespace's init).
pub fn send_signal(pid: Pid, signal: Signal) -> Result<(), SysError> {
    nix::sys::signal::kill(pid, signal).op(Op::Process("kill"))
}

/// What [`record_signals`]' handler saw of one signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Received {
    /// How many times the handler ran for it.
    pub count: u32,
    /// `si_pid` of the last delivery (sigaction(2): the sender's pid, in the
    /// receiver's pid namespace; 0 where the sender is outside it).
    pub last_pid: i32,
    /// `si_code` of the last delivery (SI_USER for kill(2)).
    pub last_code: i32,
}

const NSIG: usize = 65;

static COUNT: [AtomicU32; NSIG] = [const { AtomicU32::new(0) }; NSIG];
static LAST_PID: [AtomicI32; NSIG] = [const { AtomicI32::new(0) }; NSIG];
static LAST_CODE: [AtomicI32; NSIG] = [const { AtomicI32::new(0) }; NSIG];

extern "C" fn record(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let Ok(i) = usize::try_from(signal) else { return };
    if i >= NSIG || info.is_null() {
        return;
    }
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler;
    // for a signal from kill(2) the si_pid union member is the one set.
    let (pid, code) = unsafe { ((*info).si_pid(), (*info).si_code) };
    LAST_PID[i].store(pid, Ordering::SeqCst);
    LAST_CODE[i].store(code, Ordering::SeqCst);
    COUNT[i].fetch_add(1, Ordering::SeqCst);
}

/// Installs, in the calling (single-threaded) process, an SA_SIGINFO
/// handler (sigaction(2), SA_RESTART) for each of `signals` that counts
/// deliveries and keeps the last `si_pid` and `si_code`, read back with
/// [`received`]. For pid_namespaces(7): init receives only the signals it
/// has a handler for.
pub fn record_signals(signals: &[Signal]) -> Result<(), SysError> {
    for &signal in signals {
        // SAFETY: sigaction is plain data; zeroed is valid for it.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = record as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        // SAFETY: `action` is valid; the handler only touches atomics,
        // which is async-signal-safe.
        let ret = unsafe { libc::sigaction(signal as libc::c_int, &action, std::ptr::null_mut()) };
        Errno::result(ret).op(Op::Process("sigaction"))?;
    }
    Ok(())
}

/// What the handler of [`record_signals`] has seen of `signal` so far in
/// this process.
pub fn received(signal: Signal) -> Received {
    let i = signal as usize;
    Received {
        count: COUNT[i].load(Ordering::SeqCst),
        last_pid: LAST_PID[i].load(Ordering::SeqCst),
        last_code: LAST_CODE[i].load(Ordering::SeqCst),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_multi_threaded_caller() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || rx.recv());
        let refused = single_threaded("a test").expect_err("two threads run");
        assert_eq!(refused.outcome, crate::case::Outcome::Broken);
        assert!(refused.message.contains("single-threaded caller"), "{}", refused.message);
        // Refused before any clone3(2).
        let refused = clone3_set_tid(NsFlags::EMPTY, &[]).expect_err("two threads run");
        assert_eq!(refused.outcome, crate::case::Outcome::Broken);
        tx.send(()).unwrap();
        other.join().unwrap().unwrap();
    }
}
