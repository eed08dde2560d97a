//! user_namespaces(7) beyond the seed (claims U1-U3): id translation through
//! several levels, the setgroups rule, capabilities across execve and setns.

use harness::Case;

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    Vec::new()
}

/// The cases of this topic run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    Vec::new()
}
