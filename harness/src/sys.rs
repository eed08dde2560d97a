//! Thin system-call layer: the raw calls that neither std nor nix offers with
//! the namespace flags we need. Every `unsafe` of the project's syscalls
//! lives here or in `isolate`, each with its reason.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

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
/// The caller must be single-threaded (the harness runs case bodies in such
/// a process) so that the child may allocate.
pub fn fork_with_flags(flags: u64, call: CloneCall) -> Result<Forked, Errno> {
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

/// clone3(2) with `set_tid` = [`tid`] (5.5): asks for a child whose pid in
/// the caller's `pid_for_children` namespace is `tid`. A child that is
/// created exits at once and is reaped here; `Err` carries the errno of a
/// refused clone3.
pub fn clone3_with_tid(tid: i32) -> Result<(), Errno> {
    let tids = [tid];
    let args = CloneArgsV1::with_set_tid(0, &tids);
    // SAFETY: `args` is a valid clone_args of the size passed, and its
    // set_tid points at `tids`, alive across the call. Without CLONE_VM or a
    // stack the child runs on a copy of our memory, like fork(2), and only
    // calls _exit.
    let ret = unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgsV1, std::mem::size_of::<CloneArgsV1>()) };
    match ret {
        -1 => Err(Errno::last()),
        0 => exit_now(0),
        pid => wait_exit(WaitTarget::Pid(Pid::from_raw(pid as i32)), false, false).map(drop),
    }
}

/// unshare(2) with an arbitrary flag word (CLONE_NEWTIME and invalid bits
/// included, which nix's typed flags cannot carry).
pub fn unshare(flags: u64) -> Result<(), Errno> {
    // SAFETY: unshare takes an integer and touches no memory of ours.
    let ret = unsafe { libc::unshare(flags as libc::c_int) };
    Errno::result(ret).map(drop)
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
pub fn own_fd(fd: libc::c_int) -> OwnedFd {
    // SAFETY: called only on a fd just returned by the kernel to us, which
    // nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// pidfd_open(2) (5.3+).
pub fn pidfd_open(pid: Pid) -> Result<OwnedFd, Errno> {
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    Errno::result(ret).map(|fd| own_fd(fd as RawFd))
}

/// prctl(PR_SET_PDEATHSIG, SIGKILL): die with the parent.
pub fn die_with_parent() -> Result<(), Errno> {
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) };
    Errno::result(ret).map(drop)
}

/// prctl(PR_SET_DUMPABLE, 1): after a uid change the kernel makes the
/// process non-dumpable, which hands its /proc files (uid_map, setgroups)
/// to root; a process that changed ids on purpose takes them back.
pub fn set_dumpable() -> Result<(), Errno> {
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1 as libc::c_ulong, 0, 0, 0) };
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

/// A file handle of name_to_handle_at(2): type and opaque bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileHandle {
    /// `handle_type`.
    pub handle_type: i32,
    /// `f_handle`, `handle_bytes` long.
    pub bytes: Vec<u8>,
}

/// `MAX_HANDLE_SZ` of `<fcntl.h>`.
const MAX_HANDLE_SZ: usize = 128;

/// `struct file_handle` with room for the largest handle.
#[repr(C)]
struct RawFileHandle {
    handle_bytes: u32,
    handle_type: i32,
    f_handle: [u8; MAX_HANDLE_SZ],
}

/// name_to_handle_at(fd, "", AT_EMPTY_PATH): the handle of an open file.
pub fn name_to_handle(fd: BorrowedFd<'_>) -> Result<FileHandle, Errno> {
    let mut raw = RawFileHandle { handle_bytes: MAX_HANDLE_SZ as u32, handle_type: 0, f_handle: [0; MAX_HANDLE_SZ] };
    let mut mount_id: libc::c_int = 0;
    // SAFETY: `raw` is a file_handle whose handle_bytes says how much room
    // follows; the path is a valid empty C string; mount_id is writable.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            fd.as_raw_fd(),
            c"".as_ptr(),
            &mut raw as *mut RawFileHandle,
            &mut mount_id as *mut libc::c_int,
            libc::AT_EMPTY_PATH,
        )
    };
    Errno::result(ret)?;
    let len = (raw.handle_bytes as usize).min(MAX_HANDLE_SZ);
    Ok(FileHandle { handle_type: raw.handle_type, bytes: raw.f_handle[..len].to_vec() })
}

/// open_by_handle_at(root, handle, O_RDONLY|O_CLOEXEC); `root` may be a
/// special value such as FD_NSFS_ROOT.
pub fn open_by_handle(root: RawFd, handle: &FileHandle) -> Result<OwnedFd, Errno> {
    open_by_handle_with(root, handle, libc::O_RDONLY | libc::O_CLOEXEC)
}

/// open_by_handle_at(root, handle, flags) with any open flags (for the
/// flags open_by_handle_at(2) and nsfs refuse).
pub fn open_by_handle_with(root: RawFd, handle: &FileHandle, flags: libc::c_int) -> Result<OwnedFd, Errno> {
    let mut raw = RawFileHandle { handle_bytes: handle.bytes.len() as u32, handle_type: handle.handle_type, f_handle: [0; MAX_HANDLE_SZ] };
    let len = handle.bytes.len().min(MAX_HANDLE_SZ);
    raw.f_handle[..len].copy_from_slice(&handle.bytes[..len]);
    // SAFETY: `raw` is a valid file_handle that lives across the call; the
    // other arguments are integers.
    let ret = unsafe { libc::syscall(libc::SYS_open_by_handle_at, root, &mut raw as *mut RawFileHandle, flags) };
    Errno::result(ret).map(|fd| own_fd(fd as RawFd))
}

/// `struct __user_cap_header_struct` of capget(2).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct` of capget(2).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets in two words.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Removes capability `cap` from the caller's effective and permitted
/// sets (capset(2)); the rest stay.
pub fn drop_capability(cap: u32) -> Result<(), Errno> {
    let mut header = CapHeader { version: CAPABILITY_VERSION_3, pid: 0 };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and a two-element data array, as version 3 requires,
    // valid and writable for the call.
    Errno::result(unsafe { libc::syscall(libc::SYS_capget, &mut header as *mut CapHeader, data.as_mut_ptr()) })?;
    let (word, bit) = ((cap / 32) as usize, 1u32 << (cap % 32));
    data[word].effective &= !bit;
    data[word].permitted &= !bit;
    // SAFETY: as above; the kernel only reads the structures.
    Errno::result(unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut CapHeader, data.as_ptr()) }).map(drop)
}

/// Closes every fd from 3 up except those in `keep` (close_range(2),
/// 5.9+; on older kernels one close(2) per open fd listed in /proc/self/fd).
pub fn close_fds_except(keep: &[RawFd]) {
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
