//! Waiting for a child process while listening for signals, and stopping it.

use std::process::{Child, ExitStatus};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

const POLL: Duration = Duration::from_millis(100);

/// What happened first.
pub enum Event {
    Exited(ExitStatus),
    Signal(i32),
}

/// Blocks until `child` exits or a signal arrives.
pub fn next_event(child: &mut Child, signals: &Receiver<i32>) -> Result<Event> {
    loop {
        if let Some(status) = child
            .try_wait()
            .context("Failed to wait for a child process")?
        {
            return Ok(Event::Exited(status));
        }
        match signals.recv_timeout(POLL) {
            Ok(signal) => return Ok(Event::Signal(signal)),
            Err(RecvTimeoutError::Timeout) => {}
            // No more signals can come; just keep waiting for the child.
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(POLL),
        }
    }
}

/// Stops a child started in its own process group: SIGINT to the whole group
/// (it spawns builds and function processes of its own), then SIGKILL if it is
/// still there after `grace`.
pub fn stop_group(child: &mut Child, grace: Duration) -> Result<ExitStatus> {
    let group = Pid::from_raw(i32::try_from(child.id()).context("Failed to convert a child PID")?);
    // ESRCH only means the group is already gone, which is the goal.
    let _ = killpg(group, Signal::SIGINT);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Some(status) = child
            .try_wait()
            .context("Failed to wait for a child process")?
        {
            return Ok(status);
        }
        std::thread::sleep(POLL);
    }
    let _ = killpg(group, Signal::SIGKILL);
    child
        .wait()
        .context("Failed to wait for a killed child process")
}

/// The exit code to pass on: the child's own, or 128 + signal like a shell.
pub fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    u8::try_from(code).unwrap_or(1)
}
