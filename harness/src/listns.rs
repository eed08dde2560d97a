//! listns(2) (6.19): a typed wrapper, and the raw-argument call the fuzz suite uses.
//!
//! listns(2) has no libc wrapper yet. The kernel's own description (commit
//! 76b6f5dfb3fd "nstree: add listns()", `include/uapi/linux/nsfs.h`):
//!
//! ```text
//! ssize_t listns(const struct ns_id_req *req, u64 *ns_ids, size_t nr_ns_ids, unsigned int flags);
//! ```
//!
//! lists the ids (those of NS_GET_ID, [`crate::nsfd::ns_id`]) of the active namespaces the caller may
//! see, in increasing order, starting after `req->ns_id`, of the types in
//! `req->ns_type` (CLONE_NEW* bits, 0 for all) and, when `req->user_ns_id`
//! is not 0, owned by that user namespace ([`LISTNS_CURRENT_USER`]: the
//! caller's). `flags` must be 0.
//!
//! Besides the typed calls, [`listns_raw`] takes arbitrary request bytes,
//! an arbitrary `nr_ns_ids` and buffers that may be NULL or unmapped, and
//! stays memory-safe whatever it is given: each buffer handed to the kernel
//! ends right before a `PROT_NONE` guard page, so a kernel that reads or
//! writes past what the caller provided faults (EFAULT) instead of touching
//! other memory of ours.

use std::os::fd::OwnedFd;

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::handle::FileHandle;
use crate::observe::FD_NSFS_ROOT;

/// The system call number of listns(2): 470 in
/// `arch/x86/entry/syscalls/syscall_64.tbl` and `include/uapi/asm-generic/unistd.h`
/// (every architecture Rust targets but mips, where it is 4470/5470/6470).
/// libc has none yet.
pub const SYS_LISTNS: libc::c_long = 470;

/// `NS_ID_REQ_SIZE_VER0` of `<linux/nsfs.h>`: the size of the first
/// published `struct ns_id_req`.
pub const NS_ID_REQ_SIZE_VER0: u32 = 32;

/// `LISTNS_CURRENT_USER` of `<linux/nsfs.h>`: as `user_ns_id`, the caller's
/// own user namespace.
pub const LISTNS_CURRENT_USER: u64 = u64::MAX;

/// `FILEID_NSFS` of `<linux/exportfs.h>`: the handle type of an nsfs file
/// handle, whose bytes are `struct nsfs_file_handle` of `<linux/nsfs.h>`.
pub const FILEID_NSFS: i32 = 0xf1;

/// `struct ns_id_req` of `<linux/nsfs.h>` (version 0, 32 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsIdReq {
    /// `size`: [`NS_ID_REQ_SIZE_VER0`].
    pub size: u32,
    /// `spare`: must be 0.
    pub spare: u32,
    /// `ns_id`: list the ids after this one (0: from the start).
    pub ns_id: u64,
    /// `ns_type`: CLONE_NEW* bits of the types to list (0: every type).
    pub ns_type: u32,
    /// `spare2`.
    pub spare2: u32,
    /// `user_ns_id`: only namespaces owned by this user namespace (0: any
    /// owner; [`LISTNS_CURRENT_USER`]: the caller's).
    pub user_ns_id: u64,
}

impl Default for NsIdReq {
    fn default() -> NsIdReq {
        NsIdReq { size: NS_ID_REQ_SIZE_VER0, spare: 0, ns_id: 0, ns_type: 0, spare2: 0, user_ns_id: 0 }
    }
}

impl NsIdReq {
    /// A version-0 request for the types in `ns_type` (CLONE_NEW* bits, 0
    /// for all) owned by `owner`, from the start.
    pub fn new(ns_type: u64, owner: Owner) -> NsIdReq {
        NsIdReq { ns_type: ns_type as u32, user_ns_id: owner.user_ns_id(), ..NsIdReq::default() }
    }

    /// The request resumed after `last` (the last id of the previous call).
    pub fn after(self, last: u64) -> NsIdReq {
        NsIdReq { ns_id: last, ..self }
    }

