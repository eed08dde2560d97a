//! F1: without other references, a namespace is released when its last
//! process exits or leaves it with setns(2); and the sabotage that keeps an
//! fd yet expects the release.

use std::time::Duration;

use harness::observe::{release_deadline, HandleProber, LimitObserver, NsHandle};
use harness::{check, note, CaseResult, Kind, NsEntry, NsFd, NsFlags, Proc};

use super::{finish, subject, subject_with};

/// How a subject namespace's last process is got rid of.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Leave {
    Exit,
    Setns,
}

pub(super) fn released_when_left(kind: Kind, leave: Leave) -> CaseResult {
    // Leaving with setns needs a namespace to go back to that we may join:
    // one of our own, made in the observer's user namespace (it counts).
    let own = u64::from(leave == Leave::Setns);
    let mut prober = HandleProber::start()?;
    let mut obs = LimitObserver::enter(kind, 1 + own)?;
    let (mut peer, entry) = match leave {
        Leave::Exit => subject(kind, NsFlags::EMPTY)?,
        Leave::Setns => {
            harness::ns::unshare(kind)?;
            let back = NsFd::open_entry(Proc::Myself, NsEntry::children_or_own(kind))?;
            subject_with(kind, NsFlags::EMPTY, move |ch| {
                ch.ready()?;
                ch.wait()?;
                back.setns(kind)?;
                ch.ready()?;
                ch.wait()
            })?
        }
    };
    // The second observer: a handle taken through a short-lived fd.
    let handle = prober.as_ref().map(|_| NsHandle::of(NsFd::open_entry(peer.proc(), entry)?)).transpose()?;
    obs.expect_full("the subject namespace while its process is in it")?;
    if let (Some(p), Some(h)) = (&mut prober, &handle) {
        check!(p.reopen(h)?.is_some(), "the subject's nsfs handle does not reopen while its process is in it");
    }
    let latency = match leave {
        Leave::Exit => {
            finish(peer)?;
            obs.wait_released("the subject namespace after its last process exited")?
        }
        Leave::Setns => {
            peer.go()?;
            peer.wait_ready()?;
            let t = obs.wait_released("the subject namespace after its last process left with setns")?;
            finish(peer)?;
            t
        }
    };
    if let (Some(p), Some(h)) = (&mut prober, &handle) {
        p.wait_gone(h, "the subject namespace, released as the limit observer saw", release_deadline())?;
    }
    note(format!("release_latency_ms.{kind}"), format!("{:.3}", latency.as_secs_f64() * 1000.0));
    Ok(())
}

/// Sabotage of F1 and F8: an fd is kept, yet the namespace is expected
/// released.
pub(super) fn released_despite_fd(kind: Kind) -> CaseResult {
    let obs = LimitObserver::enter(kind, 1)?;
    let mut obs = obs.with_deadline(Duration::from_millis(300));
    let (peer, entry) = subject(kind, NsFlags::EMPTY)?;
    let fd = NsFd::open_entry(peer.proc(), entry)?;
    finish(peer)?;
    obs.wait_released("the subject namespace (an fd is deliberately kept)")?;
    drop(fd);
    Ok(())
}
