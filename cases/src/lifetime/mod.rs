//! namespaces(7), "The namespace lifetime" and "The `/proc/[pid]/ns/`
//! directory": what keeps a namespace alive (N2, F1-F9).
//!
//! Aliveness is observed through the per-uid count under a limit set in a
//! fresh user namespace ([`LimitObserver`]), on any kernel from 4.9, and
//! where the kernel has nsfs file handles (6.18+) also through them; both
//! must agree. A "kept alive" verdict is never read right after the last
//! other reference goes: a control namespace whose last reference went
//! afterwards is first seen released, in a counting domain of its own
//! ([`Control`]), so a release seen there is the control's and nobody
//! else's; a subject that should have gone would be gone too. The verdict
//! then has to hold for four times the control's release time (at least
//! 50 ms, scaled like every deadline).
//!
//! One part per reference: `last_process` (F1: none but processes),
//! `ns_files` (N2, F2: an open fd or a bind mount), `owner_and_parent` (F3,
//! F4: a child or an owned namespace), `for_children` (F5, F9) and
//! `fs_mounts` (F6, F7: an mqueue or proc mount); each part but
//! `last_process` also checks F8 (the release once that reference goes).
//! This module holds the case lists and the subject and control plumbing
//! they share.
//!
//! [`LimitObserver`]: harness::observe::LimitObserver

mod for_children;
mod fs_mounts;
mod last_process;
mod ns_files;
mod owner_and_parent;

use std::time::Duration;

use harness::observe::Control;
use harness::peer::{Peer, Spawn};
use harness::{Case, CaseError, CaseResult, Kind, NsEntry, NsFlags, Privilege, Requires};

use crate::common::{must_fail, must_fail_with};
use for_children::for_children_keeps_alive;
use fs_mounts::{pseudo_fs_mount_keeps, Refers};
use last_process::{released_despite_fd, released_when_left, Leave};
use ns_files::{bind_mount_keeps_alive, fd_keeps_alive, handle_observer, FdRef};
use owner_and_parent::{child_keeps_parent, owner_kept_alive};

/// Per-case deadline: releases are polled for up to 3 s each.
const TIMEOUT: Duration = Duration::from_secs(15);

/// How long a sabotage run, where a reference is deliberately kept, polls
/// for a release that cannot come (the real deadline would only slow it).
const SABOTAGE_RELEASE_DEADLINE: Duration = Duration::from_millis(300);

