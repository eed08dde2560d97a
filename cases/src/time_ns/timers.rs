//! M1 for absolute timers: clock_nanosleep(2) with TIMER_ABSTIME and a
//! timerfd set with TFD_TIMER_ABSTIME, in a new time namespace with
//! offsets, fire after the interval on the namespace's clock (its target
//! translated once, nanosecond part included): not at once, not late, not
//! never.

use std::time::Duration;

use harness::clock::{self, getres, gettime_syscall, Clock, Nanos, Sleep, TimerFd};
use harness::{check, check_eq, CaseError, CaseResult, Kind, Privilege, Requires};
use serde::{Deserialize, Serialize};

use super::{alarm_clock_absent, bracketed, config_lacks, requires_clock, secs, OFFSETS};

/// The smaller nanosecond part of [`OFFSETS`].
const MIN_NANOS_PART: Nanos =
    if OFFSETS.monotonic.nanos < OFFSETS.boottime.nanos { OFFSETS.monotonic.nanos } else { OFFSETS.boottime.nanos };

/// How long after the namespace's "now" the absolute timers are set.
pub(super) const INTERVAL: Nanos = 20_000_000;

/// An absolute timer that fires later than this after it was set is late:
/// 200 ms scaled for slow VMs (800 ms under TCG's x4), but never more than
/// [`MIN_NANOS_PART`] less 50 ms (850 ms), so that a kernel that drops an
/// offset's nanosecond part when it translates the target (the timer then
/// fires 0.9 s or 0.95 s after the interval) is late under any scale.
fn late() -> Duration {
    let cap = Duration::from_nanos((MIN_NANOS_PART - 50_000_000) as u64);
    harness::isolate::scaled(Duration::from_millis(200)).min(cap)
}

/// How long a timer is waited for before the case fails: a kernel that
/// does not translate the target would otherwise sleep for days.
pub(super) fn bound() -> Duration {
    harness::isolate::scaled(Duration::from_millis(400))
}

/// Absolute timers: timerfd needs CONFIG_TIMERFD; an alarm timer needs
/// CAP_WAKE_ALARM in the initial user namespace (capable(), kernel/time/
/// alarmtimer.c, fs/timerfd.c) and the RTC.
pub(super) fn requires_timer(clock: Clock, timerfd: bool) -> Requires {
    let base = if clock == Clock::BoottimeAlarm {
        Requires::kinds(&[Kind::Time]).privilege(Privilege::Root).probe(if timerfd { alarm_or_timerfd_absent } else { alarm_clock_absent })
    } else {
        requires_clock(clock)
    };
    if timerfd && clock != Clock::BoottimeAlarm {
        base.probe(timerfd_absent)
    } else {
        base
    }
}

fn timerfd_absent() -> Option<String> {
    config_lacks("CONFIG_TIMERFD").then(|| "CONFIG_TIMERFD is not set: no timerfd_create(2)".to_string())
}

fn alarm_or_timerfd_absent() -> Option<String> {
    alarm_clock_absent().or_else(timerfd_absent)
}

/// An absolute timer interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// clock_nanosleep(2) with TIMER_ABSTIME.
    ClockNanosleep,
    /// timerfd_settime(2) with TFD_TIMER_ABSTIME.
    Timerfd,
}

pub(super) const TIMERS: [Timer; 2] = [Timer::ClockNanosleep, Timer::Timerfd];

/// The clocks absolute timers are checked on: the two offset ones, the
/// alarm clock, and CLOCK_REALTIME whose targets must not be translated.
pub(super) const TIMER_CLOCKS: [Clock; 4] = [Clock::Monotonic, Clock::Boottime, Clock::BoottimeAlarm, Clock::Realtime];

impl Timer {
    pub(super) fn slug(self) -> &'static str {
        match self {
            Timer::ClockNanosleep => "clock_nanosleep",
            Timer::Timerfd => "timerfd",
        }
    }

    pub(super) fn doc(self, clock: Clock) -> String {
        let what = match self {
            Timer::ClockNanosleep => "clock_nanosleep(TIMER_ABSTIME)",
            Timer::Timerfd => "a timerfd set with TFD_TIMER_ABSTIME",
        };
        format!(
            "in a new time namespace with offsets, {what} on {} to 20 ms after the namespace's now fires after 20 ms: not at once, not late, not never",
            clock.name()
        )
    }
}

/// What a child in the namespace saw of its timer, in the namespace's
/// view of the clock.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct TimerRun {
    start: Nanos,
    target: Nanos,
    fired: bool,
    end: Nanos,
    /// timerfd_gettime(2) right after the setting, with the clock read
    /// just before and just after it.
    remaining: Option<(Nanos, Nanos, Nanos)>,
    expirations: Option<u64>,
}

fn run_timer(timer: Timer, clock: Clock, shift: Nanos) -> Result<TimerRun, CaseError> {
    let now = move || gettime_syscall(clock.reads_as());
    let start = now()?;
    let target = start + INTERVAL + shift;
    let (fired, remaining, expirations) = match timer {
        Timer::ClockNanosleep => (clock::nanosleep_until(clock, target, bound())? == Sleep::Completed, None, None),
        Timer::Timerfd => {
            let fd = TimerFd::create(clock)?;
            fd.set_absolute(target)?;
            let before = now()?;
            let remaining = (before, fd.remaining()?, now()?);
            let expirations = fd.wait(bound())?;
            (expirations.is_some(), Some(remaining), expirations)
        }
    };
    Ok(TimerRun { start, target, fired, end: now()?, remaining, expirations })
}

/// M1: an absolute timer set by a child of the new namespace to
/// [`INTERVAL`] after the namespace's now (moved by `shift` in sabotage)
/// fires after the interval: not never (bounded), not at once, not late.
pub(super) fn absolute_timer(timer: Timer, clock: Clock, shift: Nanos) -> CaseResult {
    let ((), run, ()) = bracketed(OFFSETS, || Ok(()), move || run_timer(timer, clock, shift))?;
    let what = match timer {
        Timer::ClockNanosleep => format!("clock_nanosleep({}, TIMER_ABSTIME)", clock.name()),
        Timer::Timerfd => format!("a timerfd on {} set with TFD_TIMER_ABSTIME", clock.name()),
    };
    let ms = |t: Nanos| t as f64 / 1e6;
    check!(run.fired, "{what} to {} ms after the namespace's now did not fire within {:?}", ms(INTERVAL), bound());
    let elapsed = run.end - run.start;
    check!(
        elapsed >= INTERVAL && run.end >= run.target,
        "{what} fired {:.3} ms after it was set, before the interval of {} ms (target {} s, now {} s in the namespace)",
        ms(elapsed),
        ms(INTERVAL),
        secs(run.target),
        secs(run.end)
    );
    check!(elapsed < late().as_nanos() as Nanos, "{what} fired {:.3} ms after it was set: later than {:?}", ms(elapsed), late());
    if let Some((before, remaining, after)) = run.remaining {
        // What is left is the target less the clock at the call, never
        // negative (0 once expired: a slow VM may get there); the timer's
        // resolution is allowed above (a tick without high-resolution
        // timers).
        let (lo, hi) = ((run.target - after).max(0), (run.target - before).max(0) + getres(clock.reads_as())?);
        check!(
            (lo..=hi).contains(&remaining),
            "timerfd_gettime right after the absolute setting gives {:.3} ms left: expected between {:.3} and {:.3} ms",
            ms(remaining),
            ms(lo),
            ms(hi)
        );
        check_eq!(run.expirations, Some(1), "expirations read from the timerfd");
    }
    Ok(())
}
