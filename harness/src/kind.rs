//! The eight namespace kinds: the one table that knows them (namespaces(7)).

use std::fmt;

use std::ops::BitOr;

use crate::flags::{FlagParseError, NsFlags};
use crate::version::KernelVersion;

/// A namespace type, as listed in namespaces(7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// cgroup_namespaces(7): the cgroup root directory.
    Cgroup,
    /// ipc_namespaces(7): System V IPC and POSIX message queues.
    Ipc,
    /// network_namespaces(7): devices, stacks, ports.
    Net,
    /// mount_namespaces(7): mount points (`/proc/[pid]/ns/mnt`).
    Mnt,
    /// pid_namespaces(7): process IDs.
    Pid,
    /// user_namespaces(7): user and group IDs.
    User,
    /// uts_namespaces(7): hostname and NIS domain name.
    Uts,
    /// time_namespaces(7): CLOCK_MONOTONIC and CLOCK_BOOTTIME offsets.
    Time,
}

/// What the kernel and the man pages say about one [`Kind`].
#[derive(Debug, Clone, Copy)]
pub struct KindInfo {
    /// The kind described.
    pub kind: Kind,
    /// Entry name under `/proc/[pid]/ns/`, also the `type` of the link text.
    pub proc_name: &'static str,
    /// The `CLONE_NEW*` flag (clone(2), unshare(2), setns(2), NS_GET_NSTYPE).
    pub flag: NsFlags,
    /// Name of the flag as the man pages spell it.
    pub flag_name: &'static str,
    /// Kernel release that introduced the kind with its `/proc/[pid]/ns` entry.
    pub since: KernelVersion,
    /// The man page that documents it.
    pub man_page: &'static str,
    /// The `/proc/[pid]/ns` entry naming the namespace of later children, for
    /// the kinds where unshare() moves only the children (pid, time).
    pub for_children: Option<&'static str>,
    /// Whether NS_GET_PARENT applies (pid and user namespaces nest).
    pub hierarchical: bool,
    /// File under `/proc/sys/user/` limiting how many may be created.
    pub max_sysctl: &'static str,
    /// Kernel release that introduced `max_sysctl`.
    pub max_sysctl_since: KernelVersion,
    /// Whether clone(2) (not clone3) can request it: CLONE_NEWTIME shares
    /// its bit with CSIGNAL, so only clone3(2) and unshare(2) take it.
    pub legacy_clone: bool,
    /// The kernel config option that builds it in (`None`: always there,
    /// as mount namespaces are).
    pub config: Option<&'static str>,
}

const fn kv(major: u32, minor: u32) -> KernelVersion {
    KernelVersion { major, minor, patch: 0 }
}

