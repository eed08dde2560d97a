//! namespaces(7), clone(2), unshare(2), user_namespaces(7): who may create
//! namespaces (P1, P2) and what their creator controls (P3).

use harness::known::CLONE3_NEWTIME_EINVAL;
use harness::peer::{call, in_child, Spawn};
use harness::probe::{cap_set, has_cap, Cap};
use harness::{
    check, check_eq, check_ne, expect_errno, Case, CaseError, CaseResult, Errno, Kind, NsFd, NsFlags, NsId, Privilege, Proc, Requires,
};

use crate::common::{in_new_ns, must_fail_with};

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
                move || eperm_without_cap(kind, true),
            )
            .requires(Requires::kinds(&[kind]))
            .known_deviation_if(kind == Kind::Time, &CLONE3_NEWTIME_EINVAL),
        );
        out.push(
            Case::new(
                format!("privilege.unprivileged_userns_then.{kind}"),
                &["P2", "A4"],
                format!("an unprivileged uid creates a user namespace, then inside it a {kind} namespace owned by it"),
                move || unprivileged_userns_then(kind, true),
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
                move || creator_controls(k[0], true),
            )
            .requires(Requires::kinds(&kinds).privilege(Privilege::Admin)),
        );
    }
    out
}

/// The privilege cases run sabotaged: each must then fail at its check.
pub fn sabotaged() -> Vec<Case> {
    let mut out = Vec::new();
    for kind in Kind::ALL.into_iter().filter(|k| *k != Kind::User) {
        let flag_name = kind.info().flag_name;
        // The first call the case expects to be refused: clone(2) where it
        // takes the flag, else unshare(2) (clone3(2) comes last).
        let first = if kind.info().legacy_clone { "clone" } else { "unshare" };
        out.push(
            Case::new(
                format!("sabotage.privilege.eperm_without_cap_sys_admin.{kind}"),
                &["P1"],
                format!("the peer keeps CAP_SYS_ADMIN: its {first}({flag_name}) must succeed where EPERM is expected"),
                move || must_fail_with(eperm_without_cap(kind, false), &format!("{first}({flag_name}) without CAP_SYS_ADMIN")),
            )
            .requires(Requires::kinds(&[kind]).privilege(Privilege::Admin)),
        );
        out.push(
            Case::new(
                format!("sabotage.privilege.unprivileged_userns_then.{kind}"),
                &["P2"],
                format!("the unprivileged creator skips the {kind} create inside its user namespace: no new {kind} namespace must be seen"),
                move || {
                    must_fail_with(
                        unprivileged_userns_then(kind, false),
                        &format!("{kind} namespace created inside the new user namespace"),
                    )
                },
            )
            .requires(Requires::kinds(&[Kind::User, kind]).kernel(4, 9).user_namespaces()),
        );
    }
    for kind in [Kind::Uts, Kind::Mnt, Kind::Net] {
        out.push(
            Case::new(
                format!("sabotage.privilege.creator_controls.{kind}"),
                &["P3"],
                format!(
                    "the creator changes the {kind} resource from outside its namespace (in a further new one): its later child must not see it"
                ),
                move || must_fail_with(creator_controls(kind, false), &format!("{kind} state seen by a child the creator starts afterwards")),
            )
            .requires(Requires::kinds(&[kind]).privilege(Privilege::Admin)),
        );
    }
    out
}

