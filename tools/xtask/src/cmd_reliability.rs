//! `cargo xtask reliability [--load-secs N]`: runs the fault, load and
//! security scenarios (`tests/tests/faults.rs`, `load.rs`, `security.rs`)
//! and writes what they did, checked and measured to
//! `docs/reliability.md`.
//!
//! The tests find their database as every test does (`POSTGRES_URL` or
//! `DATABASE_URL`, else the private server in `target/devdb/test`). Each
//! leaves a JSON record in `target/reliability/`, passed or failed, and the
//! report is written from those records even when a scenario fails: a
//! failure is a result too. The exit code is nextest's.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::tools::{cargo, ensure_nextest};

/// The test binaries that make up the report.
const SCENARIOS: &str =
    "package(integration-tests) & (binary(faults) | binary(load) | binary(security))";

/// Runs the scenarios, writes the report, and returns nextest's exit code.
pub fn run(root: &Path, load_secs: u64) -> Result<u8> {
    ensure_nextest()?;
    let records = root.join("target/reliability");
    // Records of an earlier run must not pass for this one's.
    if records.exists() {
        std::fs::remove_dir_all(&records)
            .with_context(|| format!("Failed to clear {}", records.display()))?;
    }
    std::fs::create_dir_all(&records)?;
    // The process tests run the function binaries: build them up front.
    let built = cargo()
        .args(["build", "--workspace", "--bins"])
        .current_dir(root)
        .status()
        .context("Failed to run cargo build")?;
    anyhow::ensure!(built.success(), "Failed to build the functions ({built})");
    let tests = cargo()
        .args(["nextest", "run", "--no-fail-fast", "-E", SCENARIOS])
        .env("RELIABILITY_FIGURES_DIR", &records)
        .env("RELIABILITY_LOAD_SECS", load_secs.to_string())
        .current_dir(root)
        .status()
        .context("Failed to run cargo nextest")?;
    let command = if load_secs == 5 {
        "cargo xtask reliability".to_owned()
    } else {
        format!("cargo xtask reliability --load-secs {load_secs}")
    };
    let context = format!(
        "Run on {} CPU cores, PostgreSQL {}.",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        postgres_version()
    );
    let report = cargo()
        .args([
            "run",
            "--quiet",
            "-p",
            "integration-tests",
            "--bin",
            "reliability_report",
            "--",
        ])
        .arg(&records)
        .arg(root.join("docs/reliability.md"))
        .args([&command, &context])
        .current_dir(root)
        .status()
        .context("Failed to run the report")?;
    anyhow::ensure!(report.success(), "Failed to write the report ({report})");
    Ok(tests.code().map_or(1, |c| u8::try_from(c).unwrap_or(1)))
}

/// The server binaries' version (`postgres --version`), as devdb finds them.
fn postgres_version() -> String {
    devdb::find_bin_dir()
        .ok()
        .and_then(|dir| {
            Command::new(dir.join("postgres"))
                .arg("--version")
                .output()
                .ok()
        })
        // "postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .nth(2)
                .map(str::to_owned)
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "(version unknown)".to_owned())
}
