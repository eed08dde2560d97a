//! Observers of whether namespaces are alive.
//!
//! - [`LimitObserver`]: namespaces count against their creator's
//!   `/proc/sys/user/max_<kind>_namespaces` for as long as they exist
//!   (namespaces(7)). With the limit set to the number of namespaces we
//!   expect alive, one more create failing with ENOSPC means they are all
//!   alive, and a create succeeding means one was released. Works from 4.9,
//!   as any user, inside a fresh user namespace.
//! - [`NsHandle`]: nsfs file handles (6.18+): a handle taken from a namespace
//!   fd reopens with open_by_handle_at(FD_NSFS_ROOT) while the namespace
//!   lives, and fails with ESTALE or ENOENT once it is gone.
//!
//! Several kinds are released asynchronously after their last reference
//! goes (net through cleanup_net, ipc through free_ipc, pid and user after
//! RCU grace periods), so release is observed by polling with a deadline.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::case::{CaseError, CaseResult};
use crate::error::{Op, OpContext, SysError};
use crate::flags::NsFlags;
use crate::handle::FileHandle;
use crate::kind::Kind;
use crate::limits::LimitGuard;
use crate::nsid::NsId;
use crate::peer::{Peer, Spawn, Via};
use crate::poll::{poll_until, Pause};
use crate::userns;

/// Longest wait for an asynchronous release before it counts as not
/// happening (cleanup_net under load has been seen near 0.3 s), before
/// scaling.
pub const RELEASE_DEADLINE: Duration = Duration::from_secs(3);

/// [`RELEASE_DEADLINE`] scaled by `NSVERIFY_TIMEOUT_SCALE`, as every case
/// deadline is: emulated machines release slowly too.
pub fn release_deadline() -> Duration {
    crate::isolate::scaled(RELEASE_DEADLINE)
}

/// A process holding one namespace of `kind` that it created with
/// unshare(2) (for pid and time: through `*_for_children`); dropping it
/// kills the process and so drops its reference.
pub struct Holder {
    peer: Peer,
}

impl Holder {
    /// Creates and holds one namespace of `kind` with unshare(2) in a new
    /// child that keeps no inherited fd (so it pins nothing else).
    /// `Ok(Err)` carries the errno of a refused unshare (ENOSPC at the limit).
    pub fn create(kind: Kind) -> Result<Result<Holder, Errno>, CaseError> {
        Holder::spawn(&Spawn::unshare(kind).close_inherited_fds())
    }

    /// Starts a process as `spawn` says (clone, clone3 or unshare with its
    /// flags, as any user) that holds the namespaces it created until
    /// released or dropped. `Ok(Err(errno))`: the kernel refused the create
    /// itself; a failure of any other step (changing ids, plumbing) is an
    /// error, never mistaken for a refusal.
    pub fn spawn(spawn: &Spawn) -> Result<Result<Holder, Errno>, CaseError> {
        if spawn.via() != Via::Unshare {
            return match spawn.spawn(|ch| {
                ch.ready()?;
                ch.wait()
            }) {
                Ok(mut peer) => {
                    peer.wait_ready()?;
                    Ok(Ok(Holder { peer }))
                }
                Err(e) if matches!(e.op, Op::Clone(_)) => Ok(Err(e.errno)),
                Err(e) => Err(e.into()),
            };
        }
        let (flags, map_root) = (spawn.flags(), spawn.maps_root());
        let mut peer = spawn.without_unshare().spawn(move |ch| {
            let (uid, gid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
            let refused = crate::raw::unshare(flags.bits()).err().map(|e| e as i32);
            ch.send(&refused)?;
            if refused.is_none() {
                if map_root && flags.contains(NsFlags::USER) {
                    userns::map_self_as_root(uid, gid)?;
                }
                ch.ready()?;
                ch.wait()?;
            }
            Ok(())
        })?;
        match peer.recv::<Option<i32>>()? {
            None => {
                peer.wait_ready()?;
                Ok(Ok(Holder { peer }))
            }
            Some(errno) => {
                peer.join()?;
                Ok(Err(Errno::from_raw(errno)))
            }
        }
    }

    /// The holding process.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Lets the holder exit and reaps it.
    pub fn release(mut self) -> CaseResult {
        self.peer.go()?;
        self.peer.join()
    }
}

/// Watches the count of `kind` namespaces of our uid against a limit set in
/// a user namespace of ours.
pub struct LimitObserver {
    kind: Kind,
    limit: u64,
    deadline: Duration,
    holders: Vec<Holder>,
    _guard: LimitGuard,
}

impl LimitObserver {
    /// Moves the calling (single-threaded) process into a fresh user
    /// namespace, where it has CAP_SYS_RESOURCE, and sets
    /// `max_<kind>_namespaces` there to `limit`. Namespaces the case creates
    /// from now on count against it (and its ancestors' limits).
    pub fn enter(kind: Kind, limit: u64) -> Result<LimitObserver, CaseError> {
        userns::enter_fresh()
            .map_err(|e| CaseError::broken(format!("setup failed: entering a fresh user namespace for the limit observer: {e}")))?;
        LimitObserver::here(kind, limit)
    }

