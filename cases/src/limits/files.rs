//! L1: `/proc/sys/user/max_<type>_namespaces` exists per type, reads as a
//! number, starts at INT_MAX in a new user namespace, and each file of the
//! table holds its own value.

use harness::limits;
use harness::probe::KernelVersion;
use harness::{check, check_eq, expect_errno, CaseResult, Errno, Kind};

use super::{own_userns, INT_MAX};

pub(super) fn file_reads(kind: Kind) -> CaseResult {
    let value = limits::read(kind)?;
    check!(value <= INT_MAX, "{} = {value}: above INT_MAX", limits::path(kind));
    Ok(())
}

pub(super) fn fresh_value(kind: Kind) -> CaseResult {
    own_userns()?;
    check_eq!(limits::read(kind)?, INT_MAX, "{} in a new user namespace", limits::path(kind));
    expect_errno!(limits::write(kind, INT_MAX + 1), Errno::EINVAL, "writing INT_MAX+1 to {}", limits::path(kind));
    let negative = std::fs::write(limits::path(kind), "-1");
    expect_errno!(negative, Errno::EINVAL, "writing -1 to {}", limits::path(kind));
    check_eq!(limits::read(kind)?, INT_MAX, "{} after the refused writes", limits::path(kind));
    limits::write(kind, 0)?;
    check_eq!(limits::read(kind)?, 0, "{} after writing 0", limits::path(kind));
    Ok(())
}

/// Every file of `/proc/sys/user` (the namespace limits and the inotify and
/// fanotify ones of the same table) gets its own value and must read it
/// back: a table whose entries are shifted or shared shows another value.
/// `shift` is the sabotage: each file is read back through the one that
/// many places further in name order.
pub(super) fn distinct_values(shift: usize) -> CaseResult {
    own_userns()?;
    let mut names: Vec<String> =
        std::fs::read_dir("/proc/sys/user")?.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned())).collect::<Result<_, _>>()?;
    names.sort();
    let running = KernelVersion::running();
    for info in Kind::ALL.iter().map(|k| k.info()).filter(|i| i.max_sysctl_since <= running) {
        check!(names.iter().any(|n| n == info.max_sysctl), "no /proc/sys/user/{} on Linux {running}", info.max_sysctl);
    }
    let value = |i: usize| 1000 + i as u64;
    for (i, name) in names.iter().enumerate() {
        std::fs::write(format!("/proc/sys/user/{name}"), value(i).to_string())?;
    }
    for (i, name) in names.iter().enumerate() {
        let read_through = &names[(i + shift) % names.len()];
        let text = std::fs::read_to_string(format!("/proc/sys/user/{read_through}"))?;
        check_eq!(text.trim(), value(i).to_string(), "/proc/sys/user/{name} read back after distinct writes to every file");
    }
    Ok(())
}
