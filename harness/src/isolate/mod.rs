//! Isolation: every case body runs in a fresh, single-threaded process, in
//! its own process group, dying with its parent, under a deadline. The
//! verdict comes back over a pipe; on the deadline the whole group is killed
//! and the case is broken.
//!
//! The processes come from a fork server (the zygote): a process forked
//! from `main` before any thread exists, holding the case table. For each
//! case a runner thread sends it the case id with the verdict pipe and the
//! output file (SCM_RIGHTS); the zygote forks the case child with
//! CLONE_PARENT, so that the child is the runner's own child, to wait for,
//! kill with its group and reap. A fork costs far less than re-executing
//! the test binary (under emulation, milliseconds against tens).
//!
//! - `supervisor`: the runner side: starting the zygote, asking it for a
//!   case child, the deadline, killing and reaping the group, reading the
//!   verdict and output.
//! - `zygote`: the child side: the fork server and the case child that
//!   runs the body and writes the verdict.
//! - this module: what both share (the verdict, notes, deadline scaling,
//!   and the names of what cases create: [`scratch_name`]).

use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::case::{Case, CaseError, CaseResult, Outcome};

mod supervisor;
mod zygote;

pub use crate::sys::become_subreaper;
pub use supervisor::*;

/// Multiplies every deadline (for slow machines such as emulated VMs).
pub const TIMEOUT_SCALE_ENV: &str = "NSVERIFY_TIMEOUT_SCALE";

static CHILD_VERDICT_FD: AtomicI32 = AtomicI32::new(-1);

/// The pid of the runner: the process that started the zygote
/// ([`start_zygote`]); 0 before. Case children inherit it with the zygote's
/// memory.
static RUNNER_PID: AtomicU32 = AtomicU32::new(0);

/// In a case child and its peers: the case child's pid in the runner's pid
/// namespace (recorded right after the fork, before the body can enter a new
/// pid namespace); 0 elsewhere.
static CASE_PID: AtomicU32 = AtomicU32::new(0);

/// The runner this process serves: its own pid in the runner, the runner's
/// in a case child and the peers it starts.
pub fn runner_pid() -> u32 {
    match RUNNER_PID.load(Ordering::Relaxed) {
        0 => std::process::id(),
        pid => pid,
    }
}

/// A name for something a case creates outside its own namespaces (a
/// scratch cgroup, a mount source, a message queue, a hostname):
/// `nsverify-<what>-r<runner pid>c<case pid>`. Unique among live runs and
/// their cases (both pids are in the runner's pid namespace, even from a
/// peer in a new one), and it tells which runner's no-trace check judges it
/// ([`runner_of`]): several runners share a cgroup and a mount table, for
/// example under `cargo nextest`, which starts one process per case.
pub fn scratch_name(what: &str) -> String {
    let case = match CASE_PID.load(Ordering::Relaxed) {
        0 => std::process::id(),
        pid => pid,
    };
    format!("nsverify-{what}-r{}c{case}", runner_pid())
}

/// The runner pid in `name` when it is a [`scratch_name`], else `None`.
pub fn runner_of(name: &str) -> Option<u32> {
    let (_, tag) = name.strip_prefix("nsverify-")?.rsplit_once('-')?;
    let (runner, case) = tag.strip_prefix('r')?.split_once('c')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if digits(runner) && digits(case) {
        runner.parse().ok()
    } else {
        None
    }
}

/// The verdict a case child sends: its result and the notes it took.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Verdict {
    result: CaseResult,
    notes: Vec<(String, String)>,
}

/// Notes taken by the running case body (measured figures worth keeping).
static NOTES: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Records a measured figure of the running case (for example a release
/// latency): it appears in the case's report record under `notes`.
pub fn note(key: impl Into<String>, value: impl std::fmt::Display) {
    NOTES.lock().unwrap_or_else(|e| e.into_inner()).push((key.into(), value.to_string()));
}

/// `d` scaled by `NSVERIFY_TIMEOUT_SCALE` (1 when unset or invalid).
pub fn scaled(d: Duration) -> Duration {
    let scale = std::env::var(TIMEOUT_SCALE_ENV).ok().and_then(|s| s.parse::<f64>().ok()).filter(|s| *s > 0.0).unwrap_or(1.0);
    d.mul_f64(scale)
}

/// The deadline of `case` after scaling by `NSVERIFY_TIMEOUT_SCALE`.
pub fn deadline(case: &Case) -> Duration {
    scaled(case.timeout)
}

/// In a forked peer: closes the inherited verdict fd, so that only the case
/// child itself reports.
pub(crate) fn close_verdict_fd() {
    let fd = CHILD_VERDICT_FD.swap(-1, Ordering::SeqCst);
    if fd >= 0 {
        let _ = nix::unistd::close(fd);
    }
}

/// The failure of a body (or peer) that panicked: the message and location
/// the panic hook of the case child recorded.
pub(crate) fn panic_failure() -> CaseError {
    let (msg, loc) = PANIC.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_default();
    CaseError { outcome: Outcome::Fail, message: format!("panicked: {msg}"), location: loc, errno: None }
}

/// Message and location of the last panic in this process.
static PANIC: Mutex<Option<(String, String)>> = Mutex::new(None);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_names_carry_their_runner() {
        let name = scratch_name("cgns-a");
        assert!(name.starts_with("nsverify-cgns-a-r"), "{name}");
        assert_eq!(runner_of(&name), Some(runner_pid()));
        assert_eq!(runner_of("nsverify-cg-r12c345"), Some(12));
        for other in ["nsverify-cg-320", "nsverify-listns", "nsverify-cg-r12c", "nsverify-cg-rxc1", "cg-r12c345", "nsverify-cg-r1c2x"] {
            assert_eq!(runner_of(other), None, "{other}");
        }
    }
}
