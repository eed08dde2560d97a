//! Namespace file descriptors: opening `/proc/[pid]/ns/*`, setns(2), and
//! the ioctl_ns(2) requests.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use crate::error::{Op, OpContext, SysError};
use crate::flags::NsFlags;
use crate::kind::{Kind, NsEntry};
use crate::nsid::{NsId, Proc};
use crate::sys;
use crate::version::KernelVersion;

/// An ioctl_ns(2) request: `_IO(NSIO, nr)` with NSIO = 0xb7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NsIoctl {
    /// Name as in `<linux/nsfs.h>`.
    pub name: &'static str,
    /// Request number.
    pub request: u64,
    /// Kernel release that introduced it (ioctl_ns(2)).
    pub since: KernelVersion,
}

/// `NSIO` of `<linux/nsfs.h>`: the ioctl type of ioctl_ns(2).
pub const NSIO: u64 = 0xb7;

const fn nsio(nr: u64) -> u64 {
    crate::ioctl::io(NSIO, nr)
}

/// NS_GET_USERNS: a fd for the owning user namespace (4.9).
pub const NS_GET_USERNS: NsIoctl = NsIoctl { name: "NS_GET_USERNS", request: nsio(1), since: KernelVersion::new(4, 9) };
/// NS_GET_PARENT: a fd for the parent of a pid or user namespace (4.9).
pub const NS_GET_PARENT: NsIoctl = NsIoctl { name: "NS_GET_PARENT", request: nsio(2), since: KernelVersion::new(4, 9) };
/// NS_GET_NSTYPE: the CLONE_NEW* value of the namespace (4.11).
pub const NS_GET_NSTYPE: NsIoctl = NsIoctl { name: "NS_GET_NSTYPE", request: nsio(3), since: KernelVersion::new(4, 11) };
/// NS_GET_OWNER_UID: the owner uid of a user namespace (4.11).
pub const NS_GET_OWNER_UID: NsIoctl = NsIoctl { name: "NS_GET_OWNER_UID", request: nsio(4), since: KernelVersion::new(4, 11) };

/// NS_GET_MNTNS_ID: the 64-bit id of a mount namespace, `_IOR(NSIO, 5,
/// __u64)` (6.11; an `_IO` number during 6.11-rc was fixed before release).
pub const NS_GET_MNTNS_ID: NsIoctl =
    NsIoctl { name: "NS_GET_MNTNS_ID", request: crate::ioctl::ior(NSIO, 5, 8), since: KernelVersion::new(6, 11) };

/// NS_GET_ID: the 64-bit id of a namespace of any kind, `_IOR(NSIO, 13,
/// __u64)` (6.18, `<linux/nsfs.h>`): the id listns(2) lists; for a mount
/// namespace that of NS_GET_MNTNS_ID, for a network namespace its
/// SO_NETNS_COOKIE.
pub const NS_GET_ID: NsIoctl = NsIoctl { name: "NS_GET_ID", request: crate::ioctl::ior(NSIO, 13, 8), since: KernelVersion::new(6, 18) };

/// `SO_NETNS_COOKIE` of `<asm-generic/socket.h>` (5.14; 71 on every
/// architecture but mips, sparc, parisc and alpha): getsockopt(2) gives the
/// cookie of the socket's network namespace, socket(7).
pub const SO_NETNS_COOKIE: libc::c_int = 71;

/// getsockopt(SOL_SOCKET, SO_NETNS_COOKIE) (5.14): the 64-bit cookie of the
/// network namespace `sock` was created in.
pub fn netns_cookie(sock: BorrowedFd<'_>) -> Result<u64, Errno> {
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: `cookie` and `len` are valid and writable for the call, and
    // `len` says how much room `cookie` has.
    let ret = unsafe { libc::getsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, SO_NETNS_COOKIE, (&mut cookie as *mut u64).cast(), &mut len) };
    Errno::result(ret)?;
    if len as usize != std::mem::size_of::<u64>() {
        return Err(Errno::EINVAL);
    }
    Ok(cookie)
}

/// The four requests of ioctl_ns(2).
pub const NS_IOCTLS: [NsIoctl; 4] = [NS_GET_USERNS, NS_GET_PARENT, NS_GET_NSTYPE, NS_GET_OWNER_UID];

/// An open namespace file, with the identity it had when opened.
#[derive(Debug)]
pub struct NsFd {
    fd: OwnedFd,
    id: NsId,
}

