//! Node.js packages that the tests and the benchmarks run (`npm ci`),
//! installed once from a folder's lock file.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Tries of `npm ci`: a registry hiccup should not fail a whole run.
const ATTEMPTS: u32 = 3;

/// Makes sure `dir/node_modules` holds every one of `packages`, running
/// `npm ci` in `dir` (up to three times) when one is missing. Callers in
/// several processes at once take turns on `dir/.install.lock`, so that one
/// installs and the others find the packages there.
pub fn npm_ci(dir: &Path, packages: &[&str]) -> Result<()> {
    let installed = || {
        packages.iter().all(|p| {
            dir.join("node_modules")
                .join(p)
                .join("package.json")
                .is_file()
        })
    };
    if installed() {
        return Ok(());
    }
    let lock_path = dir.join(".install.lock");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("Failed to create {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("Failed to lock {}", lock_path.display()))?;
    for attempt in 1..=ATTEMPTS {
        if installed() {
            return Ok(());
        }
        if attempt > 1 {
            std::thread::sleep(Duration::from_secs(5));
        }
        println!(
            "npm ci in {} (attempt {attempt} of {ATTEMPTS})",
            dir.display()
        );
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(dir)
            .status()
            .context("Failed to run npm: is Node.js installed?")?;
        if !status.success() {
            println!("npm ci in {} failed ({status})", dir.display());
        }
    }
    if !installed() {
        bail!(
            "Failed to install {} in {} with npm ci",
            packages.join(", "),
            dir.display()
        );
    }
    Ok(())
}
