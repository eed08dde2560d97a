//! cgroup_namespaces(7) beyond the seed (claim U4): the cgroup migration check
//! against the writer's cgroup namespace at open time (CVE-2021-4197).
//!
//! A write to cgroup.procs is checked with what the file was opened with
//! (e57457641613 "cgroup: Use open-time cgroup namespace for process
//! migration perm checks", 1756d7994ad8 "... open-time credentials ..."):
//! kernel/cgroup/cgroup.c, cgroup_procs_write_permission() with the
//! namespace and credentials saved at open. Peers: the kernel's
//! tools/testing/selftests/cgroup/test_core.c, test_cgcore_lesser_ns_open and
//! test_cgcore_lesser_euid_open.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::chown;
use std::path::Path;

use harness::peer::{call, in_child, Spawn};
use harness::{check_eq, expect_errno, Case, CaseError, CaseResult, Errno, Kind, NsFd, NsFlags, NsId, Privilege, Requires, Setup};
use nix::unistd::{geteuid, seteuid, Uid};

use crate::common::{finish, must_fail_with, Scratch};

/// The uid that opens cgroup.procs in the euid case (the selftest's too).
const NOBODY: u32 = 65534;

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "cgroupns.procs.open_time_namespace",
            &["U4"],
            "cgroup B's cgroup.procs opened by a process in a cgroup namespace rooted at B cannot move a process out \
             of cgroup A (outside that root) into B, even when the write is made by a process back in the initial \
             cgroup namespace: ENOENT and the writer stays in A; the same write through an fd it opens itself moves \
             it",
            || open_time_namespace(true),
        )
        .requires(nsdelegate_requires()),
        Case::new(
            "cgroupns.procs.open_time_credentials",
            &["U4"],
            "cgroup B's cgroup.procs opened with euid 65534 (owner of A's and B's cgroup.procs, not of their parent's) \
             cannot move a process from A to B even when written by euid 0: EACCES and the writer stays in A; the \
             same write through an fd opened as root moves it",
            || open_time_credentials(true),
        )
        .requires(writable_requires()),
    ]
}

/// The cases of this topic run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    vec![
        Case::new(
            "sabotage.cgroupns.procs.open_time_namespace",
            &["U4"],
            "cgroup.procs is opened after the setns() back to the initial cgroup namespace: the write must move it",
            || must_fail_with(open_time_namespace(false), "through cgroup B's cgroup.procs opened in a cgroup namespace"),
        )
        .requires(nsdelegate_requires()),
        Case::new(
            "sabotage.cgroupns.procs.open_time_credentials",
            &["U4"],
            "cgroup.procs is opened as root, not as 65534: the write must move it",
            || must_fail_with(open_time_credentials(false), "through cgroup B's cgroup.procs opened with euid"),
        )
        .requires(writable_requires()),
    ]
}

/// Creating cgroups needs write access to the cgroup2 hierarchy: real root,
/// and a cgroup2 mount showing our cgroup.
fn writable_requires() -> Requires {
    Requires::kinds(&[Kind::Cgroup]).privilege(Privilege::Root).probe(|| harness::probe::own_cgroup2_dir().err())
}

/// The namespace rule holds where cgroup namespaces are delegation
/// boundaries: cgroup2 mounted with `nsdelegate` (cgroup-v2.rst; without it
/// cgroup_procs_write_permission() checks only file permissions, and the
/// selftest skips too).
fn nsdelegate_requires() -> Requires {
    writable_requires().probe(|| harness::probe::own_cgroup2_dir().err().or_else(nsdelegate_missing))
}

/// Why the cgroup2 mount lacks `nsdelegate`, or `None` when it has it
/// (super options of its /proc/self/mountinfo line).
fn nsdelegate_missing() -> Option<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let (point, options) = info.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let mut f = post.split(' ');
        (f.next()? == "cgroup2").then(|| (pre.split(' ').nth(4).unwrap_or("?").to_string(), f.nth(1).unwrap_or("").to_string()))
    })?;
    (!options.split(',').any(|o| o == "nsdelegate")).then(|| {
        format!(
            "cgroup2 at {point} is mounted without nsdelegate ({options}): cgroup namespaces are no delegation boundary \
             there, so cgroup.procs writes are not checked against them"
        )
    })
}

fn own_path() -> Result<String, CaseError> {
    harness::probe::cgroup2_path("self").map_err(CaseError::fail)
}

fn open_rw(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().read(true).write(true).open(path)
}

/// Writes "0" (the writer itself) in one write(2); the errno of a refusal.
fn move_self(mut procs: &File) -> Option<i32> {
    procs.write(b"0").err().map(|e| e.raw_os_error().unwrap_or(0))
}

fn as_result(errno: Option<i32>) -> Result<(), Errno> {
    errno.map_or(Ok(()), |e| Err(Errno::from_raw(e)))
}

/// What the writer saw: its cgroup before the write, the write's errno,
/// its cgroup after, the control write's errno, its cgroup after that.
type Writes = (String, Option<i32>, String, Option<i32>, String);

