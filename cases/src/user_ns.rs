//! user_namespaces(7) beyond the seed (claims U1-U3): id translation through
//! several levels, the setgroups rule, capabilities across execve and setns.
//!
//! Peers: LTP testcases/kernel/containers/userns/ (userns01-08), the kernel's
//! tools/testing/selftests/capabilities/test_execve.c; capabilities(7)
//! ("Transformation of capabilities during execve()"); kernel/user_namespace.c
//! (map_write, UID_GID_MAP_MAX_EXTENTS, new_idmap_permitted,
//! proc_setgroups_write).

use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;

use harness::caps::{cap_last_cap, exec_probe, full_set, CapSets, ExecReport, StatusIds};
use harness::peer::{call, Spawn};
use harness::userns::{write_map, write_map_text, write_setgroups, IdMap, IdRange, MapFile};
use harness::{check_eq, check_ne, expect_errno, Case, CaseError, CaseResult, Errno, Kind, NsFd, NsId, Privilege, Proc, Requires, Setup};
use nix::unistd::{getegid, geteuid, setgroups, setresgid, setresuid, Gid, Uid};
use serde::{Deserialize, Serialize};

use crate::common::must_fail_with;

const NEWUSER: u64 = libc::CLONE_NEWUSER as u64;

/// Level 1's maps (written by real root): 0..999 -> 100000.. and 200000...
const L1_UID: u32 = 100_000;
const L1_GID: u32 = 200_000;
const L1_COUNT: u32 = 1000;
/// Level 2's maps (written from level 1): 0..9 -> level-1 500.. and 600...
const L2_UID: u32 = 500;
const L2_GID: u32 = 600;
const L2_COUNT: u32 = 10;
/// A sibling of level 1 mapping the same host ids as level 2 from 7 and 9.
const SIBLING_UID: u32 = 7;
const SIBLING_GID: u32 = 9;

/// Cases that map arbitrary ids: real root.
fn root() -> Requires {
    Requires::kinds(&[Kind::User]).privilege(Privilege::Root)
}

/// Cases run by an unprivileged uid that creates user namespaces.
fn unprivileged() -> Requires {
    Requires::kinds(&[Kind::User]).user_namespaces()
}

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "userns.ids.two_levels",
            &["U1"],
            "with maps 0..999 -> 100000.. at level 1 and 0..9 -> 500.. below it, uid_map/gid_map of the level-2 \
             process, stat() of files owned by host ids and its /proc/[pid]/status Uid/Gid read from level 0, level \
             1, level 2 and a sibling of level 1 show each id in the reader's namespace (overflow ids where unmapped)",
            || two_levels(L1_UID),
        )
        .requires(root()),
        Case::new(
            "userns.ids.map_340_lines",
            &["U1"],
            "a uid_map of 341 lines is EINVAL and leaves the map empty; one of 340 lines is accepted, read back \
             whole, and translates its first and last lines (stat, setresuid) and leaves its gaps unmapped",
            || map_340_lines(341),
        )
        .requires(root().kernel(4, 15)),
        Case::new(
            "userns.ids.nested_many_extents",
            &["U1"],
            "a level-2 map of 6 lines over a level-1 map of 6 lines (both past the 5 inline extents): stat() and \
             getuid() in level 2 translate host ids through both levels, and the level-1 value of an id is not \
             taken for a host id (CVE-2018-18955, d2f007dbe7e4)",
            || nested_many_extents(L1_UID + 32),
        )
        .requires(root().kernel(4, 15)),
        Case::new(
            "userns.setgroups.unprivileged_owner_outside",
            &["U2"],
            "the unprivileged owner of a user namespace, writing from the parent namespace, gets EPERM for gid_map \
             while setgroups is allow (gid_map stays empty, setgroups allow); after deny, gid_map is accepted, deny \
             and allow are EPERM from then on, and setgroups(2) inside is EPERM",
            || unprivileged_owner_outside(false),
        )
        .requires(unprivileged()),
        Case::new(
            "userns.setgroups.privileged_writer",
            &["U2"],
            "a writer with CAP_SETGID in the parent namespace may write gid_map while setgroups is allow; setgroups(2) \
             then works inside, and deny can no longer be written (EPERM)",
            || privileged_writer(false),
        )
        .requires(root()),
        Case::new(
            "userns.setgroups.deny_inherited",
            &["U2"],
            "a user namespace created inside one whose setgroups is deny starts with deny; writing allow there is \
             EPERM, and setgroups(2) is EPERM even with CAP_SETGID and a gid_map",
            || deny_inherited(true),
        )
        .requires(unprivileged()),
        Case::new(
            "userns.caps.execve_nonzero_euid",
            &["U3"],
            "a process with every capability in a new user namespace whose euid there is 1000 (map `1000 <outer> 1`) \
             has no permitted, effective or ambient capability after execve(), its bounding set kept",
            || execve_caps(1000, false),
        )
        .requires(unprivileged()),
        Case::new(
            "userns.caps.execve_root",
            &["U3"],
            "a process whose euid is 0 in its user namespace (map `0 <outer> 1`) keeps every capability up to \
             cap_last_cap in its permitted and effective sets after execve()",
            || execve_caps(0, true),
        )
        .requires(unprivileged()),
        Case::new(
            "userns.caps.setns_gains_all",
            &["U3"],
            "a process with no capability (uid 65534, or the suite's unprivileged uid) that setns()es into a user \
             namespace it owns has every capability up to cap_last_cap there: permitted, effective and bounding",
            || setns_gains_all(true),
        )
        .requires(unprivileged()),
    ]
}

