//! Argument fuzzing: random unshare(2) and clone3(2) flag sets, setns(2)
//! nstype values and ioctl_ns(2) request numbers, each result checked
//! against [`crate::table`]. Every call that could change the caller runs
//! in a peer (a contained child), so nothing is left behind.

use std::os::fd::AsFd;

use harness::flags::{clone, NsFlags};
use harness::host::Host;
use harness::ioctl::ioc;
use harness::peer::{call, in_child, Peer, Spawn};
use harness::pidfd::{Pidfd, PIDFS_IOCTL_MAGIC};
use harness::{Case, CaseError, Errno, Kind, NsEntry, NsFd, Privilege, Requires};
use proptest::prelude::*;

use crate::run::{run_property, verdict, Failure, Property};
use crate::table::{self, Expect, SetnsTarget};

/// Deadline of an argument fuzzing case in its default mode; raised with
/// the input count (about 5 ms per call, tenfold margin).
fn timeout(default_cases: u32) -> std::time::Duration {
    let n = crate::run::case_count(default_cases);
    std::time::Duration::from_millis(10_000 + 50 * u64::from(n))
}

/// Every argument fuzzing case.
pub fn cases() -> Vec<Case> {
    let admin = || Requires::none().privilege(Privilege::Admin);
    vec![
        Case::new(
            "fuzz.args.unshare_flags",
            &["A3", "P1"],
            "unshare(2) with random flag sets: each result is the table's (unknown bits EINVAL, single-threaded CLONE_THREAD/VM/SIGHAND accepted)",
            || unshare_flags(true),
        )
        .requires(admin())
        .timeout(timeout(UNSHARE_CASES)),
        Case::new(
            "fuzz.args.unshare_flags_without_cap",
            &["A3", "P1", "P2"],
            "unshare(2) with random flag sets after dropping CAP_SYS_ADMIN: non-user namespaces without CLONE_NEWUSER are EPERM",
            || unshare_flags(false),
        )
        .requires(admin().user_namespaces())
        .timeout(timeout(UNSHARE_CASES)),
        Case::new(
            "fuzz.args.clone3_flags",
            &["A1", "P1"],
            "clone3(2) with random sets of namespace and documented-invalid flags: each result is the table's",
            clone3_flags,
        )
        .requires(admin().kernel(5, 3))
        .timeout(timeout(CLONE_CASES)),
        Case::new(
            "fuzz.args.setns_nstype",
            &["A2"],
            "setns(2) with random nstype values on namespace fds of every kind, a pidfd and a pipe: each result is the table's",
            setns_nstype,
        )
        .requires(admin().kernel(5, 3))
        .timeout(timeout(SETNS_CASES)),
        Case::new(
            "fuzz.args.ioctl_ns_requests",
            &["A4"],
            "ioctl(2) with random request numbers on namespace fds: ENOTTY unless ioctl_ns(2) lists the request for this release",
            ioctl_requests,
        )
        .requires(Requires::none().kernel(4, 11))
        .timeout(timeout(IOCTL_CASES)),
        Case::new(
            "fuzz.args.pidfd_ioctl_requests",
            &["X3"],
            "ioctl(2) with random requests on a pidfd: PIDFD_GET_<kind>_NAMESPACE gives a namespace fd (argument 0) or EINVAL (any other), PIDFD_GET_INFO is recognised, anything else ENOTTY",
            pidfd_requests,
        )
        .requires(Requires::none().kernel(5, 3))
        .timeout(timeout(PIDFD_CASES)),
        Case::new(
            "fuzz.args.listns_requests",
            &["X5"],
            "listns(2) with random requests (size, spare, types, owner), id counts, flags and NULL or unmapped buffers: each errno is the table's, each listing within nr_ns_ids, increasing and written exactly",
            listns_requests,
        )
        .timeout(timeout(LISTNS_CASES)),
    ]
}

const UNSHARE_CASES: u32 = 160;
const CLONE_CASES: u32 = 160;
const SETNS_CASES: u32 = 160;
const IOCTL_CASES: u32 = 1000;
const PIDFD_CASES: u32 = 400;
const LISTNS_CASES: u32 = 400;

/// A flag word: a random subset of `bits` (each with probability about
/// 1/4), sometimes with a fully random word or'ed in.
fn flag_word(bits: &'static [u64], random_mask: u64) -> impl Strategy<Value = u64> {
    (proptest::collection::vec(proptest::bool::weighted(0.25), bits.len()), prop_oneof![4 => Just(0u64), 1 => any::<u64>()]).prop_map(
        move |(picks, noise)| {
            let chosen = bits.iter().zip(picks).filter(|(_, p)| *p).fold(0, |acc, (b, _)| acc | b);
            chosen | (noise & random_mask)
        },
    )
}

