//! `bench-compare`: reports of `cargo bench -p nsverify-benches` (one per
//! kernel) side by side.
//!
//! ```text
//! cargo run -p nsverify-benches --bin bench-compare -- [--noise 0.05] [--markdown out.md] [--svg out.svg] first.json other.json...
//! ```
//!
//! Prints a table per operation (median and ratio to fork per report, the
//! change against the first report, flagged when beyond noise; where a
//! report has the independent floor, the ratio to it, and the report flagged
//! SUSPECT when figures exceed 1.10 times their floor) and writes
//! it as Markdown and an SVG chart when asked. A file that is missing,
//! truncated or not a report is named in the error, and nothing is written.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use benches::compare::{compare, DEFAULT_NOISE};
use benches::report;

const USAGE: &str = "usage: bench-compare [--noise FRACTION] [--markdown OUT.md] [--svg OUT.svg] REPORT.json [REPORT.json...]";

struct Args {
    noise: f64,
    markdown: Option<PathBuf>,
    svg: Option<PathBuf>,
    reports: Vec<PathBuf>,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> anyhow::Result<Args> {
    let mut out = Args { noise: DEFAULT_NOISE, markdown: None, svg: None, reports: Vec::new() };
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value\n{USAGE}"));
        match a.as_str() {
            "--noise" => {
                let v = value("--noise")?;
                out.noise = v
                    .parse()
                    .ok()
                    .filter(|n: &f64| (0.0..1.0).contains(n))
                    .with_context(|| format!("--noise {v:?}: expected a fraction such as 0.05"))?;
            }
            "--markdown" => out.markdown = Some(value("--markdown")?.into()),
            "--svg" => out.svg = Some(value("--svg")?.into()),
            "-h" | "--help" => bail!("{USAGE}"),
            s if s.starts_with('-') => bail!("unknown option {s}\n{USAGE}"),
            _ => out.reports.push(a.into()),
        }
    }
    if out.reports.is_empty() {
        bail!("no report given\n{USAGE}");
    }
    Ok(out)
}

fn run() -> anyhow::Result<()> {
    let args = parse_args(std::env::args().skip(1))?;
    // Read every file first: one bad file is reported with its name, along
    // with any other bad one, before anything is written.
    let (reports, errors): (Vec<_>, Vec<_>) = args.reports.iter().map(|p| report::load(p)).partition(Result::is_ok);
    if !errors.is_empty() {
        let lines: Vec<String> = errors.into_iter().filter_map(Result::err).map(|e| e.to_string()).collect();
        bail!("{} unusable report(s), nothing written:\n  {}", lines.len(), lines.join("\n  "));
    }
    let reports: Vec<_> = reports.into_iter().filter_map(Result::ok).collect();
    let comparison = compare(&reports, args.noise);
    let svg = args.svg.as_ref().map(|_| benches::chart::svg(&comparison)).transpose()?;
    print!("{}", comparison.text());
    if let Some(path) = &args.markdown {
        std::fs::write(path, comparison.markdown()).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("bench-compare: wrote {}", path.display());
    }
    if let (Some(path), Some(svg)) = (&args.svg, svg) {
        std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("bench-compare: wrote {}", path.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-compare: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> anyhow::Result<Args> {
        parse_args(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_options() {
        let a = args(&["--noise", "0.1", "--svg", "c.svg", "a.json", "b.json"]).unwrap();
        assert_eq!((a.noise, a.svg.unwrap(), a.reports.len()), (0.1, PathBuf::from("c.svg"), 2));
        assert!(args(&[]).is_err());
        assert!(args(&["--noise", "5", "a.json"]).is_err());
        assert!(args(&["--svg"]).is_err());
        assert!(args(&["--bogus", "a.json"]).is_err());
    }
}
