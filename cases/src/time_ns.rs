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

use std::time::Duration;

use harness::clock::{
    self, getres, gettime_syscall, gettime_vdso, Clock, Nanos, Offset, OffsetClock, Offsets, OffsetsFile, Sleep, TimerFd, KTIME_SEC_MAX,
    NANOS_PER_SEC,
};
use harness::kconfig::KernelConfig;
use harness::peer::{call, Spawn};
use harness::{
    check, check_eq, check_ne, expect_errno, Case, CaseError, CaseResult, Errno, Kind, NsFd, NsId, Privilege, Proc, Requires, Setup,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::common::must_fail_with;

const DAY: i64 = 86_400;

/// The offsets the M1 cases write: days apart, with distinct nanosecond
/// parts, so a swap of the two offsets, one applied to the wrong clock, or
/// a lost nanosecond part is seen. Positive: a VM's clocks are a few
/// seconds old, and time_namespaces(7) forbids a negative clock. The
/// nanosecond parts are both at least [`MIN_NANOS_PART`], so that a timer
/// whose target lost one fires later than [`late`] allows.
const OFFSETS: Offsets =
    Offsets { monotonic: Offset { secs: 3 * DAY, nanos: 900_000_000 }, boottime: Offset { secs: 11 * DAY, nanos: 950_000_000 } };

/// The smaller nanosecond part of [`OFFSETS`].
const MIN_NANOS_PART: Nanos =
    if OFFSETS.monotonic.nanos < OFFSETS.boottime.nanos { OFFSETS.monotonic.nanos } else { OFFSETS.boottime.nanos };

/// How long after the namespace's "now" the absolute timers are set.
const INTERVAL: Nanos = 20_000_000;

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
fn bound() -> Duration {
    harness::isolate::scaled(Duration::from_millis(400))
}

fn requires() -> Requires {
    Requires::kinds(&[Kind::Time]).privilege(Privilege::Admin)
}

/// Reading or writing timens_offsets with symbolic clock names: 5.7
/// (94d440d61846, "Show clock symbolic names"); 5.6 showed numbers.
fn requires_names() -> Requires {
    requires().kernel(5, 7)
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

/// The `timens.clock.*` cases: [`requires_clock`] and a vDSO, since half of
/// each is the reading through it (a process without one would read the
/// system call twice and pass that half unchecked).
fn requires_clock_vdso(clock: Clock) -> Requires {
    match clock {
        Clock::BoottimeAlarm => requires().probe(|| vdso_absent().or_else(alarm_clock_absent)),
        Clock::Monotonic | Clock::Boottime | Clock::Realtime => requires().probe(vdso_absent),
        _ => requires().probe(|| vdso_absent().or_else(posix_timers_absent)),
    }
}

/// No vDSO mapped into the suite's processes (`AT_SYSINFO_EHDR` absent:
/// booted with `vdso=0`, or an architecture or build without one), a fact
/// of the environment.
fn vdso_absent() -> Option<String> {
    (!clock::vdso_mapped()).then(|| "no vDSO is mapped (no AT_SYSINFO_EHDR): clock_gettime(3) cannot read through it".to_string())
}

/// Absolute timers: timerfd needs CONFIG_TIMERFD; an alarm timer needs
/// CAP_WAKE_ALARM in the initial user namespace (capable(), kernel/time/
/// alarmtimer.c, fs/timerfd.c) and the RTC.
fn requires_timer(clock: Clock, timerfd: bool) -> Requires {
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

fn config_lacks(option: &str) -> bool {
    KernelConfig::running().is_some_and(|c| c.get(option).is_none())
}

fn posix_timers_absent() -> Option<String> {
    config_lacks("CONFIG_POSIX_TIMERS").then(|| {
        "CONFIG_POSIX_TIMERS is not set: clock_gettime(2) offers only CLOCK_REALTIME, CLOCK_MONOTONIC and CLOCK_BOOTTIME".to_string()
    })
}

fn timerfd_absent() -> Option<String> {
    config_lacks("CONFIG_TIMERFD").then(|| "CONFIG_TIMERFD is not set: no timerfd_create(2)".to_string())
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

fn alarm_or_timerfd_absent() -> Option<String> {
    alarm_clock_absent().or_else(timerfd_absent)
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
    out.extend(offsets_cases());
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
    out.extend(offsets_sabotaged());
    out
}

fn clock_doc(clock: Clock) -> String {
    match clock.offset_by() {
        Some(c) => format!(
            "{} in a new time namespace, through the vDSO and through clock_gettime(2), is the outside's plus the {} offset, to the nanosecond",
            clock.name(),
            c.name()
        ),
        None => format!("{} in a new time namespace, through the vDSO and through clock_gettime(2), is not offset", clock.name()),
    }
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
        let new = NsId::of_entry(Proc::Myself, "time_for_children").setup("stat time_for_children")?;
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

/// One reading of a clock both ways.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Reading {
    vdso: Nanos,
    syscall: Nanos,
}

fn read(clock: Clock) -> Result<Reading, CaseError> {
    Ok(Reading { vdso: gettime_vdso(clock)?, syscall: gettime_syscall(clock)? })
}

fn secs(t: Nanos) -> String {
    format!("{}.{:09}", t.div_euclid(NANOS_PER_SEC), t.rem_euclid(NANOS_PER_SEC))
}

/// M1: `clock` read in a new time namespace where `written` offsets were
/// written is the outside's reading shifted by `expected`, through both
/// paths. Outside-before <= inside - expected <= outside-after; a coarse
/// clock gets one tick either side (the vDSO's copy of the timekeeper may
/// lag the syscall's by a tick). The cases require a vDSO
/// ([`requires_clock_vdso`]).
fn clock_offset(clock: Clock, written: Offsets, expected: Offset) -> CaseResult {
    let tick = if clock.is_coarse() { getres(clock)? } else { 0 };
    let (before, inside, after) = bracketed(written, move || read(clock), move || read(clock))?;
    let shift = expected.as_nanos();
    for (path, b, i, a) in
        [("the vDSO", before.vdso, inside.vdso, after.vdso), ("clock_gettime(2)", before.syscall, inside.syscall, after.syscall)]
    {
        let (lo, hi) = (b + shift - tick, a + shift + tick);
        check!(
            (lo..=hi).contains(&i),
            "{} through {path} in the new time namespace reads {} s: expected the outside's reading plus {} s, between {} and {} \
             (it is {} s from the outside's first reading)",
            clock.name(),
            secs(i),
            secs(shift),
            secs(lo),
            secs(hi),
            secs(i - b)
        );
    }
    Ok(())
}

/// Where a time namespace's boot time shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UptimeSource {
    /// sysinfo(2) `uptime`: the 5.6-rc bug ecc421e05bab fixed.
    Sysinfo,
    /// The first field of /proc/uptime.
    ProcUptime,
    /// `btime` of /proc/stat, which moves back by the offset.
    ProcStatBtime,
}

const UPTIME_SOURCES: [UptimeSource; 3] = [UptimeSource::Sysinfo, UptimeSource::ProcUptime, UptimeSource::ProcStatBtime];

impl UptimeSource {
    fn slug(self) -> &'static str {
        match self {
            UptimeSource::Sysinfo => "sysinfo",
            UptimeSource::ProcUptime => "proc_uptime",
            UptimeSource::ProcStatBtime => "proc_stat_btime",
        }
    }

    fn doc(self) -> &'static str {
        match self {
            UptimeSource::Sysinfo => {
                "sysinfo(2) uptime in a new time namespace is CLOCK_BOOTTIME with its boottime offset, rounded up to seconds"
            }
            UptimeSource::ProcUptime => "/proc/uptime in a new time namespace is CLOCK_BOOTTIME with its boottime offset, in hundredths",
            UptimeSource::ProcStatBtime => "/proc/stat btime in a new time namespace is the boot time moved back by its boottime offset",
        }
    }

    /// /proc/stat btime follows the offset since 5.11 (3ae700ecfae9, "fs/
    /// proc: apply the time namespace offset to /proc/stat btime", tag
    /// time-namespace-v5.11); Debian's 5.10 shows the host's boot time.
    fn requires(self) -> Requires {
        match self {
            UptimeSource::ProcStatBtime => requires().kernel(5, 11),
            _ => requires(),
        }
    }

    /// The start of its check's message.
    fn check(self) -> &'static str {
        match self {
            UptimeSource::Sysinfo => "sysinfo() uptime",
            UptimeSource::ProcUptime => "/proc/uptime",
            UptimeSource::ProcStatBtime => "/proc/stat btime",
        }
    }

    fn read(self) -> Result<i64, CaseError> {
        match self {
            UptimeSource::Sysinfo => Ok(clock::sysinfo_uptime()?),
            UptimeSource::ProcUptime => clock::proc_uptime_centis(),
            UptimeSource::ProcStatBtime => clock::proc_stat_btime(),
        }
    }
}

