//! namespaces(7), "The /proc/sys/user directory": per-user-namespace limits
//! on how many namespaces of each type a user may create (L1-L7), the
//! error paths that must not leak a count, and the nesting depth of user
//! namespaces (user_namespaces(7)).
//!
//! Every write goes to the table of a user namespace the case creates for
//! itself: the suite's own table (the host's, when the suite is root) is
//! only ever read.
//!
//! One part per sub-claim: `files` (L1), `write_permission` (L2),
//! `per_user_namespace` (L3), `per_uid` (L4), `uid_0` (L5), `enospc` (L6),
//! `ancestors` (L7), `error_paths` (L6 and L7 on refused creates) and
//! `nesting_depth`; this module holds the case lists and the plumbing they
//! share (creating and holding namespaces against a limit).

mod ancestors;
mod enospc;
mod error_paths;
mod files;
mod nesting_depth;
mod per_uid;
mod per_user_namespace;
mod uid_0;
mod write_permission;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use harness::known::CLONE3_NEWTIME_EINVAL;
use harness::limits;
use harness::observe::{release_deadline, Holder, RELEASE_DEADLINE};
use harness::peer::Spawn;
use harness::poll::{poll_until, Pause};
use harness::userns;
use harness::{expect_errno, Case, CaseError, CaseResult, Errno, Kind, Privilege, Requires, Setup};

use crate::common::{must_fail, must_fail_with};
use ancestors::ancestors_charged;
use enospc::enospc_at_limit;
use error_paths::no_leak_on_error;
use files::{distinct_values, file_reads, fresh_value};
use nesting_depth::{not_in_initial_userns, user_nesting_depth};
use per_uid::{no_spare_ids, per_uid};
use per_user_namespace::sibling_unaffected;
use uid_0::uid_0_included;
use write_permission::write_permission;

/// The largest value a limit takes, and the value of every limit in a new
/// user namespace (`create_user_ns()` in kernel/user_namespace.c).
const INT_MAX: u64 = i32::MAX as u64;

/// How many namespaces the cases hold against a limit.
const HELD: u64 = 2;

/// User namespace levels the ancestor cases nest (L7: at least three).
const LEVELS: usize = 4;

/// How deep user namespaces nest below the initial one: `create_user_ns()`
/// refuses a parent whose level is above 32 (since 3.11), so 33 levels can
/// be created; user_namespaces(7) speaks of "32 nested levels".
const NESTING_DEPTH: u32 = 33;

