//! User namespace plumbing: uid_map, gid_map and setgroups
//! (user_namespaces(7), "User and group ID mappings"), and changing ids.

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;

use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};

use crate::case::CaseResult;
use crate::error::{Op, OpContext, SysError};
use crate::kind::Kind;
use crate::nsid::Proc;

/// One line of a uid_map or gid_map: `inside outside count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    /// First id inside the namespace.
    pub inside: u32,
    /// First id in the parent namespace (of the writer, see user_namespaces(7)).
    pub outside: u32,
    /// Length of the range.
    pub count: u32,
}

/// A uid or gid map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMap(pub Vec<IdRange>);

/// Why a map text is not a valid map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid id map line {line}: {why}")]
pub struct IdMapError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub why: String,
}

impl IdMap {
    /// A map of one id: `inside outside 1`.
    pub fn single(inside: u32, outside: u32) -> IdMap {
        IdMap(vec![IdRange { inside, outside, count: 1 }])
    }

    /// Parses map text, checking what user_namespaces(7) requires of each
    /// line: three unsigned numbers, a nonzero count, no range wrapping past
    /// 2^32-1, and no overlap with another line on either side. The kernel
    /// also limits the number of lines (5 before 4.15, 340 since); that limit
    /// is the kernel's to enforce and is not checked here.
    pub fn parse(text: &str) -> Result<IdMap, IdMapError> {
        let mut ranges: Vec<IdRange> = Vec::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let err = |why: String| IdMapError { line: i + 1, why };
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() != 3 {
                return Err(err(format!("expected 3 fields, found {}", fields.len())));
            }
            let num = |s: &str| s.parse::<u32>().map_err(|_| err(format!("{s:?} is not an unsigned 32-bit number")));
            let r = IdRange { inside: num(fields[0])?, outside: num(fields[1])?, count: num(fields[2])? };
            if r.count == 0 {
                return Err(err("count is 0".into()));
            }
            if r.inside.checked_add(r.count - 1).is_none() || r.outside.checked_add(r.count - 1).is_none() {
                return Err(err("range wraps past 4294967295".into()));
            }
            let overlaps = |a: u32, b: u32, n: u32, m: u32| a < b.saturating_add(m) && b < a.saturating_add(n);
            if let Some(o) =
                ranges.iter().find(|o| overlaps(r.inside, o.inside, r.count, o.count) || overlaps(r.outside, o.outside, r.count, o.count))
            {
                return Err(err(format!("overlaps line {:?}", o)));
            }
            ranges.push(r);
        }
        if ranges.is_empty() {
            return Err(IdMapError { line: 0, why: "empty map".into() });
        }
        Ok(IdMap(ranges))
    }
}

impl fmt::Display for IdMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.0 {
            writeln!(f, "{} {} {}", r.inside, r.outside, r.count)?;
        }
        Ok(())
    }
}

/// Which map file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapFile {
    /// `/proc/<pid>/uid_map`.
    Uid,
    /// `/proc/<pid>/gid_map`.
    Gid,
}

impl MapFile {
    /// The file name: `uid_map` or `gid_map`.
    pub fn name(self) -> &'static str {
        match self {
            MapFile::Uid => "uid_map",
            MapFile::Gid => "gid_map",
        }
    }
}

fn proc_file(proc: Proc, name: &str) -> String {
    match proc {
        Proc::Myself => format!("/proc/self/{name}"),
        Proc::Pid(pid) => format!("/proc/{pid}/{name}"),
    }
}

/// Writes raw `text` to `proc`'s uid_map or gid_map in one write(2), as the
/// kernel requires. The kernel's answer is returned as is (fuzzing writes
/// invalid text on purpose).
pub fn write_map_text(proc: Proc, file: MapFile, text: &str) -> Result<(), SysError> {
    write_proc(proc, file.name(), text.as_bytes()).op(Op::WriteIdMap(file.name()))
}

