//! The operations the suite measures, generated from the harness's kind
//! table, with the reason for every one it cannot measure here.

use harness::flags::NsFlags;
use harness::probe::KernelVersion;
use harness::{Kind, KINDS};
use serde::{Deserialize, Serialize};

/// One operation the measuring helper times, `iters` times in a loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    /// getppid(2): the cost of entering and leaving the kernel.
    NullSyscall,
    /// clone(2) (or clone3(2)) with `flags` | SIGCHLD, the child calling
    /// _exit(2) at once, then waitid(2). `flags == 0` is the fork baseline.
    Clone {
        /// CLONE_NEW* flags.
        flags: NsFlags,
        /// Use clone3(2): the only clone taking CLONE_NEWTIME.
        clone3: bool,
    },
    /// unshare(2) of `kind` in a fresh child, timing the syscall only.
    UnshareFresh {
        /// The kind.
        kind: Kind,
    },
    /// unshare(2) of `kind` again and again in one process (a user
    /// namespace gets its maps written each time, outside the timing).
    UnshareRepeated {
        /// The kind.
        kind: Kind,
    },
    /// setns(2) alternating between two namespaces of `kind`.
    SetnsToggle {
        /// The kind.
        kind: Kind,
    },
}

impl Operation {
    /// The kinds of namespace whose release is asynchronous (net, ipc) that
    /// the operation creates: the helper drains their backlog afterwards.
    pub fn async_teardown(self) -> Vec<Kind> {
        let flags = match self {
            Operation::NullSyscall => NsFlags::EMPTY,
            Operation::Clone { flags, .. } => flags,
            Operation::UnshareFresh { kind } | Operation::UnshareRepeated { kind } | Operation::SetnsToggle { kind } => kind.flag(),
        };
        flags.kinds().into_iter().filter(|k| ASYNC_TEARDOWN.contains(k)).collect()
    }
}

/// Kinds whose namespaces the kernel frees from a workqueue after the last
/// reference goes (`cleanup_net`, `free_ipc`), so waitpid returns first.
pub const ASYNC_TEARDOWN: [Kind; 2] = [Kind::Net, Kind::Ipc];

/// The kinds a container runtime asks for: all but time.
pub fn container_kinds() -> Vec<Kind> {
    Kind::ALL.into_iter().filter(|k| *k != Kind::Time).collect()
}

/// A benchmark: an operation with its criterion id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bench {
    /// Criterion group (`clone`).
    pub group: &'static str,
    /// Criterion function id within the group (`net`).
    pub name: String,
    /// What is measured, in words (for the report).
    pub what: String,
    /// The operation.
    pub op: Operation,
}

impl Bench {
    /// `group/name`: criterion's id and the report's figure id.
    pub fn id(&self) -> String {
        format!("{}/{}", self.group, self.name)
    }
}

/// An operation left out, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// Figure id it would have had.
    pub id: String,
    /// Why it is not measured.
    pub reason: String,
}

/// Group names, in suite order.
pub const GROUPS: [&str; 5] = ["baseline", "clone", "unshare_fresh", "unshare_repeated", "setns"];

/// Id of the fork baseline, the denominator of every ratio.
pub const FORK_ID: &str = "baseline/fork";

