//! A private, throwaway PostgreSQL server for tests and local runs, started from
//! the machine's own PostgreSQL binaries with no setup.
//!
//! [`DevDb::ensure_running`] takes a directory and makes sure a server whose
//! files live there is up, creating the cluster on first use and reusing a
//! server that is already running. The server listens on 127.0.0.1 only, on a
//! free port, trusts every local connection (user `postgres`, no password) and
//! trades durability for speed (`fsync=off`): it is meant for data you can lose.
//!
//! How the parts fit:
//! - `bin_dir` finds `initdb`, `pg_ctl` and `pg_isready` ([`find_bin_dir`]);
//! - `run_as` decides which user runs them: PostgreSQL refuses root, so as root
//!   they run as the `postgres` system user;
//! - `location` picks where the files go, falling back to the temp dir when that
//!   user cannot reach the requested directory;
//! - `pgbouncer` puts PgBouncer in transaction mode in front of a server
//!   ([`PgBouncer`]), for testing the functions as they run behind a pooler;
//! - `lock` serialises concurrent callers (one process per test) on a lock file;
//! - `server` runs `initdb`/`pg_ctl`/`pg_isready` on the data directory, with
//!   `pidfile` reading `postmaster.pid` and `log_tail` quoting `server.log` in errors.
//!
//! Beside it, [`cargo`]: a `cargo` command for programs that cargo started
//! (`cargo xtask`, the tests), without the variables that would make each
//! of their builds rebuild crates; and [`npm_ci`], the Node.js packages
//! that the tests and the benchmarks run.
//!
//! Layout of a directory: `data/` (the cluster), `server.log`, `devdb.lock`.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! let db = devdb::DevDb::ensure_running(std::path::Path::new("target/devdb/example"))?;
//! println!("DATABASE_URL={}", db.url());
//! db.stop_and_remove()?;
//! # Ok(())
//! # }
//! ```

mod bin_dir;
mod cargo;
mod location;
mod lock;
mod log_tail;
mod npm;
mod pgbouncer;
mod pidfile;
mod run_as;
mod server;

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

pub use bin_dir::find_bin_dir;
pub use cargo::cargo;
use lock::DirLock;
pub use log_tail::log_tail;
pub use npm::npm_ci;
pub use pgbouncer::{PgBouncer, Upstream};
use run_as::RunAs;
use server::Server;

/// Attempts at locking a directory that another process keeps deleting.
const LOCK_ATTEMPTS: u32 = 5;

/// A running private PostgreSQL server.
///
/// Dropping it leaves the server running, so that other processes (and later
/// runs) can share it; call [`DevDb::stop`] or [`DevDb::stop_and_remove`] to end it.
#[derive(Debug)]
pub struct DevDb {
    /// The directory the caller asked for.
    requested: PathBuf,
    /// Where the files really are: `requested`, or its temp-dir fallback.
    root: PathBuf,
    data_dir: PathBuf,
    port: u16,
    bin_dir: PathBuf,
    run_as: RunAs,
}

impl DevDb {
    /// Start (or reuse, if already running) a server whose data lives in `dir`.
    ///
    /// The directory is created if needed; an existing cluster in it is kept, so
    /// a local database survives between runs. Safe to call from many processes
    /// at once: an exclusive lock on `dir/devdb.lock` is held while checking,
    /// initialising and starting, so one caller starts the server and the others
    /// reuse it.
    ///
    /// When running as root, the server runs as the `postgres` system user,
    /// which must be able to reach `dir`. If a parent directory shuts it out
    /// (a project under `/root`, say), the files go to
    /// `<temp dir>/devdb-<hash of dir's canonical path>` instead, which is noted
    /// once on stderr; the same `dir` always maps to the same fallback.
    pub fn ensure_running(dir: &Path) -> Result<DevDb> {
        let bin_dir = find_bin_dir()?;
        let run_as = RunAs::detect()?;
        let (root, _lock) = lock_dir(dir, &run_as)?;
        run_as.give(&root)?;
        let server = Server {
            bin_dir: &bin_dir,
            run_as: &run_as,
            root: &root,
        };
        server.init_if_needed()?;
        let port = match server.running()? {
            Some(pid) => pid.port,
            None => server.start()?,
        };
        server.wait_ready(port)?;
        Ok(DevDb {
            requested: dir.to_path_buf(),
            data_dir: server.data_dir(),
            root,
            port,
            bin_dir,
            run_as,
        })
    }

    /// The server already running from `dir`, if any; never starts one.
    pub fn running(dir: &Path) -> Result<Option<DevDb>> {
        if !dir.exists() {
            return Ok(None);
        }
        let bin_dir = find_bin_dir()?;
        let run_as = RunAs::detect()?;
        let (root, _lock) = lock_dir(dir, &run_as)?;
        let server = Server {
            bin_dir: &bin_dir,
            run_as: &run_as,
            root: &root,
        };
        let Some(pid) = server.running()? else {
            return Ok(None);
        };
        Ok(Some(DevDb {
            requested: dir.to_path_buf(),
            data_dir: server.data_dir(),
            root,
            port: pid.port,
            bin_dir,
            run_as,
        }))
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's data directory (PGDATA): `<dir>/data`, or under the fallback.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Where the server's files are: the requested directory or its fallback.
    pub fn root_dir(&self) -> &Path {
        &self.root
    }

    /// Stops the server (`pg_ctl stop -m fast`), keeping its data. Fine if it
    /// is not running any more.
    pub fn stop(&self) -> Result<()> {
        if !self.root.exists() {
            return Ok(());
        }
        let (_, _lock) = lock_dir(&self.requested, &self.run_as)?;
        Server {
            bin_dir: &self.bin_dir,
            run_as: &self.run_as,
            root: &self.root,
        }
        .stop()
    }

    /// Stops the server, then deletes its directory (and the fallback's, if used).
    pub fn stop_and_remove(self) -> Result<()> {
        self.stop()?;
        remove_dir(&self.root)?;
        if self.requested.exists() {
            remove_dir(&self.requested)?;
        }
        Ok(())
    }
}

/// Resolves where `dir`'s files live and locks it, retrying if the directory
/// is deleted under us while waiting.
fn lock_dir(dir: &Path, run_as: &RunAs) -> Result<(PathBuf, DirLock)> {
    for _ in 0..LOCK_ATTEMPTS {
        let root = location::resolve(dir, run_as)?;
        if let Some(lock) = lock::lock(&root)? {
            return Ok((root, lock));
        }
    }
    bail!(
        "Failed to lock {}: it keeps being deleted by another process",
        dir.display()
    )
}

fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("Failed to remove {}", dir.display())),
    }
}
