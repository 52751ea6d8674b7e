//! The Node.js design's rule, "don't create new clients; use the shared pool", checked
//! on the source: only `shared` builds a pool, and only the migrate
//! function opens a connection of its own.

use std::path::{Path, PathBuf};

use integration_tests::workspace_root;

/// Ways to build a pool.
const POOL_BUILDERS: [&str; 5] = [
    "PgPoolOptions",
    "PoolOptions",
    "PgPool::connect",
    "connect_lazy",
    "Pool::connect",
];

/// Ways to open a connection outside a pool.
const CONNECTION_OPENERS: [&str; 3] = [
    "PgConnection::connect",
    "Connection>::connect",
    "connect_with(",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every line of workspace Rust source containing one of `patterns`, as
/// "path:line", outside `allowed` directories.
fn uses(patterns: &[&str], allowed: &[&str]) -> Vec<String> {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["shared", "functions", "tools"] {
        rust_files(&root.join(dir), &mut files);
    }
    let mut found = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(&root)
            .unwrap_or(&file)
            .to_string_lossy()
            .into_owned();
        if allowed.iter().any(|a| relative.starts_with(a)) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            if patterns.iter().any(|p| line.contains(p)) {
                found.push(format!("{relative}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn only_the_shared_crate_builds_a_pool() {
    let found = uses(&POOL_BUILDERS, &["shared/src/db/"]);
    assert!(
        found.is_empty(),
        "pools built outside shared::db:\n{}",
        found.join("\n")
    );
    // And shared does build one (the check is looking at the right thing).
    assert!(!uses(&["PgPoolOptions"], &[]).is_empty());
}

#[test]
fn only_the_migrate_function_opens_a_connection_of_its_own() {
    let found = uses(&CONNECTION_OPENERS, &["functions/migrate/"]);
    assert!(
        found.is_empty(),
        "connections opened outside migrate:\n{}",
        found.join("\n")
    );
    assert!(!uses(&["PgConnection::connect_with"], &[]).is_empty());
}

#[test]
fn every_function_main_is_a_thin_call_into_the_shared_runtime() {
    let root = workspace_root();
    let mut mains = Vec::new();
    for entry in std::fs::read_dir(root.join("functions"))
        .expect("functions/")
        .flatten()
    {
        let main = entry.path().join("src/main.rs");
        if main.exists() && !entry.path().ends_with("migrate") {
            mains.push(main);
        }
    }
    assert!(!mains.is_empty());
    for main in mains {
        let text = std::fs::read_to_string(&main).expect("main.rs");
        assert!(text.contains("shared::runtime::run_"), "{}", main.display());
        let code_lines = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with("//"))
            .count();
        assert!(
            code_lines <= 8,
            "{} has {code_lines} lines of code",
            main.display()
        );
    }
}
