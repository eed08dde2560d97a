//! mount_namespaces(7): mount points belong to the mount namespace (T2.mnt).
//! A mount made inside a new namespace under a private mount is seen there
//! and by a setns(2) joiner only; under a shared mount it propagates to the
//! peers, as "Shared subtrees" describes.

use std::fs;

use harness::peer::{in_child, Spawn};
use harness::{check_eq, Case, CaseResult, Kind, NsFd, NsFlags, Privilege, Requires, Setup};
use nix::mount::{mount, MsFlags};

use crate::common::{in_new_ns, must_fail_with, private_mounts, scratch_tmpfs, unique, SCRATCH};

/// Propagation type of the mount under which the inside mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Propagation {
    /// MS_PRIVATE: no propagation.
    Private,
    /// MS_SHARED: mount events propagate to every peer.
    Shared,
}

impl Propagation {
    fn name(self) -> &'static str {
        match self {
            Propagation::Private => "private",
            Propagation::Shared => "shared",
        }
    }

    fn flag(self) -> MsFlags {
        match self {
            Propagation::Private => MsFlags::MS_PRIVATE,
            Propagation::Shared => MsFlags::MS_SHARED,
        }
    }
}

fn requires() -> Requires {
    Requires::kinds(&[Kind::Mnt]).privilege(Privilege::Admin).probe(scratch_dir_missing)
}

fn scratch_dir_missing() -> Option<String> {
    (!std::path::Path::new(SCRATCH).is_dir()).then(|| format!("no {SCRATCH} directory to mount scratch filesystems on"))
}

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "isolation.mnt.private",
            &["T2.mnt"],
            "a tmpfs mounted in a new mount namespace under a private mount is seen there and by a setns() joiner, \
             not outside nor in a sibling namespace",
            || mount_seen(Propagation::Private, Kind::Mnt.flag()),
        )
        .requires(requires()),
        Case::new(
            "isolation.mnt.shared",
            &["T2.mnt"],
            "a tmpfs mounted in a new mount namespace under a shared mount propagates to the outside and to a sibling \
             namespace copied from it (mount_namespaces(7), shared subtrees)",
            || mount_seen(Propagation::Shared, Kind::Mnt.flag()),
        )
        .requires(requires()),
    ]
}

/// The mnt cases run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    vec![Case::new(
        "sabotage.isolation.mnt.private",
        &["T2.mnt"],
        "the tmpfs is mounted without CLONE_NEWNS (inside a sandbox namespace): the outside must see it",
        || must_fail_with(mount_seen(Propagation::Private, NsFlags::EMPTY), "outside"),
    )
    .requires(requires())]
}

/// Whether the caller's mount namespace has a mount whose source is `source`
/// (/proc/self/mountinfo, field after the separator's type).
fn has_mount(source: &str) -> Result<bool, harness::CaseError> {
    let info = fs::read_to_string("/proc/self/mountinfo")?;
    Ok(info.lines().filter_map(|l| l.split(" - ").nth(1)).any(|tail| tail.split(' ').nth(1) == Some(source)))
}

/// `inner` is the flag of the mounting process's unshare: CLONE_NEWNS for
/// the claim, 0 when sabotaged. All of it happens in a sandbox mount
/// namespace whose mounts are private towards the case's own.
fn mount_seen(propagation: Propagation, inner: NsFlags) -> CaseResult {
    let marker = unique(&format!("mnt-{}", propagation.name()));
    in_new_ns(Kind::Mnt, NsFlags::EMPTY, || {
        private_mounts()?;
        scratch_tmpfs(&unique("scratch"))?;
        mount(None::<&str>, SCRATCH, None::<&str>, propagation.flag(), None::<&str>).setup("set the scratch mount's propagation")?;
        let point = format!("{SCRATCH}/inside");
        fs::create_dir(&point).setup("mkdir the mount point")?;
        // The sibling is copied before the mount: a peer of the scratch
        // mount when it is shared.
        let mut sibling = Spawn::unshare(Kind::Mnt.flag()).spawn(|ch| {
            ch.ready()?;
            ch.wait()?;
            ch.send(&has_mount(&marker)?)
        })?;
        sibling.wait_ready()?;
        let mut inside = Spawn::unshare(inner).spawn(|ch| {
            mount(Some(marker.as_str()), point.as_str(), Some("tmpfs"), MsFlags::empty(), Some("size=1m")).setup("mount tmpfs inside")?;
            ch.send(&has_mount(&marker)?)?;
            ch.wait()
        })?;
        let seen_inside: bool = inside.recv()?;
        let joined = in_child(|| {
            NsFd::open(inside.proc(), Kind::Mnt)?.setns(Kind::Mnt.flag())?;
            has_mount(&marker)
        })?;
        let outside = has_mount(&marker)?;
        sibling.go()?;
        let in_sibling: bool = sibling.recv()?;
        sibling.join()?;
        inside.go()?;
        inside.join()?;
        let propagates = propagation == Propagation::Shared;
        check_eq!(seen_inside, true, "tmpfs {marker} in the mount table of the namespace that mounted it");
        check_eq!(joined, true, "tmpfs {marker} seen by a process that joined with setns(CLONE_NEWNS)");
        check_eq!(outside, propagates, "tmpfs {marker} mounted under a {} mount, seen outside", propagation.name());
        check_eq!(in_sibling, propagates, "tmpfs {marker} mounted under a {} mount, seen in a sibling namespace", propagation.name());
        Ok(())
    })?;
    check_eq!(has_mount(&marker)?, false, "tmpfs {marker} in the case's own mount namespace");
    Ok(())
}
