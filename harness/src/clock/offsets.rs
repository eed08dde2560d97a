//! `/proc/[pid]/timens_offsets` (time_namespaces(7)): the offsets of a
//! time namespace's CLOCK_MONOTONIC and CLOCK_BOOTTIME, parsed and written.

use std::fs::{File, OpenOptions};

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::case::CaseError;
use crate::error::{Op, OpContext, SysError};
use crate::nsid::Proc;

use super::read::{Clock, Nanos, OffsetClock, NANOS_PER_SEC};

/// One offset of a time namespace: seconds (may be negative) and
/// nanoseconds (0 to 999,999,999), time_namespaces(7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offset {
    /// `<offset-secs>`.
    pub secs: i64,
    /// `<offset-nanosecs>`.
    pub nanos: i64,
}

impl Offset {
    /// No offset.
    pub const ZERO: Offset = Offset { secs: 0, nanos: 0 };

    /// The offset in nanoseconds.
    pub fn as_nanos(self) -> Nanos {
        self.secs * NANOS_PER_SEC + self.nanos
    }
}

/// The two offsets `/proc/[pid]/timens_offsets` shows: those of the
/// process's time_for_children namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offsets {
    /// The `monotonic` line.
    pub monotonic: Offset,
    /// The `boottime` line.
    pub boottime: Offset,
}

impl Offsets {
    /// Both zero (the initial time namespace).
    pub const ZERO: Offsets = Offsets { monotonic: Offset::ZERO, boottime: Offset::ZERO };

    /// The offset of `clock`.
    pub fn of(&self, clock: OffsetClock) -> Offset {
        match clock {
            OffsetClock::Monotonic => self.monotonic,
            OffsetClock::Boottime => self.boottime,
        }
    }

    /// The offset that applies to `clock` (zero for those not offset).
    pub fn for_clock(&self, clock: Clock) -> Offset {
        clock.offset_by().map_or(Offset::ZERO, |c| self.of(c))
    }

    /// The file's text for these offsets with symbolic clock names (5.7+).
    pub fn to_text(&self) -> String {
        format!("monotonic {} {}\nboottime {} {}\n", self.monotonic.secs, self.monotonic.nanos, self.boottime.secs, self.boottime.nanos)
    }

    /// The same with numeric clock ids (`1`, `7`: every kernel with time
    /// namespaces, time_namespaces(7) NOTES).
    pub fn to_numeric_text(&self) -> String {
        format!(
            "{} {} {}\n{} {} {}\n",
            OffsetClock::Monotonic.id(),
            self.monotonic.secs,
            self.monotonic.nanos,
            OffsetClock::Boottime.id(),
            self.boottime.secs,
            self.boottime.nanos
        )
    }

    /// Parses the file's text: exactly a `monotonic` and a `boottime` line
    /// of `<clock-id> <offset-secs> <offset-nanosecs>`, in that order.
    pub fn parse(text: &str) -> Result<Offsets, String> {
        let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split_whitespace().collect()).collect();
        let field = |line: &[&str], name: &str| -> Result<Offset, String> {
            match line {
                [n, s, ns] if *n == name => Ok(Offset {
                    secs: s.parse().map_err(|_| format!("{name} seconds {s:?} are not an integer"))?,
                    nanos: ns.parse().map_err(|_| format!("{name} nanoseconds {ns:?} are not an integer"))?,
                }),
                _ => Err(format!("expected a line `{name} <secs> <nanosecs>`, got {line:?}")),
            }
        };
        match lines.as_slice() {
            [m, b] => Ok(Offsets { monotonic: field(m, "monotonic")?, boottime: field(b, "boottime")? }),
            _ => Err(format!("expected two lines, got {}: {text:?}", lines.len())),
        }
    }
}

/// `/proc/<pid>/timens_offsets`.
pub fn offsets_path(proc: Proc) -> String {
    match proc {
        Proc::Myself => "/proc/self/timens_offsets".into(),
        Proc::Pid(pid) => format!("/proc/{pid}/timens_offsets"),
    }
}

/// Reads and parses `proc`'s timens_offsets; a file that does not parse
/// fails the case (its format is documented).
pub fn read_offsets(proc: Proc) -> Result<Offsets, CaseError> {
    let path = offsets_path(proc);
    let text = std::fs::read_to_string(&path)?;
    Offsets::parse(&text).map_err(|e| CaseError::fail(format!("{path}: {e}")))
}

/// `/proc/[pid]/timens_offsets` open for writing. Opening is a plain step
/// (its failure is a broken setup); each [`OffsetsFile::write`] is one
/// write(2), whose errno is the kernel's answer.
#[derive(Debug)]
pub struct OffsetsFile {
    file: File,
    path: String,
}

impl OffsetsFile {
    /// Opens `proc`'s timens_offsets write-only.
    pub fn open(proc: Proc) -> Result<OffsetsFile, SysError> {
        let path = offsets_path(proc);
        let file = OpenOptions::new().write(true).open(&path).op(Op::Plumbing("open /proc/[pid]/timens_offsets for writing"))?;
        Ok(OffsetsFile { file, path })
    }

    /// Writes `text` in one write(2) (the kernel takes records only from
    /// the start of the file, and its write handler leaves the file
    /// position there); returns the bytes written.
    pub fn write(&mut self, text: &str) -> Result<usize, Errno> {
        use std::io::Write;
        self.file.write(text.as_bytes()).map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
    }

    /// Writes `text` whole, failing the case on an error or short write.
    pub fn write_all(&mut self, text: &str) -> Result<(), CaseError> {
        let n = self.write(text)?;
        if n != text.len() {
            return Err(CaseError::fail(format!("write of {text:?} to {} wrote {n} of {} bytes", self.path, text.len())));
        }
        Ok(())
    }

    /// The path it was opened at.
    pub fn path(&self) -> &str {
        &self.path
    }
}