/// One write(2) of all of `text` (even when empty, which a `write_all`
/// would skip) to `proc`'s uid_map or gid_map, for callers that judge the
/// kernel's answer to any text (the fuzz suite). The outer error is a
/// failure to open the file; the inner result is write(2)'s: the bytes
/// written or its errno, as they came.
pub fn write_map_once(proc: Proc, file: MapFile, text: &str) -> Result<Result<usize, nix::errno::Errno>, SysError> {
    let f = OpenOptions::new().write(true).open(proc_file(proc, file.name())).op(Op::WriteIdMap(file.name()))?;
    Ok(nix::unistd::write(&f, text.as_bytes()))
}

/// Writes a validated map.
pub fn write_map(proc: Proc, file: MapFile, map: &IdMap) -> Result<(), SysError> {
    write_map_text(proc, file, &map.to_string())
}

/// Writes `deny` (or `allow`) to `proc`'s setgroups file (3.19+).
pub fn write_setgroups(proc: Proc, allow: bool) -> Result<(), SysError> {
    let text: &[u8] = if allow { b"allow" } else { b"deny" };
    write_proc(proc, "setgroups", text).op(Op::WriteIdMap("setgroups"))
}

fn write_proc(proc: Proc, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = OpenOptions::new().write(true).open(proc_file(proc, name))?;
    f.write_all(bytes)
}

/// In a process that has just entered a new user namespace: maps uid and gid
/// 0 inside to `outer_uid`/`outer_gid` (its ids before), denying setgroups
/// first as an unprivileged creator must.
pub fn map_self_as_root(outer_uid: u32, outer_gid: u32) -> Result<(), SysError> {
    write_setgroups(Proc::Myself, false)?;
    write_map(Proc::Myself, MapFile::Uid, &IdMap::single(0, outer_uid))?;
    write_map(Proc::Myself, MapFile::Gid, &IdMap::single(0, outer_gid))
}

/// Moves the calling (single-threaded) process into a fresh user namespace
/// where it is uid 0 with every capability, its uid and gid mapped to its
/// current ones: the hermetic place to set `/proc/sys/user` limits.
pub fn enter_fresh() -> Result<(), SysError> {
    let (uid, gid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
    crate::ns::unshare(Kind::User)?;
    map_self_as_root(uid, gid)
}

/// Becomes `uid`/`gid` (real, effective and saved) with no supplementary
/// groups; capabilities drop as setresuid(2) documents for a nonzero uid.
pub fn become_user(uid: u32, gid: u32) -> CaseResult {
    // setgroups fails with EPERM where setgroups is denied; then there are
    // no supplementary groups to drop.
    match setgroups(&[]) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => {}
        Err(e) => return Err(SysError::new(Op::SetId, e).into()),
    }
    let (g, u) = (Gid::from_raw(gid), Uid::from_raw(uid));
    setresgid(g, g, g).op(Op::SetId)?;
    setresuid(u, u, u).op(Op::SetId)?;
    set_dumpable_raw().op(Op::SetId)?;
    Ok(())
}

/// prctl(PR_SET_DUMPABLE, 1): after a uid change the kernel makes the
/// process non-dumpable, which hands its /proc files (uid_map, setgroups)
/// to root; a process that changed ids on purpose takes them back.
pub fn set_dumpable() -> Result<(), SysError> {
    set_dumpable_raw().op(Op::Process("prctl(PR_SET_DUMPABLE)"))
}

fn set_dumpable_raw() -> Result<(), nix::errno::Errno> {
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1 as libc::c_ulong, 0, 0, 0) };
    nix::errno::Errno::result(ret).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_maps() {
        assert_eq!(IdMap::parse("0 1000 1\n").unwrap(), IdMap::single(0, 1000));
        assert_eq!(IdMap::parse("0 100000 65536\n65536 0 1").unwrap().0.len(), 2);
        for bad in ["", "0 1000", "0 1000 0", "a b c", "0 0 1 1", "-1 0 1", "4294967295 0 2", "0 0 10\n5 100 1", "0 0 10\n100 5 1"] {
            assert!(IdMap::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(IdMap::parse("0 0 1\n0 5 1").unwrap_err().line, 2);
    }
}
