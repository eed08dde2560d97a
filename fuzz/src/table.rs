//! The table of documented outcomes that argument fuzzing checks against:
//! for each call, from its arguments and the running kernel, the errno
//! (or success) that the man pages and the kernel's own rules give.
//! Versioned where the kernel changed; every rule was checked by experiment
//! on 6.18 (see fuzz/README.md for the findings).

use harness::ioctl::{fields, ioc, IOC_READ, IOC_WRITE};
use harness::known::{CLONE3_NEWTIME_EINVAL, NS_MNT_IOCTL_NUMBER_ONLY, PIDFD_INFO_REQUEST_NUMBER_ONLY};
use harness::nsfd::NSIO;
use harness::pidfd::{PIDFD_NS_IOCTLS, PIDFS_IOCTL_MAGIC};
use harness::probe::KernelVersion;
use harness::{Errno, Kind};

/// `CLONE_*` bits of `<linux/sched.h>` that the tables name.
#[allow(missing_docs)]
pub mod clone {
    pub const CSIGNAL: u64 = 0xff;
    pub const VM: u64 = 0x100;
    pub const FS: u64 = 0x200;
    pub const FILES: u64 = 0x400;
    pub const SIGHAND: u64 = 0x800;
    pub const PIDFD: u64 = 0x1000;
    pub const PTRACE: u64 = 0x2000;
    pub const VFORK: u64 = 0x4000;
    pub const PARENT: u64 = 0x8000;
    pub const THREAD: u64 = 0x10000;
    pub const NEWNS: u64 = 0x20000;
    pub const SYSVSEM: u64 = 0x40000;
    pub const SETTLS: u64 = 0x80000;
    pub const PARENT_SETTID: u64 = 0x100000;
    pub const CHILD_CLEARTID: u64 = 0x200000;
    pub const DETACHED: u64 = 0x400000;
    pub const UNTRACED: u64 = 0x800000;
    pub const CHILD_SETTID: u64 = 0x1000000;
    pub const NEWCGROUP: u64 = 0x2000000;
    pub const NEWUTS: u64 = 0x4000000;
    pub const NEWIPC: u64 = 0x8000000;
    pub const NEWUSER: u64 = 0x10000000;
    pub const NEWPID: u64 = 0x20000000;
    pub const NEWNET: u64 = 0x40000000;
    pub const IO: u64 = 0x80000000;
    pub const NEWTIME: u64 = 0x80;
    pub const CLEAR_SIGHAND: u64 = 1 << 32;
    pub const INTO_CGROUP: u64 = 1 << 33;
}

/// A documented outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The call succeeds.
    Ok,
    /// The call fails with this errno.
    Err(Errno),
    /// The request is recognised: anything but ENOTTY. ioctl(2): "ENOTTY
    /// The specified request does not apply to the kind of object that the
    /// file descriptor fd references"; a recognised request's own outcome
    /// (a new fd, EPERM outside the caller's namespace scope, EINVAL on a
    /// kind it does not apply to, EFAULT for the null argument) depends on
    /// the fd's kind and scope and is checked exactly by the ioctl_ns and
    /// identity cases. Which outcomes happened is reported as a note
    /// (`ioctl_recognised_results`).
    NotEnotty,
    /// The documented errno, on a kernel where the known deviation of this
    /// id ([`harness::known`]) applies: any outcome is admitted (counted in
    /// the note `known_deviation_results`), and the deviation's dedicated
    /// case reports it.
    ErrOrKnownDeviation(Errno, &'static str),
}

impl Expect {
    /// Whether `got` (an errno or success) is this outcome.
    pub fn admits(self, got: Result<(), Errno>) -> bool {
        match self {
            Expect::Ok => got.is_ok(),
            Expect::Err(e) => got == Err(e),
            Expect::NotEnotty => got != Err(Errno::ENOTTY),
            Expect::ErrOrKnownDeviation(..) => true,
        }
    }
}

