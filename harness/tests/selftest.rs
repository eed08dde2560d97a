//! The harness's own tests: each runs a demonstration case through the real
//! runner (requirements, re-executed child, deadline, verdict pipe) and checks
//! the record it produces. Run by `cargo test`.

use std::process::ExitCode;
use std::time::Duration;

use harness::case::Setup;
use harness::known::{Applies, Deviation};
use harness::peer::Spawn;
use harness::report::{self, Record};
use harness::runner::{run_case, Host};
use harness::trace::Snapshot;
use harness::{check_eq, expect_errno, Case, CaseError, Errno, Kind, NsFd, Outcome, Requires};
use libtest_mimic::{Arguments, Failed, Trial};

/// Demonstration cases, run only through the trials below.
fn demo_cases() -> Vec<Case> {
    vec![
        Case::new("demo.hang", &["N1"], "a body (and its peer) that never ends", || {
            let peer = Spawn::fork().spawn(|ch| loop {
                ch.wait()?;
            })?;
            println!("peer pid {}", peer.pid());
            std::mem::forget(peer);
            loop {
                std::thread::park();
            }
        })
        .timeout(Duration::from_millis(300)),
        Case::new("demo.panic", &["N1"], "a body that panics", || panic!("boom {}", 42)),
        Case::new("demo.newer_kernel", &["N1"], "needs a kernel from the future", || Ok(())).requires(Requires::none().kernel(99, 0)),
        Case::new("demo.undeclared_errno", &["N1"], "an errno the body does not expect", || {
            nix::unistd::close(-1)?;
            Ok(())
        }),
        Case::new("demo.declared_errno", &["N1"], "an errno the body expects", || {
            expect_errno!(nix::unistd::close(-1), Errno::EBADF, "close(-1)");
            Ok(())
        }),
        Case::new("demo.wrong_errno", &["N1"], "an errno other than the expected one", || {
            expect_errno!(nix::unistd::close(-1), Errno::EPERM, "close(-1)");
            Ok(())
        }),
        Case::new("demo.broken_setup", &["N1"], "a setup step that fails", || {
            std::fs::read("/nonexistent/nsverify").setup("reading a fixture")?;
            Ok(())
        }),
        Case::new("demo.peer_failure", &["N1"], "a check failing inside a peer", || {
            let peer = Spawn::fork().spawn(|_| {
                check_eq!(1 + 1, 3, "arithmetic in the peer");
                Ok(())
            })?;
            peer.join()
        }),
        Case::new("demo.peer_panic", &["N1"], "a panic inside a peer", || {
            let peer = Spawn::fork().spawn(|_| {
                let empty: Vec<u32> = Vec::new();
                let _ = empty[std::hint::black_box(3)];
                Ok(())
            })?;
            peer.join()
        }),
        Case::new("demo.abort", &["N1"], "a body killed by a signal", || std::process::abort()),
        Case::new("demo.pass", &["N1"], "a body that passes", || Ok(())),
        Case::new("demo.unknown_kind", &["N1"], "requires a kind: skipped only if absent", || Ok(()))
            .requires(Requires::kinds(&[Kind::Uts])),
        Case::new("demo.deviation_here", &["F6"], "fails at the check of a deviation that applies here", || {
            check_eq!(1, 2, "the deviating check");
            Ok(())
        })
        .known_deviation(&HERE),
        Case::new("demo.deviation_elsewhere", &["F6"], "fails at the check of a deviation of other kernels", || {
            check_eq!(1, 2, "the deviating check");
            Ok(())
        })
        .known_deviation(&ELSEWHERE),
        Case::new("demo.deviation_other_check", &["F6"], "fails at another check than its deviation's", || {
            check_eq!(1, 2, "another check");
            Ok(())
        })
        .known_deviation(&HERE),
        Case::new("demo.deviation_absent", &["F6"], "passes where its deviation was expected", || Ok(())).known_deviation(&HERE),
        Case::new("demo.deviation_empty_check", &["F6"], "a deviation that would excuse any failure", || Ok(()))
            .known_deviation(&EMPTY_CHECK),
    ]
}

