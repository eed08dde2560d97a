//! L2: only CAP_SYS_RESOURCE in the owning user namespace writes a limit,
//! checked at open and at every write(2); a nested user namespace's root
//! writes its own table.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;

use harness::limits;
use harness::peer::{call, Spawn};
use harness::probe::{has_cap, Cap};
use harness::{check, check_eq, expect_errno, CaseResult, Errno, Kind, Setup};

use super::{own_userns, INT_MAX};

/// `drop_cap` false is the sabotage: the writer keeps CAP_SYS_RESOURCE.
pub(super) fn write_permission(kind: Kind, drop_cap: bool) -> CaseResult {
    own_userns()?;
    let path = limits::path(kind);
    // With CAP_SYS_RESOURCE here, the write works: the control.
    limits::write(kind, 5)?;
    call(&Spawn::fork(), || {
        let opened = OpenOptions::new().write(true).open(&path)?;
        if drop_cap {
            harness::caps::drop_capability(Cap::SYS_RESOURCE).setup("dropping CAP_SYS_RESOURCE")?;
            check!(!has_cap(Cap::SYS_RESOURCE), "CAP_SYS_RESOURCE still effective after dropping it");
        } else {
            check!(has_cap(Cap::SYS_RESOURCE), "the sabotaged writer lacks CAP_SYS_RESOURCE");
        }
        expect_errno!(OpenOptions::new().write(true).open(&path), Errno::EACCES, "opening {path} for writing without CAP_SYS_RESOURCE");
        // The permission is checked again at every write(2).
        expect_errno!(
            (&opened).write_all(b"6"),
            Errno::EPERM,
            "write(2) to {path} through an fd opened with CAP_SYS_RESOURCE, after dropping it"
        );
        Ok(())
    })?;
    check_eq!(limits::read(kind)?, 5, "{path} after the refused writes");

    // A nested user namespace's root has CAP_SYS_RESOURCE in its own
    // namespace only: it writes its own table, not ours through an fd.
    let ours = OpenOptions::new().read(true).write(true).open(&path)?;
    let (own_before, own_after, ours_seen): (u64, u64, String) = call(&Spawn::unshare(Kind::User.flag()).map_root(), || {
        check!(has_cap(Cap::SYS_RESOURCE), "no CAP_SYS_RESOURCE in the nested user namespace");
        let before = limits::read(kind)?;
        limits::write(kind, 9)?;
        let after = limits::read(kind)?;
        expect_errno!(
            (&ours).write_all(b"7"),
            Errno::EPERM,
            "write(2) by the nested root to its parent's {path} through an fd opened there"
        );
        let mut buf = [0u8; 32];
        let n = ours.read_at(&mut buf, 0)?;
        Ok((before, after, String::from_utf8_lossy(&buf[..n]).trim().to_string()))
    })?;
    check_eq!(own_before, INT_MAX, "the nested user namespace's own {path} before writing (its own table, not the parent's 5)");
    check_eq!(own_after, 9, "the nested user namespace's own {path} after its root wrote 9");
    check_eq!(ours_seen, "5", "the parent's {path} read by the nested root through the fd");
    check_eq!(limits::read(kind)?, 5, "the parent's {path} after the nested root's writes");
    Ok(())
}
