//! The one registry of known kernel deviations: places where kernels do not
//! do what the man pages say, found by cases that stay strict.
//!
//! Each entry names the claim it contradicts, the failing check (the start
//! of the failure message the deviation produces; never empty, or the
//! runner refuses to start), where it applies (a kernel range or a probe
//! that does not exercise the claim), and upstream references. A case
//! failing at that check *where the deviation applies* reports `fail` with
//! `known_deviation` and does not fail the run; anywhere else the case is
//! strict. Where it applies but the case passes, the record carries
//! `xpass`: a kernel fixed it, or the predicate is wrong, and someone
//! should look.

use crate::version::KernelVersion;

/// A span of kernel releases: from `from` (inclusive) up to `until`
/// (exclusive; `None`: every newer one). Compared with the upstream
/// release ([`KernelVersion::running`]), so a stable backport ends a span
/// at its patch level.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    /// First release that shows it.
    pub from: KernelVersion,
    /// First release that no longer does, if any.
    pub until: Option<KernelVersion>,
}

impl Span {
    /// Whether `k` lies in the span.
    pub fn contains(&self, k: KernelVersion) -> bool {
        k >= self.from && self.until.map_or(true, |u| k < u)
    }
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.until {
            None => write!(f, "{} and newer", self.from),
            Some(u) => write!(f, "{} up to (not including) {u}", self.from),
        }
    }
}

/// Where a deviation is expected.
#[derive(Debug, Clone, Copy)]
pub enum Applies {
    /// Kernels in any of these spans (one per stable series where a fix
    /// was backported).
    Kernels(&'static [Span]),
    /// A probe of the kernel that does not exercise the claim itself
    /// (a release range combined with the CPU count, a config option).
    Probe(fn() -> bool, &'static str),
}

impl Applies {
    /// Whether the running kernel is one where the deviation is expected.
    pub fn here(&self) -> bool {
        self.on(KernelVersion::running())
    }

    /// Whether the deviation is expected on `k` (probes: on the running kernel).
    pub fn on(&self, k: KernelVersion) -> bool {
        match *self {
            Applies::Kernels(spans) => spans.iter().any(|s| s.contains(k)),
            Applies::Probe(probe, _) => probe(),
        }
    }

    /// Says where, for reports.
    pub fn describe(&self) -> String {
        match self {
            Applies::Kernels(spans) => {
                format!("Linux {}", spans.iter().map(Span::to_string).collect::<Vec<_>>().join(", "))
            }
            Applies::Probe(_, what) => what.to_string(),
        }
    }
}

/// One known deviation.
#[derive(Debug)]
pub struct Deviation {
    /// Stable id.
    pub id: &'static str,
    /// The claim it contradicts.
    pub claim: &'static str,
    /// What the kernel does instead of what the man page says.
    pub text: &'static str,
    /// The start of the failure message the deviation produces.
    pub failing_check: &'static str,
    /// Where it is expected.
    pub applies: Applies,
    /// Upstream commits, threads or man-page sections, where known.
    pub upstream: &'static [&'static str],
}

impl Deviation {
    /// Refuses an entry that could excuse any failure: an empty failing
    /// check or claim.
    pub fn validate(&self) -> Result<(), String> {
        if self.failing_check.trim().is_empty() {
            return Err(format!("known deviation {}: the failing check is empty, so it would excuse any failure of its case", self.id));
        }
        if self.claim.trim().is_empty() || self.text.trim().is_empty() {
            return Err(format!("known deviation {}: needs the claim it contradicts and its text", self.id));
        }
        Ok(())
    }

    /// Whether a failure with `reason` is this deviation, here.
    pub fn explains(&self, reason: &str) -> bool {
        self.applies.here() && reason.starts_with(self.failing_check)
    }

