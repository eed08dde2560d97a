//! nsfs file handles (claim X2, 6.18): name_to_handle_at(2) on a namespace fd
//! and open_by_handle_at(2) with FD_NSFS_ROOT.

use harness::Case;

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    Vec::new()
}

/// The cases of this topic run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    Vec::new()
}
