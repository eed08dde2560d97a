//! The steps of a scenario: the concrete [`Action`]s the rules engine
//! ([`super::rules`]) resolves each [`Op`](super::ops::Op) into, which the
//! world ([`super::world`]) carries out, and the outcome the model
//! expects of each ([`Expect`]).

use harness::flags::NsFlags;
use harness::{Errno, Kind, NsEntry};
use serde::{Deserialize, Serialize};

/// A concrete step for the world, resolved from an [`Op`](super::ops::Op).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Start a process.
    Spawn {
        /// Slot.
        slot: usize,
        /// CLONE_NEW* flags.
        flags: NsFlags,
        /// fork + unshare rather than clone.
        via_unshare: bool,
        /// As uid 1.
        uid1: bool,
    },
    /// Kill and reap a process.
    Exit {
        /// Slot.
        slot: usize,
    },
    /// A process unshares.
    Unshare {
        /// Slot.
        slot: usize,
        /// CLONE_NEW* flags.
        flags: NsFlags,
    },
    /// A process joins the namespace of one of its fds.
    Setns {
        /// Slot.
        slot: usize,
        /// Index in its fds.
        fd: usize,
    },
    /// The agent opens a process's namespace entry.
    OpenFd {
        /// Slot.
        slot: usize,
        /// Entry under `/proc/<pid>/ns`.
        entry: NsEntry,
    },
    /// The agent closes one of its fds.
    CloseFd {
        /// Index.
        fd: usize,
    },
    /// The agent bind-mounts a process's namespace entry.
    Bind {
        /// Slot.
        slot: usize,
        /// Entry.
        entry: NsEntry,
    },
    /// The agent removes one of its bind mounts.
    Unmount {
        /// Index.
        mount: usize,
    },
    /// The agent sets a limit in U1.
    SetLimit {
        /// Kind.
        kind: Kind,
        /// Value.
        value: u32,
    },
}

/// What the model says an action returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Success.
    Ok,
    /// This errno.
    Err(Errno),
    /// Success, or this errno from a known kernel deviation.
    OkOr(Errno),
    /// Either errno: two documented refusals apply and kernels check them
    /// in different orders.
    EitherErr(Errno, Errno),
}

impl Expect {
    /// Whether `got` is this outcome.
    pub fn admits(self, got: Result<(), Errno>) -> bool {
        match self {
            Expect::Ok => got.is_ok(),
            Expect::Err(e) => got == Err(e),
            Expect::OkOr(e) => got.is_ok() || got == Err(e),
            Expect::EitherErr(a, b) => got == Err(a) || got == Err(b),
        }
    }
}
