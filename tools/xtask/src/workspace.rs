//! Finding the workspace root, which anchors `.devdb` and `target/devdb`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::tools::cargo;

/// Asks cargo first, so a moved checkout is still right; falls back to where
/// this crate was compiled from (`tools/xtask` sits two levels below the root).
pub fn root() -> Result<PathBuf> {
    if let Some(root) = located_by_cargo() {
        return Ok(root);
    }
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .context("Failed to find the workspace root above tools/xtask")
}

fn located_by_cargo() -> Option<PathBuf> {
    let output = cargo()
        .args(["locate-project", "--workspace", "--message-format", "plain"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let manifest = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    manifest.parent().map(Path::to_path_buf)
}
