//! U1: ids are translated through every level of user namespaces (uid_map,
//! gid_map, stat() and `/proc/[pid]/status` as the reader's namespace sees
//! them), with maps of up to 340 lines (4.15).

use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;

use harness::caps::StatusIds;
use harness::peer::Spawn;
use harness::userns::{write_map, write_map_text, IdMap, IdRange, MapFile};
use harness::{check_eq, expect_errno, CaseError, CaseResult, Errno, NsFlags, Proc, Setup};
use nix::unistd::{setresgid, setresuid, Gid, Uid};
use serde::{Deserialize, Serialize};

use super::{parsed, range, read_map, L1_COUNT, L1_GID, L1_UID};

/// Level 2's maps (written from level 1): 0..9 -> level-1 500.. and 600...
const L2_UID: u32 = 500;
const L2_GID: u32 = 600;
const L2_COUNT: u32 = 10;
/// A sibling of level 1 mapping the same host ids as level 2 from 7 and 9.
const SIBLING_UID: u32 = 7;
const SIBLING_GID: u32 = 9;

/// The overflow uid and gid (/proc/sys/kernel/overflow{u,g}id): what stat()
/// and /proc show for an id with no mapping in the reader's namespace.
fn overflow_ids() -> Result<(u32, u32), CaseError> {
    let read = |f: &str| -> Result<u32, CaseError> {
        let t = fs::read_to_string(format!("/proc/sys/kernel/{f}")).setup("read the overflow id")?;
        t.trim().parse().setup("parse the overflow id")
    };
    Ok((read("overflowuid")?, read("overflowgid")?))
}

/// An anonymous file (memfd) owned by host `uid`/`gid`, inherited by peers.
fn owned_file(uid: u32, gid: u32) -> Result<File, CaseError> {
    let fd = nix::sys::memfd::memfd_create(c"nsverify-owner", nix::sys::memfd::MFdFlags::MFD_CLOEXEC).setup("memfd_create")?;
    let file = File::from(fd);
    std::os::unix::fs::fchown(&file, Some(uid), Some(gid)).setup("fchown the memfd")?;
    Ok(file)
}

/// The owners of `files` as fstat() shows them to the caller.
fn owners(files: &[File]) -> Result<Vec<(u32, u32)>, CaseError> {
    files.iter().map(|f| Ok(f.metadata().map(|m| (m.uid(), m.gid()))?)).collect()
}

/// What one reader sees of the level-2 process.
#[derive(Debug, Serialize, Deserialize)]
struct View {
    uid_map: String,
    gid_map: String,
    owners: Vec<(u32, u32)>,
    status: StatusIds,
}

fn view(target: Proc, files: &[File]) -> Result<View, CaseError> {
    Ok(View {
        uid_map: read_map(target, "uid_map")?,
        gid_map: read_map(target, "gid_map")?,
        owners: owners(files)?,
        status: StatusIds::of(target)?,
    })
}

