//! ipc_namespaces(7): System V IPC objects and POSIX message queues belong
//! to the IPC namespace (T2.ipc). A POSIX message queue created inside is
//! opened and read there and by a setns(2) joiner, listed in an mqueue
//! filesystem mounted inside (mq_overview(7)), and absent outside and in a
//! sibling namespace. So are System V objects: a shared memory segment, a
//! semaphore set and a message queue created by key inside are found by
//! that key there and by a joiner, listed in /proc/sysvipc, and nowhere else.

use std::fs;

use harness::peer::{in_child, Spawn};
use harness::sysv::{listed_keys, SysvKind};
use harness::{check, check_eq, expect_errno, Case, CaseError, CaseResult, Errno, Kind, NsFd, NsFlags, Privilege, Requires, Setup};
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
    vec![
        Case::new(
            "isolation.ipc.sysv",
            &["T2.ipc"],
            "a System V shared memory segment, semaphore set and message queue created by key in a new IPC namespace \
             are found by key and listed in /proc/sysvipc there and for a setns() joiner; outside and in a sibling \
             namespace the key finds nothing (ENOENT)",
            || sysv(Kind::Ipc.flag()),
        )
        .requires(Requires::kinds(&[Kind::Ipc]).privilege(Privilege::Admin).probe(sysv_missing)),
        Case::new(
            "isolation.ipc.posix_mqueue",
            &["T2.ipc"],
            "a POSIX message queue created in a new IPC namespace is listed in an mqueue filesystem mounted there and \
         read by a setns() joiner; outside and in a sibling namespace mq_open() fails with ENOENT",
            || posix_mqueue(Kind::Ipc.flag()),
        )
        .requires(requires()),
    ]
}

/// The ipc cases run sabotaged: each must then fail.
pub fn sabotaged() -> Vec<Case> {
    vec![
        Case::new(
            "sabotage.isolation.ipc.sysv",
            &["T2.ipc"],
            "the objects are created without CLONE_NEWIPC (inside a sandbox namespace): the outside must find them",
            || must_fail_with(sysv(NsFlags::EMPTY), "outside"),
        )
        .requires(Requires::kinds(&[Kind::Ipc]).privilege(Privilege::Admin).probe(sysv_missing)),
        Case::new(
            "sabotage.isolation.ipc.posix_mqueue",
            &["T2.ipc"],
            "the queue is created without CLONE_NEWIPC (inside a sandbox namespace): the outside must open it",
            || must_fail_with(posix_mqueue(NsFlags::EMPTY), "outside"),
        )
        .requires(requires()),
    ]
}

fn sysv_missing() -> Option<String> {
    (!std::path::Path::new("/proc/sysvipc").is_dir()).then(|| "System V IPC is not configured (CONFIG_SYSVIPC)".into())
}

/// Per kind: (id found by key, key listed in /proc/sysvipc).
type SysvView = Vec<(Result<i32, i32>, bool)>;

fn sysv_view(key: i32) -> Result<SysvView, CaseError> {
    SysvKind::ALL.iter().map(|k| Ok((k.lookup(key).map_err(|e| e as i32), listed_keys(*k)?.contains(&key)))).collect()
}

/// `inner`: CLONE_NEWIPC for the claim, 0 when sabotaged. Runs in a sandbox
/// IPC namespace (the "outside").
fn sysv(inner: NsFlags) -> CaseResult {
    // A key unlikely to be in use anywhere, and distinct per run.
    let key = 0x6e73_0000 | (std::process::id() as i32 & 0xffff);
    let absent: SysvView = SysvKind::ALL.iter().map(|_| (Err(Errno::ENOENT as i32), false)).collect();
    let own = sysv_view(key)?;
    in_new_ns(Kind::Ipc, NsFlags::EMPTY, || {
        let mut inside = Spawn::clone(inner).spawn(|ch| {
            let ids = SysvKind::ALL.iter().map(|k| k.create(key)).collect::<Result<Vec<i32>, Errno>>()?;
            ch.send(&(ids, sysv_view(key)?))?;
            ch.wait()
        })?;
        let (ids, seen_inside): (Vec<i32>, SysvView) = inside.recv()?;
        let found: SysvView = ids.iter().map(|id| (Ok(*id), true)).collect();
        let joined = in_child(|| {
            NsFd::open(inside.proc(), Kind::Ipc)?.setns(Kind::Ipc.flag())?;
            sysv_view(key)
        })?;
        let sibling = in_new_ns(Kind::Ipc, NsFlags::EMPTY, || sysv_view(key))?;
        let outside = sysv_view(key)?;
        inside.go()?;
        inside.join()?;
        check_eq!(seen_inside, found, "shm, sem, msg of key {key:#x} (id by key, listed in /proc/sysvipc) inside");
        check_eq!(joined, found, "shm, sem, msg of key {key:#x} for a process that joined with setns(CLONE_NEWIPC)");
        check_eq!(outside, absent, "shm, sem, msg of key {key:#x} outside");
        check_eq!(sibling, absent, "shm, sem, msg of key {key:#x} in a sibling new IPC namespace");
        Ok(())
    })?;
    check_eq!(sysv_view(key)?, own, "shm, sem, msg of key {key:#x} in the case's own IPC namespace");
    Ok(())
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
fn posix_mqueue(inner: NsFlags) -> CaseResult {
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
        in_new_ns(Kind::Ipc, NsFlags::EMPTY, || {
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
