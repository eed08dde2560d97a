//! X3: `PIDFD_GET_<kind>_NAMESPACE` gives an fd for the target's namespace of
//! that kind (and pid/time_for_children), the namespace of `/proc/[pid]/ns`;
//! a nonzero argument is EINVAL, an exited target ESRCH.

use harness::peer::{Peer, Spawn};
use harness::pidfd::{Pidfd, PidfdNsIoctl, PIDFD_NS_IOCTLS};
use harness::{check_eq, check_ne, expect_errno, CaseError, CaseResult, Errno, Kind, NsEntry, NsFd, NsId, Proc};

use super::{exited_target, open_fds, Exited};

/// A peer whose namespace at `entry` is not ours. For pid and time the
/// peer's own namespace and its for_children namespace are both new and
/// differ from each other, so that the two requests are told apart.
fn peer_for(entry: NsEntry) -> Result<Peer, CaseError> {
    let mut peer = match entry.kind {
        Kind::Pid => Spawn::clone(Kind::Pid).spawn(|ch| {
            // Own: the new namespace P1 (we are its init); for children: P2.
            harness::ns::unshare(Kind::Pid)?;
            // pid_for_children is in /proc once P2 has a process.
            let first = Spawn::fork().spawn_idle()?;
            ch.ready()?;
            ch.wait()?;
            drop(first);
            Ok(())
        })?,
        Kind::Time => Spawn::unshare(Kind::Time).spawn(|ch| {
            // Own: T1 (joined through time_for_children); for children: T2.
            NsFd::open_entry(Proc::Myself, NsEntry { kind: Kind::Time, for_children: true })?.setns(Kind::Time)?;
            harness::ns::unshare(Kind::Time)?;
            ch.ready()?;
            ch.wait()
        })?,
        kind => return Spawn::new_ns(kind).spawn_idle(),
    };
    peer.wait_ready()?;
    Ok(peer)
}

/// `issue` is the request sent; `req` the one expected (they differ only in
/// the sabotage).
pub(super) fn get_namespace(req: PidfdNsIoctl, issue: PidfdNsIoctl) -> CaseResult {
    let mut peer = peer_for(req.entry)?;
    let pidfd = Pidfd::open(peer.pid())?;
    let theirs = NsId::of_entry(peer.proc(), req.entry)?;
    check_ne!(theirs, NsId::of_entry(Proc::Myself, req.entry)?, "the peer's {} namespace (new) vs ours", req.entry);
    if let Some(sibling) = PIDFD_NS_IOCTLS.into_iter().find(|r| r.kind == req.kind && r.entry != req.entry) {
        check_ne!(theirs, NsId::of_entry(peer.proc(), sibling.entry)?, "the peer's {} vs its {} namespace", req.entry, sibling.entry);
    }
    let fd = pidfd.namespace(issue)?;
    check_eq!(fd.id(), theirs, "{} on the peer's pidfd vs /proc/<pid>/ns/{}", req.name, req.entry);
    check_eq!(fd.nstype()?.to_string(), req.kind.flag().to_string(), "NS_GET_NSTYPE of the fd {} returned", req.name);
    // The fd names the namespace as the entry does, also after the peer is gone.
    peer.go()?;
    peer.join()?;
    check_eq!(NsId::of_fd(&fd)?, theirs, "the fd from {} after the peer exited", req.name);
    Ok(())
}

pub(super) fn nonzero_arg(args: &[libc::c_ulong]) -> CaseResult {
    let mut peer = Spawn::new_ns(Kind::Uts).spawn_idle()?;
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

/// `exit` false is the sabotage: the target never exits.
pub(super) fn get_namespace_exited(state: Exited, exit: bool) -> CaseResult {
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
