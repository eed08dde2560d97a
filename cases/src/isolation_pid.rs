//! pid_namespaces(7): process IDs belong to the PID namespace (T2.pid). The
//! first process is PID 1 ("init") inside; a process has one PID in each
//! namespace from its own up (NSpid in /proc/[pid]/status); when init
//! terminates, the kernel kills every other process of the namespace; a
//! second unshare(CLONE_NEWPID) is refused.

use std::fs;
use std::time::Duration;

use harness::peer::{call, in_child, Spawn};
use harness::pidfd::Pidfd;
use harness::{check, check_eq, check_ne, expect_errno, Case, CaseResult, Errno, Kind, NsFd, NsFlags, Privilege, Requires};
use nix::unistd::{getpid, getppid, Pid};

use crate::common::must_fail_with;

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    let req = || Requires::kinds(&[Kind::Pid]).privilege(Privilege::Admin);
    vec![
        Case::new(
            "isolation.pid.numbering",
            &["T2.pid"],
            "the first process of a new PID namespace is PID 1 with parent 0, later ones get other PIDs, and each has \
             different PIDs inside and outside (NSpid); a sibling namespace has its own PID 1; a setns() joiner's \
             child gets a PID of the namespace",
            || numbering(Kind::Pid.flag()),
        )
        .requires(req()),
        Case::new(
            "isolation.pid.init_exit_kills_members",
            &["T2.pid"],
            "when PID 1 of a namespace terminates, the kernel kills the other processes of that namespace",
            || init_exit_kills(Kind::Pid.flag()),
        )
        // pidfd_open(2) watches the member, which is not our child.
        .requires(req().kernel(5, 3)),
        Case::new(
            "isolation.pid.second_unshare_einval",
            &["T2.pid"],
            "unshare(CLONE_NEWPID) fails with EINVAL in a process whose pid_for_children is already a new namespace",
            second_unshare,
        )
        .requires(req()),
    ]
}

/// The pid cases run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    let req = || Requires::kinds(&[Kind::Pid]).privilege(Privilege::Admin);
    vec![
        Case::new(
            "sabotage.isolation.pid.numbering",
            &["T2.pid"],
            "the first process is created without CLONE_NEWPID: it must not be PID 1",
            || must_fail_with(numbering(NsFlags::EMPTY), "PID of the first process"),
        )
        .requires(req()),
        Case::new(
            "sabotage.isolation.pid.init_exit_kills_members",
            &["T2.pid"],
            "the \"init\" is created without CLONE_NEWPID: its child must survive it",
            || must_fail_with(init_exit_kills(NsFlags::EMPTY), "killed"),
        )
        .requires(req().kernel(5, 3)),
    ]
}

/// NSpid of `/proc/<pid>/status` (`self` when `None`): the PIDs of the
/// process in each PID namespace from the one of that /proc mount down to
/// its own.
fn nspid(pid: Option<Pid>) -> Result<Vec<i32>, harness::CaseError> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_string(),
    };
    let status = fs::read_to_string(&path)?;
    let line =
        status.lines().find_map(|l| l.strip_prefix("NSpid:")).ok_or_else(|| harness::CaseError::fail(format!("no NSpid in {path}")))?;
    line.split_whitespace().map(|n| n.parse().map_err(|_| harness::CaseError::fail(format!("bad NSpid {line:?} in {path}")))).collect()
}

/// What a process reports about itself: getpid(), getppid(), NSpid.
type SelfView = (i32, i32, Vec<i32>);

fn self_view() -> Result<SelfView, harness::CaseError> {
    Ok((getpid().as_raw(), getppid().as_raw(), nspid(None)?))
}

