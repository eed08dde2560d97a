//! nsverify's harness: the machinery that runs namespace conformance cases,
//! and the only crate with `unsafe`.
//!
//! - [`kind`], [`flags`]: the table of the eight namespace kinds
//!   (namespaces(7)), typed `CLONE_NEW*` sets ([`NsFlags`]) and
//!   `/proc/[pid]/ns` entries ([`NsEntry`]).
//! - [`nsid`]: namespace identity (`st_dev`/`st_ino`) and link text.
//! - [`nsfd`], [`userns`], [`limits`], [`probe`], [`host`], [`version`]:
//!   typed wrappers over ioctl_ns(2), id maps, `/proc/sys/user` and the
//!   running system (the one [`host::Host`]).
//! - [`peer`]: processes a case body starts in new namespaces
//!   ([`Spawn::new_ns`], the one way into a new namespace of a kind);
//!   [`ns`]: unshare(2)/setns(2) on the caller; [`poll`]: polling with a
//!   deadline; [`handle`], [`pidfd`], [`pidns`], [`mntns`], [`clock`] ...:
//!   typed calls per topic.
//! - [`raw`]: the raw-argument API (bits passed through unchecked) for the
//!   fuzz suite and invalid-argument cases. The syscall layer itself
//!   (`sys`) is private to the harness.
//! - [`case`], [`isolate`], [`runner`], [`report`], [`trace`]: case records,
//!   isolated execution, libtest-mimic runner, reports, no-trace check.

pub mod caps;
pub mod case;
pub mod clock;
pub mod error;
pub mod flags;
pub mod handle;
pub mod health;
pub mod host;
pub mod ioctl;
pub mod isolate;
pub mod kconfig;
pub mod kind;
pub mod known;
pub mod limits;
pub mod listns;
pub mod mntns;
pub mod ns;
pub mod nsfd;
pub mod nsid;
pub mod observe;
pub mod peer;
pub mod pidfd;
pub mod pidns;
pub mod poll;
pub mod probe;
pub mod raw;
pub mod report;
pub mod runner;
pub(crate) mod sys;
pub mod sysv;
pub mod trace;
pub mod userns;
pub mod version;

pub use case::{Case, CaseError, CaseResult, Outcome, Privilege, Requires, Setup};
pub use flags::NsFlags;
pub use isolate::note;
pub use kind::NsEntry;
pub use kind::{Kind, KINDS};
pub use nix::errno::Errno;
pub use nsfd::NsFd;
pub use nsid::{NsId, NsLink, Proc};
pub use peer::{Exit, Peer, Spawn, Via};
