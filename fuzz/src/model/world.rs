//! The real world of a scenario: the agent (a peer in U1) and its
//! processes (its peers), each a small command server. The agent carries
//! out [`Action`]s and reports namespace identities; it never decides
//! anything.

use std::path::PathBuf;

use harness::flags::NsFlags;
use harness::peer::{Channel, Peer, Spawn};
use harness::{CaseError, CaseResult, Errno, Kind, NsEntry, NsFd, NsId, Proc, Setup};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde::{Deserialize, Serialize};

use super::action::Action;
use super::ops::SLOTS;
use super::state::{home_kinds, Model};

/// What the driver asks the agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum AgentCmd {
    /// Carry out an action; the reply is its raw errno or success.
    Do(Action),
    /// Report the identity of each entry (`None` if it cannot be read).
    Observe(Vec<Probe>),
}

/// Something whose namespace identity the agent reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Probe {
    /// `/proc/self/ns/<entry>` of the agent.
    Agent(NsEntry),
    /// `/proc/<pid>/ns/<entry>` of the process in a slot.
    Proc(usize, NsEntry),
    /// The agent's fd at an index.
    Fd(usize),
    /// The agent's bind mount at an index.
    Bind(usize),
}

/// What the agent asks a process.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum ProcCmd {
    Unshare(NsFlags),
    Setns(usize),
}

type Raw = Result<(), i32>;

fn raw(r: Result<(), Errno>) -> Raw {
    r.map_err(|e| e as i32)
}

/// The agent's state.
struct Agent {
    procs: Vec<Option<Peer>>,
    fds: Vec<NsFd>,
    binds: Vec<PathBuf>,
    next_bind: usize,
}

const BIND_DIR: &str = "/tmp/nsverify-fuzz";

/// The body of the agent: already in U1 (mapped), it makes its home
/// namespaces and M0, opens its home fds, sets the limits of `model`, then
/// serves the driver until the channel closes.
pub fn agent_main(ch: &Channel, kinds: &[Kind], model: &Model) -> CaseResult {
    let homes = Kind::flags_of(&home_kinds(kinds));
    harness::ns::unshare(homes).map_err(|e| CaseError::broken(format!("agent: {e}")))?;
    harness::mntns::private_scratch().setup("agent: private mounts and a tmpfs on /tmp")?;
    std::fs::create_dir(BIND_DIR).setup("agent: bind mount directory")?;
    let mut agent = Agent { procs: (0..SLOTS).map(|_| None).collect(), fds: Vec::new(), binds: Vec::new(), next_bind: 0 };
    for k in super::state::fd_kinds(kinds) {
        if matches!(model.home_of(k), super::state::NsRef::Model(_)) {
            agent.fds.push(NsFd::open_entry(Proc::Myself, Model::home_entry(k)).setup("agent: opening a home fd")?);
        }
    }
    for (k, v) in &model.limits {
        harness::limits::write(*k, u64::from(*v)).setup("agent: setting a limit in U1")?;
    }
    ch.ready()?;
    loop {
        let Ok(cmd) = ch.recv::<AgentCmd>() else {
            return Ok(());
        };
        match cmd {
            AgentCmd::Do(action) => {
                let r = agent.act(&action)?;
                ch.send(&r)?;
            }
            AgentCmd::Observe(probes) => {
                let ids: Vec<Option<NsId>> = probes.iter().map(|p| agent.observe(p)).collect();
                ch.send(&ids)?;
            }
        }
    }
}

