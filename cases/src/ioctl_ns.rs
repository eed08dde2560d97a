//! ioctl_ns(2): NS_GET_USERNS, NS_GET_PARENT, NS_GET_NSTYPE, NS_GET_OWNER_UID (A4).

use std::os::fd::AsFd;

use harness::nsfd::{self, NsIoctl, NS_GET_NSTYPE, NS_GET_OWNER_UID, NS_GET_PARENT, NS_GET_USERNS, NS_IOCTLS};
use harness::peer::{call, Peer, Spawn};
use harness::probe::KernelVersion;
use harness::{check_eq, check_ne, expect_errno, Case, CaseError, CaseResult, Errno, Kind, NsFd, NsId, Privilege, Requires};

use crate::common::{must_fail, new_ns_entry, spawn_in_new};

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
                format!("NS_GET_NSTYPE on {kind} is expected to give {}", harness::flags::describe(wrong)),
                move || must_fail(get_nstype(kind, wrong)),
            )
            .requires(needs(NS_GET_NSTYPE, &[kind])),
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
fn owned_peer(kind: Kind) -> Result<(Peer, &'static str), CaseError> {
    Ok((spawn_in_new(kind, Kind::User.flag()).spawn_idle()?, new_ns_entry(kind)))
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

fn get_nstype(kind: Kind, expected: u64) -> CaseResult {
    let fd = NsFd::current(kind)?;
    check_eq!(harness::flags::describe(fd.nstype()?), harness::flags::describe(expected), "NS_GET_NSTYPE of /proc/self/ns/{kind}");
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
