//! X7, statmount(2) and listmount(2) by mount namespace id: a mount's
//! `mnt_ns_id` is its namespace's NS_GET_MNTNS_ID, listmount(LSMT_ROOT)
//! lists exactly the mounts of /proc/self/mountinfo, listmount() of another
//! namespace by id lists exactly the mounts its process sees, and one out
//! of reach (or an unknown id) is ENOENT, its mounts EPERM to statmount().

use std::collections::BTreeSet;

use harness::mntns::{self, LSMT_ROOT, STATMOUNT_MNT_NS_ID};
use harness::peer::{call, Spawn};
use harness::{check, check_eq, check_ne, expect_errno, note, CaseError, CaseResult, Errno, Kind, NsFd, NsFlags, NsId, Setup};
use serde::{Deserialize, Serialize};

use super::{enter_private, stat_mount};
use crate::common::{in_new_ns, private_mounts, scratch_tmpfs, unique, SCRATCH};

/// The mount ids (first field) of `/proc/self/mountinfo`.
fn mountinfo_ids() -> Result<BTreeSet<u32>, CaseError> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    text.lines()
        .map(|l| l.split(' ').next().and_then(|f| f.parse().ok()).ok_or_else(|| CaseError::broken(format!("mountinfo line {l:?}"))))
        .collect()
}

/// What a process sees of its own mount namespace.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OwnView {
    /// NS_GET_MNTNS_ID of /proc/self/ns/mnt.
    ns_id: u64,
    /// listmount(LSMT_ROOT) in its own namespace.
    listed: Vec<u64>,
    /// statmount(...).mnt_ns_id of each, in order.
    stat_ns_ids: Vec<u64>,
    /// statmount(...).mnt_id_old of each.
    old_ids: BTreeSet<u32>,
    /// /proc/self/mountinfo ids.
    mountinfo: BTreeSet<u32>,
}

fn own_view() -> Result<OwnView, CaseError> {
    let ns_id = NsFd::current(Kind::Mnt)?.mntns_id()?;
    let listed = mntns::listmount_all(LSMT_ROOT, None).map_err(|e| CaseError::from(e).context("listmount(LSMT_ROOT)"))?;
    let mut stat_ns_ids = Vec::new();
    let mut old_ids = BTreeSet::new();
    for &id in &listed {
        let st = stat_mount(id, None)?;
        stat_ns_ids.push(st.mnt_ns_id);
        old_ids.insert(st.mnt_id_old);
    }
    Ok(OwnView { ns_id, listed, stat_ns_ids, old_ids, mountinfo: mountinfo_ids()? })
}

fn check_own_view(view: &OwnView, expected_ns: u64, whose: &str) -> CaseResult {
    check!(!view.listed.is_empty(), "listmount(LSMT_ROOT) in {whose} mount namespace listed nothing");
    for (id, ns) in view.listed.iter().zip(&view.stat_ns_ids) {
        check_eq!(*ns, expected_ns, "statmount(STATMOUNT_MNT_NS_ID).mnt_ns_id of a mount of {whose} namespace ({id})");
    }
    check_eq!(
        view.old_ids,
        view.mountinfo,
        "mountinfo ids of the mounts listmount(LSMT_ROOT) lists against /proc/self/mountinfo in {whose} namespace"
    );
    Ok(())
}

/// `sabotage`: the peer's mounts are expected to carry our id.
///
/// listmount(), each statmount() and the later /proc/self/mountinfo read
/// must see one set of mounts: in the host's mount namespace a mount or
/// unmount made meanwhile (an automount, systemd) would fail the case
/// spuriously. So the whole case runs in a new mount namespace whose mounts
/// are private (nothing propagates into it), and the peer's is a copy of
/// that one.
pub(super) fn statmount_case(sabotage: bool) -> CaseResult {
    in_new_ns(Kind::Mnt, NsFlags::EMPTY, move || {
        private_mounts()?;
        statmount_views(sabotage)
    })
}

