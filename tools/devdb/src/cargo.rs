//! `cargo`, run from inside a program that cargo started.
//!
//! `cargo run` and `cargo test` give the program they start the variables
//! that describe its package (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`, ...).
//! A cargo started from there inherits them, and some build scripts
//! (ring's, through cc) ask to be re-run when they change: every build
//! from `cargo xtask` or from a test would then rebuild the TLS and
//! database crates, and the next plain `cargo build` rebuild them back.
//! [`cargo`] is a `cargo` command without those variables, so that every
//! build sees the environment a developer's own shell has.

use std::ffi::OsString;
use std::process::Command;

/// Variables cargo sets for the program it runs, one by one; those that
/// start with `CARGO_PKG_` or `CARGO_BIN_EXE_` go too.
const PACKAGE_VARIABLES: [&str; 9] = [
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_MANIFEST_LINKS",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
    "OUT_DIR",
];

/// The cargo that started this program (`CARGO`, so that a toolchain
/// override holds), or the one on `PATH`, without the package variables
/// (see the module docs).
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for name in package_variables(std::env::vars_os().map(|(name, _)| name)) {
        command.env_remove(name);
    }
    command
}

fn package_variables(names: impl Iterator<Item = OsString>) -> Vec<OsString> {
    names
        .filter(|name| {
            let name = name.to_string_lossy();
            PACKAGE_VARIABLES.contains(&name.as_ref())
                || name.starts_with("CARGO_PKG_")
                || name.starts_with("CARGO_BIN_EXE_")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_package_variables_go_and_the_others_stay() {
        let names = [
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_MAJOR",
            "CARGO_BIN_EXE_history",
            "OUT_DIR",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "PATH",
            "DATABASE_URL",
        ]
        .map(OsString::from);
        let removed = package_variables(names.into_iter());
        assert_eq!(
            removed,
            [
                "CARGO_MANIFEST_DIR",
                "CARGO_PKG_NAME",
                "CARGO_PKG_VERSION_MAJOR",
                "CARGO_BIN_EXE_history",
                "OUT_DIR"
            ]
            .map(OsString::from)
        );
    }
}
