//! Running a property inside a case body: proptest's runner with a seed
//! that can be fixed, a count that an environment variable raises, the
//! regressions of earlier runs replayed first, and a new minimal failure
//! saved for the next run.
//!
//! Regressions are kept as JSON lines (one failing input per line, already
//! shrunk) in `fuzz/proptest-regressions/<case id>.jsonl`, not as proptest
//! seeds: an input stays meaningful when the strategies change.

use std::cell::{Cell, RefCell};
use std::fmt::Debug;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use harness::{note, CaseError, CaseResult};
use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Number of generated inputs per fuzz case (sequences for the model,
/// calls for argument fuzzing), overriding each case's default.
pub const CASES_ENV: &str = "NSVERIFY_FUZZ_CASES";
/// A 64-bit seed (decimal or 0x-hex) to replay a run exactly; without it
/// each run draws a fresh seed and prints it.
pub const SEED_ENV: &str = "NSVERIFY_FUZZ_SEED";
/// Set to 0 to not write new regressions (they are written by default when
/// the regressions directory is writable).
pub const PERSIST_ENV: &str = "NSVERIFY_FUZZ_PERSIST";

/// How many inputs a fuzz case runs: [`CASES_ENV`] if set, else `default`.
pub fn case_count(default: u32) -> u32 {
    std::env::var(CASES_ENV).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

/// The seed of this run.
pub fn seed() -> u64 {
    let parse = |s: &str| match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    };
    if let Some(seed) = std::env::var(SEED_ENV).ok().and_then(|s| parse(s.trim())) {
        return seed;
    }
    let mut bytes = [0u8; 8];
    let drawn = std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    if drawn.is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        bytes = (t as u64 ^ u64::from(std::process::id())).to_le_bytes();
    }
    u64::from_le_bytes(bytes)
}

/// Where the regressions of case `id` are kept.
pub fn regressions_path(id: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("proptest-regressions").join(format!("{id}.jsonl"))
}

/// Why one input failed: a divergence from the table or model (the case
/// fails), or a harness step that could not be carried out (broken).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Failure {
    /// Broken rather than a divergence.
    pub broken: bool,
    /// What diverged, with the step.
    pub message: String,
}

impl Failure {
    /// A divergence.
    pub fn diverged(message: impl Into<String>) -> Failure {
        Failure { broken: false, message: message.into() }
    }
}

/// A harness error met while running one input: a failure of a namespace
/// operation the table did not expect is a divergence; plumbing is broken.
impl From<CaseError> for Failure {
    fn from(e: CaseError) -> Failure {
        Failure { broken: e.outcome != harness::Outcome::Fail, message: e.to_string() }
    }
}

/// Settings of one property run.
pub struct Property<'a> {
    /// The case id (names the regressions file and the notes).
    pub id: &'a str,
    /// Inputs to run unless [`CASES_ENV`] says otherwise.
    pub default_cases: u32,
    /// Whether a new minimal failure is saved (false for sabotage runs).
    pub persist: bool,
    /// Most shrinking steps.
    pub max_shrink_iters: u32,
}

/// What a property run did.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Inputs run (generated, shrinking and replayed).
    pub inputs: u64,
    /// Steps run over all inputs (calls, or operations of sequences).
    pub steps: u64,
    /// The minimal failing input, as JSON, when the run failed.
    pub minimal: Option<String>,
    /// Its failure.
    pub failure: Option<Failure>,
}