    /// The 32 bytes the kernel reads, in native byte order.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        out.extend_from_slice(&self.size.to_ne_bytes());
        out.extend_from_slice(&self.spare.to_ne_bytes());
        out.extend_from_slice(&self.ns_id.to_ne_bytes());
        out.extend_from_slice(&self.ns_type.to_ne_bytes());
        out.extend_from_slice(&self.spare2.to_ne_bytes());
        out.extend_from_slice(&self.user_ns_id.to_ne_bytes());
        out
    }
}

/// Whose namespaces to list (`user_ns_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Owner {
    /// Any owner (0).
    Any,
    /// The caller's user namespace ([`LISTNS_CURRENT_USER`]).
    Current,
    /// The user namespace with this id.
    Id(u64),
}

impl Owner {
    /// The `user_ns_id` value.
    pub fn user_ns_id(self) -> u64 {
        match self {
            Owner::Any => 0,
            Owner::Current => LISTNS_CURRENT_USER,
            Owner::Id(id) => id,
        }
    }
}

/// Why [`listns`] gave no listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListnsError {
    /// The call failed with this errno.
    Errno(Errno),
    /// The call returned more ids than the `max` it was given as
    /// `nr_ns_ids` (the kernel may write at most `nr_ns_ids`): a kernel
    /// defect, not hidden by truncating.
    Overrun {
        /// The return value.
        returned: usize,
        /// The buffer size passed as `nr_ns_ids`.
        max: usize,
    },
}

impl std::fmt::Display for ListnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListnsError::Errno(e) => write!(f, "listns: {e:?} ({})", e.desc()),
            ListnsError::Overrun { returned, max } => write!(f, "listns returned {returned} ids for a buffer of {max} (nr_ns_ids)"),
        }
    }
}

impl std::error::Error for ListnsError {}

impl From<ListnsError> for crate::CaseError {
    #[track_caller]
    fn from(e: ListnsError) -> crate::CaseError {
        match e {
            ListnsError::Errno(errno) => crate::CaseError::from(errno),
            ListnsError::Overrun { .. } => crate::CaseError::fail(e.to_string()),
        }
    }
}

/// listns(2) with `req`, a buffer of `max` ids and flags 0: the ids written.
/// A return value above `max` is [`ListnsError::Overrun`].
pub fn listns(req: &NsIdReq, max: usize) -> Result<Vec<u64>, ListnsError> {
    let mut ids = vec![0u64; max];
    // SAFETY: `req` is a valid ns_id_req of the size it declares; `ids`
    // has room for `max` u64 and the kernel writes at most `nr_ns_ids` of
    // them; both live across the call.
    let ret = unsafe { libc::syscall(SYS_LISTNS, req as *const NsIdReq, ids.as_mut_ptr(), max, 0u32) };
    let n = Errno::result(ret).map_err(ListnsError::Errno)? as usize;
    if n > max {
        return Err(ListnsError::Overrun { returned: n, max });
    }
    ids.truncate(n);
    Ok(ids)
}

/// One call of a paginated listing: what [`listns_pages`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The cursor passed (`req.ns_id`).
    pub after: u64,
    /// The ids returned, or why not.
    pub result: Result<Vec<u64>, ListnsError>,
}

/// Lists everything `req` selects, `page` ids a call, each call resuming
/// after the last id of the previous one, until a call returns fewer than
/// `page` ids or fails; returns every call made (the caller judges them).
/// Stops after `max_calls` calls.
pub fn listns_pages(req: NsIdReq, page: usize, max_calls: usize) -> Vec<Page> {
    let mut pages = Vec::new();
    let mut after = req.ns_id;
    for _ in 0..max_calls {
        let result = listns(&req.after(after), page);
        let next = match &result {
            Ok(ids) if ids.len() == page && page > 0 => ids.last().copied(),
            _ => None,
        };
        pages.push(Page { after, result });
        match next {
            Some(last) => after = last,
            None => break,
        }
    }
    pages
}

/// `struct nsfs_file_handle` of `<linux/nsfs.h>`, decoded from a handle's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsfsFileHandle {
    /// `ns_id`: the namespace's id (NS_GET_ID).
    pub ns_id: u64,
    /// `ns_type`: its CLONE_NEW* type.
    pub ns_type: u32,
    /// `ns_inum`: its inode number (`st_ino`).
    pub ns_inum: u32,
}

