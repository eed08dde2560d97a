//! The abstract model: the namespaces of a small world, what keeps each
//! alive, what each creation is charged to, and the outcome each operation
//! must have (namespaces(7), user_namespaces(7), pid_namespaces(7),
//! setns(2), unshare(2), clone(2)).
//!
//! The world: an agent process A in a user namespace U1 (uids 0 and, in
//! root runs, 1) with its own ("home") namespaces of the observed kinds and
//! a mount namespace M0 for bind mounts, and up to three processes, children
//! of A. Limits are set in U1 (per uid, L4); every namespace of the world is
//! also charged to U1's owner in U1's parent U0 (L7), where the observer
//! counts them all.
//!
//! This module holds the state only: what exists and what keeps it alive.
//! What each operation does to it and must return is the rules engine,
//! [`super::rules`]; the steps it resolves operations into are
//! [`super::action`].

use std::collections::BTreeMap;

use harness::{Kind, NsEntry};
use serde::{Deserialize, Serialize};

use super::ops::SLOTS;

/// A namespace of the model, or one outside the world (the agent's pid
/// namespace, the agent's own time namespace): never released, and no
/// process of the world has capabilities over its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NsRef {
    /// Outside the world.
    Outer(Kind),
    /// Index in [`Model::ns`].
    Model(usize),
}

/// One namespace.
#[derive(Debug, Clone)]
pub struct MNs {
    /// Its kind.
    pub kind: Kind,
    /// The parent (pid and user namespaces).
    pub parent: Option<NsRef>,
    /// The owning user namespace (for a user namespace, its parent).
    pub owner: NsRef,
    /// For a user namespace: its creator's uid in U1 (the kuid it maps).
    pub owner_uid: u8,
    /// The uid in U1 it is charged to; `None` for U1 itself.
    pub charge_uid: Option<u8>,
    /// For a mount namespace: the namespaces its nsfs bind mounts refer to.
    pub binds: Vec<NsRef>,
    /// For a pid namespace: whether its init (a process cloned into it)
    /// ever existed, and whether it is still alive.
    pub init: Option<bool>,
}

/// One process (the agent included).
#[derive(Debug, Clone)]
pub struct MProc {
    /// Its uid in U1 (0 or 1), which is its kuid's image there.
    pub uid: u8,
    /// Its user namespace.
    pub userns: NsRef,
    /// Whether it has CAP_SYS_ADMIN in its user namespace.
    pub caps: bool,
    /// Its namespace of each tracked kind (user excluded).
    pub ns: BTreeMap<Kind, NsRef>,
    /// pid_for_children and time_for_children.
    pub for_children: BTreeMap<Kind, NsRef>,
    /// The namespace fds it holds.
    pub fds: Vec<NsRef>,
}

/// A deliberately wrong rule, for the demonstration that the model check
/// can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrongRule {
    /// Closing a namespace fd is taken to keep its reference.
    CloseKeepsReference,
}

/// The model of one scenario's world.
#[derive(Debug, Clone)]
pub struct Model {
    /// Every namespace ever created (alive or not; see [`Model::alive`]).
    pub ns: Vec<MNs>,
    /// The agent.
    pub agent: MProc,
    /// The processes by slot.
    pub procs: Vec<Option<MProc>>,
    /// The observed kinds.
    pub kinds: Vec<Kind>,
    /// Limits in U1 of the observed kinds.
    pub limits: BTreeMap<Kind, u32>,
    /// The agent's mount namespace (its bind mounts are its `binds`).
    pub m0: usize,
    /// How many of the agent's fds are its home fds (the first ones).
    pub home_fds: usize,
    /// Whether clone3 takes CLONE_NEWTIME (6.3+).
    pub clone3_newtime: bool,
    /// Whether binding a newer mount namespace's file may be refused
    /// ([`harness::known::MNT_NS_LOOP_PER_CPU_IDS`], 6.18).
    pub mnt_loop_quirk: bool,
    /// The deliberately wrong rule in force, if any (sabotage runs).
    pub(super) wrong: Option<WrongRule>,
    /// References a wrong rule keeps alive that the world does not.
    pub(super) ghosts: Vec<NsRef>,
}

/// U1, the world's user namespace.
pub const U1: NsRef = NsRef::Model(0);

/// The kinds the agent gives itself a home namespace of (pid stays outer:
/// unshare would only move its children).
pub fn home_kinds(kinds: &[Kind]) -> Vec<Kind> {
    let mut v: Vec<Kind> = kinds.iter().copied().filter(|k| !matches!(k, Kind::User | Kind::Pid | Kind::Mnt)).collect();
    v.push(Kind::Mnt);
    v
}

/// The kinds whose namespace every process tracks: observed, user, mnt.
pub fn tracked(kinds: &[Kind]) -> Vec<Kind> {
    let mut v: Vec<Kind> = kinds.iter().copied().filter(|k| *k != Kind::User).collect();
    if !v.contains(&Kind::Mnt) {
        v.push(Kind::Mnt);
    }
    v
}

/// The kinds ops may open or bind: the observed ones and user.
pub fn fd_kinds(kinds: &[Kind]) -> Vec<Kind> {
    let mut v = kinds.to_vec();
    if !v.contains(&Kind::User) {
        v.push(Kind::User);
    }
    v
}

/// The entry under `/proc/<pid>/ns` for `kind` (its `*_for_children`
/// entry when asked and the kind has one).
pub(super) fn entry_of(kind: Kind, for_children: bool) -> NsEntry {
    NsEntry::children_of(kind).filter(|_| for_children).unwrap_or(NsEntry::own(kind))
}

