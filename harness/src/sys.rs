//! Thin system-call layer, private to the harness (`pub(crate)`): the raw
//! calls that neither std nor nix offers with the namespace flags we need.
//! Other crates reach them through typed modules ([`crate::ns`],
//! [`crate::peer`], [`crate::handle`], ...) or, for unchecked arguments,
//! [`crate::raw`]. `unsafe` stays inside the harness, each with its reason.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

use nix::errno::Errno;
use nix::unistd::Pid;

/// Result of a fork-like call: in the parent the child's pid, in the child
/// `None`.
pub type Forked = Option<Pid>;

/// `struct clone_args` of clone3(2) (version 0 layout, 64 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
}

/// Which system call creates the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloneCall {
    /// clone(2) with `flags | SIGCHLD` and no new stack: fork semantics.
    Clone,
    /// clone3(2) (5.3+), the only clone taking CLONE_NEWTIME.
    Clone3,
}

/// Forks the calling (single-threaded) process with `flags`, like fork(2)
/// but creating the namespaces in `flags` for the child. clone(2) documents
/// that without CLONE_VM and with a NULL stack the child runs on a copy of
/// the parent's stack.
///
/// # Safety
/// The caller must be single-threaded (the harness runs case bodies in such
/// a process) if the child does anything but async-signal-safe calls such
/// as `_exit` (allocating, taking locks): another thread's locks are copied
/// held into the child.
pub unsafe fn fork_with_flags(flags: u64, call: CloneCall) -> Result<Forked, Errno> {
    let ret = match call {
        CloneCall::Clone => {
            // SAFETY: clone without CLONE_VM/CLONE_THREAD and a NULL stack
            // behaves as fork(2): the child gets a copy of the address space
            // and continues here. The pointer arguments are NULL and unused.
            unsafe { libc::syscall(libc::SYS_clone, (flags | libc::SIGCHLD as u64) as libc::c_ulong, 0usize, 0usize, 0usize, 0usize) }
        }
        CloneCall::Clone3 => {
            let args = CloneArgs { flags, exit_signal: libc::SIGCHLD as u64, ..CloneArgs::default() };
            // SAFETY: `args` is a valid clone_args of the size passed; no
            // stack is given, so the child continues on a copy of ours as
            // with fork(2).
            unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>()) }
        }
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}

/// One child created with `flags` by `call` that exits at once with status
/// 0, and reaped: the instants before the system call, after it returned
/// in the parent, and after waitid(2) reaped the child, and its exit.
///
/// Everything the parent does between the clone and the reap stays in this
/// frame, and the child never leaves it: it returns from the system call
/// into the same code and calls exit_group(2) through the same `syscall`
/// entry. Each page the child executes costs it a fault (fork copies no
/// page-table entries for code), and each stack page the parent writes
/// while the child still shares it costs a copy: the benches time this call
/// and the floor's three-line C loop, and returning through `fork`-style
/// wrappers to `_exit` made it some 10 % slower.
pub fn clone_exit_reap(flags: u64, call: CloneCall) -> Result<(Instant, Instant, Instant, Exit), Errno> {
    let args = CloneArgs { flags, exit_signal: libc::SIGCHLD as u64, ..CloneArgs::default() };
    // SAFETY: siginfo_t is plain data; zeroed is a valid value for it. It is
    // written before the clone so that the page is ours again afterwards.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let t0 = Instant::now();
    let ret = match call {
        // SAFETY: clone without CLONE_VM/CLONE_THREAD and a NULL stack
        // behaves as fork(2); the child only makes the exit_group system
        // call below, which is sound in any process.
        CloneCall::Clone => unsafe {
            libc::syscall(libc::SYS_clone, (flags | libc::SIGCHLD as u64) as libc::c_ulong, 0usize, 0usize, 0usize, 0usize)
        },
        // SAFETY: `args` is a valid clone_args of the size passed; no stack
        // is given (fork semantics); the child only exits.
        CloneCall::Clone3 => unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>()) },
    };
    if ret == 0 {
        // SAFETY: exit_group ends the child; it takes an integer only.
        unsafe { libc::syscall(libc::SYS_exit_group, 0) };
        unreachable!("exit_group returned");
    }
    let t1 = Instant::now();
    if ret == -1 {
        return Err(Errno::last());
    }
    loop {
        // SAFETY: `info` is valid and writable; the other arguments are integers.
        let r = unsafe { libc::waitid(libc::P_PID, ret as libc::id_t, &mut info, libc::WEXITED) };
        match Errno::result(r) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(_) => break,
        }
    }
    let t2 = Instant::now();
    // SAFETY: waitid filled `info` for the child's exit.
    let status = unsafe { info.si_status() };
    let exit = if info.si_code == libc::CLD_EXITED { Exit::Code(status) } else { Exit::Signal(status) };
    Ok((t0, t1, t2, exit))
}

