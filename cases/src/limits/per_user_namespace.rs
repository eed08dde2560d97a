//! L3: the limits belong to a user namespace: a sibling has its own.

use harness::limits;
use harness::peer::{call, Spawn};
use harness::{check_eq, expect_errno, CaseResult, Errno, Kind};

use super::{hold, own_userns, set_limit, Create, INT_MAX};

/// `siblings` false is the sabotage: the writer and the reader are plain
/// children, both in the case's own user namespace.
pub(super) fn sibling_unaffected(kind: Kind, siblings: bool) -> CaseResult {
    own_userns()?;
    // Ours differs from a fresh table's INT_MAX and from the first sibling's
    // 0, so a sibling reading either would be seen.
    let ours = 1000;
    set_limit(kind, ours)?;
    let sibling = || if siblings { Spawn::unshare(Kind::User.flag()).map_root() } else { Spawn::fork() };
    let mut first = sibling().spawn(|ch| {
        set_limit(kind, 0)?;
        expect_errno!(hold(kind, Create::Unshare)?, Errno::ENOSPC, "unshare of a {kind} namespace where the limit is 0");
        ch.ready()?;
        ch.wait()
    })?;
    first.wait_ready()?;
    let (seen, created): (u64, Option<i32>) = call(&sibling(), || {
        let created = hold(kind, Create::Unshare)?.err().map(|e| e as i32);
        Ok((limits::read(kind)?, created))
    })?;
    check_eq!(seen, INT_MAX, "{} of a sibling user namespace while the first has 0", limits::path(kind));
    check_eq!(created.map(Errno::from_raw), None, "unshare of a {kind} namespace in the sibling");
    check_eq!(limits::read(kind)?, ours, "{} of the parent user namespace", limits::path(kind));
    first.go()?;
    first.join()
}
