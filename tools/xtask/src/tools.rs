//! The cargo subcommands the commands rely on, installed on first use.

use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The cargo that started us (`CARGO`), so a toolchain override is
/// honoured, without the variables of our own package: see [`devdb::cargo`].
pub use devdb::cargo;

/// Whether `cargo <subcommand> --version` works.
fn has_subcommand(subcommand: &str) -> bool {
    cargo()
        .args([subcommand, "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs cargo-nextest with `cargo install` when missing.
pub fn ensure_nextest() -> Result<()> {
    if has_subcommand("nextest") {
        return Ok(());
    }
    println!(
        "cargo nextest is not installed: installing it with `cargo install cargo-nextest --locked`"
    );
    let status = cargo()
        .args(["install", "cargo-nextest", "--locked"])
        .status()
        .context("Failed to run cargo install cargo-nextest")?;
    if !status.success() {
        bail!("Failed to install cargo-nextest ({status})");
    }
    Ok(())
}

/// Installs cargo-lambda with pip (it ships prebuilt there) when missing.
pub fn ensure_cargo_lambda() -> Result<()> {
    if has_subcommand("lambda") {
        return Ok(());
    }
    println!("cargo lambda is not installed: installing it with `pip install cargo-lambda`");
    let installed = ["pip", "pip3"].iter().any(|pip| {
        Command::new(pip)
            .args(["install", "cargo-lambda"])
            .status()
            .is_ok_and(|s| s.success())
    });
    if !installed {
        bail!("Failed to install cargo-lambda with pip or pip3: install it yourself");
    }
    if !has_subcommand("lambda") {
        bail!(
            "cargo-lambda was installed but `cargo lambda` still does not run: is pip's bin directory on PATH?"
        );
    }
    Ok(())
}

/// PgBouncer, for the suite's pass behind a transaction-mode pooler:
/// installed with apt when missing and allowed (as root, or with sudo).
pub fn ensure_pgbouncer() -> Result<()> {
    let installed = || {
        Command::new("pgbouncer")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
            || std::path::Path::new("/usr/sbin/pgbouncer").is_file()
    };
    if installed() {
        return Ok(());
    }
    println!("pgbouncer is not installed: installing it with apt-get");
    let root = nix::unistd::geteuid().is_root();
    let apt = |args: &[&str]| {
        let mut cmd = if root {
            Command::new("apt-get")
        } else {
            let mut sudo = Command::new("sudo");
            sudo.args(["-n", "apt-get"]);
            sudo
        };
        cmd.args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    let _ = apt(&["update", "-q"]);
    if !apt(&["install", "-y", "-q", "pgbouncer"]) || !installed() {
        bail!(
            "Failed to install pgbouncer (the tests run the API behind it): install Debian's \
             `pgbouncer` package, or your system's, yourself"
        );
    }
    Ok(())
}

/// The AI SDK packages the stream tests read replies with (`tests/node`),
/// installed before the suite starts, so that a registry hiccup is retried
/// and named here, not a failure of whichever test asked first. (The tests
/// install them too when run by plain `cargo nextest`.)
pub fn ensure_node_packages(root: &std::path::Path) -> Result<()> {
    devdb::npm_ci(&root.join("tests/node"), &["ai5", "ai6"])
}
