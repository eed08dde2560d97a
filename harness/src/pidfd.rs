//! pidfds and namespaces: the PIDFD_GET_<kind>_NAMESPACE ioctls (6.11) and
//! setns(2) on a pidfd (5.8).
//!
//! `<linux/pidfd.h>` defines ten requests `_IO(PIDFS_IOCTL_MAGIC, nr)`, one
//! per `/proc/[pid]/ns` entry, each returning a new nsfs fd for the target's
//! namespace (commit 5b08bd408534, Linux 6.11). fs/pidfs.c pidfd_ioctl():
//! a nonzero argument is EINVAL, a target whose task is gone (reaped) or has
//! no namespaces any more (a zombie, after exit_task_namespaces()) is ESRCH,
//! a kind compiled out is EOPNOTSUPP. [`PIDFD_NS_IOCTLS`] is the raw table
//! (name, request number, entry, since) that the fuzz suite reuses.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::Pid;

use crate::error::{Op, OpContext, SysError};
use crate::flags::NsFlags;
use crate::kind::{Kind, NsEntry};
use crate::nsfd::NsFd;
use crate::sys;
use crate::version::KernelVersion;

/// `PIDFS_IOCTL_MAGIC` of `<linux/pidfd.h>`.
pub const PIDFS_IOCTL_MAGIC: u64 = 0xFF;

/// `PID_FS_MAGIC` of `<linux/magic.h>`: the `f_type` of a pidfd's filesystem
/// (pidfs, 6.9; anonymous inodes before).
pub const PID_FS_MAGIC: i64 = 0x5049_4446;

/// One PIDFD_GET_<kind>_NAMESPACE request of `<linux/pidfd.h>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidfdNsIoctl {
    /// Name as in `<linux/pidfd.h>`.
    pub name: &'static str,
    /// Request number: `_IO(PIDFS_IOCTL_MAGIC, nr)`.
    pub request: u64,
    /// The `/proc/[pid]/ns` entry naming the same namespace.
    pub entry: NsEntry,
    /// The kind of the namespace returned.
    pub kind: Kind,
    /// Kernel release that introduced it.
    pub since: KernelVersion,
}

const fn pidfs_io(nr: u64) -> u64 {
    crate::ioctl::io(PIDFS_IOCTL_MAGIC, nr)
}

const fn req(name: &'static str, nr: u64, for_children: bool, kind: Kind) -> PidfdNsIoctl {
    PidfdNsIoctl { name, request: pidfs_io(nr), entry: NsEntry { kind, for_children }, kind, since: KernelVersion::new(6, 11) }
}

/// PIDFD_GET_CGROUP_NAMESPACE: `/proc/[pid]/ns/cgroup`.
pub const PIDFD_GET_CGROUP_NAMESPACE: PidfdNsIoctl = req("PIDFD_GET_CGROUP_NAMESPACE", 1, false, Kind::Cgroup);
/// PIDFD_GET_IPC_NAMESPACE: `/proc/[pid]/ns/ipc`.
pub const PIDFD_GET_IPC_NAMESPACE: PidfdNsIoctl = req("PIDFD_GET_IPC_NAMESPACE", 2, false, Kind::Ipc);
/// PIDFD_GET_MNT_NAMESPACE: `/proc/[pid]/ns/mnt`.
pub const PIDFD_GET_MNT_NAMESPACE: PidfdNsIoctl = req("PIDFD_GET_MNT_NAMESPACE", 3, false, Kind::Mnt);
/// PIDFD_GET_NET_NAMESPACE: `/proc/[pid]/ns/net`.
pub const PIDFD_GET_NET_NAMESPACE: PidfdNsIoctl = req("PIDFD_GET_NET_NAMESPACE", 4, false, Kind::Net);
/// PIDFD_GET_PID_NAMESPACE: `/proc/[pid]/ns/pid` (the target's own).
pub const PIDFD_GET_PID_NAMESPACE: PidfdNsIoctl = req("PIDFD_GET_PID_NAMESPACE", 5, false, Kind::Pid);
/// PIDFD_GET_PID_FOR_CHILDREN_NAMESPACE: `/proc/[pid]/ns/pid_for_children`.
pub const PIDFD_GET_PID_FOR_CHILDREN_NAMESPACE: PidfdNsIoctl = req("PIDFD_GET_PID_FOR_CHILDREN_NAMESPACE", 6, true, Kind::Pid);
/// PIDFD_GET_TIME_NAMESPACE: `/proc/[pid]/ns/time` (the target's own).
pub const PIDFD_GET_TIME_NAMESPACE: PidfdNsIoctl = req("PIDFD_GET_TIME_NAMESPACE", 7, false, Kind::Time);
/// PIDFD_GET_TIME_FOR_CHILDREN_NAMESPACE: `/proc/[pid]/ns/time_for_children`.
pub const PIDFD_GET_TIME_FOR_CHILDREN_NAMESPACE: PidfdNsIoctl = req("PIDFD_GET_TIME_FOR_CHILDREN_NAMESPACE", 8, true, Kind::Time);
/// PIDFD_GET_USER_NAMESPACE: `/proc/[pid]/ns/user`.
pub const PIDFD_GET_USER_NAMESPACE: PidfdNsIoctl = req("PIDFD_GET_USER_NAMESPACE", 9, false, Kind::User);
/// PIDFD_GET_UTS_NAMESPACE: `/proc/[pid]/ns/uts`.
pub const PIDFD_GET_UTS_NAMESPACE: PidfdNsIoctl = req("PIDFD_GET_UTS_NAMESPACE", 10, false, Kind::Uts);

