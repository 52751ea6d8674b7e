//! A function binary run as a real process, its output read as it comes.
//!
//! [`crate::process::spawn`] pipes a process's output; a process that logs
//! at debug level fills a pipe quickly and would block on it if nobody
//! read. [`Captured`] drains stdout and stderr into one buffer while the
//! process runs, so that a test can search its logs at any point, signal
//! the process (SIGSTOP, SIGCONT, SIGTERM), and wait for it to exit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Child;

/// A running function process with its output captured.
pub struct Captured {
    child: Child,
    output: Arc<Mutex<Vec<u8>>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Captured {
    /// Starts the binary `name` with `env` (see [`crate::process::spawn`]).
    pub fn spawn(name: &str, env: &[(String, String)]) -> Captured {
        let mut child = crate::process::spawn(name, env);
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(tokio::spawn(drain(stdout, output.clone())));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(tokio::spawn(drain(stderr, output.clone())));
        }
        Captured {
            child,
            output,
            readers,
        }
    }

    /// Everything the process wrote so far.
    pub fn logs(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// The process id.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id().expect("running")).expect("a pid"))
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).unwrap_or_else(|e| panic!("send {signal}: {e}"));
    }

    /// Waits (up to `bound`) for the process to exit; its exit code, or
    /// `None` if it did not exit in time (it is then killed).
    pub async fn wait(&mut self, bound: Duration) -> Option<i32> {
        let status = match tokio::time::timeout(bound, self.child.wait()).await {
            Ok(status) => status.ok().and_then(|s| s.code()),
            Err(_) => {
                let _ = self.child.kill().await;
                None
            }
        };
        // The pipes close with the process: let the readers finish.
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
        }
        status
    }

    /// Waits (up to `bound`) until the logs contain `needle`.
    pub async fn wait_for_log(&self, needle: &str, bound: Duration) -> bool {
        let start = std::time::Instant::now();
        while start.elapsed() < bound {
            if self.logs().contains(needle) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.logs().contains(needle)
    }
}

async fn drain(mut pipe: impl AsyncRead + Unpin, output: Arc<Mutex<Vec<u8>>>) {
    let mut buffer = vec![0_u8; 8192];
    loop {
        match pipe.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => output
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(&buffer[..n]),
        }
    }
}
