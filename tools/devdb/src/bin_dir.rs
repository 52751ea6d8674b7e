//! Finding the PostgreSQL server binaries (`initdb`, `pg_ctl`, `postgres`, `pg_isready`).
//!
//! Distributions hide the server binaries off `PATH` (Debian puts them in
//! `/usr/lib/postgresql/<major>/bin`), so several places are tried in turn.
//! The search is split into [`Sources`] (what the environment offers) and
//! [`search`] (the decision), so the decision can be tested with fake directories.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};

const NOT_FOUND: &str = "PostgreSQL server binaries (initdb, pg_ctl) not found: \
     install the postgresql package or set PG_BIN_DIR";

/// Where to look, in the order the candidates are tried.
pub(crate) struct Sources {
    /// `PG_BIN_DIR`, which wins outright (and must be right).
    pub(crate) override_dir: Option<PathBuf>,
    /// The `PATH` variable, searched for `initdb`.
    pub(crate) path_var: Option<OsString>,
    /// Asked only when the cheaper sources gave nothing, since it spawns a process.
    pub(crate) pg_config_bindir: Box<dyn FnOnce() -> Option<PathBuf>>,
    /// Directories holding one `<version>/bin` per installed major version.
    pub(crate) versioned_roots: Vec<PathBuf>,
    /// Plain bin directories tried last.
    pub(crate) fixed_dirs: Vec<PathBuf>,
}

impl Sources {
    /// The real environment of this machine.
    pub(crate) fn from_env() -> Self {
        Sources {
            override_dir: std::env::var_os("PG_BIN_DIR")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            path_var: std::env::var_os("PATH"),
            pg_config_bindir: Box::new(pg_config_bindir),
            versioned_roots: vec![PathBuf::from("/usr/lib/postgresql")],
            fixed_dirs: vec![PathBuf::from("/usr/local/pgsql/bin")],
        }
    }
}

/// Returns the directory that holds `initdb` and `pg_ctl`.
///
/// Order: `PG_BIN_DIR`; the directory of `initdb` on `PATH` (symlinks resolved,
/// because a lone `/usr/local/bin/initdb` link does not bring `pg_isready` along);
/// `pg_config --bindir`; the highest `/usr/lib/postgresql/<version>/bin`;
/// `/usr/local/pgsql/bin`.
pub fn find_bin_dir() -> Result<PathBuf> {
    search(Sources::from_env())
}

pub(crate) fn search(sources: Sources) -> Result<PathBuf> {
    if let Some(dir) = sources.override_dir {
        if is_server_bin_dir(&dir) {
            return Ok(dir);
        }
        bail!(
            "PG_BIN_DIR is set to {} but it does not contain initdb and pg_ctl",
            dir.display()
        );
    }
    if let Some(dir) = sources.path_var.as_deref().and_then(initdb_on_path) {
        return Ok(dir);
    }
    if let Some(dir) = (sources.pg_config_bindir)().filter(|d| is_server_bin_dir(d)) {
        return Ok(dir);
    }
    for root in &sources.versioned_roots {
        if let Some(dir) = highest_versioned_bin(root) {
            return Ok(dir);
        }
    }
    if let Some(dir) = sources
        .fixed_dirs
        .into_iter()
        .find(|d| is_server_bin_dir(d))
    {
        return Ok(dir);
    }
    bail!(NOT_FOUND)
}

fn is_server_bin_dir(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()
}

fn initdb_on_path(path_var: &std::ffi::OsStr) -> Option<PathBuf> {
    std::env::split_paths(path_var)
        .map(|dir| dir.join("initdb"))
        .filter(|candidate| candidate.is_file())
        .filter_map(|candidate| std::fs::canonicalize(candidate).ok())
        .filter_map(|real| real.parent().map(Path::to_path_buf))
        .find(|dir| is_server_bin_dir(dir))
}

fn pg_config_bindir() -> Option<PathBuf> {
    let output = Command::new("pg_config").arg("--bindir").output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let dir = text.trim();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

fn highest_versioned_bin(root: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(root).ok()?;
    entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let version = parse_version(entry.file_name().to_str()?)?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| is_server_bin_dir(bin))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, bin)| bin)
}

