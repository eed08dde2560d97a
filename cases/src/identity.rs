//! namespaces(7), "The /proc/[pid]/ns/ directory": one entry per namespace
//! (N1), identity by `st_dev` and `st_ino` (N3), link text `type:[inode]` (N4).

use std::fs;

use harness::known::PID_FOR_CHILDREN_OPENS_EARLY;
use harness::peer::{call, Spawn};
use harness::{
    check, check_eq, check_ne, note, Case, CaseResult, Errno, Kind, NsEntry, NsFd, NsFlags, NsId, NsLink, Privilege, Proc, Requires, KINDS,
};

use crate::common::{in_new_ns, must_fail, must_fail_with};

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    let mut out = vec![Case::new(
        "identity.entries.all",
        &["N1", "T1"],
        "/proc/[pid]/ns holds one link per namespace kind of this kernel, named as in the kind table",
        || entries_all(None),
    )];
    for kind in Kind::ALL {
        let req = || Requires::kinds(&[kind]);
        out.push(
            Case::new(
                format!("identity.entry.{kind}"),
                &["N1"],
                format!("/proc/[pid]/ns/{kind} of the caller and of another process is a symbolic link to an nsfs inode"),
                move || entry_is_link(kind),
            )
            .requires(req()),
        );
        out.push(
            Case::new(
                format!("identity.same_ns_same_id.{kind}"),
                &["N3"],
                format!("two processes in the same {kind} namespace have equal st_dev and st_ino"),
                move || same_ns_same_id(kind, &Spawn::fork()),
            )
            .requires(req()),
        );
        out.push(
            Case::new(
                format!("identity.new_ns_new_id.{kind}"),
                &["N3"],
                format!("a process in a new {kind} namespace has another st_ino (same nsfs st_dev); its own child shares it"),
                move || new_ns_new_id(kind, true),
            )
            .requires(req().privilege(Privilege::Admin)),
        );
        out.push(
            Case::new(
                format!("identity.link_text.{kind}"),
                &["N4"],
                format!("readlink of /proc/[pid]/ns/{kind} is {kind}:[st_ino], in the initial and in a new namespace"),
                move || link_text(kind, kind),
            )
            .requires(req().privilege(Privilege::Admin)),
        );
    }
    for kind in Kind::ALL {
        out.push(
            Case::new(
                format!("identity.nsfs_handle.{kind}"),
                &["N3"],
                format!("an nsfs file handle of /proc/self/ns/{kind} reopens the same namespace (st_dev, st_ino) (6.18)"),
                move || nsfs_handle_reopens(kind),
            )
            .requires(Requires::kinds(&[kind]).kernel(6, 18)),
        );
    }
    out.push(
        Case::new(
            "identity.mntns_id",
            &["N3"],
            "NS_GET_MNTNS_ID gives one id to a mount namespace, seen the same by every member, and another to a new one (6.11)",
            mntns_id,
        )
        .requires(Requires::kinds(&[Kind::Mnt]).kernel(6, 11).privilege(Privilege::Admin)),
    );
    for info in KINDS.iter().filter(|i| i.for_children.is_some()) {
        let kind = info.kind;
        out.push(
            Case::new(
                format!("identity.for_children.{kind}"),
                &["N4", "A3"],
                format!(
                    "{} equals {kind} until unshare; after it only {} changes, its link text matches st_ino, and the next child is in it",
                    info.for_children.unwrap_or_default(),
                    info.for_children.unwrap_or_default()
                ),
                move || for_children(kind),
            )
            .requires(Requires::kinds(&[kind]).privilege(Privilege::Admin))
            .known_deviation_if(kind == Kind::Pid, &PID_FOR_CHILDREN_OPENS_EARLY),
        );
    }
    out
}

