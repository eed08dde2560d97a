//! L4: the limits count per user: every uid of a user namespace creates up
//! to the limit.

use harness::observe::Holder;
use harness::peer::Spawn;
use harness::userns::{self, IdMap, IdRange, MapFile};
use harness::{expect_errno, CaseError, CaseResult, Errno, Kind, Setup};

use super::{set_limit, HELD, PER_UID};

/// First of three ids mapped in the suite's user namespace (for uid_map and
/// gid_map) to map into the per-uid case's namespace.
fn spare_ids() -> Option<u32> {
    const BASE: u64 = 100_000;
    let covers = |file: &str| {
        std::fs::read_to_string(file).ok().is_some_and(|text| {
            IdMap::parse(&text).is_ok_and(|map| {
                map.0.iter().any(|r| u64::from(r.inside) <= BASE && BASE + PER_UID.len() as u64 <= u64::from(r.inside) + u64::from(r.count))
            })
        })
    };
    (covers("/proc/self/uid_map") && covers("/proc/self/gid_map")).then_some(BASE as u32)
}

pub(super) fn no_spare_ids() -> Option<String> {
    match spare_ids() {
        Some(_) => None,
        None => Some("ids 100000..100002 are not mapped in the suite's user namespace (needed to map several uids)".into()),
    }
}

/// A user namespace with `PER_UID` mapped (which only a privileged writer
/// can do); in it, each of `uids` creates namespaces through a user
/// namespace of its own (uid 0 may create directly, the others lack
/// CAP_SYS_ADMIN), all charged to its uid here.
pub(super) fn per_uid(kind: Kind, uids: [u32; 3]) -> CaseResult {
    let base = spare_ids().ok_or_else(|| CaseError::broken("no spare ids (the probe passed)"))?;
    let flags = Kind::User.flag() | kind.flag();
    let mut ns = Spawn::unshare(Kind::User.flag()).spawn(move |ch| {
        // In the new user namespace; the maps come from outside.
        ch.ready()?;
        ch.wait()?;
        userns::become_user(0, 0)?;
        set_limit(kind, HELD)?;
        let mut held = Vec::new();
        for uid in uids {
            let creator = Spawn::unshare(flags).as_user(uid, uid);
            for i in 1..=HELD {
                match Holder::spawn(&creator)? {
                    Ok(peer) => held.push(peer),
                    Err(e) => {
                        return Err(CaseError::fail(format!(
                            "uid {uid}: unshare({flags}) {i} of {HELD} refused with {e:?} while the other uids hold theirs"
                        )))
                    }
                }
            }
            expect_errno!(Holder::spawn(&creator)?, Errno::ENOSPC, "uid {uid}: create {} past the limit {HELD}", HELD + 1);
        }
        Ok(())
    })?;
    ns.wait_ready()?;
    let map = IdMap(vec![IdRange { inside: 0, outside: base, count: PER_UID.len() as u32 }]);
    userns::write_map(ns.proc(), MapFile::Uid, &map).setup("writing a uid_map of three uids")?;
    userns::write_map(ns.proc(), MapFile::Gid, &map).setup("writing a gid_map of three gids")?;
    ns.go()?;
    ns.join()
}
