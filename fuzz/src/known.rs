//! Kernel deviations found by the fuzz suite (see fuzz/README.md). The
//! model stays strict elsewhere; where a deviation is known for a release,
//! the model admits it there and a dedicated case keeps reporting it.

use std::time::Duration;

use harness::peer::Spawn;
use std::os::fd::AsFd;

use harness::host::Host;
use harness::ioctl::ioc;

use harness::{Case, CaseError, CaseResult, Errno, Kind, NsFd, Privilege, Requires, Setup};
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
    .timeout(Duration::from_secs(30)),
    Case::new(
        "fuzz.known.ns_mnt_request_number_only",
        &["A4"],
        "ioctl requests numbered like NS_MNT_GET_INFO/NEXT/PREV (10 to 12) but of another type, direction or size are ENOTTY on every namespace fd",
        ns_mnt_request_number_only,
    )
    .known_deviation(&harness::known::NS_MNT_IOCTL_NUMBER_ONLY),
    Case::new(
        "fuzz.known.pidfd_info_request_number_only",
        &["X3"],
        "ioctl requests numbered like PIDFD_GET_INFO (11) but of another type, direction or a size below struct pidfd_info are ENOTTY on a pidfd",
        pidfd_info_request_number_only,
    )
    .requires(Requires::none().kernel(5, 3))
    .known_deviation(&harness::known::PIDFD_INFO_REQUEST_NUMBER_ONLY)]
}

/// The malformed variants of PIDFD_GET_INFO (`_IOWR(0xFF, 11, struct
/// pidfd_info)`, 64 bytes or more): no direction, read only, write only, a
/// struct too small, another type.
const MALFORMED_PIDFD_INFO: [u64; 5] =
    [ioc(0, 0xff, 11, 0), ioc(2, 0xff, 11, 64), ioc(1, 0xff, 11, 64), ioc(3, 0xff, 11, 8), ioc(3, 0x01, 11, 64)];

/// ioctl(2): ENOTTY when the request does not apply to the fd; none of
/// these is a request of `<linux/pidfd.h>`, on any kernel (argument 0, so
/// a kernel that takes one for PIDFD_GET_INFO answers EINVAL, not EFAULT).
fn pidfd_info_request_number_only() -> CaseResult {
    let mut peer = Spawn::fork().spawn_idle()?;
    let pidfd = harness::pidfd::Pidfd::open(peer.pid())?;
    let recognised: Vec<String> = MALFORMED_PIDFD_INFO
        .iter()
        .filter_map(|&request| match harness::raw::ioctl(pidfd.as_fd(), request) {
            Err(Errno::ENOTTY) => None,
            Err(e) => Some(format!("{request:#x}: {e:?}")),
            Ok(r) => Some(format!("{request:#x}: success ({})", r.value())),
        })
        .collect();
    peer.go()?;
    peer.join()?;
    if !recognised.is_empty() {
        return Err(CaseError::deviation(
            &harness::known::PIDFD_INFO_REQUEST_NUMBER_ONLY,
            format!("expected ENOTTY, got {} of {}: {}", recognised.len(), MALFORMED_PIDFD_INFO.len(), recognised.join(", ")),
        ));
    }
    Ok(())
}

/// The malformed variants of NS_MNT_GET_* number `nr` (`_IOR(0xb7, nr,
/// struct mnt_ns_info)`, 16 bytes or more): no direction, write, read and
/// write, a read too small for the struct, another type.
fn malformed_ns_mnt(nr: u64) -> [u64; 5] {
    [ioc(0, 0xb7, nr, 0), ioc(1, 0xb7, nr, 16), ioc(3, 0xb7, nr, 16), ioc(2, 0xb7, nr, 8), ioc(0, 0x01, nr, 0)]
}

/// ioctl(2): ENOTTY when "the specified request does not apply to the kind
/// of object that the file descriptor fd references"; none of these is a
/// request of `<linux/nsfs.h>`, on any kernel. Found by
/// `fuzz.args.ioctl_ns_requests` on 6.12.
fn ns_mnt_request_number_only() -> CaseResult {
    let mut recognised = Vec::new();
    let host = Host::running();
    for kind in Kind::ALL.into_iter().filter(|k| host.has(*k)) {
        let fd = NsFd::current(kind)?;
        for request in (10..=12).flat_map(malformed_ns_mnt) {
            // NS_MNT_GET_NEXT/PREV return a new fd on success, closed
            // when the result drops (harness::raw::returns_fd).
            match harness::raw::ioctl(fd.as_fd(), request) {
                Err(Errno::ENOTTY) => {}
                Err(e) => recognised.push(format!("{kind} {request:#x}: {e:?}")),
                Ok(r) => recognised.push(format!("{kind} {request:#x}: success ({})", r.value())),
            }
        }
    }
    if !recognised.is_empty() {
        return Err(CaseError::deviation(
            &harness::known::NS_MNT_IOCTL_NUMBER_ONLY,
            format!("expected ENOTTY, got {} of {}: {}", recognised.len(), 15 * Kind::ALL.len(), recognised.join(", ")),
        ));
    }
    Ok(())
}

fn mnt_ns_bind_newer() -> CaseResult {
    harness::ns::unshare(Kind::Mnt)?;
    harness::mntns::private_scratch()?;
    let target = format!("{}/nsverify-bind", harness::mntns::SCRATCH_DIR);
    let target = target.as_str();
    std::fs::write(target, "").setup("creating the bind mount target")?;
    let mut refused = 0;
    for _ in 0..BINDS {
        let mut peer = Spawn::new_ns(Kind::Mnt).spawn_idle()?;
        match mount(Some(&peer.proc().ns_path(Kind::Mnt)), target, None::<&str>, MsFlags::MS_BIND, None::<&str>) {
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
