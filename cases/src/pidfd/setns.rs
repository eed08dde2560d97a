//! X4: setns(pidfd, flags) joins several namespaces of one process at once,
//! all or none: an exited target is ESRCH, flags other than CLONE_NEW* bits
//! EINVAL, a namespace the caller has no CAP_SYS_ADMIN over EPERM; and a
//! join racing the target's exit.

use harness::flags::clone;
use harness::observe::{HandleProber, NsHandle};
use harness::peer::{in_child, Spawn};
use harness::pidfd::Pidfd;
use harness::probe::Cap;
use harness::{check, check_eq, check_ne, expect_errno, userns, CaseError, CaseResult, Errno, Kind, NsFd, NsFlags, NsId, Proc, Setup};

use super::{check_unchanged, entries, exited_target, Exited};

/// `exit` false is the sabotage: the target never exits.
pub(super) fn setns_exited(state: Exited, exit: bool) -> CaseResult {
    let (peer, pidfd, theirs) = exited_target(state, exit)?;
    let before = entries(Proc::Myself)?;
    check_ne!(theirs, before, "the target's namespaces vs ours");
    let all = Kind::User.flag() | Kind::Uts.flag() | Kind::Net.flag();
    for flags in [all, Kind::Uts.flag(), Kind::User.flag()] {
        let after = in_child(|| {
            expect_errno!(pidfd.setns(flags), Errno::ESRCH, "setns(pidfd, {}) on the pidfd of a {state} target", flags);
            entries(Proc::Myself)
        })?;
        check_unchanged(&before, &after, &format!("after setns(pidfd, {}) on a {state} target", flags))?;
    }
    match peer {
        Some(peer) if exit => peer.join(),
        _ => Ok(()),
    }
}

/// The kinds of the all-or-none target.
pub(super) const MIXED_KINDS: [Kind; 6] = [Kind::User, Kind::Mnt, Kind::Uts, Kind::Ipc, Kind::Cgroup, Kind::Net];

/// How the all-or-none case is sabotaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MixedSabotage {
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
pub(super) fn all_or_none(sabotage: MixedSabotage) -> CaseResult {
    let (uid, gid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
    let owned = Kind::User.flag() | Kind::Mnt.flag() | Kind::Uts.flag() | Kind::Ipc.flag() | Kind::Cgroup.flag();
    let mut peer = Spawn::unshare(Kind::Net.flag()).spawn(move |ch| {
        harness::ns::unshare(owned)?;
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
            refused
        );
        if sabotage == MixedSabotage::JoinBeforeCompare {
            pidfd.setns(joinable)?;
        }
        check_unchanged(&before, &entries(Proc::Myself)?, &format!("after the refused setns(pidfd, {})", refused))?;
        // Without the net namespace the same target's four are joined: the
        // refusal above came from the net namespace alone.
        pidfd.setns(joinable)?;
        let now = NsId::all(Proc::Myself)?;
        for (((kind, theirs), (_, mine)), (_, now)) in theirs.iter().zip(&ours).zip(&now) {
            if Kind::in_flags(joinable).contains(kind) {
                check_eq!(now, theirs, "{kind} namespace after setns(pidfd, {})", joinable);
            } else if *kind != Kind::User {
                check_eq!(now, mine, "{kind} namespace (not in the flags) after setns(pidfd, {})", joinable);
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
pub(super) fn user_and_owned(with_user: bool) -> CaseResult {
    let others = Kind::Mnt.flag() | Kind::Uts.flag() | Kind::Ipc.flag() | Kind::Cgroup.flag() | Kind::Net.flag();
    let mut peer = Spawn::clone(Kind::User.flag() | others).map_root().spawn_idle()?;
    let pidfd = Pidfd::open(peer.pid())?;
    let theirs = NsId::all(peer.proc())?;
    in_child(|| {
        harness::caps::drop_capability(Cap::SYS_ADMIN).setup("dropping CAP_SYS_ADMIN")?;
        let before = entries(Proc::Myself)?;
        expect_errno!(
            pidfd.setns(others),
            Errno::EPERM,
            "setns(pidfd, {}) without CLONE_NEWUSER by a caller without CAP_SYS_ADMIN in its own user namespace",
            others
        );
        check_unchanged(&before, &entries(Proc::Myself)?, &format!("after the refused setns(pidfd, {})", others))?;
        let flags = if with_user { Kind::User.flag() | others } else { others };
        let joined = pidfd.setns(flags);
        check!(joined.is_ok(), "setns(pidfd, {}) on a target whose user namespace owns its namespaces: {joined:?}", flags);
        for ((kind, theirs), (_, now)) in theirs.iter().zip(&NsId::all(Proc::Myself)?) {
            if Kind::in_flags(Kind::User.flag() | others).contains(kind) {
                check_eq!(now, theirs, "{kind} namespace after setns(pidfd, {})", flags);
            }
        }
        check!(
            harness::probe::has_cap(Cap::SYS_ADMIN),
            "CAP_SYS_ADMIN in the target's user namespace after setns(pidfd, {}) (user_namespaces(7))",
            flags
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
pub(super) fn invalid_flags(extra: &[NsFlags]) -> CaseResult {
    let mut peer = Spawn::new_ns(Kind::Uts).spawn_idle()?;
    let pidfd = Pidfd::open(peer.pid())?;
    let theirs = NsId::of(peer.proc(), Kind::Uts)?;
    let raw = NsFlags::from_bits_retain;
    let (vm, thread) = (raw(clone::VM), raw(clone::THREAD));
    let (uts, user) = (Kind::Uts.flag(), Kind::User.flag());
    let invalid = [vm, thread, uts | vm, user | vm, uts | thread, uts | raw(0x1), uts | raw(0x8000_0000), raw(u64::from(u32::MAX))];
    let before = entries(Proc::Myself)?;
    in_child(|| {
        for &flags in invalid.iter().chain(extra) {
            expect_errno!(pidfd.setns(flags), Errno::EINVAL, "setns(pidfd, {}) (bits other than CLONE_NEW*)", flags);
            check_unchanged(&before, &entries(Proc::Myself)?, &format!("after setns(pidfd, {})", flags))?;
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
pub(super) const EXIT_RACE_ROUNDS: usize = 16;

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
pub(super) fn exit_race(call_setns: bool) -> CaseResult {
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
                check_eq!((uts, ipc), theirs, "uts and ipc namespaces of a joiner whose setns(pidfd, {}) succeeded (round {round})", flags);
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
                check_eq!((uts, ipc), ours, "uts and ipc namespaces of a joiner whose setns(pidfd, {}) was ESRCH (round {round})", flags);
            }
            Some(e) => {
                return Err(CaseError::fail(format!(
                    "setns(pidfd, {}) racing the target's exit: expected success or ESRCH, got {e:?} ({}) (round {round})",
                    flags,
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
