//! clone(2) and unshare(2): CLONE_NEW* flags create namespaces for the
//! child (A1) or move the caller (A3).

use harness::flags::NsFlags;
use harness::known::CLONE3_NEWTIME_EINVAL;
use harness::peer::{call, Spawn, Via};
use harness::{check_eq, check_ne, expect_errno, Case, CaseResult, Errno, Kind, NsId, Privilege, Proc, Requires};

use crate::common::must_fail_with;

type Ids = Vec<(Kind, NsId)>;

fn id_of(ids: &Ids, kind: Kind) -> Option<NsId> {
    ids.iter().find(|(k, _)| *k == kind).map(|(_, id)| *id)
}

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        if kind.info().legacy_clone {
            out.push(
                Case::new(
                    format!("create.clone.{kind}"),
                    &["A1"],
                    format!(
                        "clone({}) starts the child in a new {kind} namespace, every other namespace shared, the parent's unchanged",
                        kind.info().flag_name
                    ),
                    move || clone_with(Via::Clone, &[kind], true),
                )
                .requires(Requires::kinds(&[kind]).privilege(Privilege::Admin)),
            );
        }
        out.push(
            Case::new(
                format!("create.clone3.{kind}"),
                &["A1"],
                format!(
                    "clone3({}) starts the child in a new {kind} namespace, every other namespace shared, the parent's unchanged",
                    kind.info().flag_name
                ),
                move || clone_with(Via::Clone3, &[kind], true),
            )
            .requires(Requires::kinds(&[kind]).kernel(5, 3).privilege(Privilege::Admin))
            .known_deviation_if(kind == Kind::Time, &CLONE3_NEWTIME_EINVAL),
        );
        out.push(
            Case::new(
                format!("create.unshare.{kind}"),
                &["A3"],
                match kind.info().for_children {
                    None => format!("unshare({}) moves the caller into a new {kind} namespace, nothing else", kind.info().flag_name),
                    Some(fc) => {
                        format!("unshare({}) leaves the caller's {kind} namespace and moves {fc} and the next child", kind.info().flag_name)
                    }
                },
                move || unshare_moves(kind, true),
            )
            .requires(Requires::kinds(&[kind]).privilege(Privilege::Admin)),
        );
    }
    for kind in Kind::ALL.into_iter().filter(|k| *k != Kind::User) {
        let via = if kind.info().legacy_clone { Via::Clone } else { Via::Clone3 };
        let name = if via == Via::Clone { "clone" } else { "clone3" };
        out.push(
            Case::new(
                format!("create.{name}.user_and.{kind}"),
                &["A1"],
                format!(
                    "{name}(CLONE_NEWUSER|{}) creates both namespaces for the child (the unprivileged container pattern)",
                    kind.info().flag_name
                ),
                move || clone_with(via, &[Kind::User, kind], true),
            )
            .requires(Requires::kinds(&[Kind::User, kind]).kernel(5, 3).privilege(Privilege::Admin))
            .known_deviation_if(kind == Kind::Time, &CLONE3_NEWTIME_EINVAL),
        );
    }
    let runtime_set: Vec<Kind> = Kind::ALL.into_iter().filter(|k| *k != Kind::Time).collect();
    let set = runtime_set.clone();
    out.push(
        Case::new(
            "create.clone.container_set",
            &["A1"],
            "clone() with every flag but CLONE_NEWTIME (a container runtime's set) creates all those namespaces at once",
            move || clone_with(Via::Clone, &set, true),
        )
        .requires(Requires::kinds(&runtime_set).privilege(Privilege::Admin)),
    );
    out
}

/// The create cases run sabotaged: the flag is left out of the call, and
/// the check that the child (or the caller) is in a new namespace must fail.
pub fn sabotaged() -> Vec<Case> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        // clone(2) where it takes the flag, else clone3(2), as the real cases.
        let (via, name, req) = if kind.info().legacy_clone {
            (Via::Clone, "clone", Requires::kinds(&[kind]))
        } else {
            (Via::Clone3, "clone3", Requires::kinds(&[kind]).kernel(5, 3))
        };
        out.push(
            Case::new(
                format!("sabotage.create.{name}.{kind}"),
                &["A1"],
                format!("{name} is called without {}: the child must be seen in the parent's {kind} namespace", kind.info().flag_name),
                move || must_fail_with(clone_with(via, &[kind], false), &format!("{kind} namespace of the child of clone(")),
            )
            .requires(req.privilege(Privilege::Admin)),
        );
        let check = match kind.info().for_children {
            None => format!("{kind} namespace of the caller after unshare("),
            Some(entry) => format!("{entry} after unshare("),
        };
        out.push(
            Case::new(
                format!("sabotage.create.unshare.{kind}"),
                &["A3"],
                format!(
                    "the caller skips unshare({}): {} must be seen unchanged",
                    kind.info().flag_name,
                    kind.info().for_children.unwrap_or(kind.proc_name())
                ),
                move || must_fail_with(unshare_moves(kind, false), &check),
            )
            .requires(Requires::kinds(&[kind]).privilege(Privilege::Admin)),
        );
    }
    out
}

