//! The runner: libtest-mimic trials built from case records, skips decided
//! from declared requirements, reports, and the no-trace check.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use libtest_mimic::{Arguments, Completion, Failed, Trial};

use crate::case::{Case, Outcome};
use crate::isolate;
use crate::probe::KernelVersion;
use crate::report::{self, Record};
use crate::trace::Snapshot;

pub use crate::host::{kind_compiled_out, Host};

/// Builds a record for a case that ended with `outcome`.
fn record(case: &Case, outcome: Outcome, reason: String, location: Option<String>, ms: f64, output: String, kernel: &str) -> Record {
    Record {
        id: case.id.clone(),
        claims: case.claims.iter().map(|c| c.to_string()).collect(),
        outcome,
        reason,
        location,
        kernel: kernel.to_string(),
        duration_ms: (ms * 1000.0).round() / 1000.0,
        known_deviation: None,
        xpass: None,
        notes: Vec::new(),
        output,
        run: None,
    }
}

/// Runs one case on this host as the runner does (requirements, then
/// isolation), returning its record.
pub fn run_case(case: &Case, host: &Host) -> Record {
    if let Some(reason) = host.unmet(&case.requires) {
        return record(case, Outcome::Skip, reason, None, 0.0, String::new(), &host.release);
    }
    let f = isolate::run_isolated(case);
    let output = if f.outcome == Outcome::Pass { String::new() } else { f.output };
    let mut r = record(case, f.outcome, f.message, f.location, f.duration.as_secs_f64() * 1000.0, output, &host.release);
    r.notes = f.notes;
    if let Some(d) = case.known_deviation {
        match r.outcome {
            Outcome::Fail if d.explains(&r.reason) => r.known_deviation = Some(d.report()),
            Outcome::Pass if d.applies.here() => r.xpass = Some(d.report()),
            _ => {}
        }
    }
    r
}

/// Refuses cases that could hide a failure: a known deviation with an empty
/// failing check (it would excuse every failure of its case).
pub fn validate_deviations(cases: &[Case]) -> Result<(), String> {
    for c in cases {
        if let Some(d) = c.known_deviation {
            d.validate().map_err(|e| format!("case {}: {e}", c.id))?;
        }
    }
    Ok(())
}

/// Checks that case ids are unique and well formed.
pub fn validate_ids(cases: &[Case]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for c in cases {
        if c.id.is_empty() || !c.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)) {
            return Err(format!("case id {:?} must be lowercase ascii, digits, '.', '_' or '-'", c.id));
        }
        if !seen.insert(c.id.as_str()) {
            return Err(format!("duplicate case id {:?}", c.id));
        }
    }
    Ok(())
}

/// Splits the command line into libtest-mimic's arguments and the name
/// filters: libtest takes several filters (`cargo test -- a b`), libtest-mimic
/// one, so the runner applies two or more itself (one goes to libtest-mimic,
/// which then counts what it filtered out).
pub fn parse_args(argv: impl IntoIterator<Item = String>) -> (Arguments, Vec<String>) {
    const TAKES_VALUE: [&str; 7] = ["--skip", "--test-threads", "--logfile", "--color", "--format", "-Z", "--shuffle-seed"];
    let mut rest = Vec::new();
    let mut filters = Vec::new();
    let mut argv = argv.into_iter();
    rest.extend(argv.next());
    while let Some(arg) = argv.next() {
        if TAKES_VALUE.contains(&arg.as_str()) {
            rest.push(arg);
            rest.extend(argv.next());
        } else if arg.starts_with('-') {
            rest.push(arg);
        } else {
            filters.push(arg);
        }
    }
    if filters.len() == 1 {
        rest.append(&mut filters);
    }
    (Arguments::from_iter(rest), filters)
}

