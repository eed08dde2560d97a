//! time_namespaces(7): the offsets of CLOCK_MONOTONIC and CLOCK_BOOTTIME
//! belong to the time namespace (T2.time). Written to
//! /proc/[pid]/timens_offsets after unshare(CLONE_NEWTIME), they apply to
//! the children that enter it and to setns(2) joiners, not to the creator,
//! the outside, or a sibling namespace; CLOCK_REALTIME is not offset.

use std::fs;

use harness::peer::{in_child, Spawn};
use harness::{check, expect_errno, Case, CaseResult, Errno, Kind, NsFd, NsFlags, Privilege, Proc, Requires};
use nix::time::{clock_gettime, ClockId};
use serde::{Deserialize, Serialize};

use crate::common::{in_new_ns, must_fail_with};

/// The offsets written, in seconds: distinct, so a swap is seen.
const MONOTONIC_OFFSET: i64 = 100_000;
const BOOTTIME_OFFSET: i64 = 200_000;
/// How far two readings of one clock taken by cooperating processes may be
/// apart: generous for slow emulated machines, far below the offsets.
const SLACK: f64 = 10.0;

fn requires() -> Requires {
    Requires::kinds(&[Kind::Time]).privilege(Privilege::Admin)
}

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    vec![Case::new(
        "isolation.time.offsets",
        &["T2.time"],
        "CLOCK_MONOTONIC and CLOCK_BOOTTIME offsets written to timens_offsets apply to a child in the new time \
         namespace and to a setns() joiner, not to the creator, the outside or a sibling; CLOCK_REALTIME is shared",
        || offsets_apply(true),
    )
    .requires(requires())]
}

/// The time cases run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    vec![Case::new(
        "sabotage.isolation.time.offsets",
        &["T2.time"],
        "no offsets are written: the child's clocks must not be offset",
        || must_fail_with(offsets_apply(false), "CLOCK_MONOTONIC of a child"),
    )
    .requires(requires())]
}

/// One reading of the three clocks, in seconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Clocks {
    monotonic: f64,
    boottime: f64,
    realtime: f64,
}

impl Clocks {
    fn now() -> Result<Clocks, harness::CaseError> {
        let read = |id| -> Result<f64, harness::CaseError> {
            let t = clock_gettime(id)?;
            Ok(t.tv_sec() as f64 + t.tv_nsec() as f64 * 1e-9)
        };
        Ok(Clocks {
            monotonic: read(ClockId::CLOCK_MONOTONIC)?,
            boottime: read(ClockId::CLOCK_BOOTTIME)?,
            realtime: read(ClockId::CLOCK_REALTIME)?,
        })
    }

    /// Fails unless `self` is `reference` shifted by the given offsets.
    fn check_offset(&self, reference: &Clocks, monotonic: i64, boottime: i64, who: &str) -> CaseResult {
        for (name, got, base, offset) in [
            ("CLOCK_MONOTONIC", self.monotonic, reference.monotonic, monotonic),
            ("CLOCK_BOOTTIME", self.boottime, reference.boottime, boottime),
            ("CLOCK_REALTIME", self.realtime, reference.realtime, 0),
        ] {
            let shift = got - base;
            check!(
                (shift - offset as f64).abs() < SLACK,
                "{name} of {who} is {got:.3} s, {shift:.3} s from the outside's {base:.3} s: expected an offset of {offset} s"
            );
        }
        Ok(())
    }
}

/// The offsets as the file shows them: (clock name, seconds, nanoseconds).
fn read_offsets(proc: Proc) -> Result<Vec<(String, i64, i64)>, harness::CaseError> {
    let path = match proc {
        Proc::Myself => "/proc/self/timens_offsets".to_string(),
        Proc::Pid(p) => format!("/proc/{p}/timens_offsets"),
    };
    let text = fs::read_to_string(&path)?;
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                [name, s, ns] => Ok((name.to_string(), s.parse().unwrap_or(i64::MIN), ns.parse().unwrap_or(i64::MIN))),
                _ => Err(harness::CaseError::fail(format!("line {l:?} of {path} is not `clock secs nanosecs`"))),
            }
        })
        .collect()
}

/// What the creator reports: its clocks before and after its child read
/// theirs, the child's clocks and offsets file, and the child's pid.
type Report = (Clocks, Clocks, Clocks, Vec<(String, i64, i64)>, i32);

/// `write` false is the sabotage: no offsets are written.
fn offsets_apply(write: bool) -> CaseResult {
    let mut creator = Spawn::unshare(Kind::Time.flag()).spawn(|ch| {
        if write {
            fs::write("/proc/self/timens_offsets", format!("monotonic {MONOTONIC_OFFSET} 0\nboottime {BOOTTIME_OFFSET} 0\n"))?;
        }
        let before = Clocks::now()?;
        let mut child = Spawn::fork().spawn(|c| {
            c.send(&(Clocks::now()?, read_offsets(Proc::Myself)?))?;
            c.wait()
        })?;
        let (in_child, offsets): (Clocks, Vec<(String, i64, i64)>) = child.recv()?;
        let after = Clocks::now()?;
        // time_namespaces(7): the offsets are fixed once a process is in
        // the namespace.
        expect_errno!(
            fs::write("/proc/self/timens_offsets", "monotonic 1 0\n"),
            Errno::EACCES,
            "writing timens_offsets after a process entered the namespace"
        );
        ch.send(&(before, after, in_child, offsets, child.pid().as_raw()))?;
        ch.wait()?;
        child.go()?;
        child.join()
    })?;
    let (before, after, child_clocks, offsets, child): Report = creator.recv()?;
    let outside = Clocks::now()?;
    let joined = in_child(|| {
        NsFd::open(Proc::Pid(child), Kind::Time)?.setns(Kind::Time.flag())?;
        Clocks::now()
    })?;
    let outside_after_join = Clocks::now()?;
    let sibling = in_new_ns(Kind::Time, NsFlags::EMPTY, Clocks::now)?;
    creator.go()?;
    creator.join()?;
    child_clocks.check_offset(&outside, MONOTONIC_OFFSET, BOOTTIME_OFFSET, "a child in the new time namespace")?;
    check!(
        offsets.contains(&("monotonic".into(), MONOTONIC_OFFSET, 0)) && offsets.contains(&("boottime".into(), BOOTTIME_OFFSET, 0)),
        "timens_offsets read by the child: {offsets:?}"
    );
    joined.check_offset(&outside_after_join, MONOTONIC_OFFSET, BOOTTIME_OFFSET, "a process that joined with setns(CLONE_NEWTIME)")?;
    before.check_offset(&outside, 0, 0, "the creator (before its child)")?;
    after.check_offset(&outside, 0, 0, "the creator (after its child)")?;
    sibling.check_offset(&Clocks::now()?, 0, 0, "a child in a sibling new time namespace")?;
    Ok(())
}
