//! Namespace ids (claims X1, X7): NS_GET_ID (6.18) against SO_NETNS_COOKIE and
//! NS_GET_MNTNS_ID (6.11), and mount namespace ids through statmount(2),
//! listmount(2) and NS_MNT_GET_INFO/NEXT/PREV (6.12).

use harness::Case;

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    Vec::new()
}

/// The cases of this topic run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    Vec::new()
}