impl Model {
    /// The world as the agent sets it up: U1, the home namespaces (charged
    /// to uid 0 in U1), M0, the home fds, limits of `home count + room`.
    pub fn new(kinds: &[Kind], room: u8, clone3_newtime: bool, wrong: Option<WrongRule>) -> Model {
        let u1 = MNs {
            kind: Kind::User,
            parent: None,
            owner: NsRef::Outer(Kind::User),
            owner_uid: 0,
            charge_uid: None,
            binds: vec![],
            init: None,
        };
        let mut m = Model {
            ns: vec![u1],
            agent: MProc { uid: 0, userns: U1, caps: true, ns: BTreeMap::new(), for_children: BTreeMap::new(), fds: vec![] },
            procs: vec![None; usize::from(SLOTS)],
            kinds: kinds.to_vec(),
            limits: BTreeMap::new(),
            m0: 0,
            home_fds: 0,
            clone3_newtime,
            mnt_loop_quirk: harness::known::ns_ids_are_per_cpu_cookies(),
            wrong,
            ghosts: vec![],
        };
        for k in tracked(kinds) {
            m.agent.ns.insert(k, NsRef::Outer(k));
        }
        m.agent.for_children.insert(Kind::Pid, NsRef::Outer(Kind::Pid));
        m.agent.for_children.insert(Kind::Time, NsRef::Outer(Kind::Time));
        for k in home_kinds(kinds) {
            let r = m.push(k, None, U1, 0, Some(0));
            if k == Kind::Mnt {
                m.m0 = m.index(r);
            }
            if k == Kind::Time {
                m.agent.for_children.insert(k, r);
            } else {
                m.agent.ns.insert(k, r);
            }
        }
        // Home fds: one per fd kind that has a model namespace.
        for k in fd_kinds(kinds) {
            let r = m.home_of(k);
            if matches!(r, NsRef::Model(_)) {
                m.agent.fds.push(r);
            }
        }
        m.home_fds = m.agent.fds.len();
        for &k in kinds {
            let home = m.u1_count(0, k);
            m.limits.insert(k, home + u32::from(room));
        }
        m
    }

    /// The agent's namespace of `kind` that its children start in.
    pub fn home_of(&self, kind: Kind) -> NsRef {
        match kind {
            Kind::User => U1,
            Kind::Time | Kind::Pid => self.agent.for_children[&kind],
            k => self.agent.ns.get(&k).copied().unwrap_or(NsRef::Outer(k)),
        }
    }

    /// The entry to open for the agent's home fd of `kind`.
    pub fn home_entry(kind: Kind) -> NsEntry {
        entry_of(kind, kind == Kind::Time)
    }

    pub(super) fn push(&mut self, kind: Kind, parent: Option<NsRef>, owner: NsRef, owner_uid: u8, charge_uid: Option<u8>) -> NsRef {
        self.ns.push(MNs { kind, parent, owner, owner_uid, charge_uid, binds: vec![], init: None });
        NsRef::Model(self.ns.len() - 1)
    }

    pub(super) fn index(&self, r: NsRef) -> usize {
        match r {
            NsRef::Model(i) => i,
            NsRef::Outer(_) => usize::MAX,
        }
    }

    /// The kind of a reference.
    pub fn kind_of(&self, r: NsRef) -> Kind {
        match r {
            NsRef::Outer(k) => k,
            NsRef::Model(i) => self.ns[i].kind,
        }
    }

    pub(super) fn owner(&self, r: NsRef) -> NsRef {
        match r {
            NsRef::Outer(k) => NsRef::Outer(k),
            NsRef::Model(i) => self.ns[i].owner,
        }
    }

    pub(super) fn level(&self, r: NsRef) -> usize {
        match r {
            NsRef::Outer(_) => 0,
            NsRef::Model(i) => 1 + self.ns[i].parent.map_or(0, |p| self.level(p)),
        }
    }

    /// Which namespaces are alive: reachable from a live process (its
    /// namespaces, `*_for_children`, user namespace, fds), through parents,
    /// owners, and the bind mounts of live mount namespaces.
    pub fn alive(&self) -> Vec<bool> {
        let mut alive = vec![false; self.ns.len()];
        let mut work: Vec<NsRef> = self.ghosts.clone();
        for p in std::iter::once(&self.agent).chain(self.procs.iter().flatten()) {
            work.push(p.userns);
            work.extend(p.ns.values().copied());
            work.extend(p.for_children.values().copied());
            work.extend(p.fds.iter().copied());
        }
        while let Some(r) = work.pop() {
            let NsRef::Model(i) = r else { continue };
            if alive[i] {
                continue;
            }
            alive[i] = true;
            let n = &self.ns[i];
            work.extend(n.parent);
            work.push(n.owner);
            work.extend(n.binds.iter().copied());
        }
        alive
    }

    /// Alive namespaces of `kind` charged in U0 (all of the world's).
    pub fn u0_count(&self, kind: Kind) -> u32 {
        let alive = self.alive();
        self.ns.iter().zip(alive).filter(|(n, a)| *a && n.kind == kind).count() as u32
    }

    /// Alive namespaces of `kind` charged to `uid` in U1.
    pub fn u1_count(&self, uid: u8, kind: Kind) -> u32 {
        let alive = self.alive();
        self.ns.iter().zip(alive).filter(|(n, a)| *a && n.kind == kind && n.charge_uid == Some(uid)).count() as u32
    }

    /// `p`'s namespace of `kind` (its user namespace for user).
    pub fn ref_of(&self, p: &MProc, kind: Kind) -> NsRef {
        if kind == Kind::User {
            p.userns
        } else {
            p.ns.get(&kind).copied().unwrap_or(NsRef::Outer(kind))
        }
    }
}