/// `l1_uid`: host uid of level 1's uid 0 (L1_UID for the claim).
pub(super) fn two_levels(l1_uid: u32) -> CaseResult {
    let (ou, og) = overflow_ids()?;
    // Host owners: mapped at both levels; at level 1 only; at neither.
    let files = [owned_file(100_505, 200_603)?, owned_file(100_400, 200_400)?, owned_file(102_000, 202_000)?];
    let mut level1 = Spawn::clone(NsFlags::USER).spawn(|ch| {
        ch.wait()?;
        become_mapped_root()?;
        let mut level2 = Spawn::clone(NsFlags::USER).spawn(|ch2| {
            ch2.wait()?;
            setresgid(Gid::from_raw(4), Gid::from_raw(5), Gid::from_raw(6))?;
            setresuid(Uid::from_raw(1), Uid::from_raw(2), Uid::from_raw(3))?;
            ch2.send(&view(Proc::Myself, &files)?)?;
            ch2.wait()
        })?;
        write_map(level2.proc(), MapFile::Uid, &range(0, L2_UID, L2_COUNT))?;
        write_map(level2.proc(), MapFile::Gid, &range(0, L2_GID, L2_COUNT))?;
        level2.go()?;
        let in_level2: View = level2.recv()?;
        let in_level1 = view(level2.proc(), &files)?;
        ch.send(&(level2.pid().as_raw(), in_level1, in_level2))?;
        // Level 0 and the sibling read while level 2 lives.
        ch.wait()?;
        level2.go()?;
        level2.join()
    })?;
    write_map(level1.proc(), MapFile::Uid, &range(0, l1_uid, L1_COUNT))?;
    write_map(level1.proc(), MapFile::Gid, &range(0, L1_GID, L1_COUNT))?;
    level1.go()?;
    let (pid, in_level1, in_level2): (i32, View, View) = level1.recv()?;
    let target = Proc::Pid(pid);
    let in_level0 = view(target, &files)?;
    let mut sibling = Spawn::clone(NsFlags::USER).spawn(|ch| {
        ch.wait()?;
        ch.send(&view(target, &files)?)
    })?;
    write_map(sibling.proc(), MapFile::Uid, &range(SIBLING_UID, 100_500, L2_COUNT))?;
    write_map(sibling.proc(), MapFile::Gid, &range(SIBLING_GID, 200_600, L2_COUNT))?;
    sibling.go()?;
    let in_sibling: View = sibling.recv()?;
    sibling.join()?;
    level1.go()?;
    level1.join()?;

    // uid_map and gid_map: the second field is relative to the reader (its
    // parent's namespace when the reader is in the map's own namespace).
    let maps = |v: &View| (parsed(&v.uid_map), parsed(&v.gid_map));
    let want = |u: u32, g: u32| (Some(range(0, u, L2_COUNT)), Some(range(0, g, L2_COUNT)));
    check_eq!(maps(&in_level0).0, want(100_500, 200_600).0, "uid_map of the level-2 process read from level 0");
    check_eq!(maps(&in_level0), want(100_500, 200_600), "uid_map and gid_map of the level-2 process read from level 0");
    check_eq!(maps(&in_level1), want(L2_UID, L2_GID), "uid_map and gid_map of the level-2 process read from level 1");
    check_eq!(maps(&in_level2), want(L2_UID, L2_GID), "uid_map and gid_map of the level-2 process read by itself");
    check_eq!(maps(&in_sibling), want(SIBLING_UID, SIBLING_GID), "uid_map and gid_map of the level-2 process read from a sibling");
    // stat() of the host-owned files.
    check_eq!(in_level0.owners, vec![(100_505, 200_603), (100_400, 200_400), (102_000, 202_000)], "stat() owners in level 0");
    check_eq!(in_level1.owners, vec![(505, 603), (400, 400), (ou, og)], "stat() owners in level 1");
    check_eq!(in_level2.owners, vec![(5, 3), (ou, og), (ou, og)], "stat() owners in level 2");
    check_eq!(in_sibling.owners, vec![(12, 12), (ou, og), (ou, og)], "stat() owners in the sibling of level 1");
    // /proc/[pid]/status: real, effective, saved, filesystem.
    let ids = |u: u32, g: u32| StatusIds { uid: [u + 1, u + 2, u + 3, u + 2], gid: [g + 4, g + 5, g + 6, g + 5] };
    check_eq!(in_level0.status, ids(100_500, 200_600), "Uid/Gid of the level-2 process in /proc/[pid]/status read from level 0");
    check_eq!(in_level1.status, ids(L2_UID, L2_GID), "Uid/Gid of the level-2 process in /proc/[pid]/status read from level 1");
    check_eq!(in_level2.status, ids(0, 0), "Uid/Gid in /proc/self/status of the level-2 process");
    check_eq!(in_sibling.status, ids(SIBLING_UID, SIBLING_GID), "Uid/Gid of the level-2 process in /proc/[pid]/status read from a sibling");
    Ok(())
}

/// `lines` map lines `2i 10000+2i 1`: 12 bytes at most each, so that 341
/// of them still fit the one write(2) of less than a page that map_write
/// accepts, and the refusal can only be the count.
fn map_lines(lines: u32) -> String {
    (0..lines).map(|i| format!("{} {} 1\n", 2 * i, 10_000 + 2 * i)).collect()
}

/// `refused_lines`: 341 for the claim.
pub(super) fn map_340_lines(refused_lines: u32) -> CaseResult {
    let (ou, og) = overflow_ids()?;
    let too_many = map_lines(refused_lines);
    if too_many.len() >= 4096 {
        return Err(CaseError::broken(format!("the {refused_lines}-line map is {} bytes, not less than a page", too_many.len())));
    }
    let last = 2 * 339;
    // Host owners: the first line, the last line, the gap after the last.
    let files = [owned_file(10_000, 0)?, owned_file(10_000 + last, 0)?, owned_file(10_000 + last + 1, 0)?];
    let mut inside = Spawn::clone(NsFlags::USER).spawn(|ch| {
        ch.wait()?;
        let seen = owners(&files)?;
        setresuid(Uid::from_raw(last), Uid::from_raw(last), Uid::from_raw(last))?;
        ch.send(&(seen, StatusIds::of(Proc::Myself)?))?;
        ch.wait()
    })?;
    let p = inside.proc();
    expect_errno!(
        write_map_text(p, MapFile::Uid, &too_many),
        Errno::EINVAL,
        "a uid_map of 341 lines (UID_GID_MAP_MAX_EXTENTS is 340 since 4.15)"
    );
    check_eq!(read_map(p, "uid_map")?, "", "uid_map after the refused 341-line write");
    write_map_text(p, MapFile::Uid, &map_lines(340))?;
    let read = read_map(p, "uid_map")?;
    inside.go()?;
    let (seen, own): (Vec<(u32, u32)>, StatusIds) = inside.recv()?;
    let status = StatusIds::of(p)?;
    inside.go()?;
    inside.join()?;
    check_eq!(read.lines().count(), 340, "lines of the 340-line uid_map read back");
    check_eq!(parsed(&read), parsed(&map_lines(340)), "the 340-line uid_map read back");
    check_eq!(seen, vec![(0, og), (last, og), (ou, og)], "stat() inside of files owned by the first line, the last line and a gap");
    check_eq!(own.uid, [last; 4], "Uid in /proc/self/status after setresuid to the last line's id");
    check_eq!(status.uid, [10_000 + last; 4], "Uid of that process in /proc/[pid]/status read from the parent namespace");
    Ok(())
}

