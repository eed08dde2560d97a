//! F5, F9: pid_for_children and time_for_children keep a pid or time
//! namespace alive before the process that unshared it has a child.

use harness::observe::{release_deadline, Control, HandleProber, LimitObserver, NsHandle};
use harness::peer::Spawn;
use harness::{check, CaseError, CaseResult, Kind, NsEntry, NsFd, NsId};

use super::{finish, settle_after};

/// F5 (pid) and F9 (time): a process that unshared CLONE_NEWPID or
/// CLONE_NEWTIME and has no child refers to the new namespace only through
/// its `*_for_children` entry. `keep` false is the sabotage: the process
/// exits before the check.
pub(super) fn for_children_keeps_alive(kind: Kind, keep: bool) -> CaseResult {
    let entry = NsEntry::children_of(kind).ok_or_else(|| CaseError::broken(format!("{kind} has no *_for_children entry")))?;
    let mut prober = HandleProber::start()?;
    let ctl = Control::start(kind)?;
    let mut obs = LimitObserver::enter(kind, 1)?;
    let peer = Spawn::unshare(kind.flag()).spawn_idle()?;
    // pid_for_children reads ENOENT until the first child (namespaces(7);
    // identity.for_children.pid judges that, with the known deviation
    // PID_FOR_CHILDREN_OPENS_EARLY); time_for_children names the new
    // namespace at once. Here either form only decides whether an nsfs
    // handle observes the namespace besides the limit observer.
    let early = match NsFd::open_entry(peer.proc(), entry) {
        Ok(fd) => Some(fd),
        Err(e) if kind == Kind::Pid && e.errno == harness::Errno::ENOENT => None,
        Err(e) => return Err(e.into()),
    };
    if let Some(fd) = &early {
        check!(NsId::of(peer.proc(), kind)? != fd.id(), "{entry} of the process names a new namespace");
    }
    let handle = match (&prober, &early) {
        (Some(_), Some(fd)) => Some(NsHandle::of(fd)?),
        _ => None,
    };
    drop(early);
    obs.expect_full(&format!("the {kind} namespace of {entry}"))?;
    let peer = if keep {
        Some(peer)
    } else {
        finish(peer)?;
        None
    };
    let settle = settle_after(ctl.release()?);
    obs.expect_stays_full(&format!("the {kind} namespace referenced only by {entry} of a process with no child"), settle)?;
    if let (Some(p), Some(h)) = (&mut prober, &handle) {
        check!(p.reopen(h)?.is_some(), "the nsfs handle of the {kind} namespace of {entry} no longer reopens");
    }
    if let Some(peer) = peer {
        finish(peer)?;
    }
    obs.wait_released(&format!("the {kind} namespace after the process exited"))?;
    if let (Some(p), Some(h)) = (&mut prober, &handle) {
        p.wait_gone(h, &format!("the {kind} namespace after the process exited"), release_deadline())?;
    }
    Ok(())
}
