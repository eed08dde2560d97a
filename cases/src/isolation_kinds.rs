//! namespaces(7), "Namespace types": eight types, each with its CLONE_NEW*
//! flag (T1). Each flag creates a namespace of its type and of no other,
//! seen as a change of exactly that /proc/[pid]/ns entry.

use std::fs;

use harness::peer::{call, Spawn};
use harness::{check, check_eq, Case, CaseResult, Kind, NsFlags, NsId, Privilege, Proc, Requires, KINDS};

use crate::common::must_fail_with;

/// The flag values of `<linux/sched.h>`, as clone(2) and namespaces(7) list
/// them, independent of the harness's table.
const UAPI_FLAGS: [(&str, u64); 8] = [
    ("cgroup", 0x0200_0000),
    ("ipc", 0x0800_0000),
    ("net", 0x4000_0000),
    ("mnt", 0x0002_0000),
    ("pid", 0x2000_0000),
    ("user", 0x1000_0000),
    ("uts", 0x0400_0000),
    ("time", 0x0000_0080),
];

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    let mut out = vec![Case::new(
        "isolation.kinds.table",
        &["T1"],
        "there are eight namespace types with distinct CLONE_NEW* flags of the documented values, and every \
         /proc/self/ns entry of this kernel is one of them",
        table,
    )];
    for kind in Kind::ALL {
        out.push(
            Case::new(
                format!("isolation.kinds.flag.{kind}"),
                &["T1"],
                format!(
                    "{} creates a {kind} namespace and no other: a process started after unshare({}) differs from the \
                     caller in its {kind} entry only",
                    kind.info().flag_name,
                    kind.info().flag_name
                ),
                move || flag_creates(kind, kind.flag()),
            )
            .requires(Requires::kinds(&[kind]).privilege(Privilege::Admin)),
        );
    }
    out
}

/// The T1 cases run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    Kind::ALL
        .into_iter()
        .map(|kind| {
            let other = if kind == Kind::Uts { Kind::Ipc } else { Kind::Uts };
            Case::new(
                format!("sabotage.isolation.kinds.flag.{kind}"),
                &["T1"],
                format!("{} is used in place of {}: the {kind} entry must not change", other.info().flag_name, kind.info().flag_name),
                move || must_fail_with(flag_creates(kind, other.flag()), "entries that changed"),
            )
            .requires(Requires::kinds(&[kind, other]).privilege(Privilege::Admin))
        })
        .collect()
}

fn table() -> CaseResult {
    check_eq!(KINDS.len(), 8, "number of namespace types");
    for (name, flag) in UAPI_FLAGS {
        let kind = Kind::from_proc_name(name).ok_or_else(|| harness::CaseError::fail(format!("no kind named {name}")))?;
        check_eq!(kind.flag().bits(), flag, "CLONE_NEW* flag of {name}");
    }
    check_eq!(Kind::flags_of(&Kind::ALL).bits().count_ones(), 8, "distinct bits among the eight flags");
    for entry in fs::read_dir("/proc/self/ns")? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let base = name.strip_suffix("_for_children").unwrap_or(&name);
        check!(Kind::from_proc_name(base).is_some(), "/proc/self/ns/{name} names no known namespace type");
    }
    Ok(())
}

/// `flag` is `kind`'s own flag for the claim, another kind's when sabotaged.
/// The process that reports is the unsharer's child, so that pid and time
/// (which move only later children) are seen the same way as the others.
fn flag_creates(kind: Kind, flag: NsFlags) -> CaseResult {
    let before = NsId::all(Proc::Myself)?;
    let after = call(&Spawn::unshare(flag), || call(&Spawn::fork(), || Ok(NsId::all(Proc::Myself)?)))?;
    let changed: Vec<Kind> = before.iter().filter(|(k, id)| after.iter().any(|(k2, id2)| k2 == k && id2 != id)).map(|(k, _)| *k).collect();
    check_eq!(changed, vec![kind], "entries that changed for a child of a process that called unshare({:#x})", flag.bits());
    Ok(())
}
