//! Model-based fuzzing of namespace operation sequences (issue 7).
//!
//! Each generated [`Scenario`] runs in a fresh driver process D (a peer of
//! the case child) inside a fresh user namespace U0, so a failing sequence
//! leaves nothing behind. D starts the agent A in a child user namespace U1
//! (the world, see [`state`]; its rules are [`rules`]), then for each operation:
//!
//! 1. resolves it against the [`Model`] into an action and its expected
//!    outcome (success, EINVAL, EPERM, ENOSPC exactly when the model's
//!    count for the creator's uid is at U1's limit ...) and has A carry it
//!    out: a different outcome is a divergence;
//! 2. compares namespace identities: any two of the processes' entries,
//!    A's fds and A's bind mounts name the same namespace exactly when the
//!    model says so (N3);
//! 3. drains the counts: for each observed kind, every namespace of the
//!    world is charged to U1's owner in U0 (L7), where D sets the limit to
//!    the model's count `t` plus the probes it holds: one more create must
//!    fail with ENOSPC at once (nothing the model holds was released), and
//!    with the limit at `t + 1` must succeed within [`DEADLINE`] (what the
//!    model released was released: async releases of net, ipc, user and
//!    pid are awaited, never assumed). The successful probe stays held.
//!
//! After the operations, a teardown (every process exits, every fd but
//! A's home fds closes, every bind mount goes) is checked the same way.

pub mod action;
pub mod ops;
pub mod rules;
pub mod state;
pub mod world;

use std::time::Duration;

use harness::observe::Holder;
use harness::peer::Spawn;
use harness::poll::{poll_until, Pause};
use harness::userns::{write_map_text, MapFile};
use harness::{Case, CaseError, CaseResult, Errno, Kind, NsEntry, NsId, Proc, Requires};

pub use action::{Action, Expect};
pub use ops::{Op, Scenario};
pub use state::{Model, NsRef, WrongRule};
use world::{AgentCmd, Probe};

use crate::run::{run_property, verdict, Failure, Property};

/// How long a release the model expects may take before it counts as not
/// happening (cleanup_net under load has been seen near 0.3 s).
pub const DEADLINE: Duration = Duration::from_secs(3);

/// Sequences per model case in the default mode.
const SEQUENCES: u32 = 24;
/// Most operations per generated sequence.
const MAX_OPS: usize = 16;
/// The limit in U0 while the world runs: high enough never to bite.
const U0_OPEN: u64 = 100_000;
/// The second uid of root runs, mapped as uid 1 in U0 and U1.
const OTHER_UID: u32 = 424_242;

/// How a model run is configured.
#[derive(Debug, Clone)]
pub struct Config {
    /// Kinds scenarios draw from.
    pub kinds: Vec<Kind>,
    /// Whether uid 1 exists (the suite runs as real root).
    pub multi_uid: bool,
    /// A deliberately wrong rule (sabotage runs).
    pub wrong: Option<WrongRule>,
    /// Release deadline.
    pub deadline: Duration,
}

/// The model cases.
pub fn cases() -> Vec<Case> {
    let n = crate::run::case_count(SEQUENCES);
    let timeout = Duration::from_secs(30 + 2 * u64::from(n));
    vec![Case::new(
        "fuzz.model.seq",
        &["N2", "N3", "F1", "F2", "F3", "F4", "F5", "F8", "L4", "L6", "L7", "A1", "A2", "A3", "P1"],
        "random sequences of spawn/unshare/setns/fd/bind/exit/limit operations: outcomes, identities and counts follow the model",
        || model_case("fuzz.model.seq", None, true),
    )
    .requires(requires())
    .timeout(timeout)]
}

fn requires() -> Requires {
    Requires::kinds(&[Kind::User, Kind::Mnt]).kernel(4, 9).user_namespaces()
}

/// The sabotage case: the model with a deliberately wrong rule must be
/// caught by a short run, and proptest must shrink the counterexample to
/// a few operations.
pub fn sabotaged() -> Vec<Case> {
    vec![Case::new(
        "sabotage.fuzz.model.close_keeps_reference",
        &["F2", "F8"],
        "with the wrong rule \"closing an fd keeps its reference\", a short model run finds and shrinks a counterexample",
        sabotage_close_keeps_reference,
    )
    .requires(Requires::kinds(&[Kind::User, Kind::Mnt, Kind::Uts]).kernel(4, 9).user_namespaces())
    .timeout(Duration::from_secs(60))]
}

