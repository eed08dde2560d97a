//! The raw-argument API: calls whose arguments are **passed through
//! unchecked**, for the fuzz suite and the invalid-argument cases that hand
//! the kernel bits no typed API would build. Each returns the kernel's errno
//! as is. Everything else should use the typed calls ([`crate::ns`],
//! [`crate::nsfd::NsFd`], [`crate::pidfd::Pidfd`]).

use std::os::fd::{BorrowedFd, OwnedFd};

use nix::errno::Errno;

use crate::pidfd::PIDFD_NS_IOCTLS;
use crate::sys;

/// unshare(2) with an arbitrary flag word (unknown and non-namespace bits
/// included).
pub fn unshare(flags: u64) -> Result<(), Errno> {
    sys::unshare(flags)
}

/// setns(2) with an arbitrary `nstype` on any fd.
pub fn setns(fd: BorrowedFd<'_>, nstype: u64) -> Result<(), Errno> {
    sys::setns(fd, nstype)
}

/// What a successful [`ioctl`] returned.
#[derive(Debug)]
pub enum IoctlRet {
    /// A plain value (0, or a value such as NS_GET_NSTYPE's).
    Value(libc::c_int),
    /// A new fd, owned here (closed on drop): the request is one that
    /// returns an fd ([`returns_fd`]).
    Fd(OwnedFd),
}

impl IoctlRet {
    /// The raw return value (the fd's number for [`IoctlRet::Fd`]).
    pub fn value(&self) -> libc::c_int {
        match self {
            IoctlRet::Value(v) => *v,
            IoctlRet::Fd(fd) => std::os::fd::AsRawFd::as_raw_fd(fd),
        }
    }
}

/// Whether a successful ioctl(2) with `request` returns a new fd: the nsfs
/// type (0xb7) with number 1, 2, 11 or 12 (NS_GET_USERNS, NS_GET_PARENT,
/// NS_MNT_GET_NEXT, NS_MNT_GET_PREV) whatever its direction and size, since
/// kernels that match nsfs requests by number alone return fds for the
/// malformed variants too; or exactly a PIDFD_GET_*_NAMESPACE request.
pub fn returns_fd(request: u64) -> bool {
    let nr = request & 0xff;
    let nsfs = (request >> 8) & 0xff == crate::nsfd::NSIO && matches!(nr, 1 | 2 | 11 | 12);
    nsfs || PIDFD_NS_IOCTLS.iter().any(|r| r.request == request)
}

/// ioctl(2) with any `request` and argument 0 (an `_IO`-style call; an
/// unknown request reading its argument reads nothing). A new fd that the
/// request returns ([`returns_fd`]) is owned by the result.
pub fn ioctl(fd: BorrowedFd<'_>, request: u64) -> Result<IoctlRet, Errno> {
    let v = sys::ioctl_none(fd, request)?;
    if v >= 0 && returns_fd(request) {
        // SAFETY: a successful request of this family returns a new fd
        // that the kernel has just installed for us and nothing else owns.
        Ok(IoctlRet::Fd(unsafe { sys::own_fd(v) }))
    } else {
        Ok(IoctlRet::Value(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_requests() {
        assert!(returns_fd(crate::nsfd::NS_GET_USERNS.request));
        assert!(returns_fd(crate::nsfd::NS_GET_PARENT.request));
        assert!(!returns_fd(crate::nsfd::NS_GET_NSTYPE.request));
        assert!(!returns_fd(crate::nsfd::NS_GET_OWNER_UID.request));
        assert!(returns_fd(crate::mntns::NS_MNT_GET_NEXT.request));
        assert!(!returns_fd(crate::mntns::NS_MNT_GET_INFO.request));
        assert!(returns_fd(crate::pidfd::PIDFD_GET_UTS_NAMESPACE.request));
    }
}
