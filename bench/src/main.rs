//! Runs the performance suite and prints and saves its report.
//!
//! ```text
//! cargo run --release -p bench -- [--check] [--sizes] [--out FILE]
//! cargo run --release -p bench -- --warm
//! ```
//!
//! `--warm` runs only the warm overhead comparison and prints it: a short
//! run to profile or to try a change on.
//!
//! `--check` runs the short CI version and fails when a ratio check does;
//! `--sizes` also builds the arm64 zips (slow); `--out` is where the
//! Markdown report goes (default `target/bench/report.md`; in a file that
//! has them, such as `docs/performance.md`, it replaces what stands between
//! the results markers, and leaves the prose around them).

use std::path::PathBuf;
use std::process::ExitCode;

use bench::suite::{self, Options};

fn main() -> ExitCode {
    let mut options = Options {
        check: false,
        sizes: false,
    };
    let mut out = None;
    let mut warm_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--check" => options.check = true,
            "--sizes" => options.sizes = true,
            "--warm" => warm_only = true,
            "--out" => out = args.next().map(PathBuf::from),
            other => {
                eprintln!(
                    "unknown argument {other}; usage: bench [--check] [--sizes] [--out FILE] | --warm"
                );
                return ExitCode::FAILURE;
            }
        }
    }
    let out = out.unwrap_or_else(|| bench::process::target_dir().join("bench/report.md"));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("no Tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    if warm_only {
        return match runtime.block_on(suite::warm_only()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("the warm comparison failed: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    let report = match runtime.block_on(suite::run(options)) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("the suite failed: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let markdown = bench::report::document(&report, options);
    println!("{markdown}");
    if let Some(dir) = out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(error) = bench::report::save(&out, &markdown) {
        eprintln!("could not write {}: {error}", out.display());
        return ExitCode::FAILURE;
    }
    eprintln!("report written to {}", out.display());
    if options.check && !report.checks_pass() {
        eprintln!("a performance check failed");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
