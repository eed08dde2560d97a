//! Clocks as a time namespace sees them: the vDSO and the raw syscall, timers.
