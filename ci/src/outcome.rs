//! What the subcommands share at their ends: the exit codes, the kernels
//! named that are not in the matrix, the private apt for the chosen
//! kernels, and the table printed and written at the end of a run.

use std::path::Path;

use anyhow::Result;

use crate::apt::Apt;
use crate::arch::Arch;
use crate::kbuild;
use crate::matrix::{KernelEntry, Matrix};
use crate::payload::repo_root;
use crate::table::{KernelResult, Loaded, Status, Table};

/// Every case passed or was skipped on every kernel.
pub(crate) const EXIT_PASSED: u8 = 0;
/// Some case failed (or was broken) on some kernel; the infrastructure worked.
pub(crate) const EXIT_CASES_FAILED: u8 = 1;
// 2: bad command line (clap's own exit code).
/// Infrastructure failure on some kernel: unknown kernel name, download,
/// boot, hang, guest or result transfer. Takes precedence over 1.
pub(crate) const EXIT_INFRASTRUCTURE: u8 = 3;

pub(crate) const EXIT_CODES: &str = "Exit codes: 0 all cases passed or skipped on every kernel; \
1 a case failed or was broken on some kernel; 2 bad command line; \
3 infrastructure failure (unknown kernel, download, boot, hang, lost results) on some kernel, even if cases also failed.";

/// Says on stderr which names are not kernels of the matrix.
pub(crate) fn report_unknown(unknown: &[String], matrix: &Matrix) {
    let known: Vec<&str> = matrix.kernels.iter().map(|k| k.name.as_str()).collect();
    for u in unknown {
        eprintln!("nsverify-vm: kernel {u:?} is not in the matrix (known: {}); the other kernels still run", known.join(", "));
    }
}

/// The private apt for `entries`: their suites, and the pinned kernel
/// source's when one of them is built from source.
pub(crate) fn apt_for(matrix: &Matrix, entries: &[KernelEntry], cache: &Path, arch: Arch) -> Apt {
    let entries: Vec<&KernelEntry> = entries.iter().filter(|e| e.arch == arch).collect();
    let mut suites: Vec<String> = entries.iter().filter_map(|e| e.suite.clone()).collect();
    if entries.iter().any(|e| e.build.is_some()) {
        // The pinned kernel source's suite; an unreadable spec is reported when the build starts.
        if let Ok(spec) = kbuild::BaseSpec::load(&repo_root().join(kbuild::BASE_SPEC)) {
            suites.push(spec.source.suite);
        }
    }
    if !entries.is_empty() && !arch.is_host() {
        // The guests' busybox comes from the archive too (payload::foreign_busybox).
        suites.push(crate::payload::BUSYBOX_SUITE.to_string());
    }
    suites.sort();
    suites.dedup();
    Apt::for_arch(cache, arch, matrix.apt.clone(), suites)
}

/// Results for names that are not in the matrix, so the table shows them.
pub(crate) fn unknown_results(unknown: &[String]) -> Vec<Loaded> {
    unknown.iter().map(|u| missing(&KernelEntry::unknown(u), &format!("kernel {u:?} is not in the kernel matrix file"))).collect()
}

/// A result for a kernel that produced none.
pub(crate) fn missing(e: &KernelEntry, why: &str) -> Loaded {
    let mut result = KernelResult::new(&e.name, &e.describe(&repo_root()));
    result.error = Some(why.into());
    Loaded { result, reports: Default::default() }
}

/// Prints the table, writes matrix.md and matrix.json, returns the exit code.
pub(crate) fn finish_table(loaded: &[Loaded], out: &Path, unknown_kernels: bool, full: bool) -> Result<u8> {
    let table = Table::build(loaded);
    println!("\n{}", table.terminal(full));
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("matrix.md"), table.markdown())?;
    std::fs::write(out.join("matrix.json"), serde_json::to_string_pretty(&table)? + "\n")?;
    println!("wrote {0}/matrix.md and {0}/matrix.json", out.display());
    let worst = loaded.iter().map(|l| l.result.status).max().unwrap_or(Status::Passed);
    Ok(if unknown_kernels || worst == Status::Infrastructure {
        EXIT_INFRASTRUCTURE
    } else if worst == Status::CasesFailed {
        EXIT_CASES_FAILED
    } else {
        EXIT_PASSED
    })
}
