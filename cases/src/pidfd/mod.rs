//! pidfds and namespaces (claims X3, X4): the `PIDFD_GET_<kind>_NAMESPACE` ioctls
//! (6.11, `<linux/pidfd.h>`, fs/pidfs.c) and setns(pidfd, flags) (5.8, setns(2)).
//!
//! Peers: the kernel's pidfd/pidfd_setns_test.c (setns by pidfd) and
//! namespaces/regression_pidfd_setns_test.c; no selftest checks the
//! PIDFD_GET_*_NAMESPACE results against `/proc/[pid]/ns`.
//!
//! One part per claim: `get_namespace` (X3) and `setns` (X4); this module
//! holds the case lists and what both use: the caller's fds and
//! `/proc/[pid]/ns` entries, and a target that has exited.

mod get_namespace;
mod setns;

use std::time::Duration;

use harness::peer::{Peer, Spawn};
use harness::pidfd::{Pidfd, PIDFD_NS_IOCTLS};
use harness::{check, check_eq, Case, CaseError, CaseResult, Errno, Kind, NsId, Privilege, Proc, Requires, Setup};

use crate::common::must_fail_with;
use get_namespace::{get_namespace, get_namespace_exited, nonzero_arg};
use setns::{all_or_none, exit_race, invalid_flags, setns_exited, user_and_owned, MixedSabotage, EXIT_RACE_ROUNDS, MIXED_KINDS};

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for req in PIDFD_NS_IOCTLS {
        out.push(
            Case::new(
                format!("pidfd.get_namespace.{}", req.entry),
                &["X3"],
                format!(
                    "{} on the pidfd of a process in a new {} namespace returns an fd for the namespace of /proc/[pid]/ns/{} (st_dev and st_ino), not ours",
                    req.name, req.kind, req.entry
                ),
                move || get_namespace(req, req),
            )
            .requires(x3_requires(&[req.kind])),
        );
    }
    out.push(
        Case::new(
            "pidfd.get_namespace.nonzero_arg",
            &["X3"],
            "every PIDFD_GET_<kind>_NAMESPACE request with a nonzero argument is EINVAL and opens no fd; with 0 it succeeds",
            || nonzero_arg(&[1, libc::c_ulong::MAX]),
        )
        .requires(x3_requires(&[Kind::Uts])),
    );
    for state in [Exited::Zombie, Exited::Reaped] {
        out.push(
            Case::new(
                format!("pidfd.get_namespace.esrch.{state}"),
                &["X3"],
                format!("every PIDFD_GET_<kind>_NAMESPACE request on the pidfd of an exited target ({state}) is ESRCH and opens no fd"),
                move || get_namespace_exited(state, true),
            )
            .requires(x3_requires(&[Kind::User, Kind::Uts])),
        );
        out.push(
            Case::new(
                format!("pidfd.setns.esrch.{state}"),
                &["X4"],
                format!("setns(pidfd, flags) on an exited target ({state}) is ESRCH and changes none of the caller's namespaces"),
                move || setns_exited(state, true),
            )
            .requires(x4_requires(&[Kind::User, Kind::Uts, Kind::Net])),
        );
    }
    out.push(
        Case::new(
            "pidfd.setns.all_or_none",
            &["X4"],
            "setns(pidfd, CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWCGROUP|CLONE_NEWNET) where only the net namespace is owned by a user namespace the caller has no CAP_SYS_ADMIN in: EPERM, and none of the four joinable namespaces is joined",
            || all_or_none(MixedSabotage::None),
        )
        .requires(x4_requires(&MIXED_KINDS)),
    );
    out.push(
        Case::new(
            "pidfd.setns.user_and_owned",
            &["X4"],
            "a caller without CAP_SYS_ADMIN in its own user namespace is refused the target's namespaces (EPERM, unchanged), but with CLONE_NEWUSER added joins them all and has CAP_SYS_ADMIN there",
            || user_and_owned(true),
        )
        .requires(x4_requires(&MIXED_KINDS)),
    );
    out.push(
        Case::new(
            "pidfd.setns.exit_race",
            &["X4"],
            format!(
                "{EXIT_RACE_ROUNDS} setns(pidfd, CLONE_NEWUTS|CLONE_NEWIPC) calls racing the target's exit each join both namespaces or fail with ESRCH and join none; a joined namespace's owning user namespace stays active (nsfs handle reopens; 1c465d0518dc)"
            ),
            || exit_race(true),
        )
        .requires(x4_requires(&[Kind::User, Kind::Uts, Kind::Ipc])),
    );
    out.push(
        Case::new(
            "pidfd.setns.invalid_flags",
            &["X4"],
            "setns(pidfd, flags) with bits other than CLONE_NEW* (CLONE_VM, CLONE_THREAD, a CSIGNAL bit, bit 31, all bits), alone or with CLONE_NEW* bits, is EINVAL and changes nothing",
            || invalid_flags(&[]),
        )
        .requires(x4_requires(&[Kind::Uts, Kind::User])),
    );
    out
}