/// `struct clone_args` up to `set_tid_size` (CLONE_ARGS_SIZE_VER1, 80 bytes).
#[repr(C)]
#[derive(Default)]
pub(crate) struct CloneArgsV1 {
    base: CloneArgs,
    set_tid: u64,
    set_tid_size: u64,
}

impl CloneArgsV1 {
    /// clone3(2) arguments for a child with `flags` that sends SIGCHLD at
    /// exit and has the pids `set_tid` (innermost level first). The result
    /// points into `set_tid`, which must outlive the call it is passed to.
    pub(crate) fn with_set_tid(flags: u64, set_tid: &[i32]) -> CloneArgsV1 {
        CloneArgsV1 {
            base: CloneArgs { flags, exit_signal: libc::SIGCHLD as u64, ..CloneArgs::default() },
            set_tid: set_tid.as_ptr() as u64,
            set_tid_size: set_tid.len() as u64,
        }
    }
}

/// unshare(2) with an arbitrary flag word (CLONE_NEWTIME and invalid bits
/// included, which nix's typed flags cannot carry).
pub fn unshare(flags: u64) -> Result<(), Errno> {
    // SAFETY: unshare takes an integer and touches no memory of ours.
    let ret = unsafe { libc::unshare(flags as libc::c_int) };
    Errno::result(ret).map(drop)
}

/// unshare(2) between two CLOCK_MONOTONIC reads, all in this one frame:
/// the call's duration in ns. What runs between the two reads is only the
/// C library's wrappers and the system call, as in the floor's C loop;
/// timing through `Instant` and the typed wrappers ran through four more
/// functions on as many code pages, which a fresh child pays for (0.3 µs
/// on a 2.5 µs unshare here).
pub fn timed_unshare(flags: u64) -> Result<u64, Errno> {
    let mut before = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    let mut after = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec it is given; unshare takes
    // an integer and touches no memory of ours.
    let ret = unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut before);
        let ret = libc::unshare(flags as libc::c_int);
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut after);
        ret
    };
    Errno::result(ret)?;
    let ns = |t: libc::timespec| t.tv_sec as i128 * 1_000_000_000 + t.tv_nsec as i128;
    Ok((ns(after) - ns(before)).max(0) as u64)
}

/// setns(2) with an arbitrary `nstype` (also a pidfd with several flags).
pub fn setns(fd: BorrowedFd<'_>, nstype: u64) -> Result<(), Errno> {
    // SAFETY: the fd is borrowed and valid for the call; nstype is an integer.
    let ret = unsafe { libc::setns(fd.as_raw_fd(), nstype as libc::c_int) };
    Errno::result(ret).map(drop)
}

/// ioctl(2) with a request that takes no argument, returning the result
/// (a new fd, or a value such as NS_GET_NSTYPE's).
pub fn ioctl_none(fd: BorrowedFd<'_>, request: u64) -> Result<libc::c_int, Errno> {
    // SAFETY: a request of the `_IO` family takes no argument; the kernel
    // rejects requests it does not know without touching our memory. The
    // third argument is 0 so an unknown request reading it reads nothing.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), request as libc::Ioctl, 0usize) };
    Errno::result(ret)
}

/// ioctl(2) with a request that writes a `uid_t` (NS_GET_OWNER_UID).
pub fn ioctl_read_u32(fd: BorrowedFd<'_>, request: u64) -> Result<u32, Errno> {
    let mut value: libc::uid_t = 0;
    // SAFETY: `value` is a valid, writable uid_t for the duration of the call.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), request as libc::Ioctl, &mut value as *mut libc::uid_t) };
    Errno::result(ret).map(|_| value)
}

/// Takes ownership of a new fd returned by a system call.
///
/// # Safety
/// `fd` must be an open fd that the kernel has just returned to the caller
/// and that nothing else owns (it is closed when the result drops).
pub unsafe fn own_fd(fd: libc::c_int) -> OwnedFd {
    // SAFETY: the caller guarantees `fd` is open and owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// pidfd_open(2) (5.3+).
pub fn pidfd_open(pid: Pid) -> Result<OwnedFd, Errno> {
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    // SAFETY: pidfd_open returned a new fd that nothing else owns.
    Errno::result(ret).map(|fd| unsafe { own_fd(fd as RawFd) })
}

/// prctl(PR_SET_PDEATHSIG, SIGKILL): die with the parent.
pub fn die_with_parent() -> Result<(), Errno> {
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) };
    Errno::result(ret).map(drop)
}

