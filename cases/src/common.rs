//! Helpers shared by the case files: ways to be in a new namespace.

use harness::peer::{call, Spawn};
use harness::{CaseError, CaseResult, Kind, Outcome};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Runs `f` in a process that is itself in a new namespace of `kind` (and
/// of the kinds in `extra`), and returns its value. For kinds that clone(2)
/// can create, that process is cloned with the flag; for time, whose flag
/// clone(2) cannot take, a child unshares CLONE_NEWTIME and `f` runs in its
/// next child (time_namespaces(7)), which needs no clone3.
pub fn in_new_ns<T, F>(kind: Kind, extra: u64, f: F) -> Result<T, CaseError>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T, CaseError>,
{
    if kind.info().legacy_clone {
        call(&Spawn::clone(kind.flag() | extra), f)
    } else {
        call(&Spawn::unshare(kind.flag() | extra), || call(&Spawn::fork(), f))
    }
}

/// The verdict of a sabotaged case body (a wrong expectation or a broken
/// step): it must fail, as the real case would on a kernel that breaks the
/// claim. A pass means the case cannot fail; broken means the sabotage did
/// not reach the check.
pub fn must_fail(result: CaseResult) -> CaseResult {
    match result {
        Err(e) if e.outcome == Outcome::Fail => Ok(()),
        Ok(()) => Err(CaseError::fail("the sabotaged body passed: this case cannot fail")),
        Err(e) => Err(CaseError::fail(format!("the sabotaged body ended {} instead of fail: {e}", e.outcome))),
    }
}
