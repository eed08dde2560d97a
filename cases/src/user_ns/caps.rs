//! U3: capabilities in a user namespace across execve(2) (lost with a
//! nonzero euid, kept as uid 0) and setns(2) (all gained in a namespace the
//! caller owns).

use harness::caps::{cap_last_cap, exec_probe, full_set, CapSets, ExecReport, StatusIds};
use harness::peer::{call, Spawn};
use harness::userns::{write_map, write_setgroups, IdMap, MapFile};
use harness::{check_eq, CaseResult, Kind, NsFd, NsFlags, NsId, Proc, Setup};
use nix::unistd::{getegid, geteuid};

use super::unprivileged_ids;

/// `inside_uid`: the process's uid in its namespace (map `inside <outer>
/// 1`); `as_root`: whether the case expects it to keep its capabilities.
pub(super) fn execve_caps(inside_uid: u32, as_root: bool) -> CaseResult {
    let (uid, gid) = (geteuid().as_raw(), getegid().as_raw());
    let full = full_set(cap_last_cap().setup("read cap_last_cap")?);
    let mut p = Spawn::clone(NsFlags::USER).spawn(|ch| {
        ch.wait()?;
        let before = CapSets::of(Proc::Myself)?;
        let after = exec_probe()?;
        ch.send(&(before, after))
    })?;
    write_map(p.proc(), MapFile::Uid, &IdMap::single(inside_uid, uid))?;
    write_setgroups(p.proc(), false)?;
    write_map(p.proc(), MapFile::Gid, &IdMap::single(inside_uid, gid))?;
    p.go()?;
    let (before, after): (CapSets, ExecReport) = p.recv()?;
    p.join()?;
    check_eq!(before.effective, full, "CapEff before execve in the new user namespace");
    if as_root {
        check_eq!(after.caps.effective, full, "CapEff after execve as uid 0 of the user namespace");
        check_eq!(after.caps.permitted, full, "CapPrm after execve as uid 0 of the user namespace");
    } else {
        check_eq!(after.caps.effective, 0, "CapEff after execve with a nonzero euid in the user namespace");
        check_eq!(after.caps.permitted, 0, "CapPrm after execve with a nonzero euid in the user namespace");
        check_eq!(after.caps.ambient, 0, "CapAmb after execve with a nonzero euid in the user namespace");
        check_eq!(after.caps.bounding, full, "CapBnd after execve (unchanged)");
    }
    check_eq!(after.ids.uid, [inside_uid; 4], "Uid of the new image in its user namespace");
    Ok(())
}

/// `join` false is the sabotage: no setns().
pub(super) fn setns_gains_all(join: bool) -> CaseResult {
    let (u, g) = unprivileged_ids();
    let full = full_set(cap_last_cap().setup("read cap_last_cap")?);
    let mut owner = Spawn::unshare(NsFlags::USER).as_user(u, g).map_root().spawn_idle()?;
    let target = NsId::of(owner.proc(), Kind::User)?;
    let p = owner.proc();
    type Seen = (CapSets, CapSets, NsId, StatusIds);
    let (before, after, joined, ids): Seen = call(&Spawn::fork().as_user(u, g), || {
        let before = CapSets::of(Proc::Myself)?;
        let fd = NsFd::open(p, Kind::User)?;
        if join {
            fd.setns(NsFlags::USER)?;
        }
        Ok((before, CapSets::of(Proc::Myself)?, NsId::current(Kind::User)?, StatusIds::of(Proc::Myself)?))
    })?;
    owner.go()?;
    owner.join()?;
    check_eq!((before.effective, before.permitted), (0, 0), "CapEff and CapPrm of uid {u} before setns");
    check_eq!(after.effective, full, "CapEff after setns(CLONE_NEWUSER) into a user namespace it owns");
    check_eq!(after.permitted, full, "CapPrm after setns(CLONE_NEWUSER)");
    check_eq!(after.bounding, full, "CapBnd after setns(CLONE_NEWUSER)");
    check_eq!(joined, target, "user namespace after setns(CLONE_NEWUSER)");
    check_eq!(ids, StatusIds { uid: [0; 4], gid: [0; 4] }, "ids after setns into the namespace that maps uid {u} to 0");
    Ok(())
}
