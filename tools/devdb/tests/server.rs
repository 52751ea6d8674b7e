//! Starts a real server: needs the PostgreSQL server binaries on this machine.

#![allow(clippy::unwrap_used, reason = "a failed step should fail the test")]

use std::path::Path;
use std::process::Command;

use devdb::{DevDb, find_bin_dir};

fn answers(port: u16) -> bool {
    Command::new(find_bin_dir().unwrap().join("pg_isready"))
        .args(["-q", "-h", "127.0.0.1", "-t", "2", "-p", &port.to_string()])
        .status()
        .unwrap()
        .success()
}

fn select_one(url: &str) -> String {
    let output = Command::new("psql")
        .args([url, "-XtAc", "select 40 + 2"])
        .output()
        .unwrap();
    assert!(output.status.success(), "psql failed: {output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn starts_reuses_and_stops_a_server() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");

    // Several callers at once, as when a test runner starts one process per test.
    let ports: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| DevDb::ensure_running(&dir).unwrap().port()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(ports.windows(2).all(|w| w[0] == w[1]), "{ports:?}");

    let db = DevDb::ensure_running(&dir).unwrap();
    assert_eq!(db.port(), ports[0], "a running server must be reused");
    assert_eq!(
        db.url(),
        format!("postgres://postgres@127.0.0.1:{}/postgres", db.port())
    );
    assert!(db.data_dir().join("PG_VERSION").is_file());
    assert!(answers(db.port()));
    if Path::new("/usr/bin/psql").exists() {
        assert_eq!(select_one(&db.url()), "42");
    }

    let again = DevDb::running(&dir).unwrap().unwrap();
    assert_eq!(again.port(), db.port());

    let port = db.port();
    let root = db.root_dir().to_path_buf();
    db.stop().unwrap();
    db.stop().unwrap(); // idempotent
    assert!(!answers(port));
    assert!(DevDb::running(&dir).unwrap().is_none());

    // Restart from the kept data, then throw it all away.
    let db = DevDb::ensure_running(&dir).unwrap();
    let port = db.port();
    assert!(answers(port));
    db.stop_and_remove().unwrap();
    assert!(!answers(port));
    assert!(!root.exists());
    assert!(!dir.exists());
}