/// The cases of this topic run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    let mut out = Vec::new();
    for (req, wrong) in [(0, 1), (4, 5), (5, 4), (6, 7), (7, 6), (8, 9)] {
        let (req, wrong) = (PIDFD_NS_IOCTLS[req], PIDFD_NS_IOCTLS[wrong]);
        out.push(
            Case::new(
                format!("sabotage.pidfd.get_namespace.{}", req.entry),
                &["X3"],
                format!("{} is issued where {} is expected: the identity check must see another namespace", wrong.name, req.name),
                move || must_fail_with(get_namespace(req, wrong), &format!("on the peer's pidfd vs /proc/<pid>/ns/{}", req.entry)),
            )
            .requires(x3_requires(&[req.kind, wrong.kind])),
        );
    }
    out.push(
        Case::new("sabotage.pidfd.get_namespace.nonzero_arg", &["X3"], "argument 0 is expected to be EINVAL", || {
            must_fail_with(nonzero_arg(&[0]), "with argument 0x0")
        })
        .requires(x3_requires(&[Kind::Uts])),
    );
    out.push(
        Case::new(
            "sabotage.pidfd.get_namespace.esrch.reaped",
            &["X3"],
            "the target is never let go: the ESRCH check must see the requests succeed",
            || must_fail_with(get_namespace_exited(Exited::Reaped, false), "on the pidfd of a reaped target"),
        )
        .requires(x3_requires(&[Kind::User, Kind::Uts])),
    );
    out.push(
        Case::new(
            "sabotage.pidfd.setns.esrch.zombie",
            &["X4"],
            "the target is never let go: the ESRCH check must see setns succeed",
            || must_fail_with(setns_exited(Exited::Zombie, false), "on the pidfd of a zombie target"),
        )
        .requires(x4_requires(&[Kind::User, Kind::Uts, Kind::Net])),
    );
    out.push(
        Case::new(
            "sabotage.pidfd.setns.all_or_none.unchanged",
            &["X4"],
            "the joinable namespaces are joined before the caller's namespaces are compared: the all-or-none check must see them changed",
            || must_fail_with(all_or_none(MixedSabotage::JoinBeforeCompare), "namespace after the refused setns(pidfd"),
        )
        .requires(x4_requires(&MIXED_KINDS)),
    );
    out.push(
        Case::new(
            "sabotage.pidfd.setns.all_or_none.eperm",
            &["X4"],
            "the refused net namespace is left out of the flags: the EPERM check must see the call succeed",
            || must_fail_with(all_or_none(MixedSabotage::LeaveOutNet), "owned by a user namespace the caller has no CAP_SYS_ADMIN in"),
        )
        .requires(x4_requires(&MIXED_KINDS)),
    );
    out.push(
        Case::new(
            "sabotage.pidfd.setns.user_and_owned",
            &["X4"],
            "CLONE_NEWUSER is left out of the second call: the join check must see EPERM",
            || must_fail_with(user_and_owned(false), "on a target whose user namespace owns its namespaces"),
        )
        .requires(x4_requires(&MIXED_KINDS)),
    );
    out.push(
        Case::new(
            "sabotage.pidfd.setns.exit_race",
            &["X4"],
            "the joiner reports a join without calling setns: the identity check must see its own namespaces",
            || must_fail_with(exit_race(false), "of a joiner whose setns(pidfd"),
        )
        .requires(x4_requires(&[Kind::User, Kind::Uts, Kind::Ipc])),
    );
    out.push(
        Case::new("sabotage.pidfd.setns.invalid_flags", &["X4"], "CLONE_NEWUTS alone is expected to be EINVAL", || {
            must_fail_with(invalid_flags(&[Kind::Uts.flag()]), "setns(pidfd, CLONE_NEWUTS) (bits other than")
        })
        .requires(x4_requires(&[Kind::Uts, Kind::User])),
    );
    out
}