/// The identity cases run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        out.push(
            Case::new(
                format!("sabotage.identity.entries.misnamed.{kind}"),
                &["N1"],
                format!("the entry of the {kind} namespace is looked for under a name the kernel does not use: it must be missing"),
                move || must_fail_with(entries_all(Some(kind)), &format!("/proc/self/ns/{} is missing", misnamed(kind))),
            )
            .requires(Requires::kinds(&[kind])),
        );
        let req = || Requires::kinds(&[kind]).privilege(Privilege::Admin);
        if kind.info().for_children.is_none() {
            out.push(
                Case::new(
                    format!("sabotage.identity.same_ns_same_id.{kind}"),
                    &["N3"],
                    format!("the other process unshares {kind}: equal ids must no longer be seen"),
                    move || must_fail(same_ns_same_id(kind, &Spawn::unshare(kind.flag()))),
                )
                .requires(req()),
            );
        }
        out.push(
            Case::new(
                format!("sabotage.identity.new_ns_new_id.{kind}"),
                &["N3"],
                format!("the process is not put in a new {kind} namespace: a new id must not be seen"),
                move || must_fail(new_ns_new_id(kind, false)),
            )
            .requires(req()),
        );
        let other = if kind == Kind::Uts { Kind::Ipc } else { Kind::Uts };
        out.push(
            Case::new(
                format!("sabotage.identity.link_text.{kind}"),
                &["N4"],
                format!("the link text of {kind} is expected to name {other}"),
                move || must_fail(link_text(kind, other)),
            )
            .requires(Requires::kinds(&[kind, other]).privilege(Privilege::Admin)),
        );
    }
    out
}

/// A name no `/proc/[pid]/ns` entry has: where the sabotage of
/// [`entries_all`] looks for `kind`'s entry.
fn misnamed(kind: Kind) -> String {
    format!("{}_nonexistent", kind.proc_name())
}

/// The entry names this kernel should show: every kind whose release it
/// has, plus the `*_for_children` links. `misnamed_kind` is the sabotage: that
/// kind's entry is looked for under [`misnamed`].
fn entries_all(misnamed_kind: Option<Kind>) -> CaseResult {
    let mut names: Vec<String> =
        fs::read_dir("/proc/self/ns")?.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned())).collect::<Result<_, _>>()?;
    names.sort();
    for name in &names {
        let base = name.strip_suffix("_for_children").unwrap_or(name);
        let Some(kind) = Kind::from_proc_name(base) else {
            return Err(harness::CaseError::fail(format!("unknown entry /proc/self/ns/{name}")));
        };
        check!(
            base == name || kind.info().for_children == Some(name.as_str()),
            "/proc/self/ns/{name} is not a documented *_for_children entry"
        );
        let entry = NsEntry::parse(name).ok_or_else(|| harness::CaseError::fail(format!("unknown entry /proc/self/ns/{name}")))?;
        let link = NsLink::read(Proc::Myself, entry)?.map_err(|e| harness::CaseError::fail(e.to_string()))?;
        check_eq!(link.kind(), kind, "type in the link text of /proc/self/ns/{name}");
    }
    let running = harness::probe::KernelVersion::running();
    for info in &KINDS {
        let name = if misnamed_kind == Some(info.kind) { misnamed(info.kind) } else { info.proc_name.to_string() };
        let present = names.contains(&name);
        // N1: every kind built into this kernel has its entry. Whether it is
        // built in comes from the kernel config (not from the entries
        // themselves); without a readable config the runner says so.
        if running >= info.since && harness::runner::kind_compiled_out(info.kind).is_none() {
            check!(present, "/proc/self/ns/{name} is missing, yet {} namespaces are built into this kernel", info.kind);
        }
        // A kind whose entry is present must have its *_for_children twin.
        if present {
            if let Some(fc) = info.for_children {
                check!(names.iter().any(|n| n == fc), "/proc/self/ns/{} exists but {fc} does not", info.proc_name);
            }
        }
    }
    // The mount namespace entry is always there (no config option), and no
    // entry may be of a kind newer than this kernel.
    check!(names.iter().any(|n| n == "mnt"), "/proc/self/ns has no mnt entry: {names:?}");
    for info in KINDS.iter().filter(|i| names.iter().any(|n| n == i.proc_name)) {
        check!(running >= info.since, "/proc/self/ns/{} exists on {running}, before {} introduced it", info.proc_name, info.since);
    }
    Ok(())
}

