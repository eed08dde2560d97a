//! Case records, declared requirements, and the outcomes a body can give.

use std::fmt;
use std::panic::Location;
use std::time::Duration;

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::error::{HasErrno, SysError};
use crate::kind::Kind;
use crate::known::Deviation;
use crate::probe::{Cap, KernelVersion};

/// What a case body returns: `Ok(())` is a pass.
pub type CaseResult = Result<(), CaseError>;

/// The body of a case; it runs in a fresh single-threaded child process.
pub type Body = Box<dyn Fn() -> CaseResult + Send + Sync>;

/// One case: a claim checked on the running kernel.
pub struct Case {
    /// Stable id, `topic.behaviour[.kind]`: a key in every report.
    pub id: String,
    /// Claim ids from CLAIMS.md that this case verifies.
    pub claims: Vec<&'static str>,
    /// One line saying what is checked, in the man page's words.
    pub doc: String,
    /// What the kernel and environment must provide, else a skip.
    pub requires: Requires,
    /// The deadline after which the case is killed and reported broken.
    pub timeout: Duration,
    /// A documented deviation of the kernel from the man page that this
    /// case exposes: its failure at the named check is still reported as
    /// `fail`, marked with the text, and does not fail the run (like
    /// kselftest's XFAIL); any other failure fails as usual.
    pub known_deviation: Option<&'static Deviation>,
    /// The body.
    pub body: Body,
}

/// Default deadline for a case body.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

impl Case {
    /// A case with no requirements and the default deadline.
    pub fn new(
        id: impl Into<String>,
        claims: &[&'static str],
        doc: impl Into<String>,
        body: impl Fn() -> CaseResult + Send + Sync + 'static,
    ) -> Case {
        Case {
            id: id.into(),
            claims: claims.to_vec(),
            doc: doc.into(),
            requires: Requires::default(),
            timeout: DEFAULT_TIMEOUT,
            known_deviation: None,
            body: Box::new(body),
        }
    }

    /// Declares the requirements.
    pub fn requires(mut self, requires: Requires) -> Case {
        self.requires = requires;
        self
    }

    /// Marks the case as exposing a known kernel deviation of the registry
    /// ([`crate::known`]): a failure at its failing check, on a kernel where
    /// it applies, is reported as that deviation.
    pub fn known_deviation(mut self, deviation: &'static Deviation) -> Case {
        self.known_deviation = Some(deviation);
        self
    }

    /// [`Case::known_deviation`] where `applies` (a case table building
    /// the same case for several kinds, only some of which expose it).
    pub fn known_deviation_if(self, applies: bool, deviation: &'static Deviation) -> Case {
        if applies {
            self.known_deviation(deviation)
        } else {
            self
        }
    }

    /// Overrides the deadline.
    pub fn timeout(mut self, timeout: Duration) -> Case {
        self.timeout = timeout;
        self
    }
}

/// Which privilege a case body runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Privilege {
    /// Whatever the suite was started with.
    #[default]
    Any,
    /// CAP_SYS_ADMIN over the namespaces it creates: the body runs as it is
    /// when the suite has CAP_SYS_ADMIN, else the harness first moves it into
    /// a fresh user namespace with uid 0 mapped to the caller, where it has
    /// every capability (user_namespaces(7)).
    Admin,
    /// Real root: effective uid 0 with CAP_SYS_ADMIN in the initial user
    /// namespace (for example to map several uids).
    Root,
}