impl NsFd {
    /// Opens `/proc/<pid>/ns/<entry>` read-only, close-on-exec.
    pub fn open_entry(proc: Proc, entry: impl Into<NsEntry>) -> Result<NsFd, SysError> {
        let path = proc.ns_path(entry);
        let op = || Op::OpenNs(path.display().to_string());
        let fd = open(&path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).op(op())?;
        NsFd::from_fd(fd).op(op())
    }

    /// Opens `proc`'s namespace of `kind`.
    pub fn open(proc: Proc, kind: Kind) -> Result<NsFd, SysError> {
        NsFd::open_entry(proc, kind)
    }

    /// Opens the caller's namespace of `kind`.
    pub fn current(kind: Kind) -> Result<NsFd, SysError> {
        NsFd::open(Proc::Myself, kind)
    }

    /// Wraps an open fd (for example one returned by NS_GET_PARENT).
    pub fn from_fd(fd: OwnedFd) -> Result<NsFd, Errno> {
        let id = NsId::of_fd(&fd)?;
        Ok(NsFd { fd, id })
    }

    /// The namespace's identity.
    pub fn id(&self) -> NsId {
        self.id
    }

    /// setns(2) into this namespace with `nstype` ([`NsFlags::EMPTY`]
    /// accepts any type).
    pub fn setns(&self, nstype: impl Into<NsFlags>) -> Result<(), SysError> {
        crate::ns::setns(&self.fd, nstype)
    }

    /// NS_GET_USERNS: the owning user namespace.
    pub fn user_ns(&self) -> Result<NsFd, SysError> {
        ioctl_fd(self.fd.as_fd(), NS_GET_USERNS)
    }

    /// NS_GET_PARENT: the parent namespace (pid and user only).
    pub fn parent(&self) -> Result<NsFd, SysError> {
        ioctl_fd(self.fd.as_fd(), NS_GET_PARENT)
    }

    /// NS_GET_NSTYPE: the CLONE_NEW* value, as the kernel returned it.
    pub fn nstype(&self) -> Result<NsFlags, SysError> {
        nstype(self.fd.as_fd())
    }

    /// NS_GET_MNTNS_ID: the unique id of a mount namespace (6.11+).
    pub fn mntns_id(&self) -> Result<u64, SysError> {
        mntns_id(self.fd.as_fd())
    }

    /// NS_GET_ID: the namespace's 64-bit id, whatever its kind (6.18+).
    pub fn ns_id(&self) -> Result<u64, SysError> {
        ns_id(self.fd.as_fd())
    }

    /// NS_GET_OWNER_UID: the owner's uid as seen in the caller's user namespace.
    pub fn owner_uid(&self) -> Result<u32, SysError> {
        owner_uid(self.fd.as_fd())
    }
}

impl AsFd for NsFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for NsFd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

/// An ioctl_ns(2) request that returns a new namespace fd, on any fd.
pub fn ioctl_fd(fd: BorrowedFd<'_>, req: NsIoctl) -> Result<NsFd, SysError> {
    let raw = sys::ioctl_none(fd, req.request).op(Op::IoctlNs(req.name))?;
    // SAFETY: the requests of this function return a new fd on success,
    // owned by nobody else.
    NsFd::from_fd(unsafe { sys::own_fd(raw) }).op(Op::IoctlNs(req.name))
}

/// NS_GET_NSTYPE on any fd.
pub fn nstype(fd: BorrowedFd<'_>) -> Result<NsFlags, SysError> {
    let v = sys::ioctl_none(fd, NS_GET_NSTYPE.request).op(Op::IoctlNs(NS_GET_NSTYPE.name))?;
    Ok(NsFlags::from_bits_retain(v as u64))
}

/// NS_GET_ID on any fd (6.18+).
pub fn ns_id(fd: BorrowedFd<'_>) -> Result<u64, SysError> {
    sys::ioctl_read_u64(fd, NS_GET_ID.request).op(Op::IoctlNs(NS_GET_ID.name))
}

/// NS_GET_MNTNS_ID on any fd (6.11+).
pub fn mntns_id(fd: BorrowedFd<'_>) -> Result<u64, SysError> {
    sys::ioctl_read_u64(fd, NS_GET_MNTNS_ID.request).op(Op::IoctlNs(NS_GET_MNTNS_ID.name))
}

/// NS_GET_OWNER_UID on any fd.
pub fn owner_uid(fd: BorrowedFd<'_>) -> Result<u32, SysError> {
    sys::ioctl_read_u32(fd, NS_GET_OWNER_UID.request).op(Op::IoctlNs(NS_GET_OWNER_UID.name))
}