/// [`statmount_case`] inside its private mount namespace ("ours").
fn statmount_views(sabotage: bool) -> CaseResult {
    let ours = own_view()?;
    check_eq!(ours.ns_id, NsFd::current(Kind::Mnt)?.mntns_id()?, "NS_GET_MNTNS_ID asked again");
    check_own_view(&ours, ours.ns_id, "our")?;
    let outside = NsId::current(Kind::Mnt)?;
    let scratch = unique("ids-statmount");
    let mut peer = Spawn::clone(Kind::Mnt.flag()).spawn(move |ch| {
        enter_private(outside)?;
        scratch_tmpfs(&scratch)?;
        ch.send(&(own_view()?, mntns::mount_id_unique(SCRATCH).setup("statx(STATX_MNT_ID_UNIQUE) of the scratch tmpfs")?))?;
        ch.wait()
    })?;
    let (theirs, scratch_id): (OwnView, u64) = peer.recv()?;
    let peer_ns = NsFd::open(peer.proc(), Kind::Mnt)?.mntns_id()?;
    check_eq!(theirs.ns_id, peer_ns, "NS_GET_MNTNS_ID of the new mount namespace from inside and from outside");
    check_ne!(peer_ns, ours.ns_id, "NS_GET_MNTNS_ID of the new mount namespace against ours");
    check_own_view(&theirs, if sabotage { ours.ns_id } else { peer_ns }, "the new")?;
    check!(theirs.listed.contains(&scratch_id), "listmount(LSMT_ROOT) in the new namespace does not list its scratch tmpfs {scratch_id}");
    check!(
        ours.listed.iter().all(|id| !theirs.listed.contains(id)),
        "a mount id listed in both namespaces: {:?} and {:?}",
        ours.listed,
        theirs.listed
    );
    // From outside, by mnt_ns_id: the same namespace id; by our own
    // namespace, the mount is not there.
    let st = stat_mount(scratch_id, Some(peer_ns))?;
    check_eq!(
        st.mnt_ns_id,
        peer_ns,
        "statmount(STATMOUNT_MNT_NS_ID).mnt_ns_id of a mount of the new namespace, asked from outside by its mnt_ns_id"
    );
    expect_errno!(
        mntns::statmount(scratch_id, None, STATMOUNT_MNT_NS_ID),
        Errno::ENOENT,
        "statmount() of the new namespace's mount in ours"
    );
    peer.go()?;
    peer.join()
}

/// What a peer that mounted its scratch tmpfs reports about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PeerMounts {
    /// Unique id of the mount of its `/`.
    root: u64,
    /// Its `/`'s parent mount (itself when `/` is the namespace's root mount).
    root_parent: u64,
    /// Whether `/` is the only child of the namespace's root mount.
    root_only_child: bool,
    /// Unique id of its scratch tmpfs, if it mounted one.
    scratch: Option<u64>,
    /// Its /proc/self/mountinfo ids.
    mountinfo: BTreeSet<u32>,
    /// Its own listmount(LSMT_ROOT).
    listed: BTreeSet<u64>,
}

fn peer_mounts(mounted: bool) -> Result<PeerMounts, CaseError> {
    let root = mntns::mount_id_unique("/").setup("statx(STATX_MNT_ID_UNIQUE) of /")?;
    let root_parent = stat_mount(root, None)?.mnt_parent_id;
    let root_only_child = root_parent != root && {
        let below = mntns::listmount_all(root_parent, None).map_err(|e| CaseError::from(e).context("listmount(parent of /)"))?;
        let mut children = 0;
        for id in below {
            if stat_mount(id, None)?.mnt_parent_id == root_parent {
                children += 1;
            }
        }
        children == 1
    };
    let scratch =
        if mounted { Some(mntns::mount_id_unique(SCRATCH).setup("statx(STATX_MNT_ID_UNIQUE) of the scratch tmpfs")?) } else { None };
    let listed = mntns::listmount_all(LSMT_ROOT, None).map_err(|e| CaseError::from(e).context("listmount(LSMT_ROOT)"))?;
    Ok(PeerMounts { root, root_parent, root_only_child, scratch, mountinfo: mountinfo_ids()?, listed: listed.into_iter().collect() })
}