/// Declared requirements: a case whose requirements are unmet is skipped
/// with the reason derived from them, and only then.
#[derive(Clone, Default)]
pub struct Requires {
    /// Minimum kernel beyond what `kinds` imply.
    pub kernel: Option<KernelVersion>,
    /// Namespace kinds used: each must exist on this kernel (its release and
    /// its `/proc/self/ns` entry, absent when compiled out).
    pub kinds: Vec<Kind>,
    /// Privilege the body needs.
    pub privilege: Privilege,
    /// Capabilities the suite itself must have (for example CAP_SYS_RESOURCE
    /// to write the initial namespace's limits).
    pub caps: Vec<Cap>,
    /// The body creates a user namespace as an unprivileged uid (even when
    /// the suite is root): the environment must allow unprivileged user
    /// namespaces.
    pub user_namespaces: bool,
    /// Extra environment probe returning a reason to skip (a module that is
    /// not available, a filesystem not mounted): never a kernel behaviour.
    pub probe: Option<fn() -> Option<String>>,
}

impl Requires {
    /// No requirements.
    pub fn none() -> Requires {
        Requires::default()
    }

    /// Requires the given kinds.
    pub fn kinds(kinds: &[Kind]) -> Requires {
        Requires { kinds: kinds.to_vec(), ..Requires::default() }
    }

    /// Adds a minimum kernel.
    pub fn kernel(mut self, major: u32, minor: u32) -> Requires {
        self.kernel = Some(KernelVersion::new(major, minor));
        self
    }

    /// Sets the privilege.
    pub fn privilege(mut self, privilege: Privilege) -> Requires {
        self.privilege = privilege;
        self
    }

    /// Declares that the body creates a user namespace as an unprivileged uid.
    pub fn user_namespaces(mut self) -> Requires {
        self.user_namespaces = true;
        self
    }

    /// Adds a capability the suite must have.
    pub fn cap(mut self, cap: Cap) -> Requires {
        self.caps.push(cap);
        self
    }

    /// Adds an environment probe.
    pub fn probe(mut self, probe: fn() -> Option<String>) -> Requires {
        self.probe = Some(probe);
        self
    }
}

/// How a case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The kernel behaved as documented.
    Pass,
    /// The kernel did not behave as documented.
    Fail,
    /// Not applicable here; the reason says which requirement is unmet.
    Skip,
    /// The case could not be carried out: setup failed, deadline passed,
    /// unexpected signal. Not a verdict on the claim.
    Broken,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Skip => "skip",
            Outcome::Broken => "broken",
        })
    }
}

/// A non-pass ending of a body, with where it was decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseError {
    /// Fail, Skip or Broken (never Pass).
    pub outcome: Outcome,
    /// What happened: expected vs actual, the errno's name, the step.
    pub message: String,
    /// `file:line` where it was decided.
    pub location: String,
    /// The errno involved, if any (raw value; see [`CaseError::errno`]).
    pub errno: Option<i32>,
}

impl CaseError {
    /// A failure decided at the caller's location.
    #[track_caller]
    pub fn fail(message: impl Into<String>) -> CaseError {
        CaseError::at(Outcome::Fail, message, None, Location::caller())
    }

    /// A failure at `deviation`'s failing check, with `detail` after it: what
    /// a case returns when the kernel shows that known deviation (reported
    /// as known only where the deviation applies, strict elsewhere).
    #[track_caller]
    pub fn deviation(deviation: &Deviation, detail: impl std::fmt::Display) -> CaseError {
        CaseError::fail(format!("{}: {detail}", deviation.failing_check))
    }

    /// A broken setup decided at the caller's location.
    #[track_caller]
    pub fn broken(message: impl Into<String>) -> CaseError {
        CaseError::at(Outcome::Broken, message, None, Location::caller())
    }

    /// An error with an explicit outcome and location.
    pub fn at(outcome: Outcome, message: impl Into<String>, errno: Option<Errno>, loc: &Location<'_>) -> CaseError {
        CaseError { outcome, message: message.into(), location: format!("{}:{}", loc.file(), loc.line()), errno: errno.map(|e| e as i32) }
    }

    /// The errno involved, if any.
    pub fn errno(&self) -> Option<Errno> {
        self.errno.map(Errno::from_raw)
    }

    /// Prefixes the message with what was being done.
    pub fn context(mut self, what: impl fmt::Display) -> CaseError {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl fmt::Display for CaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.message, self.location)
    }
}

