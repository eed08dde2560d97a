//! namespaces(7), "The namespace lifetime" and "The /proc/[pid]/ns/
//! directory": what keeps a namespace alive (N2, F1-F8).
//!
//! Aliveness is observed through the per-uid count under a limit set in a
//! fresh user namespace ([`LimitObserver`]), on any kernel from 4.9, and
//! where the kernel has nsfs file handles (6.18+) also through them; both
//! must agree. A "kept alive" verdict is never read right after the last
//! other reference goes: a control namespace whose last reference went
//! afterwards is first seen released, in a counting domain of its own
//! ([`Control`]), so a release seen there is the control's and nobody
//! else's; a subject that should have gone would be gone too. The verdict
//! then has to hold for twice the control's release time.

use std::time::Duration;

use harness::observe::{release_deadline, Control, HandleProber, LimitObserver, NsHandle};
use harness::peer::{Peer, Spawn};
use harness::{check, check_eq, note, Case, CaseError, CaseResult, Kind, NsFd, NsId, Privilege, Proc, Requires, Setup};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::common::{must_fail, must_fail_with, new_ns_entry, spawn_in_new};

/// Per-case deadline: releases are polled for up to 3 s each.
const TIMEOUT: Duration = Duration::from_secs(15);

/// How long a sabotage run, where a reference is deliberately kept, polls
/// for a release that cannot come (the real deadline would only slow it).
const SABOTAGE_RELEASE_DEADLINE: Duration = Duration::from_millis(300);

/// What [`fd_keeps_alive`] holds once the subject's process is gone.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FdRef {
    /// The fd, until it is closed after the check (the claim).
    Kept,
    /// Sabotage: the fd is closed before the check.
    ClosedEarly,
    /// Sabotage: a second fd that stays open when the first is closed.
    SecondKept,
}

/// What refers to the subject namespace of [`pseudo_fs_mount_keeps`] after
/// its last process exits, its mount namespace held by an fd.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refers {
    /// The filesystem mounted there (the claim): expected alive.
    Mount,
    /// Nothing, the filesystem never mounted (the control): expected released.
    Nothing,
    /// Sabotage of the claim: mounted, then unmounted before the process
    /// exits; still expected alive.
    MountUndone,
    /// Sabotage of the control: not mounted, but an fd to the subject
    /// namespace is kept; still expected released.
    Fd,
}

/// How a subject namespace's last process is got rid of.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Leave {
    Exit,
    Setns,
}

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

/// Sabotage of the nsfs handle observer: with `keep` the fd is kept and
/// the handle is expected gone; without, the namespace is released (as the
/// limit observer sees) and the handle is expected to reopen.
fn handle_observer(kind: Kind, keep: bool) -> CaseResult {
    let mut prober = HandleProber::start()?.ok_or_else(|| CaseError::broken("nsfs handles cannot observe namespaces here"))?;
    let mut obs = LimitObserver::enter(kind, 1)?;
    let (peer, entry) = subject(kind, 0)?;
    let fd = NsFd::open_entry(peer.proc(), entry)?;
    let handle = NsHandle::of(&fd)?;
    finish(peer)?;
    if keep {
        prober.wait_gone(&handle, "the subject namespace (an fd is deliberately kept)", Duration::from_millis(300))?;
        drop(fd);
    } else {
        drop(fd);
        obs.wait_released("the subject namespace")?;
        check!(prober.reopen(&handle)?.is_some(), "the released namespace's nsfs handle no longer reopens");
    }
    Ok(())
}

/// A peer whose new `kind` namespace is the subject: for time, whose flag
/// clone(2) cannot take, the peer unshares and the subject is its
/// time_for_children. `extra` adds flags. Returns the peer and the entry
/// naming the subject.
fn subject(kind: Kind, extra: u64) -> Result<(Peer, &'static str), CaseError> {
    subject_with(kind, extra, |ch| {
        ch.ready()?;
        ch.wait()
    })
}

