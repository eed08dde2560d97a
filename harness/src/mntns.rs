//! Mount namespace ids (6.11+): typed wrappers of statmount(2), listmount(2)
//! and the NS_MNT_GET_INFO/NEXT/PREV ioctls, which have no libc wrapper.
//!
//! Layouts and numbers are those of `<linux/mount.h>` (`struct mnt_id_req`,
//! `struct statmount`, `STATMOUNT_*`, `LSMT_ROOT`) and `<linux/nsfs.h>`
//! (`struct mnt_ns_info`, `NS_MNT_GET_*`). Versions: statmount(2) and
//! listmount(2) 6.8; `mnt_id_req.mnt_ns_id` (`MNT_ID_REQ_SIZE_VER1`) and
//! `STATMOUNT_MNT_NS_ID` 6.11; NS_MNT_GET_INFO/NEXT/PREV 6.12.
//!
//! The fuzz suite can reuse [`statmount`], [`listmount`] (one call, any
//! buffer length) and [`mnt_ns_ioctl`] (one of the three NS_MNT_GET_*
//! requests, with a `struct mnt_ns_info` buffer or NULL, returning the raw
//! result).

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::error::{Op, OpContext, SysError};
use crate::nsfd::{NsFd, NsIoctl};
use crate::sys;
use crate::version::KernelVersion;

/// System call number of statmount(2): 457 in `include/uapi/asm-generic/unistd.h`
/// and `arch/x86/entry/syscalls/syscall_64.tbl` (libc has none for x86_64 yet).
pub const SYS_STATMOUNT: libc::c_long = 457;
/// System call number of listmount(2): 458 (as [`SYS_STATMOUNT`]).
pub const SYS_LISTMOUNT: libc::c_long = 458;

/// `MNT_ID_REQ_SIZE_VER0` of `<linux/mount.h>`: `struct mnt_id_req` without `mnt_ns_id` (6.8).
pub const MNT_ID_REQ_SIZE_VER0: u32 = 24;
/// `MNT_ID_REQ_SIZE_VER1` of `<linux/mount.h>`: with `mnt_ns_id` (6.11).
pub const MNT_ID_REQ_SIZE_VER1: u32 = 32;
/// `STATMOUNT_MNT_BASIC` of `<linux/mount.h>`: want/got `mnt_id`, `mnt_parent_id`, ...
pub const STATMOUNT_MNT_BASIC: u64 = 0x2;
/// `STATMOUNT_MNT_NS_ID` of `<linux/mount.h>` (6.11): want/got `mnt_ns_id`.
pub const STATMOUNT_MNT_NS_ID: u64 = 0x40;
/// `LSMT_ROOT` of `<linux/mount.h>`: as listmount(2)'s `mnt_id`, the root mount.
pub const LSMT_ROOT: u64 = u64::MAX;

/// `struct mnt_id_req` of `<linux/mount.h>` (version 1, 32 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct MntIdReq {
    size: u32,
    spare: u32,
    mnt_id: u64,
    param: u64,
    mnt_ns_id: u64,
}

/// `struct statmount` of `<linux/mount.h>` up to `mnt_ns_id` and the spare
/// words of its 6.11 layout (512 bytes, with no string area: the cases ask
/// only for fixed fields).
#[repr(C)]
struct RawStatmount {
    size: u32,
    mnt_opts: u32,
    mask: u64,
    sb_dev_major: u32,
    sb_dev_minor: u32,
    sb_magic: u64,
    sb_flags: u32,
    fs_type: u32,
    mnt_id: u64,
    mnt_parent_id: u64,
    mnt_id_old: u32,
    mnt_parent_id_old: u32,
    mnt_attr: u64,
    mnt_propagation: u64,
    mnt_peer_group: u64,
    mnt_master: u64,
    propagate_from: u64,
    mnt_root: u32,
    mnt_point: u32,
    mnt_ns_id: u64,
    spare: [u64; 49],
}

/// The fixed fields of a statmount(2) answer that the cases read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountStat {
    /// `size`: bytes the kernel filled in.
    pub size: u32,
    /// `mask`: which `STATMOUNT_*` groups it answered.
    pub mask: u64,
    /// `mnt_id`: the unique (64-bit) mount id (STATMOUNT_MNT_BASIC).
    pub mnt_id: u64,
    /// `mnt_parent_id`: the parent's unique id (STATMOUNT_MNT_BASIC).
    pub mnt_parent_id: u64,
    /// `mnt_id_old`: the id of `/proc/[pid]/mountinfo` (STATMOUNT_MNT_BASIC).
    pub mnt_id_old: u32,
    /// `mnt_parent_id_old`: the parent's mountinfo id (STATMOUNT_MNT_BASIC).
    pub mnt_parent_id_old: u32,
    /// `mnt_ns_id`: the id of the mount's namespace (STATMOUNT_MNT_NS_ID).
    pub mnt_ns_id: u64,
}

