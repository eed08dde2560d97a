//! The conversation between the bench and its measuring helper: the
//! helper is forked as a harness peer ([`Helper::start`]), says how it
//! measures, then answers one request at a time over the peer channel
//! until end-of-file. Requests that need a fresh process (draining a
//! backlog, a burst) run in a child of the helper.

use harness::case::{CaseError, CaseResult};
use harness::error::{Op, OpContext};
use harness::peer::{self, Channel, Peer, Spawn};
use harness::{userns, Kind};
use serde::{Deserialize, Serialize};

use super::measure::{burst, drain, measure, Burst, Drained, Measured};
use crate::ops::Operation;
use crate::report::Privilege;

/// What went wrong talking to or inside the helper.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    /// The helper could not be started or ended badly.
    #[error("measuring helper: {0}")]
    Process(CaseError),
    /// The helper ran the request and the operation failed.
    #[error("{0}")]
    Operation(String),
}

impl From<CaseError> for HelperError {
    fn from(e: CaseError) -> Self {
        HelperError::Process(e)
    }
}

/// How to start the helper.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Options {
    /// Measure in a fresh user namespace even when root.
    pub user_namespace: bool,
    /// Pin the helper (and so every process it starts) to this CPU.
    pub cpu: Option<usize>,
}

#[derive(Debug, Serialize, Deserialize)]
enum Request {
    Measure { op: Operation, iters: u64 },
    Batches { op: Operation, iters: u64, batches: u32 },
    Drain { kinds: Vec<Kind> },
    Burst { kind: Kind, count: u64 },
}

#[derive(Debug, Serialize, Deserialize)]
enum Response {
    Measured(Measured),
    Batches(Vec<Measured>),
    Drained(Drained),
    Burst(Burst),
    Failed(String),
}

#[derive(Debug, Serialize, Deserialize)]
struct Hello {
    privilege: Privilege,
}

/// The running helper. Dropping it kills and reaps it; [`Helper::stop`]
/// ends it cleanly.
pub struct Helper {
    peer: Peer,
    privilege: Privilege,
}

impl Helper {
    /// Starts the helper: a harness peer that executes this program again
    /// ([`serve_if_asked`] answers in its `main`), so that it measures from
    /// a fresh process image, as small as the floor's, not from a forked
    /// copy of the bench (whose every mapping a clone then copies once more).
    /// Call this before anything starts a thread.
    pub fn start(options: Options) -> Result<Helper, HelperError> {
        let options_json =
            serde_json::to_string(&options).map_err(|e| HelperError::Operation(format!("encoding the helper's options: {e}")))?;
        let mut command = std::process::Command::new("/proc/self/exe");
        command.env(HELPER_ENV, options_json);
        let mut peer = Spawn::fork().spawn_exec(command).map_err(CaseError::from)?;
        let hello: Hello = peer.recv()?;
        Ok(Helper { peer, privilege: hello.privilege })
    }

    /// Whether the helper measures as root or in a fresh user namespace.
    pub fn privilege(&self) -> Privilege {
        self.privilege
    }

    fn ask(&mut self, request: &Request) -> Result<Response, HelperError> {
        self.peer.send(request)?;
        match self.peer.recv()? {
            Response::Failed(why) => Err(HelperError::Operation(why)),
            r => Ok(r),
        }
    }

    /// Runs `op` `iters` times.
    pub fn measure(&mut self, op: Operation, iters: u64) -> Result<Measured, HelperError> {
        match self.ask(&Request::Measure { op, iters })? {
            Response::Measured(m) => Ok(m),
            r => Err(HelperError::Operation(format!("unexpected answer {r:?}"))),
        }
    }

    /// The minimal loop: `batches` × `iters` runs of `op`, one time per batch.
    pub fn batches(&mut self, op: Operation, iters: u64, batches: u32) -> Result<Vec<Measured>, HelperError> {
        match self.ask(&Request::Batches { op, iters, batches })? {
            Response::Batches(m) => Ok(m),
            r => Err(HelperError::Operation(format!("unexpected answer {r:?}"))),
        }
    }

    /// Waits until namespaces of `kinds` released earlier are freed.
    pub fn drain(&mut self, kinds: &[Kind]) -> Result<Drained, HelperError> {
        match self.ask(&Request::Drain { kinds: kinds.to_vec() })? {
            Response::Drained(d) => Ok(d),
            r => Err(HelperError::Operation(format!("unexpected answer {r:?}"))),
        }
    }

    /// Creates `count` namespaces of `kind` one after another and observes
    /// the release backlog.
    pub fn burst(&mut self, kind: Kind, count: u64) -> Result<Burst, HelperError> {
        match self.ask(&Request::Burst { kind, count })? {
            Response::Burst(b) => Ok(b),
            r => Err(HelperError::Operation(format!("unexpected answer {r:?}"))),
        }
    }

    /// Ends the helper: it sees end-of-file, returns, and is reaped.
    pub fn stop(mut self) -> Result<(), HelperError> {
        self.peer.close_channel();
        Ok(self.peer.join()?)
    }
}

/// The environment variable that makes the bench executable the helper.
const HELPER_ENV: &str = "NSVERIFY_BENCH_HELPER";

/// In the bench's `main`, first: if this process was started as the helper
/// ([`Helper::start`]), serve and return the exit status; else `None`.
pub fn serve_if_asked() -> Option<std::process::ExitCode> {
    let json = std::env::var(HELPER_ENV).ok()?;
    let result = harness::peer::serve_stdio(|ch| {
        let options: Options = serde_json::from_str(&json).map_err(|e| CaseError::broken(format!("{HELPER_ENV}: {e}")))?;
        serve(ch, options)
    });
    Some(match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nsverify-bench helper: {e}");
            std::process::ExitCode::FAILURE
        }
    })
}

/// The helper's body.
fn serve(ch: &Channel, options: Options) -> CaseResult {
    if let Some(cpu) = options.cpu {
        let mut set = nix::sched::CpuSet::new();
        set.set(cpu).op(Op::Plumbing("CPU number"))?;
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).op(Op::Process("sched_setaffinity"))?;
    }
    let privilege = if options.user_namespace || !harness::probe::is_privileged() {
        userns::enter_fresh()?;
        Privilege::UserNamespace
    } else {
        Privilege::Root
    };
    ch.send(&Hello { privilege })?;
    // The parent closing the channel (end-of-file) ends the helper.
    while let Ok(request) = ch.recv::<Request>() {
        let response = match run(request) {
            Ok(r) => r,
            Err(e) => Response::Failed(e.to_string()),
        };
        ch.send(&response)?;
    }
    Ok(())
}

fn run(request: Request) -> Result<Response, CaseError> {
    Ok(match request {
        Request::Measure { op, iters } => Response::Measured(measure(op, iters)?),
        Request::Batches { op, iters, batches } => Response::Batches((0..batches).map(|_| measure(op, iters)).collect::<Result<_, _>>()?),
        Request::Drain { kinds } => {
            let mut total = Drained { ms: 0.0, complete: true };
            for kind in kinds {
                let d = peer::in_child(move || drain(kind))?;
                total = Drained { ms: total.ms + d.ms, complete: total.complete && d.complete };
            }
            Response::Drained(total)
        }
        Request::Burst { kind, count } => Response::Burst(peer::in_child(move || burst(kind, count))?),
    })
}