    /// The text reported with a failure it explains.
    pub fn report(&self) -> String {
        format!("{} [{}; expected on {}]", self.text, self.id, self.applies.describe())
    }
}

/// namespaces(7), "The namespace lifetime", lists "a corresponding mount of
/// an mqueue filesystem" among what keeps an IPC namespace alive.
pub static MQUEUE_MOUNT_DOES_NOT_PIN_IPC: Deviation = Deviation {
    id: "mqueue_mount_does_not_pin_ipc",
    claim: "F6",
    text: "namespaces(7) says an mqueue mount keeps its IPC namespace alive, but the mqueue superblock holds no \
reference to it: put_ipc_ns() clears the superblock's s_fs_info (mq_clear_sbinfo()) when the last reference goes \
(ipc/namespace.c), so the namespace is released with its last process while the mount remains",
    failing_check: "the ipc namespace referred to by a mqueue mount: expected alive",
    applies: Applies::Kernels(&[Span { from: KernelVersion::new(5, 10), until: None }]),
    upstream: &["ipc/namespace.c: put_ipc_ns() and mq_clear_sbinfo()", "namespaces(7): The namespace lifetime"],
};

/// clone3(2): "CLONE_NEWTIME (since Linux 5.6)" is one of the flags it
/// takes (clone(2) cannot: the bit is CSIGNAL's).
pub static CLONE3_NEWTIME_EINVAL: Deviation = Deviation {
    id: "clone3_newtime_einval",
    claim: "A1",
    text: "clone(2) documents CLONE_NEWTIME for clone3(); from 5.6 clone3_args_valid() refused it with EINVAL, because \
the flag shares its bit with CSIGNAL, until a402f1e35313 (6.3), which stable took into 6.2.7, 6.1.20, 5.15.103 and 5.10.175",
    failing_check: "clone3(CLONE_NEWTIME) refused with EINVAL",
    applies: Applies::Kernels(&[
        Span { from: KernelVersion::new(5, 6), until: Some(KernelVersion::stable(5, 10, 175)) },
        Span { from: KernelVersion::new(5, 11), until: Some(KernelVersion::stable(5, 15, 103)) },
        Span { from: KernelVersion::new(5, 16), until: Some(KernelVersion::stable(6, 1, 20)) },
        Span { from: KernelVersion::new(6, 2), until: Some(KernelVersion::stable(6, 2, 7)) },
    ]),
    upstream: &[
        "a402f1e35313 (\"fork: allow CLONE_NEWTIME in clone3 flags\", 6.3; Fixes 769071ac9f20)",
        "stable: 5.10.175 and 6.1.20 (Debian's changelogs), 5.15.103 and 6.2.7 (the same stable batch)",
    ],
};

/// namespaces(7) on `/proc/[pid]/ns/pid_for_children`: it "gains read
/// permissions when the first child process is created in the namespace".
pub static PID_FOR_CHILDREN_OPENS_EARLY: Deviation = Deviation {
    id: "pid_for_children_opens_early",
    claim: "A3",
    text: "namespaces(7) says pid_for_children becomes readable when the first child process is created in the new pid \
namespace (opening it fails with ENOENT before); newer kernels open it at once, naming the new namespace. Measured: \
ENOENT on 5.10.262, 6.1.192, 6.12.117 and 6.18.44, readable on 7.2; where between 6.19 and 7.2 it changed is not \
pinned here (an XPASS on a kernel from 6.19 on tells)",
    failing_check: "pid_for_children readable before the first child",
    applies: Applies::Kernels(&[Span { from: KernelVersion::new(6, 19), until: None }]),
    upstream: &[
        "kernel/pid_namespace.c: pidns_for_children_get() (its child_reaper test)",
        "namespaces(7): /proc/[pid]/ns/pid_for_children",
    ],
};

/// Found by `fuzz.model.seq` on 6.18.44.
pub static MNT_NS_LOOP_PER_CPU_IDS: Deviation = Deviation {
    id: "mnt_ns_loop_per_cpu_ids",
    claim: "F2",
    text: "mount_namespaces(7)/namespaces(7): a bind mount of a /proc/[pid]/ns/mnt file keeps that namespace alive; the \
kernel refuses only binds that could make a loop (a namespace not newer than the caller's: mnt_ns_loop()). On 6.18 \
mnt_ns_loop() compares ns_id, which ns_tree_gen_id() draws from gen_cookie_next(), a per-CPU batched cookie that is not \
ordered by creation across CPUs: a bind of a newer mount namespace's file is refused with EINVAL at random (about 1 in 40 \
on 2 CPUs)",
    failing_check: "binds of a newer mount namespace's file refused with EINVAL",
    applies: Applies::Probe(mnt_ns_ids_from_per_cpu_cookies, "Linux 6.18 (per-CPU namespace id cookies) with more than one CPU"),
    upstream: &["fs/namespace.c: mnt_ns_loop()", "6.19 nstree series: \"nstree: assign fixed ids to the initial namespaces\""],
};

/// ioctl_ns(2) and ioctl(2): a request that does not apply to the fd is
/// ENOTTY; `<linux/nsfs.h>` defines NS_MNT_GET_INFO/NEXT/PREV (6.12) as
/// `_IOR(0xb7, 10..12, struct mnt_ns_info)`.
pub static NS_MNT_IOCTL_NUMBER_ONLY: Deviation = Deviation {
    id: "ns_mnt_ioctl_number_only",
    claim: "A4",
    text: "ioctl_ns(2) requests that are not the kernel's are ENOTTY, but from 6.12 ns_ioctl() dispatched NS_MNT_GET_INFO, \
NS_MNT_GET_NEXT and NS_MNT_GET_PREV on _IOC_NR() alone, so any request numbered 10 to 12, of any type, direction and size, \
on any nsfs fd reached the mount namespace code and was answered EINVAL or EFAULT (measured on 6.12.117 and 6.12.118); \
fixed upstream for 6.18 by checking the whole request",
    failing_check: "a malformed NS_MNT_GET_* request was recognised",
    applies: Applies::Kernels(&[Span { from: KernelVersion::new(6, 12), until: Some(KernelVersion::new(6, 18)) }]),
    upstream: &["f8527a29f461, 4d906371d1f9 (upstream fixes: ns_ioctl() matches the whole request)", "fs/nsfs.c: ns_ioctl()"],
};

/// ioctl(2): ENOTTY when the request does not apply to the fd;
/// `<linux/pidfd.h>` defines PIDFD_GET_INFO (6.13) as `_IOWR(0xFF, 11,
/// struct pidfd_info)`, 64 bytes or more.
pub static PIDFD_INFO_REQUEST_NUMBER_ONLY: Deviation = Deviation {
    id: "pidfd_info_request_number_only",
    claim: "X3",
    text: "a pidfd answers requests that are not pidfs's with ENOTTY, but from 6.13 pidfd_ioctl() sent every request numbered 11 \
(_IOC_NR(PIDFD_GET_INFO)), of any type, direction and size, to pidfd_info(), which answers EINVAL or EFAULT; 6.18 checks \
the whole request first (pidfs_ioctl_valid())",
    failing_check: "a malformed PIDFD_GET_INFO request was recognised",
    applies: Applies::Kernels(&[Span { from: KernelVersion::new(6, 13), until: Some(KernelVersion::new(6, 18)) }]),
    upstream: &[
        "fs/pidfs.c: pidfd_ioctl() (6.13: `_IOC_NR(cmd) == _IOC_NR(PIDFD_GET_INFO)`) and pidfs_ioctl_valid() (6.18)",
        "LTP ioctl_pidfd tests: a PIDFD_GET_INFO of the wrong size is EINVAL, ENOTTY since 6.18-rc1",
    ],
};

/// listns(2) (6.19): a listing resumes after the last id of the previous
/// call (`ns_id_req.ns_id`).
pub static LISTNS_RESUME_STOPS_AT_INACTIVE: Deviation = Deviation {
    id: "listns_resume_stops_at_inactive",
    claim: "X5",
    text: "listns(2) resumes a listing after the last id returned, but do_listns() looks up the first namespace after that \
id with lookup_ns_id_at(), which gives nothing when that namespace is still in the tree but no longer active, and then \
returns ENOENT: the listing ends early although active namespaces with higher ids follow (kernel/nstree.c). Seen on \
7.2.13 as root in some runs and not in others (it needs a namespace of an exited process right after a page's last \
id): an XPASS here is expected now and then",
    failing_check: "listns resuming after an id ended with ENOENT while active namespaces followed",
    applies: Applies::Kernels(&[Span { from: KernelVersion::new(6, 19), until: None }]),
    upstream: &["kernel/nstree.c: do_listns() and lookup_ns_id_at() (ns_get_unless_inactive())"],
};

/// CLAIMS X6 (from the kernel's selftests; listns(2) has no man page yet):
/// "a namespace is active while ... an active namespace it owns or parents
/// holds it".
pub static LISTNS_PID_PARENT_NOT_KEPT_ACTIVE: Deviation = Deviation {
    id: "listns_pid_parent_not_kept_active",
    claim: "X6",
    text: "X6 says an active namespace keeps the namespace it parents active; the kernel passes active references on \
only to the owning user namespace (for user namespaces owner and parent are the same), so a pid namespace whose \
processes are gone goes inactive (no longer listed, its handle ESTALE) while a child pid namespace held by an fd is \
still active. Seen on 7.2.13; the claim's \"or parents\" may mean user namespaces only, which the kernel does keep",
    failing_check: "a parent of an active pid namespace stays active",
    applies: Applies::Kernels(&[Span { from: KernelVersion::new(6, 19), until: None }]),
    upstream: &["kernel/nstree.c and include/linux/ns_common.h: active references propagate to the owner only"],
};

/// Whether namespace ids come from per-CPU cookies (6.18) and more than one
/// CPU can draw them: the release and the CPU count, not a bind.
pub fn mnt_ns_ids_from_per_cpu_cookies() -> bool {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    ns_ids_are_per_cpu_cookies() && cpus > 1
}

/// Whether this kernel draws namespace ids from per-CPU cookies (6.18),
/// whatever the CPU count (the fuzz model admits the refusal on any 6.18).
pub fn ns_ids_are_per_cpu_cookies() -> bool {
    let k = KernelVersion::running();
    k >= KernelVersion::new(6, 18) && k < KernelVersion::new(6, 19)
}

/// Every known deviation.
pub static ALL: &[&Deviation] = &[
    &MQUEUE_MOUNT_DOES_NOT_PIN_IPC,
    &CLONE3_NEWTIME_EINVAL,
    &PID_FOR_CHILDREN_OPENS_EARLY,
    &MNT_NS_LOOP_PER_CPU_IDS,
    &NS_MNT_IOCTL_NUMBER_ONLY,
    &PIDFD_INFO_REQUEST_NUMBER_ONLY,
    &LISTNS_RESUME_STOPS_AT_INACTIVE,
    &LISTNS_PID_PARENT_NOT_KEPT_ACTIVE,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_deviation_is_valid() {
        for d in ALL {
            d.validate().unwrap();
        }
    }

    /// Every `pub static` deviation of this file is in [`ALL`] (the
    /// registry the reports and the README are checked against).
    #[test]
    fn every_deviation_is_registered() {
        let source = include_str!("known.rs");
        let declared: Vec<&str> =
            source.lines().filter_map(|l| l.strip_prefix("pub static ")?.strip_suffix(": Deviation = Deviation {")).collect();
        assert!(declared.len() >= 7, "{declared:?}");
        for name in declared {
            assert!(ALL.iter().any(|d| d.id == name.to_lowercase()), "{name} is not in ALL");
        }
    }

    #[test]
    fn explains_only_its_own_check_where_it_applies() {
        static HERE: Deviation = Deviation {
            id: "t",
            claim: "F6",
            text: "t",
            failing_check: "the check",
            applies: Applies::Probe(|| true, "always"),
            upstream: &[],
        };
        static ELSEWHERE: Deviation = Deviation { applies: Applies::Probe(|| false, "never"), ..HERE };
        assert!(HERE.explains("the check: expected x, got y"));
        assert!(!HERE.explains("another check: expected x, got y"));
        assert!(!ELSEWHERE.explains("the check: expected x, got y"));
        let empty = Deviation { failing_check: " ", ..HERE };
        assert!(empty.validate().unwrap_err().contains("empty"));
    }

    #[test]
    fn a_case_failing_at_a_deviation_is_explained_by_it() {
        let e = crate::case::CaseError::deviation(&CLONE3_NEWTIME_EINVAL, "detail");
        assert_eq!(e.outcome, crate::case::Outcome::Fail);
        assert!(e.message.starts_with(CLONE3_NEWTIME_EINVAL.failing_check), "{}", e.message);
        assert!(e.location.contains("known.rs"), "decided at the caller: {}", e.location);
    }

    #[test]
    fn stable_backports_end_a_span() {
        let a = CLONE3_NEWTIME_EINVAL.applies;
        let k = |major, minor, patch| KernelVersion::stable(major, minor, patch);
        for (v, expected) in [
            (k(5, 4, 300), false),
            (k(5, 6, 0), true),
            (k(5, 10, 174), true),
            (k(5, 10, 175), false),
            (k(5, 10, 262), false),
            (k(5, 15, 102), true),
            (k(5, 15, 103), false),
            (k(6, 1, 19), true),
            (k(6, 1, 192), false),
            (k(6, 2, 6), true),
            (k(6, 2, 7), false),
            (k(6, 3, 0), false),
            (k(6, 12, 117), false),
        ] {
            assert_eq!(a.on(v), expected, "{v}");
        }
        assert!(a.describe().contains("5.10.175"));
    }
}
