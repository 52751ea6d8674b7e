//! Where the server's files actually live.
//!
//! Normally that is the directory the caller asked for. When running as root,
//! the server runs as the `postgres` user, which cannot reach a directory under
//! a closed parent such as `/root`; then a fallback directory under the system
//! temp dir is used instead, named after a hash of the requested path so that
//! every run for the same project finds the same data again.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{Context, Result, bail};

use crate::run_as::RunAs;

static FALLBACK_NOTED: Once = Once::new();

/// Creates `requested` if needed and returns the directory to keep the server in.
pub(crate) fn resolve(requested: &Path, run_as: &RunAs) -> Result<PathBuf> {
    std::fs::create_dir_all(requested)
        .with_context(|| format!("Failed to create {}", requested.display()))?;
    let canonical = std::fs::canonicalize(requested)
        .with_context(|| format!("Failed to resolve {}", requested.display()))?;
    // The directory itself is handed to the server's user later; only its parents matter.
    let parent = canonical.parent().unwrap_or(Path::new("/"));
    if run_as.can_enter(parent)? {
        return Ok(canonical);
    }

    let tmp = std::env::temp_dir();
    if !run_as.can_enter(&tmp)? {
        bail!(
            "Neither {} nor the temp dir {} can be entered by the postgres user: \
             choose another directory or set TMPDIR",
            canonical.display(),
            tmp.display()
        );
    }
    let fallback = tmp.join(fallback_name(&canonical));
    std::fs::create_dir_all(&fallback)
        .with_context(|| format!("Failed to create {}", fallback.display()))?;
    FALLBACK_NOTED.call_once(|| {
        eprintln!(
            "devdb: the postgres user cannot reach {}, keeping the database in {} instead",
            canonical.display(),
            fallback.display()
        );
    });
    Ok(fallback)
}

/// `devdb-<12 hex digits>`, stable across runs and Rust versions (FNV-1a, not
/// std's hasher, whose output may change between releases).
pub(crate) fn fallback_name(canonical: &Path) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = canonical
        .as_os_str()
        .as_bytes()
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    format!("devdb-{:012x}", hash >> 16)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed step should fail the test")]
mod tests {
    use super::*;

    #[test]
    fn fallback_name_is_short_stable_and_path_specific() {
        let a = fallback_name(Path::new("/home/dev/project/.devdb"));
        assert_eq!(a, fallback_name(Path::new("/home/dev/project/.devdb")));
        assert_ne!(a, fallback_name(Path::new("/home/dev/other/.devdb")));
        assert_eq!(a.len(), "devdb-".len() + 12);
        assert!(a["devdb-".len()..].chars().all(|c| c.is_ascii_hexdigit()));
        // Pinned so a refactor can't silently orphan existing local data.
        assert_eq!(fallback_name(Path::new("")), "devdb-cbf29ce48422");
    }

    #[test]
    fn reachable_dir_is_used_as_is() {
        let tmp = tempfile::tempdir().unwrap();
        let requested = tmp.path().join("db");
        let got = resolve(&requested, &RunAs::CurrentUser).unwrap();
        assert_eq!(got, std::fs::canonicalize(&requested).unwrap());
    }

    #[test]
    fn unreachable_dir_falls_back_to_temp_when_root() {
        let run_as = RunAs::detect().unwrap();
        if matches!(run_as, RunAs::CurrentUser) {
            return; // Only root switches users, so only root can be locked out.
        }
        let closed = tempfile::tempdir().unwrap();
        let owner_only = std::os::unix::fs::PermissionsExt::from_mode(0o700);
        std::fs::set_permissions(closed.path(), owner_only).unwrap();
        let requested = closed.path().join("db");
        let got = resolve(&requested, &run_as).unwrap();
        let canonical = std::fs::canonicalize(&requested).unwrap();
        assert_eq!(got, std::env::temp_dir().join(fallback_name(&canonical)));
        assert!(got.is_dir());
        std::fs::remove_dir_all(got).unwrap();
    }
}