fn needs(kinds: &[Kind]) -> Requires {
    Requires::kinds(kinds).kernel(4, 9).privilege(Privilege::Admin)
}

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        let max_since = kind.info().max_sysctl_since;
        let req = move |kinds: &[Kind]| needs(kinds).kernel(max_since.major, max_since.minor);
        out.push(
            Case::new(
                format!("lifetime.released_on_exit.{kind}"),
                &["F1"],
                format!("a {kind} namespace with no other reference is released when its last process exits"),
                move || released_when_left(kind, Leave::Exit),
            )
            .requires(req(&[Kind::User, kind]))
            .timeout(TIMEOUT),
        );
        if !matches!(kind, Kind::Pid | Kind::User) {
            out.push(
                Case::new(
                    format!("lifetime.released_on_setns_leave.{kind}"),
                    &["F1"],
                    format!("a {kind} namespace with no other reference is released when its last process leaves with setns"),
                    move || released_when_left(kind, Leave::Setns),
                )
                .requires(req(&[Kind::User, kind]))
                .timeout(TIMEOUT),
            );
        }
        out.push(
            Case::new(
                format!("lifetime.fd_keeps_alive.{kind}"),
                &["N2", "F2", "F8"],
                format!("an open /proc/[pid]/ns/{kind} keeps the namespace alive after its processes exit; closing it releases it"),
                move || fd_keeps_alive(kind, FdRef::Kept),
            )
            .requires(req(&[Kind::User, kind]))
            .timeout(TIMEOUT),
        );
        out.push(
            Case::new(
                format!("lifetime.bind_mount_keeps_alive.{kind}"),
                &["N2", "F2", "F8"],
                format!("a bind mount of /proc/[pid]/ns/{kind} keeps the namespace alive after the fd is closed; unmounting releases it"),
                move || bind_mount_keeps_alive(kind, true),
            )
            .requires(req(&[Kind::User, Kind::Mnt, kind]))
            .timeout(TIMEOUT),
        );
        if kind != Kind::User {
            out.push(
                Case::new(
                    format!("lifetime.owner_kept_alive.{kind}"),
                    &["F4", "F8"],
                    format!("a user namespace stays alive while it owns a {kind} namespace (NS_GET_USERNS reaches it)"),
                    move || owner_kept_alive(kind, true),
                )
                .requires(req(&[Kind::User, kind]))
                .timeout(TIMEOUT),
            );
        }
    }
    for kind in [Kind::Pid, Kind::User] {
        out.push(
            Case::new(
                format!("lifetime.child_keeps_parent.{kind}"),
                &["F3", "F8"],
                format!("a {kind} namespace with a child namespace stays alive while the child lives (NS_GET_PARENT reaches it)"),
                move || child_keeps_parent(kind, true),
            )
            .requires(needs(&[Kind::User, kind]))
            .timeout(TIMEOUT),
        );
    }
    for (kind, claim) in [(Kind::Pid, "F5"), (Kind::Time, "F9")] {
        let entry = kind.info().for_children.unwrap_or_default();
        let max_since = kind.info().max_sysctl_since;
        out.push(
            Case::new(
                format!("lifetime.{entry}_keeps_alive"),
                &[claim, "F8"],
                format!(
                    "a process that unshared {} keeps that {kind} namespace alive through {entry} before it has any child",
                    kind.info().flag_name
                ),
                move || for_children_keeps_alive(kind, true),
            )
            .requires(needs(&[Kind::User, kind]).kernel(max_since.major, max_since.minor))
            .timeout(TIMEOUT),
        );
    }
    for (mount_it, id) in [(true, "lifetime.mqueue_mount_keeps_ipc"), (false, "lifetime.mount_ns_without_mqueue_releases_ipc")] {
        let case = Case::new(
            id,
            &["F6", "F8"],
            if mount_it {
                "an mqueue mount (in a held mount namespace) keeps its ipc namespace alive; dropping the mount namespace releases it"
            } else {
                "control: a held mount namespace without an mqueue mount does not keep the ipc namespace alive"
            },
            move || pseudo_fs_mount_keeps(Kind::Ipc, if mount_it { Refers::Mount } else { Refers::Nothing }),
        )
        .requires(needs(&[Kind::User, Kind::Mnt, Kind::Ipc]))
        .timeout(TIMEOUT);
        out.push(case.known_deviation_if(mount_it, &harness::known::MQUEUE_MOUNT_DOES_NOT_PIN_IPC));
    }
    for (mount_it, id) in [(true, "lifetime.proc_mount_keeps_pid"), (false, "lifetime.mount_ns_without_proc_releases_pid")] {
        out.push(
            Case::new(
                id,
                &["F7", "F8"],
                if mount_it {
                    "a proc mount (in a held mount namespace) keeps its pid namespace alive after its last process exits"
                } else {
                    "control: a held mount namespace without a proc mount does not keep the pid namespace alive"
                },
                move || pseudo_fs_mount_keeps(Kind::Pid, if mount_it { Refers::Mount } else { Refers::Nothing }),
            )
            .requires(needs(&[Kind::User, Kind::Mnt, Kind::Pid]))
            .timeout(TIMEOUT),
        );
    }
    out
}