/// What the table needs to know of the running system.
#[derive(Debug, Clone, Copy)]
pub struct Host {
    /// Running kernel (its upstream release).
    pub kernel: KernelVersion,
    /// Kinds built into the kernel ([`harness::runner::Host`]: its config
    /// where readable, else its `/proc/self/ns` entries).
    pub kinds: [bool; 8],
    /// Whether clone3(2) takes CLONE_NEWTIME, as clone(2) documents: on
    /// every kernel but those where the known deviation
    /// [`CLONE3_NEWTIME_EINVAL`] applies (5.6 to 6.2 before the stable
    /// backports of a402f1e35313). A versioned expectation, decided by the
    /// release and never by calling clone3: a kernel inside that range that
    /// takes the flag, or one outside it that refuses it, fails.
    pub clone3_newtime: bool,
}

impl Host {
    /// The running system, from the harness's one probe of it.
    pub fn probe() -> Host {
        let h = harness::runner::Host::running();
        Host { kernel: h.kernel, kinds: h.kinds, clone3_newtime: !CLONE3_NEWTIME_EINVAL.applies.here() }
    }

    /// Whether the kernel is at least `major.minor`.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        self.kernel >= KernelVersion::new(major, minor)
    }

    /// The `CLONE_NEW*` flags this kernel knows (the kind exists in this
    /// release) and has compiled in.
    pub fn known_ns_flags(&self) -> u64 {
        Kind::ALL.into_iter().filter(|k| self.kernel >= k.info().since).map(Kind::flag).fold(0, |a, b| a | b)
    }

    fn compiled_out(&self, flags: u64) -> bool {
        Kind::ALL.into_iter().any(|k| flags & k.flag() != 0 && !self.kinds[k as usize])
    }
}

const NEW_NON_USER: u64 = clone::NEWNS | clone::NEWUTS | clone::NEWIPC | clone::NEWNET | clone::NEWPID | clone::NEWCGROUP | clone::NEWTIME;

/// unshare(2) by a single-threaded process that shares no fs, files or
/// signal handlers with another. `admin`: CAP_SYS_ADMIN in its user
/// namespace.
///
/// - unknown bits: EINVAL (check_unshare_flags). CLONE_NEWCGROUP is known
///   from 4.6, CLONE_NEWTIME from 5.6;
/// - a kind compiled out: EINVAL;
/// - CLONE_THREAD, CLONE_SIGHAND, CLONE_VM, CLONE_FS, CLONE_FILES and
///   CLONE_SYSVSEM are accepted from a single-threaded caller (unshare(2):
///   EINVAL only "if the caller is multithreaded" / shares them);
/// - without CAP_SYS_ADMIN, any non-user CLONE_NEW* without CLONE_NEWUSER:
///   EPERM (unshare(2)); with CLONE_NEWUSER the other namespaces are made
///   with the new user namespace's capabilities.
pub fn unshare(host: &Host, flags: u32, admin: bool) -> Expect {
    let flags = u64::from(flags);
    use clone::*;
    let known = THREAD
        | FS
        | NEWNS
        | SIGHAND
        | VM
        | FILES
        | SYSVSEM
        | NEWUTS
        | NEWIPC
        | NEWNET
        | NEWUSER
        | NEWPID
        | if host.at_least(4, 6) { NEWCGROUP } else { 0 }
        | if host.at_least(5, 6) { NEWTIME } else { 0 };
    if flags & !known != 0 || host.compiled_out(flags) {
        return Expect::Err(Errno::EINVAL);
    }
    if !admin && flags & NEWUSER == 0 && flags & NEW_NON_USER != 0 {
        return Expect::Err(Errno::EPERM);
    }
    Expect::Ok
}