/// The uids (and gids) mapped into the per-uid case's user namespace.
const PER_UID: [u32; 3] = [0, 1, 2];

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        let since = kind.info().max_sysctl_since;
        let sysctl = kind.info().max_sysctl;
        // The case process enters a user namespace of its own (as root a
        // privileged create); a user namespace created from inside it is an
        // unprivileged create, which the environment may forbid.
        let req = move || Requires::kinds(&[Kind::User, kind]).kernel(since.major, since.minor).privilege(Privilege::Admin);
        let nested = move || req().user_namespaces();
        let nested_if_user = move || if kind == Kind::User { nested() } else { req() };
        out.push(
            Case::new(
                format!("limits.file.{kind}"),
                &["L1"],
                format!("/proc/sys/user/{sysctl} exists and reads as a number in 0..=INT_MAX"),
                move || file_reads(kind),
            )
            .requires(Requires::kinds(&[kind]).kernel(since.major, since.minor)),
        );
        out.push(
            Case::new(
                format!("limits.fresh_userns_value.{kind}"),
                &["L1"],
                format!("in a new user namespace {sysctl} reads INT_MAX, its maximum: above it or below 0 a write is EINVAL"),
                move || fresh_value(kind),
            )
            .requires(req()),
        );
        out.push(
            Case::new(
                format!("limits.write_needs_cap_sys_resource.{kind}"),
                &["L2"],
                format!(
                    "{sysctl} is written only with CAP_SYS_RESOURCE in the owning user namespace: not after dropping it, not by a nested user namespace's root (which writes its own)"
                ),
                move || write_permission(kind, true),
            )
            .requires(nested()),
        );
        out.push(
            Case::new(
                format!("limits.sibling_unaffected.{kind}"),
                &["L3"],
                format!("{sysctl} set to 0 in one user namespace refuses creates there, while a sibling reads its own INT_MAX and creates"),
                move || sibling_unaffected(kind, true),
            )
            .requires(nested()),
        );
        out.push(
            Case::new(
                format!("limits.per_uid.{kind}"),
                &["L4", "L7"],
                format!(
                    "uids 0, 1 and 2 of one user namespace each create {HELD} {kind} namespaces (in a user namespace of their own) against {sysctl}={HELD}, the next is ENOSPC"
                ),
                move || per_uid(kind, PER_UID),
            )
            .requires(nested().privilege(Privilege::Root).probe(no_spare_ids)),
        );
        out.push(
            Case::new(
                format!("limits.uid_0_included.{kind}"),
                &["L5"],
                format!("uid 0 with every capability in the user namespace is held to {sysctl} like any user"),
                move || uid_0_included(kind, 0),
            )
            .requires(nested_if_user()),
        );
        out.push(
            Case::new(
                format!("limits.enospc_at_limit.{kind}"),
                &["L6"],
                format!("below {sysctl} clone, clone3 and unshare of {} succeed; at it each fails with ENOSPC", kind.info().flag_name),
                move || enospc_at_limit(kind, 0),
            )
            .requires(nested_if_user())
            .known_deviation_if(kind == Kind::Time, &CLONE3_NEWTIME_EINVAL),
        );
        out.push(
            Case::new(
                format!("limits.ancestors_charged.{kind}"),
                &["L7"],
                format!(
                    "{kind} namespaces created {} user namespace levels down count against {sysctl} of every level, each other level raised to INT_MAX",
                    LEVELS - 1
                ),
                move || ancestors_charged(kind, 0),
            )
            .requires(nested()),
        );
        out.push(
            Case::new(
                format!("limits.no_leak_on_error.{kind}"),
                &["L6", "L7"],
                format!(
                    "creates of {kind} namespaces refused with EPERM or ENOSPC (at an ancestor's limit) leave the counts where they were"
                ),
                move || no_leak_on_error(kind, false),
            )
            .requires(nested())
            .known_deviation_if(kind == Kind::Time, &CLONE3_NEWTIME_EINVAL),
        );
    }
    out.push(
        Case::new(
            "limits.distinct_values",
            &["L1"],
            "distinct values written to every /proc/sys/user file of a new user namespace each read back (the 5.6 table shift, eeec26d5da82)",
            || distinct_values(0),
        )
        .requires(Requires::kinds(&[Kind::User]).kernel(4, 9).privilege(Privilege::Admin)),
    );
    out.push(
        Case::new(
            "limits.user_nesting_depth",
            &["L6"],
            format!(
                "user namespaces nest {NESTING_DEPTH} levels below the initial one; one more is refused by unshare and clone with ENOSPC (EUSERS before 4.9)"
            ),
            || user_nesting_depth(NESTING_DEPTH),
        )
        .requires(Requires::kinds(&[Kind::User]).user_namespaces().probe(not_in_initial_userns)),
    );
    out
}

