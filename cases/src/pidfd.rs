//! pidfds and namespaces (claims X3, X4): the PIDFD_GET_<kind>_NAMESPACE ioctls
//! (6.11, `<linux/pidfd.h>`, fs/pidfs.c) and setns(pidfd, flags) (5.8, setns(2)).
//!
//! Peers: the kernel's pidfd/pidfd_setns_test.c (setns by pidfd) and
//! namespaces/regression_pidfd_setns_test.c; no selftest checks the
//! PIDFD_GET_*_NAMESPACE results against `/proc/[pid]/ns`.

use std::time::Duration;

use harness::error::{Op, OpContext};
use harness::flags::describe;
use harness::observe::{HandleProber, NsHandle};
use harness::peer::{in_child, Peer, Spawn};
use harness::pidfd::{Pidfd, PidfdNsIoctl, PIDFD_NS_IOCTLS};
use harness::probe::Cap;
use harness::{
    check, check_eq, check_ne, expect_errno, sys, userns, Case, CaseError, CaseResult, Errno, Kind, NsFd, NsId, Privilege, Proc, Requires,
    Setup,
};

use crate::common::{must_fail_with, spawn_in_new};

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

/// PIDFD_GET_<kind>_NAMESPACE arrived in 6.11 (commit 5b08bd408534,
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

/// A peer whose namespace at `entry` is not ours. For pid and time the
/// peer's own namespace and its for_children namespace are both new and
/// differ from each other, so that the two requests are told apart.
fn peer_for(entry: &str) -> Result<Peer, CaseError> {
    let mut peer = match entry {
        "pid" | "pid_for_children" => Spawn::clone(Kind::Pid.flag()).spawn(|ch| {
            // Own: the new namespace P1 (we are its init); for children: P2.
            sys::unshare(Kind::Pid.flag()).op(Op::Unshare(Kind::Pid.flag()))?;
            // pid_for_children is in /proc once P2 has a process.
            let first = Spawn::fork().spawn_idle()?;
            ch.ready()?;
            ch.wait()?;
            drop(first);
            Ok(())
        })?,
        "time" | "time_for_children" => Spawn::unshare(Kind::Time.flag()).spawn(|ch| {
            // Own: T1 (joined through time_for_children); for children: T2.
            NsFd::open_entry(Proc::Myself, "time_for_children")?.setns(Kind::Time.flag())?;
            sys::unshare(Kind::Time.flag()).op(Op::Unshare(Kind::Time.flag()))?;
            ch.ready()?;
            ch.wait()
        })?,
        _ => {
            let kind = Kind::from_proc_name(entry).ok_or_else(|| CaseError::broken(format!("no kind named {entry}")))?;
            return spawn_in_new(kind, 0).spawn_idle();
        }
    };
    peer.wait_ready()?;
    Ok(peer)
}

/// `issue` is the request sent; `req` the one expected (they differ only in
/// the sabotage).
fn get_namespace(req: PidfdNsIoctl, issue: PidfdNsIoctl) -> CaseResult {
    let mut peer = peer_for(req.entry)?;
    let pidfd = Pidfd::open(peer.pid())?;
    let theirs = NsId::of_entry(peer.proc(), req.entry)?;
    check_ne!(theirs, NsId::of_entry(Proc::Myself, req.entry)?, "the peer's {} namespace (new) vs ours", req.entry);
    if let Some(sibling) = PIDFD_NS_IOCTLS.into_iter().find(|r| r.kind == req.kind && r.entry != req.entry) {
        check_ne!(theirs, NsId::of_entry(peer.proc(), sibling.entry)?, "the peer's {} vs its {} namespace", req.entry, sibling.entry);
    }
    let fd = pidfd.namespace(issue)?;
    check_eq!(fd.id(), theirs, "{} on the peer's pidfd vs /proc/<pid>/ns/{}", req.name, req.entry);
    check_eq!(describe(fd.nstype()?), describe(req.kind.flag()), "NS_GET_NSTYPE of the fd {} returned", req.name);
    // The fd names the namespace as the entry does, also after the peer is gone.
    peer.go()?;
    peer.join()?;
    check_eq!(NsId::of_fd(&fd)?, theirs, "the fd from {} after the peer exited", req.name);
    Ok(())
}

