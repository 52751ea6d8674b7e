//! Function processes, run as Lambda runs them: one process, its own
//! local Runtime API (the tests' [`FakeLambda`]), the environment Lambda
//! gives it.
//!
//! Two kinds: our binaries, built by [`build_release`] before anything is
//! measured with the profile the suite itself was built with (`release`,
//! or CI's quicker `bench-ci`), so that both sides of every comparison are
//! the same build, and the Node.js original
//! (`node bench/node/runtime.mjs`, its packages installed by
//! [`node_ready`]). Their logs go to files under `target/bench/logs/`, as
//! Lambda sends a function's output to its log stream.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use integration_tests::lambda_api::{FakeLambda, Outcome};
use serde_json::Value;

use anyhow::{Context, Result, anyhow, bail};
use tokio::process::{Child, Command};

/// Every function binary of the workspace.
pub const FUNCTIONS: [&str; 7] = [
    "auth",
    "chat",
    "document",
    "history",
    "suggestions",
    "vote",
    "migrate",
];

/// How long a process may take to start.
const INIT_BOUND: Duration = Duration::from_secs(30);

/// The workspace's root.
pub fn workspace_root() -> PathBuf {
    integration_tests::workspace_root()
}

/// The target directory (`CARGO_TARGET_DIR`, or `target/`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The cargo profile the suite was built with: the name of the directory
/// its binary sits in (`target/<profile>/bench`).
pub fn profile() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.file_name()?.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "release".to_owned())
}

/// Builds the binaries of `functions` with the suite's [`profile`].
pub fn build_release(functions: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = std::process::Command::new(cargo);
    command
        .args(["build", "--quiet", "--profile", &profile()])
        .current_dir(workspace_root());
    for function in functions {
        command.args(["--package", function, "--bin", function]);
    }
    let status = command.status().context("run cargo build")?;
    if !status.success() {
        bail!("cargo build of {functions:?} failed");
    }
    Ok(())
}

/// The directory of the Node.js original.
pub fn node_dir() -> PathBuf {
    workspace_root().join("bench/node")
}

/// Installs the Node.js original's packages (`npm ci`) unless they are.
pub fn node_ready() -> Result<()> {
    devdb::npm_ci(&node_dir(), &["postgres", "jose"])
}

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// One of our release binaries.
    Rust(&'static str),
    /// The Node.js original's history function.
    Node,
}

impl Program {
    /// A short name, for logs and tables.
    pub fn name(&self) -> String {
        match self {
            Program::Rust(name) => (*name).to_owned(),
            Program::Node => "node-history".to_owned(),
        }
    }

    fn command(&self) -> Command {
        match self {
            Program::Rust(name) => Command::new(target_dir().join(profile()).join(name)),
            Program::Node => {
                let mut command = Command::new("node");
                command.arg(node_dir().join("runtime.mjs"));
                command
            }
        }
    }
}

/// A running function process and its Runtime API.
pub struct FunctionProcess {
    /// The process.
    child: Child,
    /// Its id, for `/proc`.
    pid: u32,
    /// Just before the process was started.
    pub started: Instant,
    /// The Runtime API it polls.
    pub api: FakeLambda,
}

impl FunctionProcess {
    /// Starts `program` with the environment Lambda gives a function, the
    /// database and token secret, and `extra` variables.
    pub async fn spawn(
        program: Program,
        database_url: &str,
        secret: &str,
        extra: &[(&str, &str)],
    ) -> Result<FunctionProcess> {
        let api = FakeLambda::start().await;
        let function = program.name();
        let logs = target_dir().join("bench/logs");
        std::fs::create_dir_all(&logs)?;
        let log = std::fs::File::create(logs.join(format!("{function}.log")))?;
        let mut command = program.command();
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(api.function_env(&function))
            // Lambda runs functions in UTC (`TZ=:UTC`); the Node.js
            // original reads timestamps in the process's zone.
            .env("TZ", "UTC")
            .env("POSTGRES_URL", database_url)
            .env("AUTH_SECRET", secret)
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let started = Instant::now();
        let child = command
            .spawn()
            .with_context(|| format!("start {function}"))?;
        let pid = child.id().context("the process has an id")?;
        Ok(FunctionProcess {
            child,
            pid,
            started,
            api,
        })
    }

    /// From start to the first poll for work: the init phase.
    pub async fn init_time(&self) -> Result<Duration> {
        let first = self.api.first_poll(INIT_BOUND).await.ok_or_else(|| {
            anyhow!(
                "the function did not poll for work within {INIT_BOUND:?} (init errors: {:?})",
                futures_util::FutureExt::now_or_never(self.api.init_errors())
            )
        })?;
        Ok(first - self.started)
    }

    /// Invokes the function with `event` and returns how long the answer
    /// took to come back and the HTTP status and body it answered.
    pub async fn invoke(&self, event: &Value) -> Result<(Duration, u16, String)> {
        let start = Instant::now();
        let outcome = self.api.invoke(event.clone(), INVOKE_BOUND).await;
        let elapsed = start.elapsed();
        let (status, body) = http_answer(&outcome)?;
        Ok((elapsed, status, body))
    }

    /// The process's peak resident memory so far (`VmHWM`), in bytes.
    pub fn peak_memory(&self) -> Result<u64> {
        memory_field(self.pid, "VmHWM")
    }

    /// Stops the process (SIGKILL: what it did on the way out is not
    /// measured).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// How long an invocation may take before the suite gives up.
const INVOKE_BOUND: Duration = Duration::from_secs(60);

/// The HTTP status and body a function answered: from the proxy response
/// JSON (`{statusCode, body}`), from a streamed answer (its JSON prelude,
/// eight NUL bytes, then the stream), or, for a function that is not an
/// HTTP function (migrate), the answer itself.
pub fn http_answer(outcome: &Outcome) -> Result<(u16, String)> {
    let body = match outcome {
        Outcome::Response(body) => body,
        Outcome::Error(error) => bail!("the function reported an error: {error}"),
    };
    if let Some(split) = body.windows(8).position(|w| w == [0u8; 8]) {
        let prelude: Value = serde_json::from_slice(&body[..split])?;
        let status = prelude["statusCode"].as_u64().unwrap_or(200) as u16;
        let stream = String::from_utf8_lossy(&body[split + 8..]).into_owned();
        return Ok((status, stream));
    }
    let value: Value = serde_json::from_slice(body).context("the answer is not JSON")?;
    match value.get("statusCode").and_then(Value::as_u64) {
        Some(status) => Ok((
            status as u16,
            value["body"].as_str().unwrap_or_default().to_owned(),
        )),
        None => Ok((200, value.to_string())),
    }
}

fn memory_field(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("unreadable {line}"))?;
    Ok(kib * 1024)
}
