//! The verdict of a mutant: one boot's reports judged against the cases
//! it lists (killed, partly killed, survived, crashed), and the verdict
//! over several boots.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::list::Mutant;
use crate::table::{Loaded, Status};
use crate::vm::health_reports;

/// How one boot of a mutant ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every listed case failed.
    Killed,
    /// Some listed cases passed, or only unlisted cases failed.
    PartlyKilled,
    /// Nothing failed.
    Survived,
    /// The kernel panicked or hung, or results were lost.
    Crashed,
    /// The patch did not apply or the kernel did not build.
    Error,
}

impl Verdict {
    pub(super) fn word(self) -> &'static str {
        match self {
            Verdict::Killed => "killed",
            Verdict::PartlyKilled => "partly killed",
            Verdict::Survived => "survived",
            Verdict::Crashed => "crashed",
            Verdict::Error => "error",
        }
    }
}

/// A case that failed on a mutant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Failure {
    /// Case id.
    pub id: String,
    /// root, unprivileged or fuzz.
    pub run: String,
    /// fail or broken.
    pub outcome: String,
    /// The first check that failed (the case's reason).
    pub reason: String,
    /// Where it was decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// One boot of one mutant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    /// The verdict of this boot.
    pub verdict: Verdict,
    /// Cases that failed (any run).
    pub failed: Vec<Failure>,
    /// Listed cases that did not fail.
    pub listed_passed: Vec<String>,
    /// Why it crashed or errored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Kernel-health lines of the console (WARNING, BUG, KASAN, lockdep).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub console_reports: Vec<String>,
    /// Seconds from QEMU start to the last result.
    pub vm_s: f64,
}

/// Everything measured for one mutant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MutantResult {
    /// The data file's entry.
    pub mutant: Mutant,
    /// The cases its `must_fail` patterns name (in the base run).
    pub listed: Vec<String>,
    /// The verdict over every boot: killed only if every boot killed it.
    pub verdict: Verdict,
    /// Seconds of `make` for the mutant (incremental).
    pub build_s: f64,
    /// Each boot (`--repeat`).
    pub attempts: Vec<Attempt>,
    /// Build or patch error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl MutantResult {
    /// Whether this result lets the run pass.
    pub fn acceptable(&self) -> bool {
        match self.verdict {
            Verdict::Killed => true,
            Verdict::Error => false,
            Verdict::PartlyKilled | Verdict::Survived | Verdict::Crashed => self.mutant.accepted.is_some(),
        }
    }
}

/// Judges one boot: the runs' reports against the listed cases.
pub fn judge_attempt(loaded: &Loaded, listed: &[String], console: &str) -> Attempt {
    let r = &loaded.result;
    let vm_s = r.vm.as_ref().map_or(0.0, |v| v.total_s);
    let console_reports = health_reports(console);
    if r.status == Status::Infrastructure {
        return Attempt { verdict: Verdict::Crashed, failed: vec![], listed_passed: vec![], error: r.error.clone(), console_reports, vm_s };
    }
    let mut failed: Vec<Failure> = Vec::new();
    for (run, records) in &loaded.reports {
        for rec in records.iter().filter(|r| r.fails_run()) {
            failed.push(Failure {
                id: rec.id.clone(),
                run: run.clone(),
                outcome: format!("{:?}", rec.outcome).to_lowercase(),
                reason: rec.reason.clone(),
                location: rec.location.clone(),
            });
        }
    }
    // The listed cases first, then root, uid 65534, fuzz: the first entry
    // is the check to read first.
    let rank = |f: &Failure| (!listed.contains(&f.id), ["root", "unprivileged", "fuzz"].iter().position(|r| *r == f.run).unwrap_or(3));
    failed.sort_by_key(rank);
    let failed_ids: BTreeSet<&str> = failed.iter().map(|f| f.id.as_str()).collect();
    let listed_passed: Vec<String> = listed.iter().filter(|l| !failed_ids.contains(l.as_str())).cloned().collect();
    let verdict = if failed.is_empty() {
        Verdict::Survived
    } else if listed_passed.is_empty() && !listed.is_empty() {
        Verdict::Killed
    } else {
        Verdict::PartlyKilled
    };
    Attempt { verdict, failed, listed_passed, error: None, console_reports, vm_s }
}

