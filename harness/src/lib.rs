//! nsverify's harness: the machinery that runs namespace conformance cases.
//!
//! - [`kind`]: the table of the eight namespace kinds (namespaces(7)).
//! - [`nsid`]: namespace identity (`st_dev`/`st_ino`) and link text.
//! - [`nsfd`], [`userns`], [`limits`], [`probe`]: typed wrappers over
//!   ioctl_ns(2), id maps, `/proc/sys/user` and the running system.
//! - [`peer`]: processes a case body starts in new namespaces.
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