/// The bits the clone3 fuzzer draws from: the namespace flags, flags whose
/// combinations are documented as invalid, and unknown bits. Left out are
/// bits that would make a successful child unsafe for the harness
/// (CLONE_VM and CLONE_SETTLS without a stack or TLS, CLONE_FILES sharing
/// the fd table the peer plumbing closes, CLONE_PARENT giving the child to
/// the runner, pointer-taking *TID bits, CLONE_INTO_CGROUP).
pub const CLONE3_FUZZ_BITS: &[u64] = &[
    clone::NEWNS,
    clone::NEWUTS,
    clone::NEWIPC,
    clone::NEWNET,
    clone::NEWPID,
    clone::NEWUSER,
    clone::NEWCGROUP,
    clone::NEWTIME,
    clone::THREAD,
    clone::SIGHAND,
    clone::FS,
    clone::SYSVSEM,
    clone::IO,
    clone::UNTRACED,
    clone::PIDFD,
    clone::VFORK,
    clone::CLEAR_SIGHAND,
    0x01,
    0x40,
    1 << 34,
    1 << 40,
];

/// clone3(2) with `flags`, exit_signal SIGCHLD and every pointer 0, by a
/// single-threaded process. `admin`: CAP_SYS_ADMIN in its user namespace.
///
/// - bits above 32 other than CLONE_CLEAR_SIGHAND (5.5) and
///   CLONE_INTO_CGROUP (5.7): EINVAL (clone3_args_valid);
/// - CSIGNAL bits in flags: EINVAL, but CLONE_NEWTIME (0x80) is accepted
///   from 6.3 (a402f1e35313, sent to stable: before, EINVAL);
/// - CLONE_SIGHAND with CLONE_CLEAR_SIGHAND: EINVAL;
/// - CLONE_THREAD with an exit signal: EINVAL (clone3_args_valid);
/// - clone(2): CLONE_NEWNS or CLONE_NEWUSER with CLONE_FS, CLONE_THREAD
///   without CLONE_SIGHAND, CLONE_SIGHAND without CLONE_VM, CLONE_NEWIPC
///   with CLONE_SYSVSEM: EINVAL;
/// - a kind unknown to this release or compiled out: EINVAL;
/// - non-user CLONE_NEW* without CAP_SYS_ADMIN and without CLONE_NEWUSER: EPERM;
/// - CLONE_PIDFD with pidfd pointer 0: the kernel cannot store the fd: EFAULT.
pub fn clone3(host: &Host, flags: u64, admin: bool) -> Expect {
    use clone::*;
    let einval = Expect::Err(Errno::EINVAL);
    let high_known = if host.at_least(5, 5) { CLEAR_SIGHAND } else { 0 } | if host.at_least(5, 7) { INTO_CGROUP } else { 0 };
    if flags & !(0xffff_ffff | high_known) != 0 {
        return einval;
    }
    let newtime_ok = host.clone3_newtime;
    let signal_bits = flags & CSIGNAL & if newtime_ok { !NEWTIME } else { CSIGNAL };
    if signal_bits != 0 {
        return einval;
    }
    if flags & (SIGHAND | CLEAR_SIGHAND) == SIGHAND | CLEAR_SIGHAND || flags & THREAD != 0 {
        return einval;
    }
    if flags & (NEWNS | FS) == NEWNS | FS || flags & (NEWUSER | FS) == NEWUSER | FS {
        return einval;
    }
    if flags & SIGHAND != 0 && flags & VM == 0 {
        return einval;
    }
    // clone(2): "Both CLONE_NEWIPC and CLONE_SYSVSEM were specified".
    if flags & (NEWIPC | SYSVSEM) == NEWIPC | SYSVSEM {
        return einval;
    }
    let ns = flags & (NEW_NON_USER | NEWUSER);
    if ns & !host.known_ns_flags() != 0 || host.compiled_out(ns) {
        return einval;
    }
    if !admin && flags & NEWUSER == 0 && flags & NEW_NON_USER != 0 {
        return Expect::Err(Errno::EPERM);
    }
    if flags & PIDFD != 0 {
        return Expect::Err(Errno::EFAULT);
    }
    Expect::Ok
}

