//! `nsverify-vm mutants`: the subcommand that lists or checks the mutants,
//! proves the base kernel green, runs every chosen mutant and writes the
//! summary, or (`--debug-kernel`) runs the suites on the debug variant.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;

use super::{list, patch, report, runs};
use crate::apt::Apt;
use crate::arch::Arch;
use crate::cli::{MutantArgs, DEFAULT_MUTANT_VM_TIMEOUT};
use crate::kbuild;
use crate::matrix::Matrix;
use crate::outcome::{EXIT_CASES_FAILED, EXIT_INFRASTRUCTURE, EXIT_PASSED};
use crate::payload::{self, repo_root, Payload};
use crate::run::Progress;
use crate::table::Status;

/// Runs `nsverify-vm mutants` with `args`; returns the exit code.
pub fn run_mutants(matrix: &Matrix, cache: &Path, args: MutantArgs) -> Result<u8> {
    let started = Instant::now();
    let root = repo_root();
    let spec = kbuild::BaseSpec::load(&root.join(kbuild::BASE_SPEC))?;
    let all = list::load(&root)?;
    let chosen: Vec<list::Mutant> = if args.ids.is_empty() {
        all.clone()
    } else {
        let unknown: Vec<&String> = args.ids.iter().filter(|p| !all.iter().any(|m| list::matches(p, &m.id))).collect();
        anyhow::ensure!(unknown.is_empty(), "no mutant matches {unknown:?} (`nsverify-vm mutants --list` lists them)");
        all.iter().filter(|m| args.ids.iter().any(|p| list::matches(p, &m.id))).cloned().collect()
    };
    if args.list {
        for m in &chosen {
            println!("{:<40} {:<12} {}", m.id, m.claims.join(","), m.what);
        }
        return Ok(EXIT_PASSED);
    }
    anyhow::ensure!(args.jobs >= 1 && args.repeat >= 1, "--jobs and --repeat must be at least 1");
    let mut guest_env = args.guest.guest_env.clone();
    if args.debug_kernel {
        guest_env.push(format!("NSVERIFY_FUZZ_CASES={}", args.fuzz_cases));
    }
    let apt = Apt::new(cache, matrix.apt.clone(), vec![spec.source.suite.clone()]);
    let kbuild_dir = kbuild::dir_for(cache);
    let src = kbuild::ensure_source(&spec.source, &kbuild_dir, &apt)?;
    patch::restore_tree(&src)?;
    let broken = patch::check_patches(&root, &src, &chosen);
    for (id, why) in &broken {
        eprintln!("mutants: {id}: the patch does not apply: {why}");
    }
    if args.check {
        println!(
            "mutants: {} of {} patches apply to {} {}",
            chosen.len() - broken.len(),
            chosen.len(),
            spec.source.package,
            spec.source.version
        );
        return Ok(if broken.is_empty() { EXIT_PASSED } else { EXIT_CASES_FAILED });
    }
    anyhow::ensure!(broken.is_empty(), "{} patch(es) do not apply; fix them first (--check)", broken.len());
    let cpus_host = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut timeout = args.timeout;
    let mut guest = args.guest.clone();
    if args.debug_kernel {
        // KASAN and lockdep make each case about 7 times slower under TCG:
        // unless given, 4 times the deadline scale, room for the KASAN
        // shadow, and an hour per VM (its last run took 963 s).
        guest.debug_kernel_defaults();
        if timeout == DEFAULT_MUTANT_VM_TIMEOUT {
            timeout = 3600;
        }
    }
    let (vm_config, why, scale) = guest.vm((cpus_host / args.jobs).max(1) as u32, timeout);
    let accel = vm_config.accel;
    let payload = Payload {
        arch: Arch::Amd64,
        tools: payload::guest_tools(&apt, cache, Arch::Amd64)?,
        case_bin: payload::build_case_binary(!args.debug_binaries, Arch::Amd64)?,
        case_args: args.case_args.clone(),
        bench: None,
        fuzz: if args.no_fuzz { None } else { Some(payload::build_fuzz_binary(!args.debug_binaries, Arch::Amd64)?) },
        timeout_scale: scale,
        guest_env,
    };
    std::fs::create_dir_all(&args.out)?;
    let work = args.out.join("initramfs");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let initramfs = payload.build_initramfs(&work)?;
    let ctx = runs::MutantRun {
        root: root.clone(),
        spec: spec.clone(),
        kbuild_dir,
        apt: &apt,
        vm: vm_config,
        initramfs,
        out: args.out.clone(),
        jobs: args.jobs,
        repeat: args.repeat,
        fuzz: !args.no_fuzz,
        progress: Progress::new(started),
    };
    if args.debug_kernel {
        println!("nsverify-vm mutants --debug-kernel: accel {accel} ({why}); source {} {}", spec.source.package, spec.source.version);
        return debug_kernel(&ctx);
    }
    println!(
        "nsverify-vm mutants: {} mutant(s), {} boot(s) each, {} VM(s) at a time; accel {accel} ({why}); source {} {}",
        chosen.len(),
        args.repeat,
        args.jobs,
        spec.source.package,
        spec.source.version
    );
    let (build, ids, base) = match runs::prove_base(&ctx) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("nsverify-vm mutants: {e:#}");
            return Ok(EXIT_INFRASTRUCTURE);
        }
    };
    let mut dead = Vec::new();
    for m in &chosen {
        let (_, unmatched) = list::expand(&m.must_fail, &ids);
        dead.extend(unmatched.into_iter().map(|p| format!("{}: {p}", m.id)));
    }
    if args.case_args.is_empty() {
        anyhow::ensure!(dead.is_empty(), "must_fail patterns that name no case of the base run: {}", dead.join(", "));
    } else if !dead.is_empty() {
        println!("nsverify-vm mutants: not run with {:?}, so not judged: {}", args.case_args, dead.join(", "));
    }
    let results = runs::run_all(&ctx, &build, &ids, &chosen);
    let summary = report::Summary::new(format!("{} {}", spec.source.package, spec.source.version), base, results, started.elapsed());
    let md = summary.markdown();
    println!("\n{md}");
    std::fs::write(args.out.join("mutants.md"), &md)?;
    std::fs::write(args.out.join("mutants.json"), serde_json::to_string_pretty(&summary)? + "\n")?;
    println!("wrote {0}/mutants.md and {0}/mutants.json; whole run {1:.0}s", args.out.display(), started.elapsed().as_secs_f64());
    let unaccepted: Vec<&str> = summary.mutants.iter().filter(|r| !r.acceptable()).map(|r| r.mutant.id.as_str()).collect();
    // A kill (or an accepted survivor) for each; the figure itself is in mutants.md.
    if unaccepted.is_empty() {
        Ok(EXIT_PASSED)
    } else {
        eprintln!("nsverify-vm mutants: not killed and not accepted (ci/mutants/mutants.toml `accepted`): {}", unaccepted.join(", "));
        Ok(EXIT_CASES_FAILED)
    }
}

