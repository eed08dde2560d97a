//! user_namespaces(7): user and group IDs belong to the user namespace
//! (T2.user). uid_map/gid_map make uid 0 inside the creator outside; the
//! first process has every capability inside and none over what the parent
//! namespace owns; a map is written once; an unprivileged gid_map needs
//! setgroups denied first.

use std::fs;
use std::os::unix::fs::MetadataExt;

use harness::peer::{in_child, Spawn};
use harness::userns::{write_map, write_map_text, write_setgroups, IdMap, MapFile};
use harness::{check_eq, expect_errno, Case, CaseResult, Errno, Kind, NsFd, Privilege, Proc, Requires, Setup};
use nix::unistd::{getegid, geteuid, getgid, getuid};

use crate::common::{must_fail_with, unique};

/// The uid a process is given in the intermediate user namespace, so that
/// "the creator" is never uid 0 (which a kernel ignoring maps would show too).
const CREATOR_UID: u32 = 1000;

fn requires() -> Requires {
    Requires::kinds(&[Kind::User, Kind::Uts]).privilege(Privilege::Admin).user_namespaces()
}

/// The setgroups cases run with the suite's own ids: a new user namespace
/// inherits its parent's setgroups setting, and the namespace the harness
/// makes for [`Privilege::Admin`] has it denied already.
fn requires_setgroups_allowed() -> Requires {
    Requires::kinds(&[Kind::User]).user_namespaces()
}

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "isolation.user.root_maps_to_creator",
            &["T2.user"],
            "uid 0 of a new user namespace (mapped to its creator) is the creator's uid outside, overflowuid in a \
             sibling namespace, and uid 0 again for a setns() joiner; it has every capability inside and none over \
             the parent's UTS namespace",
            || root_maps_to_creator(true),
        )
        .requires(requires()),
        Case::new(
            "isolation.user.map_written_once",
            &["T2.user"],
            "uid_map and gid_map can be written once: a second write, from outside or inside, fails with EPERM and \
             leaves the map as written",
            map_written_once,
        )
        .requires(requires()),
        Case::new(
            "isolation.user.setgroups_before_gid_map",
            &["T2.user"],
            "an unprivileged process may write its own gid_map only after writing \"deny\" to setgroups, which then \
             stays denied and makes setgroups(2) fail with EPERM",
            || setgroups_before_gid_map(false),
        )
        .requires(requires_setgroups_allowed()),
    ]
}

/// The user cases run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    vec![
        Case::new(
            "sabotage.isolation.user.root_maps_to_creator",
            &["T2.user"],
            "the new user namespace gets no uid_map: uid 0 must not be seen inside",
            || must_fail_with(root_maps_to_creator(false), "uid inside"),
        )
        .requires(requires()),
        Case::new(
            "sabotage.isolation.user.setgroups_before_gid_map",
            &["T2.user"],
            "setgroups is denied before the first gid_map write: that write must no longer fail",
            || must_fail_with(setgroups_before_gid_map(true), "gid_map while setgroups is allowed"),
        )
        .requires(requires_setgroups_allowed()),
    ]
}

/// The Uid line of /proc/<pid>/status (real, effective, saved, fs) as the
/// reader's user namespace shows them.
fn status_uids(proc: Proc) -> Result<Vec<u32>, harness::CaseError> {
    let path = match proc {
        Proc::Myself => "/proc/self/status".to_string(),
        Proc::Pid(p) => format!("/proc/{p}/status"),
    };
    let text = fs::read_to_string(&path)?;
    let line = text.lines().find_map(|l| l.strip_prefix("Uid:")).ok_or_else(|| harness::CaseError::fail(format!("no Uid in {path}")))?;
    line.split_whitespace().map(|n| n.parse().map_err(|_| harness::CaseError::fail(format!("bad Uid {line:?}")))).collect()
}

/// Every capability this kernel knows, as a CapEff mask.
fn full_caps() -> Result<u64, harness::CaseError> {
    let last: u32 =
        fs::read_to_string("/proc/sys/kernel/cap_last_cap").setup("read cap_last_cap")?.trim().parse().setup("parse cap_last_cap")?;
    Ok(if last >= 63 { u64::MAX } else { (1u64 << (last + 1)) - 1 })
}

