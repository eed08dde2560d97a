//! listns(2) and active references (claims X5, X6, 6.19).
//!
//! Sources: the kernel's description of listns(2) (commit 76b6f5dfb3fd,
//! `kernel/nstree.c`, `include/uapi/linux/nsfs.h`): the ids of the active
//! namespaces the caller may see, increasing, after `req->ns_id`, filtered
//! by `ns_type` and by owning user namespace (`user_ns_id`,
//! LISTNS_CURRENT_USER); a caller without CAP_SYS_ADMIN in the initial user
//! and pid namespaces sees the namespaces it is in (and, by owner, those of
//! its own user namespaces). Active references ("ns: add active reference
//! count", 6.19): a namespace is active while a task, an nsfs file (fd or
//! bind mount) or an active namespace it owns or parents uses it; an
//! inactive one is not listed and its nsfs handle does not reopen.
//! Peer tests: tools/testing/selftests/namespaces/listns_test.c,
//! listns_permissions_test.c, listns_efault_test.c,
//! listns_pagination_bug.c, ns_active_ref_test.c.
//!
//! The parts: `active` (X6, and X5's listing by type: what keeps a
//! namespace active, seen through listns and its reopening handle),
//! `pagination` (X5: listings resumed after the last id) and `listing`
//! (X5: by owner, visibility, bad arguments). This module keeps the case
//! lists and the listing helpers they share (`listed`, `all_of_type`).

use std::os::fd::AsFd;
use std::time::Duration;

use harness::known::{LISTNS_PID_PARENT_NOT_KEPT_ACTIVE, LISTNS_RESUME_STOPS_AT_INACTIVE};
use harness::listns::{self as ln, NsIdReq};
use harness::{check, check_eq, Case, CaseError, CaseResult, Errno, Kind, Privilege, Requires};

use crate::common::must_fail_with;
use active::{
    bind_mount_keeps_active, fd_keeps_active, pid_parent_keeps_active, process_keeps_active, related_keeps_active, Related, OWNER_STAYS,
};
use listing::{bad_arguments, owner, visibility};
use pagination::{pagination, Resume};

mod active;
mod listing;
mod pagination;

/// Ids per call when listing everything.
const PAGE: usize = 512;

fn needs(kinds: &[Kind]) -> Requires {
    Requires::kinds(kinds).kernel(6, 19)
}

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        out.push(
            Case::new(
                format!("listns.active.process.{kind}"),
                &["X5", "X6"],
                format!("a new {kind} namespace is listed by type and in the whole list, never under another type, and reopens while its process lives; once the process is gone it is neither listed nor reopens (ESTALE)"),
                move || process_keeps_active(kind, false),
            )
            .requires(needs(&[kind]).privilege(Privilege::Root))
            .timeout(Duration::from_secs(15)),
        );
    }
    for kind in [Kind::User, Kind::Net] {
        out.push(
            Case::new(
                format!("listns.pagination.{kind}"),
                &["X5"],
                format!("listing {kind} namespaces one and two ids a call, each call resuming after the last id, gives increasing ids of that type only, three new ones among them"),
                move || pagination(kind, Resume::Last),
            )
            .requires(needs(&[kind]).privilege(Privilege::Root))
            .known_deviation(&LISTNS_RESUME_STOPS_AT_INACTIVE)
            .timeout(Duration::from_secs(15)),
        );
    }
    out.push(
        Case::new(
            "listns.owner",
            &["X5"],
            "in a new user namespace owning new net, uts and ipc namespaces, listing by owner (LISTNS_CURRENT_USER, its id) gives exactly those, and a child user namespace under its parent's id",
            || owner(false),
        )
        .requires(needs(&[Kind::User, Kind::Net, Kind::Uts, Kind::Ipc]).user_namespaces()),
    );
    out.push(
        Case::new(
            "listns.visibility",
            &["X5"],
            "a process in a new user namespace lists the net and user namespaces it is in, but not those of a sibling user namespace, which the sibling lists",
            || visibility(false),
        )
        .requires(needs(&[Kind::User, Kind::Net]).user_namespaces()),
    );
    out.push(
        Case::new(
            "listns.bad_arguments",
            &["X5"],
            "listns with flags, a short size or a nonzero spare is EINVAL, an unmapped or NULL request or id buffer EFAULT, nothing written; ids stay within nr_ns_ids",
            || bad_arguments(None),
        )
        .requires(needs(&[])),
    );
    out.push(
        Case::new(
            "listns.active.nsfs_fd",
            &["X6"],
            "a net namespace whose process is gone stays listed and reopens while an nsfs fd of it is open (a control without one is released); closing it deactivates it",
            || fd_keeps_active(false),
        )
        .requires(needs(&[Kind::Net]).privilege(Privilege::Root))
        .timeout(Duration::from_secs(15)),
    );
    out.push(
        Case::new(
            "listns.active.bind_mount",
            &["X6"],
            "a net namespace whose process is gone stays listed and reopens while its nsfs file is bind-mounted (a control is released); unmounting deactivates it",
            || bind_mount_keeps_active(true),
        )
        .requires(needs(&[Kind::Net, Kind::Mnt]).privilege(Privilege::Root))
        .timeout(Duration::from_secs(15)),
    );
    out.push(
        Case::new(
            "listns.active.owned_namespace",
            &["X6"],
            "a user namespace without processes stays listed and reopens while a net namespace it owns is active (held by an fd); closing that deactivates both",
            || related_keeps_active(Related::Owned, false),
        )
        .requires(needs(&[Kind::User, Kind::Net]).privilege(Privilege::Root))
        .timeout(Duration::from_secs(15)),
    );
    out.push(
        Case::new(
            "listns.active.child_user_namespace",
            &["X6"],
            "a user namespace without processes stays listed and reopens while a child user namespace is active (held by an fd); closing that deactivates both",
            || related_keeps_active(Related::Child, false),
        )
        .requires(needs(&[Kind::User]).privilege(Privilege::Root))
        .timeout(Duration::from_secs(15)),
    );
    out.push(
        Case::new(
            "listns.active.parent_pid_namespace",
            &["X6"],
            "a pid namespace whose init is gone stays listed and reopens while its child pid namespace is active (held by an fd; a control without one is released); closing that deactivates both",
            || pid_parent_keeps_active(true),
        )
        .requires(needs(&[Kind::Pid]).privilege(Privilege::Root))
        .known_deviation(&LISTNS_PID_PARENT_NOT_KEPT_ACTIVE)
        .timeout(Duration::from_secs(15)),
    );
    out
}

