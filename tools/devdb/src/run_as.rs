//! Which user the PostgreSQL programs run as.
//!
//! `initdb`, `pg_ctl` and `postgres` refuse to run as root. Containers and CI
//! machines often run everything as root, so there the programs are started as
//! the `postgres` system user instead, and the directories they write are handed
//! to that user first.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use nix::unistd::{Gid, Uid, User, geteuid};

const SERVER_USER: &str = "postgres";

/// The identity PostgreSQL's programs are started with.
#[derive(Debug, Clone)]
pub(crate) enum RunAs {
    /// Not root: run the programs directly.
    CurrentUser,
    /// Root: switch to this (unprivileged) user in the child.
    User { uid: Uid, gid: Gid },
}

impl RunAs {
    pub(crate) fn detect() -> Result<Self> {
        if !geteuid().is_root() {
            return Ok(RunAs::CurrentUser);
        }
        let user = User::from_name(SERVER_USER)
            .with_context(|| format!("Failed to look up the {SERVER_USER:?} system user"))?;
        match user {
            Some(user) => Ok(RunAs::User {
                uid: user.uid,
                gid: user.gid,
            }),
            None => bail!(
                "Running as root, and PostgreSQL refuses to run as root, but there is no \
                 {SERVER_USER:?} system user to run it as: install the postgresql package \
                 (it creates that user) or run as an ordinary user"
            ),
        }
    }

    /// A command for `program` that runs as the right user, from `home`.
    ///
    /// `home` is used as working directory and `HOME` because the caller's own
    /// (say `/root`) may be unreadable for the `postgres` user.
    pub(crate) fn command(&self, program: &Path, home: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(home).stdin(Stdio::null());
        if let RunAs::User { uid, gid } = self {
            cmd.uid(uid.as_raw()).gid(gid.as_raw()).env("HOME", home);
        }
        cmd
    }

    /// Makes `path` owned by the user the programs run as (no-op when not root).
    pub(crate) fn give(&self, path: &Path) -> Result<()> {
        if let RunAs::User { uid, gid } = self {
            std::os::unix::fs::chown(path, Some(uid.as_raw()), Some(gid.as_raw())).with_context(
                || {
                    format!(
                        "Failed to hand {} to the {SERVER_USER:?} user",
                        path.display()
                    )
                },
            )?;
        }
        Ok(())
    }

    /// Whether the programs can enter `dir`, which fails when a parent directory
    /// (such as `/root`) is closed to them.
    pub(crate) fn can_enter(&self, dir: &Path) -> Result<bool> {
        if let RunAs::CurrentUser = self {
            return Ok(true);
        }
        let status = self
            .command(Path::new("test"), Path::new("/"))
            .arg("-x")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .with_context(|| {
                format!(
                    "Failed to check whether the {SERVER_USER:?} user can enter {}",
                    dir.display()
                )
            })?;
        Ok(status.success())
    }
}