/// The observers run against a deliberately kept or dropped reference:
/// each must then report it (the case must fail).
pub fn sabotaged() -> Vec<Case> {
    let mut out = for_children_sabotaged();
    out.extend(references_sabotaged());
    for kind in [Kind::Uts, Kind::Net, Kind::Ipc, Kind::Pid, Kind::User, Kind::Time] {
        out.push(
            Case::new(
                format!("sabotage.lifetime.fd_dropped.{kind}"),
                &["N2", "F2"],
                format!("the {kind} fd is closed before the check: the observers must report the namespace released"),
                move || must_fail_with(fd_keeps_alive(kind, FdRef::ClosedEarly), "the subject namespace held only by an open fd"),
            )
            .requires(needs(&[Kind::User, kind]))
            .timeout(TIMEOUT),
        );
        out.push(
            Case::new(
                format!("sabotage.lifetime.fd_kept.{kind}"),
                &["F1", "F8"],
                format!("an fd to the {kind} namespace is kept: the observer must report it not released"),
                move || must_fail_with(released_despite_fd(kind), "the subject namespace (an fd is deliberately kept)"),
            )
            .requires(needs(&[Kind::User, kind]))
            .timeout(TIMEOUT),
        );
        out.push(
            Case::new(
                format!("sabotage.lifetime.handle_fd_kept.{kind}"),
                &["F2"],
                format!("the nsfs handle observer: an fd to the {kind} namespace is kept, yet its handle is expected to stop reopening"),
                move || must_fail(handle_observer(kind, true)),
            )
            .requires(needs(&[Kind::User, kind]).kernel(6, 18).privilege(Privilege::Root))
            .timeout(TIMEOUT),
        );
        out.push(
            Case::new(
                format!("sabotage.lifetime.handle_fd_dropped.{kind}"),
                &["F2"],
                format!("the nsfs handle observer: the {kind} namespace is released, yet its handle is expected to reopen"),
                move || must_fail(handle_observer(kind, false)),
            )
            .requires(needs(&[Kind::User, kind]).kernel(6, 18).privilege(Privilege::Root))
            .timeout(TIMEOUT),
        );
    }
    out
}

/// The cases of the other references (a bind mount, a child namespace, an
/// owned namespace, a filesystem mount) with the reference dropped where it
/// is expected to keep the namespace alive, or kept where the namespace is
/// expected released: each must fail at that check.
fn references_sabotaged() -> Vec<Case> {
    let mut out = Vec::new();
    for kind in [Kind::Uts, Kind::Pid, Kind::User] {
        out.push(
            Case::new(
                format!("sabotage.lifetime.fd_second_kept.{kind}"),
                &["F8"],
                format!("a second fd to the {kind} namespace stays open when the first is closed: it must not be seen released"),
                move || must_fail_with(fd_keeps_alive(kind, FdRef::SecondKept), "the subject namespace after its fd was closed"),
            )
            .requires(needs(&[Kind::User, kind]))
            .timeout(TIMEOUT),
        );
        out.push(
            Case::new(
                format!("sabotage.lifetime.bind_unmounted.{kind}"),
                &["N2", "F2"],
                format!("the bind mount of the {kind} namespace is removed before the check: it must be seen released"),
                move || must_fail_with(bind_mount_keeps_alive(kind, false), "the subject namespace held only by a bind mount"),
            )
            .requires(needs(&[Kind::User, Kind::Mnt, kind]))
            .timeout(TIMEOUT),
        );
    }
    for kind in [Kind::Pid, Kind::User] {
        out.push(
            Case::new(
                format!("sabotage.lifetime.child_keeps_parent.{kind}"),
                &["F3"],
                format!("the fd holding the child {kind} namespace is closed before the check: the parent must be seen released"),
                move || {
                    must_fail_with(
                        child_keeps_parent(kind, false),
                        &format!("the parent {kind} namespace whose child namespace is held by an fd"),
                    )
                },
            )
            .requires(needs(&[Kind::User, kind]))
            .timeout(TIMEOUT),
        );
    }
    for kind in [Kind::Uts, Kind::Pid, Kind::Time] {
        let max_since = kind.info().max_sysctl_since;
        out.push(
            Case::new(
                format!("sabotage.lifetime.owner_kept_alive.{kind}"),
                &["F4"],
                format!("the fd holding the owned {kind} namespace is closed before the check: its owner must be seen released"),
                move || {
                    must_fail_with(owner_kept_alive(kind, false), &format!("the user namespace owning a {kind} namespace held by an fd"))
                },
            )
            .requires(needs(&[Kind::User, kind]).kernel(max_since.major, max_since.minor))
            .timeout(TIMEOUT),
        );
    }
    // F6 itself is a known deviation (the mqueue mount does not keep the
    // ipc namespace alive), so its control is the case sabotaged here.
    out.push(
        Case::new(
            "sabotage.lifetime.mount_ns_without_mqueue_releases_ipc",
            &["F6"],
            "the control keeps an fd to the ipc namespace: the ipc namespace must not be seen released",
            || must_fail_with(pseudo_fs_mount_keeps(Kind::Ipc, Refers::Fd), "the ipc namespace with no mqueue mount"),
        )
        .requires(needs(&[Kind::User, Kind::Mnt, Kind::Ipc]))
        .timeout(TIMEOUT),
    );
    out.push(
        Case::new(
            "sabotage.lifetime.proc_mount_keeps_pid",
            &["F7"],
            "the proc mount is unmounted again before its process exits: the pid namespace must be seen released",
            || must_fail_with(pseudo_fs_mount_keeps(Kind::Pid, Refers::MountUndone), "the pid namespace referred to by a proc mount"),
        )
        .requires(needs(&[Kind::User, Kind::Mnt, Kind::Pid]))
        .timeout(TIMEOUT),
    );
    out
}

