//! namespaces(7), "The /proc/sys/user directory": per-user-namespace limits
//! on how many namespaces of each type a user may create (L1-L7), the
//! error paths that must not leak a count, and the nesting depth of user
//! namespaces (user_namespaces(7)).
//!
//! Every write goes to the table of a user namespace the case creates for
//! itself: the suite's own table (the host's, when the suite is root) is
//! only ever read.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use harness::known::CLONE3_NEWTIME_EINVAL;
use harness::limits;
use harness::observe::{release_deadline, Holder, LimitObserver, RELEASE_DEADLINE};
use harness::peer::{call, Spawn};
use harness::probe::{cap_set, has_cap, Cap, KernelVersion};
use harness::sys;
use harness::userns::{self, IdMap, IdRange, MapFile};
use harness::{check, check_eq, expect_errno, Case, CaseError, CaseResult, Errno, Kind, Privilege, Requires, Setup};

use crate::common::{must_fail, must_fail_with};

/// The largest value a limit takes, and the value of every limit in a new
/// user namespace (`create_user_ns()` in kernel/user_namespace.c).
const INT_MAX: u64 = i32::MAX as u64;

/// How many namespaces the cases hold against a limit.
const HELD: u64 = 2;

/// Failed creates tried on each error path before the count is checked.
const ATTEMPTS: usize = 8;

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
    let start = Instant::now();
    let mut pause = Duration::from_micros(50);
    let mut held = Vec::new();
    while (held.len() as u64) < n {
        match hold(kind, way)? {
            Ok(peer) => held.push(peer),
            Err(e) if clone3_refuses_time(kind, way, e) => way = Create::Unshare,
            Err(Errno::ENOSPC) if start.elapsed() < release_deadline() => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(5));
            }
            Err(e) => {
                return Err(CaseError::at(
                    harness::Outcome::Fail,
                    format!("{what}: {way} of {kind} namespace {} of {n}: expected success below the limit, got {e:?}", held.len() + 1),
                    Some(e),
                    loc,
                ))
            }
        }
    }
    Ok(held)
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

// ---- L1 ------------------------------------------------------------------

fn file_reads(kind: Kind) -> CaseResult {
    let value = limits::read(kind)?;
    check!(value <= INT_MAX, "{} = {value}: above INT_MAX", limits::path(kind));
    Ok(())
}

fn fresh_value(kind: Kind) -> CaseResult {
    own_userns()?;
    check_eq!(limits::read(kind)?, INT_MAX, "{} in a new user namespace", limits::path(kind));
    expect_errno!(limits::write(kind, INT_MAX + 1), Errno::EINVAL, "writing INT_MAX+1 to {}", limits::path(kind));
    let negative = std::fs::write(limits::path(kind), "-1");
    expect_errno!(negative, Errno::EINVAL, "writing -1 to {}", limits::path(kind));
    check_eq!(limits::read(kind)?, INT_MAX, "{} after the refused writes", limits::path(kind));
    limits::write(kind, 0)?;
    check_eq!(limits::read(kind)?, 0, "{} after writing 0", limits::path(kind));
    Ok(())
}

/// Every file of `/proc/sys/user` (the namespace limits and the inotify and
/// fanotify ones of the same table) gets its own value and must read it
/// back: a table whose entries are shifted or shared shows another value.
/// `shift` is the sabotage: each file is read back through the one that
/// many places further in name order.
fn distinct_values(shift: usize) -> CaseResult {
    own_userns()?;
    let mut names: Vec<String> =
        std::fs::read_dir("/proc/sys/user")?.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned())).collect::<Result<_, _>>()?;
    names.sort();
    let running = KernelVersion::running();
    for info in Kind::ALL.iter().map(|k| k.info()).filter(|i| i.max_sysctl_since <= running) {
        check!(names.iter().any(|n| n == info.max_sysctl), "no /proc/sys/user/{} on Linux {running}", info.max_sysctl);
    }
    let value = |i: usize| 1000 + i as u64;
    for (i, name) in names.iter().enumerate() {
        std::fs::write(format!("/proc/sys/user/{name}"), value(i).to_string())?;
    }
    for (i, name) in names.iter().enumerate() {
        let read_through = &names[(i + shift) % names.len()];
        let text = std::fs::read_to_string(format!("/proc/sys/user/{read_through}"))?;
        check_eq!(text.trim(), value(i).to_string(), "/proc/sys/user/{name} read back after distinct writes to every file");
    }
    Ok(())
}

// ---- L2 ------------------------------------------------------------------