/// M1: the boottime offset shows in `source` read in the new namespace,
/// bracketed by CLOCK_BOOTTIME (for btime: /proc/stat) read outside.
fn uptime(source: UptimeSource, written: Offsets, expected: Offset) -> CaseResult {
    let outside = move || -> Result<(Nanos, i64), CaseError> {
        Ok((gettime_syscall(Clock::Boottime)?, if source == UptimeSource::ProcStatBtime { source.read()? } else { 0 }))
    };
    let ((boot_before, btime_before), inside, (boot_after, btime_after)) = bracketed(written, outside, move || source.read())?;
    let off = expected.as_nanos();
    let (lo, hi, unit) = match source {
        // do_sysinfo(): tv_sec, plus one if any nanoseconds.
        UptimeSource::Sysinfo => {
            let ceil = |t: Nanos| t.div_euclid(NANOS_PER_SEC) + i64::from(t.rem_euclid(NANOS_PER_SEC) != 0);
            (ceil(boot_before + off), ceil(boot_after + off), "s")
        }
        // uptime_proc_show(): seconds and hundredths, truncated.
        UptimeSource::ProcUptime => ((boot_before + off).div_euclid(10_000_000), (boot_after + off).div_euclid(10_000_000), "1/100 s"),
        // show_stat(): the boot time's tv_sec after timens_sub_boottime();
        // the outside shows only whole seconds, so a nanosecond part of
        // the offset may take one more second off.
        UptimeSource::ProcStatBtime => {
            let extra = i64::from(expected.nanos != 0);
            (btime_before.min(btime_after) - expected.secs - extra, btime_before.max(btime_after) - expected.secs, "s")
        }
    };
    check!(
        (lo..=hi).contains(&inside),
        "{} in the new time namespace is {inside} ({unit}): expected between {lo} and {hi}, the outside's with a boottime offset of {} s",
        source.check(),
        secs(off)
    );
    Ok(())
}