/// The cases of this topic run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    vec![
        Case::new("sabotage.listns.active.process.uts", &["X5", "X6"], "the new uts namespace is expected under the net type", || {
            must_fail_with(process_keeps_active(Kind::Uts, true), "listed under type")
        })
        .requires(needs(&[Kind::Uts]).privilege(Privilege::Root)),
        Case::new(
            "sabotage.listns.pagination.net",
            &["X5"],
            "each call resumes after the cursor of the previous call instead of its last id",
            || must_fail_with(pagination(Kind::Net, Resume::Same), "increasing across calls"),
        )
        .requires(needs(&[Kind::Net]).privilege(Privilege::Root)),
        Case::new("sabotage.listns.owner", &["X5"], "the owner's own user namespace is expected among the namespaces it owns", || {
            must_fail_with(owner(true), "namespaces owned by")
        })
        .requires(needs(&[Kind::User, Kind::Net, Kind::Uts, Kind::Ipc]).user_namespaces()),
        Case::new("sabotage.listns.visibility", &["X5"], "the sibling's net namespace is expected to be visible", || {
            must_fail_with(visibility(true), "sibling")
        })
        .requires(needs(&[Kind::User, Kind::Net]).user_namespaces()),
        Case::new("sabotage.listns.bad_arguments", &["X5"], "nonzero flags are expected to be accepted", || {
            must_fail_with(bad_arguments(Some(())), "flags 1")
        })
        .requires(needs(&[])),
        Case::new("sabotage.listns.active.nsfs_fd", &["X6"], "the fd is closed before the check", || {
            must_fail_with(fd_keeps_active(true), "still active while")
        })
        .requires(needs(&[Kind::Net]).privilege(Privilege::Root)),
        Case::new("sabotage.listns.active.bind_mount", &["X6"], "the bind mount is undone before the check", || {
            must_fail_with(bind_mount_keeps_active(false), "still active while")
        })
        .requires(needs(&[Kind::Net, Kind::Mnt]).privilege(Privilege::Root)),
        Case::new(
            "sabotage.listns.active.owned_namespace",
            &["X6"],
            "the net namespace held by an fd is a new one of our own user namespace, not one the user namespace owns",
            || must_fail_with(related_keeps_active(Related::Owned, true), OWNER_STAYS),
        )
        .requires(needs(&[Kind::User, Kind::Net]).privilege(Privilege::Root)),
        Case::new(
            "sabotage.listns.active.child_user_namespace",
            &["X6"],
            "the user namespace held by an fd is a new child of our own user namespace, not of the one checked",
            || must_fail_with(related_keeps_active(Related::Child, true), OWNER_STAYS),
        )
        .requires(needs(&[Kind::User]).privilege(Privilege::Root)),
    ]
}

/// Every id `req` (from the start, `ns_id` 0) selects, from ONE call
/// whose buffer is grown ([`PAGE`], then 4 times larger) until the listing
/// fits: no call resumes after an id, so a listing is never cut short by
/// a resumed call ending with ENOENT (resumption is what
/// [`pagination()`] checks, where that is the known deviation
/// [`LISTNS_RESUME_STOPS_AT_INACTIVE`]). Fails on any errno, and unless the
/// ids are nonzero and strictly increasing.
fn listed(req: NsIdReq, what: &str) -> Result<Vec<u64>, CaseError> {
    let mut cap = PAGE;
    loop {
        let ids = match ln::listns(&req, cap) {
            Ok(ids) => ids,
            Err(e) => return Err(CaseError::fail(format!("{what}: {e}"))),
        };
        if ids.len() < cap {
            for (i, id) in ids.iter().enumerate() {
                check!(*id != 0, "{what}: listns gave id 0");
                check!(i == 0 || *id > ids[i - 1], "{what}: ids not strictly increasing: {id} after {}", ids[i - 1]);
            }
            return Ok(ids);
        }
        check!(cap < MAX_LISTING, "{what}: {cap} or more namespaces listed");
        cap *= 4;
    }
}

/// The largest buffer [`listed`] grows to (listns(2) takes up to 1000000).
const MAX_LISTING: usize = PAGE << 10;

/// Fails unless every id listed under `kind`, reopened by id, is a `kind`
/// namespace (those gone meanwhile, ESTALE, are passed over).
fn all_of_type(ids: &[u64], kind: Kind, what: &str) -> CaseResult {
    for id in ids {
        match ln::open_by_id(*id) {
            Ok(fd) => {
                let t = harness::nsfd::nstype(fd.as_fd())?;
                check_eq!(t.to_string(), kind.flag().to_string(), "{what}: type of listed id {id}");
            }
            Err(Errno::ESTALE) => {}
            Err(e) => return Err(CaseError::fail(format!("{what}: reopening listed id {id}: unexpected errno {e:?}"))),
        }
    }
    Ok(())
}
