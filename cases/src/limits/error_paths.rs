//! L6 and L7 on the error paths: creates refused with EPERM, or with ENOSPC
//! at an ancestor's limit, must not leave a count behind.

use std::sync::atomic::Ordering;

use harness::peer::{call, Spawn};
use harness::probe::Cap;
use harness::{expect_errno, CaseResult, Errno, Kind, Setup};

use super::{
    clone3_refuses_time, clone3_time_verdict, expect_full, fill, hold, own_userns, set_limit, ways, Create, CLONE3_TIME_REFUSED, HELD,
};

/// Failed creates tried on each error path before the count is checked.
const ATTEMPTS: usize = 8;

/// Creates refused with EPERM: without CAP_SYS_ADMIN, or (for user
/// namespaces, refused after the count is taken) by a uid with no mapping.
fn refused_with_eperm(kind: Kind) -> CaseResult {
    let spawn = if kind == Kind::User { Spawn::unshare(Kind::User.flag()) } else { Spawn::fork() };
    let refused_newtime = call(&spawn, || {
        if kind != Kind::User {
            harness::caps::drop_capability(Cap::SYS_ADMIN).setup("dropping CAP_SYS_ADMIN")?;
        }
        let why = if kind == Kind::User { "by a uid without a mapping" } else { "without CAP_SYS_ADMIN" };
        for _ in 0..ATTEMPTS {
            for way in ways(kind) {
                match hold(kind, way)? {
                    Err(e) if clone3_refuses_time(kind, way, e) => {}
                    other => expect_errno!(other, Errno::EPERM, "{way} of a {kind} namespace {why}"),
                }
            }
        }
        Ok(CLONE3_TIME_REFUSED.load(Ordering::Relaxed))
    })?;
    if refused_newtime {
        CLONE3_TIME_REFUSED.store(true, Ordering::Relaxed);
    }
    Ok(())
}

/// `leak` is the sabotage: one namespace is kept, as a count the kernel
/// failed to return would be.
pub(super) fn no_leak_on_error(kind: Kind, leak: bool) -> CaseResult {
    // Level 0 limits; level 1, where the creates happen, starts at INT_MAX
    // (for user namespaces level 1 itself counts at level 0).
    own_userns()?;
    set_limit(kind, HELD + u64::from(kind == Kind::User))?;
    own_userns()?;
    refused_with_eperm(kind)?;
    let held = fill(kind, Create::Unshare, HELD, "after the EPERM refusals")?;
    for _ in 0..ATTEMPTS {
        for way in ways(kind) {
            expect_full(kind, way, "at the parent's limit")?;
        }
    }
    // Everything released, our own limit lowered to the parent's: a count
    // left behind by any refusal, here or in the parent, leaves less room.
    set_limit(kind, HELD)?;
    let mut held = held;
    let _leaked = if leak { held.pop() } else { None };
    drop(held);
    let _held = fill(kind, Create::Unshare, HELD, "after the refusals and the release of every namespace")?;
    expect_full(kind, Create::Unshare, "after refilling to the limit")?;
    clone3_time_verdict()
}
