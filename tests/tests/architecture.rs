//! The design's rules, checked on the workspace's source as Rust parses it
//! (with `syn`), not as text:
//!
//! - "don't create new clients; use the shared pool": only `shared::db`
//!   builds a pool, and only the migrate function opens a connection of its
//!   own;
//! - `shared`'s modules are layers (config <- db <- http <- runtime), each
//!   importing only from the layers below it;
//! - no function of the code (tests aside) runs over 60 lines;
//! - every function's `main` is a thin call into the shared runtime.
//!
//! Each detector is also run over small sources made to break its rule, so
//! that a detector that stopped seeing anything fails too.

use std::collections::HashMap;
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
// shared's layers

/// `shared`'s top-level modules, lowest layer first.
const LAYERS: [&str; 4] = ["config", "db", "http", "runtime"];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == module)
}

/// The module path of a file under `shared/src` (`"db/queries/chat.rs"`
/// is `db::queries::chat`; `mod.rs` is its folder; `lib.rs` is the root).
fn module_of(file: &str) -> Vec<String> {
    let file = file.strip_suffix(".rs").unwrap_or(file);
    let mut path: Vec<String> = file.split('/').map(str::to_owned).collect();
    if path
        .last()
        .is_some_and(|last| last == "mod" || last == "lib")
    {
        path.pop();
    }
    path
}

/// A path as written in `module`, resolved to the crate module path it
/// names: `crate::`, `super::` and `self::` paths only (others are
/// external crates, or names imported by a `use` looked at on its own).
fn resolve(module: &[String], path: &[String]) -> Option<Vec<String>> {
    let (mut resolved, rest) = match path.first()?.as_str() {
        "crate" => (Vec::new(), &path[1..]),
        "self" => (module.to_vec(), &path[1..]),
        "super" => (module.to_vec(), path),
        _ => return None,
    };
    for segment in rest {
        match segment.as_str() {
            // Above the crate root: not a path of this crate.
            "super" => {
                resolved.pop()?;
            }
            "self" => {}
            _ => resolved.push(segment.clone()),
        }
    }
    Some(resolved)
}

/// Every path in a file that may name a crate module: `use` trees
/// (flattened), paths in the code, and `crate`/`super`/`self` paths in
/// macro tokens; each with the module it is written in and its line.
#[derive(Default)]
struct PathCollector {
    /// The module being read (the file's, then inline `mod`s).
    module: Vec<String>,
    /// `(module, path, line)`.
    paths: Vec<(Vec<String>, Vec<String>, usize)>,
}

impl PathCollector {
    fn push(&mut self, path: Vec<String>, line: usize) {
        self.paths.push((self.module.clone(), path, line));
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            // `use a::b::{self}` imports `a::b`.
            syn::UseTree::Name(n) if n.ident == "self" => {
                self.push(prefix.clone(), line(n.ident.span()));
            }
            syn::UseTree::Name(n) => {
                let path = [prefix.as_slice(), &[n.ident.to_string()]].concat();
                self.push(path, line(n.ident.span()));
            }
            syn::UseTree::Rename(r) => {
                let path = [prefix.as_slice(), &[r.ident.to_string()]].concat();
                self.push(path, line(r.ident.span()));
            }
            syn::UseTree::Glob(g) => self.push(prefix.clone(), line(g.star_token.span)),
            syn::UseTree::Group(g) => {
                for tree in &g.items {
                    self.use_tree(prefix, tree);
                }
            }
        }
    }

    fn tokens(&mut self, tokens: TokenStream) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < tokens.len() {
            match &tokens[i] {
                TokenTree::Group(group) => self.tokens(group.stream()),
                TokenTree::Ident(ident)
                    if ["crate", "super", "self"].contains(&ident.to_string().as_str()) =>
                {
                    let mut path = vec![ident.to_string()];
                    while let (
                        Some(TokenTree::Punct(a)),
                        Some(TokenTree::Punct(b)),
                        Some(TokenTree::Ident(next)),
                    ) = (tokens.get(i + 1), tokens.get(i + 2), tokens.get(i + 3))
                    {
                        if a.as_char() != ':' || b.as_char() != ':' {
                            break;
                        }
                        path.push(next.to_string());
                        i += 3;
                    }
                    if path.len() > 1 {
                        self.push(path, line(ident.span()));
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
}

impl<'ast> Visit<'ast> for PathCollector {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        self.module.push(item.ident.to_string());
        visit::visit_item_mod(self, item);
        self.module.pop();
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &item.tree);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if let Some(first) = path.segments.first() {
            self.push(segments, line(first.ident.span()));
        }
        visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.tokens(mac.tokens.clone());
        visit::visit_macro(self, mac);
    }
}

/// Names `lib.rs` re-exports at the crate root, with the top-level module
/// each comes from (`pub use http::AppState` maps `AppState` to `http`).
fn root_reexports(lib: &syn::File) -> HashMap<String, String> {
    let mut collector = PathCollector::default();
    for item in &lib.items {
        if let syn::Item::Use(item) = item {
            collector.visit_item_use(item);
        }
    }
    collector
        .paths
        .into_iter()
        .filter_map(|(_, path, _)| {
            let path = if path.first().is_some_and(|f| f == "crate") {
                path[1..].to_vec()
            } else {
                path
            };
            Some((path.last()?.clone(), path.first()?.clone()))
        })
        .collect()
}

/// One path in a layer's module that names a module of another layer.
struct LayerImport {
    /// The file, under `shared/src`.
    path: String,
    line: usize,
    from: usize,
    to: usize,
    /// The path as written.
    written: String,
}

impl std::fmt::Display for LayerImport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (path, line, from, written) = (&self.path, self.line, LAYERS[self.from], &self.written);
        write!(f, "{path}:{line}: {from} imports {written}")
    }
}