/// `sabotage`: the peer does not mount its tmpfs.
pub(super) fn listmount_other(sabotage: bool) -> CaseResult {
    let outside = NsId::current(Kind::Mnt)?;
    let scratch = unique("ids-listmount");
    let mut peer = Spawn::clone(Kind::Mnt.flag()).spawn(move |ch| {
        enter_private(outside)?;
        if !sabotage {
            scratch_tmpfs(&scratch)?;
        }
        ch.send(&peer_mounts(!sabotage)?)?;
        ch.wait()
    })?;
    let view: PeerMounts = peer.recv()?;
    let peer_ns = NsFd::open(peer.proc(), Kind::Mnt)?.mntns_id()?;
    let ours = NsFd::current(Kind::Mnt)?.mntns_id()?;
    check_ne!(peer_ns, ours, "NS_GET_MNTNS_ID of the peer's mount namespace (new)");
    // Below the peer's root, by the namespace's id, from outside.
    let below = mntns::listmount_all(view.root, Some(peer_ns)).map_err(|e| CaseError::from(e).context("listmount(peer's /, mnt_ns_id)"))?;
    let listed: BTreeSet<u64> = std::iter::once(view.root).chain(below.iter().copied()).collect();
    check_eq!(listed.len(), below.len() + 1, "listmount() of the peer's namespace listed its root or a mount twice: {below:?}");
    check_eq!(
        listed,
        view.listed,
        "mounts listed from outside by mnt_ns_id (the peer's / and below) against the peer's own listmount(LSMT_ROOT)"
    );
    let mut old_ids = BTreeSet::new();
    for &id in &listed {
        let st = stat_mount(id, Some(peer_ns))?;
        check_eq!(st.mnt_ns_id, peer_ns, "statmount(STATMOUNT_MNT_NS_ID).mnt_ns_id of mount {id} listed in the peer's namespace");
        old_ids.insert(st.mnt_id_old);
    }
    check_eq!(old_ids, view.mountinfo, "mountinfo ids of the mounts listed from outside against the peer's /proc/self/mountinfo");
    check!(
        view.scratch.is_some_and(|s| below.contains(&s)),
        "the mount made only in the peer's namespace ({:?}) is not among those listed from outside: {below:?}",
        view.scratch
    );
    let our_mounts = mntns::listmount_all(LSMT_ROOT, None).map_err(|e| CaseError::from(e).context("listmount(LSMT_ROOT) in ours"))?;
    check!(our_mounts.iter().all(|id| !listed.contains(id)), "one of our mounts {our_mounts:?} listed in the peer's namespace {listed:?}");
    // LSMT_ROOT of another namespace: the kernel starts from the first mount
    // on the namespace's root mount, the peer's / only where / is that
    // mount's only child (not so where / is the root mount itself, as in an
    // initramfs).
    if view.root_only_child {
        let from_root: BTreeSet<u64> = mntns::listmount_all(LSMT_ROOT, Some(peer_ns))
            .map_err(|e| CaseError::from(e).context("listmount(LSMT_ROOT, mnt_ns_id)"))?
            .into_iter()
            .collect();
        check_eq!(from_root, listed, "listmount(LSMT_ROOT) of the peer's namespace by mnt_ns_id");
    } else {
        let why = if view.root == view.root_parent {
            format!("the peer's / ({}) is the namespace's root mount itself", view.root)
        } else {
            format!("the peer's / ({}) is not the only mount on the namespace's root mount ({})", view.root, view.root_parent)
        };
        note("lsmt_root_other_ns", format!("LSMT_ROOT of the other namespace not compared: {why}"));
    }
    peer.go()?;
    peer.join()
}

/// `sabotage`: the prober is the namespace's creator itself.
pub(super) fn out_of_reach(sabotage: bool) -> CaseResult {
    let mut owner = Spawn::clone(Kind::User.flag() | Kind::Mnt.flag()).map_root().spawn_idle()?;
    let target = NsFd::open(owner.proc(), Kind::Mnt)?;
    let target_ns = target.mntns_id()?;
    // We own the target's user namespace's parent: we may list it.
    let mounts =
        mntns::listmount_all(LSMT_ROOT, Some(target_ns)).map_err(|e| CaseError::from(e).context("listmount() of a namespace we own"))?;
    check!(!mounts.is_empty(), "listmount() of a mount namespace owned by our child user namespace listed nothing");
    // Errnos travel as raw values (0: the call succeeded).
    let errno = |r: Result<(), Errno>| r.err().map_or(0, |e| e as i32);
    let probe = move || -> Result<(Vec<u64>, i32, i32, i32), CaseError> {
        let sentinel = [0x5a5a_5a5a_5a5a_5a5au64; 8];
        let mut buf = sentinel;
        let other = errno(harness::error::errno_of(mntns::listmount(LSMT_ROOT, Some(target_ns), 0, &mut buf)));
        let mut buf2 = sentinel;
        let unknown = errno(harness::error::errno_of(mntns::listmount(LSMT_ROOT, Some(u64::MAX - 1), 0, &mut buf2)));
        let stat = errno(harness::error::errno_of(mntns::statmount(mounts[0], Some(target_ns), STATMOUNT_MNT_NS_ID)));
        let written: Vec<u64> = buf.iter().chain(&buf2).copied().filter(|v| *v != sentinel[0]).collect();
        Ok((written, other, unknown, stat))
    };
    let (written, other, unknown, stat) = if sabotage {
        call(&Spawn::fork(), || {
            NsFd::open(owner.proc(), Kind::User)?.setns(Kind::User.flag())?;
            probe()
        })?
    } else {
        call(&Spawn::clone(Kind::User.flag()).map_root(), probe)?
    };
    let name = |raw: i32| if raw == 0 { "success".to_string() } else { format!("{:?}", Errno::from_raw(raw)) };
    check_eq!(name(other), "ENOENT", "listmount() of a mount namespace out of reach (owned by a sibling user namespace)");
    check_eq!(name(unknown), "ENOENT", "listmount() by an mnt_ns_id no namespace has");
    check_eq!(name(stat), "EPERM", "statmount() by mnt_ns_id of a mount in a namespace out of reach");
    check!(written.is_empty(), "refused listmount() calls wrote {written:?} to the caller's buffer");
    owner.go()?;
    owner.join()
}
