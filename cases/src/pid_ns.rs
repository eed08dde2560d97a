//! pid_namespaces(7) beyond the seed (claims D1-D6): what happens to a pid
//! namespace whose init has terminated.

use harness::peer::{call, Spawn};
use harness::{check_eq, Case, CaseResult, Errno, Kind, Privilege, Requires};

use crate::common::must_fail_with;

fn requires() -> Requires {
    // clone3(2) set_tid: 5.5.
    Requires::kinds(&[Kind::Pid]).privilege(Privilege::Admin).kernel(5, 5)
}

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    vec![Case::new(
        "pidns.fork_into_dead_ns_enomem",
        &["D2"],
        "after init of a pid namespace has exited, fork() and clone3() with set_tid into that namespace fail with ENOMEM",
        || fork_into_dead_ns(true),
    )
    .requires(requires())]
}

/// The D2 case run sabotaged: init is kept alive, so the fork succeeds.
pub fn sabotaged() -> Vec<Case> {
    vec![Case::new(
        "sabotage.pidns.fork_into_dead_ns_enomem",
        &["D2"],
        "init of the pid namespace is kept alive: the fork must succeed where ENOMEM is expected",
        || must_fail_with(fork_into_dead_ns(false), "fork() into a pid namespace whose init has exited"),
    )
    .requires(requires())]
}

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
    let name = |e: Option<i32>| e.map_or("success".to_string(), |e| format!("{:?}", Errno::from_raw(e)));
    check_eq!(name(fork), "ENOMEM", "fork() into a pid namespace whose init has exited");
    check_eq!(name(set_tid), "ENOMEM", "clone3() with set_tid into a pid namespace whose init has exited");
    Ok(())
}