fn nonzero_arg(args: &[libc::c_ulong]) -> CaseResult {
    let mut peer = spawn_in_new(Kind::Uts, 0).spawn_idle()?;
    let pidfd = Pidfd::open(peer.pid())?;
    for req in PIDFD_NS_IOCTLS {
        for &arg in args {
            let fds = open_fds()?;
            expect_errno!(pidfd.namespace_with_arg(req, arg), Errno::EINVAL, "{} with argument {arg:#x} on a live target", req.name);
            check_eq!(open_fds()?, fds, "the caller's fds after {} with argument {arg:#x}", req.name);
        }
        // With 0 the same request on the same target succeeds (kinds compiled
        // out excepted: their entries are absent and the request EOPNOTSUPP).
        if NsId::current(req.kind).is_ok() {
            let fd = pidfd.namespace(req)?;
            check_eq!(fd.id(), NsId::of_entry(peer.proc(), req.entry)?, "{} with argument 0 vs /proc/<pid>/ns/{}", req.name, req.entry);
        }
    }
    peer.go()?;
    peer.join()
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

/// `exit` false is the sabotage: the target never exits.
fn get_namespace_exited(state: Exited, exit: bool) -> CaseResult {
    let (peer, pidfd, _) = exited_target(state, exit)?;
    for req in PIDFD_NS_IOCTLS {
        let fds = open_fds()?;
        expect_errno!(pidfd.namespace(req), Errno::ESRCH, "{} on the pidfd of a {state} target", req.name);
        check_eq!(open_fds()?, fds, "the caller's fds after {} on a {state} target", req.name);
    }
    match peer {
        Some(peer) if exit => peer.join(),
        _ => Ok(()),
    }
}

/// `exit` false is the sabotage: the target never exits.
fn setns_exited(state: Exited, exit: bool) -> CaseResult {
    let (peer, pidfd, theirs) = exited_target(state, exit)?;
    let before = entries(Proc::Myself)?;
    check_ne!(theirs, before, "the target's namespaces vs ours");
    let all = Kind::User.flag() | Kind::Uts.flag() | Kind::Net.flag();
    for flags in [all, Kind::Uts.flag(), Kind::User.flag()] {
        let after = in_child(|| {
            expect_errno!(pidfd.setns(flags), Errno::ESRCH, "setns(pidfd, {}) on the pidfd of a {state} target", describe(flags));
            entries(Proc::Myself)
        })?;
        check_unchanged(&before, &after, &format!("after setns(pidfd, {}) on a {state} target", describe(flags)))?;
    }
    match peer {
        Some(peer) if exit => peer.join(),
        _ => Ok(()),
    }
}

/// The kinds of the all-or-none target.
const MIXED_KINDS: [Kind; 6] = [Kind::User, Kind::Mnt, Kind::Uts, Kind::Ipc, Kind::Cgroup, Kind::Net];

/// How the all-or-none case is sabotaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MixedSabotage {
    None,
    /// Joins the joinable namespaces before comparing.
    JoinBeforeCompare,
    /// Leaves the refused kind out of the flags.
    LeaveOutNet,
}

