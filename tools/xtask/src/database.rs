//! The database a command runs against: the one named by the environment, or
//! a private server that the command started and must clean up after.

use std::path::Path;

use anyhow::{Context, Result};
use devdb::DevDb;

/// Either an external database (left alone) or a private one (ours to stop).
pub struct Database {
    pub url: String,
    private: Option<DevDb>,
}

/// `POSTGRES_URL` (what the functions read) or else `DATABASE_URL` (what sqlx
/// and the tests read), if either is set.
fn url_from_env() -> Option<String> {
    ["POSTGRES_URL", "DATABASE_URL"]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|url| !url.trim().is_empty())
}

impl Database {
    /// The environment's database, or a private server with its files in `dir`.
    pub fn from_env_or_start(dir: &Path) -> Result<Self> {
        if let Some(url) = url_from_env() {
            println!("Using the database from POSTGRES_URL/DATABASE_URL");
            return Ok(Database { url, private: None });
        }
        println!("Starting a private PostgreSQL server in {}", dir.display());
        let db =
            DevDb::ensure_running(dir).context("Failed to start the private PostgreSQL server")?;
        println!("Database ready at {}", db.url());
        Ok(Database {
            url: db.url(),
            private: Some(db),
        })
    }

    pub fn is_private(&self) -> bool {
        self.private.is_some()
    }

    /// Stops a private server and keeps its data; leaves an external one alone.
    pub fn stop(self) -> Result<()> {
        match self.private {
            Some(db) => {
                println!("Stopping the private PostgreSQL server (data kept)");
                db.stop()
            }
            None => Ok(()),
        }
    }

    /// Stops a private server and deletes it; leaves an external one alone.
    pub fn remove(self) -> Result<()> {
        match self.private {
            Some(db) => {
                println!("Stopping and removing the private PostgreSQL server");
                db.stop_and_remove()
            }
            None => Ok(()),
        }
    }
}