const UNSHARE_BITS: &[u64] = &[
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
    clone::VM,
    clone::FS,
    clone::FILES,
    clone::SYSVSEM,
    clone::PIDFD,
    clone::VFORK,
    clone::PARENT,
    clone::SETTLS,
    clone::IO,
    0x01,
    0x40,
];

fn describe(flags: u64) -> String {
    format!("{flags:#x} ({})", NsFlags::from_bits_retain(flags))
}

/// Outcomes counted by key, reported as one note (`key xN, ...`) so that a
/// change between kernels shows.
#[derive(Default)]
struct Counts(std::cell::RefCell<std::collections::BTreeMap<String, u32>>);

impl Counts {
    fn add(&self, key: String) {
        *self.0.borrow_mut().entry(key).or_default() += 1;
    }

    /// Counts `got` under `call` when only a known deviation admitted it
    /// ([`Expect::ErrOrKnownDeviation`] and not the documented errno).
    fn admitted(&self, expect: Expect, got: Result<(), Errno>, call: std::fmt::Arguments<'_>) {
        if let Expect::ErrOrKnownDeviation(documented, id) = expect {
            if got != Err(documented) {
                self.add(format!("{id}: {call} {}", got_text(got)));
            }
        }
    }

    fn text(&self) -> String {
        self.0.borrow().iter().map(|(k, n)| format!("{k} x{n}")).collect::<Vec<_>>().join(", ")
    }

    fn note(&self, name: &str) {
        harness::note(name, self.text());
    }

    /// The note `known_deviation_results`, where anything was admitted.
    fn note_deviations(&self) {
        if !self.0.borrow().is_empty() {
            self.note("known_deviation_results");
        }
    }
}

fn got_text(got: Result<(), Errno>) -> String {
    match got {
        Ok(()) => "success".into(),
        Err(e) => format!("{e:?}"),
    }
}

fn check(call: String, expect: Expect, got: Result<(), Errno>) -> Result<u64, Failure> {
    if expect.admits(got) {
        Ok(1)
    } else {
        Err(Failure::diverged(format!("{call}: table says {expect:?}, kernel gave {}", got_text(got))))
    }
}

/// The errno of a peer call that failed because of the call under test
/// (not plumbing).
fn errno_of<T>(r: Result<T, CaseError>) -> Result<Result<(), Errno>, Failure> {
    match r {
        Ok(_) => Ok(Ok(())),
        Err(e) if e.outcome == harness::Outcome::Fail && e.errno().is_some() => Ok(Err(e.errno().unwrap_or(Errno::UnknownErrno))),
        Err(e) => Err(e.into()),
    }
}

fn unshare_flags(admin: bool) -> harness::CaseResult {
    let host = Host::running();
    let id = if admin { "fuzz.args.unshare_flags" } else { "fuzz.args.unshare_flags_without_cap" };
    let p = Property { id, default_cases: UNSHARE_CASES, persist: true, max_shrink_iters: 200 };
    let stats = run_property(&p, flag_word(UNSHARE_BITS, 0xffff_ffff).prop_map(|f| f as u32), |&flags| {
        let got = errno_of(in_child(|| {
            if !admin {
                harness::caps::drop_capability(harness::probe::Cap::SYS_ADMIN)?;
            }
            harness::raw::unshare(u64::from(flags))?;
            Ok(())
        }))?;
        check(format!("unshare({})", describe(u64::from(flags))), table::unshare(host, flags, admin), got)
    });
    verdict(&p, &stats)
}

fn clone3_flags() -> harness::CaseResult {
    let host = Host::running();
    let p = Property { id: "fuzz.args.clone3_flags", default_cases: CLONE_CASES, persist: true, max_shrink_iters: 200 };
    let stats = run_property(&p, flag_word(table::CLONE3_FUZZ_BITS, 0), |&flags| {
        // clone3(2) by name: its flag word is what is fuzzed here.
        let got = errno_of(call(&Spawn::clone3(NsFlags::from_bits_retain(flags)), || Ok(())))?;
        check(format!("clone3({})", describe(flags)), table::clone3(host, flags, true), got)
    });
    verdict(&p, &stats)
}

