//! The runs of a mutants session: the base kernel built and proved green,
//! each mutant built in turn in one tree while worker threads boot the
//! built ones, and the debug variant's run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, ensure, Result};
use serde::{Deserialize, Serialize};

use super::judge::{judge_attempt, overall, Attempt, MutantResult, Verdict};
use super::list::{expand, Mutant};
use super::patch::Applied;
use crate::apt::Apt;
use crate::kbuild::{self, BaseSpec, Build};
use crate::run::{self, Progress};
use crate::table::{KernelResult, Loaded, Record};
use crate::vm::{self, health_reports, VmConfig};

/// Everything a mutants run needs.
pub struct MutantRun<'a> {
    /// Repository root.
    pub root: PathBuf,
    /// The base spec.
    pub spec: BaseSpec,
    /// Where sources and builds live.
    pub kbuild_dir: PathBuf,
    /// The private apt (for the source package).
    pub apt: &'a Apt,
    /// QEMU settings.
    pub vm: VmConfig,
    /// The initramfs (cases and fuzz suite).
    pub initramfs: PathBuf,
    /// Output directory.
    pub out: PathBuf,
    /// VMs at once.
    pub jobs: usize,
    /// Boots per mutant.
    pub repeat: usize,
    /// Whether the guest runs the fuzz suite.
    pub fuzz: bool,
    /// Progress lines.
    pub progress: Progress,
}

/// Boots `image` and judges it, into `dir`.
fn boot(ctx: &MutantRun, name: &str, image: &Path, dir: &Path) -> Result<(Loaded, String)> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let outcome = vm::run_vm(&ctx.vm, image, &ctx.initramfs, dir, &|m| ctx.progress.say(name, m))?;
    let mut result = KernelResult::new(name, "mutant");
    result.accel = ctx.vm.accel.to_string();
    result.release = outcome.guest_release.clone();
    result.error = outcome.error.clone();
    result.vm = Some(outcome);
    let mut loaded = Loaded { result, reports: Default::default() };
    run::judge(&mut loaded, dir, false, ctx.fuzz);
    let console = String::from_utf8_lossy(&std::fs::read(dir.join("console.log")).unwrap_or_default()).into_owned();
    Ok((loaded, console))
}

/// The base kernel, built and proved green. Returns the build and every
/// case id its runs reported.
pub fn prove_base(ctx: &MutantRun) -> Result<(Build, BTreeSet<String>, BaseFigures)> {
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (build, took) = kbuild::build_variant(&ctx.root, &ctx.spec, "base", &ctx.kbuild_dir, ctx.apt, jobs)?;
    ctx.progress.say("base", &format!("built in {:.1}s", took.as_secs_f64()));
    let (loaded, console) = boot(ctx, "base", &build.vmlinux(), &ctx.out.join("base"))?;
    let r = &loaded.result;
    if let Some(e) = &r.error {
        bail!("the base kernel did not run the suite: {e}");
    }
    let failing: Vec<String> = loaded
        .reports
        .iter()
        .flat_map(|(run, recs)| recs.iter().filter(|r| r.fails_run()).map(move |r| format!("{run}: {} ({})", r.id, r.reason)))
        .collect();
    ensure!(failing.is_empty(), "the base kernel is not green; every mutant would look killed:\n  {}", failing.join("\n  "));
    let ids: BTreeSet<String> = loaded.reports.values().flatten().map(|r: &Record| r.id.clone()).collect();
    let figures = BaseFigures {
        build_s: took.as_secs_f64(),
        vm_s: r.vm.as_ref().map_or(0.0, |v| v.total_s),
        release: r.release.clone().unwrap_or_default(),
        cases: ids.len(),
        console_reports: health_reports(&console),
    };
    let runs = if ctx.fuzz { "root, uid 65534 and fuzz" } else { "root and uid 65534" };
    ctx.progress.say("base", &format!("green: {} case ids, {runs}, in {:.1}s", ids.len(), figures.vm_s));
    Ok((build, ids, figures))
}

/// The debug variant (KASAN, lockdep, refcount and list debugging) running
/// the case suite and the fuzz suite: any kernel-health line on its console
/// (claim K1) is a finding. Returns the run's figures and the findings.
pub fn debug_run(ctx: &MutantRun) -> Result<(BaseFigures, Loaded)> {
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (build, took) = kbuild::build_variant(&ctx.root, &ctx.spec, "debug", &ctx.kbuild_dir, ctx.apt, jobs)?;
    ctx.progress.say("debug", &format!("built in {:.1}s", took.as_secs_f64()));
    // The bzImage: a KASAN vmlinux entered through PVH stops before its
    // first console line (the PVH entry's C code runs before the KASAN
    // shadow is set up), while the bzImage's own entry boots it.
    let (loaded, console) = boot(ctx, "debug", &build.bzimage(), &ctx.out.join("debug"))?;
    let r = &loaded.result;
    let figures = BaseFigures {
        build_s: took.as_secs_f64(),
        vm_s: r.vm.as_ref().map_or(0.0, |v| v.total_s),
        release: r.release.clone().unwrap_or_default(),
        cases: loaded.reports.values().map(Vec::len).sum(),
        console_reports: health_reports(&console),
    };
    Ok((figures, loaded))
}

