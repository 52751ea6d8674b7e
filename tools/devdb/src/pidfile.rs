//! Reading `postmaster.pid`, the file by which a running server announces itself.
//!
//! Its first lines are the postmaster's PID, the data directory, the start time
//! and the port. The file outlives a crashed server, so a PID is only believed
//! after checking that the process still exists.

use std::io::ErrorKind;
use std::path::Path;

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

/// What `postmaster.pid` says about the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PostmasterPid {
    pub(crate) pid: i32,
    pub(crate) port: u16,
}

impl PostmasterPid {
    /// Reads `<data_dir>/postmaster.pid`; `None` when there is no such file.
    pub(crate) fn read(data_dir: &Path) -> Result<Option<Self>> {
        let path = data_dir.join("postmaster.pid");
        match std::fs::read_to_string(&path) {
            Ok(text) => parse(&text)
                .map(Some)
                .with_context(|| format!("Failed to parse {}", path.display())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("Failed to read {}", path.display())),
        }
    }

    /// Whether the recorded process still exists and is a PostgreSQL process.
    pub(crate) fn is_alive(&self) -> bool {
        process_exists(self.pid) && !is_other_program(self.pid)
    }
}

pub(crate) fn parse(text: &str) -> Result<PostmasterPid> {
    let mut lines = text.lines();
    let pid_line = lines
        .next()
        .context("Failed to find the PID line: file is empty")?;
    let pid: i32 = pid_line
        .trim()
        .parse()
        .with_context(|| format!("Failed to parse PID {pid_line:?}"))?;
    if pid <= 0 {
        bail!("Failed to parse PID: {pid} is not a process id");
    }
    let port_line = lines
        .nth(2)
        .context("Failed to find the port line (4th): file is too short")?;
    let port = port_line
        .trim()
        .parse()
        .with_context(|| format!("Failed to parse port {port_line:?}"))?;
    Ok(PostmasterPid { pid, port })
}

fn process_exists(pid: i32) -> bool {
    // Signal 0 checks existence only; EPERM means it exists but belongs to someone else.
    match kill(Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(errno) => errno == Errno::EPERM,
    }
}

/// Guards against a stale file whose PID is a zombie (killed, not yet reaped) or
/// has since been reused by another program. Where `/proc` can't tell, the
/// process is given the benefit of the doubt.
fn is_other_program(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat_is_live_postgres(&stat),
        Err(_) => false,
    }
}

/// `/proc/<pid>/stat` reads `<pid> (<comm>) <state> ...`; comm may itself hold
/// spaces or parentheses, hence the search for the last `)`.
fn stat_is_live_postgres(stat: &str) -> bool {
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        return true;
    };
    let comm = stat.get(open + 1..close).unwrap_or("");
    let state = stat
        .get(close + 1..)
        .unwrap_or("")
        .trim_start()
        .chars()
        .next();
    comm.starts_with("postgres") && !matches!(state, Some('Z' | 'X' | 'x'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed step should fail the test")]
mod tests {
    use super::*;

    const SAMPLE: &str =
        "4242\n/tmp/x/data\n1700000000\n54321\n\n127.0.0.1\n  1234567     32768\nready   \n";

    #[test]
    fn parses_pid_and_port() {
        assert_eq!(
            parse(SAMPLE).unwrap(),
            PostmasterPid {
                pid: 4242,
                port: 54321
            }
        );
    }

    #[test]
    fn parses_a_file_still_being_written() {
        // The server writes the first lines before the listen address and status.
        let early = "77\n/d\n1700000000\n5432\n";
        assert_eq!(parse(early).unwrap().port, 5432);
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse("").is_err());
        assert!(parse("abc\n/d\n1\n5432\n").is_err());
        assert!(parse("12\n/d\n").is_err());
        assert!(parse("12\n/d\n1\n99999\n").is_err());
        assert!(parse("-1\n/d\n1\n5432\n").is_err());
    }

    #[test]
    fn reads_missing_file_as_none() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(PostmasterPid::read(tmp.path()).unwrap(), None);
        std::fs::write(tmp.path().join("postmaster.pid"), SAMPLE).unwrap();
        assert_eq!(
            PostmasterPid::read(tmp.path()).unwrap().unwrap().port,
            54321
        );
    }

    #[test]
    fn zombies_and_other_programs_are_not_postmasters() {
        assert!(stat_is_live_postgres("4242 (postgres) S 1 4242 4242 0 -1"));
        assert!(!stat_is_live_postgres("4242 (postgres) Z 1 4242 4242 0 -1"));
        assert!(!stat_is_live_postgres("4242 (bash) S 1 4242 4242 0 -1"));
        assert!(!stat_is_live_postgres("4242 (a) b) R 1"));
    }

    #[test]
    fn this_process_is_not_a_postmaster_and_a_dead_pid_is_not_alive() {
        let me = PostmasterPid {
            pid: i32::try_from(std::process::id()).unwrap(),
            port: 1,
        };
        assert!(!me.is_alive());

        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        child.wait().unwrap();
        assert!(!PostmasterPid { pid, port: 1 }.is_alive());
    }
}
