//! ioctl_ns(2): NS_GET_USERNS, NS_GET_PARENT, NS_GET_NSTYPE, NS_GET_OWNER_UID (A4).

use std::os::fd::AsFd;

use harness::nsfd::{self, NsIoctl, NS_GET_NSTYPE, NS_GET_OWNER_UID, NS_GET_PARENT, NS_GET_USERNS, NS_IOCTLS};
use harness::peer::{call, Peer, Spawn};
use harness::probe::KernelVersion;
use harness::{
    check_eq, check_ne, expect_errno, Case, CaseError, CaseResult, Errno, Kind, NsEntry, NsFd, NsFlags, NsId, Privilege, Proc, Requires,
};

use crate::common::{must_fail, must_fail_with};
use crate::pidfd::open_fds;

fn needs(ioctl: NsIoctl, kinds: &[Kind]) -> Requires {
    let KernelVersion { major, minor, .. } = ioctl.since;
    Requires::kinds(kinds).kernel(major, minor).privilege(Privilege::Admin)
}

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        out.push(
            Case::new(
                format!("ioctl_ns.get_userns.{kind}"),
                &["A4", "P2"],
                format!("NS_GET_USERNS on a {kind} namespace created with a new user namespace returns that user namespace (its parent for user)"),
                move || get_userns(kind),
            )
            .requires(needs(NS_GET_USERNS, &[Kind::User, kind])),
        );
        out.push(
            Case::new(
                format!("ioctl_ns.get_nstype.{kind}"),
                &["A4", "T1"],
                format!("NS_GET_NSTYPE on a {kind} namespace fd returns {}", kind.info().flag_name),
                move || get_nstype(kind, kind.flag()),
            )
            .requires(needs(NS_GET_NSTYPE, &[kind])),
        );
        if kind.info().hierarchical {
            out.push(
                Case::new(
                    format!("ioctl_ns.get_parent.{kind}"),
                    &["A4"],
                    format!("NS_GET_PARENT on a child {kind} namespace returns ours; from inside it, its parent is out of reach (EPERM)"),
                    move || get_parent(kind),
                )
                .requires(needs(NS_GET_PARENT, &[kind])),
            );
        } else {
            out.push(
                Case::new(
                    format!("ioctl_ns.get_parent_einval.{kind}"),
                    &["A4"],
                    format!("NS_GET_PARENT on a {kind} namespace (not hierarchical) is EINVAL"),
                    move || get_parent_einval(kind),
                )
                .requires(needs(NS_GET_PARENT, &[kind])),
            );
        }
        if kind != Kind::User {
            out.push(
                Case::new(
                    format!("ioctl_ns.get_owner_uid_einval.{kind}"),
                    &["A4"],
                    format!("NS_GET_OWNER_UID on a {kind} namespace (not a user namespace) is EINVAL"),
                    move || {
                        let fd = NsFd::current(kind)?;
                        expect_errno!(fd.owner_uid(), Errno::EINVAL, "NS_GET_OWNER_UID on {kind}");
                        Ok(())
                    },
                )
                .requires(needs(NS_GET_OWNER_UID, &[kind])),
            );
        }
    }
    out.push(
        Case::new(
            "ioctl_ns.get_owner_uid.creator",
            &["A4"],
            "NS_GET_OWNER_UID on a user namespace returns its creator's effective uid as the caller sees it",
            || owner_uid(None),
        )
        .requires(needs(NS_GET_OWNER_UID, &[Kind::User])),
    );
    out.push(
        Case::new(
            "ioctl_ns.get_owner_uid.other_uid",
            &["A4"],
            "NS_GET_OWNER_UID on a user namespace created by uid 4242 returns 4242",
            || owner_uid(Some(4242)),
        )
        .requires(needs(NS_GET_OWNER_UID, &[Kind::User]).privilege(Privilege::Root)),
    );
    for kind in Kind::ALL {
        out.push(
            Case::new(
                format!("ioctl_ns.get_userns_eperm.{kind}"),
                &["X8"],
                format!(
                    "from inside a child user namespace, NS_GET_USERNS on a {kind} namespace owned by the parent is EPERM and opens no fd; on one owned by the caller's own user namespace it returns that one"
                ),
                move || get_userns_eperm(kind, true),
            )
            .requires(needs(NS_GET_USERNS, &[Kind::User, kind])),
        );
    }
    for kind in [Kind::Pid, Kind::User] {
        out.push(
            Case::new(
                format!("ioctl_ns.get_parent_eperm.{kind}"),
                &["X8"],
                format!(
                    "from inside a {kind} namespace, NS_GET_PARENT on a sibling's or its own {kind} namespace is EPERM and opens no fd; on its child it returns the caller's own"
                ),
                move || get_parent_eperm(kind, true),
            )
            .requires(needs(NS_GET_PARENT, &[kind])),
        );
    }
    out.push(
        Case::new("ioctl_ns.enotty_on_other_fd", &["A4"], "every ioctl_ns request on a fd that is not an nsfs file is ENOTTY", enotty)
            .requires(Requires::none().kernel(4, 11)),
    );
    out
}