fn subject_with<F>(kind: Kind, extra: u64, body: F) -> Result<(Peer, &'static str), CaseError>
where
    F: FnOnce(&harness::peer::Channel) -> CaseResult,
{
    let mut peer = spawn_in_new(kind, extra).spawn(body)?;
    peer.wait_ready()?;
    Ok((peer, new_ns_entry(kind)))
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

fn released_when_left(kind: Kind, leave: Leave) -> CaseResult {
    // Leaving with setns needs a namespace to go back to that we may join:
    // one of our own, made in the observer's user namespace (it counts).
    let own = u64::from(leave == Leave::Setns);
    let mut prober = HandleProber::start()?;
    let mut obs = LimitObserver::enter(kind, 1 + own)?;
    let (mut peer, entry) = match leave {
        Leave::Exit => subject(kind, 0)?,
        Leave::Setns => {
            harness::sys::unshare(kind.flag())?;
            let back = NsFd::open_entry(Proc::Myself, kind.info().for_children.unwrap_or(kind.proc_name()))?;
            subject_with(kind, 0, move |ch| {
                ch.ready()?;
                ch.wait()?;
                back.setns(kind.flag())?;
                ch.ready()?;
                ch.wait()
            })?
        }
    };
    // The second observer: a handle taken through a short-lived fd.
    let handle = prober.as_ref().map(|_| NsHandle::of(NsFd::open_entry(peer.proc(), entry)?)).transpose()?;
    obs.expect_full("the subject namespace while its process is in it")?;
    if let (Some(p), Some(h)) = (&mut prober, &handle) {
        check!(p.reopen(h)?.is_some(), "the subject's nsfs handle does not reopen while its process is in it");
    }
    let latency = match leave {
        Leave::Exit => {
            finish(peer)?;
            obs.wait_released("the subject namespace after its last process exited")?
        }
        Leave::Setns => {
            peer.go()?;
            peer.wait_ready()?;
            let t = obs.wait_released("the subject namespace after its last process left with setns")?;
            finish(peer)?;
            t
        }
    };
    if let (Some(p), Some(h)) = (&mut prober, &handle) {
        p.wait_gone(h, "the subject namespace, released as the limit observer saw", release_deadline())?;
    }
    note(format!("release_latency_ms.{kind}"), format!("{:.3}", latency.as_secs_f64() * 1000.0));
    Ok(())
}

/// `held` other than [`FdRef::Kept`] is a sabotage: the fd is closed
/// before the checks, or a second one outlives it.
fn fd_keeps_alive(kind: Kind, held: FdRef) -> CaseResult {
    let mut prober = HandleProber::start()?;
    let ctl = Control::start(kind)?;
    let mut obs = LimitObserver::enter(kind, 1)?;
    if held == FdRef::SecondKept {
        obs = obs.with_deadline(SABOTAGE_RELEASE_DEADLINE);
    }
    let (peer, entry) = subject(kind, 0)?;
    let fd = NsFd::open_entry(peer.proc(), entry)?;
    // The second sabotage's other fd, open until the body returns.
    let _second = if held == FdRef::SecondKept { Some(NsFd::open_entry(peer.proc(), entry)?) } else { None };
    let id = fd.id();
    let handle = prober.as_ref().map(|_| NsHandle::of(&fd)).transpose()?;
    obs.expect_full("the subject namespace while its process is in it")?;
    finish(peer)?;
    // The sabotage closes the fd here, before the control goes.
    let fd = (held != FdRef::ClosedEarly).then_some(fd);
    let settle = alive_window(ctl)?;
    obs.expect_stays_full("the subject namespace held only by an open fd", settle)?;
    if let (Some(p), Some(h)) = (&mut prober, &handle) {
        let reopened = p.reopen(h)?.ok_or_else(|| CaseError::fail("the nsfs handle no longer reopens while the fd is held"))?;
        check_eq!(reopened, id, "namespace reopened from its nsfs handle");
    }
    drop(fd);
    let t = obs.wait_released("the subject namespace after its fd was closed")?;
    if let (Some(p), Some(h)) = (&mut prober, &handle) {
        p.wait_gone(h, "the subject namespace after its fd was closed", release_deadline())?;
    }
    note(format!("release_latency_ms.{kind}"), format!("{:.3}", t.as_secs_f64() * 1000.0));
    Ok(())
}

/// Sabotage of F1 and F8: an fd is kept, yet the namespace is expected
/// released.
fn released_despite_fd(kind: Kind) -> CaseResult {
    let obs = LimitObserver::enter(kind, 1)?;
    let mut obs = obs.with_deadline(Duration::from_millis(300));
    let (peer, entry) = subject(kind, 0)?;
    let fd = NsFd::open_entry(peer.proc(), entry)?;
    finish(peer)?;
    obs.wait_released("the subject namespace (an fd is deliberately kept)")?;
    drop(fd);
    Ok(())
}

/// `keep` false is the sabotage: the bind mount is removed before the check.
fn bind_mount_keeps_alive(kind: Kind, keep: bool) -> CaseResult {
    // Our own mount namespace for the bind mount counts too when the
    // subject is a mount namespace.
    let own_mnt = u64::from(kind == Kind::Mnt);
    let ctl = Control::start(kind)?;
    let mut obs = LimitObserver::enter(kind, 1 + own_mnt)?;
    if kind == Kind::Mnt {
        // A mount namespace file binds only into an older namespace
        // (mnt_ns_loop()); 6.18 orders namespaces by ids drawn from per-CPU
        // batches, so both are made on one CPU (fuzz.known.mnt_ns_bind_newer
        // reports the deviation itself).
        stay_on_this_cpu()?;
    }
    harness::sys::unshare(Kind::Mnt.flag())?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)?;
    mount(Some("tmpfs"), "/tmp", Some("tmpfs"), MsFlags::empty(), Some("size=64k"))?;
    let target = "/tmp/nsverify-bind";
    std::fs::write(target, "").setup("creating the bind mount target")?;
    let (peer, entry) = subject(kind, 0)?;
    let fd = NsFd::open_entry(peer.proc(), entry)?;
    let source = peer.proc().ns_path(entry);
    mount(Some(&source), target, None::<&str>, MsFlags::MS_BIND, None::<&str>)?;
    check_eq!(stat_id(target)?, fd.id(), "st_dev/st_ino of the bind mount of {}", source.display());
    obs.expect_full("the subject namespace while its process is in it")?;
    finish(peer)?;
    // Each other reference goes in turn: the process, then the fd.
    drop(fd);
    if !keep {
        umount2(target, MntFlags::MNT_DETACH)?;
    }
    let settle = alive_window(ctl)?;
    obs.expect_stays_full("the subject namespace held only by a bind mount", settle)?;
    if keep {
        umount2(target, MntFlags::MNT_DETACH)?;
    }
    let t = obs.wait_released("the subject namespace after the bind mount was removed")?;
    note(format!("release_latency_ms.{kind}"), format!("{:.3}", t.as_secs_f64() * 1000.0));
    Ok(())
}

/// Pins the calling process (and the children it starts) to the CPU it
/// runs on.
fn stay_on_this_cpu() -> CaseResult {
    let cpu = nix::sched::sched_getcpu()?;
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)?;
    Ok(())
}

