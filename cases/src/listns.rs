//! listns(2) and active references (claims X5, X6, 6.19).
//!
//! Sources: the kernel's description of listns(2) (commit 76b6f5dfb3fd,
//! `kernel/nstree.c`, `include/uapi/linux/nsfs.h`): the ids of the active
//! namespaces the caller may see, increasing, after `req->ns_id`, filtered
//! by `ns_type` and by owning user namespace (`user_ns_id`,
//! LISTNS_CURRENT_USER); a caller without CAP_SYS_ADMIN in the initial user
//! and pid namespaces sees the namespaces it is in (and, by owner, those of
//! its own user namespaces). Active references ("ns: add active reference
//! count", 6.19): a namespace is active while a task, an nsfs file (fd or
//! bind mount) or an active namespace it owns or parents uses it; an
//! inactive one is not listed and its nsfs handle does not reopen.
//! Peer tests: tools/testing/selftests/namespaces/listns_test.c,
//! listns_permissions_test.c, listns_efault_test.c,
//! listns_pagination_bug.c, ns_active_ref_test.c.

use std::collections::BTreeSet;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use harness::known::{LISTNS_PID_PARENT_NOT_KEPT_ACTIVE, LISTNS_RESUME_STOPS_AT_INACTIVE};
use harness::listns::{self as ln, ListnsError, NsIdReq, Owner, RawIds, RawReq, NS_ID_REQ_SIZE_VER0, RAW_UNWRITTEN};
use harness::observe::{release_deadline, NsHandle};
use harness::peer::{call, Spawn};
use harness::sys;
use harness::{check, check_eq, check_ne, Case, CaseError, CaseResult, Errno, Kind, NsFd, NsId, Privilege, Proc, Requires, Setup};

use crate::common::{must_fail_with, new_ns_entry, private_mounts, scratch_tmpfs, spawn_in_new};

/// Ids per call when listing everything.
const PAGE: usize = 512;

/// How long a sabotage run, where a reference is deliberately kept, polls
/// for a release that cannot come.
const SABOTAGE_DEADLINE: Duration = Duration::from_millis(300);

fn needs(kinds: &[Kind]) -> Requires {
    Requires::kinds(kinds).kernel(6, 19)
}

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        out.push(
            Case::new(
                format!("listns.active.process.{kind}"),
                &["X5", "X6"],
                format!("a new {kind} namespace is listed by type and in the whole list, never under another type, and reopens while its process lives; once the process is gone it is neither listed nor reopens (ESTALE)"),
                move || process_keeps_active(kind, false),
            )
            .requires(needs(&[kind]).privilege(Privilege::Root))
            .timeout(Duration::from_secs(15)),
        );
    }
    for kind in [Kind::User, Kind::Net] {
        out.push(
            Case::new(
                format!("listns.pagination.{kind}"),
                &["X5"],
                format!("listing {kind} namespaces one and two ids a call, each call resuming after the last id, gives increasing ids of that type only, three new ones among them"),
                move || pagination(kind, Resume::Last),
            )
            .requires(needs(&[kind]).privilege(Privilege::Root))
            .known_deviation(&LISTNS_RESUME_STOPS_AT_INACTIVE)
            .timeout(Duration::from_secs(15)),
        );
    }
    out.push(
        Case::new(
            "listns.owner",
            &["X5"],
            "in a new user namespace owning new net, uts and ipc namespaces, listing by owner (LISTNS_CURRENT_USER, its id) gives exactly those, and a child user namespace under its parent's id",
            || owner(false),
        )
        .requires(needs(&[Kind::User, Kind::Net, Kind::Uts, Kind::Ipc]).user_namespaces()),
    );
    out.push(
        Case::new(
            "listns.visibility",
            &["X5"],
            "a process in a new user namespace lists the net and user namespaces it is in, but not those of a sibling user namespace, which the sibling lists",
            || visibility(false),
        )
        .requires(needs(&[Kind::User, Kind::Net]).user_namespaces()),
    );
    out.push(
        Case::new(
            "listns.bad_arguments",
            &["X5"],
            "listns with flags, a short size or a nonzero spare is EINVAL, an unmapped or NULL request or id buffer EFAULT, nothing written; ids stay within nr_ns_ids",
            || bad_arguments(None),
        )
        .requires(needs(&[])),
    );
    out.push(
        Case::new(
            "listns.active.nsfs_fd",
            &["X6"],
            "a net namespace whose process is gone stays listed and reopens while an nsfs fd of it is open (a control without one is released); closing it deactivates it",
            || fd_keeps_active(false),
        )
        .requires(needs(&[Kind::Net]).privilege(Privilege::Root))
        .timeout(Duration::from_secs(15)),
    );
    out.push(
        Case::new(
            "listns.active.bind_mount",
            &["X6"],
            "a net namespace whose process is gone stays listed and reopens while its nsfs file is bind-mounted (a control is released); unmounting deactivates it",
            || bind_mount_keeps_active(true),
        )
        .requires(needs(&[Kind::Net, Kind::Mnt]).privilege(Privilege::Root))
        .timeout(Duration::from_secs(15)),
    );
    out.push(
        Case::new(
            "listns.active.owned_namespace",
            &["X6"],
            "a user namespace without processes stays listed and reopens while a net namespace it owns is active (held by an fd); closing that deactivates both",
            || related_keeps_active(Related::Owned, false),
        )
        .requires(needs(&[Kind::User, Kind::Net]).privilege(Privilege::Root))
        .timeout(Duration::from_secs(15)),
    );
    out.push(
        Case::new(
            "listns.active.child_user_namespace",
            &["X6"],
            "a user namespace without processes stays listed and reopens while a child user namespace is active (held by an fd); closing that deactivates both",
            || related_keeps_active(Related::Child, false),
        )
        .requires(needs(&[Kind::User]).privilege(Privilege::Root))
        .timeout(Duration::from_secs(15)),
    );
    out.push(
        Case::new(
            "listns.active.parent_pid_namespace",
            &["X6"],
            "a pid namespace whose init is gone stays listed and reopens while its child pid namespace is active (held by an fd; a control without one is released); closing that deactivates both",
            || pid_parent_keeps_active(true),
        )
        .requires(needs(&[Kind::Pid]).privilege(Privilege::Root))
        .known_deviation(&LISTNS_PID_PARENT_NOT_KEPT_ACTIVE)
        .timeout(Duration::from_secs(15)),
    );
    out
}

