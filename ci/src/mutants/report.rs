//! The summary of a mutants run: the score, counts by verdict, the claims
//! each case family helped kill, as `mutants.json` and `mutants.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::judge::{MutantResult, Verdict};
use super::runs::BaseFigures;

/// The whole run's summary: `mutants.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// The pinned source.
    pub source: String,
    /// The base kernel's figures.
    pub base: BaseFigures,
    /// Killed among the non-equivalent mutants that did not crash or error.
    pub killed: usize,
    /// Non-equivalent mutants (the score's denominator).
    pub scored: usize,
    /// killed / scored.
    pub score: f64,
    /// Counts by verdict.
    pub counts: BTreeMap<String, usize>,
    /// Claims whose mutants each case family (id prefix) helped kill.
    pub family_claims: BTreeMap<String, BTreeSet<String>>,
    /// Wall seconds of the whole run.
    pub wall_s: f64,
    /// Every mutant.
    pub mutants: Vec<MutantResult>,
}

impl Summary {
    /// Sums the results up.
    pub fn new(source: String, base: BaseFigures, mutants: Vec<MutantResult>, wall: Duration) -> Summary {
        let mut counts = BTreeMap::new();
        for r in &mutants {
            *counts.entry(r.verdict.word().to_string()).or_insert(0) += 1;
        }
        let scored = mutants.iter().filter(|r| !r.mutant.equivalent).count();
        let killed = mutants.iter().filter(|r| !r.mutant.equivalent && r.verdict == Verdict::Killed).count();
        let mut family_claims: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for r in mutants.iter().filter(|r| r.verdict == Verdict::Killed) {
            for a in &r.attempts {
                for f in &a.failed {
                    let family = f.id.split('.').next().unwrap_or("").to_string();
                    family_claims.entry(family).or_default().extend(r.mutant.claims.iter().cloned());
                }
            }
        }
        Summary {
            source,
            base,
            killed,
            scored,
            score: if scored == 0 { 0.0 } else { killed as f64 / scored as f64 },
            counts,
            family_claims,
            wall_s: wall.as_secs_f64(),
            mutants,
        }
    }

    /// The Markdown report.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "# Mutant kernels\n\nSource: {}. Base kernel {}: green ({} case ids) in {:.1}s.\n\n\
             **Mutation score: {} of {} non-equivalent mutants killed at claim level ({:.0}%).** Counts: {}. Whole run {:.0}s.\n\n",
            self.source,
            self.base.release,
            self.base.cases,
            self.base.vm_s,
            self.killed,
            self.scored,
            self.score * 100.0,
            self.counts.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "),
            self.wall_s
        );
        s += "| mutant | claims | verdict | build s | VM s | listed cases | first failing check |\n|---|---|---|---|---|---|---|\n";
        for r in &self.mutants {
            let first = r.attempts.iter().flat_map(|a| a.failed.first()).next();
            let vm: f64 = r.attempts.iter().map(|a| a.vm_s).sum::<f64>() / r.attempts.len().max(1) as f64;
            let mut verdict = r.verdict.word().to_string();
            if r.verdict != Verdict::Killed {
                if let Some(why) = &r.mutant.accepted {
                    verdict += &format!(" (accepted: {why})");
                }
                let passed: BTreeSet<&String> = r.attempts.iter().flat_map(|a| a.listed_passed.iter()).collect();
                if !passed.is_empty() && r.verdict == Verdict::PartlyKilled {
                    verdict += &format!("; passed: {}", passed.into_iter().cloned().collect::<Vec<_>>().join(", "));
                }
                if let Some(e) = r.error.as_ref().or(r.attempts.iter().find_map(|a| a.error.as_ref())) {
                    verdict += &format!("; {}", e.lines().next().unwrap_or(""));
                }
            }
            if r.attempts.len() > 1 {
                let k = r.attempts.iter().filter(|a| a.verdict == Verdict::Killed).count();
                verdict += &format!(" ({k}/{} boots killed)", r.attempts.len());
            }
            s += &format!(
                "| `{}` | {} | {} | {:.1} | {:.1} | {} | {} |\n",
                r.mutant.id,
                r.mutant.claims.join(" "),
                verdict.replace('|', "/"),
                r.build_s,
                vm,
                r.listed.len(),
                first.map_or(String::new(), |f| format!("`{}`: {}", f.id, f.reason.lines().next().unwrap_or("").replace('|', "/")))
            );
        }
        s += "\n## Claims whose mutants each case family killed\n\n| family | claims |\n|---|---|\n";
        for (fam, claims) in &self.family_claims {
            s += &format!("| {fam} | {} |\n", claims.iter().cloned().collect::<Vec<_>>().join(" "));
        }
        s
    }
}
