//! namespaces(7), clone(2), unshare(2), user_namespaces(7): who may create
//! namespaces (P1, P2) and what their creator controls (P3).

use harness::peer::{call, in_child, Spawn};
use harness::probe::{cap_set, has_cap, Cap, KernelVersion};
use harness::{check, check_eq, check_ne, expect_errno, Case, CaseError, CaseResult, Errno, Kind, NsFd, NsId, Privilege, Proc, Requires};
use nix::mount::{mount, MsFlags};

use crate::common::in_new_ns;

/// The uid an unprivileged peer runs as when the suite is root.
const NOBODY: u32 = 65534;

/// A plain child without CAP_SYS_ADMIN: the suite's own uid when it is
/// unprivileged, else uid 65534 (setresuid drops every capability).
fn unprivileged(spawn: Spawn) -> Spawn {
    if has_cap(Cap::SYS_ADMIN) {
        spawn.as_user(NOBODY, NOBODY)
    } else {
        spawn
    }
}

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for kind in Kind::ALL.into_iter().filter(|k| *k != Kind::User) {
        out.push(
            Case::new(
                format!("privilege.eperm_without_cap_sys_admin.{kind}"),
                &["P1"],
                format!("without CAP_SYS_ADMIN, clone and unshare of {} fail with EPERM and move nothing", kind.info().flag_name),
                move || eperm_without_cap(kind),
            )
            .requires(Requires::kinds(&[kind])),
        );
        out.push(
            Case::new(
                format!("privilege.unprivileged_userns_then.{kind}"),
                &["P2", "A4"],
                format!("an unprivileged uid creates a user namespace, then inside it a {kind} namespace owned by it"),
                move || unprivileged_userns_then(kind),
            )
            .requires(Requires::kinds(&[Kind::User, kind]).kernel(4, 9).user_namespaces()),
        );
    }
    out.push(
        Case::new(
            "privilege.unprivileged_userns.full_caps_inside",
            &["P2"],
            "an unprivileged uid creates a user namespace and has every capability of its bounding set inside, none outside",
            full_caps_inside,
        )
        .requires(Requires::kinds(&[Kind::User]).user_namespaces()),
    );
    for (what, kinds) in [("uts", vec![Kind::Uts]), ("mnt", vec![Kind::Mnt]), ("net", vec![Kind::Net])] {
        let k = kinds.clone();
        out.push(
            Case::new(
                format!("privilege.creator_controls.{what}"),
                &["P3"],
                format!("what the creator sets in its new {what} namespace is seen by its later children and by a process that joins with setns"),
                move || creator_controls(k[0]),
            )
            .requires(Requires::kinds(&kinds).privilege(Privilege::Admin)),
        );
    }
    out
}

fn eperm_without_cap(kind: Kind) -> CaseResult {
    let flag = kind.info().flag;
    call(&unprivileged(Spawn::fork()), || {
        check!(!has_cap(Cap::SYS_ADMIN), "the peer still has CAP_SYS_ADMIN");
        let before = NsId::all(Proc::Myself)?;
        if kind.info().legacy_clone {
            expect_errno!(Spawn::clone(flag).spawn(|_| Ok(())), Errno::EPERM, "clone({}) without CAP_SYS_ADMIN", kind.info().flag_name);
        }
        let clone3 = Spawn::clone3(flag).spawn(|_| Ok(()));
        match clone3 {
            // clone3 refused CLONE_NEWTIME before checking privilege until 6.3.
            Err(e) if kind == Kind::Time && e.errno == Errno::EINVAL && KernelVersion::running() < KernelVersion::new(6, 3) => {}
            other => expect_errno!(other, Errno::EPERM, "clone3({}) without CAP_SYS_ADMIN", kind.info().flag_name),
        }
        expect_errno!(harness::sys::unshare(flag), Errno::EPERM, "unshare({}) without CAP_SYS_ADMIN", kind.info().flag_name);
        let after = NsId::all(Proc::Myself)?;
        check_eq!(after, before, "namespaces after the refused calls");
        check_eq!(
            NsId::for_children(Proc::Myself, kind)?,
            NsId::current(kind)?,
            "{kind} namespace of later children after the refused calls"
        );
        Ok(())
    })
}