/// `drop_cap` false is the sabotage: the writer keeps CAP_SYS_RESOURCE.
fn write_permission(kind: Kind, drop_cap: bool) -> CaseResult {
    own_userns()?;
    let path = limits::path(kind);
    // With CAP_SYS_RESOURCE here, the write works: the control.
    limits::write(kind, 5)?;
    call(&Spawn::fork(), || {
        let opened = OpenOptions::new().write(true).open(&path)?;
        if drop_cap {
            sys::drop_capability(Cap::SYS_RESOURCE.0).setup("dropping CAP_SYS_RESOURCE")?;
            check!(!has_cap(Cap::SYS_RESOURCE), "CAP_SYS_RESOURCE still effective after dropping it");
        } else {
            check!(has_cap(Cap::SYS_RESOURCE), "the sabotaged writer lacks CAP_SYS_RESOURCE");
        }
        expect_errno!(OpenOptions::new().write(true).open(&path), Errno::EACCES, "opening {path} for writing without CAP_SYS_RESOURCE");
        // The permission is checked again at every write(2).
        expect_errno!(
            (&opened).write_all(b"6"),
            Errno::EPERM,
            "write(2) to {path} through an fd opened with CAP_SYS_RESOURCE, after dropping it"
        );
        Ok(())
    })?;
    check_eq!(limits::read(kind)?, 5, "{path} after the refused writes");

    // A nested user namespace's root has CAP_SYS_RESOURCE in its own
    // namespace only: it writes its own table, not ours through an fd.
    let ours = OpenOptions::new().read(true).write(true).open(&path)?;
    let (own_before, own_after, ours_seen): (u64, u64, String) = call(&Spawn::unshare(Kind::User.flag()).map_root(), || {
        check!(has_cap(Cap::SYS_RESOURCE), "no CAP_SYS_RESOURCE in the nested user namespace");
        let before = limits::read(kind)?;
        limits::write(kind, 9)?;
        let after = limits::read(kind)?;
        expect_errno!(
            (&ours).write_all(b"7"),
            Errno::EPERM,
            "write(2) by the nested root to its parent's {path} through an fd opened there"
        );
        let mut buf = [0u8; 32];
        let n = ours.read_at(&mut buf, 0)?;
        Ok((before, after, String::from_utf8_lossy(&buf[..n]).trim().to_string()))
    })?;
    check_eq!(own_before, INT_MAX, "the nested user namespace's own {path} before writing (its own table, not the parent's 5)");
    check_eq!(own_after, 9, "the nested user namespace's own {path} after its root wrote 9");
    check_eq!(ours_seen, "5", "the parent's {path} read by the nested root through the fd");
    check_eq!(limits::read(kind)?, 5, "the parent's {path} after the nested root's writes");
    Ok(())
}

// ---- L3 ------------------------------------------------------------------

/// `siblings` false is the sabotage: the writer and the reader are plain
/// children, both in the case's own user namespace.
fn sibling_unaffected(kind: Kind, siblings: bool) -> CaseResult {
    own_userns()?;
    // Ours differs from a fresh table's INT_MAX and from the first sibling's
    // 0, so a sibling reading either would be seen.
    let ours = 1000;
    set_limit(kind, ours)?;
    let sibling = || if siblings { Spawn::unshare(Kind::User.flag()).map_root() } else { Spawn::fork() };
    let mut first = sibling().spawn(|ch| {
        set_limit(kind, 0)?;
        expect_errno!(hold(kind, Create::Unshare)?, Errno::ENOSPC, "unshare of a {kind} namespace where the limit is 0");
        ch.ready()?;
        ch.wait()
    })?;
    first.wait_ready()?;
    let (seen, created): (u64, Option<i32>) = call(&sibling(), || {
        let created = hold(kind, Create::Unshare)?.err().map(|e| e as i32);
        Ok((limits::read(kind)?, created))
    })?;
    check_eq!(seen, INT_MAX, "{} of a sibling user namespace while the first has 0", limits::path(kind));
    check_eq!(created.map(Errno::from_raw), None, "unshare of a {kind} namespace in the sibling");
    check_eq!(limits::read(kind)?, ours, "{} of the parent user namespace", limits::path(kind));
    first.go()?;
    first.join()
}

// ---- L4 ------------------------------------------------------------------

/// First of three ids mapped in the suite's user namespace (for uid_map and
/// gid_map) to map into the per-uid case's namespace.
fn spare_ids() -> Option<u32> {
    const BASE: u64 = 100_000;
    let covers = |file: &str| {
        std::fs::read_to_string(file).ok().is_some_and(|text| {
            IdMap::parse(&text).is_ok_and(|map| {
                map.0.iter().any(|r| u64::from(r.inside) <= BASE && BASE + PER_UID.len() as u64 <= u64::from(r.inside) + u64::from(r.count))
            })
        })
    };
    (covers("/proc/self/uid_map") && covers("/proc/self/gid_map")).then_some(BASE as u32)
}