/// `NSFS_MAGIC` of `<linux/magic.h>`: the filesystem type of nsfs inodes.
const NSFS_MAGIC: i64 = 0x6e73_6673;

fn entry_is_link(kind: Kind) -> CaseResult {
    for proc in [Proc::Myself, Proc::Pid(std::process::id() as i32)] {
        let path = proc.ns_path(kind);
        let meta = fs::symlink_metadata(&path)?;
        check!(meta.file_type().is_symlink(), "{} is not a symbolic link: {:?}", path.display(), meta.file_type());
        let fd = NsFd::open_entry(proc, kind)?;
        let fs_type = nix::sys::statfs::fstatfs(&fd)?.filesystem_type().0 as i64;
        check_eq!(fs_type, NSFS_MAGIC, "filesystem type (f_type) of the inode {} leads to", path.display());
    }
    // Another process sees its own entry, leading to the same nsfs.
    let mine = NsId::current(kind)?;
    let peer = call(&Spawn::fork(), || Ok(NsId::current(kind)?))?;
    check_eq!(peer.dev, mine.dev, "st_dev of a forked child's /proc/self/ns/{kind}");
    Ok(())
}

/// `peer` is how the other process starts: a plain fork for the claim, a
/// new namespace when sabotaged.
fn same_ns_same_id(kind: Kind, peer: &Spawn) -> CaseResult {
    let mine = NsId::current(kind)?;
    let mut peer = peer.spawn(|ch| {
        ch.send(&NsId::current(kind)?)?;
        ch.wait()
    })?;
    let seen_by_peer: NsId = peer.recv()?;
    // The peer's entry seen from here, and through an open fd.
    let seen_here = NsId::of(peer.proc(), kind)?;
    let via_fd = NsFd::open(peer.proc(), kind)?.id();
    peer.go()?;
    peer.join()?;
    check_eq!(seen_by_peer, mine, "{kind} (st_dev, st_ino) of a forked child, read by the child");
    check_eq!(seen_here, mine, "{kind} (st_dev, st_ino) of a forked child, read by its parent");
    check_eq!(via_fd, mine, "fstat of an open /proc/<child>/ns/{kind}");
    Ok(())
}

/// `new` false is the sabotage: the process stays in our namespace.
fn new_ns_new_id(kind: Kind, new: bool) -> CaseResult {
    let mine = NsId::current(kind)?;
    // The process in the new namespace reports it and its own child's.
    let report = || {
        let own = NsId::current(kind)?;
        let child = call(&Spawn::fork(), || Ok(NsId::current(kind)?))?;
        Ok((own, child))
    };
    let (peer_id, grandchild_id): (NsId, NsId) = if new { in_new_ns(kind, NsFlags::EMPTY, report)? } else { call(&Spawn::fork(), report)? };
    check_eq!(peer_id.dev, mine.dev, "st_dev of a new {kind} namespace (one nsfs for all)");
    check_ne!(peer_id.ino, mine.ino, "st_ino of the {kind} namespace of a process in a new one");
    check_eq!(grandchild_id, peer_id, "{kind} namespace of a child of the process in the new namespace");
    Ok(())
}

/// `expected` is the kind whose name the link text must carry: `kind`
/// itself for the claim, another kind when sabotaged.
fn link_text(kind: Kind, expected: Kind) -> CaseResult {
    let check_proc = |proc: Proc, id: NsId| -> CaseResult {
        let path = proc.ns_path(kind);
        let link = NsLink::read(proc, kind)?.map_err(|e| harness::CaseError::fail(e.to_string()))?;
        check_eq!(link.type_name.as_str(), expected.proc_name(), "type in the link text of {}", path.display());
        check_eq!(link.ino, id.ino, "inode in the link text of {} vs st_ino", path.display());
        Ok(())
    };
    check_proc(Proc::Myself, NsId::current(kind)?)?;
    // In a new namespace, the process reads its own link.
    let inner = in_new_ns(kind, NsFlags::EMPTY, || {
        let id = NsId::current(kind)?;
        check_proc(Proc::Myself, id)?;
        Ok(id)
    })?;
    check_ne!(inner, NsId::current(kind)?, "{kind} namespace of a process in a new one");
    Ok(())
}