/// Parses directory names such as `15` or `9.6` so that `10` sorts above `9.6`.
fn parse_version(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed step should fail the test")]
mod tests {
    use super::*;
    use std::fs;

    fn fake_bin(dir: &Path) -> PathBuf {
        fs::create_dir_all(dir).unwrap();
        for name in ["initdb", "pg_ctl", "pg_isready"] {
            fs::write(dir.join(name), "").unwrap();
        }
        dir.to_path_buf()
    }

    fn empty_sources() -> Sources {
        Sources {
            override_dir: None,
            path_var: None,
            pg_config_bindir: Box::new(|| None),
            versioned_roots: vec![],
            fixed_dirs: vec![],
        }
    }

    #[test]
    fn override_wins_and_must_be_valid() {
        let tmp = tempfile::tempdir().unwrap();
        let good = fake_bin(&tmp.path().join("good"));
        let found = search(Sources {
            override_dir: Some(good.clone()),
            versioned_roots: vec![tmp.path().to_path_buf()],
            ..empty_sources()
        })
        .unwrap();
        assert_eq!(found, good);

        let err = search(Sources {
            override_dir: Some(tmp.path().join("missing")),
            ..empty_sources()
        })
        .unwrap_err();
        assert!(err.to_string().contains("PG_BIN_DIR"), "{err}");
    }

    #[test]
    fn path_lookup_resolves_symlinks_to_the_real_bin_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let real = fake_bin(&tmp.path().join("pg/15/bin"));
        let links = tmp.path().join("links");
        fs::create_dir_all(&links).unwrap();
        std::os::unix::fs::symlink(real.join("initdb"), links.join("initdb")).unwrap();
        let path_var = std::env::join_paths([tmp.path().join("nothing"), links]).unwrap();
        let found = search(Sources {
            path_var: Some(path_var),
            ..empty_sources()
        })
        .unwrap();
        assert_eq!(found, fs::canonicalize(real).unwrap());
    }

    #[test]
    fn pg_config_is_used_only_if_it_points_at_server_binaries() {
        let tmp = tempfile::tempdir().unwrap();
        let bin = fake_bin(&tmp.path().join("cfg"));
        let reported = bin.clone();
        let found = search(Sources {
            pg_config_bindir: Box::new(move || Some(reported)),
            ..empty_sources()
        })
        .unwrap();
        assert_eq!(found, bin);

        let client_only = tmp.path().join("client-only");
        fs::create_dir_all(&client_only).unwrap();
        assert!(
            search(Sources {
                pg_config_bindir: Box::new(move || Some(client_only)),
                ..empty_sources()
            })
            .is_err()
        );
    }

    #[test]
    fn highest_version_is_chosen_numerically() {
        let tmp = tempfile::tempdir().unwrap();
        fake_bin(&tmp.path().join("9.6/bin"));
        let ten = fake_bin(&tmp.path().join("10/bin"));
        fs::create_dir_all(tmp.path().join("17/bin")).unwrap(); // no binaries: skipped
        fs::create_dir_all(tmp.path().join("notes")).unwrap();
        let found = search(Sources {
            versioned_roots: vec![tmp.path().to_path_buf()],
            ..empty_sources()
        })
        .unwrap();
        assert_eq!(found, ten);
    }

    #[test]
    fn fixed_dirs_come_last_and_nothing_gives_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let fixed = fake_bin(&tmp.path().join("pgsql/bin"));
        let found = search(Sources {
            fixed_dirs: vec![fixed.clone()],
            ..empty_sources()
        })
        .unwrap();
        assert_eq!(found, fixed);

        let err = search(empty_sources()).unwrap_err();
        assert_eq!(err.to_string(), NOT_FOUND);
    }

    #[test]
    fn versions_parse() {
        assert_eq!(parse_version("15"), Some(vec![15]));
        assert_eq!(parse_version("9.6"), Some(vec![9, 6]));
        assert_eq!(parse_version("common"), None);
    }
}