/// The cases of this topic run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    vec![
        Case::new(
            "sabotage.userns.ids.two_levels",
            &["U1"],
            "level 1 maps 0 to 100001: the level-2 uid_map read from level 0 must not read 100500",
            || must_fail_with(two_levels(L1_UID + 1), "uid_map of the level-2 process read from level 0"),
        )
        .requires(root()),
        Case::new("sabotage.userns.ids.map_340_lines", &["U1"], "the map meant to exceed the limit has 340 lines: it is accepted", || {
            must_fail_with(map_340_lines(340), "a uid_map of 341 lines")
        })
        .requires(root().kernel(4, 15)),
        Case::new(
            "sabotage.userns.ids.nested_many_extents",
            &["U1"],
            "the file meant to be owned by host uid 100032 is owned by 5032 (its level-1 value): level 2 must not \
             see uid 32",
            || must_fail_with(nested_many_extents(5032), "stat() in level 2 of a file owned by host uid"),
        )
        .requires(root().kernel(4, 15)),
        Case::new(
            "sabotage.userns.setgroups.unprivileged_owner_outside",
            &["U2"],
            "setgroups is denied before the first gid_map write, which then succeeds",
            || must_fail_with(unprivileged_owner_outside(true), "gid_map written from outside while setgroups is allow"),
        )
        .requires(unprivileged()),
        Case::new(
            "sabotage.userns.setgroups.privileged_writer",
            &["U2"],
            "the privileged writer denies setgroups first: setgroups(2) inside must then fail",
            || must_fail_with(privileged_writer(true), "setgroups(2) inside after a privileged gid_map write"),
        )
        .requires(root()),
        Case::new(
            "sabotage.userns.setgroups.deny_inherited",
            &["U2"],
            "the nested namespace writes deny, not allow, to its setgroups: accepted",
            || must_fail_with(deny_inherited(false), "writing allow to setgroups of a namespace created under deny"),
        )
        .requires(unprivileged()),
        Case::new(
            "sabotage.userns.caps.execve_nonzero_euid",
            &["U3"],
            "the process is mapped to uid 0, not 1000: it keeps its capabilities after execve()",
            || must_fail_with(execve_caps(0, false), "CapEff after execve with a nonzero euid"),
        )
        .requires(unprivileged()),
        Case::new(
            "sabotage.userns.caps.execve_root",
            &["U3"],
            "the process is mapped to uid 1000, not 0: it loses its capabilities after execve()",
            || must_fail_with(execve_caps(1000, true), "CapEff after execve as uid 0"),
        )
        .requires(unprivileged()),
        Case::new(
            "sabotage.userns.caps.setns_gains_all",
            &["U3"],
            "the process opens the user namespace but does not setns() into it",
            || must_fail_with(setns_gains_all(false), "CapEff after setns(CLONE_NEWUSER)"),
        )
        .requires(unprivileged()),
    ]
}

fn range(inside: u32, outside: u32, count: u32) -> IdMap {
    IdMap(vec![IdRange { inside, outside, count }])
}

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

fn read_map(proc: Proc, file: &str) -> Result<String, CaseError> {
    let path = match proc {
        Proc::Myself => format!("/proc/self/{file}"),
        Proc::Pid(p) => format!("/proc/{p}/{file}"),
    };
    Ok(fs::read_to_string(path)?)
}