fn no_spare_ids() -> Option<String> {
    match spare_ids() {
        Some(_) => None,
        None => Some("ids 100000..100002 are not mapped in the suite's user namespace (needed to map several uids)".into()),
    }
}

/// A user namespace with `PER_UID` mapped (which only a privileged writer
/// can do); in it, each of `uids` creates namespaces through a user
/// namespace of its own (uid 0 may create directly, the others lack
/// CAP_SYS_ADMIN), all charged to its uid here.
fn per_uid(kind: Kind, uids: [u32; 3]) -> CaseResult {
    let base = spare_ids().ok_or_else(|| CaseError::broken("no spare ids (the probe passed)"))?;
    let flags = Kind::User.flag() | kind.flag();
    let mut ns = Spawn::unshare(Kind::User.flag()).spawn(move |ch| {
        // In the new user namespace; the maps come from outside.
        ch.ready()?;
        ch.wait()?;
        userns::become_user(0, 0)?;
        set_limit(kind, HELD)?;
        let mut held = Vec::new();
        for uid in uids {
            let creator = Spawn::unshare(flags).as_user(uid, uid);
            for i in 1..=HELD {
                match Holder::spawn(&creator)? {
                    Ok(peer) => held.push(peer),
                    Err(e) => {
                        return Err(CaseError::fail(format!(
                            "uid {uid}: unshare({}) {i} of {HELD} refused with {e:?} while the other uids hold theirs",
                            harness::flags::describe(flags)
                        )))
                    }
                }
            }
            expect_errno!(Holder::spawn(&creator)?, Errno::ENOSPC, "uid {uid}: create {} past the limit {HELD}", HELD + 1);
        }
        Ok(())
    })?;
    ns.wait_ready()?;
    let map = IdMap(vec![IdRange { inside: 0, outside: base, count: PER_UID.len() as u32 }]);
    userns::write_map(ns.proc(), MapFile::Uid, &map).setup("writing a uid_map of three uids")?;
    userns::write_map(ns.proc(), MapFile::Gid, &map).setup("writing a gid_map of three gids")?;
    ns.go()?;
    ns.join()
}

// ---- L5 ------------------------------------------------------------------

/// `slack` is the sabotage: the limit is set that much above what uid 0
/// holds, as a kernel exempting uid 0 would behave.
fn uid_0_included(kind: Kind, slack: u64) -> CaseResult {
    own_userns()?;
    check_eq!(nix::unistd::geteuid().as_raw(), 0, "euid in the case's user namespace");
    let eff = cap_set("self", "CapEff")?;
    for cap in [Cap::SYS_ADMIN, Cap::SYS_RESOURCE] {
        check!(eff & (1 << cap.0) != 0, "uid 0 lacks {} in its own user namespace", cap.name());
    }
    let mut observer = LimitObserver::here(kind, HELD + slack)?;
    for i in 1..=HELD {
        check!(observer.try_hold()?, "uid 0: {kind} namespace {i} of {HELD} refused below the limit");
    }
    observer.expect_full("uid 0 with every capability, at the limit")
}

// ---- L6 ------------------------------------------------------------------

/// `slack` is the sabotage: the limit is set that much above what is held.
fn enospc_at_limit(kind: Kind, slack: u64) -> CaseResult {
    own_userns()?;
    let ways = ways(kind);
    set_limit(kind, ways.len() as u64 + slack)?;
    let mut held = Vec::new();
    for &way in &ways {
        held.extend(fill(kind, way, 1, "below the limit")?);
    }
    for &way in &ways {
        expect_full(kind, way, &format!("at the limit {}", ways.len()))?;
    }
    // All released (net and ipc asynchronously): each call works again up to
    // the limit, then is refused again.
    drop(held);
    let mut held = Vec::new();
    for &way in &ways {
        held.extend(fill(kind, way, 1, "after every namespace was released")?);
    }
    for &way in &ways {
        expect_full(kind, way, "at the limit again")?;
    }
    clone3_time_verdict()
}

// ---- L7 ------------------------------------------------------------------

/// For each level of a chain of [`LEVELS`] new user namespaces, the limit
/// set there (the others at INT_MAX) holds creates in the deepest one.
/// `slack` is the sabotage: the limit under test is that much higher.
fn ancestors_charged(kind: Kind, slack: u64) -> CaseResult {
    for level in 0..LEVELS {
        call(&Spawn::fork(), || limit_at_level(kind, level, slack))?;
    }
    Ok(())
}