/// prctl(PR_SET_CHILD_SUBREAPER, 1): orphaned descendants come to us.
pub fn become_subreaper() -> Result<(), Errno> {
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
    Errno::result(ret).map(drop)
}

/// Ends a forked child at once, without running the parent's atexit
/// handlers or flushing buffers copied from it.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and is always safe to call.
    unsafe { libc::_exit(code) }
}

/// How a waited-for process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exited with this status.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit status {c}"),
            Exit::Signal(s) => {
                let name = nix::sys::signal::Signal::try_from(*s).map(|s| s.as_str()).unwrap_or("?");
                write!(f, "killed by signal {s} ({name})")
            }
        }
    }
}

/// The id type of waitid(2).
#[derive(Debug, Clone, Copy)]
pub enum WaitTarget {
    /// One process.
    Pid(Pid),
    /// Any child in this process group.
    Pgid(Pid),
}

/// waitid(2) for exit. With `peek` the child is left waitable (WNOWAIT);
/// with `nohang` returns `Ok(None)` when none has exited yet.
pub fn wait_exit(target: WaitTarget, peek: bool, nohang: bool) -> Result<Option<(Pid, Exit)>, Errno> {
    let (idtype, id) = match target {
        WaitTarget::Pid(p) => (libc::P_PID, p.as_raw() as libc::id_t),
        WaitTarget::Pgid(p) => (libc::P_PGID, p.as_raw() as libc::id_t),
    };
    let mut options = libc::WEXITED;
    if peek {
        options |= libc::WNOWAIT;
    }
    if nohang {
        options |= libc::WNOHANG;
    }
    // SAFETY: siginfo_t is plain data; zeroed is a valid value for it, and
    // the kernel fills it for the duration of the call.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `info` is valid and writable; the other arguments are integers.
        let ret = unsafe { libc::waitid(idtype, id, &mut info, options) };
        match Errno::result(ret) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(_) => break,
        }
    }
    // SAFETY: waitid filled `info` for a child event (or left si_pid 0 with
    // WNOHANG), so the si_pid/si_status union fields are the ones set.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    let exit = if info.si_code == libc::CLD_EXITED { Exit::Code(status) } else { Exit::Signal(status) };
    Ok(Some((Pid::from_raw(pid), exit)))
}

/// Closes every fd from 3 up except those in `keep` (close_range(2),
/// 5.9+; on older kernels one close(2) per open fd listed in /proc/self/fd).
///
/// # Safety
/// No live object of the caller may own or use an fd that this closes
/// (other than those in `keep`): a freshly forked child that goes on to use
/// only the kept fds and objects it creates afterwards.
pub unsafe fn close_fds_except(keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|fd| *fd >= 3).collect();
    keep.sort_unstable();
    let mut first: RawFd = 3;
    for fd in keep.iter().copied().chain(std::iter::once(RawFd::MAX)) {
        if fd > first {
            let last = if fd == RawFd::MAX { u32::MAX } else { (fd - 1) as u32 };
            // SAFETY: closing fds that this freshly forked child does not
            // use; nothing in it holds them (the caller keeps what it needs).
            let ret = unsafe { libc::syscall(libc::SYS_close_range, first as u32, last, 0u32) };
            if ret == -1 {
                close_listed(first, last);
            }
        }
        first = fd.saturating_add(1);
    }
}

fn close_listed(first: RawFd, last: u32) {
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|fd: &RawFd| *fd >= first && (*fd as u32) <= last)
        .collect();
    for fd in fds {
        let _ = nix::unistd::close(fd);
    }
}

/// setdomainname(2): the NIS domain name of the caller's UTS namespace.
pub fn setdomainname(name: &str) -> Result<(), Errno> {
    // SAFETY: the pointer and length describe `name`'s bytes, valid for the
    // call; the kernel copies at most that many.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    Errno::result(ret).map(drop)
}

/// ioctl(2) with a request that writes a `__u64` (NS_GET_MNTNS_ID).
pub fn ioctl_read_u64(fd: BorrowedFd<'_>, request: u64) -> Result<u64, Errno> {
    let mut value: u64 = 0;
    // SAFETY: `value` is a valid, writable u64 for the duration of the call.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), request as libc::Ioctl, &mut value as *mut u64) };
    Errno::result(ret).map(|_| value)
}
