//! The no-trace check: what a run could leave behind, taken before and after
//! and compared. A run must leave no namespaces, mounts, processes or
//! changed `/proc/sys/user` values.
//!
//! Each runner judges its own traces. Processes are its own by descent or
//! by process group; what lives in state shared with other runners (the
//! cgroup directory, the mount table, the hostname) is told apart by name:
//! cases name what they create with [`scratch_name`](crate::isolate::scratch_name),
//! and a difference that names another runner's objects only is left to
//! that runner's check. Anything unnamed counts as ours.

use std::collections::BTreeSet;
use std::fs;

use crate::isolate::{self, CASE_GROUPS};
use crate::nsid::NsLink;

/// State of the system that a run must not change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Namespaces referenced by our open fds, our mounts (nsfs bind mounts)
    /// and any process of our process tree or of a case's process group.
    pub namespaces: BTreeSet<String>,
    /// Our mount table (mount point, fs type and source per line).
    pub mounts: BTreeSet<String>,
    /// Live processes of our tree or of a case's process group, but us.
    pub processes: BTreeSet<String>,
    /// `/proc/sys/user/*` values.
    pub limits: Vec<(String, String)>,
    /// Child cgroups of our cgroup v2 directory (cases create scratch
    /// cgroups there).
    pub cgroups: BTreeSet<String>,
    /// Hostname and NIS domain name of our UTS namespace.
    pub uts: (String, String),
}

fn fd_namespaces(pid: &str, out: &mut BTreeSet<String>, tag: &str) {
    for entry in fs::read_dir(format!("/proc/{pid}/fd")).into_iter().flatten().flatten() {
        if let Ok(target) = fs::read_link(entry.path()) {
            let text = target.to_string_lossy();
            if NsLink::parse(&text).is_ok() {
                out.insert(format!("{text} (fd held by {tag})"));
            }
        }
    }
}

fn stat_fields(pid: &str) -> Option<(i32, i32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command: state ppid pgrp ...
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut f = rest.split_whitespace().skip(1);
    Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
}

/// Pids of our descendants and of processes in any case's process group.
fn our_processes() -> Vec<(String, String)> {
    let me = std::process::id() as i32;
    let groups: Vec<i32> = CASE_GROUPS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let all: Vec<(i32, i32, i32)> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let (ppid, pgrp) = stat_fields(&pid.to_string())?;
            Some((pid, ppid, pgrp))
        })
        .collect();
    let mut ours: BTreeSet<i32> = BTreeSet::new();
    let mut frontier = vec![me];
    while let Some(p) = frontier.pop() {
        for &(pid, ppid, _) in &all {
            if ppid == p && ours.insert(pid) {
                frontier.push(pid);
            }
        }
    }
    ours.extend(all.iter().filter(|(pid, _, pgrp)| *pid != me && groups.contains(pgrp)).map(|(pid, ..)| *pid));
    ours.into_iter()
        .map(|pid| {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            (pid.to_string(), comm.trim().to_string())
        })
        .collect()
}

