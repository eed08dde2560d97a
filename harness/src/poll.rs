//! Polling with a deadline: for kernel steps that finish asynchronously
//! (a namespace freed after an RCU grace period or by a work item, a
//! process stopping), observed without sleeping for synchronisation.

use std::time::{Duration, Instant};

/// How long to pause between two tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    first: Duration,
    max: Duration,
}

impl Pause {
    /// The same pause every time.
    pub const fn every(pause: Duration) -> Pause {
        Pause { first: pause, max: pause }
    }

    /// `first`, doubling after each try up to `max` (quick answers are seen
    /// quickly, slow ones without spinning).
    pub const fn doubling(first: Duration, max: Duration) -> Pause {
        Pause { first, max }
    }
}

/// Tries `done` until it holds or `deadline` has passed since the call;
/// the last try is made after the deadline, so a step that finished just
/// in time is seen. `Ok(Some(elapsed))` when it held, `Ok(None)` when the
/// deadline passed; an error of `done` ends the polling at once.
///
/// The deadline is used as given: callers that scale theirs for slow VMs
/// pass [`crate::isolate::scaled`]'s value.
pub fn poll_until<E>(deadline: Duration, pause: Pause, mut done: impl FnMut() -> Result<bool, E>) -> Result<Option<Duration>, E> {
    let start = Instant::now();
    let mut wait = pause.first;
    loop {
        if done()? {
            return Ok(Some(start.elapsed()));
        }
        if start.elapsed() > deadline {
            return Ok(None);
        }
        std::thread::sleep(wait);
        wait = (wait * 2).min(pause.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_until_done_or_deadline() {
        let mut n = 0;
        let got: Result<_, ()> = poll_until(Duration::from_secs(5), Pause::every(Duration::ZERO), || {
            n += 1;
            Ok(n == 3)
        });
        assert!(got.unwrap().is_some());
        assert_eq!(n, 3);
        let never: Result<_, ()> =
            poll_until(Duration::from_millis(2), Pause::doubling(Duration::from_micros(50), Duration::from_millis(1)), || Ok(false));
        assert_eq!(never, Ok(None));
        assert_eq!(poll_until(Duration::from_secs(1), Pause::every(Duration::ZERO), || Err::<bool, _>("boom")), Err("boom"));
    }
}
