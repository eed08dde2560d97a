//! The entries of DEVIATIONS.md: every known deviation of
//! `harness::known` and the undocumented behaviours the suites pinned
//! down, each with the matrix rows that observe it and its reproducer
//! under `deviations/`.

use harness::known::{self, Deviation};
use harness::probe::KernelVersion;

/// How a matrix row's outcome reads for an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// A strict case with a known deviation: `dev` is DEVIATES, `pass`
    /// CONFORMS.
    Strict,
    /// A case or fuzz row that pins the kernel's behaviour, which differs
    /// from the man page's words: `pass` is DEVIATES.
    Pinned,
}

/// A span of upstream releases, `from` up to (not including) `until`.
pub type Range = (KernelVersion, Option<KernelVersion>);

/// One entry of DEVIATIONS.md.
#[derive(Debug)]
pub struct Entry {
    /// Stable id: the registry's id for a known deviation, and the stem of
    /// the reproducer `deviations/<id>.c`.
    pub id: &'static str,
    /// The registry entry, for a known deviation.
    pub known: Option<&'static Deviation>,
    /// One line saying what is at stake.
    pub title: &'static str,
    /// CLAIMS.md ids it bears on (may be empty for undocumented behaviour).
    pub claims: &'static [&'static str],
    /// The man page's words, as short quotes with the page named.
    pub man_page: &'static str,
    /// What the kernels do (for a known deviation: the registry's text).
    pub finding: &'static str,
    /// Matrix rows (case or fuzz ids) that observe it, and how they read.
    pub rows: &'static [&'static str],
    /// How [`Entry::rows`] read.
    pub reading: Reading,
    /// Where the reproducer is expected to say DEVIATES (for a known
    /// deviation with a kernel range: the registry's spans).
    pub deviates_on: &'static [Range],
    /// A further condition for DEVIATES, as `deviations/run.sh` tests it
    /// (`cpus>1`), if any.
    pub condition: Option<&'static str>,
    /// Whether the reproducer may see CONFORMS where it applies (a race).
    pub intermittent: bool,
    /// Who can run the reproducer.
    pub needs: &'static str,
    /// Upstream references (for a known deviation: the registry's).
    pub upstream: &'static [&'static str],
}

impl Entry {
    /// The matrix row the reproducer's own run produces.
    pub fn reproducer_row(&self) -> String {
        format!("deviations.{}", self.id)
    }

    /// Whether the reproducer should say DEVIATES on `k` (the condition
    /// aside).
    pub fn deviates(&self, k: KernelVersion) -> bool {
        self.deviates_on.iter().any(|(from, until)| k >= *from && until.map_or(true, |u| k < u))
    }

    /// The span list as `deviations/expected.tsv` writes it.
    pub fn spans_text(&self) -> String {
        let spans: Vec<String> =
            self.deviates_on.iter().map(|(from, until)| format!("{}-{}", full(*from), until.map(full).unwrap_or_default())).collect();
        if spans.is_empty() {
            "none".into()
        } else {
            spans.join(",")
        }
    }

    /// The spans in words, for DEVIATES.md.
    pub fn spans_words(&self) -> String {
        let spans: Vec<String> = self
            .deviates_on
            .iter()
            .map(|(from, until)| match until {
                None => format!("{from} and newer"),
                Some(u) => format!("{from} up to (not including) {u}"),
            })
            .collect();
        let mut s = if spans.is_empty() { "no kernel".to_string() } else { format!("Linux {}", spans.join(", ")) };
        if let Some(c) = self.condition {
            s.push_str(&format!(", where {c}"));
        }
        s
    }
}

/// `a.b.c` with the patch level always written.
fn full(k: KernelVersion) -> String {
    format!("{}.{}.{}", k.major, k.minor, k.patch)
}

const fn v(major: u32, minor: u32) -> KernelVersion {
    KernelVersion::new(major, minor)
}

const fn s(major: u32, minor: u32, patch: u32) -> KernelVersion {
    KernelVersion::stable(major, minor, patch)
}