/// `inner` is the flag the first process is cloned with: CLONE_NEWPID for
/// the claim, 0 when sabotaged.
fn numbering(inner: NsFlags) -> CaseResult {
    let mut init = Spawn::clone(inner).spawn(|ch| {
        let own = self_view()?;
        let member = call(&Spawn::fork(), self_view)?;
        ch.send(&(own, member))?;
        ch.wait()
    })?;
    let (own, member): (SelfView, SelfView) = init.recv()?;
    let outside = init.pid().as_raw();
    let seen_outside = nspid(Some(init.pid()))?;
    let sibling = call(&Spawn::clone(Kind::Pid.flag()), self_view)?;
    check_eq!(own.0, 1, "PID of the first process in a new PID namespace, by getpid()");
    check_eq!(own.1, 0, "parent PID of PID 1 (its parent is outside the namespace)");
    check_eq!(seen_outside, vec![outside, 1], "NSpid of the first process, read outside");
    check_eq!(own.2, vec![outside, 1], "NSpid of the first process, read by itself");
    check!(member.0 > 1, "PID of a second process in the namespace is {}, expected > 1", member.0);
    check_eq!(member.1, 1, "parent PID of a child of PID 1");
    check_eq!(member.2.len(), 2, "NSpid levels of a second process: {:?}", member.2);
    check_eq!(member.2[1], member.0, "the inside PID in NSpid of a second process");
    check_ne!(member.2[0], member.0, "a second process's PIDs outside and inside");
    check_eq!(sibling.0, 1, "PID of the first process of a sibling PID namespace");
    check_ne!(sibling.2[0], outside, "outside PIDs of the two namespaces' PID 1");
    // A joiner moves its pid_for_children: its next child is in the namespace.
    let joiner_child = in_child(|| {
        NsFd::open(init.proc(), Kind::Pid)?.setns(Kind::Pid.flag())?;
        call(&Spawn::fork(), self_view)
    })?;
    init.go()?;
    init.join()?;
    check_eq!(joiner_child.2.len(), 2, "NSpid levels of the child of a setns() joiner: {:?}", joiner_child.2);
    check!(
        joiner_child.0 > 1 && joiner_child.0 != member.0,
        "PID {} of the child of a setns() joiner, expected a new PID > 1 of the namespace",
        joiner_child.0
    );
    check_eq!(joiner_child.1, 0, "parent PID of a joiner's child (its parent is outside the namespace)");
    Ok(())
}

/// `inner`: CLONE_NEWPID for the claim, 0 when sabotaged.
fn init_exit_kills(inner: NsFlags) -> CaseResult {
    let mut init = Spawn::clone(inner).spawn(|ch| {
        // Only the kernel's SIGKILL may end the member, not the harness's
        // parent-death signal.
        let mut member = Spawn::fork().outlive_parent().spawn(|m| {
            m.send(&nspid(None)?[0])?;
            loop {
                nix::unistd::pause();
            }
        })?;
        let outside: i32 = member.recv()?;
        ch.send(&outside)?;
        ch.wait()?;
        // Let init exit with the member alive (dropping the peer kills it).
        member.detach();
        Ok(())
    })?;
    let member: i32 = init.recv()?;
    let pidfd = Pidfd::open(Pid::from_raw(member))?;
    let ended = |timeout: Duration| pidfd.wait_exited(timeout);
    check!(!ended(Duration::ZERO)?, "the member ended before PID 1 did");
    init.go()?;
    init.join()?;
    // PID 1 is reaped only after its namespace is empty, so the member is
    // gone by now; the deadline only tolerates a slow kernel.
    let killed = ended(Duration::from_secs(1))?;
    if !killed {
        let _ = pidfd.kill();
    }
    check!(killed, "the member {member} was not killed when PID 1 of its namespace terminated");
    Ok(())
}

fn second_unshare() -> CaseResult {
    call(&Spawn::unshare(Kind::Pid.flag()), || {
        expect_errno!(harness::ns::unshare(Kind::Pid), Errno::EINVAL, "a second unshare(CLONE_NEWPID) before any child");
        let child = call(&Spawn::fork(), self_view)?;
        check_eq!(child.0, 1, "PID of the first child after unshare(CLONE_NEWPID)");
        expect_errno!(harness::ns::unshare(Kind::Pid), Errno::EINVAL, "a second unshare(CLONE_NEWPID) after the first child");
        Ok(())
    })
}
