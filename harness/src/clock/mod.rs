//! Clocks, timers and uptime as a time namespace shows them, and the
//! `/proc/[pid]/timens_offsets` file (time_namespaces(7)).
//!
//! Each clock is read two ways: through the C library's clock_gettime(3),
//! which the vDSO answers where it can (vdso(7)), and through the raw
//! clock_gettime(2) system call, because a time namespace's offsets reach
//! the two by different kernel paths (the namespace's vvar page and
//! `timens_add_*()` in the syscall). Times are signed nanoseconds (an `i64`
//! holds 292 years, twice the 146 years time_namespaces(7) allows a clock).

//!
//! - `read`: the clocks and their readings (clock_gettime, uptime);
//! - `sleep`: a bounded clock_nanosleep(2) and timerfds;
//! - `offsets`: the `timens_offsets` file.

mod offsets;
mod read;
mod sleep;

pub use offsets::*;
pub use read::*;
pub use sleep::*;
