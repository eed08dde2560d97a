//! pidfds and namespaces (claims X3, X4): the PIDFD_GET_<kind>_NAMESPACE ioctls
//! (6.11) and setns(pidfd, flags) (5.8).

use harness::Case;

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    Vec::new()
}

/// The cases of this topic run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    Vec::new()
}