fn request(mnt_id: u64, param: u64, mnt_ns_id: Option<u64>) -> MntIdReq {
    match mnt_ns_id {
        None => MntIdReq { size: MNT_ID_REQ_SIZE_VER0, mnt_id, param, ..MntIdReq::default() },
        Some(ns) => MntIdReq { size: MNT_ID_REQ_SIZE_VER1, mnt_id, param, mnt_ns_id: ns, ..MntIdReq::default() },
    }
}

/// statmount(2): the `mask` groups of the mount with unique id `mnt_id`, in
/// the caller's mount namespace (`None`, a version-0 request) or in the one
/// whose id is `mnt_ns_id` (a version-1 request, 6.11).
pub fn statmount(mnt_id: u64, mnt_ns_id: Option<u64>, mask: u64) -> Result<MountStat, Errno> {
    let req = request(mnt_id, mask, mnt_ns_id);
    let mut buf = std::mem::MaybeUninit::<RawStatmount>::zeroed();
    // SAFETY: `req` is a valid mnt_id_req of the size it names; `buf` is
    // writable for the size passed; both live across the call.
    let ret = unsafe { libc::syscall(SYS_STATMOUNT, &req as *const MntIdReq, buf.as_mut_ptr(), std::mem::size_of::<RawStatmount>(), 0u32) };
    Errno::result(ret)?;
    // SAFETY: zeroed is a valid RawStatmount (plain integers), and the
    // kernel wrote at most its size.
    let raw = unsafe { buf.assume_init() };
    Ok(MountStat {
        size: raw.size,
        mask: raw.mask,
        mnt_id: raw.mnt_id,
        mnt_parent_id: raw.mnt_parent_id,
        mnt_id_old: raw.mnt_id_old,
        mnt_parent_id_old: raw.mnt_parent_id_old,
        mnt_ns_id: raw.mnt_ns_id,
    })
}

/// listmount(2), one call: the unique ids of the mounts below `mnt_id`
/// ([`LSMT_ROOT`]: the root mount) after `last` (0: from the start), in the
/// caller's mount namespace (`None`) or in the one whose id is `mnt_ns_id`
/// (6.11), written to `ids`; returns how many. Entries past that count are
/// left as they were.
pub fn listmount(mnt_id: u64, mnt_ns_id: Option<u64>, last: u64, ids: &mut [u64]) -> Result<usize, Errno> {
    let req = request(mnt_id, last, mnt_ns_id);
    // SAFETY: `req` is a valid mnt_id_req; `ids` is writable for the number
    // of u64 passed; both live across the call.
    let ret = unsafe { libc::syscall(SYS_LISTMOUNT, &req as *const MntIdReq, ids.as_mut_ptr(), ids.len(), 0u32) };
    Errno::result(ret).map(|n| n as usize)
}

/// listmount(2) to the end, 64 ids a call: every mount below `mnt_id`.
pub fn listmount_all(mnt_id: u64, mnt_ns_id: Option<u64>) -> Result<Vec<u64>, Errno> {
    let mut out = Vec::new();
    let mut page = [0u64; 64];
    loop {
        let n = listmount(mnt_id, mnt_ns_id, out.last().copied().unwrap_or(0), &mut page)?;
        out.extend_from_slice(&page[..n]);
        if n < page.len() {
            return Ok(out);
        }
    }
}

/// statx(2) with `STATX_MNT_ID_UNIQUE` (6.8): the unique id of the mount
/// `path` is on.
pub fn mount_id_unique(path: &str) -> Result<u64, Errno> {
    let path = std::ffi::CString::new(path).map_err(|_| Errno::EINVAL)?;
    let mut stx = std::mem::MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: a valid C string and a writable statx buffer, both alive
    // across the call.
    let ret = unsafe { libc::statx(libc::AT_FDCWD, path.as_ptr(), 0, libc::STATX_MNT_ID_UNIQUE, stx.as_mut_ptr()) };
    Errno::result(ret)?;
    // SAFETY: statx filled the buffer (zeroed before, plain integers).
    let stx = unsafe { stx.assume_init() };
    if stx.stx_mask & libc::STATX_MNT_ID_UNIQUE == 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    Ok(stx.stx_mnt_id)
}

