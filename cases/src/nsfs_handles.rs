//! nsfs file handles (claim X2, 6.18): name_to_handle_at(2) on a namespace fd
//! and open_by_handle_at(2) with FD_NSFS_ROOT.
//!
//! Sources: open_by_handle_at(2); `fs/nsfs.c` (`nsfs_encode_fh()`,
//! `nsfs_fh_to_dentry()`, `nsfs_export_open()`): a handle is
//! `struct nsfs_file_handle { ns_id, ns_type, ns_inum }` of
//! `<linux/nsfs.h>`; decoding a namespace the caller is not in needs
//! CAP_SYS_ADMIN over it (6.18; since 6.19 in the initial user and pid
//! namespaces), and `do_handle_to_path()` reports every refusal to decode
//! but ENOMEM as ESTALE. The nsfs inode is `S_IMMUTABLE` and a regular file,
//! so write access (O_WRONLY, O_RDWR, O_TRUNC) is EPERM and O_DIRECTORY is
//! ENOTDIR. Peer test: tools/testing/selftests/namespaces/file_handle_test.c.

use std::time::Duration;

use harness::handle::FileHandle;
use harness::listns::{NsfsFileHandle, FILEID_NSFS};
use harness::observe::{release_deadline, FD_NSFS_ROOT};
use harness::peer::Spawn;
use harness::poll::{self, Pause};
use harness::{
    check, check_eq, check_ne, expect_errno, Case, CaseError, CaseResult, Errno, Kind, NsEntry, NsFd, NsFlags, NsId, Privilege, Requires,
};

use crate::common::{in_new_ns, must_fail_with};

/// How long a sabotage run, where a reference is deliberately kept, polls
/// for a release that cannot come.
const SABOTAGE_DEADLINE: Duration = Duration::from_millis(300);

fn needs(kinds: &[Kind]) -> Requires {
    Requires::kinds(kinds).kernel(6, 18)
}

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        out.push(
            Case::new(
                format!("nsfs_handles.reopen.{kind}"),
                &["X2"],
                format!("the nsfs handle of a new {kind} namespace names it (FILEID_NSFS, ns_id, ns_type, ns_inum) and open_by_handle_at(FD_NSFS_ROOT) reopens the same namespace"),
                move || reopen(kind, false),
            )
            .requires(needs(&[kind]).privilege(Privilege::Admin)),
        );
        out.push(
            Case::new(
                format!("nsfs_handles.out_of_reach.{kind}"),
                &["X2"],
                format!("the handle of our {kind} namespace does not reopen from a new user and {kind} namespace (ESTALE); it still reopens here"),
                move || out_of_reach(kind, false),
            )
            .requires(needs(&[Kind::User, kind]).user_namespaces()),
        );
        out.push(
            Case::new(
                format!("nsfs_handles.inactive.{kind}"),
                &["X2"],
                format!("the handle of a {kind} namespace reopens while its process lives and not once it is gone (ESTALE)"),
                move || inactive(kind, false),
            )
            .requires(needs(&[kind]).privilege(Privilege::Root))
            .timeout(Duration::from_secs(15)),
        );
    }
    out.push(
        Case::new(
            "nsfs_handles.open_flags",
            &["X2"],
            "open_by_handle_at(FD_NSFS_ROOT) of each of our namespaces: O_WRONLY, O_RDWR, O_TRUNC are EPERM, O_DIRECTORY ENOTDIR, O_DIRECT and O_TMPFILE EINVAL; the handle still reopens read-only",
            || open_flags(None),
        )
        .requires(Requires::none().kernel(6, 18)),
    );
    out
}

