//! D2: a pid namespace whose init has exited. fork() and clone3() set_tid
//! into it fail with ENOMEM, and its other members are killed by SIGKILL
//! (pid_namespaces(7)).

use std::time::Duration;

use harness::peer::{call, Spawn};
use harness::pidns;
use harness::poll::{self, Pause};
use harness::{check_eq, CaseError, CaseResult, Exit, Kind, NsFd, NsFlags, NsId, Proc, Setup};
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::getpid;

use super::{outcome, poll_limit, stopped_within};

/// A process unshares CLONE_NEWPID; its first child (init of the new
/// namespace) exits at once unless `init_exits` is false; then the process
/// forks again, with clone(2) and with clone3(2) set_tid. pid_namespaces(7):
/// "a subsequent fork(2) into this PID namespace fail[s] with the error
/// ENOMEM".
pub(super) fn fork_into_dead_ns(init_exits: bool) -> CaseResult {
    let (fork, set_tid): (Option<i32>, Option<i32>) = call(&Spawn::unshare(Kind::Pid.flag()), move || {
        let mut init = Spawn::fork().spawn_idle()?;
        let _alive = if init_exits {
            init.go()?;
            init.join()?;
            None
        } else {
            Some(init)
        };
        let fork = match Spawn::fork().spawn(|_| Ok(())) {
            Ok(child) => child.join().map(|()| None)?,
            Err(e) => Some(e.errno as i32),
        };
        // pid 2: any pid but 1 needs the namespace's init to exist, which
        // it did (set_tid checks child_reaper, not whether it lives).
        let set_tid = pidns::clone3_with_tid(2).err().map(|e| e as i32);
        Ok((fork, set_tid))
    })?;
    check_eq!(outcome(fork), "ENOMEM", "fork() into a pid namespace whose init has exited");
    check_eq!(outcome(set_tid), "ENOMEM", "clone3() with set_tid into a pid namespace whose init has exited");
    Ok(())
}

/// `join`: the joiner setns()es to the namespace of init before forking
/// the members (the claim), or not (sabotaged: the members are outside).
/// `wait`: how long the joiner waits for them after init has been let go.
///
/// pid_namespaces(7): "If the "init" process of a PID namespace
/// terminates, the kernel terminates all of the processes in the namespace
/// via a SIGKILL signal." The members' parent is outside (a setns() joiner,
/// as pid_namespaces(7) allows), so it, not init, reaps them and sees how
/// they ended. The kernel (zap_pid_ns_processes()) holds init back until
/// they are reaped, so the joiner waits for them while the test reaps init.
pub(super) fn init_exit_sigkills(join: bool, wait: Duration) -> CaseResult {
    let mut init = Spawn::clone(NsFlags::PID).spawn_idle()?;
    let target = NsId::of(init.proc(), Kind::Pid)?;
    let init_pid = init.pid().as_raw();
    let mut joiner = Spawn::fork().spawn(move |ch| {
        if join {
            NsFd::open(Proc::Pid(init_pid), Kind::Pid)?.setns(NsFlags::PID)?;
        }
        let (mut views, mut members) = (Vec::new(), Vec::new());
        for stop in [false, true] {
            let mut member = Spawn::fork().spawn(|m| {
                // Every signal but SIGKILL and SIGSTOP (which cannot be)
                // is blocked: only those can end it.
                SigSet::all().thread_block().setup("block every signal")?;
                m.send(&(NsId::current(Kind::Pid)?, getpid().as_raw()))?;
                // Never answered: it waits until it is killed.
                m.wait()
            })?;
            let view: (NsId, i32) = member.recv()?;
            if stop {
                pidns::send_signal(member.pid(), Signal::SIGSTOP)?;
                let state = stopped_within(member.pid(), poll_limit())?;
                if state != 'T' {
                    return Err(CaseError::broken(format!("a member sent SIGSTOP did not stop (state {state})")));
                }
            }
            views.push(view);
            members.push(member);
        }
        ch.send(&views)?;
        // Init has been let go.
        ch.wait()?;
        // Every 200 µs until all have ended or `wait` has passed.
        poll::poll_until(wait, Pause::every(Duration::from_micros(200)), || {
            for m in &members {
                if !m.has_exited()? {
                    return Ok(false);
                }
            }
            Ok::<_, CaseError>(true)
        })?;
        let mut ends = Vec::new();
        for member in members {
            ends.push(if member.has_exited()? {
                member.wait_exit()?.to_string()
            } else {
                // Dropping it kills it.
                format!("still running {wait:?} after init was let go")
            });
        }
        ch.send(&ends)
    })?;
    let views: Vec<(NsId, i32)> = joiner.recv()?;
    init.go()?;
    joiner.go()?;
    let ends: Vec<String> = joiner.recv()?;
    joiner.join()?;
    init.join()?;
    let killed = Exit::Signal(libc::SIGKILL).to_string();
    check_eq!(ends, vec![killed; 2], "how the members of the pid namespace ended after its init exited (blocked; blocked and stopped)");
    for (ns, pid) in &views {
        check_eq!(*ns, target, "pid namespace of the member (pid {pid} there) against init's");
    }
    Ok(())
}
