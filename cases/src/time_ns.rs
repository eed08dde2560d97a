//! time_namespaces(7) beyond the seed (claims M1, M2): offsets on every clock,
//! timers and /proc/uptime, and the rules for writing timens_offsets.

use harness::Case;

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    Vec::new()
}

/// The cases of this topic run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    Vec::new()
}