/// The table, in the order namespaces(7) lists the kinds.
pub const KINDS: [KindInfo; 8] = [
    KindInfo {
        kind: Kind::Cgroup,
        proc_name: "cgroup",
        flag: NsFlags::CGROUP,
        flag_name: "CLONE_NEWCGROUP",
        since: kv(4, 6),
        man_page: "cgroup_namespaces(7)",
        for_children: None,
        hierarchical: false,
        max_sysctl: "max_cgroup_namespaces",
        max_sysctl_since: kv(4, 9),
        legacy_clone: true,
        config: Some("CONFIG_CGROUPS"),
    },
    KindInfo {
        kind: Kind::Ipc,
        proc_name: "ipc",
        flag: NsFlags::IPC,
        flag_name: "CLONE_NEWIPC",
        since: kv(3, 0),
        man_page: "ipc_namespaces(7)",
        for_children: None,
        hierarchical: false,
        max_sysctl: "max_ipc_namespaces",
        max_sysctl_since: kv(4, 9),
        legacy_clone: true,
        config: Some("CONFIG_IPC_NS"),
    },
    KindInfo {
        kind: Kind::Net,
        proc_name: "net",
        flag: NsFlags::NET,
        flag_name: "CLONE_NEWNET",
        since: kv(3, 0),
        man_page: "network_namespaces(7)",
        for_children: None,
        hierarchical: false,
        max_sysctl: "max_net_namespaces",
        max_sysctl_since: kv(4, 9),
        legacy_clone: true,
        config: Some("CONFIG_NET_NS"),
    },
    KindInfo {
        kind: Kind::Mnt,
        proc_name: "mnt",
        flag: NsFlags::MNT,
        flag_name: "CLONE_NEWNS",
        since: kv(3, 8),
        man_page: "mount_namespaces(7)",
        for_children: None,
        hierarchical: false,
        max_sysctl: "max_mnt_namespaces",
        max_sysctl_since: kv(4, 9),
        legacy_clone: true,
        config: None,
    },
    KindInfo {
        kind: Kind::Pid,
        proc_name: "pid",
        flag: NsFlags::PID,
        flag_name: "CLONE_NEWPID",
        since: kv(3, 8),
        man_page: "pid_namespaces(7)",
        for_children: Some("pid_for_children"),
        hierarchical: true,
        max_sysctl: "max_pid_namespaces",
        max_sysctl_since: kv(4, 9),
        legacy_clone: true,
        config: Some("CONFIG_PID_NS"),
    },
    KindInfo {
        kind: Kind::User,
        proc_name: "user",
        flag: NsFlags::USER,
        flag_name: "CLONE_NEWUSER",
        since: kv(3, 8),
        man_page: "user_namespaces(7)",
        for_children: None,
        hierarchical: true,
        max_sysctl: "max_user_namespaces",
        max_sysctl_since: kv(4, 9),
        legacy_clone: true,
        config: Some("CONFIG_USER_NS"),
    },
    KindInfo {
        kind: Kind::Uts,
        proc_name: "uts",
        flag: NsFlags::UTS,
        flag_name: "CLONE_NEWUTS",
        since: kv(3, 0),
        man_page: "uts_namespaces(7)",
        for_children: None,
        hierarchical: false,
        max_sysctl: "max_uts_namespaces",
        max_sysctl_since: kv(4, 9),
        legacy_clone: true,
        config: Some("CONFIG_UTS_NS"),
    },
    KindInfo {
        kind: Kind::Time,
        proc_name: "time",
        flag: NsFlags::TIME,
        flag_name: "CLONE_NEWTIME",
        since: kv(5, 6),
        man_page: "time_namespaces(7)",
        for_children: Some("time_for_children"),
        hierarchical: false,
        max_sysctl: "max_time_namespaces",
        max_sysctl_since: kv(5, 7),
        legacy_clone: false,
        config: Some("CONFIG_TIME_NS"),
    },
];

/// `CLONE_NEWTIME` from `<linux/sched.h>` (0x80, equal to CSIGNAL's low bit).
pub const CLONE_NEWTIME: u64 = NsFlags::TIME.bits();

impl Kind {
    /// Every kind, in table order.
    pub const ALL: [Kind; 8] = [Kind::Cgroup, Kind::Ipc, Kind::Net, Kind::Mnt, Kind::Pid, Kind::User, Kind::Uts, Kind::Time];

    /// This kind's row of [`KINDS`].
    pub fn info(self) -> &'static KindInfo {
        // The table is in declaration order; a unit test keeps it so.
        &KINDS[self as usize]
    }

    /// Entry name under `/proc/[pid]/ns/`.
    pub fn proc_name(self) -> &'static str {
        self.info().proc_name
    }

    /// The `CLONE_NEW*` flag.
    pub fn flag(self) -> NsFlags {
        self.info().flag
    }

    /// The kind whose `/proc/[pid]/ns` entry (or link `type`) is `name`.
    pub fn from_proc_name(name: &str) -> Option<Kind> {
        KINDS.iter().find(|i| i.proc_name == name).map(|i| i.kind)
    }

    /// The kind whose `CLONE_NEW*` flag is exactly `flag` (NS_GET_NSTYPE).
    pub fn from_flag(flag: NsFlags) -> Option<Kind> {
        KINDS.iter().find(|i| i.flag == flag).map(|i| i.kind)
    }

    /// The union of the flags of `kinds`.
    pub fn flags_of(kinds: &[Kind]) -> NsFlags {
        kinds.iter().copied().collect()
    }

    /// The kinds whose flags are set in `flags`, in table order.
    pub fn in_flags(flags: NsFlags) -> Vec<Kind> {
        flags.kinds()
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.proc_name())
    }
}