/// A peer in new namespaces, waiting until dropped.
fn waiting(spawn: Spawn) -> Result<Peer, CaseError> {
    spawn.spawn_idle()
}

fn setns_nstype() -> harness::CaseResult {
    let host = Host::running();
    // Targets: a new namespace of each available kind (held by a peer),
    // a pidfd of a peer in new namespaces, a pipe.
    let mut peers = Vec::new();
    let mut targets: Vec<(SetnsTarget, Box<dyn AsFd>)> = Vec::new();
    for kind in Kind::ALL.into_iter().filter(|k| host.has(*k)) {
        let peer = waiting(Spawn::new_ns(kind))?;
        let fd = NsFd::open_entry(peer.proc(), NsEntry::of_new_ns(kind))?;
        targets.push((SetnsTarget::Ns(kind), Box::new(fd)));
        peers.push(peer);
    }
    let all_but_time: NsFlags = Kind::ALL.into_iter().filter(|k| *k != Kind::Time && host.has(*k)).collect();
    let peer = waiting(Spawn::clone(all_but_time | Kind::User).map_root())?;
    let pidfd = Pidfd::open(peer.pid())?;
    targets.push((SetnsTarget::Pidfd, Box::new(pidfd)));
    peers.push(peer);
    let (r, _w) = nix::unistd::pipe().map_err(|e| CaseError::broken(format!("pipe: {e}")))?;
    targets.push((SetnsTarget::Other, Box::new(r)));

    let n = targets.len();
    let flags: Vec<u64> = Kind::ALL.into_iter().map(|k| k.flag().bits()).collect();
    let nstype = prop_oneof![
        2 => Just(0u32),
        3 => proptest::sample::select(flags.clone()).prop_map(|f| f as u32),
        3 => proptest::collection::vec(proptest::sample::select(flags), 1..4).prop_map(|v| v.iter().fold(0, |a, b| a | b) as u32),
        2 => any::<u32>(),
    ];
    let time_admin = table::in_initial_user_ns();
    let p = Property { id: "fuzz.args.setns_nstype", default_cases: SETNS_CASES, persist: true, max_shrink_iters: 200 };
    let stats = run_property(&p, (0..n, nstype), |&(t, nstype)| {
        let (target, fd) = &targets[t];
        let got = errno_of(in_child(|| {
            harness::raw::setns(fd.as_fd(), u64::from(nstype))?;
            Ok(())
        }))?;
        check(format!("setns({target:?}, {})", describe(u64::from(nstype))), table::setns(host, *target, nstype, time_admin), got)
    });
    drop(peers);
    verdict(&p, &stats)
}

/// Types of ioctl requests that the VFS handles for any file before the
/// filesystem (FIBMAP/FIGETBSZ, FS_IOC_GETFSUUID, FIO*, FIFREEZE and
/// FS_IOC_FSGETXATTR, FS_IOC_*FLAGS and FIEMAP, FICLONE): left out of the
/// random types, whose answer is not nsfs's.
const VFS_TYPES: &[u64] = &[0x00, 0x15, 0x54, 0x58, 0x66, 0x94];

fn ioctl_requests() -> harness::CaseResult {
    let host = Host::running();
    let fds: Vec<(Kind, NsFd)> = Kind::ALL.into_iter().filter_map(|k| NsFd::current(k).ok().map(|fd| (k, fd))).collect();
    let n = fds.len();
    let request = prop_oneof![
        // The NSIO family: every direction, small sizes, the numbers in use and around.
        6 => (0u64..4, prop_oneof![Just(0u64), Just(4), Just(8), Just(16), Just(24), 0u64..0x4000], 0u64..32)
            .prop_map(|(dir, size, nr)| table::nsio(dir, nr, size)),
        1 => (0u64..4, 0u64..0x4000, 0u64..256).prop_map(|(dir, size, nr)| table::nsio(dir, nr, size)),
        1 => (0u64..4, 0u64..0x4000, 1u64..256, 0u64..256)
            .prop_filter("a VFS-handled type", |(_, _, ty, _)| !VFS_TYPES.contains(ty))
            .prop_map(|(dir, size, ty, nr)| ioc(dir, ty, nr, size)),
    ];
    let p = Property { id: "fuzz.args.ioctl_ns_requests", default_cases: IOCTL_CASES, persist: true, max_shrink_iters: 200 };
    // Which outcome each recognised request had (Expect::NotEnotty admits
    // any but ENOTTY): reported, so a change between kernels shows.
    let recognised = Counts::default();
    let deviant = Counts::default();
    let stats = run_property(&p, (0..n, request), |&(i, request)| {
        let (kind, fd) = &fds[i];
        // A new fd that the request returns is closed here.
        let got = harness::raw::ioctl(fd.as_fd(), request).map(drop);
        let expect = table::ioctl_ns(host, request);
        if expect == Expect::NotEnotty {
            recognised.add(format!("{kind} {request:#x} {}", got_text(got)));
        }
        deviant.admitted(expect, got, format_args!("{kind} {request:#x}"));
        check(format!("ioctl({kind} fd, {request:#x})"), expect, got)
    });
    recognised.note("ioctl_recognised_results");
    deviant.note_deviations();
    verdict(&p, &stats)
}