/// The cases of this topic run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    vec![
        Case::new("sabotage.listns.active.process.uts", &["X5", "X6"], "the new uts namespace is expected under the net type", || {
            must_fail_with(process_keeps_active(Kind::Uts, true), "listed under type")
        })
        .requires(needs(&[Kind::Uts]).privilege(Privilege::Root)),
        Case::new(
            "sabotage.listns.pagination.net",
            &["X5"],
            "each call resumes after the cursor of the previous call instead of its last id",
            || must_fail_with(pagination(Kind::Net, Resume::Same), "increasing across calls"),
        )
        .requires(needs(&[Kind::Net]).privilege(Privilege::Root)),
        Case::new("sabotage.listns.owner", &["X5"], "the owner's own user namespace is expected among the namespaces it owns", || {
            must_fail_with(owner(true), "namespaces owned by")
        })
        .requires(needs(&[Kind::User, Kind::Net, Kind::Uts, Kind::Ipc]).user_namespaces()),
        Case::new("sabotage.listns.visibility", &["X5"], "the sibling's net namespace is expected to be visible", || {
            must_fail_with(visibility(true), "sibling")
        })
        .requires(needs(&[Kind::User, Kind::Net]).user_namespaces()),
        Case::new("sabotage.listns.bad_arguments", &["X5"], "nonzero flags are expected to be accepted", || {
            must_fail_with(bad_arguments(Some(())), "flags 1")
        })
        .requires(needs(&[])),
        Case::new("sabotage.listns.active.nsfs_fd", &["X6"], "the fd is closed before the check", || {
            must_fail_with(fd_keeps_active(true), "still active while")
        })
        .requires(needs(&[Kind::Net]).privilege(Privilege::Root)),
        Case::new("sabotage.listns.active.bind_mount", &["X6"], "the bind mount is undone before the check", || {
            must_fail_with(bind_mount_keeps_active(false), "still active while")
        })
        .requires(needs(&[Kind::Net, Kind::Mnt]).privilege(Privilege::Root)),
        Case::new(
            "sabotage.listns.active.owned_namespace",
            &["X6"],
            "the net namespace held by an fd is a new one of our own user namespace, not one the user namespace owns",
            || must_fail_with(related_keeps_active(Related::Owned, true), OWNER_STAYS),
        )
        .requires(needs(&[Kind::User, Kind::Net]).privilege(Privilege::Root)),
        Case::new(
            "sabotage.listns.active.child_user_namespace",
            &["X6"],
            "the user namespace held by an fd is a new child of our own user namespace, not of the one checked",
            || must_fail_with(related_keeps_active(Related::Child, true), OWNER_STAYS),
        )
        .requires(needs(&[Kind::User]).privilege(Privilege::Root)),
    ]
}

/// Every id `req` (from the start, `ns_id` 0) selects, from ONE call
/// whose buffer is grown ([`PAGE`], then 4 times larger) until the listing
/// fits: no call resumes after an id, so a listing is never cut short by
/// a resumed call ending with ENOENT (resumption is what
/// [`pagination`] checks, where that is the known deviation
/// [`LISTNS_RESUME_STOPS_AT_INACTIVE`]). Fails on any errno, and unless the
/// ids are nonzero and strictly increasing.
fn listed(req: NsIdReq, what: &str) -> Result<Vec<u64>, CaseError> {
    let mut cap = PAGE;
    loop {
        let ids = match ln::listns(&req, cap) {
            Ok(ids) => ids,
            Err(e) => return Err(CaseError::fail(format!("{what}: {e}"))),
        };
        if ids.len() < cap {
            for (i, id) in ids.iter().enumerate() {
                check!(*id != 0, "{what}: listns gave id 0");
                check!(i == 0 || *id > ids[i - 1], "{what}: ids not strictly increasing: {id} after {}", ids[i - 1]);
            }
            return Ok(ids);
        }
        check!(cap < MAX_LISTING, "{what}: {cap} or more namespaces listed");
        cap *= 4;
    }
}