/// A known deviation expected on every kernel, and one expected on none.
static HERE: Deviation = Deviation {
    id: "demo_here",
    claim: "F6",
    text: "a demonstration deviation",
    failing_check: "the deviating check",
    applies: Applies::Probe(|| true, "every kernel"),
    upstream: &[],
};
static ELSEWHERE: Deviation = Deviation { id: "demo_elsewhere", applies: Applies::Probe(|| false, "no kernel"), ..HERE };
static EMPTY_CHECK: Deviation = Deviation { id: "demo_empty", failing_check: "", ..HERE };

fn deviations_are_scoped_and_visible() -> Result<(), Failed> {
    let r = run("demo.deviation_here");
    expect(r.outcome == Outcome::Fail && r.known_deviation.is_some(), "a failure at the check, where it applies, is known", &r)?;
    let r = run("demo.deviation_elsewhere");
    expect(r.outcome == Outcome::Fail && r.known_deviation.is_none(), "outside its predicate the case is strict", &r)?;
    let r = run("demo.deviation_other_check");
    expect(r.outcome == Outcome::Fail && r.known_deviation.is_none(), "a failure at another check is not the deviation", &r)?;
    let r = run("demo.deviation_absent");
    expect(
        r.outcome == Outcome::Pass && r.xpass.as_deref().is_some_and(|x| x.contains("demo_here")),
        "a deviation that did not happen is xpass",
        &r,
    )?;
    let tap = report::tap(std::slice::from_ref(&r));
    expect(tap.contains("# TODO xpass"), "TAP shows the xpass", &r)?;
    expect(report::junit(std::slice::from_ref(&r), "t").contains("XPASS"), "JUnit shows the xpass", &r)
}

fn empty_failing_check_is_refused() -> Result<(), Failed> {
    let cases = demo_cases();
    let err = harness::runner::validate_deviations(&cases).err().unwrap_or_default();
    if err.contains("demo.deviation_empty_check") && err.contains("empty") {
        Ok(())
    } else {
        Err(format!("an empty failing check was not refused: {err:?}").into())
    }
}

fn run(id: &str) -> Record {
    let cases = demo_cases();
    let case = cases.iter().find(|c| c.id == id).expect("demo case exists");
    run_case(case, &Host::probe())
}

fn expect(cond: bool, what: &str, record: &Record) -> Result<(), Failed> {
    if cond {
        Ok(())
    } else {
        Err(format!("{what}; record: {record:?}").into())
    }
}

fn hang_is_killed_at_deadline() -> Result<(), Failed> {
    let r = run("demo.hang");
    expect(r.outcome == Outcome::Broken, "outcome is broken", &r)?;
    expect(r.reason.contains("deadline"), "reason names the deadline", &r)?;
    expect(r.duration_ms < 3000.0, "killed near its 300 ms deadline", &r)?;
    let peer: i32 = r
        .output
        .lines()
        .find_map(|l| l.strip_prefix("peer pid "))
        .and_then(|p| p.trim().parse().ok())
        .ok_or_else(|| Failed::from(format!("no peer pid in output {:?}", r.output)))?;
    // The peer was in the case's process group; the whole group is gone.
    expect(nix::sys::signal::kill(nix::unistd::Pid::from_raw(peer), None) == Err(Errno::ESRCH), "the peer process is gone", &r)
}

fn panic_is_failure_with_message() -> Result<(), Failed> {
    let r = run("demo.panic");
    expect(r.outcome == Outcome::Fail, "outcome is fail", &r)?;
    expect(r.reason.contains("boom 42"), "reason carries the panic message", &r)?;
    expect(r.location.as_deref().is_some_and(|l| l.contains("selftest.rs")), "location is the panic site", &r)
}

fn newer_kernel_is_skipped_with_reason() -> Result<(), Failed> {
    let r = run("demo.newer_kernel");
    expect(r.outcome == Outcome::Skip, "outcome is skip", &r)?;
    expect(r.reason.contains("needs Linux 99.0"), "reason names the kernel needed", &r)
}

fn undeclared_errno_is_failure() -> Result<(), Failed> {
    let r = run("demo.undeclared_errno");
    expect(r.outcome == Outcome::Fail, "outcome is fail, not skip", &r)?;
    expect(r.reason.contains("EBADF"), "reason names the errno", &r)?;
    expect(r.location.as_deref().is_some_and(|l| l.contains("selftest.rs")), "location is the `?`", &r)
}

