//! Helpers shared by the case files: ways to be in a new namespace, scratch
//! mounts and scratch cgroups.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::flags::NsFlags;
use harness::peer::{call, Spawn, Via};
use harness::poll::{poll_until, Pause};
use harness::{check_ne, note, CaseError, CaseResult, Errno, Kind, NsId, Outcome, Setup};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Runs `f` in a process that is itself in a new namespace of `kind` (and
/// of the kinds in `extra`), and returns its value: a child started by
/// [`Spawn::new_ns_with`], or for time (whose new namespace is that child's
/// `time_for_children`) that child's own next child.
pub fn in_new_ns<T, F>(kind: Kind, extra: impl Into<NsFlags>, f: F) -> Result<T, CaseError>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T, CaseError>,
{
    // Before `f` changes anything, the process must really be in a new
    // namespace: a kernel that ignored the flag would otherwise have `f`
    // change the caller's (perhaps the host's) state.
    let outside = NsId::current(kind)?;
    let guarded = move || {
        check_ne!(NsId::current(kind)?, outside, "{kind} namespace of the process meant to be in a new one");
        f()
    };
    let spawn = Spawn::new_ns_with(kind, extra);
    if Via::for_new_ns(kind) == Via::Clone {
        call(&spawn, guarded)
    } else {
        call(&spawn, || call(&Spawn::fork(), guarded))
    }
}

/// The verdict of a sabotaged case body (a wrong expectation or a broken
/// step): it must fail, as the real case would on a kernel that breaks the
/// claim. A pass means the case cannot fail; broken means the sabotage did
/// not reach the check.
pub fn must_fail(result: CaseResult) -> CaseResult {
    match result {
        Err(e) if e.outcome == Outcome::Fail => Ok(()),
        Ok(()) => Err(CaseError::fail("the sabotaged body passed: this case cannot fail")),
        Err(e) => Err(CaseError::fail(format!("the sabotaged body ended {} instead of fail: {e}", e.outcome))),
    }
}

/// [`must_fail`], and the failure must be the check that names `expected`
/// (a substring of its message): a sabotage that fails elsewhere, for
/// example on an unexpected errno in its setup, does not show that the
/// check can fail.
pub fn must_fail_with(result: CaseResult, expected: &str) -> CaseResult {
    match result {
        Err(e) if e.outcome == Outcome::Fail && !e.message.contains(expected) => {
            Err(CaseError::fail(format!("the sabotaged body failed, but not at the check on {expected:?}: {e}")))
        }
        other => must_fail(other),
    }
}

/// Makes every mount of the caller's (new) mount namespace private, so that
/// nothing mounted here propagates to the namespace it was copied from
/// (mount_namespaces(7), "Shared subtrees"): the first step of any case that
/// mounts.
pub fn private_mounts() -> CaseResult {
    harness::mntns::make_private().setup("mount --make-rprivate /")
}

/// A directory every supported system has, to mount scratch filesystems on
/// inside a private mount namespace (harness's [`harness::mntns::SCRATCH_DIR`]).
pub const SCRATCH: &str = harness::mntns::SCRATCH_DIR;

/// Mounts a fresh tmpfs named `source` on [`SCRATCH`] in the caller's mount
/// namespace (which must be new and private), for directories and mount
/// points that exist only there.
pub fn scratch_tmpfs(source: &str) -> CaseResult {
    harness::mntns::scratch_tmpfs(source).setup("mount tmpfs on /tmp")
}

/// A name unique to this run of a case, for objects that must not collide
/// with anything else on the system: [`harness::isolate::scratch_name`],
/// which names the runner whose no-trace check judges the object.
pub fn unique(what: &str) -> String {
    harness::isolate::scratch_name(what)
}

/// How long a scratch cgroup's removal may stay EBUSY before the case gives
/// up (scaled by `NSVERIFY_TIMEOUT_SCALE` for slow guests): the kernel
/// reports a cgroup's last process gone a little after it was reaped.
const REMOVE_WITHIN: Duration = Duration::from_secs(2);

/// A child cgroup of ours. The body removes it as its last step
/// ([`Scratch::remove`], [`finish`]): a cgroup that will not go is a broken
/// case. Dropping one not removed (a body that ended early) removes it too,
/// and notes it if it stays behind.
pub struct Scratch {
    /// Its directory in the cgroup2 hierarchy.
    pub dir: PathBuf,
    /// Its path as `/proc/[pid]/cgroup` shows it in the initial namespace.
    pub path: String,
    /// Whether [`Scratch::remove`] has run (Drop then does nothing).
    removed: bool,
}

impl Scratch {
    /// Makes the cgroup `<base>/<unique name>`, `own` being `base`'s path as
    /// `/proc/[pid]/cgroup` shows it.
    pub fn new(base: &Path, own: &str, what: &str) -> Result<Scratch, CaseError> {
        let name = unique(what);
        let dir = base.join(&name);
        fs::create_dir(&dir).setup("mkdir a child cgroup")?;
        Ok(Scratch { dir, path: format!("{}/{name}", own.trim_end_matches('/')), removed: false })
    }

    /// Its `cgroup.procs` file.
    pub fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// rmdir(2), retried every millisecond while EBUSY, up to the scaled
    /// [`REMOVE_WITHIN`]; the last error otherwise.
    fn rmdir(&self) -> std::io::Result<()> {
        let mut busy = Ok(());
        let removed =
            poll_until(harness::isolate::scaled(REMOVE_WITHIN), Pause::every(Duration::from_millis(1)), || {
                match fs::remove_dir(&self.dir) {
                    Err(e) if e.raw_os_error() == Some(Errno::EBUSY as i32) => {
                        busy = Err(e);
                        Ok(false)
                    }
                    other => other.map(|()| true),
                }
            })?;
        removed.map_or(busy, |_| Ok(()))
    }

    /// Removes the cgroup: broken (setup) if it is still there.
    pub fn remove(mut self) -> CaseResult {
        self.removed = true;
        let limit = harness::isolate::scaled(REMOVE_WITHIN);
        self.rmdir().setup(&format!("rmdir the scratch cgroup {} (retried while EBUSY for {limit:?})", self.dir.display()))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        if let Err(e) = self.rmdir() {
            note("cgroup_left_behind", format!("{}: {e} (the body ended before removing it)", self.dir.display()));
        }
    }
}

/// The body's `verdict`, then the removal of its scratch cgroups (all of
/// them, whatever the verdict): a cgroup left behind turns a pass into
/// broken; after a failure it is noted and the failure stands.
pub fn finish(verdict: CaseResult, scratches: impl IntoIterator<Item = Scratch>) -> CaseResult {
    let mut verdict = verdict;
    for s in scratches {
        if let Err(e) = s.remove() {
            match verdict {
                Ok(()) => verdict = Err(e),
                Err(_) => note("cgroup_left_behind", &e.message),
            }
        }
    }
    verdict
}
