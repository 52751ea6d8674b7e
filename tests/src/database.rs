//! A database of its own for every test, on a real PostgreSQL server.
//!
//! The server is the one in `POSTGRES_URL` (or `DATABASE_URL`); with
//! neither set, a private throwaway server started from the machine's
//! PostgreSQL binaries (`devdb`) under `target/devdb/test`, shared by every
//! test process of the run (the test runner starts one process per test).
//! `cargo xtask test` stops and removes it afterwards.
//!
//! Migrated databases are copied from a template migrated once per set of
//! migrations (`CREATE DATABASE .. TEMPLATE`), which takes milliseconds.
//! Each database is dropped when its [`TestDb`] is.

use std::hash::{Hash, Hasher};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use shared::config::{DbConfig, MigrateConfig};
use shared::db::Db;
use uuid::Uuid;

/// The server every test of this process uses: its admin URL (database
/// `postgres`).
fn server_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        for var in ["POSTGRES_URL", "DATABASE_URL"] {
            if let Ok(url) = std::env::var(var)
                && !url.trim().is_empty()
            {
                return url;
            }
        }
        let dir = crate::workspace_root().join("target/devdb/test");
        match devdb::DevDb::ensure_running(&dir) {
            Ok(server) => server.url(),
            Err(error) => panic!(
                "no POSTGRES_URL or DATABASE_URL, and the private test server could not start: {error:#}"
            ),
        }
    })
}

/// The variable that puts the functions behind a transaction-mode pooler:
/// the pooler's URL (any database; each test's own is substituted).
/// `cargo xtask test` sets it for its pass through PgBouncer.
pub const POOLER_URL_VAR: &str = "TEST_DB_POOLER_URL";

/// The pooler the functions reach the server through in this run, if any
/// ([`POOLER_URL_VAR`]). Test fixtures and checks always go direct.
pub fn pooler_url() -> Option<String> {
    std::env::var(POOLER_URL_VAR)
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// What the functions read as their environment for the server: its URL,
/// and `DB_POOLER` when they reach it through a pooler.
fn functions_var(name: &str) -> Option<String> {
    match (name, pooler_url()) {
        ("POSTGRES_URL", Some(url)) => Some(url),
        ("POSTGRES_URL", None) => Some(server_url().to_owned()),
        ("DB_POOLER", Some(_)) => Some("transaction".to_owned()),
        _ => None,
    }
}

/// The test server, as a pooler in front of it must reach it.
pub fn server_upstream() -> devdb::Upstream {
    devdb::Upstream::from_url(server_url()).expect("the test server URL parses")
}

fn admin_config(database: &str) -> DbConfig {
    // Tests run dozens of databases on one server: keep each pool small.
    let lookup = |name: &str| match name {
        "POSTGRES_URL" => Some(server_url().to_owned()),
        "DB_POOL_MAX" => Some("2".to_owned()),
        _ => None,
    };
    shared::config::Config::from_lookup("test-admin", lookup)
        .map(|config| config.db.with_database(database))
        .unwrap_or_else(|error| panic!("the test server URL is unusable: {error}"))
}

/// Runs `sql` on the server's `postgres` database, on a connection opened
/// and closed for it.
async fn on_server(sql: String) -> Result<()> {
    let db = Db::connect_lazy(&admin_config("postgres"));
    let result = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(db.pool())
        .await;
    db.close_within(Duration::from_secs(5)).await;
    result.map(|_| ()).map_err(Into::into)
}

/// The template database holding the current migrations, created on first
/// use (under an advisory lock, since test processes race for it).
async fn template() -> Result<String> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for migration in migrate::MIGRATOR.iter() {
        migration.version.hash(&mut hasher);
        migration.checksum.hash(&mut hasher);
    }
    let name = format!("tmpl_{:016x}", hasher.finish());

    let admin = Db::connect_lazy(&admin_config("postgres"));
    let mut conn = admin
        .pool()
        .acquire()
        .await
        .context("connect to the test server")?;
    sqlx::query("SELECT pg_advisory_lock(727274)")
        .execute(&mut *conn)
        .await?;
    let result = async {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&name)
                .fetch_one(&mut *conn)
                .await?;
        if !exists {
            let building = format!("{name}_building");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                r#"DROP DATABASE IF EXISTS "{building}" WITH (FORCE)"#
            )))
            .execute(&mut *conn)
            .await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                r#"CREATE DATABASE "{building}""#
            )))
            .execute(&mut *conn)
            .await?;
            migrate::migrate(&migrate_config(&building), &migrate::MIGRATOR)
                .await
                .context("migrate the template database")?;
            // Renamed only once complete, so a crash never leaves a
            // half-migrated template behind under the real name.
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                r#"ALTER DATABASE "{building}" RENAME TO "{name}""#
            )))
            .execute(&mut *conn)
            .await?;
        }
        anyhow::Ok(())
    }
    .await;
    let _ = sqlx::query("SELECT pg_advisory_unlock(727274)")
        .execute(&mut *conn)
        .await;
    drop(conn);
    admin.close_within(Duration::from_secs(5)).await;
    result.map(|()| name)
}