/// Case children at once when neither `--test-threads` nor
/// `RUST_TEST_THREADS` says: two per CPU. A case mostly waits for the
/// kernel (a namespace released after an RCU grace period or by a
/// workqueue, a peer's answer), not for a CPU: on 2 CPUs the suite kept
/// them about 40% busy with one case per CPU; its 449 cases took 1.8 s
/// with four at once against 3.5 s with two.
fn default_test_threads() -> Option<usize> {
    if std::env::var_os("RUST_TEST_THREADS").is_some() {
        return None;
    }
    Some(2 * std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Environment variable that cargo nextest sets in the processes it starts:
/// `process-per-test` when every test runs in a process of its own.
pub const NEXTEST_EXECUTION_MODE_ENV: &str = "NEXTEST_EXECUTION_MODE";

/// Libtest-mimic kind (a `[known-deviation] ` prefix of the test name) of
/// a case with a known deviation expected on this kernel, under
/// [`process_per_case`]: nextest shows the name, and
/// `.config/nextest.toml` shows such cases' output at the end of a run.
pub const KNOWN_DEVIATION_KIND: &str = "known-deviation";

/// Whether this process is one of several that run the suite, one case
/// each (`cargo nextest run`). Then a case whose declared requirements this
/// host does not meet is listed as ignored (nextest counts it as skipped,
/// where a runtime skip would show as a pass), a case with a known
/// deviation expected here is listed with [`KNOWN_DEVIATION_KIND`], and the
/// reports merge ([`report::merge_requested`]).
pub fn process_per_case() -> bool {
    std::env::var(NEXTEST_EXECUTION_MODE_ENV).is_ok_and(|m| m == "process-per-test")
}

/// The `main` of a case binary named `suite`: starts the fork server that
/// case children come from, runs the trials selected by the command line
/// with libtest-mimic, writes the requested reports and checks that the run
/// left no trace. Must be called before any thread exists.
///
/// `cargo test` runs several such binaries with the same environment: the
/// suite [`report::PRIMARY_SUITE`] writes the report paths as given, every
/// other suite beside them with its name added (`r.jsonl` ->
/// `r.sabotage.jsonl`).
pub fn main(suite: &str, make_cases: impl FnOnce() -> Vec<Case>) -> ExitCode {
    // An exec probe (caps.rs) reports the image execve(2) made and exits.
    crate::caps::exec_probe_entry();
    let cases = make_cases();
    if let Err(e) = validate_ids(&cases).and_then(|()| validate_deviations(&cases)) {
        eprintln!("nsverify: {e}");
        return ExitCode::from(2);
    }
    let per_case = process_per_case();
    let run_id = per_case.then(|| std::env::var(report::NEXTEST_RUN_ID_ENV).unwrap_or_else(|_| "nextest".into()));
    let order: Vec<String> = cases.iter().map(|c| c.id.clone()).collect();
    let (mut args, filters) = parse_args(std::env::args());
    args.test_threads = args.test_threads.or_else(default_test_threads);
    let host = Arc::new(Host::running().clone());
    // Orphaned descendants of cases come back to us to be reaped.
    let _ = crate::sys::become_subreaper();
    let before = (!args.list).then(Snapshot::take);
    let health = (!args.list).then(crate::health::Health::take);
    if before.is_some() {
        if let Err(e) = isolate::start_zygote(&cases) {
            eprintln!("nsverify: cannot start the fork server for case children: {e}");
            return ExitCode::from(2);
        }
    }

    // Skips decided from declared requirements: listed as ignored under
    // nextest, and in its merged report whichever process writes first.
    let listed: Vec<Record> = cases
        .iter()
        .filter(|_| per_case)
        .filter_map(|c| Some(record(c, Outcome::Skip, host.unmet(&c.requires)?, None, 0.0, String::new(), &host.release)))
        .collect();
    let records: Arc<Mutex<Vec<(usize, Record)>>> = Arc::default();
    let matches = |id: &str| filters.is_empty() || filters.iter().any(|f| if args.exact { id == f } else { id.contains(f.as_str()) });
    let cases: Vec<Arc<Case>> = cases.into_iter().filter(|c| matches(&c.id)).map(Arc::new).collect();
    let trials = cases
        .iter()
        .enumerate()
        .map(|(index, case)| {
            let id = case.id.clone();
            let listed_skip = listed.iter().any(|r| r.id == id);
            let deviation_here = per_case && !listed_skip && case.known_deviation.is_some_and(|d| d.applies.here());
            let (case, host, records) = (Arc::clone(case), Arc::clone(&host), Arc::clone(&records));
            let trial = Trial::ignorable_test(id, move || {
                let r = run_case(&case, &host);
                let result = match r.outcome {
                    Outcome::Pass => Ok(Completion::Completed),
                    Outcome::Skip => Ok(Completion::ignored_with(&r.reason)),
                    Outcome::Fail if r.known_deviation.is_some() => {
                        let why = if per_case { format!(" [{}]", r.known_deviation.as_deref().unwrap_or_default()) } else { String::new() };
                        Ok(Completion::ignored_with(format!("KNOWN DEVIATION, fails as expected: {}{why}", r.reason)))
                    }
                    Outcome::Fail | Outcome::Broken => {
                        let at = r.location.as_deref().map(|l| format!(" at {l}")).unwrap_or_default();
                        let out = if r.output.is_empty() { String::new() } else { format!("\n--- case output ---\n{}", r.output) };
                        let claims = case.claims.join(", ");
                        Err(Failed::from(format!(
                            "{}: {}{at} [claims {claims}: {}]{out}",
                            r.outcome.to_string().to_uppercase(),
                            r.reason,
                            case.doc
                        )))
                    }
                };
                records.lock().unwrap_or_else(|e| e.into_inner()).push((index, r));
                result
            })
            .with_ignored_flag(listed_skip);
            if deviation_here {
                trial.with_kind(KNOWN_DEVIATION_KIND)
            } else {
                trial
            }
        })
        .collect();

    let started = Instant::now();
    let conclusion = libtest_mimic::run(&args, trials);
    let Some(before) = before else {
        return ExitCode::SUCCESS;
    };

    let mut records: Vec<(usize, Record)> = std::mem::take(&mut *records.lock().unwrap_or_else(|e| e.into_inner()));
    records.sort_by_key(|(i, _)| *i);
    let mut records: Vec<Record> = records.into_iter().map(|(_, r)| r).collect();

    isolate::stop_zygote();
    let after = Snapshot::take();
    let differences = after.differences(&before);
    if !differences.is_empty() {
        eprintln!("nsverify: the run left a trace:");
        for d in &differences {
            eprintln!("  {d}");
        }
    }
    let outcome = if differences.is_empty() { Outcome::Pass } else { Outcome::Fail };
    let no_trace = Record {
        id: "harness.no_trace".into(),
        claims: vec![],
        outcome,
        reason: differences.join("; "),
        location: None,
        kernel: host.release.clone(),
        duration_ms: 0.0,
        known_deviation: None,
        xpass: None,
        notes: Vec::new(),
        output: String::new(),
        run: None,
    };
    records.push(no_trace);
    let findings = health.map(crate::health::Health::findings).unwrap_or_default();
    records.push(kernel_health(&findings, &host.release));
    print_summary(&records, &host, started.elapsed().as_secs_f64());
    let mut failed = conclusion.has_failed() || !differences.is_empty() || findings.failed();
    let written = match &run_id {
        None => report::write_requested(&records, &host.release, suite),
        Some(run) => {
            let mut listed = listed;
            for r in records.iter_mut().chain(&mut listed) {
                r.run = Some(run.clone());
            }
            let share = report::Share { run, ran: &records, listed: &listed, order: &order };
            report::merge_requested(share, &host.release, suite)
        }
    };
    match written {
        Ok(paths) => {
            for p in paths {
                println!("nsverify: wrote {}", p.display());
            }
        }
        Err(e) => {
            eprintln!("nsverify: could not write a report: {e}");
            failed = true;
        }
    }
    if failed {
        ExitCode::from(101)
    } else {
        ExitCode::SUCCESS
    }
}

/// The `harness.kernel_health` record (claim K1): fails on new taint
/// flags or new kernel-log reports during the run; a kernel tainted before
/// it, or a log that cannot be read, is noted.
fn kernel_health(f: &crate::health::Findings, kernel: &str) -> Record {
    let mut notes = Vec::new();
    if let Some(t) = f.tainted_before {
        notes.push(("tainted_before_run".to_string(), t.to_string()));
    }
    if let Some(why) = &f.log_unreadable {
        notes.push(("kernel_log_not_scanned".to_string(), why.clone()));
    }
    let mut reason = Vec::new();
    if let Some(t) = f.new_taint {
        reason.push(format!("the kernel became tainted during the run (new flags {t:#x} in /proc/sys/kernel/tainted)"));
    }
    if !f.reports.is_empty() {
        reason.push(format!("the kernel log reported trouble during the run: {}", f.reports.join(" | ")));
    }
    Record {
        id: "harness.kernel_health".into(),
        claims: vec!["K1".into()],
        outcome: if f.failed() { Outcome::Fail } else { Outcome::Pass },
        reason: reason.join("; "),
        location: None,
        kernel: kernel.to_string(),
        duration_ms: 0.0,
        known_deviation: None,
        xpass: None,
        notes,
        output: String::new(),
        run: None,
    }
}

fn print_summary(records: &[Record], host: &Host, secs: f64) {
    let count = |o: Outcome| records.iter().filter(|r| r.outcome == o).count();
    let known = records.iter().filter(|r| r.known_deviation.is_some()).count();
    let known = if known > 0 { format!(" ({known} of them known kernel deviations)") } else { String::new() };
    let xpass = records.iter().filter(|r| r.xpass.is_some()).count();
    let xpass = if xpass > 0 { format!(" ({xpass} of them xpass: a known deviation did not happen)") } else { String::new() };
    println!(
        "nsverify on Linux {} ({}): {} pass{xpass}, {} fail{known}, {} skip, {} broken in {secs:.2}s",
        host.release,
        if host.privileged { "root" } else { "unprivileged" },
        count(Outcome::Pass),
        count(Outcome::Fail),
        count(Outcome::Skip),
        count(Outcome::Broken)
    );
    let mut reasons: Vec<(&str, usize)> = Vec::new();
    for r in records.iter().filter(|r| r.outcome == Outcome::Skip) {
        match reasons.iter_mut().find(|(x, _)| *x == r.reason) {
            Some((_, n)) => *n += 1,
            None => reasons.push((&r.reason, 1)),
        }
    }
    for (reason, n) in reasons {
        println!("  skipped {n}: {reason}");
    }
    if KernelVersion::parse(&host.release) != Some(host.kernel) {
        println!("  upstream release {} (from uname -v or /proc/version_signature): kernel ranges compare against it", host.kernel);
    }
    match crate::kconfig::KernelConfig::running() {
        Some(c) => println!("  namespace kinds built in: from {}", c.source()),
        None => println!(
            "  namespace kinds built in: NOTE no kernel config is readable (/proc/config.gz, /boot/config-{}, ${}), so a missing /proc/self/ns entry counts as compiled out",
            host.release,
            crate::kconfig::CONFIG_ENV
        ),
    }
    for r in records.iter().filter(|r| r.xpass.is_some()) {
        println!("  XPASS {}: a known deviation expected here did not happen: {}", r.id, r.xpass.as_deref().unwrap_or_default());
    }
    for r in records.iter().filter(|r| matches!(r.outcome, Outcome::Fail | Outcome::Broken)) {
        let label = if r.known_deviation.is_some() { "KNOWN DEVIATION".to_string() } else { r.outcome.to_string().to_uppercase() };
        println!("  {label} {}: {}", r.id, r.reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> (Arguments, Vec<String>) {
        parse_args(std::iter::once("bin").chain(args.iter().copied()).map(String::from))
    }

    #[test]
    fn one_filter_goes_to_libtest_mimic_several_stay_ours() {
        let (args, filters) = parse(&["identity."]);
        assert_eq!((args.filter.as_deref(), filters.len()), (Some("identity."), 0));
        let (args, filters) = parse(&["--skip", "net", "a", "--test-threads", "1", "b", "--exact"]);
        assert_eq!(args.filter, None);
        assert_eq!(filters, ["a", "b"]);
        assert_eq!((args.skip, args.test_threads, args.exact), (vec!["net".to_string()], Some(1), true));
    }
}
