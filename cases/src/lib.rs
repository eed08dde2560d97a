//! nsverify's cases: documented namespace behaviours (CLAIMS.md), each a
//! record naming the claims it verifies, run on the running kernel by
//! `cargo test` (see `tests/cases.rs`). The topics, one module each, are
//! listed once, in [`TOPICS`], which [`all`], [`sabotaged`] and the
//! coverage tests walk.

#![forbid(unsafe_code)]

pub mod claims;
mod common;
mod rtnetlink;

use harness::Case;

/// A topic of the suite: one module of cases (`cases/src/<name>.rs` or
/// `<name>/mod.rs`), the man pages it verifies, and its cases and their
/// sabotaged twins.
#[derive(Debug, Clone, Copy)]
pub struct Topic {
    /// The module's name, e.g. `isolation_pid`.
    pub name: &'static str,
    /// What every case id of the topic starts with, e.g. `isolation.pid.`;
    /// its sabotage cases' ids start with `sabotage.` and then this.
    pub prefix: &'static str,
    /// The man pages the topic verifies, as CLAIMS.md cites them, e.g.
    /// `pid_namespaces(7)`; its own page first.
    pub man: &'static [&'static str],
    /// The topic's cases, in a stable order.
    pub cases: fn() -> Vec<Case>,
    /// The topic's cases run sabotaged, each of which must fail.
    pub sabotaged: fn() -> Vec<Case>,
}

/// Declares each topic's module and [`TOPICS`] from one list, so a topic
/// cannot be declared without being run.
macro_rules! topics {
    ($($name:ident: $prefix:literal, [$($man:literal),+];)+) => {
        $(pub mod $name;)+

        /// Every topic, in the order [`all`] and [`sabotaged`] run them (the
        /// order of every report).
        pub const TOPICS: &[Topic] = &[
            $(Topic { name: stringify!($name), prefix: $prefix, man: &[$($man),+], cases: $name::cases, sabotaged: $name::sabotaged },)+
        ];
    };
}

topics! {
    identity: "identity.", ["namespaces(7)"];
    create: "create.", ["clone(2)", "unshare(2)"];
    isolation_cgroup: "isolation.cgroup.", ["cgroup_namespaces(7)"];
    isolation_ipc: "isolation.ipc.", ["ipc_namespaces(7)"];
    isolation_kinds: "isolation.kinds.", ["namespaces(7)"];
    isolation_mnt: "isolation.mnt.", ["mount_namespaces(7)"];
    isolation_net: "isolation.net.", ["network_namespaces(7)"];
    isolation_pid: "isolation.pid.", ["pid_namespaces(7)"];
    isolation_time: "isolation.time.", ["time_namespaces(7)"];
    isolation_user: "isolation.user.", ["user_namespaces(7)"];
    isolation_uts: "isolation.uts.", ["uts_namespaces(7)"];
    setns: "setns.", ["setns(2)"];
    ioctl_ns: "ioctl_ns.", ["ioctl_ns(2)"];
    privilege: "privilege.", ["namespaces(7)", "clone(2)", "unshare(2)", "user_namespaces(7)"];
    lifetime: "lifetime.", ["namespaces(7)"];
    limits: "limits.", ["namespaces(7)", "user_namespaces(7)"];
    pid_ns: "pidns.", ["pid_namespaces(7)"];
    ns_ids: "ns_ids.", ["ioctl_ns(2)", "statmount(2)", "listmount(2)"];
    nsfs_handles: "nsfs_handles.", ["open_by_handle_at(2)"];
    listns: "listns.", ["listns(2)"];
    pidfd: "pidfd.", ["pidfd_open(2)", "setns(2)"];
    user_ns: "userns.", ["user_namespaces(7)", "capabilities(7)"];
    cgroup_ns: "cgroupns.", ["cgroup_namespaces(7)"];
    time_ns: "timens.", ["time_namespaces(7)"];
}

/// Every case, in a stable order: each topic's cases in [`TOPICS`] order.
pub fn all() -> Vec<Case> {
    TOPICS.iter().flat_map(|topic| (topic.cases)()).collect()
}

/// The cases run sabotaged (a wrong expectation or a broken step), each of
/// which passes only if the sabotaged body fails: evidence that the real
/// cases can fail. Run by `tests/sabotage.rs`, in [`TOPICS`] order.
pub fn sabotaged() -> Vec<Case> {
    TOPICS.iter().flat_map(|topic| (topic.sabotaged)()).collect()
}

