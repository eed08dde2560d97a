//! The rules engine of the model: for each operation, the outcome it must
//! have against the [`Model`]'s state and what it changes there
//! (namespaces(7), user_namespaces(7), pid_namespaces(7), setns(2),
//! unshare(2), clone(2)): capabilities over a user namespace, the uid a
//! creation is charged to and the limits it meets, creation by clone or
//! unshare, setns, opening and binding `/proc/<pid>/ns` entries, and the
//! teardown back to the agent alone.

use harness::flags::NsFlags;
use harness::{Errno, Kind};

use super::action::{Action, Expect};
use super::ops::{Op, SLOTS};
use super::state::{entry_of, fd_kinds, MProc, Model, NsRef, WrongRule, U1};

impl Model {
    /// Whether `p` has CAP_SYS_ADMIN in user namespace `target`
    /// (user_namespaces(7), "Capabilities"; cap_capable()).
    pub fn capable(&self, p: &MProc, target: NsRef) -> bool {
        let mut x = target;
        loop {
            if x == p.userns {
                return p.caps;
            }
            let NsRef::Model(i) = x else {
                return false;
            };
            if self.level(x) <= self.level(p.userns) {
                return false;
            }
            let n = &self.ns[i];
            let Some(parent) = n.parent else {
                return false;
            };
            if parent == p.userns && n.owner_uid == p.uid {
                return true;
            }
            x = parent;
        }
    }

    /// The uid in U1 that namespaces created by `p` are charged to.
    fn charge_uid(&self, p: &MProc) -> u8 {
        let mut x = p.userns;
        loop {
            if x == U1 {
                return p.uid;
            }
            let NsRef::Model(i) = x else {
                return p.uid;
            };
            if self.ns[i].parent == Some(U1) {
                return self.ns[i].owner_uid;
            }
            x = self.ns[i].parent.unwrap_or(U1);
        }
    }

    /// A forked child of the agent: `*_for_children` become its own.
    fn child_of_agent(&self, uid1: bool) -> MProc {
        let mut c = self.agent.clone();
        for (k, r) in &self.agent.for_children {
            if c.ns.contains_key(k) || self.kinds.contains(k) {
                c.ns.insert(*k, *r);
            }
        }
        if uid1 {
            c.uid = 1;
            c.caps = false;
        }
        c
    }

    /// Whether creating the namespaces in `flags` by `base` would pass a
    /// limit: its uid's count of the user namespace or of another kind in
    /// them is at the limit.
    fn count_full(&self, base: &MProc, flags: NsFlags) -> bool {
        let cu = self.charge_uid(base);
        let full = |k: Kind| self.limits.get(&k).is_some_and(|l| self.u1_count(cu, k) >= *l);
        flags.kinds().into_iter().any(full)
    }

    /// Creation of the namespaces in `flags` by `base` (clone: for a new
    /// child; else unshare in `base`): the errno, or the new state of the
    /// process. The model is changed only on success.
    fn create(&mut self, base: &MProc, flags: NsFlags, clone: bool) -> Result<MProc, Errno> {
        let user = flags.contains(NsFlags::USER);
        let kinds: Vec<Kind> = flags.kinds().into_iter().filter(|k| *k != Kind::User).collect();
        if !clone && kinds.contains(&Kind::Pid) && base.for_children.get(&Kind::Pid) != base.ns.get(&Kind::Pid) {
            // pid_namespaces(7): a second unshare(CLONE_NEWPID) before the
            // first child is EINVAL.
            return Err(Errno::EINVAL);
        }
        if clone && kinds.contains(&Kind::Time) && !self.clone3_newtime {
            return Err(Errno::EINVAL);
        }
        if !kinds.is_empty() && !user && !base.caps {
            return Err(Errno::EPERM);
        }
        if self.count_full(base, flags) {
            return Err(Errno::ENOSPC);
        }
        let cu = self.charge_uid(base);
        let mut new = base.clone();
        if user {
            let w = self.push(Kind::User, Some(base.userns), base.userns, base.uid, Some(cu));
            new.userns = w;
            new.caps = true;
        }
        for k in kinds {
            let parent = (k == Kind::Pid).then(|| base.for_children[&Kind::Pid]);
            let r = self.push(k, parent, new.userns, 0, Some(cu));
            if k == Kind::Mnt {
                let from = base.ns[&Kind::Mnt];
                // copy_mnt_ns() copies nsfs bind mounts, but not those of
                // mount namespace files (CL_COPY_MNT_NS_FILE is not set).
                let copied: Vec<NsRef> = match from {
                    NsRef::Model(i) => self.ns[i].binds.iter().copied().filter(|b| self.kind_of(*b) != Kind::Mnt).collect(),
                    NsRef::Outer(_) => vec![],
                };
                let i = self.index(r);
                self.ns[i].binds = copied;
            }
            if clone {
                new.ns.insert(k, r);
                if matches!(k, Kind::Pid | Kind::Time) {
                    new.for_children.insert(k, r);
                }
                if k == Kind::Pid {
                    let i = self.index(r);
                    self.ns[i].init = Some(true);
                }
            } else if matches!(k, Kind::Pid | Kind::Time) {
                new.for_children.insert(k, r);
            } else {
                new.ns.insert(k, r);
            }
        }
        Ok(new)
    }