/// An absolute timer interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// clock_nanosleep(2) with TIMER_ABSTIME.
    ClockNanosleep,
    /// timerfd_settime(2) with TFD_TIMER_ABSTIME.
    Timerfd,
}

const TIMERS: [Timer; 2] = [Timer::ClockNanosleep, Timer::Timerfd];

/// The clocks absolute timers are checked on: the two offset ones, the
/// alarm clock, and CLOCK_REALTIME whose targets must not be translated.
const TIMER_CLOCKS: [Clock; 4] = [Clock::Monotonic, Clock::Boottime, Clock::BoottimeAlarm, Clock::Realtime];

impl Timer {
    fn slug(self) -> &'static str {
        match self {
            Timer::ClockNanosleep => "clock_nanosleep",
            Timer::Timerfd => "timerfd",
        }
    }

    fn doc(self, clock: Clock) -> String {
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
fn absolute_timer(timer: Timer, clock: Clock, shift: Nanos) -> CaseResult {
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

// ---- M2: writing /proc/[pid]/timens_offsets ----

/// A state written first, so that a failed write that reset the offsets
/// (or applied part of a record set) is seen.
const KNOWN: Offsets = Offsets { monotonic: Offset { secs: 5 * DAY, nanos: 1 }, boottime: Offset { secs: 7 * DAY, nanos: 999_999_999 } };

/// Records that time_namespaces(7) makes EINVAL: not `<clock-id>
/// <offset-secs> <offset-nanosecs>`, nanoseconds beyond 999,999,999
/// (offset-nanosecs is unsigned), or a bad second line, which must keep the
/// good first line from applying too.
const MALFORMED: &[&str] = &[
    "not an offset\n",
    "monotonic 10\n",
    "monotonic ten 0\n",
    "monotonic 10 1000000000\n",
    "boottime 10 -1\n",
    "monotonic 10 0\nboottime 10\n",
    "monotonic 10 0\nboottime x 0\n",
];

/// Clock ids time_namespaces(7) does not accept (only monotonic/1 and
/// boottime/7): CLOCK_REALTIME by name and number, and the clocks that
/// follow an offset but have none of their own.
const UNKNOWN_CLOCKS: &[&str] = &[
    "realtime 10 0\n",
    "0 10 0\n",
    "monotonic_raw 10 0\n",
    "4 10 0\n",
    "boottime_alarm 10 0\n",
    "9 10 0\n",
    "tai 10 0\n",
    "11 10 0\n",
    "2 10 0\n",
];

fn offsets_cases() -> Vec<Case> {
    vec![
        Case::new(
            "timens.offsets.write_before_entry",
            &["M2"],
            "after unshare(CLONE_NEWTIME) the new namespace's offsets read as the creator's (zero), may be written several times \
             by name or clock id before any process enters, each record replacing only its clock, and read back exactly",
            || write_before_entry(false),
        )
        .requires(requires_names()),
        Case::new(
            "timens.offsets.eacces_after_child",
            &["M2"],
            "once a child has been created in the namespace (even after it exited), writing timens_offsets is EACCES and the offsets stay",
            || eacces_after(Entry::Child),
        )
        .requires(requires_names()),
        Case::new(
            "timens.offsets.eacces_after_setns",
            &["M2"],
            "once another process has joined the namespace with setns(2), writing timens_offsets is EACCES and the offsets stay",
            || eacces_after(Entry::Setns),
        )
        // setns(2) into a time namespace: 5.8 (as the setns cases).
        .requires(requires_names().kernel(5, 8)),
        Case::new(
            "timens.offsets.malformed_einval",
            &["M2"],
            "a record that is not `<clock-id> <secs> <nanosecs>`, nanoseconds above 999,999,999 or a bad second line is EINVAL, \
             changes nothing (not even the good first line) and does not freeze the offsets",
            || rejected(MALFORMED, Errno::EINVAL, None),
        )
        .requires(requires_names()),
        Case::new(
            "timens.offsets.unknown_clock_einval",
            &["M2"],
            "a clock other than monotonic (1) or boottime (7), CLOCK_REALTIME included, is EINVAL and changes nothing",
            || rejected(UNKNOWN_CLOCKS, Errno::EINVAL, None),
        )
        .requires(requires_names()),
        Case::new(
            "timens.offsets.out_of_range_erange",
            &["M2"],
            "offset-secs beyond KTIME_SEC_MAX, or making the clock negative or beyond KTIME_SEC_MAX/2, is ERANGE and changes nothing; \
             offsets just inside those bounds are accepted",
            || out_of_range(false),
        )
        .requires(requires_names()),
        Case::new(
            "timens.offsets.eperm_without_cap_sys_time",
            &["M2"],
            "a writer that opened timens_offsets without CAP_SYS_TIME is EPERM and changes nothing",
            || eperm_without_cap(true),
        )
        .requires(requires_names()),
        Case::new(
            "timens.offsets.inherited_not_stacked",
            &["M2"],
            "a time namespace unshared inside another starts with that one's offsets; its own offsets are relative to the initial \
             time namespace, not added to the outer ones",
            || inherited_not_stacked(false),
        )
        .requires(requires_names()),
    ]
}

fn offsets_sabotaged() -> Vec<Case> {
    vec![
        Case::new("sabotage.timens.offsets.write_before_entry", &["M2"], "a child enters the namespace before the writes", || {
            must_fail_with(write_before_entry(true), "writing timens_offsets before any process entered")
        })
        .requires(requires_names()),
        Case::new("sabotage.timens.offsets.eacces_after_child", &["M2"], "no process enters the namespace", || {
            must_fail_with(eacces_after(Entry::Nobody), "writing timens_offsets after")
        })
        .requires(requires_names()),
        Case::new("sabotage.timens.offsets.malformed_einval", &["M2"], "a well-formed record is listed as malformed", || {
            must_fail_with(rejected(MALFORMED, Errno::EINVAL, Some("boottime 10 0\n")), "writing \"boottime 10 0\\n\"")
        })
        .requires(requires_names()),
        Case::new("sabotage.timens.offsets.unknown_clock_einval", &["M2"], "clock id 7 (boottime) is listed as unknown", || {
            must_fail_with(rejected(UNKNOWN_CLOCKS, Errno::EINVAL, Some("7 10 0\n")), "writing \"7 10 0\\n\"")
        })
        .requires(requires_names()),
        Case::new(
            "sabotage.timens.offsets.out_of_range_erange",
            &["M2"],
            "an offset just inside the bounds is expected to be ERANGE",
            || must_fail_with(out_of_range(true), "writing the in-range"),
        )
        .requires(requires_names()),
        Case::new("sabotage.timens.offsets.eperm_without_cap_sys_time", &["M2"], "CAP_SYS_TIME is kept", || {
            must_fail_with(eperm_without_cap(false), "writing timens_offsets without CAP_SYS_TIME")
        })
        .requires(requires_names()),
        Case::new(
            "sabotage.timens.offsets.inherited_not_stacked",
            &["M2"],
            "the inner offsets are expected stacked on the outer ones",
            || must_fail_with(inherited_not_stacked(true), "CLOCK_MONOTONIC of a child of the inner namespace"),
        )
        .requires(requires_names()),
    ]
}

/// Reads the caller's offsets (those of its time_for_children namespace).
fn own_offsets() -> Result<Offsets, CaseError> {
    clock::read_offsets(Proc::Myself)
}

/// M2: writes before entry succeed and read back; `child_first` is the
/// sabotage (a child enters first).
fn write_before_entry(child_first: bool) -> CaseResult {
    call(&Spawn::unshare(Kind::Time.flag()), move || {
        check_eq!(own_offsets()?, Offsets::ZERO, "timens_offsets of a new time namespace unshared from the initial one");
        if child_first {
            call(&Spawn::fork(), || Ok(()))?;
        }
        let mut file = OffsetsFile::open(Proc::Myself)?;
        let first = Offsets { monotonic: Offset { secs: 2 * DAY, nanos: 123 }, boottime: Offset { secs: 4 * DAY, nanos: 456 } };
        for (text, expected) in [
            (first.to_text(), first),
            // One record replaces only its clock.
            ("boottime 86400 999999999\n".to_string(), Offsets { boottime: Offset { secs: DAY, nanos: 999_999_999 }, ..first }),
            // The numeric ids of the first implementation (NOTES).
            (
                "1 -1 0\n7 100 5\n".to_string(),
                Offsets { monotonic: Offset { secs: -1, nanos: 0 }, boottime: Offset { secs: 100, nanos: 5 } },
            ),
        ] {
            match file.write(&text) {
                Ok(n) => check_eq!(n, text.len(), "bytes written of {text:?}"),
                Err(e) => {
                    return Err(CaseError::fail(format!(
                        "writing timens_offsets before any process entered the namespace: {text:?} gave {e:?} ({})",
                        e.desc()
                    )))
                }
            }
            check_eq!(own_offsets()?, expected, "timens_offsets after writing {text:?}");
        }
        // The child that enters sees the same namespace's offsets.
        let seen = call(&Spawn::fork(), own_offsets)?;
        check_eq!(seen, own_offsets()?, "timens_offsets read by a child in the namespace");
        Ok(())
    })
}

/// How a process comes into the namespace before the forbidden write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// The creator forks a child (which exits before the write).
    Child,
    /// Another process joins with setns(2) on the creator's
    /// time_for_children and stays.
    Setns,
    /// The sabotage: nobody enters.
    Nobody,
}

/// M2: after the first process entered, a write is EACCES and the offsets
/// are unchanged; the entered process sees the original offsets.
fn eacces_after(entry: Entry) -> CaseResult {
    let mut creator = Spawn::unshare(Kind::Time.flag()).spawn(|ch| {
        OffsetsFile::open(Proc::Myself)?.write_all(&KNOWN.to_text()).setup("write the first offsets")?;
        let new = NsId::of_entry(Proc::Myself, "time_for_children").setup("stat time_for_children")?;
        if entry == Entry::Child {
            let inside = call(&Spawn::fork(), || Ok(NsId::current(Kind::Time)?))?;
            check_eq!(inside, new, "time namespace of the creator's child");
        }
        ch.send(&new)?;
        // The joiner (if any) has entered when the parent says go.
        ch.wait()?;
        let when = match entry {
            Entry::Child => "after a child was created in the namespace",
            Entry::Setns | Entry::Nobody => "after another process joined the namespace with setns",
        };
        let changed = Offsets { monotonic: Offset { secs: 1, nanos: 0 }, ..KNOWN };
        expect_errno!(OffsetsFile::open(Proc::Myself)?.write(&changed.to_text()), Errno::EACCES, "writing timens_offsets {when}");
        check_eq!(own_offsets()?, KNOWN, "timens_offsets after the refused write");
        Ok(())
    })?;
    let new: NsId = creator.recv()?;
    let mut joiner = None;
    if entry == Entry::Setns {
        let pid = creator.pid().as_raw();
        let mut peer = Spawn::fork().spawn(move |ch| {
            let fd = NsFd::open_entry(Proc::Pid(pid), "time_for_children")?;
            fd.setns(Kind::Time.flag())?;
            ch.send(&NsId::current(Kind::Time)?)?;
            ch.wait()
        })?;
        let joined: NsId = peer.recv()?;
        check_eq!(joined, new, "time namespace of the process that joined the creator's time_for_children");
        joiner = Some(peer);
    }
    creator.go()?;
    creator.join()?;
    if let Some(mut peer) = joiner {
        peer.go()?;
        peer.join()?;
    }
    Ok(())
}

/// M2: each of `records` is refused with `errno` in a namespace no process
/// has entered, and the offsets stay [`KNOWN`]; a valid write still works
/// afterwards (a failure does not freeze them). `sabotage` adds a valid
/// record to the list.
fn rejected(records: &'static [&'static str], errno: Errno, sabotage: Option<&'static str>) -> CaseResult {
    call(&Spawn::unshare(Kind::Time.flag()), move || {
        let mut file = OffsetsFile::open(Proc::Myself)?;
        file.write_all(&KNOWN.to_text()).setup("write the first offsets")?;
        for text in records.iter().copied().chain(sabotage) {
            expect_errno!(file.write(text), errno, "writing {text:?} to timens_offsets");
            check_eq!(own_offsets()?, KNOWN, "timens_offsets after the refused write of {text:?}");
        }
        file.write_all(&Offsets::ZERO.to_text())?;
        check_eq!(own_offsets()?, Offsets::ZERO, "timens_offsets written after the refused writes");
        Ok(())
    })
}