/// Every path in `files` (`(path under shared/src, source)`) from one layer
/// into another, re-exports at the crate root followed to their layer.
/// `lib.rs` itself is no layer: it may re-export anything.
fn layer_imports(files: &[(String, String)]) -> Vec<LayerImport> {
    let parsed: Vec<(&str, syn::File)> = files
        .iter()
        .map(|(path, source)| (path.as_str(), parse(path, source)))
        .collect();
    let reexports = parsed
        .iter()
        .find(|(path, _)| *path == "lib.rs")
        .map(|(_, lib)| root_reexports(lib))
        .unwrap_or_default();
    let mut out = Vec::new();
    for (path, file) in &parsed {
        let module = module_of(path);
        let Some(from) = module.first().and_then(|m| layer(m)) else {
            continue; // lib.rs, or a module that is no layer
        };
        let mut collector = PathCollector {
            module: module.clone(),
            paths: Vec::new(),
        };
        collector.visit_file(file);
        for (written_in, written, line) in collector.paths {
            let Some(top) = resolve(&written_in, &written).and_then(|t| t.first().cloned()) else {
                continue;
            };
            let top = reexports.get(&top).unwrap_or(&top);
            if let Some(to) = layer(top).filter(|to| *to != from) {
                out.push(LayerImport {
                    path: (*path).to_owned(),
                    line,
                    from,
                    to,
                    written: written.join("::"),
                });
            }
        }
    }
    out
}