    fn flags_of(&self, mask: u8, user: bool) -> NsFlags {
        let mut f = if user { NsFlags::USER } else { NsFlags::EMPTY };
        for (i, k) in self.kinds.iter().enumerate() {
            if mask & (1 << i) != 0 && *k != Kind::User {
                f |= k.flag();
            }
            if mask & (1 << i) != 0 && *k == Kind::User {
                f |= Kind::User.flag();
            }
        }
        f
    }

    /// Resolves `op` against the current state: the action for the world
    /// and its expected outcome, or `None` when it has nothing to act on.
    /// `multi_uid`: uid 1 exists (root runs).
    pub fn resolve(&self, op: &Op, multi_uid: bool) -> Option<(Action, Expect)> {
        let live = |slot: u8| self.procs[usize::from(slot % SLOTS)].as_ref().map(|p| (usize::from(slot % SLOTS), p));
        let fdk = fd_kinds(&self.kinds);
        Some(match *op {
            Op::Spawn { slot, kinds, user, unshare, uid1 } => {
                let slot = usize::from(slot % SLOTS);
                if self.procs[slot].is_some() || (uid1 && !multi_uid) {
                    return None;
                }
                let flags = self.flags_of(kinds, user);
                let expect = match self.clone().create(&self.child_of_agent(uid1), flags, !(unshare || uid1)) {
                    Ok(_) => Expect::Ok,
                    Err(e) => Expect::Err(e),
                };
                (Action::Spawn { slot, flags, via_unshare: unshare || uid1, uid1 }, expect)
            }
            Op::Exit { slot } => (Action::Exit { slot: live(slot)?.0 }, Expect::Ok),
            Op::Unshare { slot, kinds, user } => {
                let (slot, p) = live(slot)?;
                let flags = self.flags_of(kinds, user);
                if flags.is_empty() {
                    return None;
                }
                let expect = match self.clone().create(p, flags, false) {
                    Ok(_) => Expect::Ok,
                    // A second unshare(CLONE_NEWPID) at the limit of another
                    // kind in the flags: two refusals apply, EINVAL (the
                    // caller's pid_for_children already differs from its
                    // pid namespace) and ENOSPC (unshare(2): "the limit on
                    // the number of nested ... namespaces would be
                    // exceeded"), and unshare(2) does not order its
                    // errors. 6.1 was seen counting first (ENOSPC), 6.18
                    // refusing the pid namespace first (EINVAL). Which one
                    // happened is tallied in the `fuzz.tally` note.
                    Err(Errno::EINVAL) if flags.contains(NsFlags::PID) && self.count_full(p, flags) => {
                        Expect::EitherErr(Errno::EINVAL, Errno::ENOSPC)
                    }
                    Err(e) => Expect::Err(e),
                };
                (Action::Unshare { slot, flags }, expect)
            }
            Op::Setns { slot, fd } => {
                let (slot, p) = live(slot)?;
                if p.fds.is_empty() {
                    return None;
                }
                let fd = usize::from(fd) % p.fds.len();
                let expect = match self.setns(p, p.fds[fd]) {
                    Ok(_) => Expect::Ok,
                    Err(e) => Expect::Err(e),
                };
                (Action::Setns { slot, fd }, expect)
            }
            Op::OpenFd { slot, kind, for_children } => {
                let (slot, p) = live(slot)?;
                if self.agent.fds.len() >= 8 {
                    return None;
                }
                let kind = fdk[usize::from(kind) % fdk.len()];
                let expect = match self.entry_target(p, kind, for_children) {
                    Ok(_) => Expect::Ok,
                    Err(e) => e,
                };
                (Action::OpenFd { slot, entry: entry_of(kind, for_children) }, expect)
            }
            Op::CloseFd { fd } => {
                if self.agent.fds.is_empty() {
                    return None;
                }
                (Action::CloseFd { fd: usize::from(fd) % self.agent.fds.len() }, Expect::Ok)
            }
            Op::Bind { slot, kind } => {
                let (slot, p) = live(slot)?;
                if self.ns[self.m0].binds.len() >= 4 {
                    return None;
                }
                let kind = fdk[usize::from(kind) % fdk.len()];
                let target = self.ref_of(p, kind);
                // do_loopback(): binding a mount namespace file that is not
                // newer than the caller's mount namespace could make a loop:
                // EINVAL (mnt_ns_loop()).
                let expect = if kind == Kind::Mnt && target == NsRef::Model(self.m0) {
                    Expect::Err(Errno::EINVAL)
                } else if kind == Kind::Mnt && self.mnt_loop_quirk {
                    Expect::OkOr(Errno::EINVAL)
                } else {
                    Expect::Ok
                };
                (Action::Bind { slot, entry: entry_of(kind, false) }, expect)
            }
            Op::Unmount { mount } => {
                let binds = &self.ns[self.m0].binds;
                if binds.is_empty() {
                    return None;
                }
                (Action::Unmount { mount: usize::from(mount) % binds.len() }, Expect::Ok)
            }
            Op::SetLimit { kind, value } => {
                let kind = self.kinds[usize::from(kind) % self.kinds.len()];
                (Action::SetLimit { kind, value: u32::from(value) }, Expect::Ok)
            }
        })
    }

