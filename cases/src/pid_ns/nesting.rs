//! D3: pid namespaces nest 32 levels below the initial one; at level 32
//! clone(CLONE_NEWPID) and unshare(CLONE_NEWPID) fail with ENOSPC.

use harness::peer::{call, Spawn};
use harness::pidns;
use harness::{check_eq, CaseError, CaseResult, Kind, NsFlags, NsId, Proc};
use serde::{Deserialize, Serialize};

use super::outcome;

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
        let mut chain: Chain = call(&Spawn::clone(NsFlags::PID), move || descend(deepest))?;
        chain.levels.insert(0, level);
        return Ok(chain);
    }
    let clone = match Spawn::clone(NsFlags::PID).spawn(|_| Ok(())) {
        Ok(peer) => peer.join().map(|()| None)?,
        Err(e) => Some(e.errno as i32),
    };
    let own = NsId::current(Kind::Pid)?;
    let unshare = outcome(harness::ns::unshare(NsFlags::PID).err().map(|e| e.errno as i32));
    let for_children = match NsId::for_children(Proc::Myself, Kind::Pid) {
        Ok(id) if id == own => "the caller's own".to_string(),
        Ok(_) => "another".to_string(),
        Err(e) => format!("unreadable ({e:?})"),
    };
    Ok(Chain { levels: vec![level], clone: outcome(clone), unshare, for_children })
}

/// `deepest`: [`MAX_PID_NS_LEVEL`](pidns::MAX_PID_NS_LEVEL) for the
/// claim; one less when sabotaged. The claim runs from any level (at 32 the
/// chain is only the refusals); the sabotage needs the suite above level
/// 32, which its Requires probe ([`pidns::level_below_max`]) decides, so
/// where the suite runs is never a failure. Cost: a chain of up to 32
/// processes, one clone each (about 10-20 ms).
pub(super) fn nesting_depth(deepest: usize) -> CaseResult {
    let start = pidns::own_level()?;
    let chain = descend(deepest)?;
    check_eq!(chain.levels, (start..=deepest).collect::<Vec<_>>(), "levels (NSpid length less one) of the inits of the chain");
    check_eq!(chain.clone, "ENOSPC", "clone(CLONE_NEWPID) at the deepest level ({deepest})");
    check_eq!(chain.unshare, "ENOSPC", "unshare(CLONE_NEWPID) at level {deepest}");
    check_eq!(chain.for_children, "the caller's own", "pid namespace named by pid_for_children after the refused unshare(CLONE_NEWPID)");
    Ok(())
}
