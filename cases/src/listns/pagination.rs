//! X5, resumable listings: listns(2) a page of one or two ids a call, each
//! call resuming after the last id of the previous one, gives increasing
//! ids of the type asked for, the new namespaces among them; a resumed call
//! that ends the listing with ENOENT is the known deviation
//! [`LISTNS_RESUME_STOPS_AT_INACTIVE`].

use harness::known::LISTNS_RESUME_STOPS_AT_INACTIVE;
use harness::listns::{self as ln, ListnsError, NsIdReq, Owner};
use harness::peer::Spawn;
use harness::{check, CaseError, CaseResult, Errno, Kind, NsEntry, NsFd};

use super::{all_of_type, PAGE};

/// How a paginated listing resumes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Resume {
    /// After the last id of the previous call (the claim).
    Last,
    /// Sabotage: after the cursor of the previous call again (the first
    /// resumed call repeats the first call, whatever the page size).
    Same,
}

/// Every id `req` selects, `page` ids a call, each call resuming after the
/// last id of the previous one (sabotaged: after its cursor again); fails unless each
/// call gives increasing ids after its cursor. A resumed call may end the
/// listing with ENOENT: also returns the cursor after which one did, for
/// [`resumed_past`] to judge (only [`pagination`] uses this).
fn listed_in_pages(req: NsIdReq, page: usize, resume: Resume, what: &str) -> Result<(Vec<u64>, Option<u64>), CaseError> {
    let mut all: Vec<u64> = Vec::new();
    let mut after = req.ns_id;
    for _ in 0..100_000 {
        let ids = match ln::listns(&req.after(after), page) {
            Ok(ids) => ids,
            Err(ListnsError::Errno(Errno::ENOENT)) if after != 0 => return Ok((all, Some(after))),
            Err(e) => return Err(CaseError::fail(format!("{what}: after id {after}: {e}"))),
        };
        for id in &ids {
            check!(*id != 0, "{what}: listns gave id 0");
            if let Some(prev) = all.last() {
                check!(id > prev, "{what}: ids not strictly increasing across calls: {id} after {prev} (cursor {after})");
            }
            check!(*id > after, "{what}: id {id} not after the cursor {after}");
            all.push(*id);
        }
        if ids.len() < page || ids.is_empty() {
            return Ok((all, None));
        }
        after = match resume {
            Resume::Last => *ids.last().expect("non-empty"),
            Resume::Same => after,
        };
    }
    Ok((all, None))
}

/// Fails unless `found`; a namespace missing because a resumed call ended
/// the listing with ENOENT is the known deviation
/// [`LISTNS_RESUME_STOPS_AT_INACTIVE`], any other miss a plain failure.
fn resumed_past(found: bool, enoent_after: Option<u64>, missing: String) -> CaseResult {
    match (found, enoent_after) {
        (true, _) => Ok(()),
        (false, Some(_)) => Err(CaseError::deviation(&LISTNS_RESUME_STOPS_AT_INACTIVE, format!("{missing}{}", ending(enoent_after)))),
        (false, None) => Err(CaseError::fail(missing)),
    }
}

/// How a listing ended, for messages.
fn ending(enoent_after: Option<u64>) -> String {
    match enoent_after {
        Some(id) => format!(" (the listing ended with ENOENT on the call resuming after id {id})"),
        None => String::new(),
    }
}

pub(super) fn pagination(kind: Kind, resume: Resume) -> CaseResult {
    let mut peers = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let peer = Spawn::new_ns(kind).spawn_idle()?;
        ids.push(NsFd::open_entry(peer.proc(), NsEntry::of_new_ns(kind))?.ns_id()?);
        peers.push(peer);
    }
    for page in [1, 2] {
        let what = format!("listing {kind} namespaces {page} a call");
        let (got, end) = listed_in_pages(NsIdReq::new(kind.flag().bits(), Owner::Any), page, resume, &what)?;
        for id in &ids {
            resumed_past(got.contains(id), end, format!("{what}: new {kind} namespace {id} missing from {got:?}"))?;
        }
        all_of_type(&got, kind, &what)?;
        let what = format!("listing every namespace {page} a call");
        let (every, end) = listed_in_pages(NsIdReq::new(0, Owner::Any), page, resume, &what)?;
        for id in &ids {
            resumed_past(every.contains(id), end, format!("{what}: new {kind} namespace {id} missing"))?;
        }
    }
    // Resuming after the first new id skips it and keeps the later ones.
    let (after_first, end) =
        listed_in_pages(NsIdReq::new(kind.flag().bits(), Owner::Any).after(ids[0]), PAGE, Resume::Last, "listing after the first new id")?;
    resumed_past(
        after_first.contains(&ids[1]) && after_first.contains(&ids[2]),
        end,
        format!("listing {kind} namespaces after new id {}: {} and {} missing from {after_first:?}", ids[0], ids[1], ids[2]),
    )?;
    check!(
        !after_first.contains(&ids[0]) && after_first.contains(&ids[1]) && after_first.contains(&ids[2]),
        "listing {kind} namespaces after new id {}: expected {} and {} but not it, got {after_first:?}",
        ids[0],
        ids[1],
        ids[2]
    );
    for mut p in peers {
        p.go()?;
        p.join()?;
    }
    Ok(())
}
