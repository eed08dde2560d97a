//! A clock_nanosleep(2) bounded by an interval timer, and timerfds:
//! waiting on a clock as the caller's time namespace shows it.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::case::CaseError;
use crate::error::{Op, OpContext, SysError};

use super::read::{to_nanos, to_timespec, zero_timespec, Clock, Nanos};

/// How a bounded absolute sleep ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sleep {
    /// clock_nanosleep(2) returned 0: the clock reached the target.
    Completed,
    /// The bound passed first (EINTR from the bounding SIGALRM).
    Interrupted,
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// clock_nanosleep(2) with TIMER_ABSTIME until `clock` reads `target`
/// (as the caller's time namespace shows it), bounded by `bound` of real
/// time: a relative ITIMER_REAL (not subject to the namespace's offsets)
/// interrupts the sleep with SIGALRM, so a kernel that misplaces the target
/// fails a case instead of hanging it.
///
/// What that needs is checked, each a broken setup (`Err`) when unmet, so
/// no caller can get a sleep that the bound does not end:
/// - one thread in the process ([`crate::pidns::single_threaded`]): SIGALRM
///   is process-directed and could be taken by another thread, and the
///   SIGALRM disposition is process-wide;
/// - no ITIMER_REAL already armed (it would be overwritten);
/// - SIGALRM is unblocked for the sleep (and the mask put back after).
///
/// SIGALRM's disposition and the timer are restored before returning. A
/// kernel error of clock_nanosleep itself is `Err` as an unexpected errno
/// (a failure).
pub fn nanosleep_until(clock: Clock, target: Nanos, bound: Duration) -> Result<Sleep, CaseError> {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal};
    crate::pidns::single_threaded("nanosleep_until (a SIGALRM bound)")?;
    let idle = libc::itimerval { it_interval: libc::timeval { tv_sec: 0, tv_usec: 0 }, it_value: libc::timeval { tv_sec: 0, tv_usec: 0 } };
    let mut current = idle;
    // SAFETY: `current` is a valid, writable itimerval for the call.
    Errno::result(unsafe { libc::getitimer(libc::ITIMER_REAL, &mut current) }).op(Op::Plumbing("getitimer(ITIMER_REAL)"))?;
    if current.it_value.tv_sec != 0 || current.it_value.tv_usec != 0 {
        return Err(CaseError::broken("nanosleep_until: an ITIMER_REAL is already armed in the caller"));
    }
    let mut alarm = SigSet::empty();
    alarm.add(Signal::SIGALRM);
    let mut old_mask = SigSet::empty();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&alarm), Some(&mut old_mask))
        .op(Op::Plumbing("sigprocmask(SIG_UNBLOCK, SIGALRM)"))?;
    let slept = sleep_bounded(clock, target, bound);
    let restored = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old_mask), None);
    let slept = slept?;
    restored.op(Op::Plumbing("sigprocmask(SIG_SETMASK)"))?;
    Ok(slept)
}

/// [`nanosleep_until`] once its preconditions hold: installs the SIGALRM
/// handler, arms the bound, sleeps, then disarms and puts the old handler
/// back.
fn sleep_bounded(clock: Clock, target: Nanos, bound: Duration) -> Result<Sleep, CaseError> {
    // SAFETY: sigaction structures are plain data; zeroed is valid.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = ignore_signal as extern "C" fn(libc::c_int) as usize;
    // No SA_RESTART: the sleep ends with EINTR.
    action.sa_flags = 0;
    // SAFETY: as above.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: `action.sa_mask` is a valid sigset_t to empty.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: both structures are valid for the call; the handler does
    // nothing and is async-signal-safe.
    Errno::result(unsafe { libc::sigaction(libc::SIGALRM, &action, &mut old) }).op(Op::Plumbing("sigaction(SIGALRM)"))?;
    let timer = libc::itimerval {
        it_interval: libc::timeval { tv_sec: 0, tv_usec: 0 },
        it_value: libc::timeval { tv_sec: bound.as_secs() as _, tv_usec: bound.subsec_micros().max(1) as _ },
    };
    // SAFETY: `timer` is valid; the old value is not asked for (none was
    // armed, nanosleep_until checked).
    let armed = Errno::result(unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) });
    let slept = match armed {
        Err(e) => Err(SysError::new(Op::Plumbing("setitimer(ITIMER_REAL)"), e).into()),
        Ok(_) => {
            let ts = to_timespec(target);
            // SAFETY: `ts` is a valid timespec; no remainder is asked for
            // (TIMER_ABSTIME does not use it).
            match unsafe { libc::clock_nanosleep(clock.id(), libc::TIMER_ABSTIME, &ts, std::ptr::null_mut()) } {
                0 => Ok(Sleep::Completed),
                libc::EINTR => Ok(Sleep::Interrupted),
                e => Err(CaseError::from(Errno::from_raw(e)).context(format!("clock_nanosleep({}, TIMER_ABSTIME)", clock.name()))),
            }
        }
    };
    let disarm =
        libc::itimerval { it_interval: libc::timeval { tv_sec: 0, tv_usec: 0 }, it_value: libc::timeval { tv_sec: 0, tv_usec: 0 } };
    // SAFETY: `disarm` is valid; a zero it_value stops the timer.
    unsafe { libc::setitimer(libc::ITIMER_REAL, &disarm, std::ptr::null_mut()) };
    // SAFETY: `old` holds the disposition sigaction returned above.
    unsafe { libc::sigaction(libc::SIGALRM, &old, std::ptr::null_mut()) };
    slept
}