    /// What `/proc/<pid>/ns/<entry>` of `p` refers to, or the outcome of
    /// opening it when it cannot be opened: pid_for_children of a pid
    /// namespace that has no init yet does not open (pidns_for_children_get()
    /// finds no child reaper).
    pub fn entry_target(&self, p: &MProc, kind: Kind, for_children: bool) -> Result<NsRef, Expect> {
        if for_children && kind.info().for_children.is_some() {
            let fc = p.for_children[&kind];
            if kind == Kind::Pid && fc != p.ns[&Kind::Pid] {
                if let NsRef::Model(i) = fc {
                    // Before the namespace has its init, the link does not
                    // open: ENOENT (namespaces(7): it "gains read
                    // permissions when the first child process is created
                    // in the namespace"), except where the known deviation
                    // PID_FOR_CHILDREN_OPENS_EARLY applies (from 6.19).
                    let early = harness::known::PID_FOR_CHILDREN_OPENS_EARLY.applies.here();
                    return match self.ns[i].init {
                        None if !early => Err(Expect::Err(Errno::ENOENT)),
                        _ => Ok(fc),
                    };
                }
            }
            return Ok(fc);
        }
        Ok(self.ref_of(p, kind))
    }

    /// setns(fd, 0) by `p` into `target`: its new state or the errno.
    fn setns(&self, p: &MProc, target: NsRef) -> Result<MProc, Errno> {
        let mut new = p.clone();
        let kind = self.kind_of(target);
        match kind {
            Kind::User => {
                // userns_install(): not the caller's own, CAP_SYS_ADMIN in it.
                if target == p.userns {
                    return Err(Errno::EINVAL);
                }
                if !self.capable(p, target) {
                    return Err(Errno::EPERM);
                }
                new.userns = target;
                new.caps = true;
            }
            _ => {
                // Every other install(): CAP_SYS_ADMIN over the target's owner
                // and in the caller's own user namespace.
                if !self.capable(p, self.owner(target)) || !p.caps {
                    return Err(Errno::EPERM);
                }
                match kind {
                    Kind::Pid => {
                        // Only the caller's active pid namespace or a descendant.
                        let active = p.ns[&Kind::Pid];
                        let mut x = Some(target);
                        while let Some(r) = x {
                            if r == active {
                                break;
                            }
                            x = match r {
                                NsRef::Model(i) => self.ns[i].parent,
                                NsRef::Outer(_) => None,
                            };
                        }
                        if x.is_none() {
                            return Err(Errno::EINVAL);
                        }
                        new.for_children.insert(Kind::Pid, target);
                    }
                    Kind::Time => {
                        new.ns.insert(Kind::Time, target);
                        new.for_children.insert(Kind::Time, target);
                    }
                    k => {
                        new.ns.insert(k, target);
                    }
                }
            }
        }
        Ok(new)
    }

