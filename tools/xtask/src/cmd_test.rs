//! `cargo xtask test`: the whole suite under cargo-nextest, with a database,
//! then the API's tests a second time with the functions behind PgBouncer in
//! transaction mode (`DB_POOLER=transaction`), as they run behind PgBouncer
//! or RDS Proxy in production.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use devdb::{PgBouncer, Upstream};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use signal_hook::consts::SIGTERM;

use crate::child::{Event, exit_code, next_event};
use crate::database::Database;
use crate::signals;
use crate::tools::{
    cargo, ensure_cargo_lambda, ensure_nextest, ensure_node_packages, ensure_pgbouncer,
};

/// The test binaries that go through the API's routes: run again behind
/// PgBouncer. (The others count server backends or run processes of their
/// own, which a pooler in between would only blur.)
const POOLER_PASS: &str = "package(integration-tests) & (binary(auth) | binary(history) \
     | binary(vote) | binary(document) | binary(suggestions) | binary(chat) \
     | binary(chat_openai) | binary(ownership) | binary(queries))";

/// Returns nextest's exit code. A private database is removed afterwards
/// whatever happened, so each run starts from an empty cluster.
pub fn run(root: &Path, nextest_args: &[String]) -> Result<u8> {
    let started = Instant::now();
    let signals = signals::listen()?;
    ensure_nextest()?;
    // The end-to-end test runs the backend under `cargo lambda watch`.
    ensure_cargo_lambda()?;
    // Both passes need it: the main suite's pooler tests start their own.
    ensure_pgbouncer()?;
    ensure_node_packages(root)?;
    build_binaries(root)?;
    let db = Database::from_env_or_start(&root.join("target/devdb/test"))?;
    let mut outcome = run_nextest(root, &db, nextest_args, None, &signals);
    // The pooler pass belongs to the whole suite; a run narrowed by
    // arguments is someone looking at particular tests. After a failure it
    // is left out, so that the failures are what the log ends with.
    if nextest_args.is_empty() {
        match outcome {
            Ok(0) => outcome = run_through_pgbouncer(root, &db, &signals),
            Ok(code) if code < 130 => println!(
                "cargo xtask test: the suite failed (see the failures above); \
                 the pass through PgBouncer is left out"
            ),
            _ => {}
        }
    }
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
    let status = cargo()
        .args(["build", "--workspace", "--bins"])
        .current_dir(root)
        .status()
        .context("Failed to run cargo build")?;
    if !status.success() {
        anyhow::bail!("Failed to build the functions ({status})");
    }
    Ok(())
}

/// The API's tests again ([`POOLER_PASS`]), with the functions reaching the
/// database through PgBouncer in transaction mode.
fn run_through_pgbouncer(
    root: &Path,
    db: &Database,
    signals: &std::sync::mpsc::Receiver<i32>,
) -> Result<u8> {
    let upstream = Upstream::from_url(&db.url)?;
    let bouncer = PgBouncer::start(&upstream, 5).context("Failed to start PgBouncer")?;
    println!(
        "cargo xtask test: the API's tests again, through PgBouncer (transaction mode) on port {}",
        bouncer.port()
    );
    let args = ["-E".to_owned(), POOLER_PASS.to_owned()];
    run_nextest(root, db, &args, Some(&bouncer.url("postgres")), signals)
}

fn run_nextest(
    root: &Path,
    db: &Database,
    nextest_args: &[String],
    pooler_url: Option<&str>,
    signals: &std::sync::mpsc::Receiver<i32>,
) -> Result<u8> {
    let mut cmd = cargo();
    cmd.args(["nextest", "run", "--workspace", "--no-fail-fast"])
        .args(nextest_args)
        .current_dir(root);
    if db.is_private() {
        cmd.env("DATABASE_URL", &db.url);
    }
    if let Some(url) = pooler_url {
        cmd.env("TEST_DB_POOLER_URL", url);
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