    /// Sets `max_<kind>_namespaces` of the caller's current user namespace
    /// to `limit` (the caller must have CAP_SYS_RESOURCE there).
    pub fn here(kind: Kind, limit: u64) -> Result<LimitObserver, CaseError> {
        let guard = LimitGuard::set(kind, limit)?;
        Ok(LimitObserver { kind, limit, deadline: release_deadline(), holders: Vec::new(), _guard: guard })
    }

    /// Changes how long [`LimitObserver::wait_released`] polls (sabotage
    /// runs, where nothing is released, need not wait the full deadline).
    pub fn with_deadline(mut self, deadline: Duration) -> LimitObserver {
        self.deadline = deadline;
        self
    }

    /// The kind observed.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The limit set.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Tries to create one more namespace and, if that works, keeps it held
    /// (so the count only grows by our own doing). `Ok(true)`: created;
    /// `Ok(false)`: ENOSPC, the count is at the limit. Any other errno is a
    /// failure.
    pub fn try_hold(&mut self) -> Result<bool, CaseError> {
        match Holder::create(self.kind)? {
            Ok(h) => {
                self.holders.push(h);
                Ok(true)
            }
            Err(Errno::ENOSPC) => Ok(false),
            Err(e) => Err(SysError::new(Op::Unshare(self.kind.flag()), e).into()),
        }
    }

    /// Fails unless one more create fails with ENOSPC now: every namespace
    /// counted is alive. `what` names them.
    #[track_caller]
    pub fn expect_full(&mut self, what: &str) -> CaseResult {
        let loc = std::panic::Location::caller();
        if self.try_hold()? {
            return Err(CaseError::at(
                crate::Outcome::Fail,
                format!(
                    "{what}: expected alive (one more {} create fails with ENOSPC at limit {}), but a create succeeded: released",
                    self.kind, self.limit
                ),
                None,
                loc,
            ));
        }
        Ok(())
    }

    /// Fails unless every create tried over `window` fails with ENOSPC: the
    /// namespaces counted stay alive for that long. Releases of one kind are
    /// not strictly in order (user namespaces are freed by work items that
    /// may run out of order), so an "alive" verdict read after a control's
    /// release holds for a while, not for one instant.
    #[track_caller]
    pub fn expect_stays_full(&mut self, what: &str, window: Duration) -> CaseResult {
        let loc = std::panic::Location::caller();
        let start = Instant::now();
        loop {
            if self.try_hold()? {
                return Err(CaseError::at(
                    crate::Outcome::Fail,
                    format!(
                        "{what}: expected alive (one more {} create fails with ENOSPC at limit {}), but a create succeeded after {:?}: released",
                        self.kind,
                        self.limit,
                        start.elapsed()
                    ),
                    None,
                    loc,
                ));
            }
            if start.elapsed() >= window {
                return Ok(());
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    }

    /// Polls until one more create succeeds (a namespace was released, its
    /// count freed), up to the deadline ([`release_deadline`] unless
    /// changed); returns how long it took.
    /// The namespace created by the successful probe stays held.
    #[track_caller]
    pub fn wait_released(&mut self, what: &str) -> Result<Duration, CaseError> {
        let loc = std::panic::Location::caller();
        let deadline = self.deadline;
        match poll_until(deadline, Pause::doubling(Duration::from_micros(50), Duration::from_millis(5)), || self.try_hold())? {
            Some(took) => Ok(took),
            None => Err(CaseError::at(
                crate::Outcome::Fail,
                format!("{what}: expected released (count of {} freed), still at limit {} after {:?}", self.kind, self.limit, deadline),
                None,
                loc,
            )),
        }
    }

    /// Releases every namespace the observer's probes hold.
    pub fn drop_holders(&mut self) -> CaseResult {
        for h in self.holders.drain(..) {
            h.release()?;
        }
        Ok(())
    }
}

/// A control namespace counted in a domain of its own: a peer in a fresh
/// user namespace (a sibling of the case's [`LimitObserver`] domain, never
/// its ancestor or descendant) holds one namespace of the kind at a limit
/// of 1 there. Releasing it and seeing the control's own count freed tells
/// exactly that the control was released: no other namespace, the
/// subject's included, is counted in that domain. Once the control is seen
/// gone, a subject whose last reference went earlier would be gone too.
///
/// Must be started before the case enters its observer's user namespace
/// (a user namespace created from inside that one would count there).
pub struct Control {
    peer: Peer,
}

impl Control {
    /// Starts the control's domain and creates the control namespace in it.
    pub fn start(kind: Kind) -> Result<Control, CaseError> {
        let mut peer = Spawn::fork().close_inherited_fds().spawn(move |ch| {
            let mut obs = LimitObserver::enter(kind, 1)?;
            let holder = Holder::create(kind)?
                .map_err(|e| CaseError::fail(format!("creating the control {kind} namespace in its own domain: {e:?}")))?;
            obs.expect_full("the control namespace, in its own counting domain")?;
            ch.ready()?;
            ch.wait()?;
            holder.release()?;
            let t = obs.wait_released("the control namespace after its last process exited")?;
            ch.send(&(t.as_nanos() as u64))?;
            obs.drop_holders()
        })?;
        peer.wait_ready()?;
        Ok(Control { peer })
    }

    /// Lets the control's last reference go and waits until its own domain
    /// sees it released; returns how long the release took.
    pub fn release(mut self) -> Result<Duration, CaseError> {
        self.peer.go()?;
        let nanos: u64 = self.peer.recv()?;
        self.peer.join()?;
        Ok(Duration::from_nanos(nanos))
    }
}

/// `FD_NSFS_ROOT` of `<linux/fcntl.h>` (6.18): the root of nsfs for
/// open_by_handle_at(2).
pub const FD_NSFS_ROOT: i32 = -10003;

/// An nsfs file handle (6.18+) of a namespace.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NsHandle {
    handle: FileHandle,
}

impl NsHandle {
    /// name_to_handle_at(fd, "", AT_EMPTY_PATH) on a namespace fd.
    pub fn of(fd: impl AsFd) -> Result<NsHandle, SysError> {
        let handle = FileHandle::of(fd).op(Op::Plumbing("name_to_handle_at on an nsfs fd"))?;
        Ok(NsHandle { handle })
    }