/// M2: ERANGE at the bounds the kernel documents (time_namespaces(7),
/// kernel/time/namespace.c proc_timens_set_offset()), each changing
/// nothing; offsets ten seconds inside them are accepted. `sabotage`
/// expects ERANGE for an accepted one.
fn out_of_range(sabotage: bool) -> CaseResult {
    call(&Spawn::unshare(Kind::Time.flag()), move || {
        let mut file = OffsetsFile::open(Proc::Myself)?;
        file.write_all(&KNOWN.to_text()).setup("write the first offsets")?;
        let mono = gettime_syscall(Clock::Monotonic)?.div_euclid(NANOS_PER_SEC);
        let boot = gettime_syscall(Clock::Boottime)?.div_euclid(NANOS_PER_SEC);
        let half = KTIME_SEC_MAX / 2;
        let refused = [
            format!("monotonic {} 0\n", KTIME_SEC_MAX + 1),
            format!("boottime {} 0\n", -(KTIME_SEC_MAX + 1)),
            // The clock would exceed KTIME_SEC_MAX/2 ...
            format!("monotonic {} 0\n", half - mono + 10),
            format!("boottime {} 0\n", half - boot + 10),
            // ... or be negative.
            format!("monotonic {} 0\n", -(mono + 10)),
            format!("boottime {} 0\n", -(boot + 10)),
        ];
        for text in &refused {
            expect_errno!(file.write(text), Errno::ERANGE, "writing the out-of-range {text:?} to timens_offsets");
            check_eq!(own_offsets()?, KNOWN, "timens_offsets after the refused write of {text:?}");
        }
        let accepted = [
            (OffsetClock::Monotonic, Offset { secs: half - mono - 10, nanos: 0 }),
            (OffsetClock::Boottime, Offset { secs: half - boot - 10, nanos: 0 }),
            (OffsetClock::Monotonic, Offset { secs: -(mono - 10).max(0), nanos: 0 }),
        ];
        for (clock, offset) in accepted {
            let text = format!("{} {} {}\n", clock.name(), offset.secs, offset.nanos);
            if sabotage {
                expect_errno!(file.write(&text), Errno::ERANGE, "writing the in-range {text:?} to timens_offsets");
            }
            match file.write(&text) {
                Ok(n) => check_eq!(n, text.len(), "bytes written of {text:?}"),
                Err(e) => {
                    return Err(CaseError::fail(format!("writing the in-range {text:?} to timens_offsets gave {e:?} ({})", e.desc())))
                }
            }
            check_eq!(own_offsets()?.of(clock), offset, "the {} offset after writing {text:?}", clock.name());
            file.write_all(&KNOWN.to_text())?;
        }
        Ok(())
    })
}

