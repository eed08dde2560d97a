//! The outcome table of listns(2) (6.19) with raw arguments: the checks of
//! kernel/nstree.c in their order.

use harness::Errno;

use harness::flags::clone;
use harness::host::Host;

use super::Expect;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::test_host as host;

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
            (k.clone(), RawReq::Bytes(good.clone()), 0, 4, false, Expect::Ok),
            (k.clone(), RawReq::Bytes(good.clone()), 1, 2_000_000, false, Expect::Err(Errno::EINVAL)),
            (k.clone(), RawReq::Null, 0, 2_000_000, false, Expect::Err(Errno::EOVERFLOW)),
            (k.clone(), RawReq::Unmapped, 0, 4, false, Expect::Err(Errno::EFAULT)),
            (k.clone(), RawReq::Bytes(vec![32, 0]), 0, 4, false, Expect::Err(Errno::EFAULT)),
            (k.clone(), with(0, 4097), 0, 4, false, Expect::Err(Errno::E2BIG)),
            (k.clone(), with(0, 31), 0, 4, false, Expect::Err(Errno::EINVAL)),
            (k.clone(), RawReq::Bytes(good[..24].to_vec()), 0, 4, false, Expect::Err(Errno::EFAULT)),
            (k.clone(), longer(0), 0, 4, false, Expect::Ok),
            (k.clone(), longer(1), 0, 4, false, Expect::Err(Errno::E2BIG)),
            (k.clone(), with(4, 1), 0, 4, false, Expect::Err(Errno::EINVAL)),
            (k.clone(), with(16, 1), 0, 4, false, Expect::Err(Errno::EOPNOTSUPP)),
            (k.clone(), with(16, 0x4000_0000), 0, 4, true, Expect::Err(Errno::EFAULT)),
            (k.clone(), with(20, 7), 0, 4, false, Expect::Ok),
        ] {
            assert_eq!(listns(&kernel, &req, flags, nr, bad), expected, "{req:?} flags {flags} nr {nr} on {}", kernel.kernel);
        }
    }
}
