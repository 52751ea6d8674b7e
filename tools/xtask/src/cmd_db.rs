//! `cargo xtask db start|stop|url`: the local development database alone, for
//! people who want PostgreSQL without the API.

use std::path::Path;

use anyhow::{Result, bail};
use clap::Subcommand;
use devdb::DevDb;

#[derive(Subcommand)]
pub enum Action {
    /// Start the server (or reuse the running one) and print its URL.
    Start,
    /// Stop the server, keeping its data.
    Stop,
    /// Print the URL of the running server.
    Url,
}

pub fn run(action: Action, dir: &Path) -> Result<()> {
    match action {
        Action::Start => {
            let db = DevDb::ensure_running(dir)?;
            eprintln!(
                "PostgreSQL is running (data in {})",
                db.data_dir().display()
            );
            println!("{}", db.url());
        }
        Action::Stop => match DevDb::running(dir)? {
            Some(db) => {
                db.stop()?;
                eprintln!("Stopped the PostgreSQL server in {}", dir.display());
            }
            None => eprintln!("No PostgreSQL server is running in {}", dir.display()),
        },
        Action::Url => match DevDb::running(dir)? {
            Some(db) => println!("{}", db.url()),
            None => bail!(
                "No PostgreSQL server is running in {}: start it with `cargo xtask db start`",
                dir.display()
            ),
        },
    }
    Ok(())
}
