//! `nsverify-vm`: runs nsverify's case suite inside QEMU VMs, one per kernel
//! of the matrix in `ci/kernels.toml`, and builds the case x kernel table.
//! See ci/README.md. Exit codes: see [`outcome::EXIT_CODES`].
//!
//! The command line is [`cli`]; `run` is [`run::command`], `mutants`
//! [`mutants::command`]; `list`, `fetch` and `table` are dispatched here.

#![forbid(unsafe_code)]

mod apt;
mod arch;
mod bzimage;
mod cli;
mod deviations;
mod fetch;
mod initramfs;
mod kbuild;
#[cfg(test)]
mod layout;
mod matrix;
mod mutants;
mod outcome;
mod payload;
mod run;
mod table;
mod vm;

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use cli::{Cli, Cmd};
use outcome::{apt_for, finish_table, missing, report_unknown, unknown_results, EXIT_INFRASTRUCTURE, EXIT_PASSED};
use payload::repo_root;
use table::Loaded;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("nsverify-vm: error: {e:#}");
            ExitCode::from(EXIT_INFRASTRUCTURE)
        }
    }
}

fn dispatch(cli: Cli) -> Result<u8> {
    let matrix = cli.matrix()?;
    match cli.command {
        Cmd::List { json } => {
            if json {
                let names: Vec<&str> = matrix.kernels.iter().map(|k| k.name.as_str()).collect();
                println!("{}", serde_json::json!({ "kernel": names }));
            } else {
                for k in &matrix.kernels {
                    println!("{:<10} {}", k.name, k.describe(&repo_root()));
                }
            }
            Ok(EXIT_PASSED)
        }
        Cmd::Fetch { kernels, refresh } => {
            let (entries, unknown) = matrix.select(&kernels);
            report_unknown(&unknown, &matrix);
            let apts = arch::Arch::ALL.map(|a| (a, apt_for(&matrix, &entries, &cli.cache_dir, a)));
            let mut code = if unknown.is_empty() { EXIT_PASSED } else { EXIT_INFRASTRUCTURE };
            for e in &entries {
                match fetch::ensure_kernel(
                    e,
                    &cli.cache_dir,
                    &repo_root(),
                    &apts.iter().find(|(a, _)| *a == e.arch).expect("every arch").1,
                    refresh,
                ) {
                    Ok((k, s)) => println!(
                        "{}: {} {} ({}) in {s:.1}s -> {}",
                        k.name,
                        if k.fetched_now { "fetched" } else { "cached" },
                        k.version,
                        k.release,
                        k.dir.display()
                    ),
                    Err(err) => {
                        eprintln!("{}: fetch failed: {err:#}", e.name);
                        code = EXIT_INFRASTRUCTURE;
                    }
                }
            }
            Ok(code)
        }
        Cmd::Deviations(args) => {
            let order: Vec<String> = matrix.kernels.iter().map(|k| k.name.clone()).collect();
            deviations::command(&order, &args)
        }
        Cmd::Run(args) => run::command(&matrix, &cli.cache_dir, args),
        Cmd::Mutants(args) => mutants::command::run_mutants(&matrix, &cli.cache_dir, args),
        Cmd::Table { results, kernels, out, full_table } => {
            let (entries, unknown) = matrix.select(&kernels);
            report_unknown(&unknown, &matrix);
            let mut loaded: Vec<Loaded> = entries
                .iter()
                .map(|e| {
                    let dir = results.join(&e.name);
                    table::load(&dir).unwrap_or_else(|err| missing(e, &format!("no usable result: {err:#}")))
                })
                .collect();
            loaded.extend(unknown_results(&unknown));
            finish_table(&loaded, out.as_deref().unwrap_or(&results), !unknown.is_empty(), full_table)
        }
    }
}