/// The largest buffer [`listed`] grows to (listns(2) takes up to 1000000).
const MAX_LISTING: usize = PAGE << 10;

/// How a paginated listing resumes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Resume {
    /// After the last id of the previous call (the claim).
    Last,
    /// Sabotage: after the cursor of the previous call again (the first
    /// resumed call repeats the first call, whatever the page size).
    Same,
}

/// Every id `req` selects, `page` ids a call, each call resuming after the
/// last id of the previous one (sabotaged: after its cursor again); fails unless each
/// call gives increasing ids after its cursor. A resumed call may end the
/// listing with ENOENT: also returns the cursor after which one did, for
/// [`resumed_past`] to judge (only [`pagination`] uses this).
fn listed_in_pages(req: NsIdReq, page: usize, resume: Resume, what: &str) -> Result<(Vec<u64>, Option<u64>), CaseError> {
    let mut all: Vec<u64> = Vec::new();
    let mut after = req.ns_id;
    for _ in 0..100_000 {
        let ids = match ln::listns(&req.after(after), page) {
            Ok(ids) => ids,
            Err(ListnsError::Errno(Errno::ENOENT)) if after != 0 => return Ok((all, Some(after))),
            Err(e) => return Err(CaseError::fail(format!("{what}: after id {after}: {e}"))),
        };
        for id in &ids {
            check!(*id != 0, "{what}: listns gave id 0");
            if let Some(prev) = all.last() {
                check!(id > prev, "{what}: ids not strictly increasing across calls: {id} after {prev} (cursor {after})");
            }
            check!(*id > after, "{what}: id {id} not after the cursor {after}");
            all.push(*id);
        }
        if ids.len() < page || ids.is_empty() {
            return Ok((all, None));
        }
        after = match resume {
            Resume::Last => *ids.last().expect("non-empty"),
            Resume::Same => after,
        };
    }
    Ok((all, None))
}

/// Fails unless `found`; a namespace missing because a resumed call ended
/// the listing with ENOENT is the known deviation
/// [`LISTNS_RESUME_STOPS_AT_INACTIVE`], any other miss a plain failure.
fn resumed_past(found: bool, enoent_after: Option<u64>, missing: String) -> CaseResult {
    match (found, enoent_after) {
        (true, _) => Ok(()),
        (false, Some(_)) => Err(CaseError::deviation(&LISTNS_RESUME_STOPS_AT_INACTIVE, format!("{missing}{}", ending(enoent_after)))),
        (false, None) => Err(CaseError::fail(missing)),
    }
}

/// How a listing ended, for messages.
fn ending(enoent_after: Option<u64>) -> String {
    match enoent_after {
        Some(id) => format!(" (the listing ended with ENOENT on the call resuming after id {id})"),
        None => String::new(),
    }
}

/// Fails unless every id listed under `kind`, reopened by id, is a `kind`
/// namespace (those gone meanwhile, ESTALE, are passed over).
fn all_of_type(ids: &[u64], kind: Kind, what: &str) -> CaseResult {
    for id in ids {
        match ln::open_by_id(*id) {
            Ok(fd) => {
                let t = harness::nsfd::nstype(fd.as_fd())?;
                check_eq!(harness::flags::describe(t), harness::flags::describe(kind.flag()), "{what}: type of listed id {id}");
            }
            Err(Errno::ESTALE) => {}
            Err(e) => return Err(CaseError::fail(format!("{what}: reopening listed id {id}: unexpected errno {e:?}"))),
        }
    }
    Ok(())
}

/// Whether the handle of `kind` namespace `id` reopens (ESTALE: no).
fn reopens(id: u64, kind: Kind, handle: &NsHandle) -> Result<bool, CaseError> {
    match handle.open_with(libc::O_RDONLY | libc::O_CLOEXEC) {
        Ok(_) => Ok(true),
        Err(Errno::ESTALE) => Ok(false),
        Err(e) => Err(CaseError::fail(format!("reopening the handle of {kind} namespace {id}: expected success or ESTALE, got {e:?}"))),
    }
}

/// What one look at a namespace saw.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Seen {
    /// Reopened before and after the listing, and listed.
    Active,
    /// Reopened neither before nor after the listing, and not listed.
    Inactive,
    /// Reopened before but not after, or the other way round: it changed
    /// during the look, so the listing is not compared.
    Changing,
}

/// Reopens the handle, lists `kind` namespaces, reopens again; when both
/// reopens agree, fails unless the listing agrees with them.
fn seen(id: u64, kind: Kind, handle: &NsHandle) -> Result<Seen, CaseError> {
    let before = reopens(id, kind, handle)?;
    let listed = listed(NsIdReq::new(kind.flag(), Owner::Any), "listing by type")?.contains(&id);
    let after = reopens(id, kind, handle)?;
    if before != after {
        return Ok(Seen::Changing);
    }
    check_eq!(
        listed,
        before,
        "{kind} namespace {id}: listed by listns (left) exactly when its handle reopens, before and after the listing (right)"
    );
    Ok(if before { Seen::Active } else { Seen::Inactive })
}

