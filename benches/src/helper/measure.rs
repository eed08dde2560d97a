//! The measuring itself, run inside the helper: the timed loops (a null
//! syscall, clone + _exit + waitid, unshare in fresh children, setns
//! between two holders) and the observation of the release backlog through
//! the namespace limits (drain, burst).

use std::time::{Duration, Instant};

use harness::case::{CaseError, Outcome};
use harness::error::SysError;
use harness::flags::NsFlags;
use harness::observe::LimitObserver;
use harness::peer::{self, CloneCall, ExitingChild, Peer, Spawn};
use harness::{ns, userns, Kind, NsEntry, NsFd};
use nix::unistd::{getegid, geteuid};
use serde::{Deserialize, Serialize};

use crate::ops::Operation;

/// Calls a repeated-unshare child makes before a fresh child takes over,
/// for every kind (the floor's REPEAT_CHUNK): what a call costs grows with
/// the namespaces the child made before it (mnt: 50 µs a call over 16
/// calls, 60 µs over 300, here), so a figure must not depend on how many
/// iterations criterion puts in a sample, which depends on the machine.
const REPEAT_CHUNK: u64 = 32;

/// The same for user namespaces: the kernel stops at 32 levels (ENOSPC),
/// and the helper may itself be one level down (the floor's USER_NEST_CHUNK).
const USER_NEST_CHUNK: u64 = 24;

/// setns calls per timed batch (the floor's SETNS_BATCH).
const SETNS_BATCH: u64 = 100;

/// Longest wait for a teardown backlog between benchmarks.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// Time a request took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measured {
    /// What criterion gets, ns. For the null syscall the loop's time; for
    /// setns, timed in batches of 100, the median batch's time per call ×
    /// the iterations; for the operations timed call by call (clone,
    /// unshare) the median call × the iterations: a call (or batch) that
    /// an interrupt or another namespace's deferred teardown lands in counts
    /// as one, not as its length. That is the statistic the floor reports
    /// (benches/README.md, "The floor").
    pub measured_ns: u64,
    /// For the operations timed call by call: the calls' summed time, ns
    /// (their mean is this over the iterations).
    #[serde(default)]
    pub summed_ns: Option<u64>,
    /// Wall time of the whole request, ns (includes untimed set-up).
    pub wall_ns: u64,
    /// For clones: the part until clone returned, summed, ns.
    pub create_ns: Option<u64>,
    /// For clones: exit and reap, summed, ns.
    pub reap_ns: Option<u64>,
}

/// Result of draining the net or ipc teardown backlog.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Drained {
    /// Time until the backlog was gone, ms.
    pub ms: f64,
    /// False if the deadline passed first.
    pub complete: bool,
}

/// One burst of namespace creations and its aftermath.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Burst {
    /// Creations (clone + _exit + waitid) per second during the burst.
    pub per_second: f64,
    /// Namespaces still pending release when the burst ended.
    pub pending: u64,
    /// Time from the end of the burst until none was pending, ms.
    pub drain_ms: f64,
    /// False if the drain deadline passed first.
    pub drained: bool,
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos() as u64
}

/// The median of `calls` (ns; the lower middle one for an even count).
fn median_call(calls: &mut [u64]) -> u64 {
    if calls.is_empty() {
        return 0;
    }
    let mid = (calls.len() - 1) / 2;
    *calls.select_nth_unstable(mid).1
}

/// What criterion gets for `calls` timed one by one (see [`Measured`]).
fn per_call(mut calls: Vec<u64>) -> Measured {
    let summed = calls.iter().sum();
    let n = calls.len() as u64;
    Measured { measured_ns: median_call(&mut calls) * n, summed_ns: Some(summed), ..Measured::default() }
}

