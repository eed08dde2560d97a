//! pid_namespaces(7) beyond the seed (claims D1-D6): the signals init of a
//! pid namespace receives, the 32-level nesting limit, parents and senders
//! outside the namespace (getppid() and si_pid 0), the caller's own pid
//! across unshare(2) and setns(2), clone3(2) set_tid, proc mounts, and what
//! happens to a pid namespace whose init has terminated.
//!
//! The parts, by claim: `dead_init` (D2: a namespace whose init has
//! exited), `init_signals` (D1), `nesting` (D3), `outside` (D4: getppid()
//! and si_pid 0), `own_pid` (D5: the caller's pid across unshare and
//! setns), `set_tid` (D5: clone3() set_tid) and `proc_mount` (D6). This
//! module keeps the case lists and what several parts use: the
//! requirements, `outcome`, `poll_limit` and `stopped_within`.

use std::time::Duration;

use harness::pidns::{self, MAX_PID_NS_LEVEL};
use harness::poll::{self, Pause};
use harness::{Case, CaseError, Errno, Kind, NsFlags, Privilege, Requires};
use nix::unistd::Pid;

use crate::common::{must_fail_with, SCRATCH};
use dead_init::{fork_into_dead_ns, init_exit_sigkills};
use init_signals::{handled_delivered, stop_kill_from_ancestor, unhandled_not_delivered};
use nesting::nesting_depth;
use outside::{getppid_zero, si_pid_zero};
use own_pid::{setns_keeps_pid, unshare_keeps_pid};
use proc_mount::proc_mount;
use set_tid::{set_tid_eexist, set_tid_einval, set_tid_eperm, set_tid_levels};

mod dead_init;
mod init_signals;
mod nesting;
mod outside;
mod own_pid;
mod proc_mount;
mod set_tid;

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
            || unhandled_not_delivered(NsFlags::PID),
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
            || getppid_zero(NsFlags::PID),
        )
        .requires(pid_admin()),
        Case::new(
            "pidns.si_pid_zero_from_ancestor",
            &["D4"],
            "si_pid is 0 for a signal from the ancestor namespace, to init and to another member; a sender inside \
             shows its pid in the namespace (1 for init)",
            || si_pid_zero(NsFlags::PID),
        )
        .requires(pid_admin()),
        Case::new(
            "pidns.unshare_keeps_own_pid",
            &["D5"],
            "after unshare(CLONE_NEWPID) the caller's getpid(), NSpid and pid namespace are unchanged, pid_for_children \
             is a new namespace, and the first child is PID 1 there with parent 0",
            || unshare_keeps_pid(NsFlags::PID),
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
            || must_fail_with(unhandled_not_delivered(NsFlags::EMPTY), "answers after SIGTERM"),
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
            || must_fail_with(getppid_zero(NsFlags::EMPTY), "getppid() of init of a new pid namespace"),
        )
        .requires(pid_admin()),
        Case::new(
            "sabotage.pidns.si_pid_zero_from_ancestor",
            &["D4"],
            "the \"init\" is created without CLONE_NEWPID: the ancestor is in its namespace and si_pid names it",
            || must_fail_with(si_pid_zero(NsFlags::EMPTY), "si_pid of SIGUSR1 from the ancestor namespace, to init"),
        )
        .requires(pid_admin()),
        Case::new(
            "sabotage.pidns.unshare_keeps_own_pid",
            &["D5"],
            "unshare() is called without CLONE_NEWPID: the first child is not PID 1",
            || must_fail_with(unshare_keeps_pid(NsFlags::EMPTY), "PID of the first child after unshare(CLONE_NEWPID)"),
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

/// How long an asynchronous step (a stop, a kill) is polled for before the
/// case fails: a second, scaled for slow VMs (`NSVERIFY_TIMEOUT_SCALE`).
fn poll_limit() -> Duration {
    harness::isolate::scaled(Duration::from_secs(1))
}

/// Waits until `pid` shows state `T` (stopped) in /proc, up to `limit`: a
/// stop takes effect when the target next runs, after kill() returns.
fn stopped_within(pid: Pid, limit: Duration) -> Result<char, CaseError> {
    let mut state = ' ';
    poll::poll_until(limit, Pause::every(Duration::from_micros(200)), || {
        state = pidns::proc_state(pid)?;
        Ok::<_, CaseError>(state == 'T')
    })?;
    Ok(state)
}