/// The limit cases run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    let mut out = Vec::new();
    for kind in [Kind::Uts, Kind::Net, Kind::Pid, Kind::User, Kind::Time] {
        let since = kind.info().max_sysctl_since;
        let req =
            move || Requires::kinds(&[Kind::User, kind]).kernel(since.major, since.minor).privilege(Privilege::Admin).user_namespaces();
        out.push(
            Case::new(
                format!("sabotage.limits.enospc_at_limit.{kind}"),
                &["L6"],
                format!("the {kind} limit is set one above the namespaces held: ENOSPC must not be seen"),
                move || must_fail(enospc_at_limit(kind, 1)),
            )
            .requires(req()),
        );
        out.push(
            Case::new(
                format!("sabotage.limits.ancestors_charged.{kind}"),
                &["L7"],
                format!("the {kind} limit of the level under test is raised by one: the create past it must succeed"),
                move || must_fail(ancestors_charged(kind, 1)),
            )
            .requires(req()),
        );
        out.push(
            Case::new(
                format!("sabotage.limits.write_needs_cap_sys_resource.{kind}"),
                &["L2"],
                format!("the writer keeps CAP_SYS_RESOURCE: its open of {} for writing must succeed", kind.info().max_sysctl),
                move || {
                    must_fail_with(
                        write_permission(kind, false),
                        &format!("opening {} for writing without CAP_SYS_RESOURCE", limits::path(kind)),
                    )
                },
            )
            .requires(req()),
        );
        out.push(
            Case::new(
                format!("sabotage.limits.sibling_unaffected.{kind}"),
                &["L3"],
                format!("the {kind} limit 0 is written in the same user namespace as the reader, not a sibling: the reader must see 0"),
                move || must_fail_with(sibling_unaffected(kind, false), &format!("{} of a sibling user namespace", limits::path(kind))),
            )
            .requires(req()),
        );
        out.push(
            Case::new(
                format!("sabotage.limits.uid_0_included.{kind}"),
                &["L5"],
                format!("uid 0's {} is one above what it holds: its next create must succeed", kind.info().max_sysctl),
                move || must_fail_with(uid_0_included(kind, 1), "uid 0 with every capability, at the limit"),
            )
            .requires(req()),
        );
        out.push(
            Case::new(
                format!("sabotage.limits.per_uid.{kind}"),
                &["L4"],
                format!("the three creators of {kind} namespaces are one uid: the second must hit its limit"),
                move || must_fail(per_uid(kind, [1, 1, 1])),
            )
            .requires(req().privilege(Privilege::Root).probe(no_spare_ids)),
        );
    }
    out.push(
        Case::new(
            "sabotage.limits.no_leak_on_error.uts",
            &["L6", "L7"],
            "one uts namespace stays held, as a leaked count would: the refill must come up short (after the release deadline)",
            || must_fail(no_leak_on_error(Kind::Uts, true)),
        )
        .requires(Requires::kinds(&[Kind::User, Kind::Uts]).kernel(4, 9).privilege(Privilege::Admin).user_namespaces())
        .timeout(RELEASE_DEADLINE * 3),
    );
    out.push(
        Case::new(
            "sabotage.limits.distinct_values",
            &["L1"],
            "every /proc/sys/user file is read back through its neighbour, as a shifted table would show: the values must differ",
            || must_fail_with(distinct_values(1), "read back after distinct writes to every file"),
        )
        .requires(Requires::kinds(&[Kind::User]).kernel(4, 9).privilege(Privilege::Admin)),
    );
    out.push(
        Case::new(
            "sabotage.limits.user_nesting_depth",
            &["L6"],
            "the nesting depth is expected to be user_namespaces(7)'s 32: the kernel's 33 must be seen as different",
            || must_fail(user_nesting_depth(32)),
        )
        .requires(Requires::kinds(&[Kind::User]).user_namespaces().probe(not_in_initial_userns)),
    );
    out
}

// ---- plumbing shared by the bodies ---------------------------------------

/// Moves the case process into a new user namespace of its own, where it is
/// uid 0 with every capability: the only table the cases write.
fn own_userns() -> CaseResult {
    userns::enter_fresh().setup("entering a user namespace of the case's own")
}

/// Sets `kind`'s limit in the caller's (own) user namespace. No guard: the
/// namespace is the case's and goes with it.
fn set_limit(kind: Kind, value: u64) -> CaseResult {
    limits::write(kind, value).setup(&format!("setting {} to {value} in the case's user namespace", kind.info().max_sysctl))
}

/// A way of creating a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Create {
    Clone,
    Clone3,
    Unshare,
}

impl std::fmt::Display for Create {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Create::Clone => "clone",
            Create::Clone3 => "clone3",
            Create::Unshare => "unshare",
        })
    }
}

