//! Embeds a CA bundle for TLS to the database, when the build names one.
//!
//! `DB_CA_BUNDLE_FILE=/path/to/global-bundle.pem cargo build` (or
//! `sam build`) compiles that PEM file into every function, and
//! `DB_SSL_ROOT_CERT=embedded` selects it at run time (see
//! `src/config/tls.rs`): the bundle then ships with the binary, with no file
//! to package and no variable to fill with PEM text. A relative path is taken
//! from the workspace root. Without the variable the embedded bundle is
//! empty, and `embedded` is refused at start with a message saying how to
//! build one.

use std::path::{Path, PathBuf};

/// The build-time variable naming the bundle.
const VAR: &str = "DB_CA_BUNDLE_FILE";

fn main() -> Result<(), String> {
    println!("cargo::rerun-if-env-changed={VAR}");
    let out_dir = std::env::var_os("OUT_DIR").ok_or("cargo did not set OUT_DIR")?;
    let bundle = match std::env::var_os(VAR).filter(|value| !value.is_empty()) {
        None => Vec::new(),
        Some(value) => read_bundle(&resolve(Path::new(&value)))?,
    };
    let target = PathBuf::from(out_dir).join("db_ca_bundle.pem");
    // Rewriting an unchanged file would rebuild the crate for nothing.
    if std::fs::read(&target).ok().as_deref() != Some(bundle.as_slice()) {
        std::fs::write(&target, &bundle)
            .map_err(|error| format!("cannot write {}: {error}", target.display()))?;
    }
    Ok(())
}

/// `path`, taken from the workspace root (this crate's parent) if relative.
fn resolve(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    manifest_dir
        .parent()
        .map_or_else(|| path.to_path_buf(), |root| root.join(path))
}

/// The bundle's bytes; a build that names a file that is missing or holds no
/// certificate fails here rather than at the function's start.
fn read_bundle(path: &Path) -> Result<Vec<u8>, String> {
    println!("cargo::rerun-if-changed={}", path.display());
    let bundle = std::fs::read(path)
        .map_err(|error| format!("{VAR}: cannot read {}: {error}", path.display()))?;
    if !bundle
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .any(|window| window == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(format!(
            "{VAR}: {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(bundle)
}