/// Every import of a higher layer in `files`, as "path:line: layer imports
/// path".
fn upward_imports(files: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = layer_imports(files)
        .iter()
        .filter(|import| import.to > import.from)
        .map(ToString::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

#[test]
fn shared_modules_import_only_from_the_layers_below_them() {
    let files: Vec<(String, String)> = sources(&["shared/src"])
        .into_iter()
        .map(|(path, source)| {
            let under = path.strip_prefix("shared/src/").unwrap_or(&path).to_owned();
            (under, source)
        })
        .collect();
    // Every layer is there to be checked.
    for layer in LAYERS {
        assert!(
            files
                .iter()
                .any(|(path, _)| module_of(path).first().map(String::as_str) == Some(layer)),
            "no module {layer} in shared/src"
        );
    }
    let found = upward_imports(&files);
    assert!(
        found.is_empty(),
        "imports of a higher layer (config <- db <- http <- runtime):\n{}",
        found.join("\n")
    );
    // And the check sees the imports that are allowed: each layer above
    // config imports the one below it.
    let imports = layer_imports(&files);
    for to in 0..LAYERS.len() - 1 {
        assert!(
            imports.iter().any(|i| i.from == to + 1 && i.to == to),
            "no import of {} seen in {}",
            LAYERS[to],
            LAYERS[to + 1]
        );
    }
}

#[test]
fn the_layer_check_catches_upward_imports_and_passes_downward_ones() {
    let file = |path: &str, source: &str| (path.to_owned(), source.to_owned());
    let files = [
        file(
            "lib.rs",
            "pub mod config; pub mod db; pub mod http; pub mod runtime; pub use http::AppState;",
        ),
        // Upward, each way a path can be written.
        file("config/mod.rs", "use crate::db::Db;"),
        file(
            "config/tls.rs",
            "fn f() { let _ = crate::http::error::DEFAULT_MESSAGE; }",
        ),
        file("db/pool.rs", "use super::super::http::{self, ApiError};"),
        file("db/work.rs", "fn f(_: crate::AppState) {}"),
        file(
            "db/conn.rs",
            "mod inner { use super::super::super::runtime::*; }",
        ),
        file(
            "http/state.rs",
            "fn f() { tracing::info!(x = ?crate::runtime::run()); }",
        ),
        file(
            "http/caller.rs",
            "fn f() -> self::super::super::runtime::Thing { todo!() }",
        ),
        // Downward and sideways: allowed.
        file(
            "runtime/mod.rs",
            "use crate::{config::Config, db::Db, http::AppState}; use super::runtime::cleanup;",
        ),
        file(
            "http/error.rs",
            "use crate::db::queries; use super::state::AppState; use crate::config;",
        ),
        file(
            "db/global.rs",
            "use super::pool::Db; use crate::config::DbConfig; mod tests { use super::*; }",
        ),
        file(
            "config/db.rs",
            "use super::tls; use std::time::Duration; fn f() -> Db { sqlx::db() }",
        ),
    ];
    let found = upward_imports(&files);
    let expected = [
        "config/mod.rs:1: config imports crate::db::Db",
        "config/tls.rs:1: config imports crate::http::error::DEFAULT_MESSAGE",
        "db/conn.rs:1: db imports super::super::super::runtime",
        "db/pool.rs:1: db imports super::super::http",
        "db/pool.rs:1: db imports super::super::http::ApiError",
        "db/work.rs:1: db imports crate::AppState",
        "http/caller.rs:1: http imports self::super::super::runtime::Thing",
        "http/state.rs:1: http imports crate::runtime::run",
    ];
    assert_eq!(found, expected);
}

// ---------------------------------------------------------------------------
// Function length

/// The most lines a function of the code may have, from its signature to
/// its closing brace.
const MAX_FUNCTION_LINES: usize = 60;

/// A function's first line and length, from its signature (its
/// visibility, if any) to its closing brace: doc comments and other
/// attributes above it not counted.
fn fn_lines(vis: &syn::Visibility, sig: &syn::Signature, block: &syn::Block) -> (usize, usize) {
    let start = match vis {
        syn::Visibility::Public(token) => line(token.span),
        syn::Visibility::Restricted(restricted) => line(restricted.pub_token.span),
        syn::Visibility::Inherited => [
            sig.constness.map(|t| line(t.span)),
            sig.asyncness.map(|t| line(t.span)),
            Some(line(sig.fn_token.span)),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or_default(),
    };
    let end = block.brace_token.span.close().end().line;
    (start, end + 1 - start)
}

/// Whether `attrs` mark test code: `#[test]`, `#[tokio::test]` and the
/// like, or `#[cfg(test)]` (alone or in an `all(..)`; `not(test)` is
/// code).
fn is_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        let path = attr.path();
        if path.segments.last().is_some_and(|s| s.ident == "test") {
            return true;
        }
        if !path.is_ident("cfg") {
            return false;
        }
        let syn::Meta::List(list) = &attr.meta else {
            return false;
        };
        let tokens = list.tokens.to_string();
        tokens
            .split(|c: char| !c.is_alphanumeric() && c != '_')
            .any(|word| word == "test")
            && !tokens.contains("not")
    })
}

/// Every function (free, in an `impl` or a trait, or nested) of `source`
/// outside test code, with its length.
#[derive(Default)]
struct FnLengths {
    /// `(name, first line, lines)`.
    found: Vec<(String, usize, usize)>,
}

impl FnLengths {
    fn found(&mut self, vis: &syn::Visibility, sig: &syn::Signature, block: &syn::Block) {
        let (start, lines) = fn_lines(vis, sig, block);
        self.found.push((sig.ident.to_string(), start, lines));
    }
}