impl NsFlags {
    /// The kinds whose flags are set, in table order.
    pub fn kinds(self) -> Vec<Kind> {
        Kind::ALL.into_iter().filter(|k| self.contains(k.flag())).collect()
    }
}

impl BitOr<Kind> for NsFlags {
    type Output = NsFlags;
    fn bitor(self, rhs: Kind) -> NsFlags {
        self.union(rhs.flag())
    }
}

impl From<Kind> for NsFlags {
    fn from(kind: Kind) -> NsFlags {
        kind.flag()
    }
}

impl FromIterator<Kind> for NsFlags {
    fn from_iter<I: IntoIterator<Item = Kind>>(iter: I) -> NsFlags {
        iter.into_iter().fold(NsFlags::EMPTY, |acc, k| acc | k.flag())
    }
}

/// Names the `CLONE_NEW*` bits, then any other bits in hex; `0` for an
/// empty set (the text of every report that names a flag set).
impl fmt::Display for NsFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = KINDS.iter().filter(|i| self.intersects(i.flag)).map(|i| i.flag_name.to_string()).collect();
        let rest = self.difference(NsFlags::ALL).bits();
        if rest != 0 {
            parts.push(format!("{rest:#x}"));
        }
        if parts.is_empty() {
            f.write_str("0")
        } else {
            f.write_str(&parts.join("|"))
        }
    }
}

/// Parses `uts|CLONE_NEWPID,net` or `0x20000000` into a flag set.
impl std::str::FromStr for NsFlags {
    type Err = FlagParseError;

    fn from_str(text: &str) -> Result<NsFlags, FlagParseError> {
        let mut flags = NsFlags::EMPTY;
        for word in text.split(['|', ',', '+']).map(str::trim).filter(|w| !w.is_empty()) {
            let bit = if let Some(hex) = word.strip_prefix("0x") {
                NsFlags::from_bits_retain(u64::from_str_radix(hex, 16).map_err(|_| FlagParseError(word.into()))?)
            } else if let Some(info) = KINDS.iter().find(|i| i.flag_name.eq_ignore_ascii_case(word) || i.proc_name == word) {
                info.flag
            } else {
                return Err(FlagParseError(word.into()));
            };
            flags |= bit;
        }
        Ok(flags)
    }
}

/// A file of `/proc/[pid]/ns/` (namespaces(7)): a kind's own entry, or
/// for pid and time the `*_for_children` entry naming the namespace the
/// process's later children get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct NsEntry {
    /// The namespace kind.
    pub kind: Kind,
    /// `pid_for_children` / `time_for_children` rather than the own entry
    /// (only pid and time have one).
    pub for_children: bool,
}

impl NsEntry {
    /// The ten entries: the eight own ones in table order, then
    /// `pid_for_children` and `time_for_children`.
    pub const ALL: [NsEntry; 10] = [
        NsEntry::own(Kind::Cgroup),
        NsEntry::own(Kind::Ipc),
        NsEntry::own(Kind::Net),
        NsEntry::own(Kind::Mnt),
        NsEntry::own(Kind::Pid),
        NsEntry::own(Kind::User),
        NsEntry::own(Kind::Uts),
        NsEntry::own(Kind::Time),
        NsEntry { kind: Kind::Pid, for_children: true },
        NsEntry { kind: Kind::Time, for_children: true },
    ];

    /// `/proc/[pid]/ns/<kind>`.
    pub const fn own(kind: Kind) -> NsEntry {
        NsEntry { kind, for_children: false }
    }

    /// The `*_for_children` entry of `kind` (pid, time), `None` for the
    /// kinds that have none.
    pub fn children_of(kind: Kind) -> Option<NsEntry> {
        kind.info().for_children.map(|_| NsEntry { kind, for_children: true })
    }

    /// The entry naming the namespace of `kind` that later children get:
    /// the `*_for_children` one where the kind has one, else its own.
    pub fn children_or_own(kind: Kind) -> NsEntry {
        NsEntry::children_of(kind).unwrap_or(NsEntry::own(kind))
    }

