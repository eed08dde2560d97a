//! time_namespaces(7) beyond the seed (claims M1, M2): offsets on every clock,
//! through the vDSO and the raw syscall, absolute timers, /proc/uptime and
//! sysinfo(2), and the rules for writing /proc/[pid]/timens_offsets.
//!
//! Every case creates its time namespace with unshare(CLONE_NEWTIME) (the
//! only way time_namespaces(7) documents; clone3(2) refused the flag on some
//! stable kernels, see the `clone3_newtime_einval` deviation). The process
//! that unshared stays outside: it reads each clock just before and just
//! after a child inside does, so the child's reading minus the offset must
//! lie between the two, to the nanosecond.
//!
//! The parts, by job: `clocks` (M1: every clock through the vDSO and
//! clock_gettime(2)), `uptime` (M1: sysinfo(2), /proc/uptime, /proc/stat
//! btime), `timers` (M1: absolute clock_nanosleep(2) and timerfd) and
//! `offsets` (M2: writing timens_offsets). This module keeps the case
//! lists, the offsets the M1 cases write, the requirements the parts share
//! and `bracketed`, the reading inside between two outside.

use std::time::Duration;

use harness::clock::{self, getres, Clock, Nanos, Offset, Offsets, OffsetsFile, NANOS_PER_SEC};
use harness::kconfig::KernelConfig;
use harness::peer::{call, Spawn};
use harness::{check_eq, check_ne, Case, CaseError, Kind, NsEntry, NsId, Privilege, Proc, Requires, Setup};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::common::must_fail_with;
use clocks::{clock_doc, clock_offset, requires_clock_vdso};
use timers::{absolute_timer, bound, requires_timer, Timer, INTERVAL, TIMERS, TIMER_CLOCKS};
use uptime::{uptime, UPTIME_SOURCES};

mod clocks;
mod offsets;
mod timers;
mod uptime;

const DAY: i64 = 86_400;

/// `/proc/[pid]/ns/time_for_children`: where a process that unshared
/// CLONE_NEWTIME finds its new time namespace (time_namespaces(7)).
const TIME_FOR_CHILDREN: NsEntry = NsEntry { kind: Kind::Time, for_children: true };

/// The offsets the M1 cases write: days apart, with distinct nanosecond
/// parts, so a swap of the two offsets, one applied to the wrong clock, or
/// a lost nanosecond part is seen. Positive: a VM's clocks are a few
/// seconds old, and time_namespaces(7) forbids a negative clock. The
/// nanosecond parts are both at least `timers::MIN_NANOS_PART`, so that a
/// timer whose target lost one fires later than `timers::late()` allows.
const OFFSETS: Offsets =
    Offsets { monotonic: Offset { secs: 3 * DAY, nanos: 900_000_000 }, boottime: Offset { secs: 11 * DAY, nanos: 950_000_000 } };

fn requires() -> Requires {
    Requires::kinds(&[Kind::Time]).privilege(Privilege::Admin)
}

/// What a clock needs beyond a time namespace: CLOCK_BOOTTIME_ALARM an RTC
/// that can wake the system, the clocks beyond the three basic ones
/// CONFIG_POSIX_TIMERS (kernel/time/posix-stubs.c offers only those).
fn requires_clock(clock: Clock) -> Requires {
    match clock {
        Clock::BoottimeAlarm => requires().probe(alarm_clock_absent),
        Clock::Monotonic | Clock::Boottime | Clock::Realtime => requires(),
        _ => requires().probe(posix_timers_absent),
    }
}

fn config_lacks(option: &str) -> bool {
    KernelConfig::running().is_some_and(|c| c.get(option).is_none())
}

fn posix_timers_absent() -> Option<String> {
    config_lacks("CONFIG_POSIX_TIMERS").then(|| {
        "CONFIG_POSIX_TIMERS is not set: clock_gettime(2) offers only CLOCK_REALTIME, CLOCK_MONOTONIC and CLOCK_BOOTTIME".to_string()
    })
}

/// clock_getres(CLOCK_BOOTTIME_ALARM) in the suite's own time namespace:
/// EINVAL where no RTC device can wake the system (alarmtimer_get_rtcdev()),
/// a fact of the machine, not of time namespaces.
fn alarm_clock_absent() -> Option<String> {
    posix_timers_absent().or_else(|| {
        getres(Clock::BoottimeAlarm)
            .err()
            .map(|e| format!("CLOCK_BOOTTIME_ALARM is unavailable here: clock_getres gives {e:?} (no RTC device that can wake the system)"))
    })
}

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for clock in clock::CLOCKS {
        out.push(
            Case::new(format!("timens.clock.{}", clock.slug()), &["M1"], clock_doc(clock), move || {
                clock_offset(clock, OFFSETS, OFFSETS.for_clock(clock))
            })
            .requires(requires_clock_vdso(clock)),
        );
    }
    for source in UPTIME_SOURCES {
        out.push(
            Case::new(format!("timens.uptime.{}", source.slug()), &["M1"], source.doc(), move || uptime(source, OFFSETS, OFFSETS.boottime))
                .requires(source.requires()),
        );
    }
    for timer in TIMERS {
        for clock in TIMER_CLOCKS {
            out.push(
                Case::new(format!("timens.timer.{}.{}", timer.slug(), clock.slug()), &["M1"], timer.doc(clock), move || {
                    absolute_timer(timer, clock, 0)
                })
                .requires(requires_timer(clock, timer == Timer::Timerfd)),
            );
        }
    }
    out.extend(offsets::cases());
    out
}

