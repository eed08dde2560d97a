//! Namespace identity: `st_dev`/`st_ino` of `/proc/[pid]/ns/*` (namespaces(7),
//! "The /proc/[pid]/ns/ directory"), and the `type:[inode]` link text.

use std::fmt;
use std::os::fd::AsFd;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::sys::stat::{fstat, stat};
use serde::{Deserialize, Serialize};

use crate::kind::{Kind, NsEntry};

/// The identity of a namespace: two processes are in the same namespace
/// exactly when their entries have equal `st_dev` and `st_ino` (N3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NsId {
    /// `st_dev` of the nsfs inode.
    pub dev: u64,
    /// `st_ino` of the nsfs inode.
    pub ino: u64,
}

impl fmt::Display for NsId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.dev, self.ino)
    }
}

/// A process named the way `/proc` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proc {
    /// `/proc/self`.
    Myself,
    /// `/proc/<pid>`.
    Pid(i32),
}

impl Proc {
    /// `/proc/<pid>/ns/<entry>`.
    pub fn ns_path(self, entry: impl Into<NsEntry>) -> PathBuf {
        let entry = entry.into();
        match self {
            Proc::Myself => format!("/proc/self/ns/{entry}").into(),
            Proc::Pid(pid) => format!("/proc/{pid}/ns/{entry}").into(),
        }
    }
}

impl NsId {
    /// The identity of the `/proc/[pid]/ns/<entry>` file (stat follows the
    /// magic link to the nsfs inode).
    pub fn of_entry(proc: Proc, entry: impl Into<NsEntry>) -> Result<NsId, Errno> {
        let st = stat(&proc.ns_path(entry))?;
        Ok(NsId { dev: st.st_dev, ino: st.st_ino })
    }

    /// The identity of `proc`'s namespace of `kind`.
    pub fn of(proc: Proc, kind: Kind) -> Result<NsId, Errno> {
        NsId::of_entry(proc, kind)
    }

    /// The identity of the caller's namespace of `kind`.
    pub fn current(kind: Kind) -> Result<NsId, Errno> {
        NsId::of(Proc::Myself, kind)
    }

    /// The namespace that `proc`'s later children of `kind` will be in:
    /// `pid_for_children`/`time_for_children` where the kind has one, else
    /// the kind's own entry.
    pub fn for_children(proc: Proc, kind: Kind) -> Result<NsId, Errno> {
        NsId::of_entry(proc, NsEntry::children_or_own(kind))
    }

    /// `proc`'s namespace of every kind this kernel has (entries that do not
    /// exist are left out), in table order.
    pub fn all(proc: Proc) -> Result<Vec<(Kind, NsId)>, Errno> {
        let mut out = Vec::new();
        for kind in Kind::ALL {
            match NsId::of(proc, kind) {
                Ok(id) => out.push((kind, id)),
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The identity of an open namespace file descriptor (fstat).
    pub fn of_fd(fd: impl AsFd) -> Result<NsId, Errno> {
        let st = fstat(fd)?;
        Ok(NsId { dev: st.st_dev, ino: st.st_ino })
    }
}

/// The parsed text of a `/proc/[pid]/ns/*` symbolic link: `type:[inode]` (N4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsLink {
    /// The `type` part: a kind's proc name (`pid` also for `pid_for_children`).
    pub type_name: String,
    /// The inode number in brackets.
    pub ino: u64,
}

/// Why a link text is not of the form `type:[inode]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("link text {text:?} is not of the form type:[inode]: {why}")]
pub struct LinkParseError {
    /// The offending text.
    pub text: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl NsLink {
    /// Parses `type:[inode]` strictly: a known kind name, a colon, a decimal
    /// inode in brackets, nothing else.
    pub fn parse(text: &str) -> Result<NsLink, LinkParseError> {
        let err = |why| LinkParseError { text: text.to_string(), why };
        let (type_name, rest) = text.split_once(':').ok_or_else(|| err("no colon"))?;
        if Kind::from_proc_name(type_name).is_none() {
            return Err(err("unknown namespace type"));
        }
        let digits = rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')).ok_or_else(|| err("inode not in brackets"))?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("inode is not a decimal number"));
        }
        let ino = digits.parse().map_err(|_| err("inode out of range"))?;
        Ok(NsLink { type_name: type_name.to_string(), ino })
    }

    /// Reads and parses the link `/proc/<pid>/ns/<entry>`.
    pub fn read(proc: Proc, entry: impl Into<NsEntry>) -> Result<Result<NsLink, LinkParseError>, Errno> {
        let text = nix::fcntl::readlink(&proc.ns_path(entry))?;
        Ok(NsLink::parse(&text.to_string_lossy()))
    }

    /// The kind named by the `type` part.
    pub fn kind(&self) -> Kind {
        Kind::from_proc_name(&self.type_name).expect("parse() admits only known kinds")
    }
}

impl fmt::Display for NsLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:[{}]", self.type_name, self.ino)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_link_text() {
        assert_eq!(NsLink::parse("uts:[4026531838]").unwrap(), NsLink { type_name: "uts".into(), ino: 4026531838 });
        for bad in ["uts:4026531838", "uts[1]", "foo:[1]", "uts:[]", "uts:[12a]", "uts:[1]x", "", "uts:[-1]"] {
            assert!(NsLink::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn self_entries_agree_with_stat() {
        for kind in Kind::ALL {
            let Ok(id) = NsId::current(kind) else {
                continue;
            };
            let link = NsLink::read(Proc::Myself, kind).unwrap().unwrap();
            assert_eq!(link.ino, id.ino);
            assert_eq!(link.kind(), kind);
        }
    }
}