/// `PIDFD_GET_<kind>_NAMESPACE` arrived in 6.11 (commit 5b08bd408534,
/// `<linux/pidfd.h>`); a backport to an older kernel is skipped, never
/// passed.
fn x3_requires(kinds: &[Kind]) -> Requires {
    let since = PIDFD_NS_IOCTLS[0].since;
    Requires::kinds(kinds).kernel(since.major, since.minor).privilege(Privilege::Admin)
}

/// setns(2): "Since Linux 5.8, fd may refer to a PID file descriptor".
fn x4_requires(kinds: &[Kind]) -> Requires {
    Requires::kinds(kinds).kernel(5, 8).privilege(Privilege::Admin)
}

/// How long an exited peer may take to become a zombie.
fn exit_deadline() -> Duration {
    harness::isolate::scaled(Duration::from_secs(2))
}

/// The caller's fds (`/proc/self/fd`), to show that a refused request
/// opened none.
pub(crate) fn open_fds() -> Result<Vec<i32>, CaseError> {
    let mut fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .setup("listing /proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    Ok(fds)
}

/// `/proc/[pid]/ns` entries with the namespaces they name.
type Entries = Vec<(String, NsId)>;

/// Every `/proc/[pid]/ns` entry this kernel has, with the namespace it names:
/// each kind's own entry and pid_for_children, time_for_children.
fn entries(proc: Proc) -> Result<Entries, CaseError> {
    let mut out = Vec::new();
    for req in PIDFD_NS_IOCTLS {
        match NsId::of_entry(proc, req.entry) {
            Ok(id) => out.push((req.entry.to_string(), id)),
            // A kind compiled out has no entry.
            Err(Errno::ENOENT) if NsId::current(req.kind) == Err(Errno::ENOENT) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// Fails unless every entry of `after` names the namespace it named in
/// `before`.
fn check_unchanged(before: &Entries, after: &Entries, after_what: &str) -> CaseResult {
    check_eq!(after.len(), before.len(), "number of /proc/self/ns entries {after_what}");
    for ((entry, was), (_, now)) in before.iter().zip(after) {
        check_eq!(now, was, "{entry} namespace {after_what}");
    }
    Ok(())
}

/// The state of an exited target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exited {
    /// Terminated, not yet waited for: its task remains, without namespaces.
    Zombie,
    /// Waited for: no task remains.
    Reaped,
}

impl std::fmt::Display for Exited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Exited::Zombie => "zombie",
            Exited::Reaped => "reaped",
        })
    }
}

/// A target in new user, uts and net namespaces (as pidfd_setns_test.c's
/// exited child) and its pidfd, opened while it runs; with `exit`, it has
/// then exited and is a zombie or reaped. The returned peer (`None` once
/// reaped) must be joined by the caller.
fn exited_target(state: Exited, exit: bool) -> Result<(Option<Peer>, Pidfd, Entries), CaseError> {
    let mut peer = Spawn::clone(Kind::User.flag() | Kind::Uts.flag() | Kind::Net.flag()).map_root().spawn_idle()?;
    let pidfd = Pidfd::open(peer.pid())?;
    let theirs = entries(peer.proc())?;
    if !exit {
        return Ok((Some(peer), pidfd, theirs));
    }
    peer.go()?;
    match state {
        Exited::Zombie => {
            check!(pidfd.wait_exited(exit_deadline())?, "the target did not exit within {:?}", exit_deadline());
            if !peer.has_exited()? {
                return Err(CaseError::broken("the pidfd polled readable but the target is not waitable"));
            }
            Ok((Some(peer), pidfd, theirs))
        }
        Exited::Reaped => {
            peer.join()?;
            Ok((None, pidfd, theirs))
        }
    }
}
