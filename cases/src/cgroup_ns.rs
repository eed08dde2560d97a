//! cgroup_namespaces(7) beyond the seed (claim U4): the cgroup migration check
//! against the writer's cgroup namespace at open time (CVE-2021-4197).

use harness::Case;

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    Vec::new()
}

/// The cases of this topic run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    Vec::new()
}
