//! X5, what a listing holds: listns(2) by owning user namespace
//! (LISTNS_CURRENT_USER or its id), what a process in a new user namespace
//! may see (not a sibling's namespaces), and bad arguments (EINVAL, E2BIG,
//! EOPNOTSUPP, EOVERFLOW, EFAULT) that write nothing.

use std::collections::BTreeSet;

use harness::listns::{self as ln, NsIdReq, Owner, RawIds, RawReq, NS_ID_REQ_SIZE_VER0, RAW_UNWRITTEN};
use harness::peer::{call, Spawn};
use harness::{check, check_eq, CaseError, CaseResult, Errno, Kind, NsFd, Setup};

use super::listed;

/// What `owner` finds in a new user namespace.
#[derive(serde::Serialize, serde::Deserialize)]
struct Owned {
    user: u64,
    created: Vec<u64>,
    by_current: Vec<u64>,
    by_id: Vec<u64>,
    by_current_net: Vec<u64>,
    child: u64,
    parent_after_child: Vec<u64>,
    by_current_in_child: Vec<u64>,
}

pub(super) fn owner(expect_self: bool) -> CaseResult {
    let spawn = Spawn::unshare(Kind::User.flag() | Kind::Net.flag() | Kind::Uts.flag() | Kind::Ipc.flag()).map_root();
    let o: Owned = call(&spawn, || {
        let id_of = |k: Kind| -> Result<u64, CaseError> { Ok(NsFd::current(k)?.ns_id()?) };
        let user = id_of(Kind::User)?;
        let created = vec![id_of(Kind::Net)?, id_of(Kind::Uts)?, id_of(Kind::Ipc)?];
        let by_current = listed(NsIdReq::new(0, Owner::Current), "listing by LISTNS_CURRENT_USER")?;
        let by_id = listed(NsIdReq::new(0, Owner::Id(user)), "listing by our user namespace's id")?;
        let by_current_net =
            listed(NsIdReq::new(Kind::Net.flag().bits(), Owner::Current), "listing net namespaces by LISTNS_CURRENT_USER")?;
        harness::ns::unshare(Kind::User).setup("unshare(CLONE_NEWUSER) for a child user namespace")?;
        let child = id_of(Kind::User)?;
        let parent_after_child = listed(NsIdReq::new(0, Owner::Id(user)), "listing by the parent user namespace's id")?;
        let by_current_in_child = listed(NsIdReq::new(0, Owner::Current), "listing by LISTNS_CURRENT_USER in the child")?;
        Ok(Owned { user, created, by_current, by_id, by_current_net, child, parent_after_child, by_current_in_child })
    })?;
    let set = |v: &[u64]| v.iter().copied().collect::<BTreeSet<u64>>();
    let mut expected = set(&o.created);
    if expect_self {
        expected.insert(o.user);
    }
    check_eq!(set(&o.by_current), expected, "namespaces owned by the new user namespace {}, by LISTNS_CURRENT_USER", o.user);
    check_eq!(set(&o.by_id), expected, "namespaces owned by the new user namespace, by its id {}", o.user);
    check_eq!(o.by_current_net, vec![o.created[0]], "net namespaces owned by the new user namespace");
    let mut with_child = expected.clone();
    with_child.insert(o.child);
    check_eq!(set(&o.parent_after_child), with_child, "namespaces owned by user namespace {} once it has child {}", o.user, o.child);
    check_eq!(o.by_current_in_child, Vec::<u64>::new(), "namespaces owned by the child user namespace {} (none)", o.child);
    Ok(())
}

pub(super) fn visibility(expect_sibling: bool) -> CaseResult {
    // The sibling: a new user namespace owning a new net namespace.
    let mut sibling = Spawn::clone(Kind::User.flag() | Kind::Net.flag()).map_root().spawn(|ch| {
        let net = NsFd::current(Kind::Net)?.ns_id()?;
        let user = NsFd::current(Kind::User)?.ns_id()?;
        let sees_own = listed(NsIdReq::new(Kind::Net.flag().bits(), Owner::Any), "the sibling listing net namespaces")?.contains(&net);
        ch.send(&(net, user, sees_own))?;
        ch.wait()
    })?;
    let (sib_net, sib_user, sib_sees_own): (u64, u64, bool) = sibling.recv()?;
    check!(sib_sees_own, "the sibling lists its own net namespace {sib_net}: missing");
    let seen: (u64, u64, Vec<u64>, Vec<u64>) = call(&Spawn::unshare(Kind::User.flag()).map_root(), || {
        let net = NsFd::current(Kind::Net)?.ns_id()?;
        let user = NsFd::current(Kind::User)?.ns_id()?;
        let nets = listed(NsIdReq::new(Kind::Net.flag().bits(), Owner::Any), "listing net namespaces")?;
        let users = listed(NsIdReq::new(Kind::User.flag().bits(), Owner::Any), "listing user namespaces")?;
        Ok((net, user, nets, users))
    })?;
    let (net, user, nets, users) = seen;
    check!(nets.contains(&net), "a process in a new user namespace lists the net namespace it is in ({net}): missing from {nets:?}");
    check!(users.contains(&user), "a process in a new user namespace lists its user namespace ({user}): missing from {users:?}");
    check_eq!(
        nets.contains(&sib_net),
        expect_sibling,
        "the sibling's net namespace {sib_net} listed by a process in another new user namespace"
    );
    check!(!users.contains(&sib_user), "the sibling's user namespace {sib_user} listed by a process in another new user namespace");
    sibling.go()?;
    sibling.join()
}

