//! user_namespaces(7) beyond the seed (claims U1-U3): id translation through
//! several levels, the setgroups rule, capabilities across execve and setns.
//!
//! Peers: LTP testcases/kernel/containers/userns/ (userns01-08), the kernel's
//! tools/testing/selftests/capabilities/test_execve.c; capabilities(7)
//! ("Transformation of capabilities during execve()"); kernel/user_namespace.c
//! (map_write, UID_GID_MAP_MAX_EXTENTS, new_idmap_permitted,
//! proc_setgroups_write).
//!
//! One part per claim: `ids` (U1), `setgroups` (U2) and `caps` (U3); this
//! module holds the case lists and the map helpers they share.

mod caps;
mod ids;
mod setgroups;

use std::fs;

use harness::userns::{IdMap, IdRange};
use harness::{Case, CaseError, Kind, Privilege, Proc, Requires};
use nix::unistd::{getegid, geteuid};

use crate::common::must_fail_with;
use caps::{execve_caps, setns_gains_all};
use ids::{map_340_lines, nested_many_extents, two_levels};
use setgroups::{deny_inherited, privileged_writer, unprivileged_owner_outside};

/// Level 1's maps (written by real root): 0..999 -> 100000.. and 200000...
const L1_UID: u32 = 100_000;
const L1_GID: u32 = 200_000;
const L1_COUNT: u32 = 1000;

/// Cases that map arbitrary ids: real root.
fn root() -> Requires {
    Requires::kinds(&[Kind::User]).privilege(Privilege::Root)
}

/// Cases run by an unprivileged uid that creates user namespaces.
fn unprivileged() -> Requires {
    Requires::kinds(&[Kind::User]).user_namespaces()
}

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "userns.ids.two_levels",
            &["U1"],
            "with maps 0..999 -> 100000.. at level 1 and 0..9 -> 500.. below it, uid_map/gid_map of the level-2 \
             process, stat() of files owned by host ids and its /proc/[pid]/status Uid/Gid read from level 0, level \
             1, level 2 and a sibling of level 1 show each id in the reader's namespace (overflow ids where unmapped)",
            || two_levels(L1_UID),
        )
        .requires(root()),
        Case::new(
            "userns.ids.map_340_lines",
            &["U1"],
            "a uid_map of 341 lines is EINVAL and leaves the map empty; one of 340 lines is accepted, read back \
             whole, and translates its first and last lines (stat, setresuid) and leaves its gaps unmapped",
            || map_340_lines(341),
        )
        .requires(root().kernel(4, 15)),
        Case::new(
            "userns.ids.nested_many_extents",
            &["U1"],
            "a level-2 map of 6 lines over a level-1 map of 6 lines (both past the 5 inline extents): stat() and \
             getuid() in level 2 translate host ids through both levels, and the level-1 value of an id is not \
             taken for a host id (CVE-2018-18955, d2f007dbe7e4)",
            || nested_many_extents(L1_UID + 32),
        )
        .requires(root().kernel(4, 15)),
        Case::new(
            "userns.setgroups.unprivileged_owner_outside",
            &["U2"],
            "the unprivileged owner of a user namespace, writing from the parent namespace, gets EPERM for gid_map \
             while setgroups is allow (gid_map stays empty, setgroups allow); after deny, gid_map is accepted, deny \
             and allow are EPERM from then on, and setgroups(2) inside is EPERM",
            || unprivileged_owner_outside(false),
        )
        .requires(unprivileged()),
        Case::new(
            "userns.setgroups.privileged_writer",
            &["U2"],
            "a writer with CAP_SETGID in the parent namespace may write gid_map while setgroups is allow; setgroups(2) \
             then works inside, and deny can no longer be written (EPERM)",
            || privileged_writer(false),
        )
        .requires(root()),
        Case::new(
            "userns.setgroups.deny_inherited",
            &["U2"],
            "a user namespace created inside one whose setgroups is deny starts with deny; writing allow there is \
             EPERM, and setgroups(2) is EPERM even with CAP_SETGID and a gid_map",
            || deny_inherited(true),
        )
        .requires(unprivileged()),
        Case::new(
            "userns.caps.execve_nonzero_euid",
            &["U3"],
            "a process with every capability in a new user namespace whose euid there is 1000 (map `1000 <outer> 1`) \
             has no permitted, effective or ambient capability after execve(), its bounding set kept",
            || execve_caps(1000, false),
        )
        .requires(unprivileged()),
        Case::new(
            "userns.caps.execve_root",
            &["U3"],
            "a process whose euid is 0 in its user namespace (map `0 <outer> 1`) keeps every capability up to \
             cap_last_cap in its permitted and effective sets after execve()",
            || execve_caps(0, true),
        )
        .requires(unprivileged()),
        Case::new(
            "userns.caps.setns_gains_all",
            &["U3"],
            "a process with no capability (uid 65534, or the suite's unprivileged uid) that setns()es into a user \
             namespace it owns has every capability up to cap_last_cap there: permitted, effective and bounding",
            || setns_gains_all(true),
        )
        .requires(unprivileged()),
    ]
}

