//! ipc_namespaces(7): System V IPC objects and POSIX message queues belong
//! to the IPC namespace (T2.ipc). A POSIX message queue created inside is
//! opened and read there and by a setns(2) joiner, listed in an mqueue
//! filesystem mounted inside (mq_overview(7)), and absent outside and in a
//! sibling namespace. System V objects need shmget/semget/msgget, which no
//! safe wrapper offers yet (see the harness request in the branch notes).

use std::fs;

use harness::peer::{in_child, Spawn};
use harness::{check, check_eq, expect_errno, Case, CaseError, CaseResult, Errno, Kind, NsFd, Privilege, Requires, Setup};
use nix::mount::{mount, MsFlags};
use nix::mqueue::{mq_open, mq_receive, mq_send, MQ_OFlag, MqAttr, MqdT};
use nix::sys::stat::Mode;

use crate::common::{in_new_ns, must_fail_with, private_mounts, scratch_tmpfs, unique, SCRATCH};

/// The message sent inside and read back by the joiner.
const MESSAGE: &[u8] = b"sent inside";

fn requires() -> Requires {
    Requires::kinds(&[Kind::Ipc, Kind::Mnt]).privilege(Privilege::Admin).probe(|| {
        (!std::path::Path::new("/proc/sys/fs/mqueue").is_dir())
            .then(|| "POSIX message queues are not configured (CONFIG_POSIX_MQUEUE)".into())
    })
}

/// Every case of this topic.
pub fn cases() -> Vec<Case> {
    vec![Case::new(
        "isolation.ipc.posix_mqueue",
        &["T2.ipc"],
        "a POSIX message queue created in a new IPC namespace is listed in an mqueue filesystem mounted there and \
         read by a setns() joiner; outside and in a sibling namespace mq_open() fails with ENOENT",
        || posix_mqueue(Kind::Ipc.flag()),
    )
    .requires(requires())]
}

/// The ipc cases run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    vec![Case::new(
        "sabotage.isolation.ipc.posix_mqueue",
        &["T2.ipc"],
        "the queue is created without CLONE_NEWIPC (inside a sandbox namespace): the outside must open it",
        || must_fail_with(posix_mqueue(0), "outside"),
    )
    .requires(requires())]
}

fn open_existing(name: &str) -> Result<MqdT, Errno> {
    mq_open(name, MQ_OFlag::O_RDWR | MQ_OFlag::O_NONBLOCK, Mode::empty(), None)
}

/// Mounts an mqueue filesystem (of the caller's IPC namespace) on a new
/// directory under the scratch tmpfs and lists it.
fn mount_and_list(dir: &str) -> Result<Vec<String>, CaseError> {
    let path = format!("{SCRATCH}/{dir}");
    fs::create_dir(&path).setup("mkdir an mqueue mount point")?;
    mount(Some("mqueue"), path.as_str(), Some("mqueue"), MsFlags::empty(), None::<&str>).setup("mount mqueue")?;
    let names = fs::read_dir(&path)?.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned())).collect::<Result<_, _>>()?;
    Ok(names)
}

/// `inner`: CLONE_NEWIPC for the claim, 0 when sabotaged. Runs in a
/// sandbox IPC and mount namespace (the "outside").
fn posix_mqueue(inner: u64) -> CaseResult {
    let name = format!("/{}", unique("mq"));
    let listed = name.trim_start_matches('/').to_string();
    in_new_ns(Kind::Ipc, Kind::Mnt.flag(), || {
        private_mounts()?;
        scratch_tmpfs(&unique("scratch"))?;
        let mut inside = Spawn::unshare(inner | Kind::Mnt.flag()).spawn(|ch| {
            let attr = MqAttr::new(0, 4, 64, 0);
            let q = mq_open(
                name.as_str(),
                MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR,
                Mode::S_IRUSR | Mode::S_IWUSR,
                Some(&attr),
            )?;
            mq_send(&q, MESSAGE, 0)?;
            let reopened = open_existing(&name).map(drop);
            ch.send(&(reopened.is_ok(), mount_and_list("inside")?))?;
            ch.wait()
        })?;
        let (reopened, seen_inside): (bool, Vec<String>) = inside.recv()?;
        let joined = in_child(|| {
            NsFd::open(inside.proc(), Kind::Ipc)?.setns(Kind::Ipc.flag())?;
            let q = open_existing(&name)?;
            let mut buf = [0u8; 64];
            let n = mq_receive(&q, &mut buf, &mut 0u32)?;
            Ok(buf[..n].to_vec())
        })?;
        in_new_ns(Kind::Ipc, 0, || {
            expect_errno!(open_existing(&name), Errno::ENOENT, "mq_open({name}) in a sibling new IPC namespace");
            Ok(())
        })?;
        let outside = open_existing(&name).map(drop);
        let listed_outside = mount_and_list("outside")?;
        inside.go()?;
        inside.join()?;
        check!(reopened, "mq_open({name}) of the queue inside the namespace that created it");
        check!(seen_inside.contains(&listed), "{listed} in the mqueue filesystem mounted inside: {seen_inside:?}");
        check_eq!(joined.as_slice(), MESSAGE, "message read from {name} by a process that joined with setns(CLONE_NEWIPC)");
        expect_errno!(outside, Errno::ENOENT, "mq_open({name}) outside");
        check!(!listed_outside.contains(&listed), "{listed} in an mqueue filesystem mounted outside: {listed_outside:?}");
        Ok(())
    })?;
    expect_errno!(open_existing(&name), Errno::ENOENT, "mq_open({name}) in the case's own IPC namespace");
    Ok(())
}
