//! Mutant kernels: the share of deliberately broken kernels that the suite
//! catches (ci/mutants/README.md).
//!
//! Each mutant of `ci/mutants/mutants.toml` is a small patch against the
//! pinned kernel source of `ci/mutants/base.toml`, with the claims it
//! breaks and the cases that must fail on it. The run builds the base
//! kernel and proves it green, then, one mutant at a time, applies the
//! patch, rebuilds incrementally, copies the vmlinux out and restores the
//! tree; up to `--jobs` VMs boot the mutants meanwhile and run the case
//! suite (root and uid 65534) and the fuzz suite. A mutant is *killed* when
//! every case it lists fails, *partly killed* when only some do (or only
//! other cases fail), *crashed* when the kernel panicked or hung (counted
//! apart: it proves nothing about the cases), *survived* when nothing
//! failed. Survivors and partial kills need an `accepted` reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};

use crate::apt::Apt;
use crate::kbuild::{self, BaseSpec, Build};
use crate::run::{self, Progress};
use crate::table::{KernelResult, Loaded, Record, Status};
use crate::vm::{self, health_reports, VmConfig};

/// The mutant list, relative to the repository root.
pub const MUTANTS_FILE: &str = "ci/mutants/mutants.toml";

/// One mutant, as the data file gives it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mutant {
    /// Stable id, `[a-z0-9-]`; the patch is usually `<id>.patch`.
    pub id: String,
    /// The claim ids (shared CLAIMS) it breaks.
    pub claims: Vec<String>,
    /// One line: what is broken.
    pub what: String,
    /// The patch, relative to `ci/mutants/`, applied with `patch -p1`.
    pub patch: PathBuf,
    /// The cases that must all fail on it (`*` matches any run of characters).
    pub must_fail: Vec<String>,
    /// For a re-introduced regression: the upstream commit that introduced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introduced: Option<String>,
    /// And the one that fixed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<String>,
    /// Why it may survive (an equivalent mutant, a claim no case can see on
    /// this kernel): a survivor or partial kill with a reason does not fail
    /// the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<String>,
    /// Whether `accepted` says the mutant is equivalent (excluded from the
    /// score's denominator).
    #[serde(default)]
    pub equivalent: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MutantFile {
    mutant: Vec<Mutant>,
}

/// Reads and checks the mutant list: ids unique and well formed, patches
/// present, claims and must-fail lists non-empty, an equivalent mutant
/// explained.
pub fn load(root: &Path) -> Result<Vec<Mutant>> {
    let path = root.join(MUTANTS_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let file: MutantFile = toml::from_str(&text).with_context(|| format!("in {}", path.display()))?;
    let mut seen = BTreeSet::new();
    for m in &file.mutant {
        ensure!(
            !m.id.is_empty() && m.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "mutant id {:?} must be lowercase ascii, digits or '-'",
            m.id
        );
        ensure!(seen.insert(m.id.clone()), "mutant {:?} is listed twice", m.id);
        ensure!(!m.claims.is_empty(), "mutant {}: no claims", m.id);
        ensure!(!m.must_fail.is_empty() || m.equivalent, "mutant {}: no must_fail cases", m.id);
        ensure!(!m.equivalent || m.accepted.is_some(), "mutant {}: equivalent needs the reason in `accepted`", m.id);
        ensure!(!m.what.trim().is_empty(), "mutant {}: `what` is empty", m.id);
        let patch = root.join("ci/mutants").join(&m.patch);
        ensure!(patch.is_file(), "mutant {}: no patch {}", m.id, patch.display());
    }
    Ok(file.mutant)
}

/// Whether case `id` matches `pattern` (`*`: any run of characters).
pub fn matches(pattern: &str, id: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == id;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !id.starts_with(first) || !id[first.len()..].ends_with(last) || id.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &id[first.len()..id.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// How one boot of a mutant ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every listed case failed.
    Killed,
    /// Some listed cases passed, or only unlisted cases failed.
    PartlyKilled,
    /// Nothing failed.
    Survived,
    /// The kernel panicked or hung, or results were lost.
    Crashed,
    /// The patch did not apply or the kernel did not build.
    Error,
}

impl Verdict {
    fn word(self) -> &'static str {
        match self {
            Verdict::Killed => "killed",
            Verdict::PartlyKilled => "partly killed",
            Verdict::Survived => "survived",
            Verdict::Crashed => "crashed",
            Verdict::Error => "error",
        }
    }
}

/// A case that failed on a mutant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Failure {
    /// Case id.
    pub id: String,
    /// root, unprivileged or fuzz.
    pub run: String,
    /// fail or broken.
    pub outcome: String,
    /// The first check that failed (the case's reason).
    pub reason: String,
    /// Where it was decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// One boot of one mutant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    /// The verdict of this boot.
    pub verdict: Verdict,
    /// Cases that failed (any run).
    pub failed: Vec<Failure>,
    /// Listed cases that did not fail.
    pub listed_passed: Vec<String>,
    /// Why it crashed or errored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Kernel-health lines of the console (WARNING, BUG, KASAN, lockdep).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub console_reports: Vec<String>,
    /// Seconds from QEMU start to the last result.
    pub vm_s: f64,
}

