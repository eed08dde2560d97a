//! Kernel health around a run (claim K1): the kernel's taint flags before
//! and after, and new kernel-log reports (WARNING, BUG, Oops, KASAN,
//! lockdep, RCU stalls, refcount and list corruption) read from
//! `/dev/kmsg` from where the run started. A kernel that was tainted before
//! the run is noted, not failed; the log is scanned where it is readable
//! (root, or `kernel.dmesg_restrict=0`), and the record says when it is not.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;

/// Log lines that report kernel trouble, by the text the kernel prints.
pub const REPORT_MARKS: &[&str] = &[
    "WARNING:",
    "BUG:",
    "Oops",
    "KASAN",
    "UBSAN",
    "possible circular locking",
    "possible recursive locking",
    "inconsistent lock state",
    "rcu_sched detected stall",
    "rcu: INFO:",
    "refcount_t:",
    "list_add corruption",
    "list_del corruption",
    "Kernel panic",
    "general protection fault",
];

/// Whether a kernel log line reports trouble.
pub fn is_report(line: &str) -> bool {
    REPORT_MARKS.iter().any(|m| line.contains(m))
}

/// The state taken before a run.
pub struct Health {
    tainted: Option<u64>,
    kmsg: Result<File, String>,
}

/// What changed during the run.
#[derive(Debug, Default)]
pub struct Findings {
    /// Taint flags at the start, if readable and nonzero (noted, not failed).
    pub tainted_before: Option<u64>,
    /// Taint flags that appeared during the run.
    pub new_taint: Option<u64>,
    /// New report lines of the kernel log.
    pub reports: Vec<String>,
    /// Why the log could not be read, if so.
    pub log_unreadable: Option<String>,
}

impl Findings {
    /// Whether the run made the kernel report trouble.
    pub fn failed(&self) -> bool {
        self.new_taint.is_some() || !self.reports.is_empty()
    }
}

fn tainted() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/kernel/tainted").ok()?.trim().parse().ok()
}

impl Health {
    /// Reads the taint flags and opens the kernel log at its end.
    pub fn take() -> Health {
        let kmsg = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .map_err(|e| format!("/dev/kmsg: {e}"))
            .and_then(|mut f| f.seek(SeekFrom::End(0)).map(|_| f).map_err(|e| format!("seeking /dev/kmsg: {e}")));
        Health { tainted: tainted(), kmsg }
    }

    /// What appeared since [`Health::take`].
    pub fn findings(self) -> Findings {
        let mut out = Findings { tainted_before: self.tainted.filter(|t| *t != 0), ..Findings::default() };
        if let (Some(before), Some(after)) = (self.tainted, tainted()) {
            out.new_taint = Some(after & !before).filter(|t| *t != 0);
        }
        match self.kmsg {
            Ok(mut f) => {
                // One record per read(2): "prio,seq,usec,flags;text".
                let mut buf = vec![0u8; 8192];
                loop {
                    match f.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            let rec = String::from_utf8_lossy(&buf[..n]);
                            let text = rec.split_once(';').map_or(rec.as_ref(), |(_, t)| t).lines().next().unwrap_or("").to_string();
                            if is_report(&text) && out.reports.len() < 50 {
                                out.reports.push(text);
                            }
                        }
                        // EPIPE: records were overwritten; go on with the next.
                        Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                        Err(_) => break,
                    }
                }
            }
            Err(e) => out.log_unreadable = Some(e),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_are_recognised() {
        assert!(is_report("WARNING: CPU: 0 PID: 1 at kernel/ucount.c:10 dec_ucount+0x1/0x2"));
        assert!(is_report("BUG: KASAN: slab-use-after-free in nsfs_evict"));
        assert!(!is_report("random: crng init done"));
    }

    #[test]
    fn findings_fail_only_on_new_trouble() {
        let mut f = Findings { tainted_before: Some(512), ..Findings::default() };
        assert!(!f.failed(), "a kernel tainted before the run is noted, not failed");
        f.reports.push("BUG: x".into());
        assert!(f.failed());
    }
}