impl NsfsFileHandle {
    /// Decodes a handle of type [`FILEID_NSFS`] of at least 16 bytes.
    pub fn decode(handle: &FileHandle) -> Option<NsfsFileHandle> {
        if handle.handle_type != FILEID_NSFS || handle.bytes.len() < 16 {
            return None;
        }
        let b = &handle.bytes;
        Some(NsfsFileHandle {
            ns_id: u64::from_ne_bytes(b[0..8].try_into().ok()?),
            ns_type: u32::from_ne_bytes(b[8..12].try_into().ok()?),
            ns_inum: u32::from_ne_bytes(b[12..16].try_into().ok()?),
        })
    }

    /// The handle naming a namespace by id alone (`ns_type` and `ns_inum`
    /// 0, which nsfs accepts: `nsfs_fh_to_dentry()`).
    pub fn by_id(ns_id: u64) -> FileHandle {
        let mut bytes = ns_id.to_ne_bytes().to_vec();
        bytes.extend_from_slice(&[0u8; 8]);
        FileHandle { handle_type: FILEID_NSFS, bytes }
    }
}

/// open_by_handle_at(FD_NSFS_ROOT) of the namespace with id `ns_id`,
/// read-only (6.18): the way to reach a namespace that listns(2) lists.
pub fn open_by_id(ns_id: u64) -> Result<OwnedFd, Errno> {
    NsfsFileHandle::by_id(ns_id).open(FD_NSFS_ROOT)
}

/// The largest id buffer [`listns_raw`] allocates (entries); a larger
/// capacity is clamped to it (`nr_ns_ids` is passed as given).
pub const RAW_MAX_CAPACITY: usize = 1 << 16;

/// What [`listns_raw`] prefills the id buffer with: an entry still holding
/// it after the call was not written by the kernel.
pub const RAW_UNWRITTEN: u64 = 0x5a5a_5a5a_5a5a_5a5a;

/// The request pointer of [`listns_raw`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RawReq {
    /// NULL.
    Null,
    /// An address in an unmapped (`PROT_NONE`) page.
    Unmapped,
    /// These bytes, ending right before a guard page (whatever their
    /// `size` field says, reading past them faults).
    Bytes(Vec<u8>),
}

/// The id buffer of [`listns_raw`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RawIds {
    /// NULL.
    Null,
    /// An address in an unmapped (`PROT_NONE`) page.
    Unmapped,
    /// A buffer of this many ids (at most [`RAW_MAX_CAPACITY`]), ending right
    /// before a guard page, prefilled with [`RAW_UNWRITTEN`].
    Capacity(usize),
}

/// What [`listns_raw`] observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawOutcome {
    /// The return value, or the errno.
    pub result: Result<usize, i32>,
    /// The whole id buffer after the call (empty unless [`RawIds::Capacity`]):
    /// entries the kernel did not write hold [`RAW_UNWRITTEN`].
    pub ids: Vec<u64>,
}