fn for_children(kind: Kind) -> CaseResult {
    let entry = NsEntry::children_of(kind).expect("generated for pid and time only");
    let before = (NsId::current(kind)?, NsId::for_children(Proc::Myself, kind)?);
    check_eq!(before.1, before.0, "{entry} before unshare");
    // The peer unshares, then starts its first child and reports both
    // views while that child lives.
    type Report = (NsId, NsLink, NsId, NsId, Option<NsId>);
    let (own, link, fc, child, early) = call(&Spawn::unshare(kind.flag()), || -> Result<Report, harness::CaseError> {
        let own = NsId::current(kind)?;
        // namespaces(7): pid_for_children "gains read permissions when the
        // first child process is created in the namespace": ENOENT until
        // then. Newer kernels open it at once, the known deviation
        // PID_FOR_CHILDREN_OPENS_EARLY, judged after every other check.
        // time_for_children names the new namespace at once
        // (time_namespaces(7)).
        let early = match NsId::for_children(Proc::Myself, kind) {
            Err(Errno::ENOENT) if kind == Kind::Pid => None,
            other => Some(other?),
        };
        let mut first = Spawn::fork().spawn(|ch| {
            ch.send(&NsId::current(kind)?)?;
            ch.wait()
        })?;
        let child: NsId = first.recv()?;
        let fc = NsId::for_children(Proc::Myself, kind)?;
        let link = NsLink::read(Proc::Myself, entry)?.map_err(|e| harness::CaseError::fail(e.to_string()))?;
        first.go()?;
        first.join()?;
        Ok((own, link, fc, child, early))
    })?;
    if kind == Kind::Pid {
        note("pid_for_children_before_first_child", if early.is_some() { "readable" } else { "ENOENT" });
    }
    if let Some(early) = early {
        check_eq!(early, fc, "{entry} after unshare, before the first child");
    }
    check_eq!(own, before.0, "the unsharing process's own {kind} namespace (it does not move)");
    check_ne!(fc, own, "{entry} after unshare({})", kind.info().flag_name);
    check_eq!(link.ino, fc.ino, "inode in the link text of {entry} vs st_ino");
    check_eq!(link.type_name.as_str(), kind.proc_name(), "type in the link text of {entry}");
    check_eq!(child, fc, "{kind} namespace of the first child after unshare");
    if kind == Kind::Pid && early.is_some() {
        return Err(harness::CaseError::deviation(
            &PID_FOR_CHILDREN_OPENS_EARLY,
            "it named the new namespace before any process was created in it, where namespaces(7) documents ENOENT until then",
        ));
    }
    Ok(())
}

/// A handle of a namespace the caller is in reopens without privilege.
fn nsfs_handle_reopens(kind: Kind) -> CaseResult {
    let fd = NsFd::current(kind)?;
    let handle = harness::observe::NsHandle::of(&fd)?;
    let reopened = handle.reopen()?.ok_or_else(|| harness::CaseError::fail("the handle of our own namespace does not reopen"))?;
    check_eq!(reopened, fd.id(), "(st_dev, st_ino) of the namespace reopened from its nsfs handle");
    Ok(())
}

fn mntns_id() -> CaseResult {
    let ours = NsFd::current(Kind::Mnt)?.mntns_id()?;
    let (same, other) = (
        call(&Spawn::fork(), || Ok(NsFd::current(Kind::Mnt)?.mntns_id()?))?,
        call(&Spawn::clone(Kind::Mnt.flag()), || Ok(NsFd::current(Kind::Mnt)?.mntns_id()?))?,
    );
    check_eq!(same, ours, "NS_GET_MNTNS_ID read by another member of our mount namespace");
    check_ne!(other, ours, "NS_GET_MNTNS_ID of a new mount namespace");
    Ok(())
}
