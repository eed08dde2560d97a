//! The outcome table of the ioctls on namespace fds (ioctl_ns(2),
//! `<linux/nsfs.h>`) and on pidfds (fs/pidfs.c), by request and release,
//! with the known deviations that dispatch on the request number alone.

use harness::ioctl::{fields, ioc, IOC_READ, IOC_WRITE};
use harness::known::{NS_MNT_IOCTL_NUMBER_ONLY, PIDFD_INFO_REQUEST_NUMBER_ONLY};
use harness::nsfd::NSIO;
use harness::pidfd::{PIDFD_NS_IOCTLS, PIDFS_IOCTL_MAGIC};
use harness::Errno;

use harness::host::Host;

use super::Expect;

/// `_IOC(dir, NSIO, nr, size)`: a request of ioctl_ns(2)'s type.
pub const fn nsio(dir: u64, nr: u64, size: u64) -> u64 {
    ioc(dir, NSIO, nr, size)
}

/// The ioctl_ns(2) requests by kernel release (`<linux/nsfs.h>`): exact
/// request values, and the extensible ones (NS_MNT_GET_*: `_IOR` of
/// `struct mnt_ns_info` whose size may grow, any size from 16 bytes).
pub fn ioctl_recognised(host: &Host, request: u64) -> bool {
    let exact: &[(u64, (u32, u32))] = &[
        (nsio(0, 1, 0), (4, 9)),          // NS_GET_USERNS
        (nsio(0, 2, 0), (4, 9)),          // NS_GET_PARENT
        (nsio(0, 3, 0), (4, 11)),         // NS_GET_NSTYPE
        (nsio(0, 4, 0), (4, 11)),         // NS_GET_OWNER_UID
        (nsio(IOC_READ, 5, 8), (6, 11)),  // NS_GET_MNTNS_ID
        (nsio(IOC_READ, 6, 4), (6, 11)),  // NS_GET_PID_FROM_PIDNS
        (nsio(IOC_READ, 7, 4), (6, 11)),  // NS_GET_TGID_FROM_PIDNS
        (nsio(IOC_READ, 8, 4), (6, 11)),  // NS_GET_PID_IN_PIDNS
        (nsio(IOC_READ, 9, 4), (6, 11)),  // NS_GET_TGID_IN_PIDNS
        (nsio(IOC_READ, 13, 8), (6, 18)), // NS_GET_ID
    ];
    if exact.iter().any(|(r, (a, b))| *r == request && host.at_least(*a, *b)) {
        return true;
    }
    // NS_MNT_GET_INFO, NS_MNT_GET_NEXT, NS_MNT_GET_PREV (6.12): `_IOR` of an
    // extensible struct, any size from MNT_NS_INFO_SIZE_VER0.
    let f = fields(request);
    ns_mnt_number(request) && f.ty == NSIO && f.dir == IOC_READ && f.size >= 16 && host.at_least(6, 12)
}

/// Whether `request` carries the number of an NS_MNT_GET_* request (10 to
/// 12) in its low byte, whatever its type, direction and size.
fn ns_mnt_number(request: u64) -> bool {
    let f = fields(request);
    f.fits && (10..=12).contains(&f.nr)
}

/// ioctl(nsfs fd, request, 0): ENOTTY unless the request is one of
/// ioctl_ns(2)'s for this release. A malformed request numbered like
/// NS_MNT_GET_* is ENOTTY on every kernel; where the known deviation
/// [`NS_MNT_IOCTL_NUMBER_ONLY`] applies (6.12 to 6.17 dispatch on the
/// number alone) any answer is admitted and counted, and the dedicated case
/// `fuzz.known.ns_mnt_request_number_only` reports it.
pub fn ioctl_ns(host: &Host, request: u64) -> Expect {
    if ioctl_recognised(host, request) {
        Expect::NotEnotty
    } else if ns_mnt_number(request) && NS_MNT_IOCTL_NUMBER_ONLY.applies.on(host.kernel) {
        Expect::ErrOrKnownDeviation(Errno::ENOTTY, NS_MNT_IOCTL_NUMBER_ONLY.id)
    } else {
        Expect::Err(Errno::ENOTTY)
    }
}

