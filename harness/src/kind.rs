//! The eight namespace kinds: the one table that knows them (namespaces(7)).

use std::fmt;

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
    pub flag: u64,
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
        flag: libc::CLONE_NEWCGROUP as u64,
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
        flag: libc::CLONE_NEWIPC as u64,
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
        flag: libc::CLONE_NEWNET as u64,
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
        flag: libc::CLONE_NEWNS as u64,
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
        flag: libc::CLONE_NEWPID as u64,
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
        flag: libc::CLONE_NEWUSER as u64,
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
        flag: libc::CLONE_NEWUTS as u64,
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
        flag: CLONE_NEWTIME,
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
pub const CLONE_NEWTIME: u64 = 0x80;

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
    pub fn flag(self) -> u64 {
        self.info().flag
    }

    /// The kind whose `/proc/[pid]/ns` entry (or link `type`) is `name`.
    pub fn from_proc_name(name: &str) -> Option<Kind> {
        KINDS.iter().find(|i| i.proc_name == name).map(|i| i.kind)
    }

    /// The kind whose `CLONE_NEW*` flag is exactly `flag` (NS_GET_NSTYPE).
    pub fn from_flag(flag: u64) -> Option<Kind> {
        KINDS.iter().find(|i| i.flag == flag).map(|i| i.kind)
    }

    /// The union of the flags of `kinds`.
    pub fn flags_of(kinds: &[Kind]) -> u64 {
        kinds.iter().fold(0, |acc, k| acc | k.flag())
    }

    /// The kinds whose flags are set in `flags`, in table order.
    pub fn in_flags(flags: u64) -> Vec<Kind> {
        Kind::ALL.into_iter().filter(|k| flags & k.flag() != 0).collect()
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.proc_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn flags_are_distinct_bits() {
        let all = Kind::flags_of(&Kind::ALL);
        assert_eq!(all.count_ones(), 8);
        assert_eq!(Kind::in_flags(all), Kind::ALL.to_vec());
    }
}