/// `drop_cap` false is the sabotage: the peer keeps CAP_SYS_ADMIN, so the
/// calls expected to be refused succeed.
fn eperm_without_cap(kind: Kind, drop_cap: bool) -> CaseResult {
    let flag = kind.info().flag;
    let peer = if drop_cap { unprivileged(Spawn::fork()) } else { Spawn::fork() };
    call(&peer, || {
        if drop_cap {
            check!(!has_cap(Cap::SYS_ADMIN), "the peer still has CAP_SYS_ADMIN");
        } else {
            check!(has_cap(Cap::SYS_ADMIN), "the sabotaged peer lacks CAP_SYS_ADMIN");
        }
        let before = NsId::all(Proc::Myself)?;
        if kind.info().legacy_clone {
            expect_errno!(Spawn::clone(flag).spawn(|_| Ok(())), Errno::EPERM, "clone({}) without CAP_SYS_ADMIN", kind.info().flag_name);
        }
        expect_errno!(harness::ns::unshare(flag), Errno::EPERM, "unshare({}) without CAP_SYS_ADMIN", kind.info().flag_name);
        // clone3 last: the kernels that refuse CLONE_NEWTIME with EINVAL
        // before checking privilege (a known deviation) still get every
        // other check, and then fail at that deviation's check.
        let refused_newtime = match Spawn::clone3(flag).spawn(|_| Ok(())) {
            Err(e) if kind == Kind::Time && e.errno == Errno::EINVAL => true,
            other => {
                expect_errno!(other, Errno::EPERM, "clone3({}) without CAP_SYS_ADMIN", kind.info().flag_name);
                false
            }
        };
        let after = NsId::all(Proc::Myself)?;
        check_eq!(after, before, "namespaces after the refused calls");
        check_eq!(
            NsId::for_children(Proc::Myself, kind)?,
            NsId::current(kind)?,
            "{kind} namespace of later children after the refused calls"
        );
        if refused_newtime {
            return Err(CaseError::deviation(
                &CLONE3_NEWTIME_EINVAL,
                "clone3(CLONE_NEWTIME) without CAP_SYS_ADMIN, where EPERM is documented",
            ));
        }
        Ok(())
    })
}

/// `inner_create` false is the sabotage: inside its user namespace the
/// creator reports from a plain child instead of creating a `kind` one.
fn unprivileged_userns_then(kind: Kind, inner_create: bool) -> CaseResult {
    let outer_user = NsId::current(Kind::User)?;
    let outer_kind = NsId::current(kind)?;
    // The owner as NS_GET_USERNS gives it, or its errno: EPERM for a
    // namespace owned outside the caller's user namespace (ioctl_ns(2)), as
    // the sabotage's is, which must still reach the check on the namespace.
    type Report = (NsId, NsId, Result<NsId, i32>);
    let (own_user, inner, owner): Report = call(&unprivileged(Spawn::unshare(Kind::User.flag())).map_root(), || {
        let own_user = NsId::current(Kind::User)?;
        let report = || {
            let fd = NsFd::current(kind)?;
            Ok((fd.id(), fd.user_ns().map(|u| u.id()).map_err(|e| e.errno as i32)))
        };
        let (inner, owner) = if inner_create { in_new_ns(kind, NsFlags::EMPTY, report)? } else { call(&Spawn::fork(), report)? };
        Ok((own_user, inner, owner))
    })?;
    check_ne!(own_user, outer_user, "user namespace of the unprivileged creator after unshare(CLONE_NEWUSER)");
    check_ne!(inner, outer_kind, "{kind} namespace created inside the new user namespace");
    check_eq!(owner.map_err(Errno::from_raw), Ok(own_user), "NS_GET_USERNS of the {kind} namespace (its owner)");
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

/// The creator's change to the `kind` resource of the namespace it is in
/// (a new one, never the suite's).
fn change(kind: Kind, marker: &str) -> CaseResult {
    match kind {
        Kind::Uts => nix::unistd::sethostname(P3_HOSTNAME)?,
        Kind::Net => std::fs::write("/proc/sys/net/ipv4/ip_default_ttl", P3_TTL)?,
        _ => {
            harness::mntns::private_scratch()?;
            std::fs::write(marker, "set by the creator")?;
        }
    }
    Ok(())
}

/// `in_creator_ns` false is the sabotage: the creator makes the change from
/// outside its namespace, in a child in a further new `kind` namespace.
fn creator_controls(kind: Kind, in_creator_ns: bool) -> CaseResult {
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
        if in_creator_ns {
            change(kind, &m)?;
        } else {
            call(&Spawn::unshare(kind.flag()), || change(kind, &m))?;
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