/// `FS_IOC_GETVERSION`'s type ('v'), which pidfs answers for the file
/// itself: left out of the random types with the VFS ones.
const FS_IOC_VERSION_TYPE: u64 = 0x76;

fn pidfd_requests() -> harness::CaseResult {
    use harness::pidfd::PIDFD_NS_IOCTLS;
    let host = Host::running();
    let mut peer = Spawn::fork().spawn_idle()?;
    let pidfd = Pidfd::open(peer.pid())?;
    let request = prop_oneof![
        // The namespace requests, mostly with the documented argument 0.
        4 => (0..PIDFD_NS_IOCTLS.len(), prop_oneof![3 => Just(0u64), 1 => any::<u64>()])
            .prop_map(|(i, arg)| (PIDFD_NS_IOCTLS[i].request, arg)),
        // The pidfs family (0xFF): every direction, small and struct sizes, the numbers in use and around.
        4 => (0u64..4, prop_oneof![Just(0u64), Just(8), Just(64), Just(72), 0u64..0x4000], 0u64..24)
            .prop_map(|(dir, size, nr)| (ioc(dir, PIDFS_IOCTL_MAGIC, nr, size), 0)),
        1 => (0u64..4, 0u64..0x4000, 1u64..255, 0u64..256)
            .prop_filter("a VFS-handled type", |(_, _, ty, _)| !VFS_TYPES.contains(ty) && *ty != FS_IOC_VERSION_TYPE)
            .prop_map(|(dir, size, ty, nr)| (ioc(dir, ty, nr, size), 0)),
    ];
    let p = Property { id: "fuzz.args.pidfd_ioctl_requests", default_cases: PIDFD_CASES, persist: true, max_shrink_iters: 200 };
    let deviant = Counts::default();
    let stats = run_property(&p, request, |&(request, arg)| {
        let got = match PIDFD_NS_IOCTLS.iter().find(|r| r.request == request) {
            // The typed call: it closes the namespace fd it gets.
            Some(ns) => pidfd.namespace_with_arg(*ns, arg as libc::c_ulong).map(drop).map_err(|e| e.errno),
            None => harness::raw::ioctl(pidfd.as_fd(), request).map(drop),
        };
        let expect = table::pidfd_ioctl(host, request, arg);
        deviant.admitted(expect, got, format_args!("{request:#x}"));
        check(format!("ioctl(pidfd, {request:#x}, {arg:#x})"), expect, got)
    });
    deviant.note_deviations();
    peer.go()?;
    peer.join()?;
    verdict(&p, &stats)
}

/// One generated listns(2) call.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct ListnsCall {
    req: harness::listns::RawReq,
    ids: harness::listns::RawIds,
    nr_ns_ids: usize,
    flags: u32,
    /// `ns_type` of the request (for whether anything is listed).
    ns_type: u32,
}

/// How the request bytes relate to their `size` field.
#[derive(Debug, Clone, Copy)]
enum ReqShape {
    /// `size` bytes (up to a page and a bit), the part past the struct zero.
    Whole,
    /// Cut short at this many bytes (before `size`): the kernel's read faults.
    Short(usize),
    /// Whole, with one nonzero byte past the struct at this offset.
    NonzeroTail(usize),
}

