//! Namespace ids (claims X1, X7): NS_GET_ID (6.18) against SO_NETNS_COOKIE and
//! NS_GET_MNTNS_ID (6.11), and mount namespace ids through statmount(2),
//! listmount(2) and NS_MNT_GET_INFO/NEXT/PREV (6.12).
//!
//! Sources: `<linux/nsfs.h>` and `<linux/mount.h>` (no man page documents
//! NS_GET_ID, NS_MNT_GET_* or `mnt_id_req.mnt_ns_id` yet), statmount(2),
//! listmount(2), socket(7) (SO_NETNS_COOKIE), and the kernel's selftests
//! namespaces/nsid_test.c, filesystems/nsfs/iterate_mntns.c and
//! filesystems/statmount/statmount_test_ns.c.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::AsFd;

use harness::mntns::{self, Step, LSMT_ROOT, STATMOUNT_MNT_BASIC, STATMOUNT_MNT_NS_ID};
use harness::nsfd::{self, netns_cookie};
use harness::peer::{call, Spawn};
use harness::{
    check, check_eq, check_ne, expect_errno, note, Case, CaseError, CaseResult, Errno, Kind, NsFd, NsId, Privilege, Proc, Requires, Setup,
};
use serde::{Deserialize, Serialize};

use crate::common::{in_new_ns, must_fail_with, new_ns_entry, private_mounts, scratch_tmpfs, spawn_in_new, unique, SCRATCH};

/// NS_GET_ID (6.18), with the privilege to create a namespace of `kind`.
fn needs_ns_get_id(kind: Kind) -> Requires {
    Requires::kinds(&[kind]).kernel(6, 18).privilege(Privilege::Admin)
}

/// statmount(2)/listmount(2) by `mnt_ns_id` and NS_GET_MNTNS_ID (6.11), in a
/// new mount namespace with a scratch tmpfs.
fn needs_mnt_ns_id() -> Requires {
    Requires::kinds(&[Kind::Mnt]).kernel(6, 11).privilege(Privilege::Admin).probe(scratch_dir_missing)
}

