//! N2, F2: an open `/proc/[pid]/ns` file or a bind mount of one keeps the
//! namespace alive after its processes exit (F8: closing or unmounting
//! releases it); and the sabotages of the nsfs handle observer.

use std::time::Duration;

use harness::mntns;
use harness::observe::{release_deadline, Control, HandleProber, LimitObserver, NsHandle};
use harness::{check, check_eq, note, CaseError, CaseResult, Kind, NsFd, NsFlags, NsId, Setup};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::{alive_window, finish, subject, SABOTAGE_RELEASE_DEADLINE};

/// What [`fd_keeps_alive`] holds once the subject's process is gone.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum FdRef {
    /// The fd, until it is closed after the check (the claim).
    Kept,
    /// Sabotage: the fd is closed before the check.
    ClosedEarly,
    /// Sabotage: a second fd that stays open when the first is closed.
    SecondKept,
}

/// `held` other than [`FdRef::Kept`] is a sabotage: the fd is closed
/// before the checks, or a second one outlives it.
pub(super) fn fd_keeps_alive(kind: Kind, held: FdRef) -> CaseResult {
    let mut prober = HandleProber::start()?;
    let ctl = Control::start(kind)?;
    let mut obs = LimitObserver::enter(kind, 1)?;
    if held == FdRef::SecondKept {
        obs = obs.with_deadline(SABOTAGE_RELEASE_DEADLINE);
    }
    let (peer, entry) = subject(kind, NsFlags::EMPTY)?;
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

/// `keep` false is the sabotage: the bind mount is removed before the check.
pub(super) fn bind_mount_keeps_alive(kind: Kind, keep: bool) -> CaseResult {
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
    harness::ns::unshare(Kind::Mnt)?;
    mntns::private_scratch()?;
    let target = "/tmp/nsverify-bind";
    std::fs::write(target, "").setup("creating the bind mount target")?;
    let (peer, entry) = subject(kind, NsFlags::EMPTY)?;
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

/// Sabotage of the nsfs handle observer: with `keep` the fd is kept and
/// the handle is expected gone; without, the namespace is released (as the
/// limit observer sees) and the handle is expected to reopen.
pub(super) fn handle_observer(kind: Kind, keep: bool) -> CaseResult {
    let mut prober = HandleProber::start()?.ok_or_else(|| CaseError::broken("nsfs handles cannot observe namespaces here"))?;
    let mut obs = LimitObserver::enter(kind, 1)?;
    let (peer, entry) = subject(kind, NsFlags::EMPTY)?;
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
