//! X6, active references: a namespace stays listed and its handle reopens
//! while a process, an nsfs fd, a bind mount of its nsfs file, or an
//! active namespace it owns or parents holds it; once nothing does, it is
//! neither listed nor reopens (ESTALE). The per-kind process case also
//! checks X5's listing by type. A look ([`seen`]) reopens the handle, lists,
//! and reopens again, so a namespace changing meanwhile is looked at again.

use std::time::Duration;

use harness::handle::FileHandle;
use harness::known::LISTNS_PID_PARENT_NOT_KEPT_ACTIVE;
use harness::listns::{NsIdReq, Owner};
use harness::observe::{release_deadline, NsHandle};
use harness::peer::Spawn;
use harness::poll::{self, Pause};
use harness::{check, check_eq, check_ne, CaseError, CaseResult, Errno, Kind, NsEntry, NsFd, NsId, Proc, Setup};

use super::{all_of_type, listed};
use crate::common::{private_mounts, scratch_tmpfs};

/// How long a sabotage run, where a reference is deliberately kept, polls
/// for a release that cannot come.
const SABOTAGE_DEADLINE: Duration = Duration::from_millis(300);

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
    let listed = listed(NsIdReq::new(kind.flag().bits(), Owner::Any), "listing by type")?.contains(&id);
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
    let inactive = poll::poll_until(deadline, Pause::every(Duration::from_micros(500)), || {
        Ok::<_, CaseError>(seen(id, kind, handle)? == Seen::Inactive)
    })?;
    check!(inactive.is_some(), "{what}: still listed and reopening after {deadline:?}");
    Ok(())
}

/// Id and handle of an open namespace fd.
fn id_and_handle(fd: &NsFd) -> Result<(u64, NsHandle), CaseError> {
    let id = fd.ns_id()?;
    check!(id != 0, "NS_GET_ID gave 0");
    let handle = NsHandle::from_file_handle(FileHandle::of(fd)?);
    Ok((id, handle))
}

/// `wrong_type`: sabotage, the namespace is expected under another type.
pub(super) fn process_keeps_active(kind: Kind, wrong_type: bool) -> CaseResult {
    let mut peer = Spawn::new_ns(kind).spawn_idle()?;
    let (id, handle) = {
        let fd = NsFd::open_entry(peer.proc(), NsEntry::of_new_ns(kind))?;
        check_ne!(fd.id(), NsId::for_children(Proc::Myself, kind)?, "the peer's {kind} namespace (new)");
        id_and_handle(&fd)?
    };
    let by_type = listed(NsIdReq::new(kind.flag().bits(), Owner::Any), &format!("listing {kind} namespaces"))?;
    check!(by_type.contains(&id), "the new {kind} namespace {id} listed under type {kind}: missing");
    all_of_type(&by_type, kind, &format!("listing {kind} namespaces"))?;
    let everything = listed(NsIdReq::new(0, Owner::Any), "listing every namespace")?;
    check!(everything.contains(&id), "the new {kind} namespace {id} in the list of every type: missing");
    let other = if kind == Kind::Uts { Kind::Net } else { Kind::Uts };
    let under_other = listed(NsIdReq::new(other.flag().bits(), Owner::Any), &format!("listing {other} namespaces"))?.contains(&id);
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

pub(super) fn fd_keeps_active(close_early: bool) -> CaseResult {
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

pub(super) fn bind_mount_keeps_active(keep: bool) -> CaseResult {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    harness::ns::unshare(Kind::Mnt).setup("unshare(CLONE_NEWNS) for the bind mount")?;
    private_mounts()?;
    scratch_tmpfs("nsverify-listns")?;
    let target = "/tmp/net";
    std::fs::File::create(target).setup("creating the bind mount target")?;
    let subject = new_net()?;
    let control = new_net()?;
    let source = Proc::Pid(subject.peer.pid().as_raw()).ns_path(Kind::Net);
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
pub(super) enum Related {
    /// A net namespace it owns.
    Owned,
    /// A child user namespace.
    Child,
}

/// The start of the check that an owner or parent stays active ([`related_keeps_active`]).
pub(super) const OWNER_STAYS: &str = "an owner or parent of an active namespace stays active";

/// `unrelated`: sabotage, the namespace held by an fd is a new one in our
/// own user namespace, not one U owns or parents, so U must go inactive.
pub(super) fn related_keeps_active(related: Related, unrelated: bool) -> CaseResult {
    // A process in new user namespace U and, owned by or under it, R.
    let spawn = || -> Result<harness::Peer, CaseError> {
        match related {
            Related::Owned => Spawn::clone(Kind::User.flag() | Kind::Net.flag()).map_root().spawn_idle(),
            Related::Child => {
                let mut p = Spawn::clone(Kind::User.flag()).map_root().spawn(|ch| {
                    harness::ns::unshare(Kind::User).setup("unshare(CLONE_NEWUSER) for the child")?;
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
pub(super) fn pid_parent_keeps_active(hold_child: bool) -> CaseResult {
    // Init of a new pid namespace P, which makes a child pid namespace C
    // (its pid_for_children) and stays out of it.
    let spawn = || -> Result<harness::Peer, CaseError> {
        let mut p = Spawn::clone(Kind::Pid.flag()).spawn(|ch| {
            harness::ns::unshare(Kind::Pid).setup("unshare(CLONE_NEWPID) for the child pid namespace")?;
            ch.ready()?;
            ch.wait()
        })?;
        p.wait_ready()?;
        Ok(p)
    };
    let both = |peer: &harness::Peer| -> Result<(u64, NsHandle, NsFd, u64, NsHandle), CaseError> {
        let parent = NsFd::open(peer.proc(), Kind::Pid)?;
        let child = NsFd::open_entry(peer.proc(), NsEntry { kind: Kind::Pid, for_children: true })?;
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
