//! D5, the caller's own pid: unshare(CLONE_NEWPID) and setns(2) to a pid
//! namespace leave the caller's getpid(), NSpid and pid namespace as they
//! were; only its children are in the new namespace.

use harness::peer::{call, in_child, Spawn};
use harness::pidns;
use harness::{check_eq, check_ne, CaseError, CaseResult, Kind, NsFd, NsFlags, NsId, Proc};
use nix::unistd::{getpid, getppid};
use serde::{Deserialize, Serialize};

/// What a process reports about itself: getpid(), getppid(), NSpid, its
/// pid namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SelfView {
    pid: i32,
    ppid: i32,
    nspid: Vec<i32>,
    ns: NsId,
}

fn self_view() -> Result<SelfView, CaseError> {
    Ok(SelfView { pid: getpid().as_raw(), ppid: getppid().as_raw(), nspid: pidns::nspid(None)?, ns: NsId::current(Kind::Pid)? })
}

/// `flag`: CLONE_NEWPID for the claim, 0 when sabotaged.
pub(super) fn unshare_keeps_pid(flag: NsFlags) -> CaseResult {
    let (before, after, first, for_children): (SelfView, SelfView, SelfView, NsId) = in_child(move || {
        let before = self_view()?;
        harness::ns::unshare(flag)?;
        let after = self_view()?;
        let first = call(&Spawn::fork(), self_view)?;
        Ok((before, after, first, NsId::for_children(Proc::Myself, Kind::Pid)?))
    })?;
    check_eq!(after, before, "getpid(), getppid(), NSpid and pid namespace of the caller after unshare(CLONE_NEWPID)");
    check_eq!(first.pid, 1, "PID of the first child after unshare(CLONE_NEWPID)");
    check_eq!(first.ppid, 0, "getppid() of the first child after unshare(CLONE_NEWPID)");
    check_eq!(first.nspid.len(), before.nspid.len() + 1, "NSpid levels of the first child: {:?}", first.nspid);
    check_eq!(first.nspid.last(), Some(&1), "innermost NSpid of the first child");
    check_eq!(first.ns, for_children, "pid namespace of the first child against the caller's pid_for_children");
    check_ne!(for_children, before.ns, "pid_for_children after unshare(CLONE_NEWPID) against the caller's own pid namespace");
    Ok(())
}

pub(super) fn setns_keeps_pid() -> CaseResult {
    let init = Spawn::clone(NsFlags::PID).spawn_idle()?;
    let target = NsId::of(init.proc(), Kind::Pid)?;
    let init_levels = pidns::nspid(Some(init.pid()))?.len();
    let (before, after, child, for_children): (SelfView, SelfView, SelfView, NsId) = in_child(|| {
        let before = self_view()?;
        NsFd::open(init.proc(), Kind::Pid)?.setns(NsFlags::PID)?;
        let after = self_view()?;
        let for_children = NsId::for_children(Proc::Myself, Kind::Pid)?;
        let child = call(&Spawn::fork(), self_view)?;
        Ok((before, after, child, for_children))
    })?;
    check_eq!(after, before, "getpid(), getppid(), NSpid and pid namespace of the caller after setns(CLONE_NEWPID)");
    check_eq!(for_children, target, "pid_for_children after setns() against the target namespace");
    check_eq!(child.ns, target, "pid namespace of the joiner's child");
    // pid_namespaces(7) names PID 1 only for the first process of a new
    // namespace; in one whose init exists and has made no other process,
    // the kernel's cyclic allocation (alloc_pid(), from the last pid + 1)
    // gives 2.
    check_eq!(child.pid, 2, "PID of the joiner's child in a namespace where only init (PID 1) exists");
    check_eq!(child.ppid, 0, "getppid() of the joiner's child");
    check_eq!(child.nspid.len(), init_levels, "NSpid levels of the joiner's child against init's: {:?}", child.nspid);
    Ok(())
}