fn limit_at_level(kind: Kind, limited: usize, slack: u64) -> CaseResult {
    let mut limit = 0;
    for level in 0..LEVELS {
        own_userns()?;
        // The deeper user namespaces of the chain count at this level too.
        let chain = if kind == Kind::User { (LEVELS - 1 - level) as u64 } else { 0 };
        let value = if level == limited { HELD + chain + slack } else { INT_MAX };
        set_limit(kind, value)?;
        if level == limited {
            limit = value;
        }
    }
    let _held = fill(kind, Create::Unshare, HELD, "in the deepest user namespace")?;
    expect_errno!(
        hold(kind, Create::Unshare)?,
        Errno::ENOSPC,
        "{kind} namespace {} created at level {} with {}={limit} at level {limited} ({} of them the chain's own user namespaces) and INT_MAX elsewhere",
        HELD + 1,
        LEVELS - 1,
        kind.info().max_sysctl,
        limit - HELD - slack
    );
    Ok(())
}

// ---- error paths ---------------------------------------------------------

/// Creates refused with EPERM: without CAP_SYS_ADMIN, or (for user
/// namespaces, refused after the count is taken) by a uid with no mapping.
fn refused_with_eperm(kind: Kind) -> CaseResult {
    let spawn = if kind == Kind::User { Spawn::unshare(Kind::User.flag()) } else { Spawn::fork() };
    let refused_newtime = call(&spawn, || {
        if kind != Kind::User {
            sys::drop_capability(Cap::SYS_ADMIN.0).setup("dropping CAP_SYS_ADMIN")?;
        }
        let why = if kind == Kind::User { "by a uid without a mapping" } else { "without CAP_SYS_ADMIN" };
        for _ in 0..ATTEMPTS {
            for way in ways(kind) {
                match hold(kind, way)? {
                    Err(e) if clone3_refuses_time(kind, way, e) => {}
                    other => expect_errno!(other, Errno::EPERM, "{way} of a {kind} namespace {why}"),
                }
            }
        }
        Ok(CLONE3_TIME_REFUSED.load(Ordering::Relaxed))
    })?;
    if refused_newtime {
        CLONE3_TIME_REFUSED.store(true, Ordering::Relaxed);
    }
    Ok(())
}

/// `leak` is the sabotage: one namespace is kept, as a count the kernel
/// failed to return would be.
fn no_leak_on_error(kind: Kind, leak: bool) -> CaseResult {
    // Level 0 limits; level 1, where the creates happen, starts at INT_MAX
    // (for user namespaces level 1 itself counts at level 0).
    own_userns()?;
    set_limit(kind, HELD + u64::from(kind == Kind::User))?;
    own_userns()?;
    refused_with_eperm(kind)?;
    let held = fill(kind, Create::Unshare, HELD, "after the EPERM refusals")?;
    for _ in 0..ATTEMPTS {
        for way in ways(kind) {
            expect_full(kind, way, "at the parent's limit")?;
        }
    }
    // Everything released, our own limit lowered to the parent's: a count
    // left behind by any refusal, here or in the parent, leaves less room.
    set_limit(kind, HELD)?;
    let mut held = held;
    let _leaked = if leak { held.pop() } else { None };
    drop(held);
    let _held = fill(kind, Create::Unshare, HELD, "after the refusals and the release of every namespace")?;
    expect_full(kind, Create::Unshare, "after refilling to the limit")?;
    clone3_time_verdict()
}

// ---- nesting depth ----------------------------------------------------------

fn not_in_initial_userns() -> Option<String> {
    (!harness::probe::in_initial_user_ns())
        .then(|| "the suite runs inside a user namespace: nesting depth is counted from the initial one".into())
}

/// Nests user namespaces from the initial one until the kernel refuses;
/// `expected` is the number of levels that must succeed.
fn user_nesting_depth(expected: u32) -> CaseResult {
    let refusal = if KernelVersion::running() < KernelVersion::new(4, 9) { Errno::EUSERS } else { Errno::ENOSPC };
    let mut depth = 0;
    let errno = loop {
        let (uid, gid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
        match sys::unshare(Kind::User.flag()) {
            Ok(()) => {
                depth += 1;
                userns::map_self_as_root(uid, gid).setup("mapping uid 0 at a new nesting level")?;
                check!(depth <= 2 * expected, "user namespaces nest deeper than {}: no refusal", 2 * expected);
            }
            Err(e) => break e,
        }
    };
    check_eq!(errno, refusal, "errno of unshare(CLONE_NEWUSER) at nesting depth {depth}");
    check_eq!(depth, expected, "user namespace levels created below the initial one");
    check_eq!(limits::read(Kind::User)?, INT_MAX, "max_user_namespaces at the deepest level (the refusal is not that limit)");
    expect_errno!(Spawn::clone(Kind::User.flag()).spawn(|_| Ok(())), refusal, "clone(CLONE_NEWUSER) at nesting depth {depth}");
    Ok(())
}