/// What the base kernel's run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaseFigures {
    /// Seconds of make (0-ish when cached).
    pub build_s: f64,
    /// Seconds in the VM.
    pub vm_s: f64,
    /// `uname -r`.
    pub release: String,
    /// Case ids reported.
    pub cases: usize,
    /// Kernel-health lines on its console.
    pub console_reports: Vec<String>,
}

/// Builds each mutant in turn (one tree, restored after each build) while
/// `jobs` workers boot them; returns the results in list order.
pub fn run_all(ctx: &MutantRun, build: &Build, ids: &BTreeSet<String>, mutants: &[Mutant]) -> Vec<MutantResult> {
    let (tx, rx) = mpsc::sync_channel::<(usize, PathBuf)>(ctx.jobs);
    let rx = Arc::new(Mutex::new(rx));
    let results: Mutex<Vec<Option<MutantResult>>> = Mutex::new(vec![None; mutants.len()]);
    let make_jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..ctx.jobs {
            let rx = Arc::clone(&rx);
            let results = &results;
            s.spawn(move || loop {
                let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                let Ok((i, image)) = next else { break };
                let m = &mutants[i];
                let mut r = results.lock().unwrap_or_else(|e| e.into_inner())[i].take().expect("built before booted");
                for n in 0..ctx.repeat {
                    let dir = ctx.out.join(&m.id).join(format!("boot{}", n + 1));
                    let attempt = match boot(ctx, &m.id, &image, &dir) {
                        Ok((loaded, console)) => judge_attempt(&loaded, &r.listed, &console),
                        Err(e) => Attempt {
                            verdict: Verdict::Crashed,
                            failed: vec![],
                            listed_passed: vec![],
                            error: Some(format!("{e:#}")),
                            console_reports: vec![],
                            vm_s: 0.0,
                        },
                    };
                    ctx.progress.say(&m.id, &format!("boot {}: {}", n + 1, describe(&attempt)));
                    r.attempts.push(attempt);
                }
                r.verdict = overall(&r.attempts);
                let _ = std::fs::remove_file(&image);
                let _ = std::fs::write(ctx.out.join(&m.id).join("result.json"), serde_json::to_string_pretty(&r).unwrap_or_default());
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
        for (i, m) in mutants.iter().enumerate() {
            let (listed, _) = expand(&m.must_fail, ids);
            let mut r = MutantResult { mutant: m.clone(), listed, verdict: Verdict::Error, build_s: 0.0, attempts: vec![], error: None };
            let built = (|| -> Result<(PathBuf, Duration)> {
                let dir = ctx.out.join(&m.id);
                std::fs::create_dir_all(&dir)?;
                let applied = Applied::apply(&build.src, &ctx.root.join("ci/mutants").join(&m.patch))?;
                let took = build.build(&["vmlinux"], make_jobs)?;
                let image = dir.join("vmlinux");
                std::fs::copy(build.vmlinux(), &image)?;
                drop(applied);
                Ok((image, took))
            })();
            match built {
                Ok((image, took)) => {
                    r.build_s = took.as_secs_f64();
                    ctx.progress.say(&m.id, &format!("built in {:.1}s", r.build_s));
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                    if tx.send((i, image)).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    ctx.progress.say(&m.id, &format!("ERROR: {e:#}"));
                    r.error = Some(format!("{e:#}"));
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                }
            }
        }
        drop(tx);
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner()).into_iter().flatten().collect()
}

fn describe(a: &Attempt) -> String {
    match a.verdict {
        Verdict::Killed => format!("killed ({} failing, first: {})", a.failed.len(), a.failed.first().map_or("", |f| f.id.as_str())),
        Verdict::PartlyKilled => format!(
            "partly killed ({} failing; listed but passed: {})",
            a.failed.len(),
            if a.listed_passed.is_empty() { "none".to_string() } else { a.listed_passed.join(", ") }
        ),
        Verdict::Survived => "survived".into(),
        Verdict::Crashed => format!("crashed: {}", a.error.as_deref().unwrap_or("")),
        Verdict::Error => "error".into(),
    }
}