/// Whether the namespace with `id` (of `kind`) is active throughout one
/// look ([`seen`]): listed under its type, and its handle reopens.
fn active(id: u64, kind: Kind, handle: &NsHandle) -> Result<bool, CaseError> {
    Ok(seen(id, kind, handle)? == Seen::Active)
}

/// Polls until the namespace is seen inactive throughout one look, up to
/// `deadline`.
fn wait_inactive(id: u64, kind: Kind, handle: &NsHandle, what: &str, deadline: Duration) -> CaseResult {
    let start = Instant::now();
    while seen(id, kind, handle)? != Seen::Inactive {
        check!(start.elapsed() < deadline, "{what}: still listed and reopening after {deadline:?}");
        std::thread::sleep(Duration::from_micros(500));
    }
    Ok(())
}

/// Id and handle of an open namespace fd.
fn id_and_handle(fd: &NsFd) -> Result<(u64, NsHandle), CaseError> {
    let id = fd.ns_id()?;
    check!(id != 0, "NS_GET_ID gave 0");
    let handle = NsHandle::from_file_handle(sys::name_to_handle(fd.as_fd())?);
    Ok((id, handle))
}

/// `wrong_type`: sabotage, the namespace is expected under another type.
fn process_keeps_active(kind: Kind, wrong_type: bool) -> CaseResult {
    let mut peer = spawn_in_new(kind, 0).spawn_idle()?;
    let (id, handle) = {
        let fd = NsFd::open_entry(peer.proc(), new_ns_entry(kind))?;
        check_ne!(fd.id(), NsId::for_children(Proc::Myself, kind)?, "the peer's {kind} namespace (new)");
        id_and_handle(&fd)?
    };
    let by_type = listed(NsIdReq::new(kind.flag(), Owner::Any), &format!("listing {kind} namespaces"))?;
    check!(by_type.contains(&id), "the new {kind} namespace {id} listed under type {kind}: missing");
    all_of_type(&by_type, kind, &format!("listing {kind} namespaces"))?;
    let everything = listed(NsIdReq::new(0, Owner::Any), "listing every namespace")?;
    check!(everything.contains(&id), "the new {kind} namespace {id} in the list of every type: missing");
    let other = if kind == Kind::Uts { Kind::Net } else { Kind::Uts };
    let under_other = listed(NsIdReq::new(other.flag(), Owner::Any), &format!("listing {other} namespaces"))?.contains(&id);
    if wrong_type {
        check!(under_other, "the new {kind} namespace {id} listed under type {other}: missing");
    } else {
        check!(!under_other, "the new {kind} namespace {id} listed under type {other}: present");
    }
    check!(active(id, kind, &handle)?, "the new {kind} namespace {id} while its process lives: not active");
    peer.go()?;
    peer.join()?;
    wait_inactive(id, kind, &handle, &format!("the {kind} namespace {id} after its only process exited"), release_deadline())?;
    check!(!everything.is_empty(), "listing every namespace gave nothing");
    Ok(())
}

fn pagination(kind: Kind, resume: Resume) -> CaseResult {
    let mut peers = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let peer = spawn_in_new(kind, 0).spawn_idle()?;
        ids.push(NsFd::open_entry(peer.proc(), new_ns_entry(kind))?.ns_id()?);
        peers.push(peer);
    }
    for page in [1, 2] {
        let what = format!("listing {kind} namespaces {page} a call");
        let (got, end) = listed_in_pages(NsIdReq::new(kind.flag(), Owner::Any), page, resume, &what)?;
        for id in &ids {
            resumed_past(got.contains(id), end, format!("{what}: new {kind} namespace {id} missing from {got:?}"))?;
        }
        all_of_type(&got, kind, &what)?;
        let what = format!("listing every namespace {page} a call");
        let (every, end) = listed_in_pages(NsIdReq::new(0, Owner::Any), page, resume, &what)?;
        for id in &ids {
            resumed_past(every.contains(id), end, format!("{what}: new {kind} namespace {id} missing"))?;
        }
    }
    // Resuming after the first new id skips it and keeps the later ones.
    let (after_first, end) =
        listed_in_pages(NsIdReq::new(kind.flag(), Owner::Any).after(ids[0]), PAGE, Resume::Last, "listing after the first new id")?;
    resumed_past(
        after_first.contains(&ids[1]) && after_first.contains(&ids[2]),
        end,
        format!("listing {kind} namespaces after new id {}: {} and {} missing from {after_first:?}", ids[0], ids[1], ids[2]),
    )?;
    check!(
        !after_first.contains(&ids[0]) && after_first.contains(&ids[1]) && after_first.contains(&ids[2]),
        "listing {kind} namespaces after new id {}: expected {} and {} but not it, got {after_first:?}",
        ids[0],
        ids[1],
        ids[2]
    );
    for mut p in peers {
        p.go()?;
        p.join()?;
    }
    Ok(())
}