fn config(kinds: Vec<Kind>, wrong: Option<WrongRule>, deadline: Duration) -> Config {
    Config { kinds, multi_uid: harness::probe::is_privileged(), wrong, deadline }
}

fn model_case(id: &str, wrong: Option<WrongRule>, persist: bool) -> CaseResult {
    let cfg = config(ops::available_kinds(), wrong, DEADLINE);
    let p = Property { id, default_cases: SEQUENCES, persist, max_shrink_iters: 400 };
    let stats = run_property(&p, ops::scenario(cfg.kinds.clone(), MAX_OPS, cfg.multi_uid), |sc| run_scenario(sc, &cfg));
    report_tally();
    verdict(&p, &stats)
}

fn sabotage_close_keeps_reference() -> CaseResult {
    let cfg = config(vec![Kind::Uts], Some(WrongRule::CloseKeepsReference), Duration::from_millis(300));
    // A search that stops at its first counterexample: up to 1000 sequences, so
    // that missing one that 1 in 40 sequences finds is vanishingly rare.
    let p = Property { id: "sabotage.fuzz.model.close_keeps_reference", default_cases: 1000, persist: false, max_shrink_iters: 400 };
    let stats = run_property(&p, ops::scenario(cfg.kinds.clone(), 8, false), |sc| run_scenario(sc, &cfg));
    let Some(f) = &stats.failure else {
        return Err(CaseError::fail(format!("the wrong rule went unnoticed in {} sequences", stats.inputs)));
    };
    if f.broken {
        return Err(CaseError::broken(format!("the sabotaged run broke: {}", f.message)));
    }
    let minimal: Scenario = serde_json::from_str(stats.minimal.as_deref().unwrap_or("null"))
        .map_err(|e| CaseError::broken(format!("minimal scenario does not parse: {e}")))?;
    println!("counterexample found after {} sequences, shrunk to {:?}: {}", stats.inputs, minimal.ops, f.message);
    harness::note("counterexample", format!("{:?}", minimal.ops));
    harness::check!(
        minimal.ops.len() <= 3,
        "the counterexample was not shrunk to a few operations: {} ops {:?}",
        minimal.ops.len(),
        minimal.ops
    );
    Ok(())
}

/// Runs one scenario in a fresh driver; the number of steps it ran, or the
/// divergence.
pub fn run_scenario(sc: &Scenario, cfg: &Config) -> Result<u64, Failure> {
    let out: Result<Result<(u64, Tally), Failure>, CaseError> = if cfg.multi_uid {
        // Root: D in a user namespace mapping uids 0 and 1 (written by us).
        (|| {
            // clone(2) without map_root: the maps are written below.
            let mut d = Spawn::clone(Kind::User).spawn(|ch| {
                ch.ready()?;
                ch.wait()?;
                ch.send(&drive(sc, cfg))
            })?;
            d.wait_ready()?;
            let pid = Proc::Pid(d.pid().as_raw());
            for file in [MapFile::Uid, MapFile::Gid] {
                write_map_text(pid, file, &format!("0 0 1\n1 {OTHER_UID} 1\n"))?;
            }
            d.go()?;
            let out = d.recv()?;
            d.join()?;
            Ok(out)
        })()
    } else {
        harness::peer::call(&Spawn::fork(), || {
            harness::userns::enter_fresh()?;
            Ok(drive(sc, cfg))
        })
    };
    let (steps, tally) = out.map_err(Failure::from)??;
    add_tally(&tally);
    Ok(steps)
}

/// D's side: probes holding counted namespaces, and the agent.
struct Driver<'a> {
    cfg: &'a Config,
    model: Model,
    agent: harness::Peer,
    probes: Vec<Holder>,
    held: std::collections::BTreeMap<Kind, u32>,
    steps: u64,
    log: Vec<String>,
    tally: Tally,
}

/// Steps run, by action and outcome ("Spawn ok", "Setns EPERM" ...).
pub type Tally = std::collections::BTreeMap<String, u64>;

thread_local! {
    /// Tally of the scenarios run by this process (the case child).
    static TALLY: std::cell::RefCell<Tally> = Default::default();
}