/// The `*_for_children` cases with the reference dropped: each must fail
/// where the namespace is expected alive.
fn for_children_sabotaged() -> Vec<Case> {
    [(Kind::Pid, "F5"), (Kind::Time, "F9")]
        .into_iter()
        .map(|(kind, claim)| {
            let entry = kind.info().for_children.unwrap_or_default();
            let max_since = kind.info().max_sysctl_since;
            Case::new(
                format!("sabotage.lifetime.{entry}_dropped"),
                &[claim],
                format!("the process holding {entry} exits before the check: the {kind} namespace must be seen released"),
                move || must_fail_with(for_children_keeps_alive(kind, false), &format!("the {kind} namespace referenced only by {entry}")),
            )
            .requires(needs(&[Kind::User, kind]).kernel(max_since.major, max_since.minor))
            .timeout(TIMEOUT)
        })
        .collect()
}

/// A peer whose new `kind` namespace is the subject: for time, whose flag
/// clone(2) cannot take, the peer unshares and the subject is its
/// time_for_children. `extra` adds flags. Returns the peer and the entry
/// naming the subject.
fn subject(kind: Kind, extra: NsFlags) -> Result<(Peer, NsEntry), CaseError> {
    subject_with(kind, extra, |ch| {
        ch.ready()?;
        ch.wait()
    })
}

fn subject_with<F>(kind: Kind, extra: NsFlags, body: F) -> Result<(Peer, NsEntry), CaseError>
where
    F: FnOnce(&harness::peer::Channel) -> CaseResult,
{
    let mut peer = Spawn::new_ns_with(kind, extra).spawn(body)?;
    peer.wait_ready()?;
    Ok((peer, NsEntry::of_new_ns(kind)))
}

/// How long an "alive" verdict must hold after the control's release took
/// `control`: releases of one kind are not strictly ordered (RCU-delayed
/// and work-queue frees), so a subject that should have gone is given four
/// times as long as the control took, and at least 50 ms scaled like every
/// deadline, to show it. Real and sabotaged runs use the same window: a
/// sabotage proves the verdict the real case reaches.
fn settle_after(control: Duration) -> Duration {
    (control * 4).max(harness::isolate::scaled(Duration::from_millis(50)))
}

/// Releases the control and returns how long the "alive" check that
/// follows must hold ([`settle_after`]).
fn alive_window(ctl: Control) -> Result<Duration, CaseError> {
    Ok(settle_after(ctl.release()?))
}

/// Lets a peer go and reaps it (its references go with it).
fn finish(mut peer: Peer) -> CaseResult {
    peer.go()?;
    peer.join()
}
