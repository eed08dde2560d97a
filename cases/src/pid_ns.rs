//! pid_namespaces(7) beyond the seed (claims D1-D6): the signals init of a
//! pid namespace receives, the 32-level nesting limit, parents and senders
//! outside the namespace (getppid() and si_pid 0), the caller's own pid
//! across unshare(2) and setns(2), clone3(2) set_tid, proc mounts, and what
//! happens to a pid namespace whose init has terminated.

use std::collections::BTreeSet;
use std::fs;
use std::time::{Duration, Instant};

use harness::peer::{call, in_child, Channel, Peer, Spawn};
use harness::pidns::{self, Received, MAX_PID_NS_LEVEL};
use harness::sys::Exit;
use harness::{check, check_eq, check_ne, Case, CaseError, CaseResult, Errno, Kind, NsFd, NsId, Privilege, Proc, Requires, Setup};
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::{getpid, getppid, Pid};
use serde::{Deserialize, Serialize};

use crate::common::{must_fail_with, private_mounts, SCRATCH};

const NEWPID: u64 = libc::CLONE_NEWPID as u64;

fn requires() -> Requires {
    // clone3(2) set_tid: 5.5.
    Requires::kinds(&[Kind::Pid]).privilege(Privilege::Admin).kernel(5, 5)
}

fn pid_admin() -> Requires {
    Requires::kinds(&[Kind::Pid]).privilege(Privilege::Admin)
}

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "pidns.fork_into_dead_ns_enomem",
            &["D2"],
            "after init of a pid namespace has exited, fork() and clone3() with set_tid into that namespace fail with ENOMEM",
            || fork_into_dead_ns(true),
        )
        .requires(requires()),
        Case::new(
            "pidns.init_exit_sigkills_members",
            &["D2"],
            "when init of a pid namespace exits, members with every blockable signal blocked, one of them also stopped, \
             are killed by SIGKILL (their parent, a setns() joiner outside the namespace, reaps them as killed by signal 9); \
             init is reaped only after them",
            || init_exit_sigkills(true, poll_limit()),
        )
        .requires(pid_admin()),
        Case::new(
            "pidns.init_unhandled_signals_not_delivered",
            &["D1"],
            "init of a new pid namespace with no handler for SIGTERM and SIGUSR1 survives them from a process inside \
             and from the ancestor namespace, and SIGKILL from inside; none is left pending",
            || unhandled_not_delivered(NEWPID),
        )
        .requires(pid_admin()),
        Case::new(
            "pidns.init_handled_signals_delivered",
            &["D1"],
            "init of a new pid namespace with handlers for SIGTERM and SIGUSR1 receives both, from inside and from \
             the ancestor namespace: each handler runs twice",
            || handled_delivered(true),
        )
        .requires(pid_admin()),
        Case::new(
            "pidns.init_sigstop_sigkill_from_ancestor",
            &["D1"],
            "SIGSTOP from the ancestor namespace stops init of a new pid namespace (state T) until SIGCONT, and \
             SIGKILL from it kills init, though init has no handler",
            || stop_kill_from_ancestor(true),
        )
        .requires(pid_admin()),
        Case::new(
            "pidns.nesting_depth_32",
            &["D3"],
            "pid namespaces nest 32 levels below the initial one (NSpid of each level's init has level + 1 entries); \
             at level 32 clone(CLONE_NEWPID) and unshare(CLONE_NEWPID) fail with ENOSPC, pid_for_children unchanged",
            || nesting_depth(MAX_PID_NS_LEVEL),
        )
        .requires(pid_admin().kernel(4, 9).probe(pidns::proc_is_initial)),
        Case::new(
            "pidns.getppid_zero_outside_parent",
            &["D4"],
            "getppid() is 0 in init of a new pid namespace (clone), in the first child after unshare(CLONE_NEWPID) \
             and in the child of a setns() joiner, whose parents are outside; a child of init sees 1",
            || getppid_zero(NEWPID),
        )
        .requires(pid_admin()),
        Case::new(
            "pidns.si_pid_zero_from_ancestor",
            &["D4"],
            "si_pid is 0 for a signal from the ancestor namespace, to init and to another member; a sender inside \
             shows its pid in the namespace (1 for init)",
            || si_pid_zero(NEWPID),
        )
        .requires(pid_admin()),
        Case::new(
            "pidns.unshare_keeps_own_pid",
            &["D5"],
            "after unshare(CLONE_NEWPID) the caller's getpid(), NSpid and pid namespace are unchanged, pid_for_children \
             is a new namespace, and the first child is PID 1 there with parent 0",
            || unshare_keeps_pid(NEWPID),
        )
        .requires(pid_admin()),
        Case::new(
            "pidns.setns_keeps_own_pid",
            &["D5"],
            "after setns() to a pid namespace the caller's getpid(), NSpid and pid namespace are unchanged, \
             pid_for_children is the target, and the next child gets PID 2 there (init holds 1) with parent 0",
            setns_keeps_pid,
        )
        .requires(pid_admin()),
        Case::new(
            "pidns.set_tid_picks_each_level",
            &["D5"],
            "clone3() set_tid [1, 42, 500] with CLONE_NEWPID, from init of a second-level namespace, gives a child \
             with those pids in its own, its parent's and its grandparent's namespaces (NSpid); [7, 600] without it",
            || set_tid_levels(3),
        )
        .requires(requires()),
        Case::new(
            "pidns.set_tid_eexist",
            &["D5"],
            "clone3() set_tid naming a pid that is taken at any level fails with EEXIST, and the pids it allocated at \
             the other levels are free again",
            set_tid_eexist,
        )
        .requires(requires()),
        Case::new(
            "pidns.set_tid_eperm_foreign_owner",
            &["D5"],
            "clone3() set_tid from a process with every capability in its own user namespace, but not in the one \
             owning the pid namespace, fails with EPERM and creates nothing",
            set_tid_eperm,
        )
        .requires(requires()),
        Case::new(
            "pidns.set_tid_einval_beyond_levels",
            &["D5"],
            "clone3() with set_tid_size larger than the child's pid namespace levels, or than MAX_PID_NS_LEVEL, \
             fails with EINVAL",
            set_tid_einval,
        )
        .requires(requires().probe(pidns::proc_is_initial)),
        Case::new(
            "pidns.proc_mount_shows_own_ns",
            &["D6"],
            "proc mounted in a new mount and pid namespace lists exactly that namespace's processes, /proc/self \
             names the pid there, NSpid has one level; the old /proc still shows the outer pids",
            || proc_mount(SCRATCH),
        )
        .requires(Requires::kinds(&[Kind::Pid, Kind::Mnt]).privilege(Privilege::Admin)),
    ]
}

