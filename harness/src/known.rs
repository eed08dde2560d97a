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

/// Where a deviation is expected.
#[derive(Debug, Clone, Copy)]
pub enum Applies {
    /// Kernels from `from` (inclusive) up to `until` (exclusive; `None`: every newer one).
    Kernels {
        /// First release that shows it.
        from: KernelVersion,
        /// First release that no longer does, if any.
        until: Option<KernelVersion>,
    },
    /// A probe of the kernel that does not exercise the claim itself
    /// (a release range combined with the CPU count, a config option).
    Probe(fn() -> bool, &'static str),
}

impl Applies {
    /// Whether the running kernel is one where the deviation is expected.
    pub fn here(&self) -> bool {
        match *self {
            Applies::Kernels { from, until } => {
                let k = KernelVersion::running();
                k >= from && until.map_or(true, |u| k < u)
            }
            Applies::Probe(probe, _) => probe(),
        }
    }

    /// Says where, for reports.
    pub fn describe(&self) -> String {
        match self {
            Applies::Kernels { from, until: None } => format!("Linux {from} and newer"),
            Applies::Kernels { from, until: Some(u) } => format!("Linux {from} up to (not including) {u}"),
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
    applies: Applies::Kernels { from: KernelVersion::new(5, 10), until: None },
    upstream: &["ipc/namespace.c: put_ipc_ns() and mq_clear_sbinfo()", "namespaces(7): The namespace lifetime"],
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
pub static ALL: &[&Deviation] = &[&MQUEUE_MOUNT_DOES_NOT_PIN_IPC, &MNT_NS_LOOP_PER_CPU_IDS];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_deviation_is_valid() {
        for d in ALL {
            d.validate().unwrap();
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
}