fn unprivileged_userns_then(kind: Kind) -> CaseResult {
    let outer_user = NsId::current(Kind::User)?;
    let outer_kind = NsId::current(kind)?;
    let (own_user, inner, owner): (NsId, NsId, NsId) = call(&unprivileged(Spawn::unshare(Kind::User.flag())).map_root(), || {
        let own_user = NsId::current(Kind::User)?;
        let (inner, owner) = in_new_ns(kind, 0, || {
            let fd = NsFd::current(kind)?;
            Ok((fd.id(), fd.user_ns()?.id()))
        })?;
        Ok((own_user, inner, owner))
    })?;
    check_ne!(own_user, outer_user, "user namespace of the unprivileged creator after unshare(CLONE_NEWUSER)");
    check_ne!(inner, outer_kind, "{kind} namespace created inside the new user namespace");
    check_eq!(owner, own_user, "NS_GET_USERNS of the {kind} namespace (its owner)");
    Ok(())
}

fn full_caps_inside() -> CaseResult {
    let (outside, inside, bounding): (u64, u64, u64) = call(&unprivileged(Spawn::fork()), || {
        let outside = cap_set("self", "CapEff")?;
        let (inside, bounding) =
            call(&Spawn::unshare(Kind::User.flag()).map_root(), || Ok((cap_set("self", "CapEff")?, cap_set("self", "CapBnd")?)))?;
        Ok((outside, inside, bounding))
    })?;
    check_eq!(outside, 0, "CapEff of the unprivileged creator before");
    check_eq!(format!("{inside:#x}"), format!("{bounding:#x}"), "CapEff inside the new user namespace (the whole bounding set)");
    check!(inside & (1 << Cap::SYS_ADMIN.0) != 0, "no CAP_SYS_ADMIN inside the new user namespace");
    // None over resources owned outside: the host's hostname cannot be set.
    call(&unprivileged(Spawn::unshare(Kind::User.flag())).map_root(), || {
        let name = nix::unistd::gethostname()?;
        expect_errno!(nix::unistd::sethostname(&name), Errno::EPERM, "sethostname in the initial uts namespace from a new user namespace");
        Ok(())
    })
}

const P3_HOSTNAME: &str = "nsverify-creator";
const P3_TTL: &str = "42";

/// State the creator sets and others observe.
fn observe(kind: Kind, marker: &str) -> Result<String, CaseError> {
    Ok(match kind {
        Kind::Uts => nix::unistd::gethostname()?.to_string_lossy().into_owned(),
        Kind::Net => std::fs::read_to_string("/proc/sys/net/ipv4/ip_default_ttl")?.trim().to_string(),
        Kind::Mnt => std::fs::read_to_string(marker).unwrap_or_else(|e| format!("<{e}>")),
        _ => unreachable!("generated for uts, net and mnt"),
    })
}

fn creator_controls(kind: Kind) -> CaseResult {
    let marker = format!("/tmp/nsverify-p3-{}", std::process::id());
    let before = observe(kind, &marker)?;
    let expected = match kind {
        Kind::Uts => P3_HOSTNAME.to_string(),
        Kind::Net => P3_TTL.to_string(),
        _ => "set by the creator".to_string(),
    };
    let m = marker.clone();
    let outside = NsId::current(kind)?;
    let mut creator = Spawn::clone(kind.flag()).spawn(move |ch| {
        // Never change the caller's namespace: only a new one.
        check_ne!(NsId::current(kind)?, outside, "{kind} namespace of the creator");
        match kind {
            Kind::Uts => nix::unistd::sethostname(P3_HOSTNAME)?,
            Kind::Net => std::fs::write("/proc/sys/net/ipv4/ip_default_ttl", P3_TTL)?,
            _ => {
                mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)?;
                mount(Some("tmpfs"), "/tmp", Some("tmpfs"), MsFlags::empty(), Some("size=64k"))?;
                std::fs::write(&m, "set by the creator")?;
            }
        }
        let later_child = call(&Spawn::fork(), || observe(kind, &m))?;
        ch.send(&later_child)?;
        ch.wait()
    })?;
    let later_child: String = creator.recv()?;
    let fd = NsFd::open(creator.proc(), kind)?;
    let joiner = in_child(|| {
        fd.setns(kind.flag())?;
        observe(kind, &marker)
    })?;
    let outside = observe(kind, &marker)?;
    creator.go()?;
    creator.join()?;
    check_eq!(later_child, expected, "{kind} state seen by a child the creator starts afterwards");
    check_eq!(joiner, expected, "{kind} state seen by a process that joins with setns");
    check_eq!(outside, before, "{kind} state outside the creator's namespace");
    Ok(())
}