/// Every entry, in the order of DEVIATIONS.md: the registry's first.
pub static ENTRIES: &[Entry] = &[
    Entry {
        id: "mqueue_mount_does_not_pin_ipc",
        known: Some(&known::MQUEUE_MOUNT_DOES_NOT_PIN_IPC),
        title: "an mqueue mount does not keep its IPC namespace alive",
        claims: &["F6"],
        man_page: "namespaces(7), \"The namespace lifetime\": a namespace stays alive while \"It is an IPC namespace, and a \
corresponding mount of an mqueue filesystem (see mq_overview(7)) refers to this namespace.\"",
        finding: known::MQUEUE_MOUNT_DOES_NOT_PIN_IPC.text,
        rows: &["lifetime.mqueue_mount_keeps_ipc"],
        reading: Reading::Strict,
        deviates_on: &[(v(5, 10), None)],
        condition: None,
        intermittent: false,
        needs: "any uid (a user namespace of its own; Linux 4.9+)",
        upstream: known::MQUEUE_MOUNT_DOES_NOT_PIN_IPC.upstream,
    },
    Entry {
        id: "clone3_newtime_einval",
        known: Some(&known::CLONE3_NEWTIME_EINVAL),
        title: "clone3() refused CLONE_NEWTIME",
        claims: &["A1"],
        man_page: "clone(2) lists \"CLONE_NEWTIME (since Linux 5.6)\" among the flags of clone3().",
        finding: known::CLONE3_NEWTIME_EINVAL.text,
        rows: &["create.clone3.time", "create.clone3.user_and.time"],
        reading: Reading::Strict,
        deviates_on: &[
            (v(5, 6), Some(s(5, 10, 175))),
            (v(5, 11), Some(s(5, 15, 103))),
            (v(5, 16), Some(s(6, 1, 20))),
            (v(6, 2), Some(s(6, 2, 7))),
        ],
        condition: None,
        intermittent: false,
        needs: "any uid (clone3 with CLONE_NEWUSER)",
        upstream: known::CLONE3_NEWTIME_EINVAL.upstream,
    },
    Entry {
        id: "pid_for_children_opens_early",
        known: Some(&known::PID_FOR_CHILDREN_OPENS_EARLY),
        title: "pid_for_children opens before the first child (also an undocumented change the fuzz model pins)",
        claims: &["A3"],
        man_page: "namespaces(7), /proc/[pid]/ns/pid_for_children: \"The symbolic link gains a value only after the first \
child process is created in the namespace.\"",
        finding: known::PID_FOR_CHILDREN_OPENS_EARLY.text,
        rows: &["identity.for_children.pid"],
        reading: Reading::Strict,
        deviates_on: &[(v(6, 19), None)],
        condition: None,
        intermittent: false,
        needs: "any uid",
        upstream: known::PID_FOR_CHILDREN_OPENS_EARLY.upstream,
    },
    Entry {
        id: "mnt_ns_loop_per_cpu_ids",
        known: Some(&known::MNT_NS_LOOP_PER_CPU_IDS),
        title: "binds of a newer mount namespace's file refused at random",
        claims: &["F2", "N2"],
        man_page: "namespaces(7): \"Bind mounting (see mount(2)) one of the files in this directory to somewhere else in the \
filesystem keeps the corresponding namespace of the process specified by pid alive\".",
        finding: known::MNT_NS_LOOP_PER_CPU_IDS.text,
        rows: &["fuzz.known.mnt_ns_bind_newer"],
        reading: Reading::Strict,
        deviates_on: &[(v(6, 18), Some(v(6, 19)))],
        condition: Some("cpus>1"),
        intermittent: false,
        needs: "any uid",
        upstream: known::MNT_NS_LOOP_PER_CPU_IDS.upstream,
    },
    Entry {
        id: "ns_mnt_ioctl_number_only",
        known: Some(&known::NS_MNT_IOCTL_NUMBER_ONLY),
        title: "NS_MNT_GET_* dispatched on the request number alone",
        claims: &["A4"],
        man_page: "ioctl(2): ENOTTY when \"The specified request does not apply to the kind of object that the file \
descriptor fd references.\"",
        finding: known::NS_MNT_IOCTL_NUMBER_ONLY.text,
        rows: &["fuzz.known.ns_mnt_request_number_only"],
        reading: Reading::Strict,
        deviates_on: &[(v(6, 12), Some(v(6, 18)))],
        condition: None,
        intermittent: false,
        needs: "any uid",
        upstream: known::NS_MNT_IOCTL_NUMBER_ONLY.upstream,
    },
    Entry {
        id: "pidfd_info_request_number_only",
        known: Some(&known::PIDFD_INFO_REQUEST_NUMBER_ONLY),
        title: "PIDFD_GET_INFO dispatched on the request number alone",
        claims: &["X3"],
        man_page: "ioctl(2): ENOTTY when \"The specified request does not apply to the kind of object that the file \
descriptor fd references.\"",
        finding: known::PIDFD_INFO_REQUEST_NUMBER_ONLY.text,
        rows: &["fuzz.known.pidfd_info_request_number_only"],
        reading: Reading::Strict,
        deviates_on: &[(v(6, 13), Some(v(6, 18)))],
        condition: None,
        intermittent: false,
        needs: "any uid (Linux 5.3+)",
        upstream: known::PIDFD_INFO_REQUEST_NUMBER_ONLY.upstream,
    },
    Entry {
        id: "listns_resume_stops_at_inactive",
        known: Some(&known::LISTNS_RESUME_STOPS_AT_INACTIVE),
        title: "a resumed listns() ends at a namespace that just went inactive",
        claims: &["X5"],
        man_page: "listns(2) has no man page yet; CLAIMS X5 (from the kernel's selftests and commit 76b6f5dfb3fd): \
listns lists the active namespaces \"in increasing id order, resumable from the last id\".",
        finding: known::LISTNS_RESUME_STOPS_AT_INACTIVE.text,
        rows: &["listns.pagination.user", "listns.pagination.net"],
        reading: Reading::Strict,
        deviates_on: &[(v(6, 19), None)],
        condition: None,
        intermittent: true,
        needs: "root (Linux 6.19+)",
        upstream: known::LISTNS_RESUME_STOPS_AT_INACTIVE.upstream,
    },
    Entry {
        id: "listns_pid_parent_not_kept_active",
        known: Some(&known::LISTNS_PID_PARENT_NOT_KEPT_ACTIVE),
        title: "an active child pid namespace does not keep its parent active",
        claims: &["X6"],
        man_page: "listns(2) has no man page yet; CLAIMS X6 (from the kernel's selftests): \"a namespace is active while a \
process, an nsfs fd or bind mount, or an active namespace it owns or parents holds it\".",
        finding: known::LISTNS_PID_PARENT_NOT_KEPT_ACTIVE.text,
        rows: &["listns.active.parent_pid_namespace"],
        reading: Reading::Strict,
        deviates_on: &[(v(6, 19), None)],
        condition: None,
        intermittent: false,
        needs: "root (Linux 6.19+)",
        upstream: known::LISTNS_PID_PARENT_NOT_KEPT_ACTIVE.upstream,
    },
    Entry {
        id: "uid_map_modulo_2_32",
        known: None,
        title: "uid_map numbers are taken modulo 2^32",
        claims: &["T2.user", "U1"],
        man_page: "user_namespaces(7): each line of uid_map \"takes the form of three numbers delimited by white space\"; \
user IDs are 32-bit and nothing is said of larger numbers.",
        finding: "A number of 2^32 or more is read with simple_strtoul() and stored in a u32: \"4294967296 0 1\" is accepted \
as \"0 0 1\" (found by fuzz.args.id_map_text, whose rules take numbers modulo 2^32). Up to 6.18 numbers past 2^64 wrap \
too; 7.2 refuses those with EINVAL.",
        rows: &["fuzz.args.id_map_text"],
        reading: Reading::Pinned,
        deviates_on: &[(v(3, 8), None)],
        condition: None,
        intermittent: false,
        needs: "any uid",
        upstream: &["kernel/user_namespace.c: map_write() (simple_strtoul into struct uid_gid_extent's u32 fields)"],
    },
    Entry {
        id: "uid_map_range_one_extent",
        known: None,
        title: "a uid_map range must fit one extent of the parent's map",
        claims: &["T2.user", "U1"],
        man_page: "user_namespaces(7): a writer with CAP_SETUID in the parent user namespace \"can make mappings to arbitrary \
user IDs (group IDs) in the parent user namespace\"; the ids must be mapped there.",
        finding: "Over a parent map \"0 0 1\\n1 424242 1\", the line \"0 0 2\" names parent ids 0 and 1, both mapped, and is \
refused with EPERM, while \"0 0 1\\n1 1 1\" is accepted: map_id_range_down() needs the whole range in one extent (found \
while writing the rules of fuzz.args.id_map_text, measured on 6.18.44). No row of the matrix writes such a map; the \
reproducer's own runs are the evidence.",
        rows: &[],
        reading: Reading::Pinned,
        deviates_on: &[(v(3, 8), None)],
        condition: None,
        intermittent: false,
        needs: "root in the initial user namespace",
        upstream: &["kernel/user_namespace.c: new_idmap_permitted() and map_id_range_down()"],
    },
    Entry {
        id: "user_ns_nesting_33",
        known: None,
        title: "user namespaces nest 33 levels, not 32",
        claims: &["L7"],
        man_page: "user_namespaces(7): \"The kernel imposes (since Linux 3.11) a limit of 32 nested levels of user \
namespaces.\"",
        finding: "create_user_ns() refuses a parent whose level is above 32, so 33 levels below the initial user namespace \
can be created and the 34th is refused with ENOSPC (EUSERS before 4.9, as the man page still says). The case \
limits.user_nesting_depth pins 33; its sabotage expects 32 and fails.",
        rows: &["limits.user_nesting_depth"],
        reading: Reading::Pinned,
        deviates_on: &[(v(3, 11), None)],
        condition: None,
        intermittent: false,
        needs: "any uid, from the initial user namespace",
        upstream: &["kernel/user_namespace.c: create_user_ns() (`parent_ns->level > 32`)"],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_deviation_has_an_entry_that_matches_it() {
        for d in known::ALL {
            let e = ENTRIES.iter().find(|e| e.id == d.id).unwrap_or_else(|| panic!("{} has no entry", d.id));
            assert!(e.known.is_some_and(|k| std::ptr::eq(k, *d)), "{}", d.id);
            assert_eq!(e.claims[0], d.claim, "{}", d.id);
            if let known::Applies::Kernels(spans) = d.applies {
                let ours: Vec<String> = spans.iter().map(|s| format!("{}-{:?}", s.from, s.until)).collect();
                let theirs: Vec<String> = e.deviates_on.iter().map(|(f, u)| format!("{f}-{u:?}")).collect();
                assert_eq!(ours, theirs, "{}: the spans are the registry's", d.id);
            }
        }
    }

    #[test]
    fn every_entry_has_a_reproducer() {
        let root = crate::payload::repo_root();
        for e in ENTRIES {
            assert!(root.join(format!("deviations/{}.c", e.id)).is_file(), "deviations/{}.c", e.id);
        }
    }
}