/// M2: a writer without CAP_SYS_TIME (dropped before opening: the kernel
/// checks the opener's credentials) gets EPERM and changes nothing.
/// `drop_cap` false is the sabotage.
fn eperm_without_cap(drop_cap: bool) -> CaseResult {
    call(&Spawn::unshare(Kind::Time.flag()), move || {
        OffsetsFile::open(Proc::Myself)?.write_all(&KNOWN.to_text()).setup("write the first offsets")?;
        if drop_cap {
            harness::sys::drop_capability(clock::CAP_SYS_TIME).setup("drop CAP_SYS_TIME")?;
        }
        let mut file = OffsetsFile::open(Proc::Myself)?;
        expect_errno!(file.write(&Offsets::ZERO.to_text()), Errno::EPERM, "writing timens_offsets without CAP_SYS_TIME");
        check_eq!(own_offsets()?, KNOWN, "timens_offsets after the refused write");
        Ok(())
    })
}

/// M2 (and M1): a namespace unshared by a member of another starts with
/// its offsets; the offsets written to it are relative to the initial
/// namespace, so a child of it shows the outside's clock plus the inner
/// offset only. `stacked` is the sabotage (expects outer plus inner).
fn inherited_not_stacked(stacked: bool) -> CaseResult {
    let inner = Offsets { monotonic: Offset { secs: 20 * DAY, nanos: 250_000_000 }, boottime: Offset { secs: 30 * DAY, nanos: 0 } };
    let (before, (inherited, inside), after) = bracketed(
        OFFSETS,
        || Ok(gettime_syscall(Clock::Monotonic)?),
        move || {
            // In the outer namespace: unshare again.
            call(&Spawn::unshare(Kind::Time.flag()), move || {
                let inherited = own_offsets()?;
                OffsetsFile::open(Proc::Myself)?.write_all(&inner.to_text()).setup("write the inner offsets")?;
                let inside = call(&Spawn::fork(), || Ok(gettime_syscall(Clock::Monotonic)?))?;
                Ok((inherited, inside))
            })
        },
    )?;
    check_eq!(inherited, OFFSETS, "timens_offsets of a time namespace unshared inside one with offsets");
    let shift = if stacked { OFFSETS.monotonic.as_nanos() + inner.monotonic.as_nanos() } else { inner.monotonic.as_nanos() };
    check!(
        (before + shift..=after + shift).contains(&inside),
        "CLOCK_MONOTONIC of a child of the inner namespace reads {} s: expected the initial namespace's plus the inner offset {} s, \
         between {} and {}",
        secs(inside),
        secs(shift),
        secs(before + shift),
        secs(after + shift)
    );
    Ok(())
}
