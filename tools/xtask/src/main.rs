//! The project's commands, run as `cargo xtask <command>` (an alias in
//! `.cargo/config.toml`), so that testing and running the backend locally need
//! nothing but Rust and the machine's PostgreSQL binaries.
//!
//! - `cargo xtask test [-- <nextest args>]` runs the whole test suite with
//!   cargo-nextest, against `POSTGRES_URL`/`DATABASE_URL` if set, else against a
//!   private throwaway server (see the `devdb` crate) that is removed afterwards.
//! - `cargo xtask db start|stop|url [--dir <dir>]` manages the local development
//!   database (default `<workspace>/.devdb`) on its own.
//! - `cargo xtask dev` runs the backend locally: database, migrations, then
//!   `cargo lambda watch` on <http://localhost:9000> until Ctrl-C.
//! - `cargo xtask reliability [--load-secs N]` runs the fault, load and
//!   security scenarios and writes `docs/reliability.md` from their records.
//!
//! A `.env` file is not read: set variables in the shell instead.
//!
//! How the parts fit: `cmd_*` hold one command each; `database` decides between
//! an external database and a private one; `tools` installs the cargo
//! subcommands a command needs; `signals` and `child` let a command outlive
//! Ctrl-C long enough to stop what it started; `workspace` finds the root.

mod child;
mod cmd_db;
mod cmd_dev;
mod cmd_reliability;
mod cmd_test;
mod database;
mod signals;
mod tools;
mod workspace;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Project commands: test, db, dev, reliability"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the test suite (cargo nextest), with a private database unless
    /// POSTGRES_URL or DATABASE_URL is set.
    Test {
        /// Extra arguments for `cargo nextest run`, after `--`.
        #[arg(last = true)]
        nextest_args: Vec<String>,
    },
    /// Manage the local development database on its own.
    Db {
        /// Where the database's files live (default: .devdb in the workspace root).
        #[arg(long, global = true)]
        dir: Option<PathBuf>,
        #[command(subcommand)]
        action: cmd_db::Action,
    },
    /// Run the whole backend locally with `cargo lambda watch`.
    Dev,
    /// Run the fault, load and security scenarios and write
    /// docs/reliability.md from what they measured.
    Reliability {
        /// How long the load scenario runs, in seconds.
        #[arg(long, default_value_t = 5)]
        load_secs: u64,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<u8> {
    let root = workspace::root()?;
    match cli.command {
        Command::Test { nextest_args } => cmd_test::run(&root, &nextest_args),
        Command::Db { dir, action } => {
            let dir = dir.unwrap_or_else(|| root.join(".devdb"));
            cmd_db::run(action, &dir).map(|()| 0)
        }
        Command::Dev => cmd_dev::run(&root),
        Command::Reliability { load_secs } => cmd_reliability::run(&root, load_secs),
    }
}