/// ioctl(pidfd of a live process, request, arg), fs/pidfs.c pidfd_ioctl():
///
/// - before 6.11 a pidfd takes no ioctl (anonymous inode before 6.9, no
///   `unlocked_ioctl` in 6.9 and 6.10): ENOTTY;
/// - `PIDFD_GET_<kind>_NAMESPACE` (6.11, `_IO(0xFF, 1..10)`): a new nsfs fd
///   with argument 0, EINVAL with any other, EOPNOTSUPP for a kind compiled
///   out (the X3 cases check the fds' identity);
/// - PIDFD_GET_INFO (6.13, `_IOWR(0xFF, 11, struct pidfd_info)`, 64 bytes or
///   more, extensible): recognised (EINVAL for the NULL argument the fuzzer
///   passes);
/// - anything else (the fuzzer passes argument 0): ENOTTY; other requests
///   numbered 11 too, but where the known deviation
///   [`PIDFD_INFO_REQUEST_NUMBER_ONLY`] applies (6.13 to 6.17) any answer is
///   admitted and counted, and `fuzz.known.pidfd_info_request_number_only`
///   reports it.
pub fn pidfd_ioctl(host: &Host, request: u64, arg: u64) -> Expect {
    if !host.at_least(6, 11) {
        return Expect::Err(Errno::ENOTTY);
    }
    if let Some(ns) = PIDFD_NS_IOCTLS.iter().find(|r| r.request == request) {
        return if arg != 0 {
            Expect::Err(Errno::EINVAL)
        } else if host.has(ns.kind) {
            Expect::Ok
        } else {
            Expect::Err(Errno::EOPNOTSUPP)
        };
    }
    let f = fields(request);
    let info_number = f.fits && f.nr == 11;
    if info_number && f.ty == PIDFS_IOCTL_MAGIC && f.dir == IOC_READ | IOC_WRITE && f.size >= 64 && host.at_least(6, 13) {
        Expect::NotEnotty
    } else if info_number && PIDFD_INFO_REQUEST_NUMBER_ONLY.applies.on(host.kernel) {
        Expect::ErrOrKnownDeviation(Errno::ENOTTY, PIDFD_INFO_REQUEST_NUMBER_ONLY.id)
    } else {
        Expect::Err(Errno::ENOTTY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::test_host as host;
    use harness::Kind;

    /// NS_MNT_GET_INFO as `<linux/nsfs.h>` defines it, and malformed
    /// variants of its number: ENOTTY everywhere, admitted only where the
    /// known deviation applies (6.12 to 6.17).
    #[test]
    fn ns_mnt_requests_by_release() {
        let info = nsio(IOC_READ, 10, 16);
        let deviant = Expect::ErrOrKnownDeviation(Errno::ENOTTY, NS_MNT_IOCTL_NUMBER_ONLY.id);
        for (kernel, request, expected) in [
            (host(6, 11, 0), info, Expect::Err(Errno::ENOTTY)),
            (host(6, 12, 117), info, Expect::NotEnotty),
            (host(6, 12, 117), nsio(IOC_READ, 10, 24), Expect::NotEnotty),
            (host(6, 18, 44), info, Expect::NotEnotty),
            (host(6, 11, 0), nsio(0, 10, 0), Expect::Err(Errno::ENOTTY)),
            (host(6, 12, 117), nsio(0, 10, 0), deviant),
            (host(6, 12, 117), 0x10a, deviant),
            (host(6, 17, 9), nsio(IOC_READ, 12, 8), deviant),
            (host(6, 18, 0), nsio(0, 10, 0), Expect::Err(Errno::ENOTTY)),
            (host(6, 18, 44), 0x10a, Expect::Err(Errno::ENOTTY)),
            (host(7, 2, 0), nsio(3, 11, 16), Expect::Err(Errno::ENOTTY)),
            (host(6, 12, 117), nsio(0, 13, 0), Expect::Err(Errno::ENOTTY)),
        ] {
            assert_eq!(ioctl_ns(&kernel, request), expected, "{request:#x} on {}", kernel.kernel);
        }
    }

    /// The pidfd requests by release, with the argument the fuzzer passes.
    #[test]
    fn pidfd_requests_by_release() {
        let uts = 0xff0a;
        let info = ioc(IOC_READ | IOC_WRITE, 0xff, 11, 64);
        let short = ioc(IOC_READ | IOC_WRITE, 0xff, 11, 8);
        let deviant = Expect::ErrOrKnownDeviation(Errno::ENOTTY, PIDFD_INFO_REQUEST_NUMBER_ONLY.id);
        for (kernel, request, arg, expected) in [
            (host(6, 10, 0), uts, 0, Expect::Err(Errno::ENOTTY)),
            (host(6, 11, 0), uts, 0, Expect::Ok),
            (host(6, 12, 117), uts, 1, Expect::Err(Errno::EINVAL)),
            (host(6, 12, 117), info, 0, Expect::Err(Errno::ENOTTY)),
            (host(6, 12, 117), 0xff0b, 0, Expect::Err(Errno::ENOTTY)),
            (host(6, 13, 0), info, 0, Expect::NotEnotty),
            (host(6, 13, 0), short, 0, deviant),
            (host(6, 17, 2), 0x010b, 0, deviant),
            (host(6, 18, 44), info, 0, Expect::NotEnotty),
            (host(6, 18, 44), short, 0, Expect::Err(Errno::ENOTTY)),
            (host(6, 18, 44), 0xff0c, 0, Expect::Err(Errno::ENOTTY)),
            (host(7, 2, 0), 0xff01, 0, Expect::Ok),
        ] {
            assert_eq!(pidfd_ioctl(&kernel, request, arg), expected, "{request:#x} {arg} on {}", kernel.kernel);
        }
        let mut no_cgroup = host(6, 18, 44);
        no_cgroup.kinds[Kind::Cgroup as usize] = false;
        assert_eq!(pidfd_ioctl(&no_cgroup, 0xff01, 0), Expect::Err(Errno::EOPNOTSUPP));
    }
}
