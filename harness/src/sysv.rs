//! System V IPC objects by key (svipc(7)): creating, looking up and removing
//! shared memory segments, semaphore sets and message queues, for the IPC
//! namespace cases (ipc_namespaces(7)).

use nix::errno::Errno;

/// The three kinds of System V IPC object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysvKind {
    /// shmget(2): a shared memory segment (one page).
    Shm,
    /// semget(2): a semaphore set (one semaphore).
    Sem,
    /// msgget(2): a message queue.
    Msg,
}

impl SysvKind {
    /// The three kinds.
    pub const ALL: [SysvKind; 3] = [SysvKind::Shm, SysvKind::Sem, SysvKind::Msg];

    /// The file under `/proc/sysvipc/` listing the objects of the reader's
    /// IPC namespace.
    pub fn proc_name(self) -> &'static str {
        match self {
            SysvKind::Shm => "shm",
            SysvKind::Sem => "sem",
            SysvKind::Msg => "msg",
        }
    }

    fn get(self, key: i32, flags: i32) -> Result<i32, Errno> {
        // SAFETY: the *get calls take integers only and touch no memory of ours.
        let ret = unsafe {
            match self {
                SysvKind::Shm => libc::shmget(key, 4096, flags),
                SysvKind::Sem => libc::semget(key, 1, flags),
                SysvKind::Msg => libc::msgget(key, flags),
            }
        };
        Errno::result(ret)
    }

    /// Creates an object with `key` (IPC_CREAT | IPC_EXCL, mode 0600) in the
    /// caller's IPC namespace; returns its id.
    pub fn create(self, key: i32) -> Result<i32, Errno> {
        self.get(key, libc::IPC_CREAT | libc::IPC_EXCL | 0o600)
    }

    /// Looks up the object with `key` without creating it: ENOENT if the
    /// caller's IPC namespace has none.
    pub fn lookup(self, key: i32) -> Result<i32, Errno> {
        self.get(key, 0)
    }

    /// Removes object `id` (IPC_RMID).
    pub fn remove(self, id: i32) -> Result<(), Errno> {
        // SAFETY: IPC_RMID reads no argument buffer: a null pointer is what
        // shmctl(2), semctl(2) and msgctl(2) document for it.
        let ret = unsafe {
            match self {
                SysvKind::Shm => libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()),
                SysvKind::Sem => libc::semctl(id, 0, libc::IPC_RMID),
                SysvKind::Msg => libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()),
            }
        };
        Errno::result(ret).map(drop)
    }
}

/// The keys listed in `/proc/sysvipc/<kind>` for the reader's IPC namespace.
pub fn listed_keys(kind: SysvKind) -> std::io::Result<Vec<i32>> {
    let text = std::fs::read_to_string(format!("/proc/sysvipc/{}", kind.proc_name()))?;
    Ok(text.lines().skip(1).filter_map(|l| l.split_whitespace().next()?.parse().ok()).collect())
}