fn declared_errno_passes_and_wrong_one_fails() -> Result<(), Failed> {
    let ok = run("demo.declared_errno");
    expect(ok.outcome == Outcome::Pass, "the expected errno passes", &ok)?;
    let wrong = run("demo.wrong_errno");
    expect(wrong.outcome == Outcome::Fail, "another errno fails", &wrong)?;
    expect(wrong.reason.contains("EPERM") && wrong.reason.contains("EBADF"), "reason names expected and actual", &wrong)
}

fn setup_error_is_broken() -> Result<(), Failed> {
    let r = run("demo.broken_setup");
    expect(r.outcome == Outcome::Broken, "outcome is broken", &r)?;
    expect(r.reason.contains("reading a fixture"), "reason names the setup step", &r)
}

fn peer_failure_fails_the_case() -> Result<(), Failed> {
    let r = run("demo.peer_failure");
    expect(r.outcome == Outcome::Fail, "outcome is fail", &r)?;
    expect(r.reason.contains("expected 3, got 2"), "reason is the peer's check", &r)
}

fn peer_panic_is_failure_with_message() -> Result<(), Failed> {
    let r = run("demo.peer_panic");
    expect(r.outcome == Outcome::Fail, "outcome is fail", &r)?;
    expect(r.reason.contains("index out of bounds"), "reason carries the peer's panic message", &r)
}

fn signal_death_is_broken() -> Result<(), Failed> {
    let r = run("demo.abort");
    expect(r.outcome == Outcome::Broken, "outcome is broken", &r)?;
    expect(r.reason.contains("SIGABRT"), "reason names the signal", &r)
}

fn pass_is_pass() -> Result<(), Failed> {
    let r = run("demo.pass");
    expect(r.outcome == Outcome::Pass && r.reason.is_empty(), "outcome is pass", &r)
}

fn sample_records() -> Vec<Record> {
    ["demo.pass", "demo.panic", "demo.newer_kernel", "demo.broken_setup"].into_iter().map(run).collect()
}

fn jsonl_has_documented_fields() -> Result<(), Failed> {
    let records = sample_records();
    let text = report::jsonl(&records);
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
        for field in ["id", "claims", "outcome", "reason", "kernel", "duration_ms"] {
            if v.get(field).is_none() {
                return Err(format!("field {field} missing in {line}").into());
            }
        }
    }
    let back = report::parse_jsonl(&text)?;
    if back != records {
        return Err("JSON lines do not round-trip".into());
    }
    Ok(())
}

fn junit_parses_with_counts() -> Result<(), Failed> {
    let mut records = sample_records();
    records[0].reason = "odd <chars> & \"quotes\" \u{1}".into();
    let xml = report::junit(&records, "6.1.0-test");
    let doc = roxmltree::Document::parse(&xml).map_err(|e| format!("JUnit does not parse: {e}\n{xml}"))?;
    let suite = doc.descendants().find(|n| n.has_tag_name("testsuite")).ok_or("no testsuite")?;
    let cases: Vec<_> = suite.children().filter(|n| n.has_tag_name("testcase")).collect();
    let attr = |n: &str| suite.attribute(n).unwrap_or("?").to_string();
    let found = (cases.len(), attr("tests"), attr("failures"), attr("errors"), attr("skipped"));
    if found != (4, "4".into(), "1".into(), "1".into(), "1".into()) {
        return Err(format!("unexpected JUnit counts {found:?}\n{xml}").into());
    }
    let children = |tag: &str| cases.iter().filter(|c| c.children().any(|x| x.has_tag_name(tag))).count();
    if (children("failure"), children("error"), children("skipped")) != (1, 1, 1) {
        return Err(format!("failure/error/skipped elements wrong\n{xml}").into());
    }
    Ok(())
}