/// Everything measured for one mutant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MutantResult {
    /// The data file's entry.
    pub mutant: Mutant,
    /// The cases its `must_fail` patterns name (in the base run).
    pub listed: Vec<String>,
    /// The verdict over every boot: killed only if every boot killed it.
    pub verdict: Verdict,
    /// Seconds of `make` for the mutant (incremental).
    pub build_s: f64,
    /// Each boot (`--repeat`).
    pub attempts: Vec<Attempt>,
    /// Build or patch error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl MutantResult {
    /// Whether this result lets the run pass.
    pub fn acceptable(&self) -> bool {
        match self.verdict {
            Verdict::Killed => true,
            Verdict::Error => false,
            Verdict::PartlyKilled | Verdict::Survived | Verdict::Crashed => self.mutant.accepted.is_some(),
        }
    }
}

/// Judges one boot: the runs' reports against the listed cases.
pub fn judge_attempt(loaded: &Loaded, listed: &[String], console: &str) -> Attempt {
    let r = &loaded.result;
    let vm_s = r.vm.as_ref().map_or(0.0, |v| v.total_s);
    let console_reports = health_reports(console);
    if r.status == Status::Infrastructure {
        return Attempt { verdict: Verdict::Crashed, failed: vec![], listed_passed: vec![], error: r.error.clone(), console_reports, vm_s };
    }
    let mut failed: Vec<Failure> = Vec::new();
    for (run, records) in &loaded.reports {
        for rec in records.iter().filter(|r| r.fails_run()) {
            failed.push(Failure {
                id: rec.id.clone(),
                run: run.clone(),
                outcome: format!("{:?}", rec.outcome).to_lowercase(),
                reason: rec.reason.clone(),
                location: rec.location.clone(),
            });
        }
    }
    // The listed cases first, then root, uid 65534, fuzz: the first entry
    // is the check to read first.
    let rank = |f: &Failure| (!listed.contains(&f.id), ["root", "unprivileged", "fuzz"].iter().position(|r| *r == f.run).unwrap_or(3));
    failed.sort_by_key(rank);
    let failed_ids: BTreeSet<&str> = failed.iter().map(|f| f.id.as_str()).collect();
    let listed_passed: Vec<String> = listed.iter().filter(|l| !failed_ids.contains(l.as_str())).cloned().collect();
    let verdict = if failed.is_empty() {
        Verdict::Survived
    } else if listed_passed.is_empty() && !listed.is_empty() {
        Verdict::Killed
    } else {
        Verdict::PartlyKilled
    };
    Attempt { verdict, failed, listed_passed, error: None, console_reports, vm_s }
}