/// The cases of this topic run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    vec![
        Case::new(
            "sabotage.userns.ids.two_levels",
            &["U1"],
            "level 1 maps 0 to 100001: the level-2 uid_map read from level 0 must not read 100500",
            || must_fail_with(two_levels(L1_UID + 1), "uid_map of the level-2 process read from level 0"),
        )
        .requires(root()),
        Case::new("sabotage.userns.ids.map_340_lines", &["U1"], "the map meant to exceed the limit has 340 lines: it is accepted", || {
            must_fail_with(map_340_lines(340), "a uid_map of 341 lines")
        })
        .requires(root().kernel(4, 15)),
        Case::new(
            "sabotage.userns.ids.nested_many_extents",
            &["U1"],
            "the file meant to be owned by host uid 100032 is owned by 5032 (its level-1 value): level 2 must not \
             see uid 32",
            || must_fail_with(nested_many_extents(5032), "stat() in level 2 of a file owned by host uid"),
        )
        .requires(root().kernel(4, 15)),
        Case::new(
            "sabotage.userns.setgroups.unprivileged_owner_outside",
            &["U2"],
            "setgroups is denied before the first gid_map write, which then succeeds",
            || must_fail_with(unprivileged_owner_outside(true), "gid_map written from outside while setgroups is allow"),
        )
        .requires(unprivileged()),
        Case::new(
            "sabotage.userns.setgroups.privileged_writer",
            &["U2"],
            "the privileged writer denies setgroups first: setgroups(2) inside must then fail",
            || must_fail_with(privileged_writer(true), "setgroups(2) inside after a privileged gid_map write"),
        )
        .requires(root()),
        Case::new(
            "sabotage.userns.setgroups.deny_inherited",
            &["U2"],
            "the nested namespace writes deny, not allow, to its setgroups: accepted",
            || must_fail_with(deny_inherited(false), "writing allow to setgroups of a namespace created under deny"),
        )
        .requires(unprivileged()),
        Case::new(
            "sabotage.userns.caps.execve_nonzero_euid",
            &["U3"],
            "the process is mapped to uid 0, not 1000: it keeps its capabilities after execve()",
            || must_fail_with(execve_caps(0, false), "CapEff after execve with a nonzero euid"),
        )
        .requires(unprivileged()),
        Case::new(
            "sabotage.userns.caps.execve_root",
            &["U3"],
            "the process is mapped to uid 1000, not 0: it loses its capabilities after execve()",
            || must_fail_with(execve_caps(1000, true), "CapEff after execve as uid 0"),
        )
        .requires(unprivileged()),
        Case::new(
            "sabotage.userns.caps.setns_gains_all",
            &["U3"],
            "the process opens the user namespace but does not setns() into it",
            || must_fail_with(setns_gains_all(false), "CapEff after setns(CLONE_NEWUSER)"),
        )
        .requires(unprivileged()),
    ]
}

fn range(inside: u32, outside: u32, count: u32) -> IdMap {
    IdMap(vec![IdRange { inside, outside, count }])
}

fn read_map(proc: Proc, file: &str) -> Result<String, CaseError> {
    let path = match proc {
        Proc::Myself => format!("/proc/self/{file}"),
        Proc::Pid(p) => format!("/proc/{p}/{file}"),
    };
    Ok(fs::read_to_string(path)?)
}

/// A map as read, lines in order of their first field.
fn parsed(text: &str) -> Option<IdMap> {
    IdMap::parse(text).ok().map(|mut m| {
        m.0.sort_by_key(|r| r.inside);
        m
    })
}

/// The ids of an unprivileged user: the suite's own when it is not root,
/// else 65534 (nobody).
fn unprivileged_ids() -> (u32, u32) {
    if geteuid().is_root() {
        (65534, 65534)
    } else {
        (geteuid().as_raw(), getegid().as_raw())
    }
}
