//! The nesting depth of user namespaces (user_namespaces(7)): 33 levels
//! below the initial one, then ENOSPC (L6's errno; EUSERS before 4.9),
//! which is not the max_user_namespaces limit.

use harness::limits;
use harness::peer::Spawn;
use harness::probe::KernelVersion;
use harness::userns;
use harness::{check, check_eq, expect_errno, CaseResult, Errno, Kind, Setup};

use super::INT_MAX;

pub(super) fn not_in_initial_userns() -> Option<String> {
    (!harness::probe::in_initial_user_ns())
        .then(|| "the suite runs inside a user namespace: nesting depth is counted from the initial one".into())
}

/// Nests user namespaces from the initial one until the kernel refuses;
/// `expected` is the number of levels that must succeed.
pub(super) fn user_nesting_depth(expected: u32) -> CaseResult {
    let refusal = if KernelVersion::running() < KernelVersion::new(4, 9) { Errno::EUSERS } else { Errno::ENOSPC };
    let mut depth = 0;
    let errno = loop {
        let (uid, gid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
        match harness::ns::unshare(Kind::User).map_err(|e| e.errno) {
            Ok(()) => {
                depth += 1;
                userns::map_self_as_root(uid, gid).setup("mapping uid 0 at a new nesting level")?;
                check!(depth <= 2 * expected, "user namespaces nest deeper than {}: no refusal", 2 * expected);
            }
            Err(e) => break e,
        }
    };
    check_eq!(errno, refusal, "errno of unshare(CLONE_NEWUSER) at nesting depth {depth}");
    check_eq!(depth, expected, "user namespace levels created below the initial one");
    check_eq!(limits::read(Kind::User)?, INT_MAX, "max_user_namespaces at the deepest level (the refusal is not that limit)");
    expect_errno!(Spawn::clone(Kind::User.flag()).spawn(|_| Ok(())), refusal, "clone(CLONE_NEWUSER) at nesting depth {depth}");
    Ok(())
}
