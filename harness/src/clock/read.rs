//! The clocks a time namespace offsets (or not), read through the vDSO
//! and through the system call, and the uptime that /proc and sysinfo(2)
//! report.

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::case::CaseError;

/// Nanoseconds on a clock.
pub type Nanos = i64;

/// Nanoseconds in a second.
pub const NANOS_PER_SEC: Nanos = 1_000_000_000;

/// `KTIME_SEC_MAX` of `<linux/time64.h>` (`KTIME_MAX / NSEC_PER_SEC`): the
/// largest offset-secs magnitude, and twice the largest clock value, that
/// time_namespaces(7) allows ("half of the value of the kernel constant
/// KTIME_SEC_MAX").
pub const KTIME_SEC_MAX: i64 = i64::MAX / NANOS_PER_SEC;

/// A clock of clock_gettime(2) that time_namespaces(7) names: the five it
/// offsets and three it does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Clock {
    /// CLOCK_MONOTONIC: offset by the namespace's monotonic offset.
    Monotonic,
    /// CLOCK_MONOTONIC_RAW: "likewise" (the monotonic offset).
    MonotonicRaw,
    /// CLOCK_MONOTONIC_COARSE: "likewise" (the monotonic offset).
    MonotonicCoarse,
    /// CLOCK_BOOTTIME: offset by the namespace's boottime offset.
    Boottime,
    /// CLOCK_BOOTTIME_ALARM: "likewise" (the boottime offset).
    BoottimeAlarm,
    /// CLOCK_REALTIME: "time namespaces do not virtualize" it.
    Realtime,
    /// CLOCK_REALTIME_COARSE: not offset.
    RealtimeCoarse,
    /// CLOCK_TAI: realtime plus the TAI offset; not offset.
    Tai,
}

/// Every clock of [`Clock`], offset ones first.
pub const CLOCKS: [Clock; 8] = [
    Clock::Monotonic,
    Clock::MonotonicRaw,
    Clock::MonotonicCoarse,
    Clock::Boottime,
    Clock::BoottimeAlarm,
    Clock::Realtime,
    Clock::RealtimeCoarse,
    Clock::Tai,
];

impl Clock {
    /// The clock id of `<time.h>`.
    pub fn id(self) -> libc::clockid_t {
        match self {
            Clock::Monotonic => libc::CLOCK_MONOTONIC,
            Clock::MonotonicRaw => libc::CLOCK_MONOTONIC_RAW,
            Clock::MonotonicCoarse => libc::CLOCK_MONOTONIC_COARSE,
            Clock::Boottime => libc::CLOCK_BOOTTIME,
            Clock::BoottimeAlarm => libc::CLOCK_BOOTTIME_ALARM,
            Clock::Realtime => libc::CLOCK_REALTIME,
            Clock::RealtimeCoarse => libc::CLOCK_REALTIME_COARSE,
            Clock::Tai => libc::CLOCK_TAI,
        }
    }

    /// Its name in clock_gettime(2), `CLOCK_MONOTONIC_RAW`.
    pub fn name(self) -> &'static str {
        match self {
            Clock::Monotonic => "CLOCK_MONOTONIC",
            Clock::MonotonicRaw => "CLOCK_MONOTONIC_RAW",
            Clock::MonotonicCoarse => "CLOCK_MONOTONIC_COARSE",
            Clock::Boottime => "CLOCK_BOOTTIME",
            Clock::BoottimeAlarm => "CLOCK_BOOTTIME_ALARM",
            Clock::Realtime => "CLOCK_REALTIME",
            Clock::RealtimeCoarse => "CLOCK_REALTIME_COARSE",
            Clock::Tai => "CLOCK_TAI",
        }
    }

    /// The name in lower case without `CLOCK_`, for case ids.
    pub fn slug(self) -> String {
        self.name().trim_start_matches("CLOCK_").to_ascii_lowercase()
    }

    /// Which of a time namespace's offsets applies to it
    /// (time_namespaces(7)), or `None` for the clocks it does not offset.
    pub fn offset_by(self) -> Option<OffsetClock> {
        match self {
            Clock::Monotonic | Clock::MonotonicRaw | Clock::MonotonicCoarse => Some(OffsetClock::Monotonic),
            Clock::Boottime | Clock::BoottimeAlarm => Some(OffsetClock::Boottime),
            Clock::Realtime | Clock::RealtimeCoarse | Clock::Tai => None,
        }
    }

    /// Whether it advances only at the timer tick (the `_COARSE` clocks).
    pub fn is_coarse(self) -> bool {
        matches!(self, Clock::MonotonicCoarse | Clock::RealtimeCoarse)
    }

    /// The clock that CLOCK_BOOTTIME_ALARM reads as (clock_gettime(2):
    /// "like CLOCK_BOOTTIME"); itself for the others.
    pub fn reads_as(self) -> Clock {
        match self {
            Clock::BoottimeAlarm => Clock::Boottime,
            c => c,
        }
    }
}