fn stat_id(path: &str) -> Result<NsId, nix::errno::Errno> {
    let st = nix::sys::stat::stat(path)?;
    Ok(NsId { dev: st.st_dev, ino: st.st_ino })
}

/// `keep` false is the sabotage: the owned namespace's fd is closed before
/// the check.
fn owner_kept_alive(kind: Kind, keep: bool) -> CaseResult {
    let ctl = Control::start(Kind::User)?;
    let mut obs = LimitObserver::enter(Kind::User, 1)?;
    let (peer, entry) = subject(kind, Kind::User.flag())?;
    let owner = NsId::of(peer.proc(), Kind::User)?;
    let owned = NsFd::open_entry(peer.proc(), entry)?;
    obs.expect_full("the owning user namespace while its process is in it")?;
    finish(peer)?;
    let owned = keep.then_some(owned);
    let settle = alive_window(ctl)?;
    obs.expect_stays_full(&format!("the user namespace owning a {kind} namespace held by an fd"), settle)?;
    if let Some(owned) = &owned {
        check_eq!(owned.user_ns()?.id(), owner, "NS_GET_USERNS of the held {kind} namespace");
    }
    drop(owned);
    obs.wait_released(&format!("the user namespace after its {kind} namespace was released"))?;
    Ok(())
}

/// `keep` false is the sabotage: the child namespace's fd is closed before
/// the check.
fn child_keeps_parent(kind: Kind, keep: bool) -> CaseResult {
    let ctl = Control::start(kind)?;
    let mut obs = LimitObserver::enter(kind, 2)?;
    let (peer, _) = subject_with(kind, 0, move |ch| {
        // The child namespace, made by a process inside the parent one.
        let inner = subject(kind, 0)?;
        ch.ready()?;
        ch.wait()?;
        drop(inner);
        Ok(())
    })?;
    let parent_id = NsId::of(peer.proc(), kind)?;
    // The inner peer's pid as this process sees it.
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", peer.pid())).setup("reading the peer's children")?;
    let inner: i32 =
        children.split_whitespace().next().and_then(|p| p.parse().ok()).ok_or_else(|| CaseError::broken("the peer has no child"))?;
    let child_ns = NsFd::open(Proc::Pid(inner), kind)?;
    harness::check_ne!(child_ns.id(), parent_id, "the child {kind} namespace");
    obs.expect_full("the parent and the child namespace while processes are in them")?;
    finish(peer)?;
    let child_ns = keep.then_some(child_ns);
    let settle = alive_window(ctl)?;
    obs.expect_stays_full(&format!("the parent {kind} namespace whose child namespace is held by an fd"), settle)?;
    if let Some(child_ns) = &child_ns {
        check_eq!(child_ns.parent()?.id(), parent_id, "NS_GET_PARENT of the held child {kind} namespace");
    }
    drop(child_ns);
    obs.wait_released("the child namespace after its fd was closed")?;
    obs.wait_released("the parent namespace after its child was released")?;
    Ok(())
}

