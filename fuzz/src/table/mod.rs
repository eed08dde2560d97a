//! The table of documented outcomes that argument fuzzing checks against:
//! for each call, from its arguments and the running kernel, the errno
//! (or success) that the man pages and the kernel's own rules give.
//! Versioned where the kernel changed; every rule was checked by experiment
//! on 6.18 (see fuzz/README.md for the findings).
//!
//! The shared ground is here: the `CLONE_*` bits, the outcome type
//! [`Expect`] and the [`Host`] facts the rules read. The rules themselves
//! are one module per family of calls: `process` (unshare, clone3,
//! setns), `ioctl` (ioctl_ns(2) and pidfd ioctls) and `listns`; their
//! items are re-exported here.

mod ioctl;
mod listns;
mod process;

use harness::known::CLONE3_NEWTIME_EINVAL;
use harness::probe::KernelVersion;
use harness::{Errno, Kind};

pub use ioctl::{ioctl_ns, ioctl_recognised, ioctl_returns_fd, nsio, pidfd_ioctl};
pub use listns::{listns, LISTNS_TYPES};
pub use process::{clone3, setns, unshare, SetnsTarget, CLONE3_FUZZ_BITS};

/// `CLONE_*` bits of `<linux/sched.h>` that the tables name.
#[allow(missing_docs)]
pub mod clone {
    pub const CSIGNAL: u64 = 0xff;
    pub const VM: u64 = 0x100;
    pub const FS: u64 = 0x200;
    pub const FILES: u64 = 0x400;
    pub const SIGHAND: u64 = 0x800;
    pub const PIDFD: u64 = 0x1000;
    pub const PTRACE: u64 = 0x2000;
    pub const VFORK: u64 = 0x4000;
    pub const PARENT: u64 = 0x8000;
    pub const THREAD: u64 = 0x10000;
    pub const NEWNS: u64 = 0x20000;
    pub const SYSVSEM: u64 = 0x40000;
    pub const SETTLS: u64 = 0x80000;
    pub const PARENT_SETTID: u64 = 0x100000;
    pub const CHILD_CLEARTID: u64 = 0x200000;
    pub const DETACHED: u64 = 0x400000;
    pub const UNTRACED: u64 = 0x800000;
    pub const CHILD_SETTID: u64 = 0x1000000;
    pub const NEWCGROUP: u64 = 0x2000000;
    pub const NEWUTS: u64 = 0x4000000;
    pub const NEWIPC: u64 = 0x8000000;
    pub const NEWUSER: u64 = 0x10000000;
    pub const NEWPID: u64 = 0x20000000;
    pub const NEWNET: u64 = 0x40000000;
    pub const IO: u64 = 0x80000000;
    pub const NEWTIME: u64 = 0x80;
    pub const CLEAR_SIGHAND: u64 = 1 << 32;
    pub const INTO_CGROUP: u64 = 1 << 33;
}

/// A documented outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The call succeeds.
    Ok,
    /// The call fails with this errno.
    Err(Errno),
    /// The request is recognised: anything but ENOTTY. ioctl(2): "ENOTTY
    /// The specified request does not apply to the kind of object that the
    /// file descriptor fd references"; a recognised request's own outcome
    /// (a new fd, EPERM outside the caller's namespace scope, EINVAL on a
    /// kind it does not apply to, EFAULT for the null argument) depends on
    /// the fd's kind and scope and is checked exactly by the ioctl_ns and
    /// identity cases. Which outcomes happened is reported as a note
    /// (`ioctl_recognised_results`).
    NotEnotty,
    /// The documented errno, on a kernel where the known deviation of this
    /// id ([`harness::known`]) applies: any outcome is admitted (counted in
    /// the note `known_deviation_results`), and the deviation's dedicated
    /// case reports it.
    ErrOrKnownDeviation(Errno, &'static str),
}

impl Expect {
    /// Whether `got` (an errno or success) is this outcome.
    pub fn admits(self, got: Result<(), Errno>) -> bool {
        match self {
            Expect::Ok => got.is_ok(),
            Expect::Err(e) => got == Err(e),
            Expect::NotEnotty => got != Err(Errno::ENOTTY),
            Expect::ErrOrKnownDeviation(..) => true,
        }
    }
}

/// What the table needs to know of the running system.
#[derive(Debug, Clone, Copy)]
pub struct Host {
    /// Running kernel (its upstream release).
    pub kernel: KernelVersion,
    /// Kinds built into the kernel ([`harness::runner::Host`]: its config
    /// where readable, else its `/proc/self/ns` entries).
    pub kinds: [bool; 8],
    /// Whether clone3(2) takes CLONE_NEWTIME, as clone(2) documents: on
    /// every kernel but those where the known deviation
    /// [`CLONE3_NEWTIME_EINVAL`] applies (5.6 to 6.2 before the stable
    /// backports of a402f1e35313). A versioned expectation, decided by the
    /// release and never by calling clone3: a kernel inside that range that
    /// takes the flag, or one outside it that refuses it, fails.
    pub clone3_newtime: bool,
}

impl Host {
    /// The running system, from the harness's one probe of it.
    pub fn probe() -> Host {
        let h = harness::runner::Host::running();
        Host { kernel: h.kernel, kinds: h.kinds, clone3_newtime: !CLONE3_NEWTIME_EINVAL.applies.here() }
    }

    /// Whether the kernel is at least `major.minor`.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        self.kernel >= KernelVersion::new(major, minor)
    }

    /// The `CLONE_NEW*` flags this kernel knows (the kind exists in this
    /// release) and has compiled in.
    pub fn known_ns_flags(&self) -> u64 {
        Kind::ALL.into_iter().filter(|k| self.kernel >= k.info().since).map(Kind::flag).fold(0, |a, b| a | b)
    }

    fn compiled_out(&self, flags: u64) -> bool {
        Kind::ALL.into_iter().any(|k| flags & k.flag() != 0 && !self.kinds[k as usize])
    }
}

/// Whether the caller is in the initial user namespace (its uid_map is the
/// identity over every id).
pub fn in_initial_user_ns() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| m.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
}

/// A host of release `major.minor.patch` with every kind built in, for the
/// tables' tests.
#[cfg(test)]
fn test_host(major: u32, minor: u32, patch: u32) -> Host {
    Host { kernel: KernelVersion::stable(major, minor, patch), kinds: [true; 8], clone3_newtime: true }
}