/// Runs `op` `iters` times and times it (what a `Measure` request asks).
pub(super) fn measure(op: Operation, iters: u64) -> Result<Measured, CaseError> {
    let wall = Instant::now();
    let mut m = match op {
        Operation::NullSyscall => {
            let t = Instant::now();
            for _ in 0..iters {
                std::hint::black_box(nix::unistd::getppid());
            }
            Measured { measured_ns: nanos(t.elapsed()), ..Measured::default() }
        }
        // clone(2) or clone3(2) by name: `clone/<kind>` measures clone,
        // and clone3 for time only because clone(2) cannot carry
        // CLONE_NEWTIME (the unshare path is `unshare_fresh/time`).
        Operation::Clone { flags, clone3 } => clone_loop(flags, if clone3 { CloneCall::Clone3 } else { CloneCall::Clone }, iters)?,
        Operation::UnshareFresh { kind } => {
            let mut calls = Vec::with_capacity(iters as usize);
            for _ in 0..iters {
                calls.extend(peer::timed_in_child(move || unshare_times(kind, 1))?);
            }
            per_call(calls)
        }
        Operation::UnshareRepeated { kind } => {
            let chunk = if kind == Kind::User { USER_NEST_CHUNK } else { REPEAT_CHUNK };
            let (mut left, mut calls) = (iters, Vec::with_capacity(iters as usize));
            while left > 0 {
                let n = left.min(chunk);
                calls.extend(peer::timed_in_child(move || unshare_times(kind, n))?);
                left -= n;
            }
            per_call(calls)
        }
        Operation::SetnsToggle { kind } => Measured { measured_ns: setns_toggle(kind, iters)?, ..Measured::default() },
    };
    m.wall_ns = nanos(wall.elapsed());
    Ok(m)
}

/// clone + _exit + waitid, `iters` times, each call timed, split at
/// clone's return (the parts are summed).
fn clone_loop(flags: NsFlags, call: CloneCall, iters: u64) -> Result<Measured, CaseError> {
    let (mut create, mut reap) = (Duration::ZERO, Duration::ZERO);
    let mut calls = Vec::with_capacity(iters as usize);
    for _ in 0..iters {
        let child = ExitingChild::run(flags, call)?;
        create += child.created;
        reap += child.total - child.created;
        calls.push(nanos(child.total));
    }
    Ok(Measured { create_ns: Some(nanos(create)), reap_ns: Some(nanos(reap)), ..per_call(calls) })
}

/// In a fresh child: `n` × unshare(kind), each call timed (ns). Between two
/// user namespaces the maps are written, untimed.
fn unshare_times(kind: Kind, n: u64) -> Result<Vec<u64>, SysError> {
    // Warm-up: the first syscall of a fresh child pays first-touch page
    // faults (2-18 µs for unshare(0) here, 0.13 µs afterwards). It runs the
    // very code the timed calls run, `ns::timed_unshare` for NsFlags: each
    // code page a child executes first costs it a fault, and warming up
    // another instance of a generic wrapper (`ns::unshare` for Kind) left
    // one fault in every timed call, 0.3-0.9 µs on a 3 µs unshare.
    // The vector for the timings is allocated and written first: a first
    // write to a page the child shares with its parent copies the page,
    // and that is better done before the warm-up than between it and the
    // timed call.
    let mut calls = Vec::with_capacity(n as usize);
    calls.push(0);
    calls.clear();
    ns::timed_unshare(NsFlags::EMPTY)?;
    for _ in 0..n {
        let (uid, gid) = (geteuid().as_raw(), getegid().as_raw());
        calls.push(ns::timed_unshare(kind.flag())?);
        if kind == Kind::User {
            userns::map_self_as_root(uid, gid)?;
        }
    }
    Ok(calls)
}

/// A peer holding a new namespace of `kind` until dropped, at
/// [`NsEntry::of_new_ns`]`(kind)`: how it was made is not what setns
/// measures, so it is made harness's one way ([`Spawn::new_ns`]).
fn holder(kind: Kind) -> Result<Peer, CaseError> {
    let mut p = Spawn::new_ns(kind).spawn(|ch| {
        ch.ready()?;
        // Parent's end-of-file (or its go) ends the holder.
        let _ = ch.wait();
        Ok(())
    })?;
    p.wait_ready()?;
    Ok(p)
}

fn setns_toggle(kind: Kind, iters: u64) -> Result<u64, CaseError> {
    let (a, b) = (holder(kind)?, holder(kind)?);
    let (pa, pb) = (a.proc(), b.proc());
    let ns = peer::in_child(move || {
        let entry = NsEntry::of_new_ns(kind);
        let fds = [NsFd::open_entry(pa, entry)?, NsFd::open_entry(pb, entry)?];
        let flags = kind.flag();
        // Warm-up (as long as the floor's), and a check that both are usable.
        for i in 0..2 * SETNS_BATCH {
            fds[(i % 2) as usize].setns(flags)?;
        }
        // Timed in batches, as the floor does: a batch that a timer tick or
        // another task lands in is one batch, not its length.
        let mut batches = Vec::with_capacity(iters.div_ceil(SETNS_BATCH) as usize);
        let mut done = 0;
        while done < iters {
            let n = SETNS_BATCH.min(iters - done);
            let t = Instant::now();
            for i in 0..n {
                fds[(i % 2) as usize].setns(flags)?;
            }
            batches.push((nanos(t.elapsed()), n));
            done += n;
        }
        Ok(batches)
    });
    // Dropping the holders kills and reaps them.
    drop((a, b));
    Ok(median_of_batches(&ns?) * iters)
}

