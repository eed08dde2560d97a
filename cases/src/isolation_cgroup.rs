//! cgroup_namespaces(7): the cgroup root directory belongs to the cgroup
//! namespace (T2.cgroup). A process's cgroups when it creates the namespace
//! become the namespace's roots: /proc/[pid]/cgroup shows paths relative to
//! the reader's namespace root (`0::/` at it, `/..` above it).

use std::fs;

use harness::peer::{call, in_child, Spawn};
use harness::{check, check_eq, Case, CaseError, CaseResult, Kind, NsFd, NsFlags, Privilege, Proc, Requires, Setup};

use crate::common::{finish, must_fail_with, Scratch};

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "isolation.cgroup.root_is_slash",
            &["T2.cgroup"],
            "in a new cgroup namespace every line of /proc/self/cgroup shows `/` (for a setns() joiner too), while \
             outside the process's cgroups read as before",
            root_is_slash,
        )
        .requires(Requires::kinds(&[Kind::Cgroup]).privilege(Privilege::Admin).probe(at_cgroup_root)),
        Case::new(
            "isolation.cgroup.scratch_cgroup",
            &["T2.cgroup"],
            "a process moved to a child cgroup that unshares its cgroup namespace reads `0::/` there and its parent's \
             cgroup as `/..`; outside and in a sibling namespace its path is unchanged; a setns() joiner sees the \
             inside roots",
            || scratch_cgroup(Kind::Cgroup.flag()),
        )
        .requires(scratch_requires()),
    ]
}

/// The cgroup cases run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    vec![Case::new(
        "sabotage.isolation.cgroup.scratch_cgroup",
        &["T2.cgroup"],
        "the process in the child cgroup does not unshare CLONE_NEWCGROUP: it must not read `0::/`",
        || must_fail_with(scratch_cgroup(NsFlags::EMPTY), "its own cgroup v2 path inside"),
    )
    .requires(scratch_requires())]
}

/// Creating a cgroup needs write access to the cgroup2 hierarchy: real root.
fn scratch_requires() -> Requires {
    Requires::kinds(&[Kind::Cgroup]).privilege(Privilege::Root).probe(|| harness::probe::own_cgroup2_dir().err())
}

/// The lines of /proc/<pid>/cgroup: (hierarchy id, controllers, path).
fn cgroups(proc: Proc) -> Result<Vec<(String, String, String)>, CaseError> {
    let path = match proc {
        Proc::Myself => "/proc/self/cgroup".to_string(),
        Proc::Pid(p) => format!("/proc/{p}/cgroup"),
    };
    let text = fs::read_to_string(&path)?;
    text.lines()
        .map(|l| match l.splitn(3, ':').collect::<Vec<_>>().as_slice() {
            [id, ctl, p] => Ok((id.to_string(), ctl.to_string(), p.to_string())),
            _ => Err(CaseError::fail(format!("line {l:?} of {path} is not `id:controllers:path`"))),
        })
        .collect()
}

/// The cgroup v2 path (the `0::` line) of `proc`.
fn v2_path(proc: Proc) -> Result<String, CaseError> {
    cgroups(proc)?
        .into_iter()
        .find(|(id, ctl, _)| id == "0" && ctl.is_empty())
        .map(|(_, _, p)| p)
        .ok_or_else(|| CaseError::fail("no `0::` line in /proc/[pid]/cgroup"))
}

/// The claim shows only below the cgroup root: a process in the root cgroup
/// reads `/` with or without a new cgroup namespace (isolation.cgroup.
/// scratch_cgroup makes its own child cgroup, as root).
fn at_cgroup_root() -> Option<String> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().all(|l| l.ends_with(":/")).then(|| {
        "the suite runs in the root cgroup of every hierarchy, where `/` shows with or without a new cgroup namespace \
         (isolation.cgroup.scratch_cgroup moves into a child cgroup, as root)"
            .to_string()
    })
}

fn root_is_slash() -> CaseResult {
    let own = cgroups(Proc::Myself)?;
    let all_slash = |lines: &[(String, String, String)]| lines.iter().all(|(_, _, p)| p == "/");
    check!(!all_slash(&own), "precondition: the case runs below the root of some cgroup hierarchy: {own:?}");
    let mut inside = Spawn::clone(Kind::Cgroup.flag()).spawn(|ch| {
        ch.send(&cgroups(Proc::Myself)?)?;
        ch.wait()
    })?;
    let seen_inside: Vec<(String, String, String)> = inside.recv()?;
    let seen_outside = cgroups(inside.proc())?;
    let joined = in_child(|| {
        NsFd::open(inside.proc(), Kind::Cgroup)?.setns(Kind::Cgroup.flag())?;
        cgroups(Proc::Myself)
    })?;
    inside.go()?;
    inside.join()?;
    check!(all_slash(&seen_inside), "/proc/self/cgroup in a new cgroup namespace: {seen_inside:?}, expected `/` on every line");
    check!(all_slash(&joined), "/proc/self/cgroup of a setns(CLONE_NEWCGROUP) joiner: {joined:?}, expected `/` on every line");
    check_eq!(seen_outside, own, "/proc/<pid>/cgroup of the process in the new namespace, read outside");
    check_eq!(cgroups(Proc::Myself)?, own, "the case's own /proc/self/cgroup");
    Ok(())
}

/// `inner`: CLONE_NEWCGROUP for the claim, 0 when sabotaged.
fn scratch_cgroup(inner: NsFlags) -> CaseResult {
    let base = harness::probe::own_cgroup2_dir().setup("find our cgroup2 directory")?;
    let own = v2_path(Proc::Myself)?;
    let scratch = Scratch::new(&base, &own, "cg")?;
    let verdict = in_scratch_cgroup(inner, &own, &scratch);
    finish(verdict, [scratch])
}

fn in_scratch_cgroup(inner: NsFlags, own: &str, scratch: &Scratch) -> CaseResult {
    let name = scratch.dir.file_name().expect("a named directory").to_string_lossy().into_owned();
    let procs = scratch.procs();
    let me = Proc::Pid(std::process::id() as i32);
    let mut inside = Spawn::fork().spawn(|ch| {
        fs::write(&procs, "0").setup("move to the child cgroup")?;
        harness::ns::unshare(inner)?;
        ch.send(&(v2_path(Proc::Myself)?, v2_path(me)?))?;
        ch.wait()
    })?;
    let (inside_own, inside_parent): (String, String) = inside.recv()?;
    let seen_outside = v2_path(inside.proc())?;
    let p = inside.proc();
    let sibling = call(&Spawn::clone(Kind::Cgroup.flag()), || Ok((v2_path(Proc::Myself)?, v2_path(p)?)))?;
    let joined = in_child(|| {
        NsFd::open(p, Kind::Cgroup)?.setns(Kind::Cgroup.flag())?;
        Ok((v2_path(Proc::Myself)?, v2_path(p)?))
    });
    inside.go()?;
    inside.join()?;
    check_eq!(inside_own, "/", "its own cgroup v2 path inside the new cgroup namespace");
    check_eq!(inside_parent, "/..", "the parent cgroup's path, read inside the new cgroup namespace");
    check_eq!(seen_outside, scratch.path, "the path of the process in the new namespace, read outside");
    check_eq!(sibling, ("/".to_string(), format!("/{name}")), "own path and the other process's path in a sibling cgroup namespace");
    check_eq!(joined?, ("/..".to_string(), "/".to_string()), "own path and the other process's path after setns(CLONE_NEWCGROUP)");
    check_eq!(v2_path(Proc::Myself)?, own, "the case's own cgroup v2 path");
    Ok(())
}
