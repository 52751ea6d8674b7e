//! The per-directory lock that lets many processes share one server.
//!
//! Test runners start one process per test, and each may call
//! `DevDb::ensure_running` at the same moment; the lock makes "check, initialise,
//! start" one step, so exactly one of them starts the server and the rest reuse it.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result};

const LOCK_FILE: &str = "devdb.lock";

/// Held until dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

/// Blocks until this process holds the lock of `dir`.
///
/// Returns `None` if the directory was deleted while waiting (another process
/// ran `stop_and_remove`): the lock then guards nothing and the caller must
/// recreate the directory and try again.
pub(crate) fn lock(dir: &Path) -> Result<Option<DirLock>> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("Failed to open the lock file {}", path.display()))?;
    acquire(file, &path)
}

fn acquire(file: File, path: &Path) -> Result<Option<DirLock>> {
    file.lock()
        .with_context(|| format!("Failed to lock {}", path.display()))?;
    let held = file
        .metadata()
        .with_context(|| format!("Failed to inspect {}", path.display()))?;
    let still_there = std::fs::metadata(path)
        .map(|now| now.ino() == held.ino() && now.dev() == held.dev())
        .unwrap_or(false);
    Ok(still_there.then_some(DirLock { _file: file }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed step should fail the test")]
mod tests {
    use super::*;

    #[test]
    fn lock_is_exclusive_and_detects_removal() {
        let tmp = tempfile::tempdir().unwrap();
        let held = lock(tmp.path()).unwrap().unwrap();
        let other = File::open(tmp.path().join(LOCK_FILE)).unwrap();
        assert!(other.try_lock().is_err());
        drop(held);
        assert!(other.try_lock().is_ok());
        drop(other);

        // As if another process deleted the directory while we waited for the lock.
        let path = tmp.path().join(LOCK_FILE);
        let opened = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(acquire(opened, &path).unwrap().is_none());
        assert!(lock(tmp.path()).unwrap().is_some());
    }
}
