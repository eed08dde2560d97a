//! The operations of a sequence and the strategy that generates them.

use harness::Kind;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

/// Most model processes alive at once.
pub const SLOTS: u8 = 3;

/// One operation. Indices (slots, fds, mounts, kinds) are taken modulo what
/// exists when the operation runs; an operation on an empty slot (or with
/// nothing to act on) is skipped, which keeps shrunk sequences meaningful.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// The agent starts a process in `slot` in new namespaces: `kinds` is a
    /// bit mask over the scenario's kinds, `user` adds CLONE_NEWUSER;
    /// `unshare`: fork then unshare(2) in the child (pid and time then move
    /// only `*_for_children`), else clone(2) (clone3 when time is asked);
    /// `uid1`: the child first becomes uid 1 (root runs only), which
    /// always goes through unshare.
    Spawn {
        /// Process slot.
        slot: u8,
        /// Bit mask over the scenario's kinds.
        kinds: u8,
        /// With CLONE_NEWUSER.
        user: bool,
        /// Through unshare(2) instead of clone(2).
        unshare: bool,
        /// As uid 1.
        uid1: bool,
    },
    /// The process in `slot` is killed and reaped.
    Exit {
        /// Process slot.
        slot: u8,
    },
    /// The process in `slot` calls unshare(2) (mapping itself as root of a
    /// new user namespace).
    Unshare {
        /// Process slot.
        slot: u8,
        /// Bit mask over the scenario's kinds.
        kinds: u8,
        /// With CLONE_NEWUSER.
        user: bool,
    },
    /// The process in `slot` calls setns(fd, 0) on one of the namespace fds
    /// it inherited from the agent.
    Setns {
        /// Process slot.
        slot: u8,
        /// Index in the process's fds.
        fd: u8,
    },
    /// The agent opens `/proc/<pid>/ns/<kind>` (or `*_for_children`) of
    /// the process in `slot` and holds the fd.
    OpenFd {
        /// Process slot.
        slot: u8,
        /// Index in the fd kinds (scenario kinds and user).
        kind: u8,
        /// `pid_for_children`/`time_for_children` instead.
        for_children: bool,
    },
    /// The agent closes one of its fds.
    CloseFd {
        /// Index in the agent's fds.
        fd: u8,
    },
    /// The agent bind-mounts `/proc/<pid>/ns/<kind>` of the process in
    /// `slot` onto a file in its mount namespace.
    Bind {
        /// Process slot.
        slot: u8,
        /// Index in the fd kinds.
        kind: u8,
    },
    /// The agent unmounts one of its bind mounts.
    Unmount {
        /// Index in the agent's bind mounts.
        mount: u8,
    },
    /// The agent sets `max_<kind>_namespaces` of the world's user namespace.
    SetLimit {
        /// Index in the scenario's kinds.
        kind: u8,
        /// New limit.
        value: u8,
    },
}

/// A generated sequence and its small world.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scenario {
    /// The kinds whose counts are observed (one or two).
    pub kinds: Vec<Kind>,
    /// Room under the limit for uid 0 beyond the agent's own namespaces.
    pub room: u8,
    /// The operations.
    pub ops: Vec<Op>,
}

/// Kinds a scenario may observe on this kernel.
pub fn available_kinds() -> Vec<Kind> {
    let host = harness::runner::Host::running();
    Kind::ALL.into_iter().filter(|kind| host.kernel >= kind.info().max_sysctl_since && host.has(*kind)).collect()
}

fn op(multi_uid: bool) -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    prop_oneof![
        8 => (slot.clone(), 0u8..4, proptest::bool::weighted(0.3), any::<bool>(), proptest::bool::weighted(if multi_uid { 0.3 } else { 0.0 }))
            .prop_map(|(slot, kinds, user, unshare, uid1)| Op::Spawn { slot, kinds, user, unshare, uid1 }),
        3 => slot.clone().prop_map(|slot| Op::Exit { slot }),
        2 => (slot.clone(), 0u8..4, proptest::bool::weighted(0.3)).prop_map(|(slot, kinds, user)| Op::Unshare { slot, kinds, user }),
        2 => (slot.clone(), 0u8..8).prop_map(|(slot, fd)| Op::Setns { slot, fd }),
        3 => (slot.clone(), 0u8..3, proptest::bool::weighted(0.2)).prop_map(|(slot, kind, for_children)| Op::OpenFd { slot, kind, for_children }),
        2 => (0u8..8).prop_map(|fd| Op::CloseFd { fd }),
        2 => (slot, 0u8..3).prop_map(|(slot, kind)| Op::Bind { slot, kind }),
        1 => (0u8..4).prop_map(|mount| Op::Unmount { mount }),
        1 => (0u8..2, 0u8..5).prop_map(|(kind, value)| Op::SetLimit { kind, value }),
    ]
}

/// Scenarios over `kinds` (one or two of them), `max_ops` operations at most.
pub fn scenario(kinds: Vec<Kind>, max_ops: usize, multi_uid: bool) -> impl Strategy<Value = Scenario> {
    let two = kinds.len() > 1;
    let pick = (proptest::sample::subsequence(kinds.clone(), 1..=if two { 2 } else { 1 }), 1u8..3);
    (pick, proptest::collection::vec(op(multi_uid), 1..=max_ops)).prop_map(|((kinds, room), ops)| Scenario { kinds, room, ops })
}
