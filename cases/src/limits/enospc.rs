//! L6: at the limit, clone(2), clone3(2) and unshare(2) fail with ENOSPC,
//! and work again once the namespaces are released.

use harness::{CaseResult, Kind};

use super::{clone3_time_verdict, expect_full, fill, own_userns, set_limit, ways};

/// `slack` is the sabotage: the limit is set that much above what is held.
pub(super) fn enospc_at_limit(kind: Kind, slack: u64) -> CaseResult {
    own_userns()?;
    let ways = ways(kind);
    set_limit(kind, ways.len() as u64 + slack)?;
    let mut held = Vec::new();
    for &way in &ways {
        held.extend(fill(kind, way, 1, "below the limit")?);
    }
    for &way in &ways {
        expect_full(kind, way, &format!("at the limit {}", ways.len()))?;
    }
    // All released (net and ipc asynchronously): each call works again up to
    // the limit, then is refused again.
    drop(held);
    let mut held = Vec::new();
    for &way in &ways {
        held.extend(fill(kind, way, 1, "after every namespace was released")?);
    }
    for &way in &ways {
        expect_full(kind, way, "at the limit again")?;
    }
    clone3_time_verdict()
}