    /// Applies a successful action.
    pub fn apply(&mut self, action: &Action) {
        match action {
            Action::Spawn { slot, flags, via_unshare, uid1 } => {
                let base = self.child_of_agent(*uid1);
                if let Ok(p) = self.create(&base, *flags, !via_unshare) {
                    self.procs[*slot] = Some(p);
                }
            }
            Action::Exit { slot } => {
                if let Some(p) = self.procs[*slot].take() {
                    // Only a cloned init is ever a member of a model pid
                    // namespace (the others only reach it through
                    // pid_for_children).
                    if let Some(NsRef::Model(i)) = p.ns.get(&Kind::Pid) {
                        if self.ns[*i].init == Some(true) {
                            self.ns[*i].init = Some(false);
                        }
                    }
                }
            }
            Action::Unshare { slot, flags } => {
                if let Some(p) = self.procs[*slot].clone() {
                    if let Ok(new) = self.create(&p, *flags, false) {
                        self.procs[*slot] = Some(new);
                    }
                }
            }
            Action::Setns { slot, fd } => {
                if let Some(p) = self.procs[*slot].clone() {
                    if let Ok(new) = self.setns(&p, p.fds[*fd]) {
                        self.procs[*slot] = Some(new);
                    }
                }
            }
            Action::OpenFd { slot, entry } => {
                if let Some(p) = &self.procs[*slot] {
                    if let Ok(r) = self.entry_target(p, entry.kind, entry.for_children) {
                        self.agent.fds.push(r);
                    }
                }
            }
            Action::CloseFd { fd } => {
                let r = self.agent.fds.remove(*fd);
                if *fd < self.home_fds {
                    self.home_fds -= 1;
                }
                if self.wrong == Some(WrongRule::CloseKeepsReference) {
                    self.ghosts.push(r);
                }
            }
            Action::Bind { slot, entry } => {
                if let Some(p) = &self.procs[*slot] {
                    let r = self.ref_of(p, entry.kind);
                    let m0 = self.m0;
                    self.ns[m0].binds.push(r);
                }
            }
            Action::Unmount { mount } => {
                let m0 = self.m0;
                self.ns[m0].binds.remove(*mount);
            }
            Action::SetLimit { kind, value } => {
                self.limits.insert(*kind, *value);
            }
        }
        // A new process inherits the agent's fds (fork copies the table).
        if let Action::Spawn { slot, .. } = action {
            if let Some(p) = &mut self.procs[*slot] {
                p.fds = self.agent.fds.clone();
            }
        }
    }

    /// The actions that take the world back to the agent alone: every
    /// process exits, every non-home fd closes, every bind mount goes.
    pub fn teardown(&self) -> Vec<Action> {
        let mut out: Vec<Action> = (0..self.procs.len()).filter(|s| self.procs[*s].is_some()).map(|slot| Action::Exit { slot }).collect();
        for _ in self.home_fds..self.agent.fds.len() {
            out.push(Action::CloseFd { fd: self.home_fds });
        }
        for _ in 0..self.ns[self.m0].binds.len() {
            out.push(Action::Unmount { mount: 0 });
        }
        out
    }
}