/// Six lines, each `count` long: inside `k*step_in`, outside
/// `base + (5-k)*step_out`, so that the forward and reverse orders differ.
fn six_lines(step_in: u32, base: u32, step_out: u32, count: u32) -> IdMap {
    IdMap((0..6).map(|k| IdRange { inside: k * step_in, outside: base + (5 - k) * step_out, count }).collect())
}

/// `host_uid`: host owner of the file level 2 must see as uid 32 (L1_UID +
/// 32 for the claim: level-1 uid 5032).
pub(super) fn nested_many_extents(host_uid: u32) -> CaseResult {
    let (ou, og) = overflow_ids()?;
    // Level 1: 0.. -> 105000.., 1000.. -> 104000.., ..., 5000.. -> 100000...
    let l1_uid = six_lines(1000, L1_UID, 1000, 100);
    let l1_gid = six_lines(1000, L1_GID, 1000, 100);
    // Level 2: 0.. -> 5075.., 10.. -> 5060.., ..., 30.. -> 5030.., 50.. -> 5000..
    // (level-1 ids, all in level 1's last line).
    let l2 = six_lines(10, 5000, 15, 5);
    // Host 100032/200032 is level-1 5032, level-2 32. Host 5032 is the
    // level-1 value taken for a host id by CVE-2018-18955's kernels.
    let files = [owned_file(host_uid, L1_GID + 32)?, owned_file(5032, 5032)?];
    let mut level1 = Spawn::clone(NsFlags::USER).spawn(|ch| {
        ch.wait()?;
        become_mapped_root()?;
        let mut level2 = Spawn::clone(NsFlags::USER).spawn(|ch2| {
            ch2.wait()?;
            let seen = owners(&files)?;
            setresgid(Gid::from_raw(32), Gid::from_raw(32), Gid::from_raw(32))?;
            setresuid(Uid::from_raw(32), Uid::from_raw(32), Uid::from_raw(32))?;
            ch2.send(&(seen, StatusIds::of(Proc::Myself)?))?;
            ch2.wait()
        })?;
        write_map(level2.proc(), MapFile::Uid, &l2)?;
        write_map(level2.proc(), MapFile::Gid, &l2)?;
        level2.go()?;
        let in_level2: (Vec<(u32, u32)>, StatusIds) = level2.recv()?;
        let in_level1 = (owners(&files)?, read_map(level2.proc(), "uid_map")?);
        ch.send(&(level2.pid().as_raw(), in_level1, in_level2))?;
        ch.wait()?;
        level2.go()?;
        level2.join()
    })?;
    write_map(level1.proc(), MapFile::Uid, &l1_uid)?;
    write_map(level1.proc(), MapFile::Gid, &l1_gid)?;
    level1.go()?;
    type Seen = (i32, (Vec<(u32, u32)>, String), (Vec<(u32, u32)>, StatusIds));
    let (pid, (l1_owners, l1_map), (l2_owners, l2_ids)): Seen = level1.recv()?;
    let from_level0 = (StatusIds::of(Proc::Pid(pid))?, read_map(Proc::Pid(pid), "uid_map")?);
    level1.go()?;
    level1.join()?;
    check_eq!(
        l2_owners,
        vec![(32, 32), (ou, og)],
        "stat() in level 2 of a file owned by host uid/gid 100032/200032 and of one owned by 5032/5032"
    );
    check_eq!(l2_ids, StatusIds { uid: [32; 4], gid: [32; 4] }, "Uid/Gid in /proc/self/status in level 2 after setresuid(32)");
    check_eq!(l1_owners, vec![(5032, 5032), (ou, og)], "stat() in level 1 of the same files");
    check_eq!(parsed(&l1_map), parsed(&l2.to_string()), "level 2's uid_map read from level 1");
    let l2_host = six_lines(10, L1_UID, 15, 5);
    check_eq!(parsed(&from_level0.1), parsed(&l2_host.to_string()), "level 2's uid_map read from level 0");
    check_eq!(
        from_level0.0,
        StatusIds { uid: [L1_UID + 32; 4], gid: [L1_GID + 32; 4] },
        "Uid/Gid of the level-2 process read from level 0"
    );
    Ok(())
}

/// In a process whose maps were just written from outside: takes uid and
/// gid 0 of its namespace (its credentials still hold the creator's ids,
/// unmapped there), so that it may create a nested user namespace
/// (user_namespaces(7): the creator's ids must be mapped).
fn become_mapped_root() -> CaseResult {
    let (g, u) = (Gid::from_raw(0), Uid::from_raw(0));
    setresgid(g, g, g)?;
    setresuid(u, u, u)?;
    // The id change made it non-dumpable: its children's /proc files
    // (uid_map) would belong to host root, unmapped here.
    harness::userns::set_dumpable().setup("prctl(PR_SET_DUMPABLE)")?;
    Ok(())
}
