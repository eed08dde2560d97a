//! Kernel deviations found by the fuzz suite (see fuzz/README.md). The
//! model stays strict elsewhere; where a deviation is known for a release,
//! the model admits it there and a dedicated case keeps reporting it.

use std::time::Duration;

use harness::peer::Spawn;
use harness::{Case, CaseResult, Kind, Privilege, Requires, Setup};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// Binds attempted by the dedicated case.
const BINDS: usize = 200;

/// The dedicated cases.
pub fn cases() -> Vec<Case> {
    vec![Case::new(
        "fuzz.known.mnt_ns_bind_newer",
        &["N2", "F2"],
        "binding the /proc/[pid]/ns/mnt file of a mount namespace newer than the caller's is never refused (200 tries)",
        mnt_ns_bind_newer,
    )
    .requires(Requires::kinds(&[Kind::Mnt]).privilege(Privilege::Admin))
    .known_deviation(&harness::known::MNT_NS_LOOP_PER_CPU_IDS)
    .timeout(Duration::from_secs(30))]
}

fn mnt_ns_bind_newer() -> CaseResult {
    harness::sys::unshare(Kind::Mnt.flag())?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)?;
    mount(Some("tmpfs"), "/tmp", Some("tmpfs"), MsFlags::empty(), Some("size=64k"))?;
    let target = "/tmp/nsverify-bind";
    std::fs::write(target, "").setup("creating the bind mount target")?;
    let mut refused = 0;
    for _ in 0..BINDS {
        let mut peer = Spawn::clone(Kind::Mnt.flag()).spawn_idle()?;
        match mount(Some(&peer.proc().ns_path("mnt")), target, None::<&str>, MsFlags::MS_BIND, None::<&str>) {
            Ok(()) => umount2(target, MntFlags::MNT_DETACH)?,
            Err(nix::errno::Errno::EINVAL) => refused += 1,
            Err(e) => return Err(e.into()),
        }
        peer.go()?;
        peer.join()?;
    }
    harness::note("refused_binds", refused);
    harness::check!(refused == 0, "binds of a newer mount namespace's file refused with EINVAL: {refused} of {BINDS}");
    Ok(())
}