/// The whole suite for a kernel of version `running`: what to measure and
/// what to skip (with the reason), in report order.
pub fn catalogue(running: KernelVersion) -> (Vec<Bench>, Vec<Skip>) {
    let mut benches = vec![
        Bench { group: "baseline", name: "null_syscall".into(), what: "getppid(2)".into(), op: Operation::NullSyscall },
        Bench {
            group: "baseline",
            name: "fork".into(),
            what: "clone(SIGCHLD) + _exit + waitid (plain fork)".into(),
            op: Operation::Clone { flags: NsFlags::EMPTY, clone3: false },
        },
    ];
    let mut skips = Vec::new();
    let too_old = |info: &harness::kind::KindInfo| {
        (running < info.since).then(|| format!("{} needs Linux {} (running {running})", info.flag_name, info.since))
    };
    for info in &KINDS {
        let (k, flag) = (info.kind, info.flag_name);
        let call = if info.legacy_clone { "clone" } else { "clone3" };
        let entries = [
            (
                "clone",
                format!("{call}({flag}) + _exit + waitid (create = until {call} returns; exit_reap = the rest)"),
                Operation::Clone { flags: info.flag, clone3: !info.legacy_clone },
                None,
            ),
            ("unshare_fresh", format!("unshare({flag}) in a fresh child, syscall only"), Operation::UnshareFresh { kind: k }, None),
            (
                "unshare_repeated",
                format!("unshare({flag}) repeated in one process{}", if k == Kind::User { ", maps written between (untimed)" } else { "" }),
                Operation::UnshareRepeated { kind: k },
                (k == Kind::Pid).then(|| {
                    "a second unshare(CLONE_NEWPID) before any child is created fails with EINVAL: pid_for_children is \
                     already a new namespace (pid_namespaces(7))"
                        .to_string()
                }),
            ),
            (
                "setns",
                format!("setns(fd, {flag}) alternating between two namespaces"),
                Operation::SetnsToggle { kind: k },
                (k == Kind::User).then(|| {
                    "setns(2) into a user namespace needs CAP_SYS_ADMIN in the target, and a process that entered one has no \
                     capabilities in a sibling, so it cannot toggle between two (user_namespaces(7))"
                        .to_string()
                }),
            ),
        ];
        for (group, what, op, never) in entries {
            let bench = Bench { group, name: k.to_string(), what, op };
            match never.or_else(|| too_old(info)) {
                Some(reason) => skips.push(Skip { id: bench.id(), reason }),
                None => benches.push(bench),
            }
        }
    }
    let all = container_kinds();
    benches.push(Bench {
        group: "clone",
        name: "container".into(),
        what: format!("clone({}) + _exit + waitid: the set a container runtime uses", Kind::flags_of(&all)),
        op: Operation::Clone { flags: Kind::flags_of(&all), clone3: false },
    });
    // Suite order: by group, then kind table order.
    benches.sort_by_key(|b| GROUPS.iter().position(|g| *g == b.group));
    (benches, skips)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_measured_or_skipped_with_a_reason() {
        let (benches, skips) = catalogue(KernelVersion::new(6, 18));
        let ids: Vec<String> = benches.iter().map(Bench::id).chain(skips.iter().map(|s| s.id.clone())).collect();
        for group in ["clone", "unshare_fresh", "unshare_repeated", "setns"] {
            for k in Kind::ALL {
                assert!(ids.contains(&format!("{group}/{k}")), "{group}/{k} missing");
            }
        }
        assert_eq!(benches[1].id(), FORK_ID);
        assert!(skips.iter().all(|s| !s.reason.is_empty()));
        assert_eq!(skips.len(), 2, "{skips:?}");
        let time = benches.iter().find(|b| b.id() == "clone/time").unwrap();
        assert_eq!(time.op, Operation::Clone { flags: Kind::Time.flag(), clone3: true });
    }

    #[test]
    fn old_kernels_skip_new_kinds() {
        let (benches, skips) = catalogue(KernelVersion::new(5, 4));
        assert!(!benches.iter().any(|b| b.name == "time"));
        assert!(skips.iter().any(|s| s.id == "setns/time" && s.reason.contains("5.6")));
    }

    #[test]
    fn async_teardown_kinds() {
        assert_eq!(
            Operation::Clone { flags: Kind::flags_of(&container_kinds()), clone3: false }.async_teardown(),
            vec![Kind::Ipc, Kind::Net]
        );
        assert!(Operation::UnshareFresh { kind: Kind::Uts }.async_teardown().is_empty());
    }
}
