//! The design's rules, checked on the workspace's source as Rust parses it
//! (with `syn`), not as text:
//!
//! - "don't create new clients; use the shared pool": only `shared::db`
//!   builds a pool, and only the migrate function opens a connection of its
//!   own;
//! - every function's `main` is a thin call into the shared runtime.
//!
//! Each detector is also run over small sources made to break its rule, so
//! that a detector that stopped seeing anything fails too.

use std::path::{Path, PathBuf};

use integration_tests::workspace_root;
use proc_macro2::{Span, TokenStream, TokenTree};
use syn::visit::{self, Visit};

// ---------------------------------------------------------------------------
// Reading the workspace

/// Every `.rs` file under `dir` (recursively, `target/` left out).
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
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

/// The Rust sources under each of `dirs` (relative to the workspace), as
/// `(path relative to the workspace, with '/', text)`.
fn sources(dirs: &[&str]) -> Vec<(String, String)> {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in dirs {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(!files.is_empty(), "no Rust source under {dirs:?}");
    files
        .into_iter()
        .map(|file| {
            let relative = file
                .strip_prefix(&root)
                .unwrap_or(&file)
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|error| panic!("{relative}: {error}"));
            (relative, text)
        })
        .collect()
}

/// `source` parsed, or the test fails naming `path`.
fn parse(path: &str, source: &str) -> syn::File {
    syn::parse_file(source).unwrap_or_else(|error| {
        let at = error.span().start();
        panic!("{path}:{}:{}: does not parse: {error}", at.line, at.column)
    })
}

fn line(span: Span) -> usize {
    span.start().line
}

// ---------------------------------------------------------------------------
// Pools and connections

/// What a piece of code builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Builds {
    /// A pool (sqlx's `PoolOptions`, `Pool::connect*`, `connect_lazy*`).
    Pool,
    /// A connection outside any pool (`PgConnection::connect*`,
    /// `<_ as Connection>::connect*`, `options.connect()`, a listener).
    Connection,
}

/// One place that builds a pool or a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Finding {
    line: usize,
    builds: Builds,
    /// The path or method call, as written (idents only).
    what: String,
}

/// Types that exist only to build pools.
const POOL_TYPES: [&str; 2] = ["PgPoolOptions", "PoolOptions"];

/// Types that open a connection of their own when built.
const CONNECTION_TYPES: [&str; 1] = ["PgListener"];

/// Functions and methods that connect: on a pool type, on a connection
/// type, on connect options, or on anything else.
const CONNECT_NAMES: [&str; 4] = [
    "connect",
    "connect_with",
    "connect_lazy",
    "connect_lazy_with",
];

/// What calling `name` (a [`CONNECT_NAMES`] entry) after `before` (the
/// path segment before it, if any) builds.
fn connecting(before: Option<&str>, name: &str) -> Builds {
    if name.starts_with("connect_lazy") || before.is_some_and(|b| b.ends_with("Pool")) {
        Builds::Pool
    } else {
        Builds::Connection
    }
}

/// Every place in `file` that builds a pool or opens a connection, by
/// its syntax: any path naming a pool-building type or ending in a
/// connecting function (`PgPool::connect`, `Pool::<Postgres>::connect`,
/// `<PgConnection as Connection>::connect`, a bare `connect(..)`), any
/// method call of a connecting name on anything (`options.connect()`),
/// imports of those types, and the same inside macro calls (read as
/// tokens).
fn connection_builders(file: &syn::File) -> Vec<Finding> {
    let mut finder = BuilderFinder::default();
    finder.visit_file(file);
    finder.found.sort_by_key(|f| f.line);
    finder.found.dedup();
    finder.found
}

/// [`connection_builders`] of a small source of a test.
fn builders_in(source: &str) -> Vec<Finding> {
    connection_builders(&parse("example.rs", source))
}

#[derive(Default)]
struct BuilderFinder {
    found: Vec<Finding>,
}

impl BuilderFinder {
    fn found(&mut self, span: Span, builds: Builds, what: String) {
        self.found.push(Finding {
            line: line(span),
            builds,
            what,
        });
    }

