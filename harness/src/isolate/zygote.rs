//! The child side of isolation: the fork server (zygote) forked from
//! `main` before any thread exists, and the case child it forks, which
//! runs one body and writes its verdict.

use std::fs::File;
use std::io::IoSliceMut;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::socket::{recvmsg, send, ControlMessageOwned, MsgFlags};
use nix::unistd::Pid;

use crate::case::{Case, CaseError, CaseResult, Privilege};
use crate::sys::{self};

use super::{panic_failure, Verdict, CHILD_VERDICT_FD, NOTES, PANIC};

/// The zygote: forks a case child per request until the runner closes the
/// socket (or dies: the zygote dies with it).
pub(super) fn zygote_loop(cases: &[Case], sock: OwnedFd) -> ! {
    let _ = sys::die_with_parent();
    loop {
        let mut id = [0u8; 512];
        let mut iov = [IoSliceMut::new(&mut id)];
        let mut space = nix::cmsg_space!([RawFd; 2]);
        let (n, fds) = match recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Err(Errno::EINTR) => continue,
            Err(_) => sys::exit_now(0),
            Ok(msg) => {
                let fds: Vec<OwnedFd> = msg
                    .cmsgs()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| match c {
                        ControlMessageOwned::ScmRights(fds) => Some(fds),
                        _ => None,
                    })
                    .flatten()
                    // SAFETY: SCM_RIGHTS fds were just installed in this
                    // process by recvmsg; nothing else owns them.
                    .map(|fd| unsafe { sys::own_fd(fd) })
                    .collect();
                (msg.bytes, fds)
            }
        };
        if n == 0 {
            sys::exit_now(0);
        }
        let id = String::from_utf8_lossy(&id[..n]).into_owned();
        // SAFETY: the zygote is single-threaded (started before any thread
        // exists), so the case child may allocate.
        let forked = unsafe { sys::fork_with_flags(libc::CLONE_PARENT as u64, sys::CloneCall::Clone) };
        let reply: i64 = match (<[OwnedFd; 2]>::try_from(fds), forked) {
            (Ok([verdict, output]), Ok(None)) => case_child(cases, &id, verdict, output, sock.as_raw_fd()),
            (Ok(_), Ok(Some(pid))) => i64::from(pid.as_raw()),
            (Ok(_), Err(e)) => -(e as i64),
            (Err(_), _) => -(Errno::EBADMSG as i64),
        };
        let _ = send(sock.as_raw_fd(), &reply.to_ne_bytes(), MsgFlags::empty());
    }
}

/// Cuts `s` to at most `max` bytes at a character boundary.
fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str(" [...]");
    }
}

/// A case child, forked by the zygote as the runner's child: its own
/// process group, dying with the runner, output to `output`, the verdict
/// to `verdict`.
fn case_child(cases: &[Case], id: &str, verdict: OwnedFd, output: OwnedFd, zygote_sock: RawFd) -> ! {
    let _ = nix::unistd::close(zygote_sock);
    super::CASE_PID.store(std::process::id(), Ordering::Relaxed);
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    let _ = sys::die_with_parent();
    let null = nix::fcntl::open("/dev/null", OFlag::O_RDONLY, nix::sys::stat::Mode::empty());
    if let Ok(null) = null {
        let _ = nix::unistd::dup2_stdin(&null);
    }
    let _ = nix::unistd::dup2_stdout(&output);
    let _ = nix::unistd::dup2_stderr(&output);
    drop(output);
    CHILD_VERDICT_FD.store(verdict.as_raw_fd(), Ordering::SeqCst);
    let mut verdict = File::from(verdict);
    let result = match cases.iter().find(|c| c.id == id) {
        None => Err(CaseError::broken(format!("no case with id {id:?} in this binary"))),
        Some(case) => run_body(case),
    };
    // The runner reads the verdict after the child exits: keep it well
    // under a pipe's capacity (64 KiB) so that writing it never blocks.
    let result = result.map_err(|mut e| {
        truncate(&mut e.message, 16 * 1024);
        e
    });
    let mut notes = std::mem::take(&mut *NOTES.lock().unwrap_or_else(|e| e.into_inner()));
    notes.truncate(64);
    for (k, v) in &mut notes {
        truncate(k, 256);
        truncate(v, 256);
    }
    let encoded = serde_json::to_string(&Verdict { result, notes });
    let mut line = encoded.unwrap_or_else(|e| {
        let broken = Verdict { result: Err(CaseError::broken(format!("encoding the verdict: {e}"))), notes: Vec::new() };
        serde_json::to_string(&broken).unwrap_or_default()
    });
    line.push('\n');
    let _ = verdict.write_all(line.as_bytes());
    let _ = std::io::stdout().flush();
    sys::exit_now(0)
}

fn run_body(case: &Case) -> CaseResult {
    panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic with a non-string payload".into());
        let loc = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        *PANIC.lock().unwrap_or_else(|e| e.into_inner()) = Some((msg, loc));
    }));
    if case.requires.privilege == Privilege::Admin && !crate::probe::has_cap(crate::probe::Cap::SYS_ADMIN) {
        crate::userns::enter_fresh()
            .map_err(|e| CaseError::broken(format!("setup failed: entering a user namespace to gain CAP_SYS_ADMIN: {e}")))?;
    }
    panic::catch_unwind(AssertUnwindSafe(|| (case.body)())).unwrap_or_else(|_| Err(panic_failure()))
}