/// A process's body: serve unshare and setns requests until the channel
/// closes. `fds` are the agent's fds, inherited across fork.
fn process_main(ch: &Channel, fds: &[NsFd]) -> CaseResult {
    ch.ready()?;
    loop {
        let Ok(cmd) = ch.recv::<ProcCmd>() else {
            return Ok(());
        };
        let r = match cmd {
            ProcCmd::Unshare(flags) => {
                let (uid, gid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
                let r = harness::ns::unshare(flags).map_err(|e| e.errno);
                if r.is_ok() && flags.contains(NsFlags::USER) {
                    harness::userns::map_self_as_root(uid, gid).map_err(|e| CaseError::broken(format!("process: mapping itself: {e}")))?;
                }
                raw(r)
            }
            ProcCmd::Setns(i) => raw(harness::ns::setns(&fds[i], NsFlags::EMPTY).map_err(|e| e.errno)),
        };
        ch.send(&r)?;
    }
}

/// The errno of a failed spawn: the clone itself, or the child's unshare.
fn spawn_errno(e: CaseError) -> Result<Raw, CaseError> {
    match e.errno() {
        Some(errno) if e.outcome == harness::Outcome::Fail => Ok(Err(errno as i32)),
        _ => Err(e),
    }
}

impl Agent {
    fn peer(&mut self, slot: usize) -> Result<&mut Peer, CaseError> {
        self.procs[slot].as_mut().ok_or_else(|| CaseError::broken(format!("agent: no process in slot {slot}")))
    }

    fn act(&mut self, action: &Action) -> Result<Raw, CaseError> {
        Ok(match action {
            Action::Spawn { slot, flags, via_unshare, uid1 } => {
                // The model fuzzes both ways in by name (Op::Spawn's
                // `unshare`), not Spawn::new_ns's one choice: fork then
                // unshare(2), or clone; clone3(2) when time is asked, as
                // clone(2) cannot carry CLONE_NEWTIME (the model expects
                // EINVAL where clone3 refuses it, Model::clone3_newtime).
                let mut spawn = match (*via_unshare, flags.contains(NsFlags::TIME)) {
                    (true, _) => Spawn::unshare(*flags),
                    (false, true) => Spawn::clone3(*flags),
                    (false, false) => Spawn::clone(*flags),
                };
                if *uid1 {
                    spawn = spawn.as_user(1, 1);
                }
                if flags.contains(NsFlags::USER) {
                    spawn = spawn.map_root();
                }
                let fds = &self.fds;
                let mut peer = match spawn.spawn(|ch| process_main(ch, fds)) {
                    Ok(p) => p,
                    Err(e) => return spawn_errno(CaseError::from(e)),
                };
                match peer.wait_ready() {
                    Ok(()) => {
                        self.procs[*slot] = Some(peer);
                        Ok(())
                    }
                    Err(e) => return spawn_errno(e),
                }
            }
            Action::Exit { slot } => {
                let peer = self.procs[*slot].take().ok_or_else(|| CaseError::broken("agent: exit of an empty slot"))?;
                peer.kill()?;
                Ok(())
            }
            Action::Unshare { slot, flags } => {
                let peer = self.peer(*slot)?;
                peer.send(&ProcCmd::Unshare(*flags))?;
                peer.recv::<Raw>()?
            }
            Action::Setns { slot, fd } => {
                let peer = self.peer(*slot)?;
                peer.send(&ProcCmd::Setns(*fd))?;
                peer.recv::<Raw>()?
            }
            Action::OpenFd { slot, entry } => {
                let pid = self.peer(*slot)?.proc();
                match NsFd::open_entry(pid, *entry) {
                    Ok(fd) => {
                        self.fds.push(fd);
                        Ok(())
                    }
                    Err(e) => Err(e.errno as i32),
                }
            }
            Action::CloseFd { fd } => {
                drop(self.fds.remove(*fd));
                Ok(())
            }
            Action::Bind { slot, entry } => {
                let source = self.peer(*slot)?.proc().ns_path(*entry);
                let target = PathBuf::from(format!("{BIND_DIR}/b{}", self.next_bind));
                self.next_bind += 1;
                std::fs::write(&target, "").setup("agent: bind mount target")?;
                match mount(Some(&source), &target, None::<&str>, MsFlags::MS_BIND, None::<&str>) {
                    Ok(()) => {
                        self.binds.push(target);
                        Ok(())
                    }
                    Err(e) => Err(e as i32),
                }
            }
            Action::Unmount { mount } => {
                let target = self.binds.remove(*mount);
                raw(umount2(&target, MntFlags::MNT_DETACH))
            }
            Action::SetLimit { kind, value } => match harness::limits::write(*kind, u64::from(*value)) {
                Ok(()) => Ok(()),
                Err(e) => Err(e.errno as i32),
            },
        })
    }

    fn observe(&self, probe: &Probe) -> Option<NsId> {
        match probe {
            Probe::Agent(entry) => NsId::of_entry(Proc::Myself, *entry).ok(),
            Probe::Proc(slot, entry) => {
                let p = self.procs.get(*slot)?.as_ref()?;
                NsId::of_entry(p.proc(), *entry).ok()
            }
            Probe::Fd(i) => self.fds.get(*i).map(NsFd::id),
            Probe::Bind(i) => {
                let st = nix::sys::stat::stat(self.binds.get(*i)?).ok()?;
                Some(NsId { dev: st.st_dev, ino: st.st_ino })
            }
        }
    }
}