    /// Looks at one path: `idents` are its segments.
    fn path(&mut self, idents: &[&syn::Ident]) {
        let names: Vec<String> = idents.iter().map(|i| i.to_string()).collect();
        let what = names.join("::");
        let (Some(last), Some(name)) = (idents.last(), names.last()) else {
            return;
        };
        if let Some(i) = names.iter().position(|n| POOL_TYPES.contains(&n.as_str())) {
            self.found(idents[i].span(), Builds::Pool, what);
        } else if let Some(i) = names
            .iter()
            .position(|n| CONNECTION_TYPES.contains(&n.as_str()))
        {
            self.found(idents[i].span(), Builds::Connection, what);
        } else if CONNECT_NAMES.contains(&name.as_str()) {
            let before = names.len().checked_sub(2).map(|i| names[i].as_str());
            let builds = connecting(before, name);
            self.found(last.span(), builds, what);
        }
    }

    /// Looks at a macro's tokens, which `syn` does not parse: a type of
    /// [`POOL_TYPES`] or [`CONNECTION_TYPES`] anywhere, and a connecting
    /// name after `.` or `::`.
    fn tokens(&mut self, tokens: TokenStream) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        for (i, token) in tokens.iter().enumerate() {
            match token {
                TokenTree::Group(group) => self.tokens(group.stream()),
                TokenTree::Ident(ident) => {
                    let name = ident.to_string();
                    let punct = |back: usize| match i.checked_sub(back).map(|j| &tokens[j]) {
                        Some(TokenTree::Punct(p)) => Some(p.as_char()),
                        _ => None,
                    };
                    if POOL_TYPES.contains(&name.as_str()) {
                        self.found(ident.span(), Builds::Pool, name);
                    } else if CONNECTION_TYPES.contains(&name.as_str()) {
                        self.found(ident.span(), Builds::Connection, name);
                    } else if CONNECT_NAMES.contains(&name.as_str()) {
                        let before = match (punct(1), punct(2), i.checked_sub(3)) {
                            (Some(':'), Some(':'), Some(j)) => match &tokens[j] {
                                TokenTree::Ident(b) => Some(b.to_string()),
                                _ => Some(String::new()),
                            },
                            (Some('.'), _, _) => None,
                            _ => continue,
                        };
                        let builds = connecting(before.as_deref(), &name);
                        self.found(ident.span(), builds, format!("{name} (in a macro)"));
                    }
                }
                _ => {}
            }
        }
    }
}

impl<'ast> Visit<'ast> for BuilderFinder {
    fn visit_path(&mut self, path: &'ast syn::Path) {
        let idents: Vec<&syn::Ident> = path.segments.iter().map(|s| &s.ident).collect();
        self.path(&idents);
        visit::visit_path(self, path);
    }

    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        let name = call.method.to_string();
        if CONNECT_NAMES.contains(&name.as_str()) {
            self.found(
                call.method.span(),
                connecting(None, &name),
                format!(".{name}()"),
            );
        }
        visit::visit_expr_method_call(self, call);
    }

    fn visit_use_tree(&mut self, tree: &'ast syn::UseTree) {
        let ident = match tree {
            syn::UseTree::Name(name) => Some(&name.ident),
            syn::UseTree::Rename(rename) => Some(&rename.ident),
            _ => None,
        };
        if let Some(ident) = ident {
            self.path(&[ident]);
        }
        visit::visit_use_tree(self, tree);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.tokens(mac.tokens.clone());
        visit::visit_macro(self, mac);
    }
}

/// Where each kind may be built: a pool only by `shared::db`, a connection
/// of its own only by the migrate function.
fn allowed_to_build(builds: Builds) -> &'static str {
    match builds {
        Builds::Pool => "shared/src/db/",
        Builds::Connection => "functions/migrate/",
    }
}

/// Places that match the detector and are no pool or database connection,
/// each with why.
///
/// `tools/devdb` and `tools/xtask` run PostgreSQL through its own binaries
/// (`initdb`, `pg_ctl`) and open no database session of their own; the one
/// "connect" in them is devdb waiting for PgBouncer's port to accept a TCP
/// connection, which it closes at once.
const NOT_DATABASE_CONNECTIONS: [(&str, &str); 1] =
    [("tools/devdb/src/pgbouncer.rs", "TcpStream::connect")];

/// Every `builds` in the workspace's code outside the place allowed to
/// build it, as "path:line: what".
fn built_out_of_place(builds: Builds) -> Vec<String> {
    let mut out = Vec::new();
    for (path, source) in sources(&["shared", "functions", "tools"]) {
        for finding in connection_builders(&parse(&path, &source)) {
            let exempt = NOT_DATABASE_CONNECTIONS
                .iter()
                .any(|(file, what)| path == *file && finding.what == *what);
            if finding.builds == builds && !path.starts_with(allowed_to_build(builds)) && !exempt {
                out.push(format!("{path}:{}: {}", finding.line, finding.what));
            }
        }
    }
    out
}

