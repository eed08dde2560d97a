//! X1: NS_GET_ID (6.18) is nonzero, equal for every fd of one namespace,
//! different for a new one and never reused; for a network namespace it is
//! SO_NETNS_COOKIE, for a mount namespace NS_GET_MNTNS_ID; on a file that
//! is not an nsfs file, ENOTTY.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::AsFd;

use harness::nsfd::{self, netns_cookie};
use harness::peer::{call, Spawn};
use harness::{check_eq, check_ne, expect_errno, note, CaseError, CaseResult, Errno, Kind, NsEntry, NsFd, NsId, Proc};

/// The identity and NS_GET_ID of the `/proc/self/ns/<entry>` of the
/// process that calls it.
fn own_id(entry: NsEntry) -> Result<(NsId, u64), CaseError> {
    let fd = NsFd::open_entry(Proc::Myself, entry)?;
    Ok((fd.id(), fd.ns_id()?))
}

/// `sabotage`: the new namespace is expected to have our id.
pub(super) fn get_id(kind: Kind, sabotage: bool) -> CaseResult {
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
    let entry = NsEntry::of_new_ns(kind);
    let mut new = Spawn::new_ns(kind).spawn(move |ch| {
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
pub(super) fn never_reused(kind: Kind, sabotage: bool) -> CaseResult {
    let entry = NsEntry::of_new_ns(kind);
    let (our_nsid, our_id) = own_id(NsEntry::own(kind))?;
    let mut seen: BTreeMap<u64, &str> = BTreeMap::from([(our_id, "ours")]);
    let mut inodes = BTreeSet::from([our_nsid]);
    let mut inode_reused = 0;
    for round in 0..ROUNDS {
        let spawn = if sabotage { Spawn::fork() } else { Spawn::new_ns(kind) };
        // The peer exits and is reaped before the next round: with no fd
        // of ours on it, its namespace is destroyed (F1).
        let (nsid, id): (NsId, u64) = call(&spawn, move || own_id(if sabotage { NsEntry::own(kind) } else { entry }))?;
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
pub(super) fn netns_cookie_case(sabotage: bool) -> CaseResult {
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
        ch.send(&(cookie, own_id(NsEntry::own(Kind::Net))?.1))?;
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
pub(super) fn mntns_id_case(sabotage: bool) -> CaseResult {
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

pub(super) fn enotty() -> CaseResult {
    let file = std::fs::File::open("/proc/self/stat")?;
    expect_errno!(nsfd::ns_id(file.as_fd()), Errno::ENOTTY, "NS_GET_ID on a /proc file");
    expect_errno!(nsfd::mntns_id(file.as_fd()), Errno::ENOTTY, "NS_GET_MNTNS_ID on a /proc file");
    Ok(())
}
