//! `setpriv --reuid UID --regid GID --clear-groups COMMAND [ARG...]`: the
//! subset of util-linux's setpriv(1) that the guest's /init uses for the
//! unprivileged run (ci/guest/init.sh). util-linux's is dynamically linked,
//! and the guest has no shared libraries; this one is static, built for the
//! guest's target (x86_64 or aarch64 musl).
//!
//! The order follows credentials(7): groups and gid are changed while the
//! process still has CAP_SETGID (setgroups(2), setresgid(2)), the uid last
//! (setresuid(2)), then the command replaces this process (execv(3)).

#![forbid(unsafe_code)]

use std::ffi::CString;
use std::process::ExitCode;

use nix::unistd::{execv, setgroups, setresgid, setresuid, Gid, Uid};

/// What the command line asks for.
#[derive(Debug, PartialEq)]
struct Request {
    uid: u32,
    gid: u32,
    command: Vec<String>,
}

/// Parses the arguments after the program name.
fn parse(args: &[String]) -> Result<Request, String> {
    let (mut uid, mut gid, mut clear) = (None, None, false);
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let number = |v: Option<&String>| v.and_then(|v| v.parse::<u32>().ok()).ok_or(format!("{a} needs a numeric id"));
        match a.as_str() {
            "--reuid" => uid = Some(number(args.get(i + 1))?),
            "--regid" => gid = Some(number(args.get(i + 1))?),
            "--clear-groups" => clear = true,
            _ => break,
        }
        i += if a == "--clear-groups" { 1 } else { 2 };
    }
    let (Some(uid), Some(gid), true) = (uid, gid, clear) else {
        return Err("usage: setpriv --reuid UID --regid GID --clear-groups COMMAND [ARG...]".into());
    };
    let command = args[i..].to_vec();
    if command.is_empty() {
        return Err("no command given".into());
    }
    Ok(Request { uid, gid, command })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let req = match parse(&args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("setpriv: {e}");
            return ExitCode::from(2);
        }
    };
    let (uid, gid) = (Uid::from_raw(req.uid), Gid::from_raw(req.gid));
    let dropped = setgroups(&[]).map_err(|e| ("setgroups", e)).and_then(|()| setresgid(gid, gid, gid).map_err(|e| ("setresgid", e)));
    if let Err((call, e)) = dropped.and_then(|()| setresuid(uid, uid, uid).map_err(|e| ("setresuid", e))) {
        eprintln!("setpriv: {call}: {e}");
        return ExitCode::from(127);
    }
    let Ok(argv) = req.command.iter().map(|a| CString::new(a.as_bytes())).collect::<Result<Vec<_>, _>>() else {
        eprintln!("setpriv: an argument holds a NUL byte");
        return ExitCode::from(2);
    };
    let e = execv(&argv[0], &argv).unwrap_err();
    eprintln!("setpriv: execv {}: {e}", req.command[0]);
    ExitCode::from(127)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_init_scripts_command_line() {
        let r = parse(&strings(&["--reuid", "65534", "--regid", "65534", "--clear-groups", "/nsverify/cases", "--exact", "x"])).unwrap();
        assert_eq!(r, Request { uid: 65534, gid: 65534, command: strings(&["/nsverify/cases", "--exact", "x"]) });
    }

    #[test]
    fn incomplete_requests_are_refused() {
        assert!(parse(&strings(&["--reuid", "1", "--regid", "1", "/bin/sh"])).is_err(), "groups must be cleared");
        assert!(parse(&strings(&["--reuid", "x", "--regid", "1", "--clear-groups", "/bin/sh"])).is_err());
        assert!(parse(&strings(&["--reuid", "1", "--regid", "1", "--clear-groups"])).is_err());
    }
}