/// What `owner` finds in a new user namespace.
#[derive(serde::Serialize, serde::Deserialize)]
struct Owned {
    user: u64,
    created: Vec<u64>,
    by_current: Vec<u64>,
    by_id: Vec<u64>,
    by_current_net: Vec<u64>,
    child: u64,
    parent_after_child: Vec<u64>,
    by_current_in_child: Vec<u64>,
}

fn owner(expect_self: bool) -> CaseResult {
    let spawn = Spawn::unshare(Kind::User.flag() | Kind::Net.flag() | Kind::Uts.flag() | Kind::Ipc.flag()).map_root();
    let o: Owned = call(&spawn, || {
        let id_of = |k: Kind| -> Result<u64, CaseError> { Ok(NsFd::current(k)?.ns_id()?) };
        let user = id_of(Kind::User)?;
        let created = vec![id_of(Kind::Net)?, id_of(Kind::Uts)?, id_of(Kind::Ipc)?];
        let by_current = listed(NsIdReq::new(0, Owner::Current), "listing by LISTNS_CURRENT_USER")?;
        let by_id = listed(NsIdReq::new(0, Owner::Id(user)), "listing by our user namespace's id")?;
        let by_current_net = listed(NsIdReq::new(Kind::Net.flag(), Owner::Current), "listing net namespaces by LISTNS_CURRENT_USER")?;
        sys::unshare(Kind::User.flag()).setup("unshare(CLONE_NEWUSER) for a child user namespace")?;
        let child = id_of(Kind::User)?;
        let parent_after_child = listed(NsIdReq::new(0, Owner::Id(user)), "listing by the parent user namespace's id")?;
        let by_current_in_child = listed(NsIdReq::new(0, Owner::Current), "listing by LISTNS_CURRENT_USER in the child")?;
        Ok(Owned { user, created, by_current, by_id, by_current_net, child, parent_after_child, by_current_in_child })
    })?;
    let set = |v: &[u64]| v.iter().copied().collect::<BTreeSet<u64>>();
    let mut expected = set(&o.created);
    if expect_self {
        expected.insert(o.user);
    }
    check_eq!(set(&o.by_current), expected, "namespaces owned by the new user namespace {}, by LISTNS_CURRENT_USER", o.user);
    check_eq!(set(&o.by_id), expected, "namespaces owned by the new user namespace, by its id {}", o.user);
    check_eq!(o.by_current_net, vec![o.created[0]], "net namespaces owned by the new user namespace");
    let mut with_child = expected.clone();
    with_child.insert(o.child);
    check_eq!(set(&o.parent_after_child), with_child, "namespaces owned by user namespace {} once it has child {}", o.user, o.child);
    check_eq!(o.by_current_in_child, Vec::<u64>::new(), "namespaces owned by the child user namespace {} (none)", o.child);
    Ok(())
}

fn visibility(expect_sibling: bool) -> CaseResult {
    // The sibling: a new user namespace owning a new net namespace.
    let mut sibling = Spawn::clone(Kind::User.flag() | Kind::Net.flag()).map_root().spawn(|ch| {
        let net = NsFd::current(Kind::Net)?.ns_id()?;
        let user = NsFd::current(Kind::User)?.ns_id()?;
        let sees_own = listed(NsIdReq::new(Kind::Net.flag(), Owner::Any), "the sibling listing net namespaces")?.contains(&net);
        ch.send(&(net, user, sees_own))?;
        ch.wait()
    })?;
    let (sib_net, sib_user, sib_sees_own): (u64, u64, bool) = sibling.recv()?;
    check!(sib_sees_own, "the sibling lists its own net namespace {sib_net}: missing");
    let seen: (u64, u64, Vec<u64>, Vec<u64>) = call(&Spawn::unshare(Kind::User.flag()).map_root(), || {
        let net = NsFd::current(Kind::Net)?.ns_id()?;
        let user = NsFd::current(Kind::User)?.ns_id()?;
        let nets = listed(NsIdReq::new(Kind::Net.flag(), Owner::Any), "listing net namespaces")?;
        let users = listed(NsIdReq::new(Kind::User.flag(), Owner::Any), "listing user namespaces")?;
        Ok((net, user, nets, users))
    })?;
    let (net, user, nets, users) = seen;
    check!(nets.contains(&net), "a process in a new user namespace lists the net namespace it is in ({net}): missing from {nets:?}");
    check!(users.contains(&user), "a process in a new user namespace lists its user namespace ({user}): missing from {users:?}");
    check_eq!(
        nets.contains(&sib_net),
        expect_sibling,
        "the sibling's net namespace {sib_net} listed by a process in another new user namespace"
    );
    check!(!users.contains(&sib_user), "the sibling's user namespace {sib_user} listed by a process in another new user namespace");
    sibling.go()?;
    sibling.join()
}