/// The cases run sabotaged: each must fail at its named check.
pub fn sabotaged() -> Vec<Case> {
    vec![
        Case::new(
            "sabotage.pidns.fork_into_dead_ns_enomem",
            &["D2"],
            "init of the pid namespace is kept alive: the fork must succeed where ENOMEM is expected",
            || must_fail_with(fork_into_dead_ns(false), "fork() into a pid namespace whose init has exited"),
        )
        .requires(requires()),
        Case::new(
            "sabotage.pidns.init_exit_sigkills_members",
            &["D2"],
            "the joiner forks the members without setns(): they are outside the namespace and outlive its init",
            // They are never killed: a short wait shows it as well.
            || {
                must_fail_with(
                    init_exit_sigkills(false, harness::isolate::scaled(Duration::from_millis(50))),
                    "how the members of the pid namespace ended after its init exited",
                )
            },
        )
        .requires(pid_admin()),
        Case::new(
            "sabotage.pidns.init_unhandled_signals_not_delivered",
            &["D1"],
            "the \"init\" is created without CLONE_NEWPID: SIGTERM from its child kills it",
            || must_fail_with(unhandled_not_delivered(0), "answers after SIGTERM"),
        )
        .requires(pid_admin()),
        Case::new(
            "sabotage.pidns.init_handled_signals_delivered",
            &["D1"],
            "init installs no handler: the handlers' counts stay 0",
            || must_fail_with(handled_delivered(false), "runs of init's handler"),
        )
        .requires(pid_admin()),
        Case::new(
            "sabotage.pidns.init_sigstop_sigkill_from_ancestor",
            &["D1"],
            "SIGKILL is sent from inside the namespace instead of from the ancestor: init survives it",
            || must_fail_with(stop_kill_from_ancestor(false), "SIGKILL from the ancestor"),
        )
        .requires(pid_admin()),
        Case::new(
            "sabotage.pidns.nesting_depth_32",
            &["D3"],
            "the chain stops at level 31 and expects the refusal there: clone(CLONE_NEWPID) succeeds",
            || must_fail_with(nesting_depth(MAX_PID_NS_LEVEL - 1), "clone(CLONE_NEWPID) at the deepest level"),
        )
        .requires(pid_admin().kernel(4, 9).probe(pidns::level_below_max)),
        Case::new(
            "sabotage.pidns.getppid_zero_outside_parent",
            &["D4"],
            "the \"init\" is created without CLONE_NEWPID: its parent is in its namespace",
            || must_fail_with(getppid_zero(0), "getppid() of init of a new pid namespace"),
        )
        .requires(pid_admin()),
        Case::new(
            "sabotage.pidns.si_pid_zero_from_ancestor",
            &["D4"],
            "the \"init\" is created without CLONE_NEWPID: the ancestor is in its namespace and si_pid names it",
            || must_fail_with(si_pid_zero(0), "si_pid of SIGUSR1 from the ancestor namespace, to init"),
        )
        .requires(pid_admin()),
        Case::new(
            "sabotage.pidns.unshare_keeps_own_pid",
            &["D5"],
            "unshare() is called without CLONE_NEWPID: the first child is not PID 1",
            || must_fail_with(unshare_keeps_pid(0), "PID of the first child after unshare(CLONE_NEWPID)"),
        )
        .requires(pid_admin()),
        Case::new(
            "sabotage.pidns.set_tid_picks_each_level",
            &["D5"],
            "set_tid names only the two inner levels: the grandparent namespace's pid is not 500",
            || must_fail_with(set_tid_levels(2), "NSpid of the clone3() child with set_tid [1, 42, 500]"),
        )
        .requires(requires()),
        Case::new(
            "sabotage.pidns.proc_mount_shows_own_ns",
            &["D6"],
            "the old /proc is listed instead of the new proc mount: it shows the ancestor's processes",
            || must_fail_with(proc_mount("/proc"), "numeric entries of a proc mounted in the new pid namespace"),
        )
        .requires(Requires::kinds(&[Kind::Pid, Kind::Mnt]).privilege(Privilege::Admin)),
    ]
}