/// The cases of this topic run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    vec![
        Case::new(
            "sabotage.nsfs_handles.reopen.uts",
            &["X2"],
            "the reopened namespace is expected to be the caller's old uts namespace",
            || must_fail_with(reopen(Kind::Uts, true), "the namespace reopened from the handle"),
        )
        .requires(needs(&[Kind::Uts]).privilege(Privilege::Admin)),
        Case::new(
            "sabotage.nsfs_handles.out_of_reach.net",
            &["X2"],
            "the out-of-reach open is tried from the caller's own namespaces, where it succeeds",
            || must_fail_with(out_of_reach(Kind::Net, true), "open_by_handle_at(FD_NSFS_ROOT) from a new user and net namespace"),
        )
        .requires(needs(&[Kind::User, Kind::Net]).user_namespaces()),
        Case::new(
            "sabotage.nsfs_handles.inactive.uts",
            &["X2"],
            "an fd of the namespace is kept open, so its handle still reopens",
            || must_fail_with(inactive(Kind::Uts, true), "still reopens"),
        )
        .requires(needs(&[Kind::Uts]).privilege(Privilege::Root)),
        Case::new("sabotage.nsfs_handles.open_flags", &["X2"], "O_WRONLY is expected to be ENOTDIR", || {
            must_fail_with(open_flags(Some(Errno::ENOTDIR)), "O_WRONLY")
        })
        .requires(Requires::none().kernel(6, 18)),
    ]
}

/// name_to_handle_at(fd, "", AT_EMPTY_PATH) on a namespace fd: its handle,
/// checked to be an nsfs handle naming that namespace.
fn checked_handle(fd: &NsFd, kind: Kind) -> Result<FileHandle, CaseError> {
    let handle = FileHandle::of(fd)?;
    check_eq!(handle.handle_type, FILEID_NSFS, "handle_type of the handle of a {kind} namespace fd");
    let Some(fields) = NsfsFileHandle::decode(&handle) else {
        return Err(CaseError::fail(format!(
            "the handle of a {kind} namespace has {} bytes, fewer than struct nsfs_file_handle",
            handle.bytes.len()
        )));
    };
    check_eq!(fields.ns_type as u64, kind.flag().bits(), "ns_type in the handle of a {kind} namespace");
    check_eq!(fields.ns_inum as u64, fd.id().ino, "ns_inum in the handle of a {kind} namespace (its st_ino)");
    check_eq!(fields.ns_id, fd.ns_id()?, "ns_id in the handle of a {kind} namespace (its NS_GET_ID)");
    Ok(handle)
}

/// `wrong`: sabotage, the reopened namespace is expected to be the one the
/// case started in.
fn reopen(kind: Kind, wrong: bool) -> CaseResult {
    let outside = NsId::current(kind)?;
    in_new_ns(kind, NsFlags::EMPTY, move || {
        let fd = NsFd::current(kind)?;
        let handle = checked_handle(&fd, kind)?;
        let reopened = NsFd::from_fd(handle.open(FD_NSFS_ROOT)?)?;
        let expected = if wrong { outside } else { fd.id() };
        check_eq!(reopened.id(), expected, "the namespace reopened from the handle of /proc/self/ns/{kind} (st_dev, st_ino)");
        check_eq!(reopened.nstype()?, kind.flag(), "NS_GET_NSTYPE of the {kind} namespace reopened from its handle");
        // A second reopen gives the same namespace again, and nothing moved.
        let again = NsFd::from_fd(handle.open(FD_NSFS_ROOT)?)?;
        check_eq!(again.id(), fd.id(), "a second reopen of the {kind} handle");
        check_eq!(NsId::current(kind)?, fd.id(), "our {kind} namespace after reopening its handle");
        Ok(())
    })
}

/// `from_own`: sabotage, the open is tried in the caller's own namespaces.
fn out_of_reach(kind: Kind, from_own: bool) -> CaseResult {
    let ours = NsFd::current(kind)?;
    let handle = checked_handle(&ours, kind)?;
    let h = handle.clone();
    let attempt = move || {
        let got = h.open(FD_NSFS_ROOT).map(|fd| NsId::of_fd(&fd)).map_err(|e| e as i32);
        Ok(got.map(|r| r.ok()))
    };
    let got: Result<Option<NsId>, i32> =
        if from_own { harness::peer::in_child(attempt)? } else { in_new_ns(kind, Kind::User.flag(), attempt)? };
    match got {
        Err(errno) => check_eq!(
            Errno::from_raw(errno),
            Errno::ESTALE,
            "open_by_handle_at(FD_NSFS_ROOT) from a new user and {kind} namespace, of the handle of our {kind} namespace"
        ),
        Ok(id) => {
            return Err(CaseError::fail(format!(
                "open_by_handle_at(FD_NSFS_ROOT) from a new user and {kind} namespace, of the handle of our {kind} namespace: expected ESTALE, but it opened {id:?}"
            )))
        }
    }
    // Nothing changed: the handle still reopens our namespace here.
    let here = NsId::of_fd(handle.open(FD_NSFS_ROOT)?)?;
    check_eq!(here, ours.id(), "our {kind} namespace reopened from its handle after the refused open elsewhere");
    Ok(())
}

