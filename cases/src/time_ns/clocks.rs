//! M1 on every clock: read in a new time namespace through the vDSO and
//! through clock_gettime(2), each is the outside's reading plus its offset
//! (or by none, for a clock such as CLOCK_REALTIME that follows no
//! offset), to the nanosecond.

use harness::clock::{self, getres, gettime_syscall, gettime_vdso, Clock, Nanos, Offset, Offsets};
use harness::{check, CaseError, CaseResult, Requires};
use serde::{Deserialize, Serialize};

use super::{alarm_clock_absent, bracketed, posix_timers_absent, requires, secs};

/// The `timens.clock.*` cases: [`super::requires_clock`] and a vDSO, since half of
/// each is the reading through it (a process without one would read the
/// system call twice and pass that half unchecked).
pub(super) fn requires_clock_vdso(clock: Clock) -> Requires {
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

pub(super) fn clock_doc(clock: Clock) -> String {
    match clock.offset_by() {
        Some(c) => format!(
            "{} in a new time namespace, through the vDSO and through clock_gettime(2), is the outside's plus the {} offset, to the nanosecond",
            clock.name(),
            c.name()
        ),
        None => format!("{} in a new time namespace, through the vDSO and through clock_gettime(2), is not offset", clock.name()),
    }
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

/// M1: `clock` read in a new time namespace where `written` offsets were
/// written is the outside's reading shifted by `expected`, through both
/// paths. Outside-before <= inside - expected <= outside-after; a coarse
/// clock gets one tick either side (the vDSO's copy of the timekeeper may
/// lag the syscall's by a tick). The cases require a vDSO
/// ([`requires_clock_vdso`]).
pub(super) fn clock_offset(clock: Clock, written: Offsets, expected: Offset) -> CaseResult {
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