/// `accept_flags`: sabotage, nonzero flags are expected to succeed.
fn bad_arguments(accept_flags: Option<()>) -> CaseResult {
    let good = NsIdReq::new(0, Owner::Any);
    let before = listed(good, "listing before the bad calls")?;
    let call = |req: RawReq, ids: RawIds, nr: usize, flags: u32| ln::listns_raw(&req, ids, nr, flags).setup("mapping buffers for listns");
    let untouched = |o: &ln::RawOutcome| o.ids.iter().all(|v| *v == RAW_UNWRITTEN);
    let expect = |o: ln::RawOutcome, errno: Errno, what: &str| -> CaseResult {
        check_eq!(o.result.map_err(Errno::from_raw), Err(errno), "listns with {what}");
        check!(untouched(&o), "listns with {what}: the id buffer was written: {:?}", o.ids);
        Ok(())
    };
    let bytes = |r: NsIdReq| RawReq::Bytes(r.to_bytes());
    let o = call(bytes(good), RawIds::Capacity(4), 4, 1)?;
    if accept_flags.is_some() {
        check!(o.result.is_ok(), "listns with flags 1: expected success, got {:?}", o.result.map_err(Errno::from_raw));
    } else {
        expect(o, Errno::EINVAL, "flags 1")?;
    }
    expect(call(bytes(good), RawIds::Capacity(4), 4, u32::MAX)?, Errno::EINVAL, "flags 0xffffffff")?;
    for size in [0, 8, NS_ID_REQ_SIZE_VER0 - 1] {
        let mut b = good.to_bytes();
        b[0..4].copy_from_slice(&size.to_ne_bytes());
        expect(call(RawReq::Bytes(b), RawIds::Capacity(4), 4, 0)?, Errno::EINVAL, &format!("size {size}"))?;
    }
    expect(call(bytes(NsIdReq { spare: 1, ..good }), RawIds::Capacity(4), 4, 0)?, Errno::EINVAL, "spare 1")?;
    // Larger versions of the request: trailing bytes must be zero (E2BIG
    // otherwise, copy_struct_from_user()), at most a page.
    let mut longer = good.to_bytes();
    longer.extend_from_slice(&[0u8; 8]);
    longer[0..4].copy_from_slice(&40u32.to_ne_bytes());
    let o = call(RawReq::Bytes(longer.clone()), RawIds::Capacity(4), 4, 0)?;
    check!(o.result.is_ok(), "listns with size 40 and zero trailing bytes: expected success, got {:?}", o.result.map_err(Errno::from_raw));
    longer[39] = 1;
    expect(call(RawReq::Bytes(longer), RawIds::Capacity(4), 4, 0)?, Errno::E2BIG, "size 40 and a nonzero trailing byte")?;
    let mut huge = vec![0u8; 4097];
    huge[..32].copy_from_slice(&good.to_bytes());
    huge[0..4].copy_from_slice(&4097u32.to_ne_bytes());
    expect(call(RawReq::Bytes(huge), RawIds::Capacity(4), 4, 0)?, Errno::E2BIG, "size 4097")?;
    expect(call(bytes(NsIdReq { ns_type: 1, ..good }), RawIds::Capacity(4), 4, 0)?, Errno::EOPNOTSUPP, "ns_type 1 (no namespace type)")?;
    let net_id = NsFd::current(Kind::Net)?.ns_id()?;
    expect(
        call(bytes(NsIdReq { user_ns_id: net_id, ..good }), RawIds::Capacity(4), 4, 0)?,
        Errno::EINVAL,
        "user_ns_id of a net namespace",
    )?;
    expect(call(bytes(good), RawIds::Capacity(4), 1_000_001, 0)?, Errno::EOVERFLOW, "nr_ns_ids 1000001")?;
    expect(call(RawReq::Null, RawIds::Capacity(4), 4, 0)?, Errno::EFAULT, "a NULL request")?;
    expect(call(RawReq::Unmapped, RawIds::Capacity(4), 4, 0)?, Errno::EFAULT, "an unmapped request")?;
    expect(call(bytes(good), RawIds::Unmapped, 4, 0)?, Errno::EFAULT, "an unmapped id buffer")?;
    expect(call(bytes(good), RawIds::Null, 4, 0)?, Errno::EFAULT, "a NULL id buffer")?;
    // A buffer of 2 with nr_ns_ids 2: at most 2 ids, the rest untouched.
    let o = call(bytes(good), RawIds::Capacity(3), 2, 0)?;
    let n = o.result.map_err(Errno::from_raw)?;
    check!((1..=2).contains(&n), "listns with nr_ns_ids 2 returned {n}");
    check!(
        o.ids[..n].iter().all(|v| *v != RAW_UNWRITTEN) && o.ids[n..].iter().all(|v| *v == RAW_UNWRITTEN),
        "listns with nr_ns_ids 2 returned {n}: buffer {:?}",
        o.ids
    );
    check_eq!(o.ids[..n].to_vec(), before[..n.min(before.len())].to_vec(), "the first ids listed with nr_ns_ids 2");
    // Nothing changed: the same namespaces as before are listed.
    let after = listed(good, "listing after the bad calls")?;
    let ours: Vec<u64> =
        [Kind::Net, Kind::User, Kind::Mnt].iter().map(|k| Ok(NsFd::current(*k)?.ns_id()?)).collect::<Result<_, CaseError>>()?;
    for id in ours {
        check!(before.contains(&id) && after.contains(&id), "our namespace {id} listed before and after the bad calls");
    }
    Ok(())
}