/// A migrate configuration for `database` on the test server.
pub fn migrate_config(database: &str) -> MigrateConfig {
    let lookup = |name: &str| (name == "POSTGRES_URL").then(|| server_url().to_owned());
    let mut config = MigrateConfig::from_lookup(lookup)
        .unwrap_or_else(|error| panic!("the test server URL is unusable: {error}"));
    config.db = config.db.with_database(database);
    config
}

/// A database that lives as long as the test holds it.
pub struct TestDb {
    name: String,
    /// The test's own pool on this database, for its checks; named
    /// `chat-backend-test:observer` so that it never counts as ours.
    observer: Db,
}

impl TestDb {
    /// A fresh database with every migration applied.
    pub async fn migrated() -> TestDb {
        let template = template()
            .await
            .unwrap_or_else(|error| panic!("could not prepare the template database: {error:#}"));
        Self::create(&format!(r#"TEMPLATE "{template}""#)).await
    }

    /// A fresh, empty database (no migration applied).
    pub async fn empty() -> TestDb {
        Self::create("").await
    }

    async fn create(options: &str) -> TestDb {
        let name = format!("t_{}", Uuid::new_v4().simple());
        let sql = format!(r#"CREATE DATABASE "{name}" {options}"#);
        // Creating from a template fails while another session is briefly
        // connected to it; retry.
        let mut last = None;
        for _ in 0..20 {
            match on_server(sql.clone()).await {
                Ok(()) => {
                    let observer = Db::connect_lazy(
                        &admin_config(&name).with_application_name("chat-backend-test:observer"),
                    );
                    return TestDb { name, observer };
                }
                Err(error) => {
                    last = Some(error);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        panic!(
            "could not create a test database: {:#}",
            last.unwrap_or_else(|| anyhow!("?"))
        );
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A pool configuration for this database: the defaults of a process
    /// outside Lambda, with `function` naming its connections.
    pub fn config(&self, function: &'static str) -> DbConfig {
        let lookup = |name: &str| match name {
            "DB_POOL_MAX" => Some("2".to_owned()),
            _ => functions_var(name),
        };
        shared::config::Config::from_lookup(function, lookup)
            .map(|config| config.db.with_database(&self.name))
            .unwrap_or_else(|error| panic!("the test server URL is unusable: {error}"))
    }

    /// A configuration read from `vars` (plus `POSTGRES_URL` pointing at
    /// this database), as a function process would read its environment.
    /// A later entry overrides an earlier one of the same name, and a blank
    /// value counts as unset.
    pub fn config_with(
        &self,
        function: &'static str,
        vars: &[(&str, &str)],
    ) -> shared::config::Config {
        self.config_from(function, functions_var("POSTGRES_URL"), vars)
    }

    /// [`TestDb::config_with`], with the functions reaching the server
    /// through the transaction-mode pooler at `pooler_url` (any database
    /// of it; this one is substituted).
    pub fn config_through_pooler(
        &self,
        function: &'static str,
        pooler_url: &str,
        vars: &[(&str, &str)],
    ) -> shared::config::Config {
        let mut all = vec![("DB_POOLER", "transaction")];
        all.extend_from_slice(vars);
        self.config_from(function, Some(pooler_url.to_owned()), &all)
    }

    /// [`TestDb::config_with`], with the functions reaching this database
    /// at `url` (a proxy in front of the server, say).
    pub fn config_at(
        &self,
        function: &'static str,
        url: &str,
        vars: &[(&str, &str)],
    ) -> shared::config::Config {
        self.config_from(function, Some(url.to_owned()), vars)
    }

    fn config_from(
        &self,
        function: &'static str,
        url: Option<String>,
        vars: &[(&str, &str)],
    ) -> shared::config::Config {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let lookup = move |name: &str| {
            if name == "POSTGRES_URL" {
                return url.clone();
            }
            // A later entry overrides an earlier one; a blank value unsets.
            vars.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .or_else(|| functions_var(name))
        };
        let mut config = shared::config::Config::from_lookup(function, lookup)
            .unwrap_or_else(|error| panic!("invalid test configuration: {error}"));
        config.db = config.db.with_database(&self.name);
        config
    }

    /// The migrate function's configuration for this database.
    pub fn migrate_config(&self) -> MigrateConfig {
        migrate_config(&self.name)
    }

    /// A URL for this database (for child processes).
    pub fn url(&self) -> String {
        let mut url = url::Url::parse(server_url()).expect("the server URL parsed before");
        url.set_path(&self.name);
        url.to_string()
    }

    /// The test's own pool on this database, for its checks.
    pub fn observer(&self) -> &sqlx::PgPool {
        self.observer.pool()
    }

    /// How many server backends on this database carry `application_name`.
    pub async fn backends(&self, application_name: &str) -> i64 {
        backends_on(self.observer(), &self.name, application_name).await
    }

    /// Waits (up to `bound`) until the server shows `expected` backends of
    /// `application_name` on this database, and returns the last count.
    pub async fn wait_for_backends(
        &self,
        application_name: &str,
        expected: i64,
        bound: Duration,
    ) -> i64 {
        wait_for_backends_on(
            self.observer(),
            &self.name,
            application_name,
            expected,
            bound,
        )
        .await
    }

    /// Runs a statement on this database (test set-up and fault injection).
    pub async fn execute(&self, sql: &str) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(self.observer())
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error}"));
    }
}

/// How many backends on `database` carry `application_name`, as the server
/// shows them to `observer`.
pub(crate) async fn backends_on(
    observer: &sqlx::PgPool,
    database: &str,
    application_name: &str,
) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
    )
    .bind(database)
    .bind(application_name)
    .fetch_one(observer)
    .await
    .expect("pg_stat_activity is readable")
}

/// Waits (up to `bound`) until [`backends_on`] counts `expected`, and
/// returns the last count.
pub(crate) async fn wait_for_backends_on(
    observer: &sqlx::PgPool,
    database: &str,
    application_name: &str,
    expected: i64,
    bound: Duration,
) -> i64 {
    let start = std::time::Instant::now();
    loop {
        let n = backends_on(observer, database, application_name).await;
        if n == expected || start.elapsed() > bound {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = format!(r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#, self.name);
        // Drop cannot await, and may run on a runtime that is shutting
        // down: use a runtime of its own, on a thread of its own.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|runtime| runtime.block_on(on_server(sql)))
        })
        .join();
        if !matches!(dropped, Ok(Ok(Ok(())))) {
            eprintln!("note: test database {} was not dropped", self.name);
        }
    }
}