/// F5 (pid) and F9 (time): a process that unshared CLONE_NEWPID or
/// CLONE_NEWTIME and has no child refers to the new namespace only through
/// its `*_for_children` entry. `keep` false is the sabotage: the process
/// exits before the check.
fn for_children_keeps_alive(kind: Kind, keep: bool) -> CaseResult {
    let entry = kind.info().for_children.ok_or_else(|| CaseError::broken(format!("{kind} has no *_for_children entry")))?;
    let mut prober = HandleProber::start()?;
    let ctl = Control::start(kind)?;
    let mut obs = LimitObserver::enter(kind, 1)?;
    let peer = Spawn::unshare(kind.flag()).spawn_idle()?;
    // pid_for_children reads ENOENT until the first child (namespaces(7);
    // identity.for_children.pid judges that, with the known deviation
    // PID_FOR_CHILDREN_OPENS_EARLY); time_for_children names the new
    // namespace at once. Here either form only decides whether an nsfs
    // handle observes the namespace besides the limit observer.
    let early = match NsFd::open_entry(peer.proc(), entry) {
        Ok(fd) => Some(fd),
        Err(e) if kind == Kind::Pid && e.errno == harness::Errno::ENOENT => None,
        Err(e) => return Err(e.into()),
    };
    if let Some(fd) = &early {
        check!(NsId::of(peer.proc(), kind)? != fd.id(), "{entry} of the process names a new namespace");
    }
    let handle = match (&prober, &early) {
        (Some(_), Some(fd)) => Some(NsHandle::of(fd)?),
        _ => None,
    };
    drop(early);
    obs.expect_full(&format!("the {kind} namespace of {entry}"))?;
    let peer = if keep {
        Some(peer)
    } else {
        finish(peer)?;
        None
    };
    let settle = settle_after(ctl.release()?);
    obs.expect_stays_full(&format!("the {kind} namespace referenced only by {entry} of a process with no child"), settle)?;
    if let (Some(p), Some(h)) = (&mut prober, &handle) {
        check!(p.reopen(h)?.is_some(), "the nsfs handle of the {kind} namespace of {entry} no longer reopens");
    }
    if let Some(peer) = peer {
        finish(peer)?;
    }
    obs.wait_released(&format!("the {kind} namespace after the process exited"))?;
    if let (Some(p), Some(h)) = (&mut prober, &handle) {
        p.wait_gone(h, &format!("the {kind} namespace after the process exited"), release_deadline())?;
    }
    Ok(())
}

/// F6 (ipc, mqueue) and F7 (pid, proc): a peer in new `kind` and mount
/// namespaces mounts the filesystem that refers to `kind` (unless `refers`
/// is [`Refers::Nothing`], the control), then exits; its mount namespace
/// is held by an fd. The other two [`Refers`] are the sabotages.
fn pseudo_fs_mount_keeps(kind: Kind, refers: Refers) -> CaseResult {
    let ctl = Control::start(kind)?;
    let mut obs = LimitObserver::enter(kind, 1)?;
    if refers == Refers::Fd {
        obs = obs.with_deadline(SABOTAGE_RELEASE_DEADLINE);
    }
    let (fstype, dir) = if kind == Kind::Ipc { ("mqueue", "/tmp/mq") } else { ("proc", "/tmp/proc") };
    let (peer, _) = subject_with(kind, Kind::Mnt.flag(), move |ch| {
        mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)?;
        mount(Some("tmpfs"), "/tmp", Some("tmpfs"), MsFlags::empty(), Some("size=64k"))?;
        std::fs::create_dir(dir).setup("creating the mount point")?;
        if matches!(refers, Refers::Mount | Refers::MountUndone) {
            mount(Some(fstype), dir, Some(fstype), MsFlags::empty(), None::<&str>)?;
        }
        if refers == Refers::MountUndone {
            umount2(dir, MntFlags::empty())?;
        }
        ch.ready()?;
        ch.wait()
    })?;
    let mnt = NsFd::open(peer.proc(), Kind::Mnt)?;
    // The control's sabotage: an fd to the subject, open until the body returns.
    let _subject = if refers == Refers::Fd { Some(NsFd::open(peer.proc(), kind)?) } else { None };
    obs.expect_full(&format!("the {kind} namespace while its process is in it"))?;
    finish(peer)?;
    let settle = alive_window(ctl)?;
    if matches!(refers, Refers::Mount | Refers::MountUndone) {
        obs.expect_stays_full(&format!("the {kind} namespace referred to by a {fstype} mount"), settle)?;
        drop(mnt);
        obs.wait_released(&format!("the {kind} namespace after its {fstype} mount went with its mount namespace"))?;
    } else {
        // Without the mount, the held mount namespace does not hold it.
        obs.wait_released(&format!("the {kind} namespace with no {fstype} mount"))?;
        drop(mnt);
    }
    Ok(())
}
