//! `nsverify-vm deviations`: writes DEVIATIONS.md (and the expectations
//! `deviations/run.sh` reads) from the entries of [`entries`] and a
//! compact record of matrix results, `ci/results/deviations.json`.
//!
//! Given result directories (of `ci/vm-matrix.sh --fuzz`, and of a run of
//! the reproducers: `deviations/vm-bin.sh` booted as `--case-bin`), it
//! first refreshes that record from them; `--check` writes nothing and
//! fails on any difference (the test `deviations_md_is_current` does the
//! same).

pub mod entries;
mod render;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::payload::repo_root;
use crate::table::{self, Record};
use entries::ENTRIES;

/// The record of matrix results, repository-relative.
pub const RESULTS_FILE: &str = "ci/results/deviations.json";
/// The document, repository-relative.
pub const DOCUMENT: &str = "DEVIATIONS.md";
/// What `deviations/run.sh` reads, repository-relative.
pub const EXPECTED_FILE: &str = "deviations/expected.tsv";

/// One kernel of the record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KernelRow {
    /// Matrix name.
    pub name: String,
    /// `uname -r`.
    pub release: String,
    /// The upstream release (Debian's package version names it).
    pub upstream: String,
}

/// Cell words by row id, kernel name and run (`root`, `uid 65534`, `fuzz`):
/// pass, xpass, dev, fail, skip or broken.
pub type Cells = BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>;

/// `ci/results/deviations.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Summary {
    /// The kernels, in matrix order.
    pub kernels: Vec<KernelRow>,
    /// The rows the entries need, and the reproducers' rows.
    pub cells: Cells,
}

/// The word for one record.
fn word(r: &Record) -> &'static str {
    use harness::Outcome;
    match r.outcome {
        Outcome::Pass if r.xpass.is_some() => "xpass",
        Outcome::Pass => "pass",
        Outcome::Fail if r.known_deviation.is_some() => "dev",
        Outcome::Fail => "fail",
        Outcome::Skip => "skip",
        Outcome::Broken => "broken",
    }
}

/// Whether the record keeps row `id`.
fn wanted(id: &str) -> bool {
    id.starts_with("deviations.") || ENTRIES.iter().any(|e| e.rows.contains(&id))
}

impl Summary {
    /// Reads the checked-in record.
    pub fn load(root: &Path) -> Result<Summary> {
        let path = root.join(RESULTS_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Takes the kernels and the wanted rows of every `<kernel>/` result
    /// directory under `results`, in `order` (the matrix's) where named.
    pub fn merge(&mut self, results: &Path, order: &[String]) -> Result<()> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(results)
            .with_context(|| format!("reading {}", results.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("result.json").is_file())
            .collect();
        dirs.sort_by_key(|d| {
            let name = d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            (order.iter().position(|o| *o == name).unwrap_or(usize::MAX), name)
        });
        anyhow::ensure!(!dirs.is_empty(), "no <kernel>/result.json under {}", results.display());
        for dir in dirs {
            let loaded = table::load(&dir)?;
            let k = &loaded.result;
            let release = k.release.clone().unwrap_or_default();
            let upstream = match k.version.as_deref() {
                Some(v) if v != "local" => v.split('-').next().unwrap_or(v).to_string(),
                _ => release.split(['-', '+']).next().unwrap_or(&release).to_string(),
            };
            let row = KernelRow { name: k.name.clone(), release, upstream };
            match self.kernels.iter_mut().find(|r| r.name == row.name) {
                Some(r) => *r = row,
                None => self.kernels.push(row),
            }
            for (run, column) in table::RUNS.into_iter().chain([table::FUZZ_RUN]) {
                let Some(records) = loaded.reports.get(run) else { continue };
                for r in records.iter().filter(|r| wanted(&r.id)) {
                    self.cells.entry(r.id.clone()).or_default().entry(k.name.clone()).or_default().insert(column.into(), word(r).into());
                }
            }
        }
        self.kernels.sort_by_key(|k| order.iter().position(|o| *o == k.name).unwrap_or(usize::MAX));
        Ok(())
    }

    /// The files this record renders to: (repository-relative path, text).
    pub fn render(&self) -> Vec<(&'static str, String)> {
        vec![(DOCUMENT, render::document(self)), (EXPECTED_FILE, render::expected_tsv())]
    }
}

/// The arguments of `nsverify-vm deviations`.
#[derive(clap::Args)]
pub(crate) struct DeviationsArgs {
    /// Result directories of `ci/vm-matrix.sh --fuzz --out DIR` (one
    /// `<kernel>/` each) to refresh ci/results/deviations.json from;
    /// without it the checked-in record is used as it is.
    pub(crate) results: Option<PathBuf>,
    /// Result directories of the reproducers' run in the guests
    /// (`deviations/vm-bin.sh OUT && ci/vm-matrix.sh --case-bin OUT --out DIR`;
    /// an arm64 build of the reproducers is a second `--case-bin`).
    #[arg(long)]
    pub(crate) reproducers: Option<PathBuf>,
    /// Write nothing; exit 1 if a file is not what would be written.
    #[arg(long)]
    pub(crate) check: bool,
}

/// `nsverify-vm deviations`: refreshes the record from the result
/// directories given, then writes (or checks) DEVIATIONS.md,
/// deviations/expected.tsv and the record. `order`: the matrix's kernels.
pub(crate) fn command(order: &[String], args: &DeviationsArgs) -> Result<u8> {
    let root = repo_root();
    let mut summary = Summary::load(&root).unwrap_or_default();
    for dir in [args.results.as_deref(), args.reproducers.as_deref()].into_iter().flatten() {
        summary.merge(dir, order)?;
    }
    let check = args.check;
    let mut files = summary.render();
    files.push((RESULTS_FILE, serde_json::to_string_pretty(&summary)? + "\n"));
    let mut stale = Vec::new();
    for (path, text) in files {
        let full = root.join(path);
        if std::fs::read_to_string(&full).ok().as_deref() == Some(text.as_str()) {
            continue;
        }
        if check {
            stale.push(path);
        } else {
            std::fs::create_dir_all(full.parent().expect("a file of the repository"))?;
            std::fs::write(&full, text)?;
            println!("wrote {path}");
        }
    }
    if !stale.is_empty() {
        eprintln!("nsverify-vm deviations: not current: {} (run `nsverify-vm deviations` and commit)", stale.join(", "));
        return Ok(1);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DEVIATIONS.md and deviations/expected.tsv are what the checked-in
    /// record renders to.
    #[test]
    fn deviations_md_is_current() {
        let root = repo_root();
        let summary = Summary::load(&root).unwrap();
        for (path, text) in summary.render() {
            let on_disk = std::fs::read_to_string(root.join(path)).unwrap_or_default();
            assert!(on_disk == text, "{path} is not what `nsverify-vm deviations` writes from {RESULTS_FILE}: run it and commit");
        }
    }

    /// Every entry's rows and reproducer were seen on some kernel of the record.
    #[test]
    fn the_record_covers_every_entry() {
        let summary = Summary::load(&repo_root()).unwrap();
        for e in ENTRIES {
            for row in e.rows.iter().map(|r| r.to_string()).chain([e.reproducer_row()]) {
                assert!(summary.cells.contains_key(&row), "{}: no results for {row} in {RESULTS_FILE}", e.id);
            }
        }
    }
}
