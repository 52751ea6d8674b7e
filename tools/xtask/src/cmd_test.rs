//! `cargo xtask test`: the whole suite under cargo-nextest, with a database.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use signal_hook::consts::SIGTERM;

use crate::child::{Event, exit_code, next_event};
use crate::database::Database;
use crate::signals;
use crate::tools::{cargo, ensure_cargo_lambda, ensure_nextest};

/// Returns nextest's exit code. A private database is removed afterwards
/// whatever happened, so each run starts from an empty cluster.
pub fn run(root: &Path, nextest_args: &[String]) -> Result<u8> {
    let started = Instant::now();
    let signals = signals::listen()?;
    ensure_nextest()?;
    // The end-to-end test runs the backend under `cargo lambda watch`.
    ensure_cargo_lambda()?;
    build_binaries(root)?;
    let db = Database::from_env_or_start(&root.join("target/devdb/test"))?;
    let outcome = run_nextest(root, &db, nextest_args, &signals);
    let cleanup = db.remove();
    println!(
        "cargo xtask test: finished in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let code = outcome?;
    cleanup.context("Failed to remove the private test database")?;
    Ok(code)
}

/// Builds every function's binary first: the tests that run them as
/// processes (and `cargo lambda watch`) then start at once, and nextest,
/// which builds test targets only, never runs a stale one.
fn build_binaries(root: &Path) -> Result<()> {
    let status = Command::new(cargo())
        .args(["build", "--workspace", "--bins"])
        .current_dir(root)
        .status()
        .context("Failed to run cargo build")?;
    if !status.success() {
        anyhow::bail!("Failed to build the functions ({status})");
    }
    Ok(())
}

fn run_nextest(
    root: &Path,
    db: &Database,
    nextest_args: &[String],
    signals: &std::sync::mpsc::Receiver<i32>,
) -> Result<u8> {
    let mut cmd = Command::new(cargo());
    cmd.args(["nextest", "run", "--workspace", "--no-fail-fast"])
        .args(nextest_args)
        .current_dir(root);
    if db.is_private() {
        cmd.env("DATABASE_URL", &db.url);
    }
    let mut child = cmd.spawn().context("Failed to run cargo nextest")?;
    loop {
        match next_event(&mut child, signals)? {
            Event::Exited(status) => return Ok(exit_code(status)),
            // Ctrl-C reaches nextest directly (same process group) and it winds
            // down by itself; SIGTERM was meant for us alone, so pass it on.
            Event::Signal(SIGTERM) => {
                let pid = i32::try_from(child.id()).context("Failed to convert a child PID")?;
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
            Event::Signal(_) => {}
        }
    }
}
