//! The measuring helper: a single-threaded process started before criterion
//! (the bench executable run again, [`serve_if_asked`]), which runs and times
//! each operation when asked over a pipe.
//!
//! Criterion's process grows threads and memory as it runs: unshare(2) of a
//! user namespace then fails with EINVAL, and fork costs drift with the
//! parent's size. The helper stays small and single-threaded; criterion only
//! sends it `(operation, iterations)` from `iter_custom` and gets back the
//! time it measured with CLOCK_MONOTONIC. Every process the helper starts is
//! a harness peer (PR_SET_PDEATHSIG, reaped), so a run leaves nothing behind.
//!
//! Two jobs, one module each: `protocol` is the conversation (the
//! requests and answers, starting the helper as a harness peer, its serving
//! loop, the fresh children a request runs in); `measure` is the timed
//! loops themselves and the backlog observations, which run inside the
//! helper.

mod measure;
mod protocol;

pub use measure::{Burst, Drained, Measured};
pub use protocol::{serve_if_asked, Helper, HelperError, Options};