/// `struct mnt_ns_info` of `<linux/nsfs.h>` (`MNT_NS_INFO_SIZE_VER0`, 16 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MntNsInfo {
    /// `size`: bytes the kernel filled in.
    pub size: u32,
    /// `nr_mounts`: mounts in the namespace, its root mount not counted.
    pub nr_mounts: u32,
    /// `mnt_ns_id`: the namespace's id (that of NS_GET_MNTNS_ID).
    pub mnt_ns_id: u64,
}

/// `MNT_NS_INFO_SIZE_VER0` of `<linux/nsfs.h>`.
pub const MNT_NS_INFO_SIZE_VER0: u32 = 16;

const fn nsio_read(nr: u64, size: u64) -> u64 {
    crate::ioctl::ior(crate::nsfd::NSIO, nr, size)
}

/// NS_MNT_GET_INFO: `_IOR(NSIO, 10, struct mnt_ns_info)` (6.12), the
/// information of the fd's own mount namespace.
pub const NS_MNT_GET_INFO: NsIoctl = NsIoctl { name: "NS_MNT_GET_INFO", request: nsio_read(10, 16), since: KernelVersion::new(6, 12) };
/// NS_MNT_GET_NEXT: `_IOR(NSIO, 11, struct mnt_ns_info)` (6.12), a fd for
/// the mount namespace with the next larger id the caller may see.
pub const NS_MNT_GET_NEXT: NsIoctl = NsIoctl { name: "NS_MNT_GET_NEXT", request: nsio_read(11, 16), since: KernelVersion::new(6, 12) };
/// NS_MNT_GET_PREV: `_IOR(NSIO, 12, struct mnt_ns_info)` (6.12), the same
/// towards smaller ids.
pub const NS_MNT_GET_PREV: NsIoctl = NsIoctl { name: "NS_MNT_GET_PREV", request: nsio_read(12, 16), since: KernelVersion::new(6, 12) };

/// `_IOC_SIZE(request)`: the argument size a request encodes.
const fn ioc_size(request: u64) -> usize {
    crate::ioctl::fields(request).size as usize
}

// The kernel's copy_struct_to_user() writes (and zero-fills) up to the size
// the request encodes; on 6.12 to 6.17 ns_ioctl() also took any request
// numbered 10 to 12 as one of these (harness::known::NS_MNT_IOCTL_NUMBER_ONLY).
// [`mnt_ns_ioctl`] therefore passes only these three requests, each
// encoding exactly the size of the buffer it is given.
const _: () = {
    assert!(ioc_size(NS_MNT_GET_INFO.request) == std::mem::size_of::<MntNsInfo>());
    assert!(ioc_size(NS_MNT_GET_NEXT.request) == std::mem::size_of::<MntNsInfo>());
    assert!(ioc_size(NS_MNT_GET_PREV.request) == std::mem::size_of::<MntNsInfo>());
};

/// One of the requests of `<linux/nsfs.h>` that take a `struct
/// mnt_ns_info` (6.12): the only requests [`mnt_ns_ioctl`] issues. Malformed
/// request values (another size, direction or type) are the fuzz suite's,
/// which passes no buffer with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MntNsRequest {
    /// NS_MNT_GET_INFO: the fd's own mount namespace.
    Info,
    /// NS_MNT_GET_NEXT: a fd for the next larger id.
    Next,
    /// NS_MNT_GET_PREV: a fd for the next smaller id.
    Prev,
}

impl MntNsRequest {
    /// The request's name, number and version.
    pub const fn ioctl(self) -> NsIoctl {
        match self {
            MntNsRequest::Info => NS_MNT_GET_INFO,
            MntNsRequest::Next => NS_MNT_GET_NEXT,
            MntNsRequest::Prev => NS_MNT_GET_PREV,
        }
    }
}

/// An NS_MNT_GET_* `request` on `fd` with `info` as its argument (NULL when
/// `None`): the raw result (0, or a new fd that the caller then owns) or the
/// errno. Any fd may be passed (for EINVAL/ENOTTY checks); the kernel writes
/// at most the 16 bytes the request encodes.
pub fn mnt_ns_ioctl(fd: BorrowedFd<'_>, request: MntNsRequest, info: Option<&mut MntNsInfo>) -> Result<libc::c_int, Errno> {
    let arg = info.map_or(std::ptr::null_mut(), |i| i as *mut MntNsInfo);
    // SAFETY: `arg` is NULL or a writable mnt_ns_info of 16 bytes; the
    // request is one of the three NS_MNT_GET_* values, each encoding a size
    // of exactly 16 (asserted at compile time above), so the kernel writes
    // at most that.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), request.ioctl().request as libc::Ioctl, arg) };
    Errno::result(ret)
}