    /// Where a peer started by [`Spawn::new_ns`](crate::peer::Spawn::new_ns)
    /// shows its new namespace of `kind`: its own entry, or for time (made
    /// by unshare(2), which moves only the children) `time_for_children`.
    pub fn of_new_ns(kind: Kind) -> NsEntry {
        if kind.info().legacy_clone {
            NsEntry::own(kind)
        } else {
            NsEntry::children_or_own(kind)
        }
    }

    /// The file name: `uts`, `pid_for_children`, ...
    pub fn name(self) -> &'static str {
        let info = self.kind.info();
        match (self.for_children, info.for_children) {
            (true, Some(name)) => name,
            _ => info.proc_name,
        }
    }

    /// The entry whose file name is `name`.
    pub fn parse(name: &str) -> Option<NsEntry> {
        NsEntry::ALL.into_iter().find(|e| e.name() == name)
    }
}

impl From<Kind> for NsEntry {
    fn from(kind: Kind) -> NsEntry {
        NsEntry::own(kind)
    }
}

impl fmt::Display for NsEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no `/proc/[pid]/ns` entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no /proc/[pid]/ns entry is named {0:?}")]
pub struct UnknownEntry(pub String);

impl std::str::FromStr for NsEntry {
    type Err = UnknownEntry;

    fn from_str(name: &str) -> Result<NsEntry, UnknownEntry> {
        NsEntry::parse(name).ok_or_else(|| UnknownEntry(name.to_string()))
    }
}

/// An entry travels (between a case and its peers, in reports) as its name.
impl From<NsEntry> for String {
    fn from(entry: NsEntry) -> String {
        entry.name().to_string()
    }
}

impl TryFrom<String> for NsEntry {
    type Error = UnknownEntry;

    fn try_from(name: String) -> Result<NsEntry, UnknownEntry> {
        name.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_flags_serialise_as_names_and_bits() {
        for entry in NsEntry::ALL {
            let text = serde_json::to_string(&entry).unwrap();
            assert_eq!(text, format!("\"{}\"", entry.name()));
            assert_eq!(serde_json::from_str::<NsEntry>(&text).unwrap(), entry);
        }
        assert!(serde_json::from_str::<NsEntry>("\"nosuch\"").is_err());
        let flags = Kind::Uts.flag() | Kind::Time.flag();
        assert_eq!(serde_json::to_string(&flags).unwrap(), flags.bits().to_string());
        assert_eq!(serde_json::from_str::<crate::NsFlags>(&flags.bits().to_string()).unwrap(), flags);
    }

    #[test]
    fn table_order_matches_enum() {
        for (i, info) in KINDS.iter().enumerate() {
            assert_eq!(info.kind as usize, i);
            assert_eq!(Kind::ALL[i], info.kind);
            assert_eq!(Kind::from_proc_name(info.proc_name), Some(info.kind));
            assert_eq!(Kind::from_flag(info.flag), Some(info.kind));
            assert_eq!(info.max_sysctl, format!("max_{}_namespaces", info.proc_name));
        }
    }

    #[test]
    fn entries_round_trip() {
        for e in NsEntry::ALL {
            assert_eq!(NsEntry::parse(e.name()), Some(e));
            assert_eq!(e.to_string().parse::<NsEntry>(), Ok(e));
        }
        assert_eq!(NsEntry::children_of(Kind::Pid).unwrap().to_string(), "pid_for_children");
        assert_eq!(NsEntry::children_of(Kind::Uts), None);
        assert_eq!(NsEntry::of_new_ns(Kind::Time).name(), "time_for_children");
        assert_eq!(NsEntry::of_new_ns(Kind::Pid).name(), "pid");
        assert!("nosuch".parse::<NsEntry>().is_err());
    }

    #[test]
    fn flags_are_distinct_bits() {
        let all = Kind::flags_of(&Kind::ALL);
        assert_eq!(all.bits().count_ones(), 8);
        assert_eq!(Kind::in_flags(all), Kind::ALL.to_vec());
    }
}