fn add_tally(t: &Tally) {
    TALLY.with(|all| {
        let mut all = all.borrow_mut();
        for (k, v) in t {
            *all.entry(k.clone()).or_insert(0) += v;
        }
    });
}

/// Notes and prints the tally of the scenarios run so far.
fn report_tally() {
    TALLY.with(|all| {
        let all = all.borrow();
        let text: Vec<String> = all.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        println!("steps by action and outcome: {}", text.join(", "));
        harness::note("fuzz.tally", text.join(", "));
    });
}

fn drive(sc: &Scenario, cfg: &Config) -> Result<(u64, Tally), Failure> {
    let kinds: Vec<Kind> = sc.kinds.iter().copied().filter(|k| cfg.kinds.contains(k)).collect();
    if kinds.is_empty() {
        return Ok((0, Tally::new()));
    }
    for &k in &kinds {
        harness::limits::write(k, U0_OPEN).map_err(|e| Failure { broken: true, message: format!("U0 limit: {e}") })?;
    }
    let clone3_newtime = harness::host::Host::running().clone3_newtime;
    let model = Model::new(&kinds, sc.room, clone3_newtime, cfg.wrong);
    let agent = spawn_agent(&kinds, &model, cfg.multi_uid)?;
    let mut d = Driver { cfg, model, agent, probes: Vec::new(), held: Default::default(), steps: 0, log: Vec::new(), tally: Tally::new() };
    d.check("the initial world")?;
    for (i, op) in sc.ops.iter().enumerate() {
        let Some((action, expect)) = d.model.resolve(op, cfg.multi_uid) else {
            continue;
        };
        d.step(&format!("op {i} {op:?}"), action, expect)?;
    }
    for action in d.model.teardown() {
        d.step("teardown", action, Expect::Ok)?;
    }
    Ok((d.steps, d.tally))
}

fn spawn_agent(kinds: &[Kind], model: &Model, multi_uid: bool) -> Result<harness::Peer, Failure> {
    let k = kinds.to_vec();
    let m = model.clone();
    let run = move |ch: &harness::peer::Channel| -> CaseResult {
        if multi_uid {
            ch.ready()?;
            ch.wait()?;
        }
        world::agent_main(ch, &k, &m)
    };
    // Root runs write the agent's maps below (uids 0 and 1); otherwise
    // Spawn::new_ns maps root.
    let spawn = if multi_uid { Spawn::clone(Kind::User) } else { Spawn::new_ns(Kind::User) };
    let mut agent = spawn.spawn(run).map_err(|e| Failure::from(CaseError::from(e)))?;
    if multi_uid {
        agent.wait_ready()?;
        let pid = Proc::Pid(agent.pid().as_raw());
        for file in [MapFile::Uid, MapFile::Gid] {
            write_map_text(pid, file, "0 0 1\n1 1 1\n").map_err(|e| Failure::from(CaseError::from(e)))?;
        }
        agent.go()?;
    }
    agent.wait_ready()?;
    Ok(agent)
}