fn scratch_dir_missing() -> Option<String> {
    (!std::path::Path::new(SCRATCH).is_dir()).then(|| format!("no {SCRATCH} directory to mount scratch filesystems on"))
}

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        out.push(
            Case::new(
                format!("ns_ids.get_id.{kind}"),
                &["X1"],
                format!(
                    "NS_GET_ID on a {kind} namespace is nonzero, the same through /proc/self/ns and /proc/<peer>/ns (same st_dev/st_ino), \
                     and different for a new {kind} namespace, read from outside and from inside alike"
                ),
                move || get_id(kind, false),
            )
            .requires(needs_ns_get_id(kind)),
        );
        out.push(
            Case::new(
                format!("ns_ids.get_id_never_reused.{kind}"),
                &["X1"],
                format!("{kind} namespaces created and destroyed one after another never get an NS_GET_ID seen before"),
                move || never_reused(kind, false),
            )
            .requires(needs_ns_get_id(kind)),
        );
    }
    out.push(
        Case::new(
            "ns_ids.get_id_is_netns_cookie",
            &["X1"],
            "NS_GET_ID of a network namespace equals SO_NETNS_COOKIE of a socket created in it (ours and a new one)",
            || netns_cookie_case(false),
        )
        .requires(needs_ns_get_id(Kind::Net)),
    );
    out.push(
        Case::new(
            "ns_ids.get_id_is_mntns_id",
            &["X1"],
            "NS_GET_ID of a mount namespace equals NS_GET_MNTNS_ID (ours and a new one); NS_GET_MNTNS_ID on any other kind is EINVAL",
            || mntns_id_case(false),
        )
        .requires(needs_ns_get_id(Kind::Mnt)),
    );
    out.push(
        Case::new(
            "ns_ids.get_id_enotty_on_other_fd",
            &["X1"],
            "NS_GET_ID and NS_GET_MNTNS_ID on a fd that is not an nsfs file are ENOTTY",
            enotty,
        )
        .requires(Requires::none().kernel(6, 18)),
    );
    out.push(
        Case::new(
            "ns_ids.statmount_mnt_ns_id",
            &["X7"],
            "statmount(STATMOUNT_MNT_NS_ID) of every mount listmount() lists gives the NS_GET_MNTNS_ID of its namespace, \
             and listmount(LSMT_ROOT) lists exactly the mounts of /proc/self/mountinfo, in a private mount namespace of the case's \
             own (so nothing else mounts meanwhile) and in a new one made from it",
            || statmount_case(false),
        )
        .requires(needs_mnt_ns_id()),
    );
    out.push(
        Case::new(
            "ns_ids.listmount_other_ns",
            &["X7"],
            "listmount() of another mount namespace by its mnt_ns_id lists exactly the mounts its process sees (a mount made \
             only there included, none of ours)",
            || listmount_other(false),
        )
        .requires(needs_mnt_ns_id()),
    );
    out.push(
        Case::new(
            "ns_ids.listmount_other_ns_out_of_reach",
            &["X7"],
            "listmount() of a mount namespace owned by a user namespace the caller has no CAP_SYS_ADMIN in, or of an id no \
             namespace has, is ENOENT and writes nothing; statmount() of its mount is EPERM",
            || out_of_reach(false),
        )
        .requires(Requires::kinds(&[Kind::User, Kind::Mnt]).kernel(6, 11).privilege(Privilege::Admin)),
    );
    out.push(
        Case::new(
            "ns_ids.mnt_get_info",
            &["X7"],
            "NS_MNT_GET_INFO gives the fd's own mount namespace: size 16, mnt_ns_id of NS_GET_MNTNS_ID, nr_mounts the mounts \
             but its root, one more after a mount; EINVAL on another kind or without a buffer",
            || get_info(false),
        )
        .requires(needs_mnt_ns_id().kernel(6, 12)),
    );
    out.push(
        Case::new(
            "ns_ids.mnt_get_next_prev",
            &["X7"],
            "NS_MNT_GET_NEXT/PREV walk the mount namespaces in strictly increasing/decreasing id order, each fd and info \
             naming the same namespace, every held one included, and end with ENOENT creating no fd",
            || next_prev(false),
        )
        .requires(Requires::kinds(&[Kind::Mnt]).kernel(6, 12).privilege(Privilege::Root)),
    );
    out
}

/// The cases of this topic run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    vec![
        Case::new("sabotage.ns_ids.get_id.uts", &["X1"], "the new uts namespace is expected to have our NS_GET_ID", || {
            must_fail_with(get_id(Kind::Uts, true), "NS_GET_ID of a new uts namespace")
        })
        .requires(needs_ns_get_id(Kind::Uts)),
        Case::new(
            "sabotage.ns_ids.get_id_never_reused.ipc",
            &["X1"],
            "the peers stay in our ipc namespace (no CLONE_NEWIPC): the same id comes back",
            || must_fail_with(never_reused(Kind::Ipc, true), "seen before"),
        )
        .requires(needs_ns_get_id(Kind::Ipc)),
        Case::new(
            "sabotage.ns_ids.get_id_is_netns_cookie",
            &["X1"],
            "the socket is created before entering the new network namespace",
            || must_fail_with(netns_cookie_case(true), "SO_NETNS_COOKIE of a socket created in the new network namespace"),
        )
        .requires(needs_ns_get_id(Kind::Net)),
        Case::new(
            "sabotage.ns_ids.get_id_is_mntns_id",
            &["X1"],
            "NS_GET_MNTNS_ID is read from our mount namespace instead of the new one",
            || must_fail_with(mntns_id_case(true), "NS_GET_MNTNS_ID of the new mount namespace"),
        )
        .requires(needs_ns_get_id(Kind::Mnt)),
        Case::new(
            "sabotage.ns_ids.statmount_mnt_ns_id",
            &["X7"],
            "the peer's mounts are expected to report our mount namespace's id",
            || must_fail_with(statmount_case(true), "statmount(STATMOUNT_MNT_NS_ID).mnt_ns_id of a mount of the new namespace"),
        )
        .requires(needs_mnt_ns_id()),
        Case::new("sabotage.ns_ids.listmount_other_ns", &["X7"], "the peer does not mount its scratch tmpfs", || {
            must_fail_with(listmount_other(true), "the mount made only in the peer's namespace")
        })
        .requires(needs_mnt_ns_id()),
        Case::new(
            "sabotage.ns_ids.listmount_other_ns_out_of_reach",
            &["X7"],
            "the prober is the namespace's own creator (it has CAP_SYS_ADMIN there)",
            || must_fail_with(out_of_reach(true), "listmount() of a mount namespace out of reach"),
        )
        .requires(Requires::kinds(&[Kind::User, Kind::Mnt]).kernel(6, 11).privilege(Privilege::Admin)),
        Case::new("sabotage.ns_ids.mnt_get_info", &["X7"], "the peer does not mount: nr_mounts is expected to grow anyway", || {
            must_fail_with(get_info(true), "NS_MNT_GET_INFO.nr_mounts after one more mount")
        })
        .requires(needs_mnt_ns_id().kernel(6, 12)),
        Case::new(
            "sabotage.ns_ids.mnt_get_next_prev",
            &["X7"],
            "one held namespace is released before the walk but still expected in it",
            || must_fail_with(next_prev(true), "held mount namespace in the NS_MNT_GET_NEXT walk"),
        )
        .requires(Requires::kinds(&[Kind::Mnt]).kernel(6, 12).privilege(Privilege::Root)),
    ]
}