/// One of the two clocks a time namespace holds offsets for: the
/// `<clock-id>` field of `/proc/[pid]/timens_offsets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OffsetClock {
    /// `monotonic` (clock id 1).
    Monotonic,
    /// `boottime` (clock id 7).
    Boottime,
}

impl OffsetClock {
    /// The symbolic name the file shows (5.7+, 94d440d61846).
    pub fn name(self) -> &'static str {
        match self {
            OffsetClock::Monotonic => "monotonic",
            OffsetClock::Boottime => "boottime",
        }
    }

    /// The numeric clock id, accepted on write since 5.6
    /// (time_namespaces(7), NOTES).
    pub fn id(self) -> libc::clockid_t {
        match self {
            OffsetClock::Monotonic => libc::CLOCK_MONOTONIC,
            OffsetClock::Boottime => libc::CLOCK_BOOTTIME,
        }
    }
}

pub(super) fn to_nanos(ts: &libc::timespec) -> Nanos {
    ts.tv_sec as Nanos * NANOS_PER_SEC + ts.tv_nsec as Nanos
}

pub(super) fn to_timespec(t: Nanos) -> libc::timespec {
    libc::timespec { tv_sec: t.div_euclid(NANOS_PER_SEC) as _, tv_nsec: t.rem_euclid(NANOS_PER_SEC) as _ }
}

pub(super) fn zero_timespec() -> libc::timespec {
    libc::timespec { tv_sec: 0, tv_nsec: 0 }
}

/// clock_gettime(3) of the C library: the vDSO where it serves `clock`
/// (vdso(7)), else the system call.
pub fn gettime_vdso(clock: Clock) -> Result<Nanos, Errno> {
    let mut ts = zero_timespec();
    // SAFETY: `ts` is a valid, writable timespec for the call.
    Errno::result(unsafe { libc::clock_gettime(clock.id(), &mut ts) })?;
    Ok(to_nanos(&ts))
}

/// The clock_gettime(2) system call itself, bypassing the vDSO.
pub fn gettime_syscall(clock: Clock) -> Result<Nanos, Errno> {
    let mut ts = zero_timespec();
    // SAFETY: `ts` is a valid, writable timespec (the kernel's
    // __kernel_timespec on 64-bit) for the call.
    Errno::result(unsafe { libc::syscall(libc::SYS_clock_gettime, clock.id(), &mut ts as *mut libc::timespec) })?;
    Ok(to_nanos(&ts))
}

/// clock_getres(2) through the system call: the clock's resolution (for a
/// `_COARSE` clock, the tick), or EINVAL where the kernel does not provide
/// the clock (CLOCK_BOOTTIME_ALARM without an RTC device that can wake the
/// system; clocks beyond three without CONFIG_POSIX_TIMERS).
pub fn getres(clock: Clock) -> Result<Nanos, Errno> {
    let mut ts = zero_timespec();
    // SAFETY: `ts` is a valid, writable timespec for the call.
    Errno::result(unsafe { libc::syscall(libc::SYS_clock_getres, clock.id(), &mut ts as *mut libc::timespec) })?;
    Ok(to_nanos(&ts))
}