fn tap_is_well_formed() -> Result<(), Failed> {
    let records = sample_records();
    let tap = report::tap(&records);
    let lines: Vec<&str> = tap.lines().collect();
    let ok = lines.iter().filter(|l| l.starts_with("ok ")).count();
    let not_ok = lines.iter().filter(|l| l.starts_with("not ok ")).count();
    let skip = lines.iter().filter(|l| l.contains(" # SKIP ")).count();
    if lines[0] != "TAP version 13" || lines[1] != "1..4" || (ok, not_ok, skip) != (2, 2, 1) {
        return Err(format!("TAP plan or lines wrong:\n{tap}").into());
    }
    // With `prove` at hand (perl), a real TAP consumer judges it too.
    if let Ok(dir) = tempfile::tempdir() {
        let path = dir.path().join("r.tap");
        report::write_atomic(&path, &tap)?;
        if let Ok(out) = std::process::Command::new("prove").arg("--exec").arg("cat").arg(&path).output() {
            let text = String::from_utf8_lossy(&out.stdout);
            if !text.contains("Failed 2/4 subtests") {
                return Err(format!("prove did not parse 4 tests with 2 failures:\n{text}").into());
            }
        }
    }
    Ok(())
}

fn write_atomic_replaces_whole_file() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("report.jsonl");
    report::write_atomic(&path, "old\n")?;
    report::write_atomic(&path, "new\n")?;
    let names: Vec<_> = std::fs::read_dir(dir.path())?.flatten().map(|e| e.file_name()).collect();
    if std::fs::read_to_string(&path)? != "new\n" || names.len() != 1 {
        return Err(format!("atomic write left {names:?}").into());
    }
    if report::write_atomic(&dir.path().join("missing/dir/r"), "x").is_ok() {
        return Err("writing into a missing directory succeeded".into());
    }
    Ok(())
}

fn no_trace_check_sees_a_leak() -> Result<(), Failed> {
    let before = Snapshot::take();
    let leaked = NsFd::current(Kind::Uts).map_err(|e| e.to_string())?;
    let during = Snapshot::take();
    let diff = during.differences(&before);
    if !diff.iter().any(|d| d.contains("uts:[") && d.contains("fd held")) {
        return Err(format!("an open ns fd was not reported: {diff:?}").into());
    }
    drop(leaked);
    // Other trials run concurrently and start processes: judge fds only.
    let after = Snapshot::take();
    let diff: Vec<String> = after.differences(&before).into_iter().filter(|d| d.contains("fd held by the runner")).collect();
    if !diff.is_empty() {
        return Err(format!("differences after closing the fd: {diff:?}").into());
    }
    Ok(())
}

fn main() -> ExitCode {
    let cases = demo_cases();
    harness::isolate::start_zygote(&cases).expect("fork server");
    let _ = harness::isolate::become_subreaper();
    let args = Arguments::from_args();
    type T = fn() -> Result<(), Failed>;
    let tests: [(&str, T); 18] = [
        ("deviations_are_scoped_and_visible", deviations_are_scoped_and_visible),
        ("empty_failing_check_is_refused", empty_failing_check_is_refused),
        ("peer_panic_is_failure_with_message", peer_panic_is_failure_with_message),
        ("hang_is_killed_at_deadline_with_its_group", hang_is_killed_at_deadline),
        ("panic_is_failure_with_message", panic_is_failure_with_message),
        ("newer_kernel_is_skipped_with_reason", newer_kernel_is_skipped_with_reason),
        ("undeclared_errno_is_failure", undeclared_errno_is_failure),
        ("declared_errno_passes_and_wrong_one_fails", declared_errno_passes_and_wrong_one_fails),
        ("setup_error_is_broken", setup_error_is_broken),
        ("peer_failure_fails_the_case", peer_failure_fails_the_case),
        ("signal_death_is_broken", signal_death_is_broken),
        ("pass_is_pass", pass_is_pass),
        ("jsonl_has_documented_fields", jsonl_has_documented_fields),
        ("junit_parses_with_counts", junit_parses_with_counts),
        ("tap_is_well_formed", tap_is_well_formed),
        ("write_atomic_replaces_whole_file", write_atomic_replaces_whole_file),
        ("no_trace_check_sees_a_leak", no_trace_check_sees_a_leak),
        ("case_error_display_has_location", || {
            let e = CaseError::fail("x");
            if e.to_string().contains("selftest.rs") {
                Ok(())
            } else {
                Err(format!("location missing from {e}").into())
            }
        }),
    ];
    let trials = tests.into_iter().map(|(name, f)| Trial::test(name, f)).collect();
    libtest_mimic::run(&args, trials).exit_code()
}
