//! X7, the mount namespace ioctls (6.12): NS_MNT_GET_INFO gives a mount
//! namespace's id and mount count, NS_MNT_GET_NEXT/PREV walk the caller's
//! mount namespaces in id order to ENOENT.

use std::os::fd::AsFd;

use harness::mntns::{self, Step};
use harness::peer::Spawn;
use harness::{check, check_eq, check_ne, expect_errno, note, CaseError, CaseResult, Errno, Kind, NsFd, NsId, Setup};

use super::{enter_private, stat_mount};
use crate::common::{scratch_tmpfs, unique};

/// All the mounts of the caller's mount namespace but its root mount:
/// listmount() below the root mount, found from `/` up through the parents.
fn mounts_but_root() -> Result<usize, CaseError> {
    let mut id = mntns::mount_id_unique("/").setup("statx(STATX_MNT_ID_UNIQUE) of /")?;
    for _ in 0..64 {
        let parent = stat_mount(id, None)?.mnt_parent_id;
        if parent == id {
            let below = mntns::listmount_all(id, None).map_err(|e| CaseError::from(e).context("listmount(root mount)"))?;
            return Ok(below.len());
        }
        id = parent;
    }
    Err(CaseError::broken("no root mount within 64 parents of /"))
}

/// `sabotage`: the peer does not mount between the two readings.
pub(super) fn get_info(sabotage: bool) -> CaseResult {
    let ours = NsFd::current(Kind::Mnt)?;
    let our_info = mntns::mnt_ns_info(ours.as_fd())?;
    check_eq!(our_info.mnt_ns_id, ours.mntns_id()?, "NS_MNT_GET_INFO.mnt_ns_id of our mount namespace against NS_GET_MNTNS_ID");
    let outside = NsId::current(Kind::Mnt)?;
    let scratch = unique("ids-info");
    let mut peer = Spawn::clone(Kind::Mnt.flag()).spawn(move |ch| {
        enter_private(outside)?;
        ch.send(&mounts_but_root()?)?;
        ch.wait()?;
        if !sabotage {
            scratch_tmpfs(&scratch)?;
        }
        ch.send(&mounts_but_root()?)?;
        ch.wait()
    })?;
    let before: usize = peer.recv()?;
    let fd = NsFd::open(peer.proc(), Kind::Mnt)?;
    let info = mntns::mnt_ns_info(fd.as_fd())?;
    check_eq!(info.size, mntns::MNT_NS_INFO_SIZE_VER0, "NS_MNT_GET_INFO.size");
    check_eq!(info.mnt_ns_id, fd.mntns_id()?, "NS_MNT_GET_INFO.mnt_ns_id of the new mount namespace against NS_GET_MNTNS_ID");
    check_ne!(info.mnt_ns_id, our_info.mnt_ns_id, "NS_MNT_GET_INFO.mnt_ns_id of the new mount namespace against ours");
    check_eq!(info.nr_mounts as usize, before, "NS_MNT_GET_INFO.nr_mounts against the mounts below the namespace's root mount");
    peer.go()?;
    let after: usize = peer.recv()?;
    let info_after = mntns::mnt_ns_info(fd.as_fd())?;
    check_eq!(info_after.nr_mounts as usize, after, "NS_MNT_GET_INFO.nr_mounts against the mounts below the root mount, after the mount");
    check_eq!(info_after.nr_mounts, info.nr_mounts + 1, "NS_MNT_GET_INFO.nr_mounts after one more mount");
    check_eq!(info_after.mnt_ns_id, info.mnt_ns_id, "NS_MNT_GET_INFO.mnt_ns_id after a mount");
    peer.go()?;
    peer.join()?;
    let uts = NsFd::current(Kind::Uts)?;
    let sentinel = mntns::MntNsInfo { size: 0x5a5a_5a5a, nr_mounts: 0x5a5a_5a5a, mnt_ns_id: 0x5a5a_5a5a_5a5a_5a5a };
    let mut untouched = sentinel;
    expect_errno!(
        mntns::mnt_ns_ioctl(uts.as_fd(), mntns::MntNsRequest::Info, Some(&mut untouched)),
        Errno::EINVAL,
        "NS_MNT_GET_INFO on a uts namespace fd"
    );
    check_eq!(untouched, sentinel, "the buffer of a refused NS_MNT_GET_INFO");
    expect_errno!(mntns::mnt_ns_ioctl(ours.as_fd(), mntns::MntNsRequest::Info, None), Errno::EINVAL, "NS_MNT_GET_INFO without a buffer");
    Ok(())
}