/// The verdict over several boots: killed only when every boot killed it;
/// a crash in any boot is a crash.
pub fn overall(attempts: &[Attempt]) -> Verdict {
    if attempts.iter().any(|a| a.verdict == Verdict::Crashed) {
        Verdict::Crashed
    } else if attempts.iter().all(|a| a.verdict == Verdict::Killed) && !attempts.is_empty() {
        Verdict::Killed
    } else if attempts.iter().all(|a| a.verdict == Verdict::Survived) {
        Verdict::Survived
    } else {
        Verdict::PartlyKilled
    }
}

/// The case ids that `patterns` name among `ids`, and the patterns that name none.
pub fn expand(patterns: &[String], ids: &BTreeSet<String>) -> (Vec<String>, Vec<String>) {
    let mut listed = BTreeSet::new();
    let mut dead = Vec::new();
    for p in patterns {
        let hit: Vec<&String> = ids.iter().filter(|id| matches(p, id)).collect();
        if hit.is_empty() {
            dead.push(p.clone());
        }
        listed.extend(hit.into_iter().cloned());
    }
    (listed.into_iter().collect(), dead)
}

/// A source tree with at most one mutant applied, restored on drop.
struct Applied<'a> {
    src: &'a Path,
    patch: PathBuf,
    marker: PathBuf,
}

