//! Namespace ids (claims X1, X7): NS_GET_ID (6.18) against SO_NETNS_COOKIE and
//! NS_GET_MNTNS_ID (6.11), and mount namespace ids through statmount(2),
//! listmount(2) and NS_MNT_GET_INFO/NEXT/PREV (6.12).
//!
//! Sources: `<linux/nsfs.h>` and `<linux/mount.h>` (no man page documents
//! NS_GET_ID, NS_MNT_GET_* or `mnt_id_req.mnt_ns_id` yet), statmount(2),
//! listmount(2), socket(7) (SO_NETNS_COOKIE), and the kernel's selftests
//! namespaces/nsid_test.c, filesystems/nsfs/iterate_mntns.c and
//! filesystems/statmount/statmount_test_ns.c.
//!
//! The parts: `get_id` (X1: NS_GET_ID per kind, SO_NETNS_COOKIE,
//! NS_GET_MNTNS_ID), `statmount` (X7: statmount(2) and listmount(2) by
//! `mnt_ns_id`) and `mnt_ns_ioctl` (X7: NS_MNT_GET_INFO/NEXT/PREV). This
//! module keeps the case lists, the requirements and the X7 helpers both
//! X7 parts use (`stat_mount`, `enter_private`).

use harness::mntns::{self, STATMOUNT_MNT_BASIC, STATMOUNT_MNT_NS_ID};
use harness::{check_eq, check_ne, Case, CaseError, CaseResult, Kind, NsId, Privilege, Requires};

use crate::common::{must_fail_with, private_mounts, SCRATCH};
use get_id::{enotty, get_id, mntns_id_case, netns_cookie_case, never_reused};
use mnt_ns_ioctl::{get_info, next_prev};
use statmount::{listmount_other, out_of_reach, statmount_case};

mod get_id;
mod mnt_ns_ioctl;
mod statmount;

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

/// statmount(STATMOUNT_MNT_BASIC | STATMOUNT_MNT_NS_ID) of `id`, its answer
/// checked to carry both groups.
fn stat_mount(id: u64, ns: Option<u64>) -> Result<mntns::MountStat, CaseError> {
    let st = mntns::statmount(id, ns, STATMOUNT_MNT_BASIC | STATMOUNT_MNT_NS_ID)
        .map_err(|e| CaseError::from(e).context(format!("statmount({id})")))?;
    check_eq!(st.mask & (STATMOUNT_MNT_BASIC | STATMOUNT_MNT_NS_ID), STATMOUNT_MNT_BASIC | STATMOUNT_MNT_NS_ID, "statmount({id}).mask");
    check_eq!(st.mnt_id, id, "statmount({id}).mnt_id");
    Ok(st)
}

/// The first steps of a peer in a new mount namespace that mounts: it
/// must really be in a new one (or it would mount on the case's), then its
/// mounts are made private.
fn enter_private(outside: NsId) -> CaseResult {
    check_ne!(NsId::current(Kind::Mnt)?, outside, "mount namespace of the peer meant to be in a new one");
    private_mounts()
}