/// The ioctl cases run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        let wrong = if kind == Kind::Uts { Kind::Ipc.flag() } else { Kind::Uts.flag() };
        out.push(
            Case::new(
                format!("sabotage.ioctl_ns.get_nstype.{kind}"),
                &["A4"],
                format!("NS_GET_NSTYPE on {kind} is expected to give {wrong}"),
                move || must_fail(get_nstype(kind, wrong)),
            )
            .requires(needs(NS_GET_NSTYPE, &[kind])),
        );
    }
    for kind in [Kind::Uts, Kind::User, Kind::Pid] {
        out.push(
            Case::new(
                format!("sabotage.ioctl_ns.get_userns_eperm.{kind}"),
                &["X8"],
                format!(
                    "the caller stays in the user namespace that owns the {kind} namespace: the EPERM check must see NS_GET_USERNS succeed"
                ),
                move || must_fail_with(get_userns_eperm(kind, false), "from inside a child user namespace"),
            )
            .requires(needs(NS_GET_USERNS, &[Kind::User, kind])),
        );
    }
    for kind in [Kind::Pid, Kind::User] {
        out.push(
            Case::new(
                format!("sabotage.ioctl_ns.get_parent_eperm.{kind}"),
                &["X8"],
                format!("the caller stays in the parent {kind} namespace: the EPERM check must see NS_GET_PARENT succeed"),
                move || must_fail_with(get_parent_eperm(kind, false), "on a sibling's"),
            )
            .requires(needs(NS_GET_PARENT, &[kind])),
        );
    }
    out.push(
        Case::new(
            "sabotage.ioctl_ns.get_owner_uid.creator",
            &["A4"],
            "the owner uid is expected to be one more than the creator's",
            || must_fail(owner_uid_expecting(None, 1)),
        )
        .requires(needs(NS_GET_OWNER_UID, &[Kind::User])),
    );
    out
}

/// A peer that created a new user namespace and, owned by it, a new
/// namespace of `kind` (time through unshare: its time_for_children).
fn owned_peer(kind: Kind) -> Result<(Peer, NsEntry), CaseError> {
    Ok((Spawn::new_ns_with(kind, Kind::User).spawn_idle()?, NsEntry::of_new_ns(kind)))
}

fn get_userns(kind: Kind) -> CaseResult {
    let (mut peer, entry) = owned_peer(kind)?;
    let target = NsFd::open_entry(peer.proc(), entry)?;
    let peer_user = NsId::of(peer.proc(), Kind::User)?;
    let owner = target.user_ns()?;
    if kind == Kind::User {
        check_eq!(owner.id(), NsId::current(Kind::User)?, "NS_GET_USERNS of a new user namespace (its parent, the creator's)");
    } else {
        check_ne!(peer_user, NsId::current(Kind::User)?, "the peer's user namespace (new)");
        check_eq!(owner.id(), peer_user, "NS_GET_USERNS of the {kind} namespace created with the user namespace");
    }
    // The returned fd is a user namespace fd.
    check_eq!(owner.nstype().map_err(CaseError::from)?, Kind::User.flag(), "NS_GET_NSTYPE of the NS_GET_USERNS result");
    peer.go()?;
    peer.join()
}

fn get_nstype(kind: Kind, expected: NsFlags) -> CaseResult {
    let fd = NsFd::current(kind)?;
    check_eq!(fd.nstype()?.to_string(), expected.to_string(), "NS_GET_NSTYPE of /proc/self/ns/{kind}");
    Ok(())
}

