//! The real `cargo lambda watch`, run by a test on a free port against the
//! test's database, and stopped the way Ctrl-C stops it.
//!
//! It runs with `--ignore-changes`: other tests write files in the
//! workspace while it runs (`npm ci` in `tests/node`), and a reload then
//! restarts the functions under the requests in flight. Its output goes to
//! `target/watch-logs/<port>.log`, quoted when a function never answers.

use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::{TEST_AUTH_SECRET, TestDb};

/// A running `cargo lambda watch`.
pub struct Watch {
    child: Child,
    base: String,
}

impl Watch {
    /// Starts `cargo lambda watch` (with `args` after ours) serving `db`,
    /// with `env` added to the functions' environment, and waits until
    /// each of `ready` (a method and a path) answers a signed-out caller's
    /// 401: the first request to a function builds and starts it, and a
    /// test should measure the functions, not the compiler.
    pub async fn start(
        db: &TestDb,
        args: &[&str],
        env: &[(&str, &str)],
        ready: &[(reqwest::Method, &str)],
    ) -> Watch {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log_dir = crate::workspace_root().join("target/watch-logs");
        std::fs::create_dir_all(&log_dir).expect("a directory for the watcher's log");
        let log_path = log_dir.join(format!("{port}.log"));
        let log = std::fs::File::create(&log_path).expect("the watcher's log file");
        let mut command = Command::from(devdb::cargo());
        command
            .args([
                "lambda",
                "watch",
                "--ignore-changes",
                "--invoke-address",
                "127.0.0.1",
            ])
            .args(["--invoke-port", &port.to_string()])
            .args(args)
            .current_dir(crate::workspace_root())
            .env("POSTGRES_URL", db.url())
            .env("AUTH_SECRET", TEST_AUTH_SECRET)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log file, twice"))
            .stderr(log)
            // Its own process group, so that stopping it stops the functions too.
            .process_group(0)
            .kill_on_drop(true);
        let child = command.spawn().unwrap_or_else(|e| {
            panic!("cargo lambda watch must be installed (pip install cargo-lambda): {e}")
        });
        let watch = Watch {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        // A request that a function never picks up would wait forever:
        // each try has a bound, and the whole wait another.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("an HTTP client");
        let started = Instant::now();
        for (method, path) in ready {
            loop {
                let answered = client.request(method.clone(), watch.url(path)).send().await;
                if answered.is_ok_and(|r| r.status() == 401) {
                    break;
                }
                if started.elapsed() > Duration::from_secs(300) {
                    let tail = devdb::log_tail(&log_path, 0);
                    panic!(
                        "cargo lambda watch did not serve {method} {path}; its log ends:\n{tail}"
                    );
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        watch
    }

    /// The URL of `path` (with its query) on the watcher.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the watcher the way Ctrl-C does, and waits for it.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id().and_then(|id| i32::try_from(id).ok()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGINT);
        }
        if tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}
