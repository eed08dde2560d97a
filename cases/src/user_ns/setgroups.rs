//! U2: an unprivileged writer must deny setgroups before writing gid_map (a
//! writer with CAP_SETGID in the parent namespace need not), after which
//! setgroups(2) is EPERM in that namespace and in the user namespaces
//! created inside it.

use std::fs;

use harness::caps::StatusIds;
use harness::peer::{call, Spawn};
use harness::userns::{write_map, write_setgroups, IdMap, MapFile};
use harness::{check_eq, check_ne, expect_errno, CaseError, CaseResult, Errno, Kind, NsFlags, NsId, Proc};
use nix::unistd::{setgroups, Gid};

use super::{parsed, range, read_map, unprivileged_ids, L1_GID, L1_UID};

fn setgroups_text(proc: Proc) -> Result<String, CaseError> {
    Ok(read_map(proc, "setgroups")?.trim().to_string())
}

/// `deny_first` true is the sabotage: deny is written before the first
/// gid_map write.
pub(super) fn unprivileged_owner_outside(deny_first: bool) -> CaseResult {
    let (u, g) = unprivileged_ids();
    let mut inside = Spawn::unshare(NsFlags::USER).as_user(u, g).spawn(|ch| {
        ch.ready()?;
        ch.wait()?;
        let ids = StatusIds::of(Proc::Myself)?;
        let setgroups_inside = harness::error::errno_of(setgroups(&[Gid::from_raw(0)]));
        ch.send(&(ids, setgroups_text(Proc::Myself)?, setgroups_inside.err().map(|e| e as i32)))?;
        ch.wait()
    })?;
    // Spawn returns once the peer exists: its unshare(2) is done only once
    // it says ready.
    inside.wait_ready()?;
    let p = inside.proc();
    check_ne!(NsId::of(p, Kind::User)?, NsId::current(Kind::User)?, "user namespace of the process meant to be in a new one");
    call(&Spawn::fork().as_user(u, g), || {
        check_eq!(setgroups_text(p)?, "allow", "setgroups of a new user namespace");
        if deny_first {
            write_setgroups(p, false)?;
        }
        expect_errno!(
            write_map(p, MapFile::Gid, &IdMap::single(0, g)),
            Errno::EPERM,
            "gid_map written from outside while setgroups is allow, by the unprivileged owner"
        );
        check_eq!(read_map(p, "gid_map")?, "", "gid_map after the refused write");
        check_eq!(setgroups_text(p)?, "allow", "setgroups after the refused gid_map write");
        write_map(p, MapFile::Uid, &IdMap::single(0, u))?;
        write_setgroups(p, false)?;
        check_eq!(setgroups_text(p)?, "deny", "setgroups after writing deny");
        write_map(p, MapFile::Gid, &IdMap::single(0, g))?;
        check_eq!(parsed(&read_map(p, "gid_map")?), Some(IdMap::single(0, g)), "gid_map after deny");
        expect_errno!(write_setgroups(p, true), Errno::EPERM, "writing allow to setgroups once deny was written");
        expect_errno!(write_setgroups(p, false), Errno::EPERM, "writing deny to setgroups after gid_map was written");
        check_eq!(setgroups_text(p)?, "deny", "setgroups after the refused writes");
        Ok(())
    })?;
    inside.go()?;
    let (ids, seen, setgroups_errno): (StatusIds, String, Option<i32>) = inside.recv()?;
    inside.go()?;
    inside.join()?;
    check_eq!(ids, StatusIds { uid: [0; 4], gid: [0; 4] }, "ids inside after the maps");
    check_eq!(seen, "deny", "/proc/self/setgroups inside");
    check_eq!(setgroups_errno, Some(Errno::EPERM as i32), "setgroups(2) inside, with CAP_SETGID there and setgroups denied");
    Ok(())
}

/// `deny_first` true is the sabotage: the privileged writer denies
/// setgroups before gid_map.
pub(super) fn privileged_writer(deny_first: bool) -> CaseResult {
    let mut inside = Spawn::clone(NsFlags::USER).spawn(|ch| {
        ch.wait()?;
        if let Err(e) = setgroups(&[Gid::from_raw(3)]) {
            return Err(CaseError::fail(format!("setgroups(2) inside after a privileged gid_map write: {e:?}")));
        }
        let groups = nix::unistd::getgroups()?;
        ch.send(&(setgroups_text(Proc::Myself)?, groups.iter().map(|g| g.as_raw()).collect::<Vec<u32>>()))?;
        ch.wait()
    })?;
    let p = inside.proc();
    check_eq!(setgroups_text(p)?, "allow", "setgroups of a new user namespace");
    if deny_first {
        write_setgroups(p, false)?;
    }
    write_map(p, MapFile::Uid, &range(0, L1_UID, 10))?;
    write_map(p, MapFile::Gid, &range(0, L1_GID, 10))?;
    expect_errno!(write_setgroups(p, false), Errno::EPERM, "writing deny to setgroups after gid_map was written");
    inside.go()?;
    let (seen, groups): (String, Vec<u32>) = inside.recv()?;
    let outside = fs::read_to_string(format!("/proc/{}/status", inside.pid()))?;
    inside.go()?;
    inside.join()?;
    check_eq!(seen, "allow", "/proc/self/setgroups inside");
    check_eq!(groups, vec![3], "getgroups() inside after setgroups([3])");
    let line = outside.lines().find_map(|l| l.strip_prefix("Groups:")).map(str::trim).unwrap_or("?").to_string();
    check_eq!(line, (L1_GID + 3).to_string(), "Groups of that process in /proc/[pid]/status read outside");
    Ok(())
}

/// `write_allow` false is the sabotage: deny is written instead of allow.
pub(super) fn deny_inherited(write_allow: bool) -> CaseResult {
    let (u, g) = unprivileged_ids();
    call(&Spawn::unshare(NsFlags::USER).as_user(u, g).map_root(), || {
        check_eq!(setgroups_text(Proc::Myself)?, "deny", "setgroups of the outer namespace after map_root");
        let mut nested = Spawn::clone(NsFlags::USER).spawn(|ch| {
            let initial = setgroups_text(Proc::Myself)?;
            let write = harness::error::errno_of(write_setgroups(Proc::Myself, write_allow));
            ch.send(&(initial, write.err().map(|e| e as i32)))?;
            ch.wait()?;
            let sg = harness::error::errno_of(setgroups(&[Gid::from_raw(0)]));
            ch.send(&(setgroups_text(Proc::Myself)?, sg.err().map(|e| e as i32)))
        })?;
        let (initial, write): (String, Option<i32>) = nested.recv()?;
        check_eq!(initial, "deny", "setgroups of a user namespace created where setgroups is deny");
        check_eq!(write, Some(Errno::EPERM as i32), "writing allow to setgroups of a namespace created under deny");
        // The creator (CAP_SETGID in the parent) may write gid_map.
        write_map(nested.proc(), MapFile::Uid, &IdMap::single(0, 0))?;
        write_map(nested.proc(), MapFile::Gid, &IdMap::single(0, 0))?;
        nested.go()?;
        let (after, sg): (String, Option<i32>) = nested.recv()?;
        nested.join()?;
        check_eq!(after, "deny", "setgroups of the nested namespace after its gid_map");
        check_eq!(sg, Some(Errno::EPERM as i32), "setgroups(2) in the nested namespace, with CAP_SETGID and a gid_map");
        Ok(())
    })
}