/// Every PIDFD_GET_<kind>_NAMESPACE request, in request-number order.
pub const PIDFD_NS_IOCTLS: [PidfdNsIoctl; 10] = [
    PIDFD_GET_CGROUP_NAMESPACE,
    PIDFD_GET_IPC_NAMESPACE,
    PIDFD_GET_MNT_NAMESPACE,
    PIDFD_GET_NET_NAMESPACE,
    PIDFD_GET_PID_NAMESPACE,
    PIDFD_GET_PID_FOR_CHILDREN_NAMESPACE,
    PIDFD_GET_TIME_NAMESPACE,
    PIDFD_GET_TIME_FOR_CHILDREN_NAMESPACE,
    PIDFD_GET_USER_NAMESPACE,
    PIDFD_GET_UTS_NAMESPACE,
];

impl PidfdNsIoctl {
    /// The request for a `/proc/[pid]/ns` entry name.
    pub fn for_entry(entry: impl Into<NsEntry>) -> Option<PidfdNsIoctl> {
        let entry = entry.into();
        PIDFD_NS_IOCTLS.into_iter().find(|r| r.entry == entry)
    }
}

/// A pidfd (pidfd_open(2), 5.3): a fd referring to one process, which stays
/// valid (and names that process, never a recycled pid) after it exits.
#[derive(Debug)]
pub struct Pidfd {
    fd: OwnedFd,
}

impl Pidfd {
    /// pidfd_open(pid, 0).
    pub fn open(pid: Pid) -> Result<Pidfd, SysError> {
        let fd = sys::pidfd_open(pid).op(Op::Process("pidfd_open"))?;
        Ok(Pidfd { fd })
    }

    /// PIDFD_GET_<kind>_NAMESPACE with argument 0: a new fd for the target's
    /// namespace named by `req.entry`.
    pub fn namespace(&self, req: PidfdNsIoctl) -> Result<NsFd, SysError> {
        self.namespace_with_arg(req, 0)
    }

    /// The request with an arbitrary argument (fs/pidfs.c: nonzero is
    /// EINVAL). Safe for any value: the fd is a pidfd by construction, and
    /// pidfs never reads memory through the argument of these `_IO`
    /// requests; the filesystem is checked first all the same, so that a
    /// kernel without pidfs (before 6.9) gets no integer it might take for a
    /// pointer (the call then fails with ENOTTY without being made).
    pub fn namespace_with_arg(&self, req: PidfdNsIoctl, arg: libc::c_ulong) -> Result<NsFd, SysError> {
        let op = || Op::IoctlNs(req.name);
        if arg != 0 && !self.on_pidfs().op(op())? {
            return Err(SysError::new(op(), Errno::ENOTTY));
        }
        // SAFETY: `_IO` requests on a pidfd take no argument memory (see
        // above); the fd is borrowed and valid for the call.
        let ret = unsafe { libc::ioctl(self.fd.as_raw_fd(), req.request as libc::Ioctl, arg) };
        let raw = Errno::result(ret).op(op())?;
        // SAFETY: PIDFD_GET_*_NAMESPACE returns a new fd on success, owned
        // by nobody else.
        NsFd::from_fd(unsafe { sys::own_fd(raw) }).op(op())
    }

    /// Whether the fd lives on pidfs (`f_type` [`PID_FS_MAGIC`], 6.9+).
    fn on_pidfs(&self) -> Result<bool, Errno> {
        let st = nix::sys::statfs::fstatfs(self.fd.as_fd())?;
        Ok(st.filesystem_type().0 as i64 == PID_FS_MAGIC)
    }

    /// setns(pidfd, flags) (5.8): joins the target's namespaces of every
    /// kind in `flags` at once (setns(2)).
    pub fn setns(&self, flags: impl Into<NsFlags>) -> Result<(), SysError> {
        crate::ns::setns(&self.fd, flags)
    }

    /// Sends SIGKILL to the target (pidfd_send_signal(2), 5.1+): ends a
    /// process that is not the caller's child without racing a pid reuse.
    pub fn kill(&self) -> Result<(), SysError> {
        // SAFETY: the fd is a valid pidfd; a null siginfo is allowed; the
        // other arguments are integers.
        let ret = unsafe {
            libc::syscall(libc::SYS_pidfd_send_signal, self.fd.as_raw_fd(), libc::SIGKILL, std::ptr::null::<libc::siginfo_t>(), 0u32)
        };
        Errno::result(ret).map(drop).op(Op::Process("pidfd_send_signal"))
    }

    /// Waits until the target has terminated (the pidfd polls readable,
    /// pidfd_open(2)), at most `timeout`; does not reap it. By then the
    /// kernel has released its namespaces (exit_task_namespaces() runs
    /// before the exit is notified). `Ok(false)` when the deadline passed.
    pub fn wait_exited(&self, timeout: Duration) -> Result<bool, SysError> {
        let until = Instant::now() + timeout;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) if left.is_zero() => return Ok(false),
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(_) => return Ok(true),
                Err(e) => return Err(SysError::new(Op::Process("poll(pidfd)"), e)),
            }
        }
    }
}

impl AsFd for Pidfd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_uapi_numbers() {
        // `_IO(0xFF, nr)` is 0xFF00 | nr; the entries are the /proc names.
        for (i, r) in PIDFD_NS_IOCTLS.iter().enumerate() {
            assert_eq!(r.request, 0xFF00 | (i as u64 + 1), "{}", r.name);
            assert_eq!(PidfdNsIoctl::for_entry(r.entry), Some(*r));
            let k = r.kind.info();
            assert!(r.entry.name() == k.proc_name || Some(r.entry.name()) == k.for_children, "{}", r.name);
        }
        assert_eq!(PIDFD_GET_UTS_NAMESPACE.request, 0xFF0A);
    }
}
