//! File handles of name_to_handle_at(2) and open_by_handle_at(2): how
//! nsfs names a namespace by a handle (a namespace that is gone no longer
//! reopens) and how cases check that.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

use crate::sys;

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

impl FileHandle {
    /// name_to_handle_at(fd, "", AT_EMPTY_PATH): the handle of an open file.
    pub fn of(fd: impl AsFd) -> Result<FileHandle, Errno> {
        let fd = fd.as_fd();
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
    pub fn open(&self, root: RawFd) -> Result<OwnedFd, Errno> {
        self.open_with(root, libc::O_RDONLY | libc::O_CLOEXEC)
    }

    /// open_by_handle_at(root, handle, flags) with any open flags (for the
    /// flags open_by_handle_at(2) and nsfs refuse).
    pub fn open_with(&self, root: RawFd, flags: libc::c_int) -> Result<OwnedFd, Errno> {
        let handle = self;
        let mut raw =
            RawFileHandle { handle_bytes: handle.bytes.len() as u32, handle_type: handle.handle_type, f_handle: [0; MAX_HANDLE_SZ] };
        let len = handle.bytes.len().min(MAX_HANDLE_SZ);
        raw.f_handle[..len].copy_from_slice(&handle.bytes[..len]);
        // SAFETY: `raw` is a valid file_handle that lives across the call; the
        // other arguments are integers.
        let ret = unsafe { libc::syscall(libc::SYS_open_by_handle_at, root, &mut raw as *mut RawFileHandle, flags) };
        // SAFETY: open_by_handle_at returned a new fd that nothing else owns.
        Errno::result(ret).map(|fd| unsafe { sys::own_fd(fd as RawFd) })
    }
}