/// A map as read, lines in order of their first field.
fn parsed(text: &str) -> Option<IdMap> {
    IdMap::parse(text).ok().map(|mut m| {
        m.0.sort_by_key(|r| r.inside);
        m
    })
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
fn two_levels(l1_uid: u32) -> CaseResult {
    let (ou, og) = overflow_ids()?;
    // Host owners: mapped at both levels; at level 1 only; at neither.
    let files = [owned_file(100_505, 200_603)?, owned_file(100_400, 200_400)?, owned_file(102_000, 202_000)?];
    let mut level1 = Spawn::clone(NEWUSER).spawn(|ch| {
        ch.wait()?;
        become_mapped_root()?;
        let mut level2 = Spawn::clone(NEWUSER).spawn(|ch2| {
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
    let mut sibling = Spawn::clone(NEWUSER).spawn(|ch| {
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
fn map_340_lines(refused_lines: u32) -> CaseResult {
    let (ou, og) = overflow_ids()?;
    let too_many = map_lines(refused_lines);
    if too_many.len() >= 4096 {
        return Err(CaseError::broken(format!("the {refused_lines}-line map is {} bytes, not less than a page", too_many.len())));
    }
    let last = 2 * 339;
    // Host owners: the first line, the last line, the gap after the last.
    let files = [owned_file(10_000, 0)?, owned_file(10_000 + last, 0)?, owned_file(10_000 + last + 1, 0)?];
    let mut inside = Spawn::clone(NEWUSER).spawn(|ch| {
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
fn nested_many_extents(host_uid: u32) -> CaseResult {
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
    let mut level1 = Spawn::clone(NEWUSER).spawn(|ch| {
        ch.wait()?;
        become_mapped_root()?;
        let mut level2 = Spawn::clone(NEWUSER).spawn(|ch2| {
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
    harness::sys::set_dumpable().setup("prctl(PR_SET_DUMPABLE)")?;
    Ok(())
}

/// The ids of an unprivileged user: the suite's own when it is not root,
/// else 65534 (nobody).
fn unprivileged_ids() -> (u32, u32) {
    if geteuid().is_root() {
        (65534, 65534)
    } else {
        (geteuid().as_raw(), getegid().as_raw())
    }
}

fn setgroups_text(proc: Proc) -> Result<String, CaseError> {
    Ok(read_map(proc, "setgroups")?.trim().to_string())
}

/// `deny_first` true is the sabotage: deny is written before the first
/// gid_map write.
fn unprivileged_owner_outside(deny_first: bool) -> CaseResult {
    let (u, g) = unprivileged_ids();
    let mut inside = Spawn::unshare(NEWUSER).as_user(u, g).spawn(|ch| {
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
fn privileged_writer(deny_first: bool) -> CaseResult {
    let mut inside = Spawn::clone(NEWUSER).spawn(|ch| {
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
fn deny_inherited(write_allow: bool) -> CaseResult {
    let (u, g) = unprivileged_ids();
    call(&Spawn::unshare(NEWUSER).as_user(u, g).map_root(), || {
        check_eq!(setgroups_text(Proc::Myself)?, "deny", "setgroups of the outer namespace after map_root");
        let mut nested = Spawn::clone(NEWUSER).spawn(|ch| {
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

/// `inside_uid`: the process's uid in its namespace (map `inside <outer>
/// 1`); `as_root`: whether the case expects it to keep its capabilities.
fn execve_caps(inside_uid: u32, as_root: bool) -> CaseResult {
    let (uid, gid) = (geteuid().as_raw(), getegid().as_raw());
    let full = full_set(cap_last_cap().setup("read cap_last_cap")?);
    let mut p = Spawn::clone(NEWUSER).spawn(|ch| {
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
fn setns_gains_all(join: bool) -> CaseResult {
    let (u, g) = unprivileged_ids();
    let full = full_set(cap_last_cap().setup("read cap_last_cap")?);
    let mut owner = Spawn::unshare(NEWUSER).as_user(u, g).map_root().spawn_idle()?;
    let target = NsId::of(owner.proc(), Kind::User)?;
    let p = owner.proc();
    type Seen = (CapSets, CapSets, NsId, StatusIds);
    let (before, after, joined, ids): Seen = call(&Spawn::fork().as_user(u, g), || {
        let before = CapSets::of(Proc::Myself)?;
        let fd = NsFd::open(p, Kind::User)?;
        if join {
            fd.setns(NEWUSER)?;
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
