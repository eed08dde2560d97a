//! uts_namespaces(7): the hostname and the NIS domain name belong to the UTS
//! namespace (T2.uts): set inside, seen inside and by a process that joins
//! with setns(2), and nowhere else.

use harness::peer::{in_child, Spawn};
use harness::{check_eq, Case, CaseResult, Kind, NsFd, NsFlags, Privilege, Requires};

use crate::common::{in_new_ns, must_fail_with, unique};

/// The two identifiers of uts_namespaces(7).
#[derive(Debug, Clone, Copy)]
enum Field {
    /// sethostname(2), `uname().nodename`.
    Hostname,
    /// setdomainname(2), `uname().domainname`.
    Domainname,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Hostname => "hostname",
            Field::Domainname => "domainname",
        }
    }

    /// The value as uname(2) reports it to the caller.
    fn read(self) -> Result<String, harness::CaseError> {
        let u = nix::sys::utsname::uname()?;
        let v = match self {
            Field::Hostname => u.nodename(),
            Field::Domainname => u.domainname(),
        };
        Ok(v.to_string_lossy().into_owned())
    }

    /// Sets the value in the caller's UTS namespace: sethostname(2) or
    /// setdomainname(2).
    fn write(self, value: &str) -> CaseResult {
        match self {
            Field::Hostname => nix::unistd::sethostname(value)?,
            Field::Domainname => harness::ns::setdomainname(value)?,
        }
        Ok(())
    }

    fn requires(self) -> Requires {
        Requires::kinds(&[Kind::Uts]).privilege(Privilege::Admin)
    }
}

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    [Field::Hostname, Field::Domainname]
        .into_iter()
        .map(|field| {
            Case::new(
                format!("isolation.uts.{}", field.name()),
                &["T2.uts"],
                format!(
                    "the {} set in a new UTS namespace is read back there and by a setns() joiner, \
                     while the outside and a sibling new namespace keep the old one",
                    field.name()
                ),
                move || isolated(field, Kind::Uts.flag()),
            )
            .requires(field.requires())
        })
        .collect()
}

/// The uts cases run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    [Field::Hostname, Field::Domainname]
        .into_iter()
        .map(|field| {
            Case::new(
                format!("sabotage.isolation.uts.{}", field.name()),
                &["T2.uts"],
                format!("the {} is set without CLONE_NEWUTS (inside a sandbox namespace): the outside must see it change", field.name()),
                move || must_fail_with(isolated(field, NsFlags::EMPTY), "outside, after it was set inside"),
            )
            .requires(field.requires())
        })
        .collect()
}

/// `inner` is the flag the changing process is cloned with: CLONE_NEWUTS for
/// the claim, 0 when sabotaged. Everything runs in a sandbox UTS namespace
/// (the "outside"), so that even the sabotage never changes the host's.
fn isolated(field: Field, inner: NsFlags) -> CaseResult {
    let own = field.read()?;
    let value = unique(field.name());
    in_new_ns(Kind::Uts, NsFlags::EMPTY, || {
        let outside = field.read()?;
        let mut inside = Spawn::clone(inner).spawn(|ch| {
            field.write(&value)?;
            ch.send(&field.read()?)?;
            ch.wait()
        })?;
        let seen_inside: String = inside.recv()?;
        // A namespace created after the change starts from the creator's
        // values, so it sees the outside's.
        let sibling = in_new_ns(Kind::Uts, NsFlags::EMPTY, || field.read())?;
        let joined = in_child(|| {
            NsFd::open(inside.proc(), Kind::Uts)?.setns(Kind::Uts.flag())?;
            field.read()
        })?;
        let outside_after = field.read()?;
        inside.go()?;
        inside.join()?;
        check_eq!(seen_inside, value, "{} read back inside the namespace that set it", field.name());
        check_eq!(joined, value, "{} seen by a process that joined with setns(CLONE_NEWUTS)", field.name());
        check_eq!(outside_after, outside, "{} outside, after it was set inside", field.name());
        check_eq!(sibling, outside, "{} in a sibling new UTS namespace", field.name());
        Ok(())
    })?;
    check_eq!(field.read()?, own, "{} of the case's own namespace", field.name());
    Ok(())
}