/// The calls that create a `kind` namespace: clone(2) cannot take
/// CLONE_NEWTIME (it shares its bit with CSIGNAL).
fn ways(kind: Kind) -> Vec<Create> {
    if kind.info().legacy_clone {
        vec![Create::Clone, Create::Clone3, Create::Unshare]
    } else {
        vec![Create::Clone3, Create::Unshare]
    }
}

/// Set in a case process once clone3(CLONE_NEWTIME) was refused with
/// EINVAL, before any count was taken (the known deviation
/// [`CLONE3_NEWTIME_EINVAL`]): the case carries on with unshare, so that
/// its limit checks stay strict, and then fails at the deviation's check
/// ([`clone3_time_verdict`]).
static CLONE3_TIME_REFUSED: AtomicBool = AtomicBool::new(false);

/// Whether `errno` is clone3 refusing CLONE_NEWTIME; notes it if so.
fn clone3_refuses_time(kind: Kind, way: Create, errno: Errno) -> bool {
    let refused = kind == Kind::Time && way == Create::Clone3 && errno == Errno::EINVAL;
    if refused {
        CLONE3_TIME_REFUSED.store(true, Ordering::Relaxed);
    }
    refused
}

/// The end of a case that creates time namespaces with clone3: fails at
/// [`CLONE3_NEWTIME_EINVAL`]'s check if any such create was refused with EINVAL.
fn clone3_time_verdict() -> CaseResult {
    if CLONE3_TIME_REFUSED.load(Ordering::Relaxed) {
        return Err(CaseError::deviation(&CLONE3_NEWTIME_EINVAL, "the limit checks passed with unshare(CLONE_NEWTIME) in its place"));
    }
    Ok(())
}

/// Creates one `kind` namespace by `way` in a new process that holds it
/// until dropped (dropping kills it). `Ok(Err(errno))`: the kernel refused.
fn hold(kind: Kind, way: Create) -> Result<Result<Holder, Errno>, CaseError> {
    let flag = kind.flag();
    Holder::spawn(&match way {
        Create::Clone => Spawn::clone(flag),
        Create::Clone3 => Spawn::clone3(flag),
        Create::Unshare => Spawn::unshare(flag),
    })
}

/// Holds `n` namespaces of `kind` (below the limit), each create retried
/// while it is refused with ENOSPC until [`release_deadline`]: counts of
/// namespaces released just before (net, ipc, user) are freed
/// asynchronously. clone3(CLONE_NEWTIME) where the kernel refuses it
/// outright is replaced by unshare, so that the count still grows by `n`.
#[track_caller]
fn fill(kind: Kind, way: Create, n: u64, what: &str) -> Result<Vec<Holder>, CaseError> {
    let loc = std::panic::Location::caller();
    let mut way = way;
    let mut held = Vec::new();
    // Each try creates until `n` are held; ENOSPC ends it to be tried again
    // after the pause, until the release deadline.
    let refused = |way: Create, held: usize, e: Errno| {
        CaseError::at(
            harness::Outcome::Fail,
            format!("{what}: {way} of {kind} namespace {} of {n}: expected success below the limit, got {e:?}", held + 1),
            Some(e),
            loc,
        )
    };
    let filled = poll_until(release_deadline(), Pause::doubling(Duration::from_micros(50), Duration::from_millis(5)), || {
        while (held.len() as u64) < n {
            match hold(kind, way)? {
                Ok(peer) => held.push(peer),
                Err(e) if clone3_refuses_time(kind, way, e) => way = Create::Unshare,
                Err(Errno::ENOSPC) => return Ok(false),
                Err(e) => return Err(refused(way, held.len(), e)),
            }
        }
        Ok(true)
    })?;
    match filled {
        Some(_) => Ok(held),
        None => Err(refused(way, held.len(), Errno::ENOSPC)),
    }
}

/// Fails unless a create by `way` is refused with ENOSPC now.
fn expect_full(kind: Kind, way: Create, what: &str) -> CaseResult {
    match hold(kind, way)? {
        Err(e) if clone3_refuses_time(kind, way, e) => Ok(()),
        other => {
            expect_errno!(other, Errno::ENOSPC, "{what}: {way} of a {kind} namespace");
            Ok(())
        }
    }
}