/// Claims not yet verified by any case: the visible gap, closed by the case
/// issues still open. The coverage test fails if a claim listed here gains a
/// case (so the list shrinks) or a claim not listed has none.
///
/// K1 (kernel health) is checked by the harness itself around every run
/// (the `harness.kernel_health` record: taint and kernel-log reports), not
/// by a case, so it stays listed here.
pub const UNCOVERED: &[&str] = &["K1"];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The sub-claims of a parent id such as T2 (none for other ids).
    fn sub_claims(id: &str) -> Vec<&'static str> {
        claims::CLAIMS.iter().map(|(i, _)| *i).filter(|i| i.starts_with(&format!("{id}."))).collect()
    }

    /// A parent id such as T2 is covered when each of its sub-claims is.
    fn covered(id: &str, cited: &BTreeSet<&str>) -> bool {
        let subs = sub_claims(id);
        cited.contains(id) || (!subs.is_empty() && subs.iter().all(|s| cited.contains(s)))
    }

    #[test]
    fn every_claim_has_a_case_and_every_case_a_known_claim() {
        let cases = all();
        let known: BTreeSet<&str> = claims::CLAIMS.iter().map(|(i, _)| *i).collect();
        let mut cited = BTreeSet::new();
        for case in &cases {
            assert!(!case.claims.is_empty(), "case {} cites no claim", case.id);
            for c in &case.claims {
                assert!(known.contains(c), "case {} cites unknown claim {c}", case.id);
                cited.insert(*c);
            }
        }
        for u in UNCOVERED {
            assert!(known.contains(u), "UNCOVERED lists unknown claim {u}");
        }
        let parents_pending = |id: &str| UNCOVERED.iter().any(|u| u.starts_with(&format!("{id}.")));
        for id in &known {
            let listed = UNCOVERED.contains(id);
            let has = covered(id, &cited);
            assert!(!(listed && has), "claim {id} now has a case: remove it from UNCOVERED");
            assert!(listed || has || parents_pending(id), "claim {id} has no case and is not listed in UNCOVERED");
        }
    }

    /// Every claim that has cases (not in UNCOVERED, not a parent such as
    /// T2 whose sub-claims are the claims) has a sabotage case citing it: a
    /// case body run broken that must fail at the claim's check, evidence
    /// that the claim's cases can fail. (fuzz/ has its own sabotage suite.)
    #[test]
    fn every_claim_with_a_case_has_a_sabotage_case() {
        let known: BTreeSet<&str> = claims::CLAIMS.iter().map(|(i, _)| *i).collect();
        let cited: BTreeSet<&str> = all().iter().flat_map(|c| c.claims.iter().copied()).collect();
        let mut sabotaged_claims = BTreeSet::new();
        for case in &sabotaged() {
            assert!(case.id.starts_with("sabotage."), "sabotage case {} is not named sabotage.*", case.id);
            assert!(!case.claims.is_empty(), "sabotage case {} cites no claim", case.id);
            for c in &case.claims {
                assert!(known.contains(c), "sabotage case {} cites unknown claim {c}", case.id);
                assert!(cited.contains(c), "sabotage case {} cites {c}, which no case verifies", case.id);
                sabotaged_claims.insert(*c);
            }
        }
        let missing: Vec<&str> = known
            .iter()
            .copied()
            .filter(|id| !UNCOVERED.contains(id) && sub_claims(id).is_empty() && !sabotaged_claims.contains(id))
            .collect();
        assert!(missing.is_empty(), "claims with cases but no sabotage case citing them: {missing:?}");
    }

    #[test]
    fn every_topic_has_cases_and_sabotage_cases() {
        for topic in TOPICS {
            assert!(!(topic.cases)().is_empty(), "topic {} has no cases", topic.name);
            assert!(!(topic.sabotaged)().is_empty(), "topic {} has no sabotage cases", topic.name);
        }
    }

    /// Names are unique, and so are prefixes: none starts another, so each
    /// case id belongs to one topic.
    #[test]
    fn topic_names_and_prefixes_are_unique() {
        let mut names = BTreeSet::new();
        for topic in TOPICS {
            assert!(names.insert(topic.name), "topic {} is listed twice", topic.name);
            assert!(topic.prefix.ends_with('.'), "topic {}'s prefix {} does not end with a dot", topic.name, topic.prefix);
            for other in TOPICS.iter().filter(|other| other.name != topic.name) {
                assert!(
                    !other.prefix.starts_with(topic.prefix),
                    "topic {}'s prefix {} starts topic {}'s {}",
                    topic.name,
                    topic.prefix,
                    other.name,
                    other.prefix
                );
            }
        }
    }

    #[test]
    fn every_case_id_starts_with_its_topic_prefix() {
        for topic in TOPICS {
            for case in (topic.cases)() {
                assert!(case.id.starts_with(topic.prefix), "case {} of topic {} does not start with {}", case.id, topic.name, topic.prefix);
            }
            let prefix = format!("sabotage.{}", topic.prefix);
            for case in (topic.sabotaged)() {
                assert!(case.id.starts_with(&prefix), "sabotage case {} of topic {} does not start with {prefix}", case.id, topic.name);
            }
        }
    }

    #[test]
    fn every_topic_names_man_pages_that_claims_cites() {
        for topic in TOPICS {
            assert!(!topic.man.is_empty(), "topic {} names no man page", topic.name);
            for page in topic.man {
                assert!(claims::CITED_MAN_PAGES.contains(page), "topic {} names {page}, which CLAIMS.md does not cite", topic.name);
            }
        }
    }

    #[test]
    fn ids_are_unique_and_well_formed() {
        harness::runner::validate_ids(&all()).unwrap();
        harness::runner::validate_ids(&sabotaged()).unwrap();
    }
}