fn listns_call() -> impl Strategy<Value = ListnsCall> {
    use harness::listns::{NsIdReq, RawIds, RawReq, LISTNS_CURRENT_USER};
    let bits: Vec<u32> = Kind::ALL.iter().map(|k| k.flag().bits() as u32).collect();
    let ns_type = prop_oneof![
        3 => Just(0u32),
        3 => proptest::sample::select(bits.clone()),
        2 => proptest::collection::vec(proptest::sample::select(bits), 1..4).prop_map(|v| v.iter().fold(0, |a, b| a | b)),
        1 => any::<u32>(),
    ];
    let size = prop_oneof![6 => Just(32u32), 1 => 0u32..32, 1 => 33u32..80, 1 => Just(4096u32), 1 => 4097u32..5000, 1 => any::<u32>()];
    let shape = prop_oneof![6 => Just(ReqShape::Whole), 1 => (0usize..40).prop_map(ReqShape::Short), 1 => any::<usize>().prop_map(ReqShape::NonzeroTail)];
    let spare = prop_oneof![6 => Just(0u32), 1 => any::<u32>()];
    let req_kind = prop_oneof![8 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)];
    let ids = prop_oneof![
        6 => (0usize..=64).prop_map(|n| (RawIds::Capacity(n), n)),
        1 => (0usize..=8).prop_map(|n| (RawIds::Null, n)),
        1 => (0usize..=8).prop_map(|n| (RawIds::Unmapped, n)),
        1 => (1_000_001usize..=u32::MAX as usize).prop_map(|n| (RawIds::Capacity(4), n)),
    ];
    let flags = prop_oneof![8 => Just(0u32), 1 => any::<u32>()];
    let owner = prop_oneof![Just(0u64), Just(LISTNS_CURRENT_USER)];
    ((ns_type, size, shape, spare, any::<u32>(), owner), req_kind, ids, flags).prop_map(
        |((ns_type, size, shape, spare, spare2, owner), req_kind, (ids, nr_ns_ids), flags)| {
            // A bad id buffer is paired with "any owner", where the caller's
            // own namespaces are always listed, so whether an id lands on it
            // is known.
            let bad_ids = !matches!(ids, RawIds::Capacity(_));
            let user_ns_id = if bad_ids { 0 } else { owner };
            let mut bytes = NsIdReq { size, spare, ns_id: 0, ns_type, spare2, user_ns_id }.to_bytes();
            let size = size as usize;
            if size > bytes.len() && size <= 4200 {
                bytes.resize(size, 0);
            }
            match shape {
                ReqShape::Whole => {}
                ReqShape::Short(n) => bytes.truncate(n.min(size.saturating_sub(1))),
                ReqShape::NonzeroTail(at) if bytes.len() > 32 => {
                    let i = 32 + at % (bytes.len() - 32);
                    bytes[i] = 1;
                }
                ReqShape::NonzeroTail(_) => {}
            }
            let req = match req_kind {
                0 => RawReq::Bytes(bytes),
                1 => RawReq::Null,
                _ => RawReq::Unmapped,
            };
            ListnsCall { req, ids, nr_ns_ids, flags, ns_type }
        },
    )
}

fn listns_requests() -> harness::CaseResult {
    use harness::listns::{listns_raw, RawIds, RAW_UNWRITTEN};
    let host = Host::running();
    let p = Property { id: "fuzz.args.listns_requests", default_cases: LISTNS_CASES, persist: true, max_shrink_iters: 200 };
    let stats = run_property(&p, listns_call(), |call| {
        let out = listns_raw(&call.req, call.ids, call.nr_ns_ids, call.flags)
            .map_err(|e| CaseError::broken(format!("mapping buffers for listns: {e}")))?;
        let got = out.result.map(drop).map_err(Errno::from_raw);
        // Something is listed from the start when any type is asked for or
        // one of them is built in: at least the caller's own namespace.
        let selects_own = call.ns_type == 0 || Kind::ALL.iter().any(|k| call.ns_type & k.flag().bits() as u32 != 0 && host.has(*k));
        let lands = !matches!(call.ids, RawIds::Capacity(_)) && call.nr_ns_ids > 0 && selects_own;
        let what = format!("listns({call:?})");
        let n = check(what.clone(), table::listns(host, &call.req, call.flags, call.nr_ns_ids, lands), got)?;
        if let (Ok(k), RawIds::Capacity(cap)) = (out.result, call.ids) {
            let written = &out.ids[..k.min(cap)];
            let ok = k <= call.nr_ns_ids
                && written.iter().all(|id| *id != RAW_UNWRITTEN && *id != 0)
                && written.windows(2).all(|w| w[0] < w[1])
                && out.ids[k.min(cap)..].iter().all(|id| *id == RAW_UNWRITTEN);
            if !ok {
                return Err(Failure::diverged(format!(
                    "{what}: returned {k}, buffer {:?}: expected at most nr_ns_ids increasing nonzero ids, exactly that many written",
                    out.ids
                )));
            }
        }
        Ok(n)
    });
    verdict(&p, &stats)
}