/// The name of an outcome: "success" or the errno's name.
fn outcome(e: Option<i32>) -> String {
    e.map_or("success".to_string(), |e| format!("{:?}", Errno::from_raw(e)))
}

// ---------------------------------------------------------------- D2

/// A process unshares CLONE_NEWPID; its first child (init of the new
/// namespace) exits at once unless `init_exits` is false; then the process
/// forks again, with clone(2) and with clone3(2) set_tid. pid_namespaces(7):
/// "a subsequent fork(2) into this PID namespace fail[s] with the error
/// ENOMEM".
fn fork_into_dead_ns(init_exits: bool) -> CaseResult {
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
        let set_tid = harness::sys::clone3_with_tid(2).err().map(|e| e as i32);
        Ok((fork, set_tid))
    })?;
    check_eq!(outcome(fork), "ENOMEM", "fork() into a pid namespace whose init has exited");
    check_eq!(outcome(set_tid), "ENOMEM", "clone3() with set_tid into a pid namespace whose init has exited");
    Ok(())
}

/// How long an asynchronous step (a stop, a kill) is polled for before the
/// case fails: a second, scaled for slow VMs (`NSVERIFY_TIMEOUT_SCALE`).
fn poll_limit() -> Duration {
    harness::isolate::scaled(Duration::from_secs(1))
}