/// What a setns(2) fd refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetnsTarget {
    /// A namespace of this kind that the caller may join (a new one it
    /// created, so it has CAP_SYS_ADMIN over it).
    Ns(Kind),
    /// A pidfd of a process in new namespaces of every kind but time.
    Pidfd,
    /// Neither (a pipe).
    Other,
}

/// setns(fd, nstype) (the libc wrapper takes an int).
///
/// - a namespace fd: nstype 0 or the fd's CLONE_NEW* type joins; any other
///   value: EINVAL (setns(2));
/// - a pidfd (5.8+): nstype must be a nonzero set of CLONE_NEW* flags this
///   kernel has, else EINVAL; before 5.8 a pidfd is not accepted: EINVAL.
///   The target is in new namespaces of every kind but time, so with
///   CLONE_NEWTIME the caller joins its own time namespace: EPERM unless it
///   has CAP_SYS_ADMIN over that namespace's owner (`time_admin`: the caller
///   is in the initial user namespace);
/// - any other fd: EINVAL.
pub fn setns(host: &Host, target: SetnsTarget, nstype: u32, time_admin: bool) -> Expect {
    let nstype = u64::from(nstype);
    let einval = Expect::Err(Errno::EINVAL);
    match target {
        SetnsTarget::Ns(kind) => {
            if nstype == 0 || nstype == kind.flag() {
                Expect::Ok
            } else {
                einval
            }
        }
        SetnsTarget::Pidfd => {
            let all =
                host.known_ns_flags() & !Kind::ALL.into_iter().filter(|k| !host.kinds[*k as usize]).map(Kind::flag).fold(0, |a, b| a | b);
            if !host.at_least(5, 8) || nstype == 0 || nstype & !all != 0 {
                einval
            } else if nstype & Kind::Time.flag() != 0 && !time_admin {
                Expect::Err(Errno::EPERM)
            } else {
                Expect::Ok
            }
        }
        SetnsTarget::Other => einval,
    }
}