impl Snapshot {
    /// Takes a snapshot now.
    pub fn take() -> Snapshot {
        let mut namespaces = BTreeSet::new();
        fd_namespaces("self", &mut namespaces, "the runner");
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut mounts = BTreeSet::new();
        for line in mountinfo.lines() {
            // mount point is field 5; after " - ": fs type and source.
            let fields: Vec<&str> = line.split(' ').collect();
            let tail: Vec<&str> = line.split(" - ").nth(1).map(|t| t.split(' ').take(2).collect()).unwrap_or_default();
            let desc = format!("{} {}", fields.get(4).unwrap_or(&"?"), tail.join(" "));
            if tail.first() == Some(&"nsfs") {
                namespaces.insert(format!("{} (nsfs mount at {})", tail.get(1).unwrap_or(&"?"), fields.get(4).unwrap_or(&"?")));
            }
            mounts.insert(desc);
        }
        let mut processes = BTreeSet::new();
        for (pid, comm) in our_processes() {
            for entry in fs::read_dir(format!("/proc/{pid}/ns")).into_iter().flatten().flatten() {
                if let Ok(t) = fs::read_link(entry.path()) {
                    namespaces.insert(format!("{} (process {pid} {comm})", t.to_string_lossy()));
                }
            }
            fd_namespaces(&pid, &mut namespaces, &format!("process {pid}"));
            processes.insert(format!("{pid} {comm}"));
        }
        let cgroups = crate::probe::own_cgroup2_dir()
            .map(|dir| {
                fs::read_dir(&dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path().display().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let uts = nix::sys::utsname::uname()
            .map(|u| (u.nodename().to_string_lossy().into_owned(), u.domainname().to_string_lossy().into_owned()))
            .unwrap_or_default();
        Snapshot { namespaces, mounts, processes, limits: crate::limits::snapshot_all(), cgroups, uts }
    }

    /// What differs from `before`, one line per difference, but those that
    /// belong to another runner ([`Snapshot::differences_of`] for this
    /// process's runner, [`isolate::runner_pid`]).
    pub fn differences(&self, before: &Snapshot) -> Vec<String> {
        self.differences_of(before, isolate::runner_pid())
    }

    /// What differs from `before` that the runner with pid `runner` must
    /// answer for: every difference but those naming only objects that
    /// another runner's cases created ([`another_runners`]).
    pub fn differences_of(&self, before: &Snapshot, runner: u32) -> Vec<String> {
        let mut all = self.all_differences(before);
        all.retain(|line| !another_runners(line, runner));
        all
    }

    fn all_differences(&self, before: &Snapshot) -> Vec<String> {
        let mut out = Vec::new();
        let mut diff = |what: &str, a: &BTreeSet<String>, b: &BTreeSet<String>| {
            out.extend(b.difference(a).map(|x| format!("{what} appeared: {x}")));
            out.extend(a.difference(b).map(|x| format!("{what} disappeared: {x}")));
        };
        diff("namespace", &before.namespaces, &self.namespaces);
        diff("mount", &before.mounts, &self.mounts);
        diff("process", &before.processes, &self.processes);
        diff("cgroup", &before.cgroups, &self.cgroups);
        for ((name, old), (_, new)) in before.limits.iter().zip(&self.limits) {
            if old != new {
                out.push(format!("/proc/sys/user/{name} changed: {old} -> {new}"));
            }
        }
        if before.uts != self.uts {
            out.push(format!("hostname/domainname changed: {:?} -> {:?}", before.uts, self.uts));
        }
        if before.limits.len() != self.limits.len() {
            out.push("/proc/sys/user entries changed".into());
        }
        out
    }
}

/// Whether `line` names objects of another runner's cases
/// ([`isolate::scratch_name`]s with another runner's pid) and none of
/// `runner`'s.
pub fn another_runners(line: &str, runner: u32) -> bool {
    let runners: Vec<u32> = line
        .split(|c: char| c.is_whitespace() || matches!(c, '/' | '"' | '(' | ')' | ',' | ':' | ';'))
        .filter_map(isolate::runner_of)
        .collect();
    !runners.is_empty() && !runners.contains(&runner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(cgroups: &[&str], mounts: &[&str]) -> Snapshot {
        Snapshot {
            namespaces: BTreeSet::new(),
            mounts: mounts.iter().map(|m| m.to_string()).collect(),
            processes: BTreeSet::new(),
            limits: Vec::new(),
            cgroups: cgroups.iter().map(|c| format!("/sys/fs/cgroup/{c}")).collect(),
            uts: ("host".into(), "(none)".into()),
        }
    }

    /// Runner 100 leaks a cgroup and a mount; runner 200's appear and go
    /// while 100 runs; an unnamed cgroup appears: 100 answers for its own
    /// and the unnamed ones, not for 200's, and 200 the other way round.
    #[test]
    fn a_runner_answers_for_its_own_traces_and_unnamed_ones() {
        let before = snapshot(&["keep", "nsverify-cg-r200c7"], &["/ proc proc"]);
        let after = snapshot(
            &["keep", "nsverify-cg-r100c5", "nsverify-cgns-a-r200c8", "stray"],
            &["/ proc proc", "/tmp tmpfs nsverify-scratch-r100c5", "/mnt tmpfs nsverify-scratch-r200c8"],
        );
        let ours = after.differences_of(&before, 100);
        assert_eq!(
            ours,
            [
                "mount appeared: /tmp tmpfs nsverify-scratch-r100c5",
                "cgroup appeared: /sys/fs/cgroup/nsverify-cg-r100c5",
                "cgroup appeared: /sys/fs/cgroup/stray",
            ]
        );
        let theirs = after.differences_of(&before, 200);
        assert!(theirs.iter().any(|d| d.contains("nsverify-cgns-a-r200c8")), "{theirs:?}");
        assert!(theirs.iter().any(|d| d == "cgroup disappeared: /sys/fs/cgroup/nsverify-cg-r200c7"), "{theirs:?}");
        assert!(!theirs.iter().any(|d| d.contains("r100c5")), "{theirs:?}");
        assert!(theirs.iter().any(|d| d.ends_with("/stray")), "{theirs:?}");
        let hostname = Snapshot { uts: ("nsverify-user-r200c9".into(), "(none)".into()), ..before.clone() };
        assert!(hostname.differences_of(&before, 100).is_empty());
        assert_eq!(hostname.differences_of(&before, 200).len(), 1);
    }
}
