//! L7: namespaces created in a child user namespace count against the
//! limits of every ancestor, so nesting does not escape a limit.

use harness::peer::{call, Spawn};
use harness::{expect_errno, CaseResult, Errno, Kind};

use super::{fill, hold, own_userns, set_limit, Create, HELD, INT_MAX, LEVELS};

/// For each level of a chain of [`LEVELS`] new user namespaces, the limit
/// set there (the others at INT_MAX) holds creates in the deepest one.
/// `slack` is the sabotage: the limit under test is that much higher.
pub(super) fn ancestors_charged(kind: Kind, slack: u64) -> CaseResult {
    for level in 0..LEVELS {
        call(&Spawn::fork(), || limit_at_level(kind, level, slack))?;
    }
    Ok(())
}

fn limit_at_level(kind: Kind, limited: usize, slack: u64) -> CaseResult {
    let mut limit = 0;
    for level in 0..LEVELS {
        own_userns()?;
        // The deeper user namespaces of the chain count at this level too.
        let chain = if kind == Kind::User { (LEVELS - 1 - level) as u64 } else { 0 };
        let value = if level == limited { HELD + chain + slack } else { INT_MAX };
        set_limit(kind, value)?;
        if level == limited {
            limit = value;
        }
    }
    let _held = fill(kind, Create::Unshare, HELD, "in the deepest user namespace")?;
    expect_errno!(
        hold(kind, Create::Unshare)?,
        Errno::ENOSPC,
        "{kind} namespace {} created at level {} with {}={limit} at level {limited} ({} of them the chain's own user namespaces) and INT_MAX elsewhere",
        HELD + 1,
        LEVELS - 1,
        kind.info().max_sysctl,
        limit - HELD - slack
    );
    Ok(())
}