// ---------------------------------------------------------------- X1

/// The identity and NS_GET_ID of the `/proc/self/ns/<entry>` of the
/// process that calls it.
fn own_id(entry: &str) -> Result<(NsId, u64), CaseError> {
    let fd = NsFd::open_entry(Proc::Myself, entry)?;
    Ok((fd.id(), fd.ns_id()?))
}

/// `sabotage`: the new namespace is expected to have our id.
fn get_id(kind: Kind, sabotage: bool) -> CaseResult {
    let ours = NsFd::current(kind)?;
    let id = ours.ns_id()?;
    check_ne!(id, 0, "NS_GET_ID of /proc/self/ns/{kind}");
    check_eq!(ours.ns_id()?, id, "NS_GET_ID of /proc/self/ns/{kind} asked again");
    // Another fd of the same namespace, opened through another process.
    let mut same = Spawn::fork().spawn_idle()?;
    let theirs = NsFd::open(same.proc(), kind)?;
    check_eq!(theirs.id(), ours.id(), "st_dev/st_ino of /proc/<peer>/ns/{kind} of a peer in our namespaces");
    check_eq!(theirs.ns_id()?, id, "NS_GET_ID of /proc/<peer>/ns/{kind} (the same {kind} namespace)");
    drop(theirs);
    same.go()?;
    same.join()?;
    // A new namespace, read from outside and from inside.
    let entry = new_ns_entry(kind);
    let mut new = spawn_in_new(kind, 0).spawn(move |ch| {
        ch.send(&own_id(entry)?)?;
        ch.wait()
    })?;
    let (inside_nsid, inside_id): (NsId, u64) = new.recv()?;
    let outside = NsFd::open_entry(new.proc(), entry)?;
    let outside_id = outside.ns_id()?;
    check_ne!(outside.id(), ours.id(), "st_dev/st_ino of the new {kind} namespace ({entry} of the peer)");
    check_eq!(inside_nsid, outside.id(), "st_dev/st_ino of the new {kind} namespace from inside and from outside");
    check_ne!(outside_id, 0, "NS_GET_ID of the new {kind} namespace");
    if sabotage {
        check_eq!(outside_id, id, "NS_GET_ID of a new {kind} namespace against ours");
    }
    check_ne!(outside_id, id, "NS_GET_ID of a new {kind} namespace against ours");
    check_eq!(inside_id, outside_id, "NS_GET_ID of the new {kind} namespace through /proc/self/ns inside and /proc/<peer>/ns outside");
    new.go()?;
    new.join()
}

