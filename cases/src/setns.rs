//! setns(2): joining the namespace of an open /proc/[pid]/ns file or a pidfd (A2).

use harness::peer::{in_child, Peer, Spawn};
use harness::poll::{self, Pause};
use harness::{check_eq, check_ne, expect_errno, Case, CaseResult, Errno, Kind, NsEntry, NsFd, NsFlags, NsId, Privilege, Proc, Requires};

use crate::common::{must_fail, must_fail_with};

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        let req = || Requires::kinds(&[kind]).privilege(Privilege::Admin);
        let setns_since = if kind == Kind::Time { Some((5, 8)) } else { None };
        let req = move || match setns_since {
            Some((a, b)) => req().kernel(a, b),
            None => req(),
        };
        out.push(
            Case::new(
                format!("setns.join.{kind}"),
                &["A2"],
                format!("setns(fd, {}) moves the caller into the {kind} namespace of the fd", kind.info().flag_name),
                move || join(kind, kind.flag()),
            )
            .requires(req()),
        );
        out.push(
            Case::new(
                format!("setns.nstype_zero.{kind}"),
                &["A2"],
                format!("setns(fd, 0) accepts a {kind} namespace fd and joins it"),
                move || join(kind, NsFlags::EMPTY),
            )
            .requires(req()),
        );
        out.push(
            Case::new(
                format!("setns.nstype_mismatch.{kind}"),
                &["A2"],
                format!("setns on a {kind} namespace fd with every other CLONE_NEW* type is EINVAL and moves nothing"),
                move || mismatch(kind, None),
            )
            .requires(req()),
        );
    }
    out.push(Case::new(
        "setns.not_a_namespace",
        &["A2"],
        "setns on a fd that is neither a namespace nor a pidfd is EINVAL",
        not_a_namespace,
    ));
    out.push(
        Case::new(
            "setns.pidfd.several_flags",
            &["A2"],
            "setns(pidfd, CLONE_NEWUTS|CLONE_NEWIPC) joins both namespaces of the process at once, leaves the rest; flags 0 is EINVAL",
            pidfd_several,
        )
        .requires(Requires::kinds(&[Kind::Uts, Kind::Ipc, Kind::Net]).kernel(5, 8).privilege(Privilege::Admin)),
    );
    out.push(
        Case::new(
            "setns.user.threaded_caller",
            &["A2"],
            "setns into a user namespace from a multithreaded process is EINVAL (user_namespaces(7))",
            user_threaded,
        )
        .requires(Requires::kinds(&[Kind::User]).privilege(Privilege::Admin)),
    );
    out
}

/// The setns cases run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    let mut out = Vec::new();
    for kind in [Kind::Uts, Kind::Ipc, Kind::Net, Kind::Mnt, Kind::Cgroup] {
        out.push(
            Case::new(
                format!("sabotage.setns.nstype_mismatch.{kind}"),
                &["A2"],
                format!("a mismatching nstype is expected to be accepted for {kind}"),
                move || must_fail(mismatch(kind, Some(kind.flag()))),
            )
            .requires(Requires::kinds(&[kind]).privilege(Privilege::Admin)),
        );
        out.push(
            Case::new(
                format!("sabotage.setns.join.{kind}"),
                &["A2"],
                format!("the joiner skips the setns() call: the join check must see it still in its own {kind} namespace"),
                move || {
                    let check = if kind == Kind::Pid {
                        "pid_for_children after setns".to_string()
                    } else {
                        format!("{kind} namespace after setns")
                    };
                    must_fail_with(join_target(kind, kind.flag(), &Spawn::new_ns(kind), false), &check)
                },
            )
            .requires(Requires::kinds(&[kind]).privilege(Privilege::Admin)),
        );
    }
    out
}

/// A peer started by `spawn`, alive until dropped, and the entry naming
/// its namespace of `kind` (see [`NsEntry::of_new_ns`]).
fn peer_in_new(kind: Kind, spawn: &Spawn) -> Result<(Peer, NsEntry), harness::CaseError> {
    Ok((spawn.spawn_idle()?, NsEntry::of_new_ns(kind)))
}

fn join(kind: Kind, nstype: NsFlags) -> CaseResult {
    join_target(kind, nstype, &Spawn::new_ns(kind), true)
}

/// Opens the target namespace held by a peer started with `spawn`, and has
/// a child join it with `nstype`; the child reports where it is then.
/// `call_setns` false is the sabotage: the child does not call setns().
fn join_target(kind: Kind, nstype: NsFlags, spawn: &Spawn, call_setns: bool) -> CaseResult {
    let (mut peer, entry) = peer_in_new(kind, spawn)?;
    let fd = NsFd::open_entry(peer.proc(), entry)?;
    let ours = NsId::all(Proc::Myself)?;
    check_ne!(fd.id(), NsId::current(kind)?, "target {kind} namespace vs the caller's");
    let (own, for_children, others) = in_child(|| {
        if call_setns {
            fd.setns(nstype)?;
        }
        let all = NsId::all(Proc::Myself)?;
        Ok((NsId::current(kind)?, NsId::for_children(Proc::Myself, kind)?, all))
    })?;
    match kind {
        // pid_namespaces(7): setns changes only the namespace of later children.
        Kind::Pid => {
            check_eq!(for_children, fd.id(), "pid_for_children after setns");
            check_eq!(own, NsId::current(kind)?, "the joiner's own pid namespace (unchanged)");
        }
        _ => {
            check_eq!(own, fd.id(), "{kind} namespace after setns");
            check_eq!(for_children, fd.id(), "{kind} namespace of later children after setns");
        }
    }
    for ((k, before), (_, after)) in ours.iter().zip(&others) {
        if *k != kind {
            check_eq!(after, before, "{k} namespace of the joiner (not joined)");
        }
    }
    peer.go()?;
    peer.join()
}