/// The writer, in cgroup A, writes "0" through `procs` (cgroup B's), then
/// through an fd it opens itself.
fn writes(procs: &File, b: &Scratch) -> Result<Writes, CaseError> {
    let before = own_path()?;
    let refused = move_self(procs);
    let after = own_path()?;
    let control = move_self(&open_rw(&b.procs()).setup("open B's cgroup.procs for the control write")?);
    Ok((before, refused, after, control, own_path()?))
}

/// `open_in_lesser` false is the sabotage: the fd is opened after the
/// setns() back to the initial cgroup namespace.
fn open_time_namespace(open_in_lesser: bool) -> CaseResult {
    let base = harness::probe::own_cgroup2_dir().setup("find our cgroup2 directory")?;
    let own = own_path()?;
    let (a, b) = (Scratch::new(&base, &own, "cgns-a")?, Scratch::new(&base, &own, "cgns-b")?);
    let verdict = namespace_writes(open_in_lesser, &a, &b);
    finish(verdict, [a, b])
}

/// [`open_time_namespace`] with its scratch cgroups A and B.
fn namespace_writes(open_in_lesser: bool, a: &Scratch, b: &Scratch) -> CaseResult {
    let initial = NsFd::current(Kind::Cgroup)?;
    let initial_id = initial.id();
    let (in_lesser, (back, w)): (String, (NsId, Writes)) = call(&Spawn::fork(), || {
        fs::write(b.procs(), "0").setup("move into cgroup B")?;
        harness::ns::unshare(NsFlags::CGROUP)?;
        let in_lesser = own_path()?;
        let lesser_fd = if open_in_lesser { Some(open_rw(&b.procs())?) } else { None };
        // The writer: a child holding the fd, back in the initial cgroup
        // namespace (more privileged: it sees the whole hierarchy).
        let seen = in_child(|| {
            initial.setns(NsFlags::CGROUP)?;
            let back = NsId::current(Kind::Cgroup)?;
            let fd = match lesser_fd {
                Some(fd) => fd,
                None => open_rw(&b.procs())?,
            };
            fs::write(a.procs(), "0").setup("move into cgroup A")?;
            Ok((back, writes(&fd, b)?))
        })?;
        Ok((in_lesser, seen))
    })?;
    check_eq!(in_lesser, "/", "own cgroup path after unshare(CLONE_NEWCGROUP) in cgroup B");
    check_eq!(back, initial_id, "cgroup namespace of the writer after setns() back");
    check_eq!(w.0, a.path, "the writer's cgroup before its write");
    expect_errno!(
        as_result(w.1),
        Errno::ENOENT,
        "writing \"0\" from cgroup A through cgroup B's cgroup.procs opened in a cgroup namespace rooted at B, by a \
         process in the initial cgroup namespace"
    );
    check_eq!(w.2, a.path, "the writer's cgroup after the refused write (it must not move)");
    check_eq!(w.3, None, "errno of the same write through an fd the writer opened itself");
    check_eq!(w.4, b.path, "the writer's cgroup after that write");
    Ok(())
}

/// `as_nobody` false is the sabotage: the fd is opened as root.
fn open_time_credentials(as_nobody: bool) -> CaseResult {
    let base = harness::probe::own_cgroup2_dir().setup("find our cgroup2 directory")?;
    let own = own_path()?;
    let (a, b) = (Scratch::new(&base, &own, "cgeuid-a")?, Scratch::new(&base, &own, "cgeuid-b")?);
    let verdict = credential_writes(as_nobody, &a, &b);
    finish(verdict, [a, b])
}

/// [`open_time_credentials`] with its scratch cgroups A and B.
fn credential_writes(as_nobody: bool, a: &Scratch, b: &Scratch) -> CaseResult {
    for s in [a, b] {
        chown(s.procs(), Some(NOBODY), None).setup("chown cgroup.procs to 65534")?;
    }
    let (euid, w): (u32, Writes) = call(&Spawn::fork(), || {
        fs::write(a.procs(), "0").setup("move into cgroup A")?;
        let fd = if as_nobody {
            seteuid(Uid::from_raw(NOBODY)).setup("seteuid(65534)")?;
            let fd = open_rw(&b.procs());
            seteuid(Uid::from_raw(0)).setup("seteuid(0)")?;
            fd?
        } else {
            open_rw(&b.procs())?
        };
        Ok((geteuid().as_raw(), writes(&fd, b)?))
    })?;
    check_eq!(euid, 0, "the writer's euid");
    check_eq!(w.0, a.path, "the writer's cgroup before its write");
    expect_errno!(
        as_result(w.1),
        Errno::EACCES,
        "writing \"0\" from cgroup A as euid 0 through cgroup B's cgroup.procs opened with euid 65534 (which may not \
         write the common ancestor's cgroup.procs)"
    );
    check_eq!(w.2, a.path, "the writer's cgroup after the refused write (it must not move)");
    check_eq!(w.3, None, "errno of the same write through an fd opened as root");
    check_eq!(w.4, b.path, "the writer's cgroup after that write");
    Ok(())
}