/// `keep_fd`: sabotage, an fd of the namespace stays open.
fn inactive(kind: Kind, keep_fd: bool) -> CaseResult {
    let mut peer = Spawn::new_ns(kind).spawn_idle()?;
    let fd = NsFd::open_entry(peer.proc(), NsEntry::of_new_ns(kind))?;
    check_ne!(fd.id(), NsId::for_children(harness::Proc::Myself, kind)?, "the peer's {kind} namespace (new)");
    let handle = checked_handle(&fd, kind)?;
    let id = fd.id();
    let kept = if keep_fd {
        Some(fd)
    } else {
        drop(fd);
        None
    };
    let alive = NsId::of_fd(handle.open(FD_NSFS_ROOT)?)?;
    check_eq!(alive, id, "the {kind} namespace reopened from its handle while its process lives");
    peer.go()?;
    peer.join()?;
    // Release is asynchronous for several kinds (cleanup_net, RCU), so poll.
    let deadline = if keep_fd { SABOTAGE_DEADLINE } else { release_deadline() };
    let released = poll::poll_until(deadline, Pause::every(Duration::from_micros(200)), || match handle.open(FD_NSFS_ROOT) {
        Err(Errno::ESTALE) => Ok(true),
        Err(e) => Err(CaseError::fail(format!("open_by_handle_at of a gone {kind} namespace: expected ESTALE, got {e:?} ({})", e.desc()))),
        Ok(fd) => {
            check_eq!(NsId::of_fd(&fd)?, id, "the {kind} namespace reopened from its handle before release");
            Ok(false)
        }
    })?;
    check!(released.is_some(), "the handle of a {kind} namespace whose last process exited still reopens after {deadline:?}");
    drop(kept);
    Ok(())
}

/// `wrong_write`: sabotage, the errno expected for O_WRONLY.
fn open_flags(wrong_write: Option<Errno>) -> CaseResult {
    let refused: [(&str, i32, Errno); 6] = [
        ("O_WRONLY", libc::O_WRONLY, wrong_write.unwrap_or(Errno::EPERM)),
        ("O_RDWR", libc::O_RDWR, Errno::EPERM),
        ("O_TRUNC", libc::O_TRUNC, Errno::EPERM),
        ("O_DIRECTORY", libc::O_DIRECTORY, Errno::ENOTDIR),
        ("O_DIRECT", libc::O_DIRECT, Errno::EINVAL),
        ("O_TMPFILE", libc::O_TMPFILE, Errno::EINVAL),
    ];
    for (kind, id) in NsId::all(harness::Proc::Myself)? {
        let fd = NsFd::current(kind)?;
        check_eq!(fd.id(), id, "/proc/self/ns/{kind} opened twice");
        let handle = checked_handle(&fd, kind)?;
        for (name, flag, errno) in refused {
            expect_errno!(
                handle.open_with(FD_NSFS_ROOT, flag | libc::O_CLOEXEC),
                errno,
                "open_by_handle_at(FD_NSFS_ROOT, handle of our {kind} namespace, {name})"
            );
        }
        // Nothing changed: the handle reopens read-only, to the same namespace.
        let reopened = NsFd::from_fd(handle.open(FD_NSFS_ROOT)?)?;
        check_eq!(reopened.id(), id, "our {kind} namespace reopened read-only after the refused opens");
        check_eq!(NsId::current(kind)?, id, "our {kind} namespace after the refused opens");
    }
    Ok(())
}