/// `accept` is the sabotage: a type that is expected to be refused is
/// tried as if accepted.
fn mismatch(kind: Kind, accept: Option<NsFlags>) -> CaseResult {
    let (mut peer, entry) = peer_in_new(kind, &Spawn::new_ns(kind))?;
    let fd = NsFd::open_entry(peer.proc(), entry)?;
    let before = NsId::all(Proc::Myself)?;
    for other in Kind::ALL.into_iter().filter(|k| *k != kind).map(Kind::flag).chain(accept) {
        let after = in_child(|| {
            expect_errno!(fd.setns(other), Errno::EINVAL, "setns({kind} fd, {other})");
            Ok(NsId::all(Proc::Myself)?)
        })?;
        check_eq!(after, before, "namespaces after a refused setns({kind} fd, {other})");
    }
    peer.go()?;
    peer.join()
}

fn not_a_namespace() -> CaseResult {
    let file = std::fs::File::open("/proc/self/stat")?;
    let (r, _w) = nix::unistd::pipe()?;
    for (what, fd) in [("a /proc file", std::os::fd::AsFd::as_fd(&file)), ("a pipe", std::os::fd::AsFd::as_fd(&r))] {
        for nstype in [NsFlags::EMPTY, Kind::Uts.flag()] {
            expect_errno!(harness::ns::setns(fd, nstype), Errno::EINVAL, "setns({what}, {nstype})");
        }
    }
    Ok(())
}

fn pidfd_several() -> CaseResult {
    let (mut peer, _) = peer_in_new(Kind::Uts, &Spawn::clone(Kind::Uts.flag() | Kind::Ipc.flag() | Kind::Net.flag()))?;
    let target = NsId::all(peer.proc())?;
    let pidfd = peer.pidfd()?;
    let ours = NsId::all(Proc::Myself)?;
    let joined = in_child(|| {
        pidfd.setns(Kind::Uts.flag() | Kind::Ipc.flag())?;
        Ok(NsId::all(Proc::Myself)?)
    })?;
    for ((kind, mine), ((_, theirs), (_, now))) in ours.iter().zip(target.iter().zip(&joined)) {
        match kind {
            Kind::Uts | Kind::Ipc => check_eq!(now, theirs, "{kind} namespace after setns(pidfd, CLONE_NEWUTS|CLONE_NEWIPC)"),
            _ => check_eq!(now, mine, "{kind} namespace (not in the flags) after setns(pidfd, ...)"),
        }
    }
    check_ne!(target[Kind::Net as usize].1, ours[Kind::Net as usize].1, "the peer's net namespace (created new)");
    in_child(|| {
        expect_errno!(pidfd.setns(NsFlags::EMPTY), Errno::EINVAL, "setns(pidfd, 0)");
        Ok(())
    })?;
    peer.go()?;
    peer.join()
}

fn user_threaded() -> CaseResult {
    let (mut peer, _) = peer_in_new(Kind::User, &Spawn::clone(Kind::User.flag()).map_root())?;
    let fd = NsFd::open(peer.proc(), Kind::User)?;
    let before = NsId::current(Kind::User)?;
    in_child(|| {
        // A second thread that lives across the call.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || rx.recv());
        expect_errno!(fd.setns(Kind::User.flag()), Errno::EINVAL, "setns(user fd) with two threads");
        check_eq!(NsId::current(Kind::User)?, before, "user namespace after the refused setns");
        drop(tx);
        let _ = thread.join();
        // join() returns when the thread clears its tid, before the kernel
        // drops its hold on the address space; the thread is gone from the
        // thread group (Threads: 1) only after that.
        wait_single_threaded()?;
        // Single-threaded again, the same call succeeds.
        fd.setns(Kind::User.flag())?;
        check_eq!(NsId::current(Kind::User)?, fd.id(), "user namespace after setns from one thread");
        Ok(())
    })?;
    peer.go()?;
    peer.join()
}

/// Polls /proc/self/status until the caller is the only thread, up to 2 s.
fn wait_single_threaded() -> CaseResult {
    let pause = Pause::every(std::time::Duration::from_micros(100));
    let alone = poll::poll_until(std::time::Duration::from_secs(2), pause, || {
        Ok::<_, harness::CaseError>(harness::probe::status_field("/proc", "self", "Threads")? == "1")
    })?;
    match alone {
        Some(_) => Ok(()),
        None => Err(harness::CaseError::broken("the second thread is still in the thread group 2 s after join")),
    }
}