/// listns(2) with arbitrary arguments, memory-safe whatever they are.
pub fn listns_raw(req: &RawReq, ids: RawIds, nr_ns_ids: usize, flags: u32) -> Result<RawOutcome, Errno> {
    let req_area = match req {
        RawReq::Bytes(b) => Some(Guarded::new(b.len())?),
        RawReq::Null => None,
        RawReq::Unmapped => Some(Guarded::new(0)?),
    };
    let req_ptr: *const u8 = match (req, &req_area) {
        (RawReq::Bytes(b), Some(g)) => {
            g.data_mut().copy_from_slice(b);
            g.data_ptr()
        }
        (RawReq::Unmapped, Some(g)) => g.guard_ptr(),
        _ => std::ptr::null(),
    };
    let capacity = match ids {
        RawIds::Capacity(c) => c.min(RAW_MAX_CAPACITY),
        _ => 0,
    };
    let ids_area = match ids {
        RawIds::Null => None,
        _ => Some(Guarded::new(capacity * 8)?),
    };
    let ids_ptr: *mut u8 = match (ids, &ids_area) {
        (RawIds::Capacity(_), Some(g)) => {
            for chunk in g.data_mut().chunks_exact_mut(8) {
                chunk.copy_from_slice(&RAW_UNWRITTEN.to_ne_bytes());
            }
            g.data_ptr()
        }
        (RawIds::Unmapped, Some(g)) => g.guard_ptr(),
        _ => std::ptr::null_mut(),
    };
    // SAFETY: each pointer is NULL, inside a PROT_NONE guard page, or at the
    // start of a mapping of ours whose data ends exactly at such a guard
    // page; the kernel reads the request and writes the ids from their
    // start onwards, so anything beyond what we provided faults (EFAULT)
    // in the kernel rather than touching other memory. The mappings live
    // across the call.
    let ret = unsafe { libc::syscall(SYS_LISTNS, req_ptr, ids_ptr, nr_ns_ids, flags) };
    let result = Errno::result(ret).map(|n| n as usize).map_err(|e| e as i32);
    let ids = match (ids, &ids_area) {
        (RawIds::Capacity(_), Some(g)) => {
            g.data_mut().chunks_exact(8).map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes"))).collect()
        }
        _ => Vec::new(),
    };
    Ok(RawOutcome { result, ids })
}

/// An anonymous mapping whose last page is `PROT_NONE`, with `len` bytes of
/// data ending right before it.
struct Guarded {
    base: *mut u8,
    total: usize,
    data_len: usize,
    page: usize,
}

impl Guarded {
    fn new(len: usize) -> Result<Guarded, Errno> {
        // SAFETY: sysconf takes an integer.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let data_pages = len.div_ceil(page);
        let total = (data_pages + 1) * page;
        // SAFETY: a fresh private anonymous mapping, owned by the Guarded.
        let base = unsafe {
            libc::mmap(std::ptr::null_mut(), total, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
        };
        if base == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        let g = Guarded { base: base.cast(), total, data_len: len, page };
        // SAFETY: the last page lies inside the mapping just made.
        let ret = unsafe { libc::mprotect(g.guard_ptr().cast(), page, libc::PROT_NONE) };
        Errno::result(ret)?;
        Ok(g)
    }

    /// The first byte of the guard page.
    fn guard_ptr(&self) -> *mut u8 {
        // SAFETY: within the mapping (its last page).
        unsafe { self.base.add(self.total - self.page) }
    }

    /// The first data byte (data ends at the guard page).
    fn data_ptr(&self) -> *mut u8 {
        // SAFETY: within the mapping, `data_len` bytes before the guard page.
        unsafe { self.guard_ptr().sub(self.data_len) }
    }

    #[allow(clippy::mut_from_ref)]
    fn data_mut(&self) -> &mut [u8] {
        // SAFETY: `data_len` readable and writable bytes of a mapping only
        // this Guarded refers to; the callers above never hold two of these
        // slices at once, and none across the system call.
        unsafe { std::slice::from_raw_parts_mut(self.data_ptr(), self.data_len) }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`.
        unsafe { libc::munmap(self.base.cast(), self.total) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout_is_version_0() {
        assert_eq!(std::mem::size_of::<NsIdReq>(), NS_ID_REQ_SIZE_VER0 as usize);
        let b = NsIdReq::new(0x4000_0000, Owner::Current).after(7).to_bytes();
        assert_eq!(b.len(), 32);
        assert_eq!(u32::from_ne_bytes(b[0..4].try_into().unwrap()), 32);
        assert_eq!(u64::from_ne_bytes(b[8..16].try_into().unwrap()), 7);
        assert_eq!(u32::from_ne_bytes(b[16..20].try_into().unwrap()), 0x4000_0000);
        assert_eq!(u64::from_ne_bytes(b[24..32].try_into().unwrap()), u64::MAX);
    }

    #[test]
    fn guarded_buffers_end_at_the_guard() {
        for len in [0, 8, 4096, 4100] {
            let g = Guarded::new(len).unwrap();
            assert_eq!(g.data_mut().len(), len);
            assert_eq!(g.data_ptr() as usize + len, g.guard_ptr() as usize);
        }
    }
}