/// A timerfd (timerfd_create(2)) on one clock.
#[derive(Debug)]
pub struct TimerFd {
    fd: OwnedFd,
}

impl TimerFd {
    /// timerfd_create(clock, TFD_CLOEXEC).
    pub fn create(clock: Clock) -> Result<TimerFd, Errno> {
        // SAFETY: integer arguments only.
        let fd = Errno::result(unsafe { libc::timerfd_create(clock.id(), libc::TFD_CLOEXEC) })?;
        // SAFETY: timerfd_create returned a new fd that nothing else owns.
        Ok(TimerFd { fd: unsafe { crate::sys::own_fd(fd) } })
    }

    /// timerfd_settime(TFD_TIMER_ABSTIME): one expiration when the clock
    /// reads `target` (as the caller's time namespace shows it).
    pub fn set_absolute(&self, target: Nanos) -> Result<(), Errno> {
        let spec = libc::itimerspec { it_interval: zero_timespec(), it_value: to_timespec(target) };
        // SAFETY: `spec` is valid for the call; the old value is not asked for.
        Errno::result(unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), libc::TFD_TIMER_ABSTIME, &spec, std::ptr::null_mut()) }).map(drop)
    }

    /// timerfd_gettime(2): the time left until the next expiration
    /// (`it_value`, relative whatever the setting's flags).
    pub fn remaining(&self) -> Result<Nanos, Errno> {
        let mut spec = libc::itimerspec { it_interval: zero_timespec(), it_value: zero_timespec() };
        // SAFETY: `spec` is valid and writable for the call.
        Errno::result(unsafe { libc::timerfd_gettime(self.fd.as_raw_fd(), &mut spec) })?;
        Ok(to_nanos(&spec.it_value))
    }

    /// Waits up to `timeout` for the timer to expire (poll(2) for POLLIN),
    /// then reads its expiration count; `None` when it did not expire in
    /// time.
    pub fn wait(&self, timeout: Duration) -> Result<Option<u64>, Errno> {
        let mut pfd = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        let ready = loop {
            // SAFETY: one valid pollfd for the call.
            match Errno::result(unsafe { libc::poll(&mut pfd, 1, ms) }) {
                Err(Errno::EINTR) => continue,
                other => break other?,
            }
        };
        if ready == 0 {
            return Ok(None);
        }
        let mut count = [0u8; 8];
        let mut file = File::from(self.fd.try_clone().map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?);
        let n = file.read(&mut count).map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
        if n != 8 {
            return Err(Errno::EIO);
        }
        Ok(Some(u64::from_ne_bytes(count)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_sleep_refuses_a_multi_threaded_caller() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || rx.recv());
        // A target a day ahead: were it not refused, the test would hang.
        let far = super::super::read::gettime_syscall(Clock::Monotonic).unwrap() + 86_400 * super::super::read::NANOS_PER_SEC;
        let refused = nanosleep_until(Clock::Monotonic, far, Duration::from_secs(3600)).expect_err("two threads run");
        assert_eq!(refused.outcome, crate::case::Outcome::Broken);
        assert!(refused.message.contains("single-threaded caller"), "{}", refused.message);
        tx.send(()).unwrap();
        other.join().unwrap().unwrap();
    }
}
