//! The outcome table of the calls that create or join namespaces:
//! unshare(2), clone3(2) and setns(2), by flags, privilege and release.

use harness::flags::{clone, NsFlags};
use harness::host::Host;
use harness::{Errno, Kind};

use super::Expect;

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
    if flags & !known != 0 || host.lacks_any(NsFlags::from_bits_retain(flags)) {
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
    if ns & !host.known_ns_flags().bits() != 0 || host.lacks_any(NsFlags::from_bits_retain(ns)) {
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
            if nstype == 0 || nstype == kind.flag().bits() {
                Expect::Ok
            } else {
                einval
            }
        }
        SetnsTarget::Pidfd => {
            let all = (host.known_ns_flags() - Kind::ALL.into_iter().filter(|k| !host.has(*k)).collect::<NsFlags>()).bits();
            if !host.at_least(5, 8) || nstype == 0 || nstype & !all != 0 {
                einval
            } else if nstype & NsFlags::TIME.bits() != 0 && !time_admin {
                Expect::Err(Errno::EPERM)
            } else {
                Expect::Ok
            }
        }
        SetnsTarget::Other => einval,
    }
}