/// The target: a new net namespace owned by our user namespace, then a new
/// user namespace U owning new mount, uts, ipc and cgroup namespaces. The
/// caller joins U (where it has every capability, user_namespaces(7)) but
/// has none in ours, which owns the target's net namespace. setns(pidfd)
/// validates the kinds in the order user, mnt, uts, ipc, pid, cgroup, net,
/// time (kernel/nsproxy.c validate_nsset()), so four namespaces are
/// accepted before the net namespace is refused: a kernel that installed
/// them one by one would leave the caller in them.
fn all_or_none(sabotage: MixedSabotage) -> CaseResult {
    let (uid, gid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
    let owned = Kind::User.flag() | Kind::Mnt.flag() | Kind::Uts.flag() | Kind::Ipc.flag() | Kind::Cgroup.flag();
    let mut peer = Spawn::unshare(Kind::Net.flag()).spawn(move |ch| {
        sys::unshare(owned).op(Op::Unshare(owned))?;
        userns::map_self_as_root(uid, gid)?;
        ch.ready()?;
        ch.wait()
    })?;
    peer.wait_ready()?;
    let pidfd = Pidfd::open(peer.pid())?;
    let user = NsFd::open(peer.proc(), Kind::User)?;
    let theirs = NsId::all(peer.proc())?;
    let ours = NsId::all(Proc::Myself)?;
    let joinable = Kind::Mnt.flag() | Kind::Uts.flag() | Kind::Ipc.flag() | Kind::Cgroup.flag();
    let refused = if sabotage == MixedSabotage::LeaveOutNet { joinable } else { joinable | Kind::Net.flag() };
    in_child(|| {
        user.setns(Kind::User.flag()).setup("joining the target's user namespace")?;
        let before = entries(Proc::Myself)?;
        for (kind, id) in &theirs {
            if Kind::in_flags(refused).contains(kind) {
                check_ne!(NsId::current(*kind)?, *id, "the target's {kind} namespace vs the caller's");
            }
        }
        expect_errno!(
            pidfd.setns(refused),
            Errno::EPERM,
            "setns(pidfd, {}) with the net namespace owned by a user namespace the caller has no CAP_SYS_ADMIN in",
            describe(refused)
        );
        if sabotage == MixedSabotage::JoinBeforeCompare {
            pidfd.setns(joinable)?;
        }
        check_unchanged(&before, &entries(Proc::Myself)?, &format!("after the refused setns(pidfd, {})", describe(refused)))?;
        // Without the net namespace the same target's four are joined: the
        // refusal above came from the net namespace alone.
        pidfd.setns(joinable)?;
        let now = NsId::all(Proc::Myself)?;
        for (((kind, theirs), (_, mine)), (_, now)) in theirs.iter().zip(&ours).zip(&now) {
            if Kind::in_flags(joinable).contains(kind) {
                check_eq!(now, theirs, "{kind} namespace after setns(pidfd, {})", describe(joinable));
            } else if *kind != Kind::User {
                check_eq!(now, mine, "{kind} namespace (not in the flags) after setns(pidfd, {})", describe(joinable));
            }
        }
        Ok(())
    })?;
    peer.go()?;
    peer.join()
}

/// The target's namespaces are all owned by its user namespace U, created
/// by our effective uid, so the caller has every capability in U (the
/// owner rule of user_namespaces(7)) but, having dropped CAP_SYS_ADMIN,
/// none in its own. Each non-user kind's install checks CAP_SYS_ADMIN over
/// both the namespace and the caller's (new, with CLONE_NEWUSER) user
/// namespace. `with_user` false is the sabotage.
fn user_and_owned(with_user: bool) -> CaseResult {
    let others = Kind::Mnt.flag() | Kind::Uts.flag() | Kind::Ipc.flag() | Kind::Cgroup.flag() | Kind::Net.flag();
    let mut peer = Spawn::clone(Kind::User.flag() | others).map_root().spawn_idle()?;
    let pidfd = Pidfd::open(peer.pid())?;
    let theirs = NsId::all(peer.proc())?;
    in_child(|| {
        sys::drop_capability(Cap::SYS_ADMIN.0).setup("dropping CAP_SYS_ADMIN")?;
        let before = entries(Proc::Myself)?;
        expect_errno!(
            pidfd.setns(others),
            Errno::EPERM,
            "setns(pidfd, {}) without CLONE_NEWUSER by a caller without CAP_SYS_ADMIN in its own user namespace",
            describe(others)
        );
        check_unchanged(&before, &entries(Proc::Myself)?, &format!("after the refused setns(pidfd, {})", describe(others)))?;
        let flags = if with_user { Kind::User.flag() | others } else { others };
        let joined = pidfd.setns(flags);
        check!(joined.is_ok(), "setns(pidfd, {}) on a target whose user namespace owns its namespaces: {joined:?}", describe(flags));
        for ((kind, theirs), (_, now)) in theirs.iter().zip(&NsId::all(Proc::Myself)?) {
            if Kind::in_flags(Kind::User.flag() | others).contains(kind) {
                check_eq!(now, theirs, "{kind} namespace after setns(pidfd, {})", describe(flags));
            }
        }
        check!(
            harness::probe::has_cap(Cap::SYS_ADMIN),
            "CAP_SYS_ADMIN in the target's user namespace after setns(pidfd, {}) (user_namespaces(7))",
            describe(flags)
        );
        Ok(())
    })?;
    peer.go()?;
    peer.join()
}

/// `extra` is the sabotage: flags that are valid, expected to be EINVAL.
/// A flag word wider than 32 bits cannot be tested: setns(2) takes an
/// `int`, so bit 40 would reach the kernel as 0 (already EINVAL, case
/// `setns.pidfd.several_flags`).
fn invalid_flags(extra: &[u64]) -> CaseResult {
    let mut peer = spawn_in_new(Kind::Uts, 0).spawn_idle()?;
    let pidfd = Pidfd::open(peer.pid())?;
    let theirs = NsId::of(peer.proc(), Kind::Uts)?;
    let (vm, thread) = (libc::CLONE_VM as u64, libc::CLONE_THREAD as u64);
    let (uts, user) = (Kind::Uts.flag(), Kind::User.flag());
    let invalid = [vm, thread, uts | vm, user | vm, uts | thread, uts | 0x1, uts | 0x8000_0000, u64::from(u32::MAX)];
    let before = entries(Proc::Myself)?;
    in_child(|| {
        for &flags in invalid.iter().chain(extra) {
            expect_errno!(pidfd.setns(flags), Errno::EINVAL, "setns(pidfd, {}) (bits other than CLONE_NEW*)", describe(flags));
            check_unchanged(&before, &entries(Proc::Myself)?, &format!("after setns(pidfd, {})", describe(flags)))?;
        }
        // The same target with CLONE_NEWUTS alone is joined.
        pidfd.setns(uts)?;
        check_eq!(NsId::current(Kind::Uts)?, theirs, "uts namespace after setns(pidfd, CLONE_NEWUTS)");
        Ok(())
    })?;
    peer.go()?;
    peer.join()
}

/// Rounds of [`exit_race`].
const EXIT_RACE_ROUNDS: usize = 16;

/// setns(pidfd) racing the target's exit. Until 1c465d0518dc ("ns: handle
/// setns(pidfd, ...) cleanly", 6.19-rc) a target that left its namespaces
/// between the caller's snapshot of them (validate_nsset()) and the commit
/// left them inactive; the commit then made them active again without
/// their owner chain, and the active count underflowed when the caller
/// left (namespaces/regression_pidfd_setns_test.c only provokes it and
/// relies on the kernel's warning). Here every round's outcome must be one
/// of the two documented ones, all or none; where nsfs handles can observe
/// activity (6.19+, a privileged suite) the owning user namespace of the
/// joined namespaces must still reopen while the joiner is in them (X6);
/// and a refcount warning fails the run's kernel-health record (K1).
/// Which outcome each round takes depends on timing: both are tallied in
/// the `exit_race` note. `call_setns` false is the sabotage.
fn exit_race(call_setns: bool) -> CaseResult {
    let flags = Kind::Uts.flag() | Kind::Ipc.flag();
    let ours = (NsId::current(Kind::Uts)?, NsId::current(Kind::Ipc)?);
    let mut prober = HandleProber::start()?;
    let (mut joined, mut esrch) = (0, 0);
    for round in 0..EXIT_RACE_ROUNDS {
        let mut target = Spawn::clone(Kind::User.flag() | flags).map_root().spawn_idle()?;
        let pidfd = Pidfd::open(target.pid())?;
        let theirs = (NsId::of(target.proc(), Kind::Uts)?, NsId::of(target.proc(), Kind::Ipc)?);
        // Handles only: an open fd would keep the namespaces active itself.
        let owner = NsFd::open(target.proc(), Kind::User)?;
        let owner_id = owner.id();
        let owner_handle = if prober.is_some() { Some(NsHandle::of(&owner)?) } else { None };
        drop(owner);
        let mut joiner = Spawn::fork().spawn(|ch| {
            ch.wait()?;
            let result = if call_setns { harness::error::errno_of(pidfd.setns(flags)).err().map(|e| e as i32) } else { None };
            ch.send(&(result, NsId::current(Kind::Uts)?, NsId::current(Kind::Ipc)?))?;
            // Stays in what it joined until the owner has been looked at.
            ch.wait()
        })?;
        // Alternate who starts first, to spread the call over the exit.
        if round % 2 == 0 {
            target.go()?;
            joiner.go()?;
        } else {
            joiner.go()?;
            target.go()?;
        }
        let (result, uts, ipc): (Option<i32>, NsId, NsId) = joiner.recv()?;
        match result.map(Errno::from_raw) {
            None => {
                joined += 1;
                check_eq!(
                    (uts, ipc),
                    theirs,
                    "uts and ipc namespaces of a joiner whose setns(pidfd, {}) succeeded (round {round})",
                    describe(flags)
                );
                if let (Some(prober), Some(handle)) = (prober.as_mut(), owner_handle.as_ref()) {
                    check_eq!(
                        prober.reopen(handle)?,
                        Some(owner_id),
                        "the owning user namespace of the namespaces a joiner is in, reopened by its nsfs handle (round {round})"
                    );
                }
            }
            Some(Errno::ESRCH) => {
                esrch += 1;
                check_eq!(
                    (uts, ipc),
                    ours,
                    "uts and ipc namespaces of a joiner whose setns(pidfd, {}) was ESRCH (round {round})",
                    describe(flags)
                );
            }
            Some(e) => {
                return Err(CaseError::fail(format!(
                    "setns(pidfd, {}) racing the target's exit: expected success or ESRCH, got {e:?} ({}) (round {round})",
                    describe(flags),
                    e.desc()
                )))
            }
        }
        joiner.go()?;
        joiner.join()?;
        target.join()?;
    }
    harness::note("exit_race", format!("{joined} joined, {esrch} ESRCH of {EXIT_RACE_ROUNDS}"));
    Ok(())
}
