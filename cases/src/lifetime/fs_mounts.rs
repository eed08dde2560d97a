//! F6, F7: an mqueue mount keeps its ipc namespace alive, a proc mount its
//! pid namespace, while the mount namespace holding them lives.

use harness::mntns;
use harness::observe::{Control, LimitObserver};
use harness::{CaseResult, Kind, NsFd, Setup};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::{alive_window, finish, subject_with, SABOTAGE_RELEASE_DEADLINE};

/// What refers to the subject namespace of [`pseudo_fs_mount_keeps`] after
/// its last process exits, its mount namespace held by an fd.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Refers {
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

/// F6 (ipc, mqueue) and F7 (pid, proc): a peer in new `kind` and mount
/// namespaces mounts the filesystem that refers to `kind` (unless `refers`
/// is [`Refers::Nothing`], the control), then exits; its mount namespace
/// is held by an fd. The other two [`Refers`] are the sabotages.
pub(super) fn pseudo_fs_mount_keeps(kind: Kind, refers: Refers) -> CaseResult {
    let ctl = Control::start(kind)?;
    let mut obs = LimitObserver::enter(kind, 1)?;
    if refers == Refers::Fd {
        obs = obs.with_deadline(SABOTAGE_RELEASE_DEADLINE);
    }
    let (fstype, dir) = if kind == Kind::Ipc { ("mqueue", "/tmp/mq") } else { ("proc", "/tmp/proc") };
    let (peer, _) = subject_with(kind, Kind::Mnt.flag(), move |ch| {
        mntns::private_scratch()?;
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