/// A new net namespace held by a process, and its id and handle.
struct Subject {
    peer: harness::Peer,
    id: u64,
    handle: NsHandle,
}

fn new_net() -> Result<Subject, CaseError> {
    let peer = Spawn::clone(Kind::Net.flag()).spawn_idle()?;
    let (id, handle) = id_and_handle(&NsFd::open(peer.proc(), Kind::Net)?)?;
    Ok(Subject { peer, id, handle })
}

impl Subject {
    fn exit(mut self) -> Result<(u64, NsHandle), CaseError> {
        self.peer.go()?;
        self.peer.join()?;
        Ok((self.id, self.handle))
    }
}

/// After the subject's and a control's processes exit (same kind, same
/// moment), waits for the control to go inactive: a subject without
/// another reference would be gone by then too.
fn exit_with_control(subject: Subject, control: Subject, kind: Kind) -> Result<(u64, NsHandle), CaseError> {
    let s = subject.exit()?;
    let (cid, ch) = control.exit()?;
    wait_inactive(cid, kind, &ch, "the control namespace after its only process exited", release_deadline())?;
    Ok(s)
}

fn fd_keeps_active(close_early: bool) -> CaseResult {
    let subject = new_net()?;
    let control = new_net()?;
    let fd = NsFd::open(subject.peer.proc(), Kind::Net)?;
    let (id, handle) = exit_with_control(subject, control, Kind::Net)?;
    let fd = if close_early {
        drop(fd);
        None
    } else {
        Some(fd)
    };
    check!(
        active(id, Kind::Net, &handle)?,
        "net namespace {id} still active while an nsfs fd of it is open, after its process exited: it is not"
    );
    drop(fd);
    wait_inactive(
        id,
        Kind::Net,
        &handle,
        "the net namespace once its last fd is closed",
        if close_early { SABOTAGE_DEADLINE } else { release_deadline() },
    )
}

fn bind_mount_keeps_active(keep: bool) -> CaseResult {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    sys::unshare(Kind::Mnt.flag()).setup("unshare(CLONE_NEWNS) for the bind mount")?;
    private_mounts()?;
    scratch_tmpfs("nsverify-listns")?;
    let target = "/tmp/net";
    std::fs::File::create(target).setup("creating the bind mount target")?;
    let subject = new_net()?;
    let control = new_net()?;
    let source = Proc::Pid(subject.peer.pid().as_raw()).ns_path("net");
    mount(Some(&source), target, None::<&str>, MsFlags::MS_BIND, None::<&str>).setup("bind-mounting the nsfs file")?;
    let (id, handle) = exit_with_control(subject, control, Kind::Net)?;
    if !keep {
        umount2(target, MntFlags::MNT_DETACH).setup("unmounting the bind mount")?;
    }
    check!(
        active(id, Kind::Net, &handle)?,
        "net namespace {id} still active while its nsfs file is bind-mounted, after its process exited: it is not"
    );
    if keep {
        umount2(target, MntFlags::MNT_DETACH).setup("unmounting the bind mount")?;
    }
    wait_inactive(
        id,
        Kind::Net,
        &handle,
        "the net namespace once its bind mount is gone",
        if keep { release_deadline() } else { SABOTAGE_DEADLINE },
    )
}

/// What keeps a user namespace without processes active in
/// [`related_keeps_active`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Related {
    /// A net namespace it owns.
    Owned,
    /// A child user namespace.
    Child,
}

/// The start of the check that an owner or parent stays active ([`related_keeps_active`]).
const OWNER_STAYS: &str = "an owner or parent of an active namespace stays active";

