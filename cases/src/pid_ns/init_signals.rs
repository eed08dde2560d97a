//! D1: the signals init of a pid namespace receives. Signals without a
//! handler are dropped whether they come from inside or from the ancestor
//! namespace (SIGKILL from inside too); handled ones are delivered; SIGSTOP
//! and SIGKILL from the ancestor stop and kill it.

use harness::peer::{in_child, Channel, Peer, Spawn};
use harness::pidns::{self, Received};
use harness::{check, check_eq, check_ne, CaseError, CaseResult, Exit, NsFlags, Setup};
use nix::sys::signal::Signal;
use nix::unistd::{getpid, getppid};
use serde::{Deserialize, Serialize};

use super::{outcome, poll_limit, stopped_within};

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
pub(super) fn unhandled_not_delivered(newpid: NsFlags) -> CaseResult {
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
pub(super) fn handled_delivered(install: bool) -> CaseResult {
    let signals = [Signal::SIGTERM, Signal::SIGUSR1];
    let handled: &[Signal] = if install { &signals } else { &[] };
    let mut init = Spawn::clone(NsFlags::PID).spawn(move |ch| init_body(ch, handled))?;
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

/// `from_ancestor`: the final SIGKILL comes from the ancestor (the claim),
/// or from a process inside (sabotaged).
pub(super) fn stop_kill_from_ancestor(from_ancestor: bool) -> CaseResult {
    let mut init = Spawn::clone(NsFlags::PID).spawn(|ch| init_body(ch, &[]))?;
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
