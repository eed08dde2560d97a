//! The pinned source tree with at most one mutant applied: `patch -p1`,
//! a marker file naming the patch so that an interrupted run restores the
//! tree the next time, and the dry run that checks every patch applies.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{ensure, Context, Result};

use super::list::Mutant;

/// A source tree with at most one mutant applied, restored on drop.
pub(super) struct Applied<'a> {
    src: &'a Path,
    patch: PathBuf,
    marker: PathBuf,
}

fn run_patch(src: &Path, patch: &Path, reverse: bool, dry: bool) -> Result<()> {
    let mut c = Command::new("patch");
    c.args(["-p1", "--batch", "--forward", "--no-backup-if-mismatch", "-r", "-", "-s"]).current_dir(src);
    if reverse {
        c.arg("-R");
    }
    if dry {
        c.arg("--dry-run");
    }
    let out = c
        .stdin(std::fs::File::open(patch).with_context(|| format!("opening {}", patch.display()))?)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .context("running patch (apt-get install patch)")?;
    ensure!(
        out.status.success(),
        "patch{} {} failed: {}{}",
        if reverse { " -R" } else { "" },
        patch.display(),
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// The file in the source tree that names the patch currently applied, so
/// that a run killed half way restores the tree the next time.
fn marker(src: &Path) -> PathBuf {
    src.join(".nsverify-mutant-applied")
}

/// Reverses a patch a previous run left applied.
pub fn restore_tree(src: &Path) -> Result<()> {
    let m = marker(src);
    if let Ok(patch) = std::fs::read_to_string(&m) {
        run_patch(src, Path::new(patch.trim()), true, false).context("restoring the tree a previous run left patched")?;
        std::fs::remove_file(&m)?;
    }
    Ok(())
}

impl<'a> Applied<'a> {
    /// Applies `patch` to `src` (first restoring what an earlier run left).
    pub(super) fn apply(src: &'a Path, patch: &Path) -> Result<Applied<'a>> {
        restore_tree(src)?;
        run_patch(src, patch, false, false)?;
        let marker = marker(src);
        std::fs::write(&marker, patch.display().to_string())?;
        Ok(Applied { src, patch: patch.to_path_buf(), marker })
    }
}

impl Drop for Applied<'_> {
    fn drop(&mut self) {
        match run_patch(self.src, &self.patch, true, false) {
            Ok(()) => {
                let _ = std::fs::remove_file(&self.marker);
            }
            Err(e) => eprintln!("mutants: could not restore the tree: {e:#} (the next run retries)"),
        }
    }
}

/// Checks that every patch applies to the pristine source (dry run).
pub fn check_patches(root: &Path, src: &Path, mutants: &[Mutant]) -> Vec<(String, String)> {
    mutants
        .iter()
        .filter_map(|m| {
            run_patch(src, &root.join("ci/mutants").join(&m.patch), false, true).err().map(|e| (m.id.clone(), format!("{e:#}")))
        })
        .collect()
}