/// `pass_flags` false is the sabotage: the child is started without the
/// flags, yet checked as if they had been given.
fn clone_with(via: Via, kinds: &[Kind], pass_flags: bool) -> CaseResult {
    let flags = Kind::flags_of(kinds);
    let before = NsId::all(Proc::Myself)?;
    let given = if pass_flags { flags } else { NsFlags::EMPTY };
    let child = call(&Spawn::with(via, given), || Ok(NsId::all(Proc::Myself)?));
    let child: Ids = match child {
        // clone(2) documents CLONE_NEWTIME for clone3; the kernels that
        // refused it are a known deviation scoped to their releases.
        Err(e) if via == Via::Clone3 && given.contains(NsFlags::TIME) && e.errno() == Some(Errno::EINVAL) => {
            return Err(harness::CaseError::deviation(&CLONE3_NEWTIME_EINVAL, format!("clone3({flags}) failed: {e}")));
        }
        other => other?,
    };
    let after = NsId::all(Proc::Myself)?;
    check_eq!(after, before, "the parent's namespaces after clone");
    for (kind, parent_id) in &before {
        let child_id = id_of(&child, *kind).ok_or_else(|| harness::CaseError::fail(format!("child has no /proc/self/ns/{kind}")))?;
        if kinds.contains(kind) {
            check_ne!(child_id, *parent_id, "{kind} namespace of the child of clone({flags})");
        } else {
            check_eq!(child_id, *parent_id, "{kind} namespace (not in the flags) of the child of clone({flags})");
        }
    }
    Ok(())
}

/// `call_unshare` false is the sabotage: the peer does not call unshare(2).
fn unshare_moves(kind: Kind, call_unshare: bool) -> CaseResult {
    let parent = NsId::all(Proc::Myself)?;
    // The peer reports its namespaces before and after unshare, its
    // *_for_children, and its next child's namespace of `kind`.
    type Report = (Ids, Ids, NsId, NsId);
    let (before, after, for_children, next_child): Report = call(&Spawn::fork(), || {
        let before = NsId::all(Proc::Myself)?;
        if call_unshare {
            harness::ns::unshare(kind)?;
        }
        let after = NsId::all(Proc::Myself)?;
        // pid_for_children is readable once the first child exists.
        let mut child = Spawn::fork().spawn(|ch| {
            ch.send(&NsId::current(kind)?)?;
            ch.wait()
        })?;
        let child_id: NsId = child.recv()?;
        let fc = NsId::for_children(Proc::Myself, kind)?;
        child.go()?;
        child.join()?;
        Ok((before, after, fc, child_id))
    })?;
    check_eq!(before, parent, "namespaces of a forked child before unshare");
    check_eq!(NsId::all(Proc::Myself)?, parent, "the parent's namespaces after its child's unshare");
    for (k, old) in &before {
        let new = id_of(&after, *k).ok_or_else(|| harness::CaseError::fail(format!("no /proc/self/ns/{k} after unshare")))?;
        if *k == kind && kind.info().for_children.is_none() {
            check_ne!(new, *old, "{k} namespace of the caller after unshare({})", kind.info().flag_name);
        } else {
            check_eq!(new, *old, "{k} namespace of the caller after unshare({})", kind.info().flag_name);
        }
    }
    let own = id_of(&after, kind).expect("kind required");
    if kind.info().for_children.is_some() {
        check_ne!(for_children, own, "{} after unshare({})", kind.info().for_children.unwrap_or_default(), kind.info().flag_name);
    } else {
        check_eq!(for_children, own, "a kind without *_for_children");
    }
    check_eq!(next_child, for_children, "{kind} namespace of the caller's next child");
    // A second unshare of a pid namespace is refused (pid_namespaces(7)).
    if kind == Kind::Pid {
        expect_errno!(
            call(&Spawn::unshare(kind.flag()), || {
                harness::ns::unshare(kind)?;
                Ok(())
            }),
            Errno::EINVAL,
            "a second unshare(CLONE_NEWPID) before any child"
        );
    }
    Ok(())
}