/// The verdict over several boots: killed only when every boot killed it;
/// a crash in any boot is a crash.
pub fn overall(attempts: &[Attempt]) -> Verdict {
    if attempts.iter().any(|a| a.verdict == Verdict::Crashed) {
        Verdict::Crashed
    } else if attempts.iter().all(|a| a.verdict == Verdict::Killed) && !attempts.is_empty() {
        Verdict::Killed
    } else if attempts.iter().all(|a| a.verdict == Verdict::Survived) {
        Verdict::Survived
    } else {
        Verdict::PartlyKilled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{KernelResult, Record};
    use crate::vm::{Phase, VmOutcome};
    use harness::Outcome;

    fn loaded(records: &[(&str, Outcome)]) -> Loaded {
        let mut result = KernelResult::new("m", "mutant");
        result.status = Status::CasesFailed;
        result.vm = Some(VmOutcome {
            phase: Phase::Done,
            guest_release: None,
            boot_s: Some(1.0),
            total_s: 9.0,
            runs: Default::default(),
            error: None,
            console_tail: vec![],
            halted: false,
        });
        let recs = records
            .iter()
            .map(|(id, o)| Record {
                id: id.to_string(),
                outcome: *o,
                reason: "expected x, got y".into(),
                known_deviation: None,
                claims: vec![],
                location: None,
                xpass: None,
            })
            .collect();
        Loaded { result, reports: [("root".to_string(), recs)].into_iter().collect() }
    }

    #[test]
    fn kills_are_judged_per_listed_case() {
        let listed = vec!["a".to_string(), "b".to_string()];
        let all = judge_attempt(&loaded(&[("a", Outcome::Fail), ("b", Outcome::Broken), ("c", Outcome::Pass)]), &listed, "");
        assert_eq!(all.verdict, Verdict::Killed);
        let part = judge_attempt(&loaded(&[("a", Outcome::Fail), ("b", Outcome::Pass)]), &listed, "");
        assert_eq!((part.verdict, part.listed_passed.clone()), (Verdict::PartlyKilled, vec!["b".to_string()]));
        let other = judge_attempt(&loaded(&[("a", Outcome::Pass), ("b", Outcome::Pass), ("c", Outcome::Fail)]), &listed, "");
        assert_eq!(other.verdict, Verdict::PartlyKilled, "an unlisted failure is not a claim-level kill");
        let none = judge_attempt(&loaded(&[("a", Outcome::Pass), ("b", Outcome::Skip)]), &listed, "");
        assert_eq!(none.verdict, Verdict::Survived);
        assert_eq!(overall(&[all.clone(), part.clone()]), Verdict::PartlyKilled, "a flaky kill is not a kill");
        assert_eq!(overall(&[all.clone(), all]), Verdict::Killed);
    }

    #[test]
    fn a_lost_vm_is_a_crash_not_a_kill() {
        let mut l = loaded(&[("a", Outcome::Fail)]);
        l.result.status = Status::Infrastructure;
        l.result.error = Some("the kernel never reached /init".into());
        assert_eq!(judge_attempt(&l, &["a".into()], "").verdict, Verdict::Crashed);
    }

    #[test]
    fn console_health_lines_are_found() {
        let console = "ok\n[ 1.0] WARNING: CPU: 0 PID: 1 at kernel/ucount.c:10\nfine\n[ 2.0] BUG: KASAN: slab-use-after-free in f\r\n";
        let r = health_reports(console);
        assert_eq!(r.len(), 2);
        assert!(r[1].contains("KASAN") && !r[1].ends_with('\r'));
    }
}