impl<'ast> Visit<'ast> for FnLengths {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if !is_test(&item.attrs) {
            visit::visit_item_mod(self, item);
        }
    }

    fn visit_item_impl(&mut self, item: &'ast syn::ItemImpl) {
        if !is_test(&item.attrs) {
            visit::visit_item_impl(self, item);
        }
    }

    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        if !is_test(&item.attrs) {
            self.found(&item.vis, &item.sig, &item.block);
            visit::visit_item_fn(self, item);
        }
    }

    fn visit_impl_item_fn(&mut self, item: &'ast syn::ImplItemFn) {
        if !is_test(&item.attrs) {
            self.found(&item.vis, &item.sig, &item.block);
            visit::visit_impl_item_fn(self, item);
        }
    }

    fn visit_trait_item_fn(&mut self, item: &'ast syn::TraitItemFn) {
        if let Some(block) = item.default.as_ref().filter(|_| !is_test(&item.attrs)) {
            self.found(&syn::Visibility::Inherited, &item.sig, block);
        }
        visit::visit_trait_item_fn(self, item);
    }
}

/// The functions of `source` longer than [`MAX_FUNCTION_LINES`], as
/// `(name, first line, lines)`.
fn long_functions(path: &str, source: &str) -> Vec<(String, usize, usize)> {
    function_lengths(path, source)
        .into_iter()
        .filter(|(_, _, lines)| *lines > MAX_FUNCTION_LINES)
        .collect()
}

/// Every function of `source` outside test code, as `(name, first line,
/// lines)`.
fn function_lengths(path: &str, source: &str) -> Vec<(String, usize, usize)> {
    let mut lengths = FnLengths::default();
    lengths.visit_file(&parse(path, source));
    lengths.found
}

#[test]
fn no_function_of_the_code_runs_over_sixty_lines() {
    let mut dirs = vec!["shared/src".to_owned()];
    for entry in std::fs::read_dir(workspace_root().join("functions"))
        .expect("functions/")
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        dirs.push(format!("functions/{name}/src"));
    }
    let dirs: Vec<&str> = dirs.iter().map(String::as_str).collect();
    let mut offenders = Vec::new();
    let mut longest = (0, String::new());
    for (path, source) in sources(&dirs) {
        for (name, first, lines) in function_lengths(&path, &source) {
            let place = format!("{path}:{first}: fn {name}: {lines} lines");
            if lines > longest.0 {
                longest = (lines, place.clone());
            }
            if lines > MAX_FUNCTION_LINES {
                offenders.push(place);
            }
        }
    }
    println!("the longest: {}", longest.1);
    for offender in &offenders {
        println!("{offender}");
    }
    assert!(
        offenders.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_length_check_counts_from_the_signature_and_leaves_tests_out() {
    let body = |n: usize| "    let _ = 1;\n".repeat(n);
    // 1 signature line + 59 + 1 closing brace = 61; doc comments and
    // attributes above it do not count.
    let source = format!(
        "/// Docs.\n/// More docs.\n#[inline]\npub fn long() {{\n{}}}\n\
         fn exactly_sixty() {{\n{}}}\n\
         struct S;\nimpl S {{\n    pub(crate) async fn method(&self) {{\n{}    }}\n}}\n\
         trait T {{\n    fn provided(&self) {{\n{}    }}\n}}\n\
         fn outer() {{\n    fn nested() {{\n{}    }}\n}}\n\
         #[test]\nfn a_test() {{\n{}}}\n\
         #[tokio::test]\nasync fn an_async_test() {{\n{}}}\n\
         #[cfg(test)]\nmod tests {{\n    fn helper() {{\n{}    }}\n}}\n",
        body(59),
        body(58),
        body(59),
        body(59),
        body(59),
        body(100),
        body(100),
        body(100),
    );
    let long: Vec<(String, usize)> = long_functions("example.rs", &source)
        .into_iter()
        .map(|(name, _, lines)| (name, lines))
        .collect();
    assert_eq!(
        long,
        [
            ("long".to_owned(), 61),
            ("method".to_owned(), 61),
            ("provided".to_owned(), 61),
            ("outer".to_owned(), 63),
            ("nested".to_owned(), 61),
        ]
    );
    assert!(long_functions("short.rs", "fn f() {}\nfn g() {\n}\n").is_empty());
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