/// Rounds of create, read, destroy.
const ROUNDS: usize = 4;

/// `sabotage`: the peers are plain forks, in our namespace.
fn never_reused(kind: Kind, sabotage: bool) -> CaseResult {
    let entry = new_ns_entry(kind);
    let (our_nsid, our_id) = own_id(kind.proc_name())?;
    let mut seen: BTreeMap<u64, &str> = BTreeMap::from([(our_id, "ours")]);
    let mut inodes = BTreeSet::from([our_nsid]);
    let mut inode_reused = 0;
    for round in 0..ROUNDS {
        let spawn = if sabotage { Spawn::fork() } else { spawn_in_new(kind, 0) };
        // The peer exits and is reaped before the next round: with no fd
        // of ours on it, its namespace is destroyed (F1).
        let (nsid, id): (NsId, u64) = call(&spawn, move || own_id(if sabotage { kind.proc_name() } else { entry }))?;
        check_ne!(id, 0, "NS_GET_ID of new {kind} namespace {round}");
        if let Some(earlier) = seen.insert(id, ["first", "second", "third", "fourth"][round]) {
            return Err(CaseError::fail(format!(
                "NS_GET_ID {id} of the {} new {kind} namespace was seen before (the {earlier} one's)",
                ["first", "second", "third", "fourth"][round]
            )));
        }
        if !inodes.insert(nsid) {
            inode_reused += 1;
        }
    }
    // The inode number of a destroyed namespace may come back; its id may
    // not. Nothing here compares ids by creation order: on 6.18 they come
    // from per-CPU cookies (harness::known::ns_ids_are_per_cpu_cookies),
    // unique but not ordered across CPUs.
    note(
        "inode_numbers_reused",
        format!(
            "{inode_reused} of {ROUNDS} new {kind} namespaces had an st_ino seen before (ids from per-CPU cookies: {})",
            harness::known::ns_ids_are_per_cpu_cookies()
        ),
    );
    Ok(())
}

/// `sabotage`: the socket is made before the peer enters the new network
/// namespace (so it belongs to ours).
fn netns_cookie_case(sabotage: bool) -> CaseResult {
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::Stream,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let ours = NsFd::current(Kind::Net)?.ns_id()?;
    check_eq!(netns_cookie(sock.as_fd())?, ours, "SO_NETNS_COOKIE of a socket created in our network namespace against its NS_GET_ID");
    let spawn = if sabotage { Spawn::unshare(Kind::Net.flag()) } else { Spawn::clone(Kind::Net.flag()) };
    let mut peer = spawn.spawn(move |ch| {
        let cookie = if sabotage {
            netns_cookie(sock.as_fd())?
        } else {
            let own = nix::sys::socket::socket(
                nix::sys::socket::AddressFamily::Inet,
                nix::sys::socket::SockType::Datagram,
                nix::sys::socket::SockFlag::SOCK_CLOEXEC,
                None,
            )?;
            netns_cookie(own.as_fd())?
        };
        ch.send(&(cookie, own_id("net")?.1))?;
        ch.wait()
    })?;
    let (cookie, inside): (u64, u64) = peer.recv()?;
    let outside = NsFd::open(peer.proc(), Kind::Net)?;
    check_ne!(outside.id(), NsId::current(Kind::Net)?, "st_dev/st_ino of the peer's network namespace (new)");
    let new_id = outside.ns_id()?;
    check_eq!(inside, new_id, "NS_GET_ID of the new network namespace from inside and from outside");
    check_eq!(cookie, new_id, "SO_NETNS_COOKIE of a socket created in the new network namespace against its NS_GET_ID");
    check_ne!(new_id, ours, "NS_GET_ID of the new network namespace against ours");
    peer.go()?;
    peer.join()
}