fn run_patch(src: &Path, patch: &Path, reverse: bool, dry: bool) -> Result<()> {
    let mut c = Command::new("patch");
    c.args(["-p1", "--batch", "--forward", "--no-backup-if-mismatch", "-r", "-", "-s"]).current_dir(src);
    if reverse {
        c.arg("-R");
    }
    if dry {
        c.arg("--dry-run");
    }
    let out = c
        .stdin(std::fs::File::open(patch).with_context(|| format!("opening {}", patch.display()))?)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .context("running patch (apt-get install patch)")?;
    ensure!(
        out.status.success(),
        "patch{} {} failed: {}{}",
        if reverse { " -R" } else { "" },
        patch.display(),
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// The file in the source tree that names the patch currently applied, so
/// that a run killed half way restores the tree the next time.
fn marker(src: &Path) -> PathBuf {
    src.join(".nsverify-mutant-applied")
}

/// Reverses a patch a previous run left applied.
pub fn restore_tree(src: &Path) -> Result<()> {
    let m = marker(src);
    if let Ok(patch) = std::fs::read_to_string(&m) {
        run_patch(src, Path::new(patch.trim()), true, false).context("restoring the tree a previous run left patched")?;
        std::fs::remove_file(&m)?;
    }
    Ok(())
}

impl<'a> Applied<'a> {
    fn apply(src: &'a Path, patch: &Path) -> Result<Applied<'a>> {
        restore_tree(src)?;
        run_patch(src, patch, false, false)?;
        let marker = marker(src);
        std::fs::write(&marker, patch.display().to_string())?;
        Ok(Applied { src, patch: patch.to_path_buf(), marker })
    }
}

impl Drop for Applied<'_> {
    fn drop(&mut self) {
        match run_patch(self.src, &self.patch, true, false) {
            Ok(()) => {
                let _ = std::fs::remove_file(&self.marker);
            }
            Err(e) => eprintln!("mutants: could not restore the tree: {e:#} (the next run retries)"),
        }
    }
}

/// Checks that every patch applies to the pristine source (dry run).
pub fn check_patches(root: &Path, src: &Path, mutants: &[Mutant]) -> Vec<(String, String)> {
    mutants
        .iter()
        .filter_map(|m| {
            run_patch(src, &root.join("ci/mutants").join(&m.patch), false, true).err().map(|e| (m.id.clone(), format!("{e:#}")))
        })
        .collect()
}

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

/// The whole run's summary: `mutants.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// The pinned source.
    pub source: String,
    /// The base kernel's figures.
    pub base: BaseFigures,
    /// Killed among the non-equivalent mutants that did not crash or error.
    pub killed: usize,
    /// Non-equivalent mutants (the score's denominator).
    pub scored: usize,
    /// killed / scored.
    pub score: f64,
    /// Counts by verdict.
    pub counts: BTreeMap<String, usize>,
    /// Claims whose mutants each case family (id prefix) helped kill.
    pub family_claims: BTreeMap<String, BTreeSet<String>>,
    /// Wall seconds of the whole run.
    pub wall_s: f64,
    /// Every mutant.
    pub mutants: Vec<MutantResult>,
}

impl Summary {
    /// Sums the results up.
    pub fn new(source: String, base: BaseFigures, mutants: Vec<MutantResult>, wall: Duration) -> Summary {
        let mut counts = BTreeMap::new();
        for r in &mutants {
            *counts.entry(r.verdict.word().to_string()).or_insert(0) += 1;
        }
        let scored = mutants.iter().filter(|r| !r.mutant.equivalent).count();
        let killed = mutants.iter().filter(|r| !r.mutant.equivalent && r.verdict == Verdict::Killed).count();
        let mut family_claims: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for r in mutants.iter().filter(|r| r.verdict == Verdict::Killed) {
            for a in &r.attempts {
                for f in &a.failed {
                    let family = f.id.split('.').next().unwrap_or("").to_string();
                    family_claims.entry(family).or_default().extend(r.mutant.claims.iter().cloned());
                }
            }
        }
        Summary {
            source,
            base,
            killed,
            scored,
            score: if scored == 0 { 0.0 } else { killed as f64 / scored as f64 },
            counts,
            family_claims,
            wall_s: wall.as_secs_f64(),
            mutants,
        }
    }

    /// The Markdown report.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "# Mutant kernels\n\nSource: {}. Base kernel {}: green ({} case ids) in {:.1}s.\n\n\
             **Mutation score: {} of {} non-equivalent mutants killed at claim level ({:.0}%).** Counts: {}. Whole run {:.0}s.\n\n",
            self.source,
            self.base.release,
            self.base.cases,
            self.base.vm_s,
            self.killed,
            self.scored,
            self.score * 100.0,
            self.counts.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "),
            self.wall_s
        );
        s += "| mutant | claims | verdict | build s | VM s | listed cases | first failing check |\n|---|---|---|---|---|---|---|\n";
        for r in &self.mutants {
            let first = r.attempts.iter().flat_map(|a| a.failed.first()).next();
            let vm: f64 = r.attempts.iter().map(|a| a.vm_s).sum::<f64>() / r.attempts.len().max(1) as f64;
            let mut verdict = r.verdict.word().to_string();
            if r.verdict != Verdict::Killed {
                if let Some(why) = &r.mutant.accepted {
                    verdict += &format!(" (accepted: {why})");
                }
                let passed: BTreeSet<&String> = r.attempts.iter().flat_map(|a| a.listed_passed.iter()).collect();
                if !passed.is_empty() && r.verdict == Verdict::PartlyKilled {
                    verdict += &format!("; passed: {}", passed.into_iter().cloned().collect::<Vec<_>>().join(", "));
                }
                if let Some(e) = r.error.as_ref().or(r.attempts.iter().find_map(|a| a.error.as_ref())) {
                    verdict += &format!("; {}", e.lines().next().unwrap_or(""));
                }
            }
            if r.attempts.len() > 1 {
                let k = r.attempts.iter().filter(|a| a.verdict == Verdict::Killed).count();
                verdict += &format!(" ({k}/{} boots killed)", r.attempts.len());
            }
            s += &format!(
                "| `{}` | {} | {} | {:.1} | {:.1} | {} | {} |\n",
                r.mutant.id,
                r.mutant.claims.join(" "),
                verdict.replace('|', "/"),
                r.build_s,
                vm,
                r.listed.len(),
                first.map_or(String::new(), |f| format!("`{}`: {}", f.id, f.reason.lines().next().unwrap_or("").replace('|', "/")))
            );
        }
        s += "\n## Claims whose mutants each case family killed\n\n| family | claims |\n|---|---|\n";
        for (fam, claims) in &self.family_claims {
            s += &format!("| {fam} | {} |\n", claims.iter().cloned().collect::<Vec<_>>().join(" "));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::{Phase, VmOutcome};
    use harness::Outcome;

    #[test]
    fn patterns_match_case_ids() {
        assert!(matches("identity.link_text.*", "identity.link_text.uts"));
        assert!(matches("*.net", "lifetime.fd_keeps_alive.net"));
        assert!(matches("lifetime.*_keeps_alive.net", "lifetime.bind_mount_keeps_alive.net"));
        assert!(matches("a", "a"));
        assert!(!matches("a", "ab"));
        assert!(!matches("*.net", "lifetime.fd_keeps_alive.netx"));
        assert!(!matches("ab*ba", "aba"));
        let ids: BTreeSet<String> = ["x.a", "x.b", "y.a"].iter().map(|s| s.to_string()).collect();
        assert_eq!(expand(&["x.*".into(), "z.*".into()], &ids), (vec!["x.a".into(), "x.b".into()], vec!["z.*".into()]));
    }

    fn loaded(records: &[(&str, Outcome)]) -> Loaded {
        let mut result = KernelResult::new("m", "mutant");
        result.status = Status::CasesFailed;
        result.vm = Some(VmOutcome {
            phase: Phase::Done,
            guest_release: None,
            boot_s: Some(1.0),
            total_s: 9.0,
            runs: Default::default(),
            error: None,
            console_tail: vec![],
            halted: false,
        });
        let recs = records
            .iter()
            .map(|(id, o)| Record {
                id: id.to_string(),
                outcome: *o,
                reason: "expected x, got y".into(),
                known_deviation: None,
                claims: vec![],
                location: None,
                xpass: None,
            })
            .collect();
        Loaded { result, reports: [("root".to_string(), recs)].into_iter().collect() }
    }

    #[test]
    fn kills_are_judged_per_listed_case() {
        let listed = vec!["a".to_string(), "b".to_string()];
        let all = judge_attempt(&loaded(&[("a", Outcome::Fail), ("b", Outcome::Broken), ("c", Outcome::Pass)]), &listed, "");
        assert_eq!(all.verdict, Verdict::Killed);
        let part = judge_attempt(&loaded(&[("a", Outcome::Fail), ("b", Outcome::Pass)]), &listed, "");
        assert_eq!((part.verdict, part.listed_passed.clone()), (Verdict::PartlyKilled, vec!["b".to_string()]));
        let other = judge_attempt(&loaded(&[("a", Outcome::Pass), ("b", Outcome::Pass), ("c", Outcome::Fail)]), &listed, "");
        assert_eq!(other.verdict, Verdict::PartlyKilled, "an unlisted failure is not a claim-level kill");
        let none = judge_attempt(&loaded(&[("a", Outcome::Pass), ("b", Outcome::Skip)]), &listed, "");
        assert_eq!(none.verdict, Verdict::Survived);
        assert_eq!(overall(&[all.clone(), part.clone()]), Verdict::PartlyKilled, "a flaky kill is not a kill");
        assert_eq!(overall(&[all.clone(), all]), Verdict::Killed);
    }

    #[test]
    fn a_lost_vm_is_a_crash_not_a_kill() {
        let mut l = loaded(&[("a", Outcome::Fail)]);
        l.result.status = Status::Infrastructure;
        l.result.error = Some("the kernel never reached /init".into());
        assert_eq!(judge_attempt(&l, &["a".into()], "").verdict, Verdict::Crashed);
    }

    #[test]
    fn console_health_lines_are_found() {
        let console = "ok\n[ 1.0] WARNING: CPU: 0 PID: 1 at kernel/ucount.c:10\nfine\n[ 2.0] BUG: KASAN: slab-use-after-free in f\r\n";
        let r = health_reports(console);
        assert_eq!(r.len(), 2);
        assert!(r[1].contains("KASAN") && !r[1].ends_with('\r'));
    }

    #[test]
    fn the_shipped_mutants_load() {
        let root = crate::payload::repo_root();
        let mutants = load(&root).unwrap();
        assert!(mutants.len() >= 30, "{} mutants", mutants.len());
        for family in ["T", "A", "P", "N", "L", "F"] {
            assert!(mutants.iter().any(|m| m.claims.iter().any(|c| c.starts_with(family))), "no mutant for claim family {family}");
        }
    }
}
