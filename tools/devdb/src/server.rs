//! Driving one data directory with `initdb`, `pg_ctl` and `pg_isready`.
//!
//! Everything here assumes the caller holds the directory's lock, so checking
//! the state and acting on it cannot race with another process doing the same.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::log_tail::log_tail;
use crate::pidfile::PostmasterPid;
use crate::run_as::RunAs;

const START_ATTEMPTS: u32 = 3;
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// One server's files under `root`: `data/` (PGDATA) and `server.log`.
pub(crate) struct Server<'a> {
    pub(crate) bin_dir: &'a Path,
    pub(crate) run_as: &'a RunAs,
    pub(crate) root: &'a Path,
}

impl Server<'_> {
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.root.join("server.log")
    }

    fn pg_command(&self, program: &str) -> Command {
        self.run_as.command(&self.bin_dir.join(program), self.root)
    }

    /// Creates the cluster unless one exists: local runs keep their data.
    pub(crate) fn init_if_needed(&self) -> Result<()> {
        let data = self.data_dir();
        if data.join("PG_VERSION").exists() {
            return Ok(());
        }
        let mut failures = Vec::new();
        // C.UTF-8 sorts like C but keeps UTF-8 character classes; not every system has it.
        for locale in ["C.UTF-8", "C"] {
            remove_if_present(&data)?;
            let output = self
                .pg_command("initdb")
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "-N"])
                .arg(format!("--locale={locale}"))
                .output()
                .context("Failed to run initdb")?;
            if output.status.success() {
                return Ok(());
            }
            failures.push(format!("with --locale={locale}: {}", describe(&output)));
        }
        bail!(
            "Failed to create a database cluster in {}:\n{}",
            data.display(),
            failures.join("\n")
        )
    }

    /// The live server of this data directory, if any; clears a stale pid file.
    pub(crate) fn running(&self) -> Result<Option<PostmasterPid>> {
        let data = self.data_dir();
        let Some(pid) = PostmasterPid::read(&data)? else {
            return Ok(None);
        };
        if pid.is_alive() {
            return Ok(Some(pid));
        }
        // The server crashed or the machine restarted; the next start must not trip over it.
        match std::fs::remove_file(data.join("postmaster.pid")) {
            Ok(()) => Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).context("Failed to remove a stale postmaster.pid"),
        }
    }

    /// Starts the server on a free port and returns that port.
    pub(crate) fn start(&self) -> Result<u16> {
        let log = self.log_file();
        let mut attempt = 1;
        loop {
            let port = free_port()?;
            let log_start = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
            let output = self
                .pg_command("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "-o"])
                .arg(server_options(port))
                .arg("start")
                .output()
                .context("Failed to run pg_ctl start")?;
            if output.status.success() {
                return Ok(port);
            }
            let tail = log_tail(&log, log_start);
            // Another program can take the port between choosing it and binding it.
            if attempt < START_ATTEMPTS && is_port_clash(&tail) {
                attempt += 1;
                continue;
            }
            bail!(
                "Failed to start PostgreSQL on port {port}: {}\n--- last lines of {} ---\n{tail}",
                describe(&output),
                log.display()
            );
        }
    }

    /// Waits until the server accepts connections on `port`.
    pub(crate) fn wait_ready(&self, port: u16) -> Result<()> {
        let program = self.bin_dir.join("pg_isready");
        // Some packagings ship pg_isready only with the client, on PATH.
        let program = if program.is_file() {
            program
        } else {
            PathBuf::from("pg_isready")
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let status = Command::new(&program)
                .args(["-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres"])
                .args(["-t", "2", "-p", &port.to_string()])
                .status()
                .with_context(|| format!("Failed to run {}", program.display()))?;
            if status.success() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "Failed to reach PostgreSQL on 127.0.0.1:{port} within {} s\n--- last lines of {} ---\n{}",
                    READY_TIMEOUT.as_secs(),
                    self.log_file().display(),
                    log_tail(&self.log_file(), 0)
                );
            }
            sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server with `pg_ctl stop -m fast`; fine if it is not running.
    pub(crate) fn stop(&self) -> Result<()> {
        if self.running()?.is_none() {
            return Ok(());
        }
        let output = self
            .pg_command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "fast", "-w", "-t", "60", "stop"])
            .output()
            .context("Failed to run pg_ctl stop")?;
        // It may have exited on its own between the check and the stop.
        if output.status.success() || self.running()?.is_none() {
            return Ok(());
        }
        bail!("Failed to stop PostgreSQL: {}", describe(&output))
    }
}

/// `pg_ctl -o` hands this to a shell, hence the quoted empty socket directory
/// (no Unix socket: nothing to clean up, no clash over `/var/run/postgresql`).
fn server_options(port: u16) -> String {
    format!(
        "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' \
         -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
}

pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).context("Failed to find a free port")?;
    let port = listener
        .local_addr()
        .context("Failed to read the free port")?
        .port();
    Ok(port)
}

fn is_port_clash(log: &str) -> bool {
    log.contains("Address already in use") || log.contains("could not bind IPv4 address")
}

fn remove_if_present(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("Failed to remove {}", dir.display())),
    }
}

fn describe(output: &Output) -> String {
    let mut text = format!("{}", output.status);
    for stream in [&output.stdout, &output.stderr] {
        let s = String::from_utf8_lossy(stream);
        if !s.trim().is_empty() {
            text.push('\n');
            text.push_str(s.trim_end());
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_disable_the_unix_socket_and_durability() {
        let opts = server_options(5555);
        assert!(opts.contains("-p 5555"));
        assert!(opts.contains("unix_socket_directories=''"));
        assert!(opts.contains("fsync=off"));
    }

    #[test]
    fn port_clash_is_recognised() {
        assert!(is_port_clash(
            "LOG:  could not bind IPv4 address \"127.0.0.1\": Address already in use"
        ));
        assert!(!is_port_clash("FATAL:  data directory has wrong ownership"));
    }
}
