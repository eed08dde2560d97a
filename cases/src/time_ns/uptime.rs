//! M1 beyond clock_gettime(2): the boottime offset in sysinfo(2)'s uptime,
//! /proc/uptime and /proc/stat's btime, read in a new time namespace.

use harness::clock::{self, gettime_syscall, Clock, Nanos, Offset, Offsets, NANOS_PER_SEC};
use harness::{check, CaseError, CaseResult, Requires};

use super::{bracketed, requires, secs};

/// Where a time namespace's boot time shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UptimeSource {
    /// sysinfo(2) `uptime`: the 5.6-rc bug ecc421e05bab fixed.
    Sysinfo,
    /// The first field of /proc/uptime.
    ProcUptime,
    /// `btime` of /proc/stat, which moves back by the offset.
    ProcStatBtime,
}

pub(super) const UPTIME_SOURCES: [UptimeSource; 3] = [UptimeSource::Sysinfo, UptimeSource::ProcUptime, UptimeSource::ProcStatBtime];

impl UptimeSource {
    pub(super) fn slug(self) -> &'static str {
        match self {
            UptimeSource::Sysinfo => "sysinfo",
            UptimeSource::ProcUptime => "proc_uptime",
            UptimeSource::ProcStatBtime => "proc_stat_btime",
        }
    }

    pub(super) fn doc(self) -> &'static str {
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
    pub(super) fn requires(self) -> Requires {
        match self {
            UptimeSource::ProcStatBtime => requires().kernel(5, 11),
            _ => requires(),
        }
    }

    /// The start of its check's message.
    pub(super) fn check(self) -> &'static str {
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
pub(super) fn uptime(source: UptimeSource, written: Offsets, expected: Offset) -> CaseResult {
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
