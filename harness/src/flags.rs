//! `CLONE_NEW*` flag sets (clone(2), unshare(2), setns(2)): the typed
//! [`NsFlags`] and the raw `CLONE_*` bits. What needs the kind table (the
//! kinds of a set, printing and parsing by name) is implemented in
//! [`crate::kind`], which this module does not import.

use std::fmt;
use std::ops::{BitAnd, BitAndAssign, BitOr, BitOrAssign, Sub};

/// A set of `CLONE_NEW*` bits as clone(2), unshare(2) and setns(2) take
/// them. Built from kinds it holds only namespace bits; built with
/// [`NsFlags::from_bits_retain`] it may hold any bits (invalid-argument
/// cases and the fuzz suite).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct NsFlags(u64);

impl NsFlags {
    /// No flags (also setns(2)'s nstype 0: "any type").
    pub const EMPTY: NsFlags = NsFlags(0);
    /// `CLONE_NEWCGROUP` (cgroup_namespaces(7)).
    pub const CGROUP: NsFlags = NsFlags(clone::NEWCGROUP);
    /// `CLONE_NEWIPC` (ipc_namespaces(7)).
    pub const IPC: NsFlags = NsFlags(clone::NEWIPC);
    /// `CLONE_NEWNET` (network_namespaces(7)).
    pub const NET: NsFlags = NsFlags(clone::NEWNET);
    /// `CLONE_NEWNS` (mount_namespaces(7)).
    pub const MNT: NsFlags = NsFlags(clone::NEWNS);
    /// `CLONE_NEWPID` (pid_namespaces(7)).
    pub const PID: NsFlags = NsFlags(clone::NEWPID);
    /// `CLONE_NEWUSER` (user_namespaces(7)).
    pub const USER: NsFlags = NsFlags(clone::NEWUSER);
    /// `CLONE_NEWUTS` (uts_namespaces(7)).
    pub const UTS: NsFlags = NsFlags(clone::NEWUTS);
    /// `CLONE_NEWTIME` (time_namespaces(7)); equal to CSIGNAL's bit 0x80.
    pub const TIME: NsFlags = NsFlags(clone::NEWTIME);
    /// The eight namespace flags.
    pub const ALL: NsFlags = NsFlags(
        clone::NEWCGROUP | clone::NEWIPC | clone::NEWNET | clone::NEWNS | clone::NEWPID | clone::NEWUSER | clone::NEWUTS | clone::NEWTIME,
    );

    /// The flag word as the system calls take it.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Any bits, unchecked: for raw and invalid-argument use.
    pub const fn from_bits_retain(bits: u64) -> NsFlags {
        NsFlags(bits)
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: NsFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether some bit of `other` is set.
    pub const fn intersects(self, other: NsFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The bits of either.
    pub const fn union(self, other: NsFlags) -> NsFlags {
        NsFlags(self.0 | other.0)
    }

    /// The bits of `self` that `other` does not have.
    pub const fn difference(self, other: NsFlags) -> NsFlags {
        NsFlags(self.0 & !other.0)
    }
}

impl BitOr for NsFlags {
    type Output = NsFlags;
    fn bitor(self, rhs: NsFlags) -> NsFlags {
        self.union(rhs)
    }
}

impl BitOrAssign for NsFlags {
    fn bitor_assign(&mut self, rhs: NsFlags) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for NsFlags {
    type Output = NsFlags;
    fn bitand(self, rhs: NsFlags) -> NsFlags {
        NsFlags(self.0 & rhs.0)
    }
}

impl BitAndAssign for NsFlags {
    fn bitand_assign(&mut self, rhs: NsFlags) {
        self.0 &= rhs.0;
    }
}

impl Sub for NsFlags {
    type Output = NsFlags;
    fn sub(self, rhs: NsFlags) -> NsFlags {
        self.difference(rhs)
    }
}

impl fmt::Debug for NsFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NsFlags({self})")
    }
}

/// Why a flag list did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid namespace flag {0:?}: expected a kind (cgroup, ipc, net, mnt, pid, user, uts, time), a CLONE_NEW* name, or a hex number")]
pub struct FlagParseError(pub String);

/// The `CLONE_*` bits of `<linux/sched.h>` as raw words (clone(2),
/// clone3(2)), for tables and fuzzers that name bits other than the
/// namespace ones.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::Kind;

    #[test]
    fn round_trips() {
        let all = Kind::flags_of(&Kind::ALL);
        assert_eq!(all, NsFlags::ALL);
        assert_eq!(all.to_string().parse::<NsFlags>().unwrap(), all);
        assert_eq!(NsFlags::EMPTY.to_string(), "0");
        assert_eq!((Kind::Uts.flag() | NsFlags::from_bits_retain(0x1)).to_string(), "CLONE_NEWUTS|0x1");
        assert_eq!("uts|pid".parse::<NsFlags>().unwrap(), Kind::Uts.flag() | Kind::Pid.flag());
        assert!("nosuch".parse::<NsFlags>().is_err());
        assert!("0xzz".parse::<NsFlags>().is_err());
    }

    #[test]
    fn matches_libc() {
        for (ours, libc) in [
            (NsFlags::CGROUP, libc::CLONE_NEWCGROUP),
            (NsFlags::IPC, libc::CLONE_NEWIPC),
            (NsFlags::NET, libc::CLONE_NEWNET),
            (NsFlags::MNT, libc::CLONE_NEWNS),
            (NsFlags::PID, libc::CLONE_NEWPID),
            (NsFlags::USER, libc::CLONE_NEWUSER),
            (NsFlags::UTS, libc::CLONE_NEWUTS),
        ] {
            assert_eq!(ours.bits(), libc as u32 as u64);
        }
        assert_eq!([Kind::Uts, Kind::Pid].into_iter().collect::<NsFlags>().kinds(), vec![Kind::Pid, Kind::Uts]);
    }
}