fn cap_eff() -> Result<u64, harness::CaseError> {
    Ok(harness::probe::cap_set("self", "CapEff")?)
}

fn overflow_uid() -> Result<u32, harness::CaseError> {
    fs::read_to_string("/proc/sys/kernel/overflowuid").setup("read overflowuid")?.trim().parse().setup("parse overflowuid")
}

/// What the first process of the new namespace sees of itself.
type Inside = (u32, u32, u64, String);

/// `map` false is the sabotage: the namespace gets no uid_map.
fn root_maps_to_creator(map: bool) -> CaseResult {
    let (uid, gid) = (geteuid().as_raw(), getegid().as_raw());
    let full = full_caps()?;
    let overflow = overflow_uid()?;
    // The parent namespace P: the case's ids are CREATOR_UID there, and it
    // owns a UTS namespace of its own (a sandbox for the capability check).
    let mut parent = Spawn::unshare(Kind::User.flag() | Kind::Uts.flag()).spawn(|ch| {
        write_setgroups(Proc::Myself, false)?;
        write_map(Proc::Myself, MapFile::Uid, &IdMap::single(CREATOR_UID, uid))?;
        write_map(Proc::Myself, MapFile::Gid, &IdMap::single(CREATOR_UID, gid))?;
        check_eq!(getuid().as_raw(), CREATOR_UID, "uid in the intermediate user namespace");
        let child = if map { Spawn::clone(Kind::User.flag()).map_root() } else { Spawn::clone(Kind::User.flag()) };
        let mut child = child.spawn(|c| {
            let me: Inside = (getuid().as_raw(), geteuid().as_raw(), cap_eff()?, fs::read_to_string("/proc/self/uid_map")?);
            c.send(&me)?;
            // No capability over the parent's UTS namespace; full ones over
            // a UTS namespace this user namespace owns.
            let name = nix::sys::utsname::uname()?.nodename().to_owned();
            expect_errno!(nix::unistd::sethostname(&name), Errno::EPERM, "sethostname in the UTS namespace of the parent user namespace");
            harness::ns::unshare(Kind::Uts)?;
            nix::unistd::sethostname(unique("user"))?;
            c.ready()?;
            c.wait()
        })?;
        let inside: Inside = child.recv()?;
        check_eq!((inside.0, inside.1), (0, 0), "uid inside (real, effective) of the first process of a new user namespace");
        check_eq!(inside.2, full, "CapEff of the first process of a new user namespace (every capability)");
        check_eq!(IdMap::parse(&inside.3).ok(), Some(IdMap::single(0, CREATOR_UID)), "uid_map read inside: {:?}", inside.3);
        child.wait_ready()?;
        let c = child.proc();
        check_eq!(status_uids(c)?, vec![CREATOR_UID; 4], "uids of the new namespace's uid 0, seen from the parent namespace");
        let owner = fs::metadata(format!("/proc/{}", child.pid())).setup("stat /proc/<pid>")?.uid();
        check_eq!(owner, CREATOR_UID, "owner of /proc/<pid> of the new namespace's uid 0, seen from the parent namespace");
        // A sibling user namespace without maps sees neither id.
        let sibling = Spawn::clone(Kind::User.flag());
        let (own_in_sibling, child_in_sibling) = harness::peer::call(&sibling, || Ok((getuid().as_raw(), status_uids(c)?)))?;
        check_eq!(own_in_sibling, overflow, "uid of the first process of an unmapped sibling user namespace (overflowuid)");
        check_eq!(child_in_sibling, vec![overflow; 4], "uids of the other namespace's uid 0, seen from an unmapped sibling");
        // The parent's owner may join: there its uid is 0, with every capability.
        let joined = in_child(|| {
            NsFd::open(c, Kind::User)?.setns(Kind::User.flag())?;
            Ok((getuid().as_raw(), cap_eff()?))
        })?;
        check_eq!(joined, (0, full), "uid and CapEff of a process that joined with setns(CLONE_NEWUSER)");
        ch.send(&child.pid().as_raw())?;
        ch.wait()?;
        child.go()?;
        child.join()
    })?;
    let child: i32 = parent.recv()?;
    // From the case's own namespace, two levels up: the case's own uid.
    let seen = status_uids(Proc::Pid(child))?;
    parent.go()?;
    parent.join()?;
    check_eq!(seen, vec![uid; 4], "uids of the nested namespace's uid 0, seen from the case's namespace");
    Ok(())
}