/// Whether the caller is in the initial user namespace (its uid_map is the
/// identity over every id).
pub fn in_initial_user_ns() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| m.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
}

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
/// - PIDFD_GET_<kind>_NAMESPACE (6.11, `_IO(0xFF, 1..10)`): a new nsfs fd
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
        } else if host.kinds[ns.kind as usize] {
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

/// The CLONE_NEW* bits listns(2) takes in `ns_id_req.ns_type` (`NS_ALL`
/// of kernel/nstree.c: all eight types).
pub const LISTNS_TYPES: u32 =
    (clone::NEWNS | clone::NEWUTS | clone::NEWIPC | clone::NEWNET | clone::NEWPID | clone::NEWUSER | clone::NEWCGROUP | clone::NEWTIME)
        as u32;

/// listns(2) with raw arguments (6.19; ENOSYS before): the checks of
/// kernel/nstree.c in their order. `flags` nonzero: EINVAL; more than a
/// million ids: EOVERFLOW; the request unreadable (NULL, unmapped, shorter
/// than its `size`): EFAULT; `size` above a page: E2BIG, below
/// NS_ID_REQ_SIZE_VER0: EINVAL; bytes past the known struct not zero: E2BIG
/// (copy_struct_from_user()); `spare` nonzero: EINVAL; unknown `ns_type`
/// bits: EOPNOTSUPP. Then the listing (only from the start here, so no
/// cursor can be missing), written straight to the id buffer: EFAULT when
/// an id lands on a NULL or unmapped buffer (`lands`: at least one id is
/// listed and `nr_ns_ids` is not 0), else the count.
pub fn listns(host: &Host, req: &harness::listns::RawReq, flags: u32, nr_ns_ids: usize, lands_on_bad_buffer: bool) -> Expect {
    use harness::listns::{RawReq, NS_ID_REQ_SIZE_VER0};
    if !host.at_least(6, 19) {
        return Expect::Err(Errno::ENOSYS);
    }
    if flags != 0 {
        return Expect::Err(Errno::EINVAL);
    }
    if nr_ns_ids > 1_000_000 {
        return Expect::Err(Errno::EOVERFLOW);
    }
    let RawReq::Bytes(b) = req else { return Expect::Err(Errno::EFAULT) };
    let field = |at: usize| u32::from_ne_bytes(b[at..at + 4].try_into().expect("4 bytes"));
    if b.len() < 4 {
        return Expect::Err(Errno::EFAULT);
    }
    let size = field(0) as usize;
    if size > 4096 {
        return Expect::Err(Errno::E2BIG);
    }
    if size < NS_ID_REQ_SIZE_VER0 as usize {
        return Expect::Err(Errno::EINVAL);
    }
    if b.len() < size {
        return Expect::Err(Errno::EFAULT);
    }
    if b[NS_ID_REQ_SIZE_VER0 as usize..size].iter().any(|x| *x != 0) {
        return Expect::Err(Errno::E2BIG);
    }
    if field(4) != 0 {
        return Expect::Err(Errno::EINVAL);
    }
    if field(16) & !LISTNS_TYPES != 0 {
        return Expect::Err(Errno::EOPNOTSUPP);
    }
    if lands_on_bad_buffer {
        Expect::Err(Errno::EFAULT)
    } else {
        Expect::Ok
    }
}

/// Requests that return a new fd on success (closed after the call).
pub fn ioctl_returns_fd(request: u64) -> bool {
    let nr = request & 0xff;
    (request >> 8) & 0xff == 0xb7 && matches!(nr, 1 | 2 | 11 | 12)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(major: u32, minor: u32, patch: u32) -> Host {
        Host { kernel: KernelVersion::stable(major, minor, patch), kinds: [true; 8], clone3_newtime: true }
    }

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

    /// listns(2)'s argument checks in the kernel's order.
    #[test]
    fn listns_arguments() {
        use harness::listns::{NsIdReq, RawReq};
        let k = host(7, 2, 0);
        let good = NsIdReq::default().to_bytes();
        let with = |at: usize, v: u32| {
            let mut b = good.clone();
            b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
            RawReq::Bytes(b)
        };
        let longer = |tail: u8| {
            let mut b = good.clone();
            b[0..4].copy_from_slice(&40u32.to_ne_bytes());
            b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, tail]);
            RawReq::Bytes(b)
        };
        for (kernel, req, flags, nr, bad, expected) in [
            (host(6, 18, 44), RawReq::Bytes(good.clone()), 0, 4, false, Expect::Err(Errno::ENOSYS)),
            (k, RawReq::Bytes(good.clone()), 0, 4, false, Expect::Ok),
            (k, RawReq::Bytes(good.clone()), 1, 2_000_000, false, Expect::Err(Errno::EINVAL)),
            (k, RawReq::Null, 0, 2_000_000, false, Expect::Err(Errno::EOVERFLOW)),
            (k, RawReq::Unmapped, 0, 4, false, Expect::Err(Errno::EFAULT)),
            (k, RawReq::Bytes(vec![32, 0]), 0, 4, false, Expect::Err(Errno::EFAULT)),
            (k, with(0, 4097), 0, 4, false, Expect::Err(Errno::E2BIG)),
            (k, with(0, 31), 0, 4, false, Expect::Err(Errno::EINVAL)),
            (k, RawReq::Bytes(good[..24].to_vec()), 0, 4, false, Expect::Err(Errno::EFAULT)),
            (k, longer(0), 0, 4, false, Expect::Ok),
            (k, longer(1), 0, 4, false, Expect::Err(Errno::E2BIG)),
            (k, with(4, 1), 0, 4, false, Expect::Err(Errno::EINVAL)),
            (k, with(16, 1), 0, 4, false, Expect::Err(Errno::EOPNOTSUPP)),
            (k, with(16, 0x4000_0000), 0, 4, true, Expect::Err(Errno::EFAULT)),
            (k, with(20, 7), 0, 4, false, Expect::Ok),
        ] {
            assert_eq!(listns(&kernel, &req, flags, nr, bad), expected, "{req:?} flags {flags} nr {nr} on {}", kernel.kernel);
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
