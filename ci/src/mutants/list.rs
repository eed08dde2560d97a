//! The mutant list (`ci/mutants/mutants.toml`) and the case-id patterns
//! its `must_fail` lists are written in.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use serde::{Deserialize, Serialize};

/// The mutant list, relative to the repository root.
pub const MUTANTS_FILE: &str = "ci/mutants/mutants.toml";

/// One mutant, as the data file gives it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mutant {
    /// Stable id, `[a-z0-9-]`; the patch is usually `<id>.patch`.
    pub id: String,
    /// The claim ids (shared CLAIMS) it breaks.
    pub claims: Vec<String>,
    /// One line: what is broken.
    pub what: String,
    /// The patch, relative to `ci/mutants/`, applied with `patch -p1`.
    pub patch: PathBuf,
    /// The cases that must all fail on it (`*` matches any run of characters).
    pub must_fail: Vec<String>,
    /// For a re-introduced regression: the upstream commit that introduced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introduced: Option<String>,
    /// And the one that fixed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<String>,
    /// Why it may survive (an equivalent mutant, a claim no case can see on
    /// this kernel): a survivor or partial kill with a reason does not fail
    /// the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<String>,
    /// Whether `accepted` says the mutant is equivalent (excluded from the
    /// score's denominator).
    #[serde(default)]
    pub equivalent: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MutantFile {
    mutant: Vec<Mutant>,
}

/// Reads and checks the mutant list: ids unique and well formed, patches
/// present, claims and must-fail lists non-empty, an equivalent mutant
/// explained.
pub fn load(root: &Path) -> Result<Vec<Mutant>> {
    let path = root.join(MUTANTS_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let file: MutantFile = toml::from_str(&text).with_context(|| format!("in {}", path.display()))?;
    let mut seen = BTreeSet::new();
    for m in &file.mutant {
        ensure!(
            !m.id.is_empty() && m.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "mutant id {:?} must be lowercase ascii, digits or '-'",
            m.id
        );
        ensure!(seen.insert(m.id.clone()), "mutant {:?} is listed twice", m.id);
        ensure!(!m.claims.is_empty(), "mutant {}: no claims", m.id);
        ensure!(!m.must_fail.is_empty() || m.equivalent, "mutant {}: no must_fail cases", m.id);
        ensure!(!m.equivalent || m.accepted.is_some(), "mutant {}: equivalent needs the reason in `accepted`", m.id);
        ensure!(!m.what.trim().is_empty(), "mutant {}: `what` is empty", m.id);
        let patch = root.join("ci/mutants").join(&m.patch);
        ensure!(patch.is_file(), "mutant {}: no patch {}", m.id, patch.display());
    }
    Ok(file.mutant)
}

/// Whether case `id` matches `pattern` (`*`: any run of characters).
pub fn matches(pattern: &str, id: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == id;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !id.starts_with(first) || !id[first.len()..].ends_with(last) || id.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &id[first.len()..id.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// The case ids that `patterns` name among `ids`, and the patterns that name none.
pub fn expand(patterns: &[String], ids: &BTreeSet<String>) -> (Vec<String>, Vec<String>) {
    let mut listed = BTreeSet::new();
    let mut dead = Vec::new();
    for p in patterns {
        let hit: Vec<&String> = ids.iter().filter(|id| matches(p, id)).collect();
        if hit.is_empty() {
            dead.push(p.clone());
        }
        listed.extend(hit.into_iter().cloned());
    }
    (listed.into_iter().collect(), dead)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_case_ids() {
        assert!(matches("identity.link_text.*", "identity.link_text.uts"));
        assert!(matches("*.net", "lifetime.fd_keeps_alive.net"));
        assert!(matches("lifetime.*_keeps_alive.net", "lifetime.bind_mount_keeps_alive.net"));
        assert!(matches("a", "a"));
        assert!(!matches("a", "ab"));
        assert!(!matches("*.net", "lifetime.fd_keeps_alive.netx"));
        assert!(!matches("ab*ba", "aba"));
        let ids: BTreeSet<String> = ["x.a", "x.b", "y.a"].iter().map(|s| s.to_string()).collect();
        assert_eq!(expand(&["x.*".into(), "z.*".into()], &ids), (vec!["x.a".into(), "x.b".into()], vec!["z.*".into()]));
    }

    #[test]
    fn the_shipped_mutants_load() {
        let root = crate::payload::repo_root();
        let mutants = load(&root).unwrap();
        assert!(mutants.len() >= 30, "{} mutants", mutants.len());
        for family in ["T", "A", "P", "N", "L", "F"] {
            assert!(mutants.iter().any(|m| m.claims.iter().any(|c| c.starts_with(family))), "no mutant for claim family {family}");
        }
    }
}
