//! nsverify's cases: documented namespace behaviours (CLAIMS.md), each a
//! record naming the claims it verifies, run on the running kernel by
//! `cargo test` (see `tests/cases.rs`).

pub mod cgroup_ns;
pub mod claims;
mod common;
pub mod create;
pub mod identity;
pub mod ioctl_ns;
pub mod isolation_cgroup;
pub mod isolation_ipc;
pub mod isolation_kinds;
pub mod isolation_mnt;
pub mod isolation_net;
pub mod isolation_pid;
pub mod isolation_time;
pub mod isolation_user;
pub mod isolation_uts;
pub mod lifetime;
pub mod limits;
pub mod listns;
pub mod ns_ids;
pub mod nsfs_handles;
pub mod pid_ns;
pub mod pidfd;
pub mod privilege;
mod rtnetlink;
pub mod setns;
pub mod time_ns;
pub mod user_ns;

use harness::Case;

/// Every case, in a stable order.
pub fn all() -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(identity::cases());
    cases.extend(create::cases());
    cases.extend(isolation_cgroup::cases());
    cases.extend(isolation_ipc::cases());
    cases.extend(isolation_kinds::cases());
    cases.extend(isolation_mnt::cases());
    cases.extend(isolation_net::cases());
    cases.extend(isolation_pid::cases());
    cases.extend(isolation_time::cases());
    cases.extend(isolation_user::cases());
    cases.extend(isolation_uts::cases());
    cases.extend(setns::cases());
    cases.extend(ioctl_ns::cases());
    cases.extend(privilege::cases());
    cases.extend(lifetime::cases());
    cases.extend(limits::cases());
    cases.extend(pid_ns::cases());
    cases.extend(ns_ids::cases());
    cases.extend(nsfs_handles::cases());
    cases.extend(listns::cases());
    cases.extend(pidfd::cases());
    cases.extend(user_ns::cases());
    cases.extend(cgroup_ns::cases());
    cases.extend(time_ns::cases());
    cases
}

/// The cases run sabotaged (a wrong expectation or a broken step), each of
/// which passes only if the sabotaged body fails: evidence that the real
/// cases can fail. Run by `tests/sabotage.rs`.
pub fn sabotaged() -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(identity::sabotaged());
    cases.extend(create::sabotaged());
    cases.extend(isolation_cgroup::sabotaged());
    cases.extend(isolation_ipc::sabotaged());
    cases.extend(isolation_kinds::sabotaged());
    cases.extend(isolation_mnt::sabotaged());
    cases.extend(isolation_net::sabotaged());
    cases.extend(isolation_pid::sabotaged());
    cases.extend(isolation_time::sabotaged());
    cases.extend(isolation_user::sabotaged());
    cases.extend(isolation_uts::sabotaged());
    cases.extend(setns::sabotaged());
    cases.extend(ioctl_ns::sabotaged());
    cases.extend(privilege::sabotaged());
    cases.extend(lifetime::sabotaged());
    cases.extend(limits::sabotaged());
    cases.extend(pid_ns::sabotaged());
    cases.extend(ns_ids::sabotaged());
    cases.extend(nsfs_handles::sabotaged());
    cases.extend(listns::sabotaged());
    cases.extend(pidfd::sabotaged());
    cases.extend(user_ns::sabotaged());
    cases.extend(cgroup_ns::sabotaged());
    cases.extend(time_ns::sabotaged());
    cases
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
    fn ids_are_unique_and_well_formed() {
        harness::runner::validate_ids(&all()).unwrap();
        harness::runner::validate_ids(&sabotaged()).unwrap();
    }
}