/// `accept_flags`: sabotage, nonzero flags are expected to succeed.
pub(super) fn bad_arguments(accept_flags: Option<()>) -> CaseResult {
    let good = NsIdReq::new(0, Owner::Any);
    let before = listed(good, "listing before the bad calls")?;
    let call = |req: RawReq, ids: RawIds, nr: usize, flags: u32| ln::listns_raw(&req, ids, nr, flags).setup("mapping buffers for listns");
    let untouched = |o: &ln::RawOutcome| o.ids.iter().all(|v| *v == RAW_UNWRITTEN);
    let expect = |o: ln::RawOutcome, errno: Errno, what: &str| -> CaseResult {
        check_eq!(o.result.map_err(Errno::from_raw), Err(errno), "listns with {what}");
        check!(untouched(&o), "listns with {what}: the id buffer was written: {:?}", o.ids);
        Ok(())
    };
    let bytes = |r: NsIdReq| RawReq::Bytes(r.to_bytes());
    let o = call(bytes(good), RawIds::Capacity(4), 4, 1)?;
    if accept_flags.is_some() {
        check!(o.result.is_ok(), "listns with flags 1: expected success, got {:?}", o.result.map_err(Errno::from_raw));
    } else {
        expect(o, Errno::EINVAL, "flags 1")?;
    }
    expect(call(bytes(good), RawIds::Capacity(4), 4, u32::MAX)?, Errno::EINVAL, "flags 0xffffffff")?;
    for size in [0, 8, NS_ID_REQ_SIZE_VER0 - 1] {
        let mut b = good.to_bytes();
        b[0..4].copy_from_slice(&size.to_ne_bytes());
        expect(call(RawReq::Bytes(b), RawIds::Capacity(4), 4, 0)?, Errno::EINVAL, &format!("size {size}"))?;
    }
    expect(call(bytes(NsIdReq { spare: 1, ..good }), RawIds::Capacity(4), 4, 0)?, Errno::EINVAL, "spare 1")?;
    // Larger versions of the request: trailing bytes must be zero (E2BIG
    // otherwise, copy_struct_from_user()), at most a page.
    let mut longer = good.to_bytes();
    longer.extend_from_slice(&[0u8; 8]);
    longer[0..4].copy_from_slice(&40u32.to_ne_bytes());
    let o = call(RawReq::Bytes(longer.clone()), RawIds::Capacity(4), 4, 0)?;
    check!(o.result.is_ok(), "listns with size 40 and zero trailing bytes: expected success, got {:?}", o.result.map_err(Errno::from_raw));
    longer[39] = 1;
    expect(call(RawReq::Bytes(longer), RawIds::Capacity(4), 4, 0)?, Errno::E2BIG, "size 40 and a nonzero trailing byte")?;
    let mut huge = vec![0u8; 4097];
    huge[..32].copy_from_slice(&good.to_bytes());
    huge[0..4].copy_from_slice(&4097u32.to_ne_bytes());
    expect(call(RawReq::Bytes(huge), RawIds::Capacity(4), 4, 0)?, Errno::E2BIG, "size 4097")?;
    expect(call(bytes(NsIdReq { ns_type: 1, ..good }), RawIds::Capacity(4), 4, 0)?, Errno::EOPNOTSUPP, "ns_type 1 (no namespace type)")?;
    let net_id = NsFd::current(Kind::Net)?.ns_id()?;
    expect(
        call(bytes(NsIdReq { user_ns_id: net_id, ..good }), RawIds::Capacity(4), 4, 0)?,
        Errno::EINVAL,
        "user_ns_id of a net namespace",
    )?;
    expect(call(bytes(good), RawIds::Capacity(4), 1_000_001, 0)?, Errno::EOVERFLOW, "nr_ns_ids 1000001")?;
    expect(call(RawReq::Null, RawIds::Capacity(4), 4, 0)?, Errno::EFAULT, "a NULL request")?;
    expect(call(RawReq::Unmapped, RawIds::Capacity(4), 4, 0)?, Errno::EFAULT, "an unmapped request")?;
    expect(call(bytes(good), RawIds::Unmapped, 4, 0)?, Errno::EFAULT, "an unmapped id buffer")?;
    expect(call(bytes(good), RawIds::Null, 4, 0)?, Errno::EFAULT, "a NULL id buffer")?;
    // A buffer of 2 with nr_ns_ids 2: at most 2 ids, the rest untouched.
    let o = call(bytes(good), RawIds::Capacity(3), 2, 0)?;
    let n = o.result.map_err(Errno::from_raw)?;
    check!((1..=2).contains(&n), "listns with nr_ns_ids 2 returned {n}");
    check!(
        o.ids[..n].iter().all(|v| *v != RAW_UNWRITTEN) && o.ids[n..].iter().all(|v| *v == RAW_UNWRITTEN),
        "listns with nr_ns_ids 2 returned {n}: buffer {:?}",
        o.ids
    );
    check_eq!(o.ids[..n].to_vec(), before[..n.min(before.len())].to_vec(), "the first ids listed with nr_ns_ids 2");
    // Nothing changed: the same namespaces as before are listed.
    let after = listed(good, "listing after the bad calls")?;
    let ours: Vec<u64> =
        [Kind::Net, Kind::User, Kind::Mnt].iter().map(|k| Ok(NsFd::current(*k)?.ns_id()?)).collect::<Result<_, CaseError>>()?;
    for id in ours {
        check!(before.contains(&id) && after.contains(&id), "our namespace {id} listed before and after the bad calls");
    }
    Ok(())
}
