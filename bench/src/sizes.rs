//! What each function costs to ship: its release binary for Lambda's arm64
//! machines and the zip that is uploaded, built as `sam build` builds them
//! (`cargo lambda build --release --arm64 --output-format zip`).
//!
//! That build cross-compiles the whole workspace (about ten minutes from a
//! cold cache on two cores), so it runs only with `--sizes`; its figures
//! are kept in `target/bench/sizes.json` and reported by later runs, with
//! the commit they were built from.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::process::{FUNCTIONS, target_dir, workspace_root};

/// One function's sizes, in bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Size {
    /// The function.
    pub function: String,
    /// The arm64 release binary (`bootstrap`).
    pub binary: u64,
    /// The zip Lambda is given.
    pub zip: u64,
}

/// Every function's sizes, and the commit they were built from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sizes {
    /// `git describe --always --dirty` of the build.
    pub commit: String,
    /// Per function.
    pub functions: Vec<Size>,
}

fn saved() -> PathBuf {
    target_dir().join("bench/sizes.json")
}

/// Builds every function as `sam build` does and measures it.
pub fn build_and_measure() -> Result<Sizes> {
    let status = std::process::Command::new("cargo")
        .args([
            "lambda",
            "build",
            "--release",
            "--arm64",
            "--output-format",
            "zip",
        ])
        .current_dir(workspace_root())
        .status()
        .context("run cargo lambda build (pip install cargo-lambda)")?;
    if !status.success() {
        bail!("cargo lambda build failed");
    }
    let mut functions = Vec::new();
    for function in FUNCTIONS {
        let zip = target_dir()
            .join("lambda")
            .join(function)
            .join("bootstrap.zip");
        let binary = target_dir()
            .join("aarch64-unknown-linux-gnu/release")
            .join(function);
        functions.push(Size {
            function: function.to_owned(),
            binary: file_size(&binary)?,
            zip: file_size(&zip)?,
        });
    }
    let commit = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(workspace_root())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let sizes = Sizes { commit, functions };
    std::fs::create_dir_all(target_dir().join("bench"))?;
    std::fs::write(saved(), serde_json::to_string_pretty(&sizes)?)?;
    Ok(sizes)
}

/// The sizes of the last `--sizes` run, if there was one.
pub fn last_measured() -> Option<Sizes> {
    let text = std::fs::read_to_string(saved()).ok()?;
    serde_json::from_str(&text).ok()
}

fn file_size(path: &std::path::Path) -> Result<u64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("{} (was it built?)", path.display()))?
        .len())
}
