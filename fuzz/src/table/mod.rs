//! The table of documented outcomes that argument fuzzing checks against:
//! for each call, from its arguments and the running kernel, the errno
//! (or success) that the man pages and the kernel's own rules give.
//! Versioned where the kernel changed; every rule was checked by experiment
//! on 6.18 (see fuzz/README.md for the findings).
//!
//! The shared ground is here: the outcome type [`Expect`]; the rules read
//! the running system's facts from [`harness::host::Host`] (its
//! `clone3_newtime`, `at_least`, `known_ns_flags`, `lacks_any`) and name
//! the `CLONE_*` bits of [`harness::flags::clone`]. The rules themselves
//! are one module per family of calls: `process` (unshare, clone3,
//! setns), `ioctl` (ioctl_ns(2) and pidfd ioctls) and `listns`; their
//! items are re-exported here.

mod ioctl;
mod listns;
mod process;

use harness::Errno;

pub use ioctl::{ioctl_ns, ioctl_recognised, nsio, pidfd_ioctl};
pub use listns::{listns, LISTNS_TYPES};
pub use process::{clone3, setns, unshare, SetnsTarget, CLONE3_FUZZ_BITS};

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

/// Whether the caller is in the initial user namespace (its uid_map is the
/// identity over every id).
pub fn in_initial_user_ns() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| m.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
}

/// A host of release `major.minor.patch` with every kind built in, for the
/// tables' tests.
#[cfg(test)]
fn test_host(major: u32, minor: u32, patch: u32) -> harness::host::Host {
    harness::host::Host::with(harness::probe::KernelVersion::stable(major, minor, patch), [true; 8], true)
}