/// Polls every 200 µs until `done` holds or `limit` has passed; returns
/// whether it held.
fn poll_until(limit: Duration, mut done: impl FnMut() -> Result<bool, CaseError>) -> Result<bool, CaseError> {
    let until = Instant::now() + limit;
    loop {
        if done()? {
            return Ok(true);
        }
        if Instant::now() >= until {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_micros(200));
    }
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
fn init_exit_sigkills(join: bool, wait: Duration) -> CaseResult {
    let mut init = Spawn::clone(NEWPID).spawn_idle()?;
    let target = NsId::of(init.proc(), Kind::Pid)?;
    let init_pid = init.pid().as_raw();
    let mut joiner = Spawn::fork().spawn(move |ch| {
        if join {
            NsFd::open(Proc::Pid(init_pid), Kind::Pid)?.setns(NEWPID)?;
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
        poll_until(wait, || {
            for m in &members {
                if !m.has_exited()? {
                    return Ok(false);
                }
            }
            Ok(true)
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

// ---------------------------------------------------------------- D1

/// What the test asks of an init peer ([`init_body`]).
#[derive(Serialize, Deserialize)]
enum Ask {
    /// Answer with what its handlers saw of SIGTERM and SIGUSR1.
    Report,
    /// Start a member (a child, so inside the namespace) that sends these
    /// signals to its parent, init; answer with its [`MemberSent`].
    MemberSends(Vec<i32>),
    /// Finish.
    Exit,
}

/// What a member that signalled init saw: its getppid() (1 when init is a
/// namespace's init) and the result of each kill(2).
#[derive(Debug, Serialize, Deserialize)]
struct MemberSent {
    ppid: i32,
    results: Vec<String>,
}

/// An init peer: installs a recording handler for each of `handled`, sends
/// its getpid(), then answers [`Ask`]s until told to exit.
fn init_body(ch: &Channel, handled: &[Signal]) -> CaseResult {
    pidns::record_signals(handled)?;
    ch.send(&getpid().as_raw())?;
    loop {
        match ch.recv::<Ask>()? {
            Ask::Report => ch.send(&[pidns::received(Signal::SIGTERM), pidns::received(Signal::SIGUSR1)])?,
            Ask::MemberSends(signals) => {
                let sent = in_child(move || {
                    // The target is the parent, init; by getppid() rather
                    // than pid 1 so that a sabotaged "init" (no new
                    // namespace) never signals the real init.
                    let ppid = getppid();
                    let mut results = Vec::new();
                    for s in signals {
                        let signal = Signal::try_from(s).setup("signal number")?;
                        results.push(outcome(pidns::send_signal(ppid, signal).err().map(|e| e.errno as i32)));
                    }
                    Ok(MemberSent { ppid: ppid.as_raw(), results })
                })?;
                ch.send(&sent)?
            }
            Ask::Exit => return Ok(()),
        }
    }
}

/// Asks `init` and returns its answer; an init that cannot answer (it was
/// killed) fails the check "init ... answers after `after`".
///
/// Why an answer shows that a signal was not delivered: kill(2) decides in
/// the sender's call whether the signal is dropped (init's SIG_DFL, sent
/// from inside) or queued, and a fatal one queued starts the group exit at
/// once. init, blocked reading its channel, then dies before that read
/// returns; so an init that reads the next question and answers it was
/// not sent the signal. A handled signal likewise runs its handler before
/// the read returns, so the counts in the answer include it.
fn ask<T: serde::de::DeserializeOwned>(init: &mut Peer, question: &Ask, after: &str) -> Result<T, CaseError> {
    match init.send(question).and_then(|()| init.recv()) {
        Ok(answer) => Ok(answer),
        Err(e) => Err(CaseError::fail(format!("init of the new pid namespace answers after {after}: it did not ({e})"))),
    }
}

fn signal_names(signals: &[Signal]) -> String {
    signals.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// `newpid`: CLONE_NEWPID for the claim, 0 when sabotaged.
fn unhandled_not_delivered(newpid: u64) -> CaseResult {
    let mut init = Spawn::clone(newpid).spawn(|ch| init_body(ch, &[]))?;
    let _: i32 = init.recv()?;
    let inside = [Signal::SIGTERM, Signal::SIGUSR1, Signal::SIGKILL];
    let from_inside = format!("{} from a process inside the namespace", signal_names(&inside));
    let sent: MemberSent = ask(&mut init, &Ask::MemberSends(inside.iter().map(|s| *s as i32).collect()), &from_inside)?;
    let _: Vec<Received> = ask(&mut init, &Ask::Report, &from_inside)?;
    let bits = inside.iter().fold(0, |m, s| m | pidns::signal_bit(*s));
    check_eq!(pidns::pending_signals(init.pid())? & bits, 0, "signals pending for init after {from_inside} (dropped, not queued)");
    let outside = [Signal::SIGTERM, Signal::SIGUSR1];
    for s in outside {
        pidns::send_signal(init.pid(), s)?;
    }
    let from_outside = format!("{} from the ancestor namespace", signal_names(&outside));
    let seen: Vec<Received> = ask(&mut init, &Ask::Report, &from_outside)?;
    check_eq!(pidns::pending_signals(init.pid())? & bits, 0, "signals pending for init after {from_outside}");
    check_eq!(sent.ppid, 1, "getppid() of the member that signalled init");
    check_eq!(sent.results, vec!["success"; 3], "kill() of {from_inside}");
    check_eq!(seen.iter().map(|r| r.count).collect::<Vec<_>>(), vec![0, 0], "handler runs in init (none installed)");
    init.send(&Ask::Exit)?;
    init.join()
}

/// `install`: init installs its handlers (the claim), or not (sabotaged).
fn handled_delivered(install: bool) -> CaseResult {
    let signals = [Signal::SIGTERM, Signal::SIGUSR1];
    let handled: &[Signal] = if install { &signals } else { &[] };
    let mut init = Spawn::clone(NEWPID).spawn(move |ch| init_body(ch, handled))?;
    let _: i32 = init.recv()?;
    let sent: MemberSent = ask(&mut init, &Ask::MemberSends(signals.iter().map(|s| *s as i32).collect()), "signals from inside")?;
    for s in signals {
        pidns::send_signal(init.pid(), s)?;
    }
    let seen: Vec<Received> = ask(&mut init, &Ask::Report, "signals from the ancestor namespace")?;
    check_eq!(sent.ppid, 1, "getppid() of the member that signalled init");
    check_eq!(sent.results, vec!["success"; 2], "kill() of SIGTERM and SIGUSR1 to init from inside");
    for (s, r) in signals.iter().zip(&seen) {
        check_eq!(r.count, 2, "runs of init's handler for {} (once from inside, once from the ancestor)", s.as_str());
    }
    init.send(&Ask::Exit)?;
    init.join()
}

/// Waits until `pid` shows state `T` (stopped) in /proc, up to `limit`: a
/// stop takes effect when the target next runs, after kill() returns.
fn stopped_within(pid: Pid, limit: Duration) -> Result<char, CaseError> {
    let until = Instant::now() + limit;
    loop {
        let state = pidns::proc_state(pid)?;
        if state == 'T' || Instant::now() >= until {
            return Ok(state);
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// `from_ancestor`: the final SIGKILL comes from the ancestor (the claim),
/// or from a process inside (sabotaged).
fn stop_kill_from_ancestor(from_ancestor: bool) -> CaseResult {
    let mut init = Spawn::clone(NEWPID).spawn(|ch| init_body(ch, &[]))?;
    let _: i32 = init.recv()?;
    pidns::send_signal(init.pid(), Signal::SIGSTOP)?;
    let state = stopped_within(init.pid(), poll_limit())?;
    check_eq!(state, 'T', "state of init after SIGSTOP from the ancestor namespace");
    pidns::send_signal(init.pid(), Signal::SIGCONT)?;
    let _: Vec<Received> = ask(&mut init, &Ask::Report, "SIGSTOP and SIGCONT from the ancestor namespace")?;
    check_ne!(pidns::proc_state(init.pid())?, 'T', "state of init after SIGCONT");
    if from_ancestor {
        pidns::send_signal(init.pid(), Signal::SIGKILL)?;
    } else {
        let _: MemberSent = ask(&mut init, &Ask::MemberSends(vec![Signal::SIGKILL as i32]), "SIGKILL from inside")?;
    }
    let answered = init.send(&Ask::Report).and_then(|()| init.recv::<Vec<Received>>()).is_ok();
    check!(!answered, "init of the new pid namespace after SIGKILL from the ancestor namespace: it still answers");
    let exit = init.wait_exit()?;
    check_eq!(exit, Exit::Signal(libc::SIGKILL), "how init ended after SIGKILL from the ancestor namespace");
    Ok(())
}

// ---------------------------------------------------------------- D3

/// What a chain of nested pid namespaces saw: the level of each init from
/// the suite's down, and at the deepest level the results of one more
/// clone(CLONE_NEWPID) and unshare(CLONE_NEWPID), and which namespace
/// pid_for_children names after them.
#[derive(Debug, Serialize, Deserialize)]
struct Chain {
    levels: Vec<usize>,
    clone: String,
    unshare: String,
    for_children: String,
}

/// Runs in a process at some level: below `deepest`, starts init of the
/// next level (clone(CLONE_NEWPID)) and descends there; at `deepest`,
/// tries one level more.
fn descend(deepest: usize) -> Result<Chain, CaseError> {
    let level = pidns::own_level()?;
    if level < deepest {
        let mut chain: Chain = call(&Spawn::clone(NEWPID), move || descend(deepest))?;
        chain.levels.insert(0, level);
        return Ok(chain);
    }
    let clone = match Spawn::clone(NEWPID).spawn(|_| Ok(())) {
        Ok(peer) => peer.join().map(|()| None)?,
        Err(e) => Some(e.errno as i32),
    };
    let own = NsId::current(Kind::Pid)?;
    let unshare = outcome(harness::sys::unshare(NEWPID).err().map(|e| e as i32));
    let for_children = match NsId::for_children(Proc::Myself, Kind::Pid) {
        Ok(id) if id == own => "the caller's own".to_string(),
        Ok(_) => "another".to_string(),
        Err(e) => format!("unreadable ({e:?})"),
    };
    Ok(Chain { levels: vec![level], clone: outcome(clone), unshare, for_children })
}

/// `deepest`: [`MAX_PID_NS_LEVEL`] for the claim; one less when sabotaged.
/// The claim runs from any level (at 32 the chain is only the refusals);
/// the sabotage needs the suite above level 32, which its Requires probe
/// ([`pidns::level_below_max`]) decides, so where the suite runs is never a
/// failure. Cost: a chain of up to 32 processes, one clone each (about
/// 10-20 ms).
fn nesting_depth(deepest: usize) -> CaseResult {
    let start = pidns::own_level()?;
    let chain = descend(deepest)?;
    check_eq!(chain.levels, (start..=deepest).collect::<Vec<_>>(), "levels (NSpid length less one) of the inits of the chain");
    check_eq!(chain.clone, "ENOSPC", "clone(CLONE_NEWPID) at the deepest level ({deepest})");
    check_eq!(chain.unshare, "ENOSPC", "unshare(CLONE_NEWPID) at level {deepest}");
    check_eq!(chain.for_children, "the caller's own", "pid namespace named by pid_for_children after the refused unshare(CLONE_NEWPID)");
    Ok(())
}

// ---------------------------------------------------------------- D4

/// `newpid`: CLONE_NEWPID for the claim, 0 when sabotaged.
fn getppid_zero(newpid: u64) -> CaseResult {
    let mut init = Spawn::clone(newpid).spawn(|ch| {
        let child = call(&Spawn::fork(), || Ok(getppid().as_raw()))?;
        ch.send(&(getppid().as_raw(), child))?;
        ch.wait()
    })?;
    let (init_ppid, child_ppid): (i32, i32) = init.recv()?;
    check_eq!(init_ppid, 0, "getppid() of init of a new pid namespace, created by clone(CLONE_NEWPID)");
    check_eq!(child_ppid, 1, "getppid() of a child of init");
    let first = call(&Spawn::unshare(NEWPID), || call(&Spawn::fork(), || Ok((getpid().as_raw(), getppid().as_raw()))))?;
    check_eq!(first, (1, 0), "getpid() and getppid() of the first child after unshare(CLONE_NEWPID)");
    let joiner_child = in_child(|| {
        NsFd::open(init.proc(), Kind::Pid)?.setns(NEWPID)?;
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
fn si_pid_zero(newpid: u64) -> CaseResult {
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

// ---------------------------------------------------------------- D5

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
fn unshare_keeps_pid(flag: u64) -> CaseResult {
    let (before, after, first, for_children): (SelfView, SelfView, SelfView, NsId) = in_child(move || {
        let before = self_view()?;
        harness::sys::unshare(flag)?;
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

fn setns_keeps_pid() -> CaseResult {
    let init = Spawn::clone(NEWPID).spawn_idle()?;
    let target = NsId::of(init.proc(), Kind::Pid)?;
    let init_levels = pidns::nspid(Some(init.pid()))?.len();
    let (before, after, child, for_children): (SelfView, SelfView, SelfView, NsId) = in_child(|| {
        let before = self_view()?;
        NsFd::open(init.proc(), Kind::Pid)?.setns(NEWPID)?;
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

/// Runs `f` in init of a pid namespace two levels below the suite's (B, in
/// A), so that set_tid can name pids of A and B without touching the
/// suite's own namespace; A and B are owned by the suite's user namespace.
fn in_two_levels<T, F>(f: F) -> Result<T, CaseError>
where
    T: Serialize + serde::de::DeserializeOwned,
    F: FnOnce() -> Result<T, CaseError>,
{
    call(&Spawn::clone(NEWPID), || call(&Spawn::clone(NEWPID), f))
}

/// The last `n` entries of an NSpid, innermost first (set_tid's order).
fn innermost(nspid: &[i32], n: usize) -> Vec<i32> {
    nspid.iter().rev().take(n).copied().collect()
}

/// `named`: how many levels of [1, 42, 500] set_tid names (3 for the
/// claim, 2 when sabotaged).
fn set_tid_levels(named: usize) -> CaseResult {
    let wanted = [1, 42, 500];
    let (with_newpid, without) = in_two_levels(move || {
        let a = pidns::clone3_set_tid(NEWPID, &wanted[..named])??;
        let b = pidns::clone3_set_tid(0, &[7, 600])??;
        Ok(((a.pid, innermost(&a.nspid, 3)), (b.pid, innermost(&b.nspid, 2))))
    })?;
    check_eq!(with_newpid.1, wanted.to_vec(), "NSpid of the clone3() child with set_tid [1, 42, 500] and CLONE_NEWPID, innermost first");
    check_eq!(with_newpid.0, 42, "pid clone3() returned for it (the caller's namespace's pid)");
    check_eq!(without.1, vec![7, 600], "NSpid of the clone3() child with set_tid [7, 600], innermost first");
    check_eq!(without.0, 7, "pid clone3() returned for it");
    Ok(())
}

fn set_tid_eexist() -> CaseResult {
    let (taken_own, taken_outer, after) = in_two_levels(|| {
        let own = pidns::clone3_set_tid(0, &[1])?.err().map(|e| e.errno as i32);
        // Allocated from the innermost level out: 1 in the new namespace
        // and 43 here, then pid 1 of the grandparent namespace is taken.
        let outer = pidns::clone3_set_tid(NEWPID, &[1, 43, 1])?.err().map(|e| e.errno as i32);
        let after = pidns::clone3_set_tid(0, &[43])??;
        Ok((own, outer, (after.pid, innermost(&after.nspid, 1))))
    })?;
    check_eq!(outcome(taken_own), "EEXIST", "clone3() with set_tid [1] where init holds pid 1");
    check_eq!(outcome(taken_outer), "EEXIST", "clone3() with set_tid [1, 43, 1] and CLONE_NEWPID, pid 1 of the outer level taken");
    check_eq!(after, (43, vec![43]), "clone3() with set_tid [43] after the refused call (43 must be free again)");
    Ok(())
}

fn set_tid_eperm() -> CaseResult {
    let (refused, exists, after) = in_two_levels(|| {
        let refused = in_child(|| {
            // Every capability in a new user namespace, none in the one
            // that owns this pid namespace (user_namespaces(7)).
            harness::sys::unshare(libc::CLONE_NEWUSER as u64)?;
            Ok(pidns::clone3_set_tid(0, &[44])?.err().map(|e| e.errno as i32))
        })?;
        let exists = pidns::pid_exists(Pid::from_raw(44))?;
        let after = pidns::clone3_set_tid(0, &[44])??;
        Ok((refused, exists, after.pid))
    })?;
    check_eq!(outcome(refused), "EPERM", "clone3() with set_tid [44] without CAP_SYS_ADMIN over the pid namespace's owner");
    check!(!exists, "pid 44 exists after the refused clone3()");
    check_eq!(after, 44, "clone3() with set_tid [44] by init, which has CAP_SYS_ADMIN there");
    Ok(())
}

fn set_tid_einval() -> CaseResult {
    let (beyond, max) = in_two_levels(|| {
        // The child's namespace (this one, no CLONE_NEWPID) has level + 1
        // levels of pids; one more element is too many.
        let levels = pidns::own_level()? + 1;
        // Valid pids in every element, so that only the size is wrong.
        let beyond = pidns::clone3_set_tid(0, &vec![45; levels + 1])?.err().map(|e| e.errno as i32);
        let max = pidns::clone3_set_tid(NEWPID, &[vec![1], vec![45; MAX_PID_NS_LEVEL]].concat())?.err().map(|e| e.errno as i32);
        Ok((beyond, max))
    })?;
    check_eq!(outcome(beyond), "EINVAL", "clone3() with set_tid_size one more than the levels of the child's pid namespace");
    check_eq!(outcome(max), "EINVAL", "clone3() with set_tid_size MAX_PID_NS_LEVEL + 1");
    Ok(())
}

// ---------------------------------------------------------------- D6

/// What init of a new mount and pid namespace saw through a proc mounted
/// there (at `listed_root` when sabotaged to the old /proc).
#[derive(Debug, Serialize, Deserialize)]
struct ProcView {
    created: BTreeSet<i32>,
    listed: BTreeSet<i32>,
    self_link: String,
    init_nspid: Vec<i32>,
    member: i32,
    member_nspid: Vec<i32>,
    old_self: String,
    old_nspid: Vec<i32>,
}

/// `listed_root`: the new proc mount ([`SCRATCH`]) for the claim, the old
/// /proc when sabotaged.
fn proc_mount(listed_root: &'static str) -> CaseResult {
    let view: ProcView = call(&Spawn::clone(NEWPID | Kind::Mnt.flag()), move || {
        use nix::mount::{mount, MsFlags};
        private_mounts()?;
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        mount(Some("proc"), SCRATCH, Some("proc"), flags, None::<&str>).setup("mount proc in the new mount namespace")?;
        let members = (0..3).map(|_| Spawn::fork().spawn_idle()).collect::<Result<Vec<Peer>, _>>()?;
        let created: BTreeSet<i32> = std::iter::once(1).chain(members.iter().map(|m| m.pid().as_raw())).collect();
        let listed: BTreeSet<i32> = fs::read_dir(listed_root)?.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
        let member = members[0].pid().as_raw();
        let view = ProcView {
            created,
            listed,
            self_link: fs::read_link(format!("{SCRATCH}/self"))?.to_string_lossy().into_owned(),
            init_nspid: pidns::nspid_at(SCRATCH, "1")?,
            member,
            member_nspid: pidns::nspid_at(SCRATCH, &member.to_string())?,
            old_self: fs::read_link("/proc/self")?.to_string_lossy().into_owned(),
            old_nspid: pidns::nspid(None)?,
        };
        for mut m in members {
            m.go()?;
            m.join()?;
        }
        Ok(view)
    })?;
    check_eq!(view.listed, view.created, "numeric entries of a proc mounted in the new pid namespace against the processes init created");
    check_eq!(view.self_link, "1", "/proc/self of init in the new proc mount");
    check_eq!(view.init_nspid, vec![1], "NSpid of /proc/1/status in the new proc mount");
    check_eq!(view.member_nspid, vec![view.member], "NSpid of a member in the new proc mount");
    check_eq!(view.old_nspid.last(), Some(&1), "innermost NSpid of init through the old /proc");
    check!(
        view.old_nspid.len() >= 2,
        "NSpid of init through the old /proc has {} levels, expected the outer ones too",
        view.old_nspid.len()
    );
    check_eq!(view.old_self, view.old_nspid[0].to_string(), "/proc/self of init through the old /proc (its outer pid)");
    Ok(())
}