/// Open fds of this process.
fn open_fds() -> Result<usize, CaseError> {
    Ok(std::fs::read_dir("/proc/self/fd")?.count())
}

/// A mount namespace met on a walk.
struct Met {
    id: u64,
    nsid: NsId,
    fd: NsFd,
}

/// One walk from `start` by `step` to its ENOENT: each namespace met,
/// checked step by step.
fn walk(start: &NsFd, step: Step) -> Result<Vec<Met>, CaseError> {
    let name = step.ioctl().name;
    let mut out: Vec<Met> = Vec::new();
    let mut last = start.mntns_id()?;
    for _ in 0..100_000 {
        let from = out.last().map_or(start, |m| &m.fd);
        let fds = open_fds()?;
        match mntns::mnt_ns_step(from.as_fd(), step) {
            Err(e) if e.errno == Errno::ENOENT => {
                check_eq!(open_fds()?, fds, "open fds after {name} ended with ENOENT");
                return Ok(out);
            }
            Err(e) => return Err(e.into()),
            Ok((fd, info)) => {
                check_eq!(info.size, mntns::MNT_NS_INFO_SIZE_VER0, "{name} info.size");
                check_eq!(fd.nstype()?, Kind::Mnt.flag(), "NS_GET_NSTYPE of the fd {name} returned");
                check_eq!(fd.mntns_id()?, info.mnt_ns_id, "NS_GET_MNTNS_ID of the fd {name} returned against its info.mnt_ns_id");
                let increasing = step == Step::Next;
                let ordered = if increasing { info.mnt_ns_id > last } else { info.mnt_ns_id < last };
                check!(
                    ordered,
                    "{name} went from id {last} to {}: not strictly {}",
                    info.mnt_ns_id,
                    if increasing { "increasing" } else { "decreasing" }
                );
                last = info.mnt_ns_id;
                out.push(Met { id: info.mnt_ns_id, nsid: fd.id(), fd });
            }
        }
    }
    Err(CaseError::broken(format!("{name} did not end within 100000 steps")))
}

fn check_held(walked: &[Met], held: &[(u64, NsId)], name: &str) -> CaseResult {
    let ids: Vec<u64> = walked.iter().map(|m| m.id).collect();
    for (id, nsid) in held {
        check!(
            walked.iter().any(|m| m.id == *id && m.nsid == *nsid),
            "held mount namespace in the {name} walk: {id} ({nsid}) not among {ids:?}"
        );
    }
    Ok(())
}

/// `sabotage`: the first held namespace's peer is killed (and nothing else
/// holds it) before the walk, but it is still expected.
pub(super) fn next_prev(sabotage: bool) -> CaseResult {
    let mut peers = Vec::new();
    let mut held = Vec::new();
    for i in 0..3 {
        let peer = Spawn::unshare(Kind::Mnt.flag()).close_inherited_fds().spawn_idle()?;
        let fd = NsFd::open(peer.proc(), Kind::Mnt)?;
        held.push((fd.mntns_id()?, fd.id()));
        drop(fd);
        if sabotage && i == 0 {
            peer.kill()?;
        } else {
            peers.push(peer);
        }
    }
    let ours = NsFd::current(Kind::Mnt)?;
    let our = (ours.mntns_id()?, ours.id());
    // Down to the smallest id, up from there to the largest, down again.
    let down = walk(&ours, Step::Prev)?;
    let bottom = down.last().map_or(&ours, |m| &m.fd);
    let mut up = vec![Met { id: bottom.mntns_id()?, nsid: bottom.id(), fd: NsFd::from_fd(bottom.as_fd().try_clone_to_owned()?)? }];
    up.extend(walk(bottom, Step::Next)?);
    check_held(&up, &[our], "NS_MNT_GET_NEXT (our own namespace)")?;
    check_held(&up, &held, "NS_MNT_GET_NEXT")?;
    let top = &up.last().expect("the walk holds its start").fd;
    let mut back = walk(top, Step::Prev)?;
    back.push(Met { id: top.mntns_id()?, nsid: top.id(), fd: NsFd::from_fd(top.as_fd().try_clone_to_owned()?)? });
    check_held(&back, &[our], "NS_MNT_GET_PREV (our own namespace)")?;
    check_held(&back, &held, "NS_MNT_GET_PREV")?;
    note("mount_namespaces_walked", format!("{} by NS_MNT_GET_NEXT, {} by NS_MNT_GET_PREV", up.len(), back.len()));
    drop((down, up, back));
    for mut peer in peers {
        peer.go()?;
        peer.join()?;
    }
    Ok(())
}