    /// The handle's type and bytes.
    pub fn file_handle(&self) -> &FileHandle {
        &self.handle
    }

    /// A handle from its type and bytes (for example one built from a
    /// namespace id).
    pub fn from_file_handle(handle: FileHandle) -> NsHandle {
        NsHandle { handle }
    }

    /// open_by_handle_at(FD_NSFS_ROOT, handle, flags): the raw outcome,
    /// every errno as it came.
    pub fn open_with(&self, flags: libc::c_int) -> Result<std::os::fd::OwnedFd, Errno> {
        self.handle.open_with(FD_NSFS_ROOT, flags)
    }

    /// Reopens the namespace in the calling process: `Ok(Some(id))` while it
    /// lives, `Ok(None)` once it is gone (ESTALE or ENOENT), other errnos as
    /// errors.
    pub fn reopen(&self) -> Result<Option<NsId>, SysError> {
        match self.handle.open(FD_NSFS_ROOT) {
            Ok(fd) => NsId::of_fd(&fd).map(Some).op(Op::Plumbing("fstat of a reopened nsfs handle")),
            Err(Errno::ESTALE) | Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(SysError::new(Op::Plumbing("open_by_handle_at(FD_NSFS_ROOT)"), e)),
        }
    }
}

/// The second observer: a process that reopens nsfs handles for the case.
///
/// It is started before the case moves into the limit observer's user
/// namespace and stays in the suite's own namespaces, because decoding the
/// handle of a namespace the caller is not in needs CAP_SYS_ADMIN in the
/// initial user and pid namespaces since 6.19 (nsfs_fh_to_dentry():
/// may_see_all_namespaces(); the refusal reaches the caller as ESTALE).
pub struct HandleProber {
    peer: Peer,
}

impl HandleProber {
    /// Starts the prober where nsfs handles can observe this case's
    /// namespaces: Linux 6.18 or newer and a privileged suite (effective uid
    /// 0 with CAP_SYS_ADMIN, in the initial user namespace). `Ok(None)`
    /// elsewhere: the cases then rely on the limit observer alone.
    pub fn start() -> Result<Option<HandleProber>, CaseError> {
        let usable = crate::version::KernelVersion::running() >= crate::version::KernelVersion::new(6, 18)
            && crate::probe::is_privileged()
            && crate::probe::in_initial_user_ns();
        if !usable {
            return Ok(None);
        }
        let peer = Spawn::fork().close_inherited_fds().spawn(|ch| loop {
            match ch.recv::<Option<NsHandle>>()? {
                None => return Ok(()),
                Some(h) => ch.send(&h.reopen().map_err(|e| e.errno as i32))?,
            }
        })?;
        Ok(Some(HandleProber { peer }))
    }

    /// Reopens `handle` in the prober: `Some(id)` while the namespace lives,
    /// `None` once it is gone.
    pub fn reopen(&mut self, handle: &NsHandle) -> Result<Option<NsId>, CaseError> {
        self.peer.send(&Some(handle))?;
        match self.peer.recv::<Result<Option<NsId>, i32>>()? {
            Ok(id) => Ok(id),
            Err(errno) => Err(SysError::new(Op::Plumbing("open_by_handle_at(FD_NSFS_ROOT) in the prober"), Errno::from_raw(errno)).into()),
        }
    }

    /// Polls until `handle` no longer reopens, up to `deadline`.
    #[track_caller]
    pub fn wait_gone(&mut self, handle: &NsHandle, what: &str, deadline: Duration) -> Result<Duration, CaseError> {
        let loc = std::panic::Location::caller();
        match poll_until(deadline, Pause::every(Duration::from_micros(200)), || Ok::<_, CaseError>(self.reopen(handle)?.is_none()))? {
            Some(took) => Ok(took),
            None => {
                let msg = format!("{what}: expected gone, but its nsfs file handle still reopens after {deadline:?}");
                Err(CaseError::at(crate::Outcome::Fail, msg, None, loc))
            }
        }
    }
}
