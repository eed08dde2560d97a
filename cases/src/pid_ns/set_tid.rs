//! D5, clone3(2) set_tid: the pid at each level, EEXIST for a taken pid,
//! EPERM without CAP_SYS_ADMIN over the owning user namespace, EINVAL for
//! more levels than the child's namespace has. Each runs in init of a pid
//! namespace two levels below the suite's ([`in_two_levels`]).

use harness::peer::{call, in_child, Spawn};
use harness::pidns::{self, MAX_PID_NS_LEVEL};
use harness::{check, check_eq, CaseError, CaseResult, Kind, NsFlags};
use nix::unistd::Pid;
use serde::Serialize;

use super::outcome;

/// Runs `f` in init of a pid namespace two levels below the suite's (B, in
/// A), so that set_tid can name pids of A and B without touching the
/// suite's own namespace; A and B are owned by the suite's user namespace.
fn in_two_levels<T, F>(f: F) -> Result<T, CaseError>
where
    T: Serialize + serde::de::DeserializeOwned,
    F: FnOnce() -> Result<T, CaseError>,
{
    call(&Spawn::clone(NsFlags::PID), || call(&Spawn::clone(NsFlags::PID), f))
}

/// The last `n` entries of an NSpid, innermost first (set_tid's order).
fn innermost(nspid: &[i32], n: usize) -> Vec<i32> {
    nspid.iter().rev().take(n).copied().collect()
}

/// `named`: how many levels of [1, 42, 500] set_tid names (3 for the
/// claim, 2 when sabotaged).
pub(super) fn set_tid_levels(named: usize) -> CaseResult {
    let wanted = [1, 42, 500];
    let (with_newpid, without) = in_two_levels(move || {
        let a = pidns::clone3_set_tid(NsFlags::PID, &wanted[..named])??;
        let b = pidns::clone3_set_tid(NsFlags::EMPTY, &[7, 600])??;
        Ok(((a.pid, innermost(&a.nspid, 3)), (b.pid, innermost(&b.nspid, 2))))
    })?;
    check_eq!(with_newpid.1, wanted.to_vec(), "NSpid of the clone3() child with set_tid [1, 42, 500] and CLONE_NEWPID, innermost first");
    check_eq!(with_newpid.0, 42, "pid clone3() returned for it (the caller's namespace's pid)");
    check_eq!(without.1, vec![7, 600], "NSpid of the clone3() child with set_tid [7, 600], innermost first");
    check_eq!(without.0, 7, "pid clone3() returned for it");
    Ok(())
}

pub(super) fn set_tid_eexist() -> CaseResult {
    let (taken_own, taken_outer, after) = in_two_levels(|| {
        let own = pidns::clone3_set_tid(NsFlags::EMPTY, &[1])?.err().map(|e| e.errno as i32);
        // Allocated from the innermost level out: 1 in the new namespace
        // and 43 here, then pid 1 of the grandparent namespace is taken.
        let outer = pidns::clone3_set_tid(NsFlags::PID, &[1, 43, 1])?.err().map(|e| e.errno as i32);
        let after = pidns::clone3_set_tid(NsFlags::EMPTY, &[43])??;
        Ok((own, outer, (after.pid, innermost(&after.nspid, 1))))
    })?;
    check_eq!(outcome(taken_own), "EEXIST", "clone3() with set_tid [1] where init holds pid 1");
    check_eq!(outcome(taken_outer), "EEXIST", "clone3() with set_tid [1, 43, 1] and CLONE_NEWPID, pid 1 of the outer level taken");
    check_eq!(after, (43, vec![43]), "clone3() with set_tid [43] after the refused call (43 must be free again)");
    Ok(())
}

pub(super) fn set_tid_eperm() -> CaseResult {
    let (refused, exists, after) = in_two_levels(|| {
        let refused = in_child(|| {
            // Every capability in a new user namespace, none in the one
            // that owns this pid namespace (user_namespaces(7)).
            harness::ns::unshare(Kind::User)?;
            Ok(pidns::clone3_set_tid(NsFlags::EMPTY, &[44])?.err().map(|e| e.errno as i32))
        })?;
        let exists = pidns::pid_exists(Pid::from_raw(44))?;
        let after = pidns::clone3_set_tid(NsFlags::EMPTY, &[44])??;
        Ok((refused, exists, after.pid))
    })?;
    check_eq!(outcome(refused), "EPERM", "clone3() with set_tid [44] without CAP_SYS_ADMIN over the pid namespace's owner");
    check!(!exists, "pid 44 exists after the refused clone3()");
    check_eq!(after, 44, "clone3() with set_tid [44] by init, which has CAP_SYS_ADMIN there");
    Ok(())
}

pub(super) fn set_tid_einval() -> CaseResult {
    let (beyond, max) = in_two_levels(|| {
        // The child's namespace (this one, no CLONE_NEWPID) has level + 1
        // levels of pids; one more element is too many.
        let levels = pidns::own_level()? + 1;
        // Valid pids in every element, so that only the size is wrong.
        let beyond = pidns::clone3_set_tid(NsFlags::EMPTY, &vec![45; levels + 1])?.err().map(|e| e.errno as i32);
        let max = pidns::clone3_set_tid(NsFlags::PID, &[vec![1], vec![45; MAX_PID_NS_LEVEL]].concat())?.err().map(|e| e.errno as i32);
        Ok((beyond, max))
    })?;
    check_eq!(outcome(beyond), "EINVAL", "clone3() with set_tid_size one more than the levels of the child's pid namespace");
    check_eq!(outcome(max), "EINVAL", "clone3() with set_tid_size MAX_PID_NS_LEVEL + 1");
    Ok(())
}