/// NS_MNT_GET_INFO on a mount namespace fd.
pub fn mnt_ns_info(fd: BorrowedFd<'_>) -> Result<MntNsInfo, SysError> {
    let mut info = MntNsInfo::default();
    mnt_ns_ioctl(fd, MntNsRequest::Info, Some(&mut info)).op(Op::IoctlNs(NS_MNT_GET_INFO.name))?;
    Ok(info)
}

/// Which way [`mnt_ns_step`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// NS_MNT_GET_NEXT: the next larger id.
    Next,
    /// NS_MNT_GET_PREV: the next smaller id.
    Prev,
}

impl Step {
    /// The request.
    pub const fn request(self) -> MntNsRequest {
        match self {
            Step::Next => MntNsRequest::Next,
            Step::Prev => MntNsRequest::Prev,
        }
    }

    /// The request's name, number and version.
    pub const fn ioctl(self) -> NsIoctl {
        self.request().ioctl()
    }
}

/// NS_MNT_GET_NEXT or NS_MNT_GET_PREV on a mount namespace fd: the
/// neighbour's fd and its information.
pub fn mnt_ns_step(fd: BorrowedFd<'_>, step: Step) -> Result<(NsFd, MntNsInfo), SysError> {
    let name = step.ioctl().name;
    let mut info = MntNsInfo::default();
    let raw: RawFd = mnt_ns_ioctl(fd, step.request(), Some(&mut info)).op(Op::IoctlNs(name))?;
    // SAFETY: NS_MNT_GET_NEXT/PREV return a new fd on success, owned by
    // nobody else.
    let ns = NsFd::from_fd(unsafe { sys::own_fd(raw) }).op(Op::IoctlNs(name))?;
    Ok((ns, info))
}

/// The scratch directory [`scratch_tmpfs`] mounts a tmpfs on.
pub const SCRATCH_DIR: &str = "/tmp";

/// Makes every mount of the caller's mount namespace private
/// (`MS_REC|MS_PRIVATE` on `/`), so that nothing mounted afterwards
/// propagates back to the namespace it was copied from (mount_namespaces(7)).
/// For a new mount namespace only: the caller unshared CLONE_NEWNS or was
/// created with it.
pub fn make_private() -> Result<(), Errno> {
    use nix::mount::{mount, MsFlags};
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
}

/// Mounts a small fresh tmpfs (`nosuid,nodev`, mode 0755, 1 MiB) named
/// `source` (the name `/proc/self/mountinfo` shows) on [`SCRATCH_DIR`], for
/// files and mount points that exist only in the caller's (new, private)
/// mount namespace.
pub fn scratch_tmpfs(source: &str) -> Result<(), Errno> {
    use nix::mount::{mount, MsFlags};
    mount(Some(source), SCRATCH_DIR, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=0755,size=1m"))
}

/// [`make_private`], then [`scratch_tmpfs`] named `tmpfs`: the private
/// scratch space of a body in a new mount namespace. The errno is
/// returned as is (`?` in a body makes it a failure).
pub fn private_scratch() -> Result<(), Errno> {
    make_private()?;
    scratch_tmpfs("tmpfs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_uapi_headers() {
        assert_eq!(std::mem::size_of::<MntIdReq>(), MNT_ID_REQ_SIZE_VER1 as usize);
        assert_eq!(std::mem::size_of::<RawStatmount>(), 512);
        assert_eq!(std::mem::offset_of!(RawStatmount, mnt_id), 40);
        assert_eq!(std::mem::offset_of!(RawStatmount, mnt_ns_id), 112);
        assert_eq!(std::mem::size_of::<MntNsInfo>(), MNT_NS_INFO_SIZE_VER0 as usize);
        assert_eq!(NS_MNT_GET_INFO.request, 0x8010_b70a);
        assert_eq!(NS_MNT_GET_NEXT.request, 0x8010_b70b);
        assert_eq!(NS_MNT_GET_PREV.request, 0x8010_b70c);
        assert_eq!(ioc_size(NS_MNT_GET_INFO.request), 16);
        assert_eq!(Step::Next.ioctl(), NS_MNT_GET_NEXT);
        assert_eq!(Step::Prev.ioctl(), NS_MNT_GET_PREV);
    }
}