/// `sabotage`: NS_GET_MNTNS_ID is read from our namespace's fd.
fn mntns_id_case(sabotage: bool) -> CaseResult {
    let ours = NsFd::current(Kind::Mnt)?;
    check_eq!(ours.mntns_id()?, ours.ns_id()?, "NS_GET_MNTNS_ID of our mount namespace against its NS_GET_ID");
    let mut peer = Spawn::clone(Kind::Mnt.flag()).spawn_idle()?;
    let new = NsFd::open(peer.proc(), Kind::Mnt)?;
    check_ne!(new.id(), ours.id(), "st_dev/st_ino of the peer's mount namespace (new)");
    let new_id = new.ns_id()?;
    let mntns_id = if sabotage { ours.mntns_id()? } else { new.mntns_id()? };
    check_eq!(mntns_id, new_id, "NS_GET_MNTNS_ID of the new mount namespace against its NS_GET_ID");
    check_ne!(new_id, ours.ns_id()?, "NS_GET_ID of the new mount namespace against ours");
    peer.go()?;
    peer.join()?;
    // Every other kind built into the kernel: a kind that is built in but
    // whose fd cannot be opened is an error, not a reason to pass it over.
    let built_in = harness::runner::Host::running();
    for kind in Kind::ALL.into_iter().filter(|k| *k != Kind::Mnt && built_in.has(*k)) {
        let fd = NsFd::current(kind)?;
        expect_errno!(fd.mntns_id(), Errno::EINVAL, "NS_GET_MNTNS_ID on a {kind} namespace fd");
    }
    Ok(())
}

fn enotty() -> CaseResult {
    let file = std::fs::File::open("/proc/self/stat")?;
    expect_errno!(nsfd::ns_id(file.as_fd()), Errno::ENOTTY, "NS_GET_ID on a /proc file");
    expect_errno!(nsfd::mntns_id(file.as_fd()), Errno::ENOTTY, "NS_GET_MNTNS_ID on a /proc file");
    Ok(())
}

// ---------------------------------------------------------------- X7

/// The mount ids (first field) of `/proc/self/mountinfo`.
fn mountinfo_ids() -> Result<BTreeSet<u32>, CaseError> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    text.lines()
        .map(|l| l.split(' ').next().and_then(|f| f.parse().ok()).ok_or_else(|| CaseError::broken(format!("mountinfo line {l:?}"))))
        .collect()
}

/// statmount(STATMOUNT_MNT_BASIC | STATMOUNT_MNT_NS_ID) of `id`, its answer
/// checked to carry both groups.
fn stat_mount(id: u64, ns: Option<u64>) -> Result<mntns::MountStat, CaseError> {
    let st = mntns::statmount(id, ns, STATMOUNT_MNT_BASIC | STATMOUNT_MNT_NS_ID)
        .map_err(|e| CaseError::from(e).context(format!("statmount({id})")))?;
    check_eq!(st.mask & (STATMOUNT_MNT_BASIC | STATMOUNT_MNT_NS_ID), STATMOUNT_MNT_BASIC | STATMOUNT_MNT_NS_ID, "statmount({id}).mask");
    check_eq!(st.mnt_id, id, "statmount({id}).mnt_id");
    Ok(st)
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

/// The first steps of a peer in a new mount namespace that mounts: it
/// must really be in a new one (or it would mount on the case's), then its
/// mounts are made private.
fn enter_private(outside: NsId) -> CaseResult {
    check_ne!(NsId::current(Kind::Mnt)?, outside, "mount namespace of the peer meant to be in a new one");
    private_mounts()
}

/// `sabotage`: the peer's mounts are expected to carry our id.
///
/// listmount(), each statmount() and the later /proc/self/mountinfo read
/// must see one set of mounts: in the host's mount namespace a mount or
/// unmount made meanwhile (an automount, systemd) would fail the case
/// spuriously. So the whole case runs in a new mount namespace whose mounts
/// are private (nothing propagates into it), and the peer's is a copy of
/// that one.
fn statmount_case(sabotage: bool) -> CaseResult {
    in_new_ns(Kind::Mnt, 0, move || {
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
fn listmount_other(sabotage: bool) -> CaseResult {
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
fn out_of_reach(sabotage: bool) -> CaseResult {
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
fn get_info(sabotage: bool) -> CaseResult {
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
fn next_prev(sabotage: bool) -> CaseResult {
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