/// The cases of this topic run sabotaged: each must then fail at its check.
pub fn sabotaged() -> Vec<Case> {
    let mut out = Vec::new();
    for clock in clock::CLOCKS {
        // An offset clock read where no offsets were written; a clock that
        // is not offset expected to show the monotonic one.
        let (written, expected, why) = match clock.offset_by() {
            Some(_) => (Offsets::ZERO, OFFSETS.for_clock(clock), "no offsets are written"),
            None => (OFFSETS, OFFSETS.monotonic, "the clock is expected to show the monotonic offset"),
        };
        out.push(
            Case::new(format!("sabotage.timens.clock.{}", clock.slug()), &["M1"], why, move || {
                must_fail_with(clock_offset(clock, written, expected), &format!("{} through the vDSO", clock.name()))
            })
            .requires(requires_clock_vdso(clock)),
        );
    }
    for source in UPTIME_SOURCES {
        out.push(
            Case::new(format!("sabotage.timens.uptime.{}", source.slug()), &["M1"], "no offsets are written", move || {
                must_fail_with(uptime(source, Offsets::ZERO, OFFSETS.boottime), source.check())
            })
            .requires(source.requires()),
        );
    }
    for timer in TIMERS {
        for clock in TIMER_CLOCKS {
            // The target is set an offset (or, for CLOCK_REALTIME, the
            // monotonic offset) early, as a kernel that translated it
            // twice would place it: the timer fires at once.
            let early = -OFFSETS.for_clock(clock).as_nanos().max(OFFSETS.monotonic.as_nanos());
            out.push(
                Case::new(
                    format!("sabotage.timens.timer.{}.{}", timer.slug(), clock.slug()),
                    &["M1"],
                    "the target lies an offset in the past: the timer must fire early",
                    move || must_fail_with(absolute_timer(timer, clock, early), "before the interval"),
                )
                .requires(requires_timer(clock, timer == Timer::Timerfd)),
            );
        }
        // The target a nanosecond part late, as a kernel that dropped the
        // offset's nanosecond part when translating it would place it: late
        // (or, where the bound is shorter than that, never within it).
        let lost = OFFSETS.monotonic.nanos;
        let at = if Duration::from_nanos((INTERVAL + lost) as u64) < bound() { "later than" } else { "did not fire within" };
        out.push(
            Case::new(
                format!("sabotage.timens.timer.{}.lost_nanos", timer.slug()),
                &["M1"],
                "the target lies the monotonic offset's nanosecond part (0.9 s) ahead: the timer must be late",
                move || must_fail_with(absolute_timer(timer, Clock::Monotonic, lost), at),
            )
            .requires(requires_timer(Clock::Monotonic, timer == Timer::Timerfd)),
        );
        // A target a day late, as a kernel that did not translate it would
        // see it: the bounded wait must end the case.
        out.push(
            Case::new(
                format!("sabotage.timens.timer.{}.never", timer.slug()),
                &["M1"],
                "the target lies a day ahead: the bounded wait must fail the case",
                move || must_fail_with(absolute_timer(timer, Clock::Monotonic, DAY * NANOS_PER_SEC), "did not fire within"),
            )
            .requires(requires_timer(Clock::Monotonic, timer == Timer::Timerfd)),
        );
    }
    out.extend(offsets::sabotaged());
    out
}

/// Runs `inside` in a child of a process that unshared CLONE_NEWTIME and
/// wrote `offsets` (numeric clock ids, as every kernel with time namespaces
/// takes them); that process runs `outside` just before and just after.
fn bracketed<O, I, FO, FI>(offsets: Offsets, outside: FO, inside: FI) -> Result<(O, I, O), CaseError>
where
    O: Serialize + DeserializeOwned,
    I: Serialize + DeserializeOwned,
    FO: Fn() -> Result<O, CaseError>,
    FI: FnOnce() -> Result<I, CaseError>,
{
    call(&Spawn::unshare(Kind::Time.flag()), move || {
        let new = NsId::of_entry(Proc::Myself, TIME_FOR_CHILDREN).setup("stat time_for_children")?;
        check_ne!(new, NsId::current(Kind::Time)?, "time_for_children after unshare(CLONE_NEWTIME) and the caller's own time namespace");
        if offsets != Offsets::ZERO {
            OffsetsFile::open(Proc::Myself)?.write_all(&offsets.to_numeric_text()).setup("write the offsets to timens_offsets")?;
        }
        let before = outside()?;
        let got = call(&Spawn::fork(), move || {
            check_eq!(NsId::current(Kind::Time)?, new, "time namespace of a child of the process that unshared CLONE_NEWTIME");
            inside()
        })?;
        let after = outside()?;
        Ok((before, got, after))
    })
}

fn secs(t: Nanos) -> String {
    format!("{}.{:09}", t.div_euclid(NANOS_PER_SEC), t.rem_euclid(NANOS_PER_SEC))
}
