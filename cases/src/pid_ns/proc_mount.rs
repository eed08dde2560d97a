//! D6: proc mounted in a new mount and pid namespace lists exactly that
//! namespace's processes; the old /proc still shows the outer pids.

use std::collections::BTreeSet;
use std::fs;

use harness::peer::{call, Peer, Spawn};
use harness::pidns;
use harness::{check, check_eq, CaseResult, Kind, NsFlags, Setup};
use serde::{Deserialize, Serialize};

use crate::common::{private_mounts, SCRATCH};

/// What init of a new mount and pid namespace saw through a proc mounted
/// there (at `listed_root` when sabotaged to the old /proc).
#[derive(Debug, Serialize, Deserialize)]
struct ProcView {
    created: BTreeSet<i32>,
    listed: BTreeSet<i32>,
    self_link: String,
    init_nspid: Vec<i32>,
    member: i32,
    member_nspid: Vec<i32>,
    old_self: String,
    old_nspid: Vec<i32>,
}

/// `listed_root`: the new proc mount ([`SCRATCH`]) for the claim, the old
/// /proc when sabotaged.
pub(super) fn proc_mount(listed_root: &'static str) -> CaseResult {
    let view: ProcView = call(&Spawn::clone(NsFlags::PID | Kind::Mnt.flag()), move || {
        use nix::mount::{mount, MsFlags};
        private_mounts()?;
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        mount(Some("proc"), SCRATCH, Some("proc"), flags, None::<&str>).setup("mount proc in the new mount namespace")?;
        let members = (0..3).map(|_| Spawn::fork().spawn_idle()).collect::<Result<Vec<Peer>, _>>()?;
        let created: BTreeSet<i32> = std::iter::once(1).chain(members.iter().map(|m| m.pid().as_raw())).collect();
        let listed: BTreeSet<i32> = fs::read_dir(listed_root)?.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
        let member = members[0].pid().as_raw();
        let view = ProcView {
            created,
            listed,
            self_link: fs::read_link(format!("{SCRATCH}/self"))?.to_string_lossy().into_owned(),
            init_nspid: pidns::nspid_at(SCRATCH, "1")?,
            member,
            member_nspid: pidns::nspid_at(SCRATCH, &member.to_string())?,
            old_self: fs::read_link("/proc/self")?.to_string_lossy().into_owned(),
            old_nspid: pidns::nspid(None)?,
        };
        for mut m in members {
            m.go()?;
            m.join()?;
        }
        Ok(view)
    })?;
    check_eq!(view.listed, view.created, "numeric entries of a proc mounted in the new pid namespace against the processes init created");
    check_eq!(view.self_link, "1", "/proc/self of init in the new proc mount");
    check_eq!(view.init_nspid, vec![1], "NSpid of /proc/1/status in the new proc mount");
    check_eq!(view.member_nspid, vec![view.member], "NSpid of a member in the new proc mount");
    check_eq!(view.old_nspid.last(), Some(&1), "innermost NSpid of init through the old /proc");
    check!(
        view.old_nspid.len() >= 2,
        "NSpid of init through the old /proc has {} levels, expected the outer ones too",
        view.old_nspid.len()
    );
    check_eq!(view.old_self, view.old_nspid[0].to_string(), "/proc/self of init through the old /proc (its outer pid)");
    Ok(())
}