fn map_written_once() -> CaseResult {
    let (uid, gid) = (geteuid().as_raw(), getegid().as_raw());
    let mut peer = Spawn::clone(Kind::User.flag()).spawn(|ch| {
        ch.wait()?;
        let ids = (getuid().as_raw(), getgid().as_raw());
        expect_errno!(write_map(Proc::Myself, MapFile::Uid, &IdMap::single(0, uid)), Errno::EPERM, "a second uid_map write, from inside");
        expect_errno!(write_map(Proc::Myself, MapFile::Gid, &IdMap::single(0, gid)), Errno::EPERM, "a second gid_map write, from inside");
        ch.send(&ids)
    })?;
    let p = peer.proc();
    write_map(p, MapFile::Uid, &IdMap::single(0, uid))?;
    write_map(p, MapFile::Gid, &IdMap::single(0, gid))?;
    expect_errno!(write_map(p, MapFile::Uid, &IdMap::single(0, uid)), Errno::EPERM, "a second uid_map write, the same map, from outside");
    expect_errno!(write_map_text(p, MapFile::Uid, "1 0 1\n"), Errno::EPERM, "a second uid_map write, another map, from outside");
    expect_errno!(write_map(p, MapFile::Gid, &IdMap::single(0, gid)), Errno::EPERM, "a second gid_map write, from outside");
    let read = |f: &str| fs::read_to_string(format!("/proc/{}/{f}", peer.pid()));
    let (uid_map, gid_map) = (read("uid_map")?, read("gid_map")?);
    peer.go()?;
    let ids: (u32, u32) = peer.recv()?;
    peer.join()?;
    check_eq!(IdMap::parse(&uid_map).ok(), Some(IdMap::single(0, uid)), "uid_map after the refused writes: {uid_map:?}");
    check_eq!(IdMap::parse(&gid_map).ok(), Some(IdMap::single(0, gid)), "gid_map after the refused writes: {gid_map:?}");
    check_eq!(ids, (0, 0), "uid and gid inside after the maps were written");
    Ok(())
}

/// `deny_first` true is the sabotage: setgroups is denied before the first
/// gid_map write, which then succeeds.
fn setgroups_before_gid_map(deny_first: bool) -> CaseResult {
    let (uid, gid) = (geteuid().as_raw(), getegid().as_raw());
    harness::peer::call(&Spawn::clone(Kind::User.flag()), || {
        write_map(Proc::Myself, MapFile::Uid, &IdMap::single(0, uid))?;
        check_eq!(fs::read_to_string("/proc/self/setgroups")?.trim().to_string(), "allow", "setgroups of a new user namespace");
        if deny_first {
            write_setgroups(Proc::Myself, false)?;
        }
        expect_errno!(
            write_map(Proc::Myself, MapFile::Gid, &IdMap::single(0, gid)),
            Errno::EPERM,
            "an unprivileged write of its own gid_map while setgroups is allowed"
        );
        write_setgroups(Proc::Myself, false)?;
        write_map(Proc::Myself, MapFile::Gid, &IdMap::single(0, gid))?;
        check_eq!(getgid().as_raw(), 0, "gid inside after gid_map");
        check_eq!(fs::read_to_string("/proc/self/setgroups")?.trim().to_string(), "deny", "setgroups after writing deny");
        expect_errno!(nix::unistd::setgroups(&[]), Errno::EPERM, "setgroups(2) once setgroups is denied");
        expect_errno!(write_setgroups(Proc::Myself, true), Errno::EPERM, "writing allow to setgroups after gid_map was written");
        Ok(())
    })
}
