//! Capability sets as a process sees them, and the exec probe: the case binary
//! re-executed to report its capabilities after execve(2).