/// Whether the kernel mapped a vDSO into this process (`AT_SYSINFO_EHDR`
/// in the auxiliary vector, getauxval(3)); without one [`gettime_vdso`]
/// is the system call too.
pub fn vdso_mapped() -> bool {
    // SAFETY: getauxval reads the process's auxiliary vector; no pointers.
    unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) != 0 }
}

/// sysinfo(2)'s `uptime`: seconds since boot, CLOCK_BOOTTIME of the
/// caller's time namespace rounded up to whole seconds (kernel/sys.c
/// do_sysinfo()).
pub fn sysinfo_uptime() -> Result<i64, Errno> {
    // SAFETY: sysinfo is plain data; zeroed is valid.
    let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is valid and writable for the call.
    Errno::result(unsafe { libc::sysinfo(&mut info) })?;
    Ok(info.uptime as i64)
}

/// The first field of `/proc/uptime` (proc(5): "the uptime of the system
/// (including time spent in suspend)", seconds with two decimals), in
/// hundredths of a second.
pub fn proc_uptime_centis() -> Result<i64, CaseError> {
    let text = std::fs::read_to_string("/proc/uptime")?;
    parse_uptime_centis(&text).ok_or_else(|| CaseError::fail(format!("/proc/uptime is not `<secs>.<hundredths> ...`: {text:?}")))
}

/// Parses the first field of `/proc/uptime` text into hundredths.
pub fn parse_uptime_centis(text: &str) -> Option<i64> {
    let first = text.split_whitespace().next()?;
    let (secs, hundredths) = first.split_once('.')?;
    if hundredths.len() != 2 {
        return None;
    }
    Some(secs.parse::<i64>().ok()? * 100 + hundredths.parse::<i64>().ok()?)
}

/// The `btime` line of `/proc/stat` (proc(5): "boot time, in seconds
/// since the Epoch").
pub fn proc_stat_btime() -> Result<i64, CaseError> {
    let text = std::fs::read_to_string("/proc/stat")?;
    let line = text.lines().find_map(|l| l.strip_prefix("btime ")).ok_or_else(|| CaseError::fail("/proc/stat has no `btime` line"))?;
    parse_btime(line).ok_or_else(|| CaseError::fail(format!("/proc/stat btime is not a number of seconds: {line:?}")))
}

/// Parses the value of `/proc/stat`'s btime line. show_stat() prints the
/// boot time (a signed time64_t) as an unsigned long long, so a boot time
/// before the Epoch shows as its two's complement: a guest without a
/// real-time clock boots at 1970, and a time namespace's boottime offset
/// moves its btime back from there.
pub fn parse_btime(text: &str) -> Option<i64> {
    text.trim().parse::<u64>().ok().map(|u| u as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::offsets::{Offset, Offsets};

    #[test]
    fn btime_before_the_epoch_reads_back_negative() {
        assert_eq!(parse_btime("1764640000\n"), Some(1_764_640_000));
        assert_eq!(parse_btime("18446744073709541616"), Some(-10_000), "a boot time 10000 s before 1970");
        assert_eq!(parse_btime("-5"), None, "the kernel never prints a sign");
        assert_eq!(parse_btime("soon"), None);
    }

    #[test]
    fn parses_offsets_and_uptime() {
        let o = Offsets::parse("monotonic     259200 900000000\nboottime      950400 700000000\n").unwrap();
        assert_eq!(o.monotonic, Offset { secs: 259200, nanos: 900_000_000 });
        assert_eq!(o.boottime.as_nanos(), 950_400 * NANOS_PER_SEC + 700_000_000);
        assert_eq!(Offsets::parse(&o.to_text()), Ok(o));
        assert!(Offsets::parse("1 0 0\n7 0 0\n").is_err());
        assert!(Offsets::parse("boottime 0 0\nmonotonic 0 0\n").is_err());
        assert_eq!(parse_uptime_centis("12.34 56.78\n"), Some(1234));
        assert_eq!(parse_uptime_centis("12.3 56.78\n"), None);
        assert_eq!(to_nanos(&to_timespec(-1)), -1);
        assert_eq!(Clock::MonotonicRaw.slug(), "monotonic_raw");
        assert_eq!(Offsets::ZERO.for_clock(Clock::Tai), Offset::ZERO);
    }
}
