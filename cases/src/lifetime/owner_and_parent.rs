//! F3, F4: a user namespace is kept alive while it owns a namespace, a pid
//! or user namespace while it has a child namespace (NS_GET_USERNS and
//! NS_GET_PARENT reach them).

use harness::observe::{Control, LimitObserver};
use harness::{check_eq, CaseError, CaseResult, Kind, NsFd, NsFlags, NsId, Proc, Setup};

use super::{alive_window, finish, subject, subject_with};

/// `keep` false is the sabotage: the owned namespace's fd is closed before
/// the check.
pub(super) fn owner_kept_alive(kind: Kind, keep: bool) -> CaseResult {
    let ctl = Control::start(Kind::User)?;
    let mut obs = LimitObserver::enter(Kind::User, 1)?;
    let (peer, entry) = subject(kind, Kind::User.flag())?;
    let owner = NsId::of(peer.proc(), Kind::User)?;
    let owned = NsFd::open_entry(peer.proc(), entry)?;
    obs.expect_full("the owning user namespace while its process is in it")?;
    finish(peer)?;
    let owned = keep.then_some(owned);
    let settle = alive_window(ctl)?;
    obs.expect_stays_full(&format!("the user namespace owning a {kind} namespace held by an fd"), settle)?;
    if let Some(owned) = &owned {
        check_eq!(owned.user_ns()?.id(), owner, "NS_GET_USERNS of the held {kind} namespace");
    }
    drop(owned);
    obs.wait_released(&format!("the user namespace after its {kind} namespace was released"))?;
    Ok(())
}

/// `keep` false is the sabotage: the child namespace's fd is closed before
/// the check.
pub(super) fn child_keeps_parent(kind: Kind, keep: bool) -> CaseResult {
    let ctl = Control::start(kind)?;
    let mut obs = LimitObserver::enter(kind, 2)?;
    let (peer, _) = subject_with(kind, NsFlags::EMPTY, move |ch| {
        // The child namespace, made by a process inside the parent one.
        let inner = subject(kind, NsFlags::EMPTY)?;
        ch.ready()?;
        ch.wait()?;
        drop(inner);
        Ok(())
    })?;
    let parent_id = NsId::of(peer.proc(), kind)?;
    // The inner peer's pid as this process sees it.
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", peer.pid())).setup("reading the peer's children")?;
    let inner: i32 =
        children.split_whitespace().next().and_then(|p| p.parse().ok()).ok_or_else(|| CaseError::broken("the peer has no child"))?;
    let child_ns = NsFd::open(Proc::Pid(inner), kind)?;
    harness::check_ne!(child_ns.id(), parent_id, "the child {kind} namespace");
    obs.expect_full("the parent and the child namespace while processes are in them")?;
    finish(peer)?;
    let child_ns = keep.then_some(child_ns);
    let settle = alive_window(ctl)?;
    obs.expect_stays_full(&format!("the parent {kind} namespace whose child namespace is held by an fd"), settle)?;
    if let Some(child_ns) = &child_ns {
        check_eq!(child_ns.parent()?.id(), parent_id, "NS_GET_PARENT of the held child {kind} namespace");
    }
    drop(child_ns);
    obs.wait_released("the child namespace after its fd was closed")?;
    obs.wait_released("the parent namespace after its child was released")?;
    Ok(())
}