/// The median per-call time (ns) over batches of (time, calls), the full
/// batches only when there is one (a short last batch is noisier).
fn median_of_batches(batches: &[(u64, u64)]) -> u64 {
    let full = batches.iter().any(|&(_, n)| n == SETNS_BATCH);
    let mut per_call: Vec<u64> = batches.iter().filter(|&&(_, n)| !full || n == SETNS_BATCH).map(|&(t, n)| t / n.max(1)).collect();
    median_call(&mut per_call)
}

/// Whether a wait on the observer ended by its deadline rather than by
/// an error of the machinery.
fn timed_out(e: &CaseError) -> bool {
    e.outcome == Outcome::Fail && e.errno().is_none()
}

/// Polls (with the harness's limit observer, limit 1, in the caller's user
/// namespace) until a namespace of `kind` can be created again: until the
/// count, which includes those pending release, is back to zero. Returns
/// (ms since `since`, whether it happened before the deadline).
fn wait_until_none_counted(kind: Kind, since: Instant, deadline: Duration) -> Result<(f64, bool), CaseError> {
    let mut observer = LimitObserver::here(kind, 1)?.with_deadline(deadline);
    let complete = match observer.wait_released("the teardown backlog") {
        Ok(_) => true,
        Err(e) if timed_out(&e) => false,
        Err(e) => return Err(e),
    };
    let ms = since.elapsed().as_secs_f64() * 1e3;
    observer.drop_holders()?;
    Ok((ms, complete))
}

/// Drains the backlog of `kind` left by earlier benchmarks. In a fresh
/// user namespace (so that its counts are ours alone) a marker namespace
/// is created and released: the kernel frees released namespaces in order
/// (one `cleanup_net`/`free_ipc` work item takes the whole list each time),
/// so once the marker is freed, so is every namespace released before it.
pub(super) fn drain(kind: Kind) -> Result<Drained, CaseError> {
    userns::enter_fresh()?;
    let start = Instant::now();
    // The marker: created and released by a child (its exit queues it).
    peer::in_child(move || Ok(ns::unshare(kind)?))?;
    let (ms, complete) = wait_until_none_counted(kind, start, DRAIN_DEADLINE)?;
    Ok(Drained { ms, complete })
}

/// How many namespaces of `kind` are counted against the caller's user
/// namespace, none being alive: the smallest limit that still lets one more
/// be created, minus one. The limit doubles until a creation succeeds, then
/// bisects; only successful probes create a namespace (which then joins the
/// backlog), so the answer and the backlog are off by at most the number of
/// bisection steps.
fn count_pending(kind: Kind, upper: u64) -> Result<u64, CaseError> {
    // A probe: one more create at `limit` works iff the count is below it.
    // The observer's holder is released when the observer goes.
    let probe = |limit: u64| -> Result<bool, CaseError> { LimitObserver::here(kind, limit)?.try_hold() };
    // Invariant: a creation fails at limit `lo - 1` (count >= lo - 1) and succeeds at `hi`.
    let mut hi = 1u64;
    while !probe(hi)? {
        if hi >= upper {
            return Ok(upper);
        }
        hi = (hi * 2).min(upper);
    }
    let mut lo = hi / 2 + 1;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if probe(mid)? {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Ok(lo - 1)
}

/// A burst of `count` sequential clone(kind) + _exit + waitid in a fresh
/// user namespace, then the pending count and the time to drain it, both
/// observed through the namespace limit (ENOSPC) of that user namespace.
pub(super) fn burst(kind: Kind, count: u64) -> Result<Burst, CaseError> {
    let upper = count + 1024;
    // A fresh user namespace where our creations alone count, limit above the burst.
    let _observer = LimitObserver::enter(kind, upper)?;
    let t = Instant::now();
    clone_loop(kind.flag(), CloneCall::Clone, count)?;
    let elapsed = t.elapsed();
    let end = Instant::now();
    let pending = count_pending(kind, upper)?;
    // With nothing pending the backlog is drained already; otherwise the
    // wait also covers the few namespaces the probes created.
    let (drain_ms, drained) = if pending == 0 { (0.0, true) } else { wait_until_none_counted(kind, end, Duration::from_secs(30))? };
    Ok(Burst { per_second: count as f64 / elapsed.as_secs_f64(), pending, drain_ms, drained })
}
