//! Clocks, timers and uptime as a time namespace shows them, and the
//! `/proc/[pid]/timens_offsets` file (time_namespaces(7)).
//!
//! Each clock is read two ways: through the C library's clock_gettime(3),
//! which the vDSO answers where it can (vdso(7)), and through the raw
//! clock_gettime(2) system call, because a time namespace's offsets reach
//! the two by different kernel paths (the namespace's vvar page and
//! `timens_add_*()` in the syscall). Times are signed nanoseconds (an `i64`
//! holds 292 years, twice the 146 years time_namespaces(7) allows a clock).

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::case::CaseError;
use crate::error::{Op, OpContext, SysError};
use crate::nsid::Proc;

/// Nanoseconds on a clock.
pub type Nanos = i64;

/// Nanoseconds in a second.
pub const NANOS_PER_SEC: Nanos = 1_000_000_000;

/// `KTIME_SEC_MAX` of `<linux/time64.h>` (`KTIME_MAX / NSEC_PER_SEC`): the
/// largest offset-secs magnitude, and twice the largest clock value, that
/// time_namespaces(7) allows ("half of the value of the kernel constant
/// KTIME_SEC_MAX").
pub const KTIME_SEC_MAX: i64 = i64::MAX / NANOS_PER_SEC;

/// `CAP_SYS_TIME` of `<linux/capability.h>` (libc lacks it): needed in the
/// owning user namespace to write timens_offsets (time_namespaces(7)).
pub const CAP_SYS_TIME: u32 = 25;

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

fn to_nanos(ts: &libc::timespec) -> Nanos {
    ts.tv_sec as Nanos * NANOS_PER_SEC + ts.tv_nsec as Nanos
}

fn to_timespec(t: Nanos) -> libc::timespec {
    libc::timespec { tv_sec: t.div_euclid(NANOS_PER_SEC) as libc::time_t, tv_nsec: t.rem_euclid(NANOS_PER_SEC) as _ }
}

fn zero_timespec() -> libc::timespec {
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
        it_value: libc::timeval { tv_sec: bound.as_secs() as libc::time_t, tv_usec: bound.subsec_micros().max(1) as libc::suseconds_t },
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
    text.lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
        .ok_or_else(|| CaseError::fail("/proc/stat has no `btime <secs>` line"))
}

/// One offset of a time namespace: seconds (may be negative) and
/// nanoseconds (0 to 999,999,999), time_namespaces(7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offset {
    /// `<offset-secs>`.
    pub secs: i64,
    /// `<offset-nanosecs>`.
    pub nanos: i64,
}

impl Offset {
    /// No offset.
    pub const ZERO: Offset = Offset { secs: 0, nanos: 0 };

    /// The offset in nanoseconds.
    pub fn as_nanos(self) -> Nanos {
        self.secs * NANOS_PER_SEC + self.nanos
    }
}

/// The two offsets `/proc/[pid]/timens_offsets` shows: those of the
/// process's time_for_children namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offsets {
    /// The `monotonic` line.
    pub monotonic: Offset,
    /// The `boottime` line.
    pub boottime: Offset,
}

impl Offsets {
    /// Both zero (the initial time namespace).
    pub const ZERO: Offsets = Offsets { monotonic: Offset::ZERO, boottime: Offset::ZERO };

    /// The offset of `clock`.
    pub fn of(&self, clock: OffsetClock) -> Offset {
        match clock {
            OffsetClock::Monotonic => self.monotonic,
            OffsetClock::Boottime => self.boottime,
        }
    }

    /// The offset that applies to `clock` (zero for those not offset).
    pub fn for_clock(&self, clock: Clock) -> Offset {
        clock.offset_by().map_or(Offset::ZERO, |c| self.of(c))
    }

    /// The file's text for these offsets with symbolic clock names (5.7+).
    pub fn to_text(&self) -> String {
        format!("monotonic {} {}\nboottime {} {}\n", self.monotonic.secs, self.monotonic.nanos, self.boottime.secs, self.boottime.nanos)
    }

