//! The AI SDK's own reader, run on our streams.
//!
//! `tests/node` holds the `ai` package (the version the upstream chatbot
//! uses, and the one the design names) and a script that reads a response
//! the way `useChat` does. The packages are installed from the lock file on
//! first use; a stream the SDK cannot read fails the test that sent it.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use serde_json::Value;

/// The SDK versions checked: upstream's (6) and the design's (5).
pub const VERSIONS: [&str; 2] = ["ai6", "ai5"];

fn node_dir() -> PathBuf {
    crate::workspace_root().join("tests/node")
}

/// Installs the packages once (`npm ci`), across test processes.
fn ensure_installed() {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return;
    }
    devdb::npm_ci(&node_dir(), &["ai5", "ai6"])
        .unwrap_or_else(|e| panic!("the AI SDK is needed to check streams: {e:#}"));
    *done = true;
}

/// What the SDK made of a stream: the message `useChat` would show, and
/// the error texts it reported.
#[derive(Debug)]
pub struct Read {
    /// The assembled message (`UIMessage`).
    pub message: Value,
    /// `error` chunks' texts.
    pub errors: Vec<String>,
}

/// Reads `sse` (a whole response body) with the SDK `version`; panics with
/// the SDK's complaint if it cannot.
pub fn read(version: &str, sse: &str) -> Read {
    ensure_installed();
    let mut child = Command::new("node")
        .arg("read-ui-stream.mjs")
        .arg(version)
        .current_dir(node_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("node is needed to check streams with the AI SDK: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(sse.as_bytes())
        .expect("write the stream to node");
    let output = child.wait_with_output().expect("node ran");
    assert!(
        output.status.success(),
        "the AI SDK ({version}) could not read the stream:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout).expect("the reader prints JSON");
    Read {
        message: result["message"].clone(),
        errors: result["errors"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    }
}
