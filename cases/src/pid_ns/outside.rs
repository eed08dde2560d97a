//! D4: a process outside the pid namespace, as seen from inside: the
//! parent of init (or of a setns() joiner's child) gives getppid() 0, and a
//! signal from the ancestor namespace carries si_pid 0.

use harness::peer::{call, in_child, Spawn};
use harness::pidns::{self, Received};
use harness::{check_eq, CaseError, CaseResult, Kind, NsFd, NsFlags};
use nix::sys::signal::Signal;
use nix::unistd::{getpid, getppid, Pid};

/// `newpid`: CLONE_NEWPID for the claim, 0 when sabotaged.
pub(super) fn getppid_zero(newpid: NsFlags) -> CaseResult {
    let mut init = Spawn::clone(newpid).spawn(|ch| {
        let child = call(&Spawn::fork(), || Ok(getppid().as_raw()))?;
        ch.send(&(getppid().as_raw(), child))?;
        ch.wait()
    })?;
    let (init_ppid, child_ppid): (i32, i32) = init.recv()?;
    check_eq!(init_ppid, 0, "getppid() of init of a new pid namespace, created by clone(CLONE_NEWPID)");
    check_eq!(child_ppid, 1, "getppid() of a child of init");
    let first = call(&Spawn::unshare(NsFlags::PID), || call(&Spawn::fork(), || Ok((getpid().as_raw(), getppid().as_raw()))))?;
    check_eq!(first, (1, 0), "getpid() and getppid() of the first child after unshare(CLONE_NEWPID)");
    let joiner_child = in_child(|| {
        NsFd::open(init.proc(), Kind::Pid)?.setns(NsFlags::PID)?;
        call(&Spawn::fork(), || Ok(getppid().as_raw()))
    })?;
    check_eq!(joiner_child, 0, "getppid() of the child of a setns() joiner");
    init.go()?;
    init.join()
}

/// What one process's handler saw of SIGUSR1 and SIGUSR2.
type Seen = (Received, Received);

fn seen() -> Seen {
    (pidns::received(Signal::SIGUSR1), pidns::received(Signal::SIGUSR2))
}

/// `newpid`: CLONE_NEWPID for the claim, 0 when sabotaged. The ancestor
/// sends SIGUSR1 to init and to a member; init sends SIGUSR2 to the member
/// and the member SIGUSR2 to init. sigaction(2): si_pid is the sender's
/// pid; pid_namespaces(7) and the kernel (`__send_signal`) make it 0 for a
/// sender the receiver's namespace cannot name.
pub(super) fn si_pid_zero(newpid: NsFlags) -> CaseResult {
    let signals = [Signal::SIGUSR1, Signal::SIGUSR2];
    let mut init = Spawn::clone(newpid).spawn(move |ch| {
        pidns::record_signals(&signals)?;
        let mut member = Spawn::fork().spawn(move |m| {
            pidns::record_signals(&signals)?;
            m.send(&(getpid().as_raw(), pidns::nspid(None)?))?;
            m.wait()?;
            m.send(&seen())?;
            m.wait()?;
            pidns::send_signal(getppid(), Signal::SIGUSR2)?;
            Ok(())
        })?;
        let (member_pid, member_nspid): (i32, Vec<i32>) = member.recv()?;
        pidns::send_signal(member.pid(), Signal::SIGUSR2)?;
        ch.send(&member_nspid)?;
        ch.wait()?;
        member.go()?;
        let member_seen: Seen = member.recv()?;
        member.go()?;
        member.join()?;
        ch.send(&(member_pid, member_seen, seen()))?;
        ch.wait()
    })?;
    let member_nspid: Vec<i32> = init.recv()?;
    // The member's pid in the ancestor's namespace: the entry of its NSpid
    // at the ancestor's level (both read through the same /proc).
    let level = pidns::nspid(None)?.len() - 1;
    let member_outside = Pid::from_raw(
        *member_nspid
            .get(level)
            .ok_or_else(|| CaseError::fail(format!("NSpid of the member {member_nspid:?} has no entry at the ancestor's level")))?,
    );
    pidns::send_signal(init.pid(), Signal::SIGUSR1)?;
    pidns::send_signal(member_outside, Signal::SIGUSR1)?;
    init.go()?;
    let (member_pid, member_seen, init_seen): (i32, Seen, Seen) = init.recv()?;
    init.go()?;
    init.join()?;
    let expect = |count, pid| Received { count, last_pid: pid, last_code: libc::SI_USER };
    check_eq!(init_seen.0, expect(1, 0), "si_pid of SIGUSR1 from the ancestor namespace, to init (count, si_pid, si_code)");
    check_eq!(member_seen.0, expect(1, 0), "si_pid of SIGUSR1 from the ancestor namespace, to a member");
    check_eq!(member_seen.1, expect(1, 1), "si_pid of SIGUSR2 from init to a member");
    check_eq!(init_seen.1, expect(1, member_pid), "si_pid of SIGUSR2 from the member (pid {member_pid}) to init");
    Ok(())
}