impl std::error::Error for CaseError {}

/// An errno reaching a body's `?` was not declared by it: a failure.
impl From<Errno> for CaseError {
    #[track_caller]
    fn from(errno: Errno) -> CaseError {
        CaseError::at(Outcome::Fail, format!("unexpected errno {errno:?} ({})", errno.desc()), Some(errno), Location::caller())
    }
}

/// A harness step failed: a failure when the step is the kernel behaviour
/// under test (clone, unshare, setns, ioctl_ns ...), broken otherwise.
impl From<SysError> for CaseError {
    #[track_caller]
    fn from(e: SysError) -> CaseError {
        let outcome = if e.op.is_namespace_operation() { Outcome::Fail } else { Outcome::Broken };
        let what = if outcome == Outcome::Fail { "unexpected errno" } else { "setup failed" };
        CaseError::at(outcome, format!("{what}: {e}"), Some(e.errno), Location::caller())
    }
}

/// An I/O error in a body (reading /proc, a socket): its errno was not
/// declared, so a failure.
impl From<std::io::Error> for CaseError {
    #[track_caller]
    fn from(e: std::io::Error) -> CaseError {
        let errno = e.raw_os_error().map(Errno::from_raw);
        CaseError::at(Outcome::Fail, format!("unexpected I/O error: {e}"), errno, Location::caller())
    }
}

impl HasErrno for CaseError {
    /// The errno of a failure that came from a system call (for example in
    /// a peer), or `UnknownErrno` for one that did not.
    fn errno(&self) -> Errno {
        self.errno().unwrap_or(Errno::UnknownErrno)
    }
}

/// Marks a fallible step as setup: its failure is broken, not fail.
pub trait Setup<T> {
    /// Maps an error to [`Outcome::Broken`] with `what` as context.
    fn setup(self, what: &str) -> Result<T, CaseError>;
}

impl<T, E: fmt::Display> Setup<T> for Result<T, E> {
    #[track_caller]
    fn setup(self, what: &str) -> Result<T, CaseError> {
        let loc = Location::caller();
        self.map_err(|e| CaseError::at(Outcome::Broken, format!("setup failed: {what}: {e}"), None, loc))
    }
}

/// Fails the case unless `cond` holds.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::CaseError::fail(format!($($fmt)+)));
        }
    };
}

/// Fails the case unless `actual == expected`, printing both.
#[macro_export]
macro_rules! check_eq {
    ($actual:expr, $expected:expr, $($fmt:tt)+) => {{
        let (actual, expected) = (&$actual, &$expected);
        if actual != expected {
            return Err($crate::CaseError::fail(format!(
                "{}: expected {:?}, got {:?}", format!($($fmt)+), expected, actual
            )));
        }
    }};
}

/// Fails the case if `a == b`, printing the shared value.
#[macro_export]
macro_rules! check_ne {
    ($a:expr, $b:expr, $($fmt:tt)+) => {{
        let (a, b) = (&$a, &$b);
        if a == b {
            return Err($crate::CaseError::fail(format!(
                "{}: expected different values, both are {:?}", format!($($fmt)+), a
            )));
        }
    }};
}

/// Fails the case unless `result` is an error with exactly `errno`
/// (documented outcome); a success or another errno is a failure naming both.
#[macro_export]
macro_rules! expect_errno {
    ($result:expr, $errno:expr, $($fmt:tt)+) => {{
        let expected: $crate::Errno = $errno;
        match $crate::error::errno_of($result) {
            Ok(()) => return Err($crate::CaseError::fail(format!(
                "{}: expected {:?}, but the call succeeded", format!($($fmt)+), expected
            ))),
            Err(got) if got == expected => {}
            Err(got) => return Err($crate::CaseError::fail(format!(
                "{}: expected {:?}, got {:?} ({})", format!($($fmt)+), expected, got, got.desc()
            ))),
        }
    }};
}