/// `mutants --debug-kernel`: the debug variant's run and its findings.
fn debug_kernel(ctx: &runs::MutantRun) -> Result<u8> {
    let (figures, loaded) = match runs::debug_run(ctx) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("nsverify-vm mutants --debug-kernel: {e:#}");
            return Ok(EXIT_INFRASTRUCTURE);
        }
    };
    let r = &loaded.result;
    let failing: Vec<String> = loaded
        .reports
        .iter()
        .flat_map(|(run, recs)| recs.iter().filter(|r| r.fails_run()).map(move |r| format!("{run}: {}", r.id)))
        .collect();
    let mut md = format!(
        "# Debug kernel ({})\n\nBuilt in {:.0}s; suite and fuzz suite in the VM: {:.0}s; {} records; status {}.\n\n",
        figures.release,
        figures.build_s,
        figures.vm_s,
        figures.cases,
        r.status.word()
    );
    md += &format!("Kernel-health reports on the console (claim K1): {}\n", figures.console_reports.len());
    for l in &figures.console_reports {
        md += &format!("    {l}\n");
    }
    if !failing.is_empty() {
        md += &format!("\nFailing cases: {}\n", failing.join(", "));
    }
    if let Some(e) = &r.error {
        md += &format!("\nInfrastructure: {e}\n");
    }
    println!("\n{md}");
    std::fs::write(ctx.out.join("debug.md"), &md)?;
    std::fs::write(ctx.out.join("debug.json"), serde_json::to_string_pretty(&figures)? + "\n")?;
    Ok(if r.status == Status::Infrastructure {
        EXIT_INFRASTRUCTURE
    } else if !figures.console_reports.is_empty() || r.status == Status::CasesFailed {
        EXIT_CASES_FAILED
    } else {
        EXIT_PASSED
    })
}