/// Runs `test` on the persisted regressions, then on generated inputs;
/// `test` returns the number of steps it ran. Returns the statistics
/// (with the minimal failing input, shrunk by proptest, if any).
pub fn run_property<T, S, F>(p: &Property<'_>, strategy: S, test: F) -> Stats
where
    T: Debug + Clone + Serialize + DeserializeOwned,
    S: Strategy<Value = T>,
    F: Fn(&T) -> Result<u64, Failure>,
{
    let started = Instant::now();
    let inputs = Cell::new(0u64);
    let steps = Cell::new(0u64);
    let run_one = |input: &T| -> Result<(), Failure> {
        inputs.set(inputs.get() + 1);
        let n = test(input)?;
        steps.set(steps.get() + n);
        Ok(())
    };
    let mut stats = Stats::default();

    // Regressions first, as they were saved.
    for (line_no, line) in std::fs::read_to_string(regressions_path(p.id)).unwrap_or_default().lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Ok(input) = serde_json::from_str::<T>(line) else {
            stats.failure = Some(Failure {
                broken: true,
                message: format!("regression line {} of {} does not parse", line_no + 1, regressions_path(p.id).display()),
            });
            return finish(p, stats, &inputs, &steps, started, None);
        };
        if let Err(f) = run_one(&input) {
            stats.minimal = Some(line.to_string());
            stats.failure = Some(Failure { broken: f.broken, message: format!("saved regression (line {}): {}", line_no + 1, f.message) });
            return finish(p, stats, &inputs, &steps, started, None);
        }
    }

    let seed = seed();
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config =
        Config { cases: case_count(p.default_cases), max_shrink_iters: p.max_shrink_iters, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes));
    let last_failure: RefCell<Option<Failure>> = RefCell::new(None);
    let result = runner.run(&strategy, |input| {
        run_one(&input).map_err(|f| {
            let msg = f.message.clone();
            *last_failure.borrow_mut() = Some(f);
            TestCaseError::fail(msg)
        })
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, minimal)) => {
            // The last failure seen is the minimal input's (proptest stops
            // shrinking on an input that fails).
            let recorded = last_failure.borrow().clone();
            let failure = match recorded {
                Some(f) if f.message == reason.message() => f,
                _ => {
                    // Re-run the minimal input for its own verdict.
                    run_one(&minimal).err().unwrap_or_else(|| Failure::diverged(reason.message().to_string()))
                }
            };
            let json = serde_json::to_string(&minimal).unwrap_or_else(|e| format!("<unencodable: {e}>"));
            if p.persist && !failure.broken {
                save_regression(p.id, &json, &failure.message);
            }
            stats.minimal = Some(json);
            stats.failure = Some(failure);
        }
        Err(TestError::Abort(why)) => {
            stats.failure = Some(Failure { broken: true, message: format!("proptest aborted: {why}") });
        }
    }
    finish(p, stats, &inputs, &steps, started, Some(seed))
}

fn finish(p: &Property<'_>, mut stats: Stats, inputs: &Cell<u64>, steps: &Cell<u64>, started: Instant, seed: Option<u64>) -> Stats {
    stats.inputs = inputs.get();
    stats.steps = steps.get();
    let secs = started.elapsed().as_secs_f64();
    note("fuzz.inputs", stats.inputs);
    note("fuzz.steps", stats.steps);
    note("fuzz.wall_s", format!("{secs:.3}"));
    if let Some(seed) = seed {
        note("fuzz.seed", format!("{seed:#x}"));
    }
    println!(
        "{}: {} inputs, {} steps in {secs:.2}s{}",
        p.id,
        stats.inputs,
        stats.steps,
        seed.map(|s| format!(" (replay with {SEED_ENV}={s:#x})")).unwrap_or_default()
    );
    stats
}

fn save_regression(id: &str, json: &str, why: &str) {
    if std::env::var(PERSIST_ENV).is_ok_and(|v| v.trim() == "0") {
        return;
    }
    let path = regressions_path(id);
    if std::fs::read_to_string(&path).unwrap_or_default().lines().any(|l| l.trim() == json) {
        return;
    }
    let file = std::fs::OpenOptions::new().create(true).append(true).open(&path);
    match file {
        Ok(mut f) => {
            let why: String = why.chars().filter(|c| *c != '\n').take(300).collect();
            let _ = writeln!(f, "# {why}\n{json}");
            println!("saved the minimal failing input to {}", path.display());
        }
        Err(e) => println!("could not save the minimal failing input to {}: {e}", path.display()),
    }
}

/// The verdict of a property run for its case: a divergence fails it
/// (with the minimal input), a broken step makes it broken.
pub fn verdict(p: &Property<'_>, stats: &Stats) -> CaseResult {
    let Some(f) = &stats.failure else {
        return Ok(());
    };
    let minimal = stats.minimal.as_deref().unwrap_or("<none>");
    let text = format!("{}: {} [minimal input: {minimal}]", p.id, f.message);
    if f.broken {
        Err(CaseError::broken(text))
    } else {
        Err(CaseError::fail(text))
    }
}