fn get_parent(kind: Kind) -> CaseResult {
    let spawn = match kind {
        Kind::User => Spawn::clone(kind.flag()).map_root(),
        _ => Spawn::clone(kind.flag()),
    };
    let mut peer = spawn.spawn(|ch| {
        // From inside, the parent is an ancestor of the caller's namespace.
        let own = NsFd::current(kind)?;
        expect_errno!(own.parent(), Errno::EPERM, "NS_GET_PARENT on its own {kind} namespace from inside");
        ch.ready()?;
        ch.wait()
    })?;
    peer.wait_ready()?;
    let child = NsFd::open(peer.proc(), kind)?;
    check_ne!(child.id(), NsId::current(kind)?, "the peer's {kind} namespace (new)");
    let parent = child.parent()?;
    check_eq!(parent.id(), NsId::current(kind)?, "NS_GET_PARENT of the child {kind} namespace");
    // Our own namespace's parent is always out of reach: ioctl_ns(2), EPERM
    // "The requested namespace is outside of the caller's namespace scope",
    // which also covers the initial namespace (it has no parent).
    expect_errno!(NsFd::current(kind)?.parent(), Errno::EPERM, "NS_GET_PARENT on our own {kind} namespace");
    peer.go()?;
    peer.join()
}

fn get_parent_einval(kind: Kind) -> CaseResult {
    let fd = NsFd::current(kind)?;
    expect_errno!(fd.parent(), Errno::EINVAL, "NS_GET_PARENT on /proc/self/ns/{kind}");
    Ok(())
}

fn owner_uid(creator: Option<u32>) -> CaseResult {
    owner_uid_expecting(creator, 0)
}

/// `creator` None: the case's own effective uid creates the namespace;
/// Some(uid): that uid does. `offset` sabotages the expectation.
fn owner_uid_expecting(creator: Option<u32>, offset: u32) -> CaseResult {
    let mut spawn = Spawn::unshare(Kind::User.flag());
    if let Some(uid) = creator {
        spawn = spawn.as_user(uid, uid);
    }
    let expected = creator.unwrap_or_else(|| nix::unistd::geteuid().as_raw()) + offset;
    let mut peer = spawn.spawn_idle()?;
    let fd = NsFd::open(peer.proc(), Kind::User)?;
    check_eq!(fd.owner_uid()?, expected, "NS_GET_OWNER_UID of a user namespace created by uid {}", expected - offset);
    // Another process of ours reading the same fd sees the same owner.
    let seen_in_child = call(&Spawn::fork(), || Ok(fd.owner_uid()?))?;
    check_eq!(seen_in_child, expected, "NS_GET_OWNER_UID read by another process of ours");
    peer.go()?;
    peer.join()
}

fn enotty() -> CaseResult {
    let file = std::fs::File::open("/proc/self/stat")?;
    let (pipe_r, _pipe_w) = nix::unistd::pipe()?;
    for (what, fd) in [("a /proc file", file.as_fd()), ("a pipe", pipe_r.as_fd())] {
        for req in NS_IOCTLS {
            let result = if req.name == NS_GET_OWNER_UID.name {
                nsfd::owner_uid(fd).map(drop)
            } else if req.name == NS_GET_NSTYPE.name {
                nsfd::nstype(fd).map(drop)
            } else {
                nsfd::ioctl_fd(fd, req).map(drop)
            };
            expect_errno!(result, Errno::ENOTTY, "{} on {what}", req.name);
        }
    }
    Ok(())
}

