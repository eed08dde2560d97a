//! L5: the limits hold uid 0 with every capability too.

use harness::observe::LimitObserver;
use harness::probe::{cap_set, Cap};
use harness::{check, check_eq, CaseResult, Kind};

use super::{own_userns, HELD};

/// `slack` is the sabotage: the limit is set that much above what uid 0
/// holds, as a kernel exempting uid 0 would behave.
pub(super) fn uid_0_included(kind: Kind, slack: u64) -> CaseResult {
    own_userns()?;
    check_eq!(nix::unistd::geteuid().as_raw(), 0, "euid in the case's user namespace");
    let eff = cap_set("self", "CapEff")?;
    for cap in [Cap::SYS_ADMIN, Cap::SYS_RESOURCE] {
        check!(eff & (1 << cap.0) != 0, "uid 0 lacks {} in its own user namespace", cap.name());
    }
    let mut observer = LimitObserver::here(kind, HELD + slack)?;
    for i in 1..=HELD {
        check!(observer.try_hold()?, "uid 0: {kind} namespace {i} of {HELD} refused below the limit");
    }
    observer.expect_full("uid 0 with every capability, at the limit")
}
