//! `cargo xtask dev`: the whole backend on this machine.
//!
//! Database (the environment's, or a private one whose data persists in
//! `.devdb`), migrations, then `cargo lambda watch`, which rebuilds and serves
//! the functions on <http://localhost:9000>, until Ctrl-C or SIGTERM.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::child::{Event, exit_code, next_event, stop_group};
use crate::database::Database;
use crate::signals;
use crate::tools::{cargo, ensure_cargo_lambda};

const BASE_URL: &str = "http://localhost:9000";
/// Only for a server on localhost; anything real must set its own secret.
const DEV_AUTH_SECRET: &str = "local-development-only-secret-do-not-use-anywhere-else";
const STOP_GRACE: Duration = Duration::from_secs(10);

pub fn run(root: &Path) -> Result<u8> {
    let signals = signals::listen()?;
    ensure_cargo_lambda()?;
    let db = Database::from_env_or_start(&root.join(".devdb"))?;
    let outcome = migrate_and_serve(root, &db.url, &signals);
    // The private server is stopped on every way out, but its data is kept.
    let stopped = db.stop();
    let code = outcome?;
    stopped.context("Failed to stop the private PostgreSQL server")?;
    Ok(code)
}

fn migrate_and_serve(root: &Path, url: &str, signals: &Receiver<i32>) -> Result<u8> {
    if !migrate(root, url, signals)? {
        println!("Interrupted.");
        return Ok(0);
    }

    let mut watch = spawn_watch(root, url)?;
    println!();
    println!("Backend running at {BASE_URL}");
    println!("Sign in as a guest, then list your chats:");
    println!(
        "  TOKEN=$(curl -s -X POST {BASE_URL}/api/auth/guest | sed -E 's/.*\"token\":\"([^\"]+)\".*/\\1/')"
    );
    println!("  curl -H \"Authorization: Bearer $TOKEN\" {BASE_URL}/api/history");
    println!("Chat (the reply streams in, word by word):");
    println!(
        "  curl -N {BASE_URL}/api/chat -H \"Authorization: Bearer $TOKEN\" -H 'content-type: application/json' \\\n    \
         -d '{{\"id\":\"'$(cat /proc/sys/kernel/random/uuid)'\",\"message\":{{\"id\":\"'$(cat /proc/sys/kernel/random/uuid)'\",\"role\":\"user\",\"parts\":[{{\"type\":\"text\",\"text\":\"Hello\"}}]}},\"selectedChatModel\":\"chat-model\",\"selectedVisibilityType\":\"private\"}}'"
    );
    println!("Press Ctrl-C to stop.");
    println!();

    match next_event(&mut watch, signals)? {
        Event::Signal(_) => {
            println!("Stopping cargo lambda watch...");
            stop_group(&mut watch, STOP_GRACE)?;
            Ok(0)
        }
        Event::Exited(status) => {
            eprintln!("cargo lambda watch exited ({status})");
            Ok(exit_code(status).max(1))
        }
    }
}

/// Runs the migrations; `false` if a signal interrupted them.
///
/// Output goes to a file rather than a pipe so that waiting for the process
/// and for signals needs no reader threads; it is shown only on failure.
fn migrate(root: &Path, url: &str, signals: &Receiver<i32>) -> Result<bool> {
    println!("Running the migrations (cargo run -p migrate)...");
    let log_dir = root.join("target/xtask");
    std::fs::create_dir_all(&log_dir)
        .with_context(|| format!("Failed to create {}", log_dir.display()))?;
    let log_path = log_dir.join("migrate.log");
    let log = File::create(&log_path)
        .with_context(|| format!("Failed to create {}", log_path.display()))?;
    let log_for_stderr = log
        .try_clone()
        .context("Failed to share the migration log")?;
    let mut child = cargo()
        .args(["run", "--quiet", "-p", "migrate"])
        .current_dir(root)
        .env("POSTGRES_URL", url)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_for_stderr)
        .spawn()
        .context("Failed to run cargo run -p migrate")?;
    let status = match next_event(&mut child, signals)? {
        Event::Exited(status) => status,
        Event::Signal(_) => {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(false);
        }
    };
    if !status.success() {
        let output = std::fs::read_to_string(&log_path).unwrap_or_default();
        bail!(
            "Failed to run the migrations ({status}):\n{}",
            output.trim_end()
        );
    }
    println!("Migrations applied.");
    Ok(true)
}

fn spawn_watch(root: &Path, url: &str) -> Result<Child> {
    let mut cmd = cargo();
    cmd.args(["lambda", "watch"])
        .current_dir(root)
        .env("POSTGRES_URL", url)
        // Its own process group: Ctrl-C then reaches only us, and we can stop
        // the watcher together with the builds and functions it spawned.
        .process_group(0)
        .stdin(Stdio::null());
    if std::env::var_os("AUTH_SECRET").is_none() {
        eprintln!(
            "warning: AUTH_SECRET is not set; using a built-in development secret, for local use only"
        );
        cmd.env("AUTH_SECRET", DEV_AUTH_SECRET);
    }
    if std::env::var_os("RUST_LOG").is_none() {
        // cargo lambda watch logs its whole configuration at info when it
        // stops; the functions' own info lines are what a developer wants.
        cmd.env(
            "RUST_LOG",
            "info,cargo_lambda_watch=warn,cargo_lambda=warn,tokio_graceful_shutdown=warn",
        );
    }
    cmd.spawn().context("Failed to start cargo lambda watch")
}