    /// The same with numeric clock ids (`1`, `7`: every kernel with time
    /// namespaces, time_namespaces(7) NOTES).
    pub fn to_numeric_text(&self) -> String {
        format!(
            "{} {} {}\n{} {} {}\n",
            OffsetClock::Monotonic.id(),
            self.monotonic.secs,
            self.monotonic.nanos,
            OffsetClock::Boottime.id(),
            self.boottime.secs,
            self.boottime.nanos
        )
    }

    /// Parses the file's text: exactly a `monotonic` and a `boottime` line
    /// of `<clock-id> <offset-secs> <offset-nanosecs>`, in that order.
    pub fn parse(text: &str) -> Result<Offsets, String> {
        let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split_whitespace().collect()).collect();
        let field = |line: &[&str], name: &str| -> Result<Offset, String> {
            match line {
                [n, s, ns] if *n == name => Ok(Offset {
                    secs: s.parse().map_err(|_| format!("{name} seconds {s:?} are not an integer"))?,
                    nanos: ns.parse().map_err(|_| format!("{name} nanoseconds {ns:?} are not an integer"))?,
                }),
                _ => Err(format!("expected a line `{name} <secs> <nanosecs>`, got {line:?}")),
            }
        };
        match lines.as_slice() {
            [m, b] => Ok(Offsets { monotonic: field(m, "monotonic")?, boottime: field(b, "boottime")? }),
            _ => Err(format!("expected two lines, got {}: {text:?}", lines.len())),
        }
    }
}

/// `/proc/<pid>/timens_offsets`.
pub fn offsets_path(proc: Proc) -> String {
    match proc {
        Proc::Myself => "/proc/self/timens_offsets".into(),
        Proc::Pid(pid) => format!("/proc/{pid}/timens_offsets"),
    }
}

/// Reads and parses `proc`'s timens_offsets; a file that does not parse
/// fails the case (its format is documented).
pub fn read_offsets(proc: Proc) -> Result<Offsets, CaseError> {
    let path = offsets_path(proc);
    let text = std::fs::read_to_string(&path)?;
    Offsets::parse(&text).map_err(|e| CaseError::fail(format!("{path}: {e}")))
}

/// `/proc/[pid]/timens_offsets` open for writing. Opening is a plain step
/// (its failure is a broken setup); each [`OffsetsFile::write`] is one
/// write(2), whose errno is the kernel's answer.
#[derive(Debug)]
pub struct OffsetsFile {
    file: File,
    path: String,
}

impl OffsetsFile {
    /// Opens `proc`'s timens_offsets write-only.
    pub fn open(proc: Proc) -> Result<OffsetsFile, SysError> {
        let path = offsets_path(proc);
        let file = OpenOptions::new().write(true).open(&path).op(Op::Plumbing("open /proc/[pid]/timens_offsets for writing"))?;
        Ok(OffsetsFile { file, path })
    }

    /// Writes `text` in one write(2) (the kernel takes records only from
    /// the start of the file, and its write handler leaves the file
    /// position there); returns the bytes written.
    pub fn write(&mut self, text: &str) -> Result<usize, Errno> {
        use std::io::Write;
        self.file.write(text.as_bytes()).map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
    }

    /// Writes `text` whole, failing the case on an error or short write.
    pub fn write_all(&mut self, text: &str) -> Result<(), CaseError> {
        let n = self.write(text)?;
        if n != text.len() {
            return Err(CaseError::fail(format!("write of {text:?} to {} wrote {n} of {} bytes", self.path, text.len())));
        }
        Ok(())
    }

    /// The path it was opened at.
    pub fn path(&self) -> &str {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn bounded_sleep_refuses_a_multi_threaded_caller() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || rx.recv());
        // A target a day ahead: were it not refused, the test would hang.
        let far = gettime_syscall(Clock::Monotonic).unwrap() + 86_400 * NANOS_PER_SEC;
        let refused = nanosleep_until(Clock::Monotonic, far, Duration::from_secs(3600)).expect_err("two threads run");
        assert_eq!(refused.outcome, crate::case::Outcome::Broken);
        assert!(refused.message.contains("single-threaded caller"), "{}", refused.message);
        tx.send(()).unwrap();
        other.join().unwrap().unwrap();
    }
}