/// Fails the test if `builds` is built outside its place, or if the
/// detector does not see `what` in `file`, which builds one where it may
/// (the check is looking at the right thing).
fn assert_built_only_in_place(builds: Builds, file: &str, what: &str) {
    let found = built_out_of_place(builds);
    assert!(
        found.is_empty(),
        "{builds:?} built outside {}:\n{}",
        allowed_to_build(builds),
        found.join("\n")
    );
    let source = std::fs::read_to_string(workspace_root().join(file)).expect(file);
    let seen = connection_builders(&parse(file, &source));
    assert!(
        seen.iter().any(|f| f.builds == builds && f.what == what),
        "{what} not seen in {file}: {seen:?}"
    );
}

#[test]
fn only_the_shared_crate_builds_a_pool() {
    assert_built_only_in_place(Builds::Pool, "shared/src/db/pool.rs", "PgPoolOptions::new");
}

#[test]
fn only_the_migrate_function_opens_a_connection_of_its_own() {
    assert_built_only_in_place(
        Builds::Connection,
        "functions/migrate/src/lib.rs",
        "PgConnection::connect_with",
    );
}

#[test]
fn the_builder_detector_catches_every_form_and_passes_harmless_code() {
    let forms: [(&str, Builds); 20] = [
        (
            "let p = PgPoolOptions::new().max_connections(1);",
            Builds::Pool,
        ),
        (
            "let p = sqlx::postgres::PgPoolOptions::new();",
            Builds::Pool,
        ),
        ("let p = PoolOptions::<Postgres>::new();", Builds::Pool),
        (
            "let p: sqlx::pool::PoolOptions<Postgres> = todo();",
            Builds::Pool,
        ),
        ("let p = Pool::connect(url).await;", Builds::Pool),
        (
            "let p = Pool::<Postgres>::connect(url).await;",
            Builds::Pool,
        ),
        ("let p = PgPool::connect_with(options).await;", Builds::Pool),
        ("let p = sqlx::PgPool::connect_lazy(url);", Builds::Pool),
        ("let p = PgPool::connect_lazy_with(options);", Builds::Pool),
        ("let p = builder.connect_lazy_with(options);", Builds::Pool),
        (
            "let c = PgConnection::connect(url).await;",
            Builds::Connection,
        ),
        (
            "let c = sqlx::PgConnection::connect_with(&options).await;",
            Builds::Connection,
        ),
        (
            "let c = <PgConnection as Connection>::connect(url).await;",
            Builds::Connection,
        ),
        (
            "let c = <PgConnection as sqlx::Connection>::connect_with(&o).await;",
            Builds::Connection,
        ),
        ("let c = options.connect().await;", Builds::Connection),
        (
            "let c = pool_options.connect_with(options).await;",
            Builds::Connection,
        ),
        (
            "let l = sqlx::postgres::PgListener::connect(url).await;",
            Builds::Connection,
        ),
        (
            "let l = PgListener::connect_with(&pool).await;",
            Builds::Connection,
        ),
        (
            "tokio::select! { c = options.connect() => c, }",
            Builds::Connection,
        ),
        (
            "assert!(PgPoolOptions::new().connect(url).await.is_ok());",
            Builds::Pool,
        ),
    ];
    for (form, builds) in forms {
        let source = format!("async fn f() {{ {form} }}");
        let found = builders_in(&source);
        assert!(
            found.iter().any(|f| f.builds == builds),
            "{form}: not caught as {builds:?} ({found:?})"
        );
    }
    let imports = builders_in("use sqlx::postgres::{PgListener, PgPoolOptions as O};");
    assert_eq!(imports.len(), 2, "{imports:?}");

    let harmless = r#"
        use sqlx::{Connection, PgConnection, PgPool};
        async fn handle(db: &Db, client: reqwest::ClientBuilder) {
            let mut conn = db.pool().acquire().await.expect("connection");
            let _ = sqlx::query("SELECT 1").execute(&mut *conn).await;
            let _ = client.connect_timeout(Duration::from_secs(1));
            let _ = db.on_connect(|| ()).after_connect();
            tracing::info!(connect = true, "connected");
            let connect = 1;
        }
    "#;
    assert_eq!(builders_in(harmless), Vec::<Finding>::new());
}

// ---------------------------------------------------------------------------
// Thin mains

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