impl Driver<'_> {
    fn diverged(&self, what: String) -> Failure {
        Failure::diverged(format!("{what}; steps so far: [{}]", self.log.join("; ")))
    }

    fn step(&mut self, label: &str, action: Action, expect: Expect) -> Result<(), Failure> {
        self.agent.send(&AgentCmd::Do(action.clone()))?;
        let raw: Result<(), i32> = self.agent.recv()?;
        let got = raw.map_err(Errno::from_raw);
        self.steps += 1;
        let shown = match got {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("{e:?}"),
        };
        self.log.push(format!("{label}: {action:?} -> {shown}"));
        let name = format!("{action:?}");
        let name = name.split([' ', '{']).next().unwrap_or("?");
        *self.tally.entry(format!("{name} {shown}")).or_insert(0) += 1;
        if matches!(expect, Expect::EitherErr(..) | Expect::OkOr(_)) {
            // Which branch of an admitted alternative happened.
            *self.tally.entry(format!("{name} where {expect:?} admitted: {shown}")).or_insert(0) += 1;
        }
        if !expect.admits(got) {
            return Err(self.diverged(format!("{label}: {action:?}: the model expects {expect:?}, the kernel gave {shown}")));
        }
        if got.is_ok() {
            self.model.apply(&action);
        }
        self.check(label)
    }

    /// Identities, then counts.
    fn check(&mut self, label: &str) -> Result<(), Failure> {
        self.check_identities(label)?;
        for k in self.model.kinds.clone() {
            self.drain(label, k)?;
        }
        Ok(())
    }

    fn check_identities(&mut self, label: &str) -> Result<(), Failure> {
        let mut probes: Vec<(Probe, NsRef, String)> = Vec::new();
        let fd_kinds = state::fd_kinds(&self.model.kinds);
        for (slot, p) in self.model.procs.iter().enumerate() {
            let Some(p) = p else { continue };
            for &k in &fd_kinds {
                probes.push((Probe::Proc(slot, NsEntry::own(k)), self.model.ref_of(p, k), format!("process {slot} {k}")));
                if let Some(fc) = NsEntry::children_of(k) {
                    if let Ok(r) = self.model.entry_target(p, k, true) {
                        probes.push((Probe::Proc(slot, fc), r, format!("process {slot} {fc}")));
                    }
                }
            }
        }
        for (i, r) in self.model.agent.fds.iter().enumerate() {
            probes.push((Probe::Fd(i), *r, format!("agent fd {i}")));
        }
        for (i, r) in self.model.ns[self.model.m0].binds.iter().enumerate() {
            probes.push((Probe::Bind(i), *r, format!("bind mount {i}")));
        }
        self.agent.send(&AgentCmd::Observe(probes.iter().map(|p| p.0.clone()).collect()))?;
        let ids: Vec<Option<NsId>> = self.agent.recv()?;
        for (i, (a, ra, na)) in probes.iter().enumerate() {
            let Some(ia) = ids[i] else {
                return Err(self.diverged(format!("after {label}: {na} ({a:?}) cannot be read, the model says it is {ra:?}")));
            };
            for (j, (_, rb, nb)) in probes.iter().enumerate().skip(i + 1) {
                let Some(ib) = ids[j] else { continue };
                if (ra == rb) != (ia == ib) {
                    return Err(self.diverged(format!(
                        "after {label}: {na} and {nb}: the model says {} ({ra:?}, {rb:?}), the kernel says {} ({ia}, {ib})",
                        if ra == rb { "same namespace" } else { "different namespaces" },
                        if ia == ib { "same" } else { "different" }
                    )));
                }
            }
        }
        Ok(())
    }

    /// Probes the U0 count of `kind` against the model's.
    fn drain(&mut self, label: &str, kind: Kind) -> Result<(), Failure> {
        let held = self.held.get(&kind).copied().unwrap_or(0);
        let t = u64::from(self.model.u0_count(kind) + held);
        let limit = |v: u64| harness::limits::write(kind, v).map_err(|e| Failure { broken: true, message: format!("U0 limit: {e}") });
        limit(t)?;
        if let Some(h) = self.probe(kind)? {
            self.keep(kind, h);
            limit(U0_OPEN)?;
            return Err(self.diverged(format!(
                "after {label}: the model counts {t} {kind} namespaces (with {held} probes) alive, but one more could be created: the kernel released one the model holds alive"
            )));
        }
        limit(t + 1)?;
        let deadline = self.cfg.deadline;
        let released =
            poll_until(deadline, Pause::doubling(Duration::from_micros(100), Duration::from_millis(5)), || -> Result<bool, Failure> {
                Ok(self.probe(kind)?.map(|h| self.keep(kind, h)).is_some())
            })?;
        if released.is_none() {
            limit(U0_OPEN)?;
            return Err(self.diverged(format!(
                "after {label}: the model counts {t} {kind} namespaces (with {held} probes) alive, but after {deadline:?} the kernel still counts more: a namespace the model released (or a failed call's) was not"
            )));
        }
        limit(U0_OPEN)
    }

    fn probe(&mut self, kind: Kind) -> Result<Option<Holder>, Failure> {
        match Holder::create(kind)? {
            Ok(h) => Ok(Some(h)),
            Err(Errno::ENOSPC) => Ok(None),
            Err(e) => Err(Failure { broken: true, message: format!("probe: unshare({kind}) in U0: {e:?}") }),
        }
    }

    fn keep(&mut self, kind: Kind, h: Holder) {
        self.probes.push(h);
        *self.held.entry(kind).or_insert(0) += 1;
    }
}