/// X8, NS_GET_USERNS (fs/nsfs.c ns_get_owner(): the owner must be the
/// caller's user namespace or a descendant of it, else EPERM). A namespace
/// of `kind` created here is owned by our user namespace (for user: a child
/// of ours, whose owner is ours); a process in a new child user namespace
/// C may not reach it, but reaches the owner of what it creates itself (C).
/// `enter` false is the sabotage: the caller stays in our user namespace.
fn get_userns_eperm(kind: Kind, enter: bool) -> CaseResult {
    let mut outer_peer = Spawn::new_ns(kind).spawn_idle()?;
    let outer = NsFd::open_entry(outer_peer.proc(), NsEntry::of_new_ns(kind))?;
    let ours = NsId::current(Kind::User)?;
    check_eq!(outer.user_ns()?.id(), ours, "NS_GET_USERNS of the {kind} namespace from the user namespace that owns it");
    let step = if enter { Spawn::unshare(Kind::User.flag()).map_root() } else { Spawn::fork() };
    call(&step, move || {
        let own = NsId::current(Kind::User)?;
        let fds = open_fds()?;
        expect_errno!(
            outer.user_ns(),
            Errno::EPERM,
            "NS_GET_USERNS on a {kind} namespace owned by the parent user namespace, from inside a child user namespace"
        );
        check_eq!(open_fds()?, fds, "the caller's fds after the refused NS_GET_USERNS");
        if kind == Kind::User {
            // The caller's own user namespace is in its subtree; its owner
            // (the parent) is not.
            expect_errno!(NsFd::current(Kind::User)?.user_ns(), Errno::EPERM, "NS_GET_USERNS on the caller's own user namespace");
            check_eq!(open_fds()?, fds, "the caller's fds after the refused NS_GET_USERNS on its own user namespace");
        }
        // The boundary: the owner is the caller's own user namespace.
        let mut inner_peer = Spawn::new_ns(kind).spawn_idle()?;
        let inner = NsFd::open_entry(inner_peer.proc(), NsEntry::of_new_ns(kind))?;
        check_eq!(inner.user_ns()?.id(), own, "NS_GET_USERNS of a {kind} namespace created in the caller's own user namespace");
        inner_peer.go()?;
        inner_peer.join()
    })?;
    outer_peer.go()?;
    outer_peer.join()
}

/// X8, NS_GET_PARENT: the parent must lie in the caller's subtree: for user
/// the caller's user namespace (ns_get_owner()), for pid its active pid
/// namespace (pidns_get_parent()). A sibling's parent (ours) and the
/// caller's own parent are out of reach; its child's parent (itself) is
/// not. `enter` false is the sabotage: the caller stays in our namespace.
///
/// Inside a new pid namespace `/proc` still shows ours, so the caller names
/// only itself (`/proc/self`): its child namespace is its pid_for_children,
/// kept in `/proc` by a live first process.
fn get_parent_eperm(kind: Kind, enter: bool) -> CaseResult {
    let mut sibling_peer = Spawn::new_ns(kind).spawn_idle()?;
    let sibling = NsFd::open(sibling_peer.proc(), kind)?;
    check_eq!(sibling.parent()?.id(), NsId::current(kind)?, "NS_GET_PARENT of a child {kind} namespace from its parent");
    let step = match (enter, kind) {
        (false, _) => Spawn::fork(),
        (true, Kind::User) => Spawn::unshare(kind.flag()).map_root(),
        (true, _) => Spawn::clone(kind.flag()),
    };
    call(&step, move || {
        let own = NsId::current(kind)?;
        let fds = open_fds()?;
        expect_errno!(
            sibling.parent(),
            Errno::EPERM,
            "NS_GET_PARENT on a sibling's {kind} namespace, from inside a child {kind} namespace"
        );
        check_eq!(open_fds()?, fds, "the caller's fds after the refused NS_GET_PARENT on a sibling");
        expect_errno!(NsFd::current(kind)?.parent(), Errno::EPERM, "NS_GET_PARENT on the caller's own {kind} namespace");
        check_eq!(open_fds()?, fds, "the caller's fds after the refused NS_GET_PARENT on its own namespace");
        // The boundary: the parent is the caller's own namespace.
        let (child, holder) = match kind {
            Kind::User => {
                let peer = Spawn::new_ns(kind).spawn_idle()?;
                (NsFd::open(peer.proc(), kind)?, peer)
            }
            _ => {
                harness::ns::unshare(kind)?;
                let first = Spawn::fork().spawn_idle()?;
                (NsFd::open_entry(Proc::Myself, NsEntry { kind: Kind::Pid, for_children: true })?, first)
            }
        };
        check_ne!(child.id(), own, "the child {kind} namespace vs the caller's");
        check_eq!(child.parent()?.id(), own, "NS_GET_PARENT of a child of the caller's own {kind} namespace");
        let mut holder = holder;
        holder.go()?;
        holder.join()
    })?;
    sibling_peer.go()?;
    sibling_peer.join()
}