/// `unrelated`: sabotage, the namespace held by an fd is a new one in our
/// own user namespace, not one U owns or parents, so U must go inactive.
fn related_keeps_active(related: Related, unrelated: bool) -> CaseResult {
    // A process in new user namespace U and, owned by or under it, R.
    let spawn = || -> Result<harness::Peer, CaseError> {
        match related {
            Related::Owned => Spawn::clone(Kind::User.flag() | Kind::Net.flag()).map_root().spawn_idle(),
            Related::Child => {
                let mut p = Spawn::clone(Kind::User.flag()).map_root().spawn(|ch| {
                    sys::unshare(Kind::User.flag()).setup("unshare(CLONE_NEWUSER) for the child")?;
                    ch.ready()?;
                    ch.wait()
                })?;
                p.wait_ready()?;
                Ok(p)
            }
        }
    };
    let (r_kind, r_name) = match related {
        Related::Owned => (Kind::Net, "a net namespace it owns"),
        Related::Child => (Kind::User, "a child user namespace"),
    };
    let user_of = |peer: &harness::Peer| -> Result<(u64, NsHandle, NsFd), CaseError> {
        let r = NsFd::open(peer.proc(), r_kind)?;
        let u = match related {
            Related::Owned => r.user_ns()?,
            Related::Child => r.parent()?,
        };
        check_ne!(u.id(), NsId::current(Kind::User)?, "the new user namespace");
        let (id, h) = id_and_handle(&u)?;
        Ok((id, h, r))
    };
    let mut subject = spawn()?;
    let mut control = spawn()?;
    let (uid_, uhandle, rfd) = user_of(&subject)?;
    let (cid, chandle, cfd) = user_of(&control)?;
    drop(cfd);
    let held = if unrelated {
        drop(rfd);
        // A new namespace of the same kind in our own user namespace.
        let spawn = Spawn::clone(r_kind.flag());
        let mut other = if r_kind == Kind::User { spawn.map_root() } else { spawn }.spawn_idle()?;
        let fd = NsFd::open(other.proc(), r_kind)?;
        other.go()?;
        other.join()?;
        fd
    } else {
        rfd
    };
    let (rid, rhandle) = id_and_handle(&held)?;
    subject.go()?;
    subject.join()?;
    control.go()?;
    control.join()?;
    wait_inactive(cid, Kind::User, &chandle, "the control user namespace after its only process exited", release_deadline())?;
    check!(active(rid, r_kind, &rhandle)?, "{r_name} ({rid}), held by an fd, still active while the fd is open: it is not");
    check!(
        active(uid_, Kind::User, &uhandle)?,
        "{OWNER_STAYS}: user namespace {uid_}, while {r_name} ({rid}) is, after its process exited: it is not"
    );
    drop(held);
    let deadline = if unrelated { SABOTAGE_DEADLINE } else { release_deadline() };
    wait_inactive(rid, r_kind, &rhandle, &format!("{r_name} once its fd is closed"), deadline)?;
    wait_inactive(uid_, Kind::User, &uhandle, "the user namespace once what it owned or parented is inactive", deadline)?;
    Ok(())
}

/// `hold_child`: hold the child pid namespace by an fd (the claim); false:
/// nothing holds it. No sabotage runs it: on the kernels that have listns
/// the real body already fails at this check (the known deviation
/// [`LISTNS_PID_PARENT_NOT_KEPT_ACTIVE`]), so a failing sabotage would prove
/// nothing.
fn pid_parent_keeps_active(hold_child: bool) -> CaseResult {
    // Init of a new pid namespace P, which makes a child pid namespace C
    // (its pid_for_children) and stays out of it.
    let spawn = || -> Result<harness::Peer, CaseError> {
        let mut p = Spawn::clone(Kind::Pid.flag()).spawn(|ch| {
            sys::unshare(Kind::Pid.flag()).setup("unshare(CLONE_NEWPID) for the child pid namespace")?;
            ch.ready()?;
            ch.wait()
        })?;
        p.wait_ready()?;
        Ok(p)
    };
    let both = |peer: &harness::Peer| -> Result<(u64, NsHandle, NsFd, u64, NsHandle), CaseError> {
        let parent = NsFd::open(peer.proc(), Kind::Pid)?;
        let child = NsFd::open_entry(peer.proc(), "pid_for_children")?;
        check_ne!(parent.id(), NsId::current(Kind::Pid)?, "the new pid namespace");
        check_ne!(child.id(), parent.id(), "the child pid namespace");
        check_eq!(child.parent()?.id(), parent.id(), "NS_GET_PARENT of the child pid namespace");
        let (pid_, ph) = id_and_handle(&parent)?;
        let (cid, ch) = id_and_handle(&child)?;
        Ok((pid_, ph, child, cid, ch))
    };
    let mut subject = spawn()?;
    let mut control = spawn()?;
    let (pid_, phandle, child, cid, chandle) = both(&subject)?;
    let (control_id, control_handle, control_child, _, _) = both(&control)?;
    drop(control_child);
    let child = if hold_child {
        Some(child)
    } else {
        drop(child);
        None
    };
    subject.go()?;
    subject.join()?;
    control.go()?;
    control.join()?;
    wait_inactive(control_id, Kind::Pid, &control_handle, "the control pid namespace after its only process exited", release_deadline())?;
    if hold_child {
        check!(
            active(cid, Kind::Pid, &chandle)?,
            "the child pid namespace {cid}, held by an fd, still active while the fd is open: it is not"
        );
    }
    if !active(pid_, Kind::Pid, &phandle)? {
        return Err(CaseError::deviation(
            &LISTNS_PID_PARENT_NOT_KEPT_ACTIVE,
            format!("pid namespace {pid_}, while its child pid namespace {cid} is, after its process exited: it is not"),
        ));
    }
    drop(child);
    wait_inactive(cid, Kind::Pid, &chandle, "the child pid namespace once its fd is closed", release_deadline())?;
    wait_inactive(pid_, Kind::Pid, &phandle, "the parent pid namespace once its child is inactive", release_deadline())
}
