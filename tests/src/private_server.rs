//! A PostgreSQL server of a test's own, for faults that would disturb the
//! shared test server: restarts, a full `max_connections`.
//!
//! The server is started with `devdb` in a fresh temporary directory and
//! removed when the [`PrivateServer`] is dropped. Clients never see its
//! port: functions reach it through a [`Proxy`] that the test can fault
//! (silence, refuse), and the test's own checks go through a second proxy
//! that is never faulted. A restarted server listens on a new port (devdb
//! picks a free one); both proxies are pointed at it, so that clients keep
//! one address, as they keep a database's DNS name across a failover.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use shared::AppState;
use shared::config::{Config, MigrateConfig};
use shared::db::Db;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::database::{backends_on, wait_for_backends_on};
use crate::proxy::Proxy;
use crate::{TEST_AUTH_SECRET, TestApp};

/// The database every private server gets, migrated.
pub const DATABASE: &str = "chat";

/// The application name of the test's own connections.
pub const OBSERVER: &str = "chat-backend-test:observer";

/// A private server (see the module docs).
pub struct PrivateServer {
    dir: PathBuf,
    server: Option<devdb::DevDb>,
    /// The functions' path to the server: fault it at will.
    pub proxy: Proxy,
    /// The test's own path to the server, never faulted.
    admin: Proxy,
    observer: sqlx::PgPool,
}

impl PrivateServer {
    /// Starts a fresh server, creates [`DATABASE`] and migrates it.
    pub async fn start() -> PrivateServer {
        let dir = std::env::temp_dir().join(format!(
            "chat-backend-private-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let server = start_devdb(dir.clone()).await;
        let upstream = addr(server.port());
        let proxy = Proxy::start(upstream).await;
        let admin = Proxy::start(upstream).await;
        let setup = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options(admin.port(), "postgres").application_name(OBSERVER));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            r#"CREATE DATABASE "{DATABASE}""#
        )))
        .execute(&setup)
        .await
        .expect("create the private database");
        setup.close().await;
        let observer = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options(admin.port(), DATABASE).application_name(OBSERVER));
        let private = PrivateServer {
            dir,
            server: Some(server),
            proxy,
            admin,
            observer,
        };
        let lookup = |name: &str| (name == "POSTGRES_URL").then(|| private.admin_url());
        let config = MigrateConfig::from_lookup(lookup).expect("a migrate configuration");
        migrate::migrate(&config, &migrate::MIGRATOR)
            .await
            .expect("migrate the private database");
        private
    }

    /// The URL functions use: through the faultable proxy, with a password
    /// (the server trusts every local connection and ignores it) so that
    /// tests can look for it in logs.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres:{DB_PASSWORD}@127.0.0.1:{}/{DATABASE}",
            self.proxy.port()
        )
    }

    /// The URL of the test's own path.
    pub fn admin_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{DATABASE}",
            self.admin.port()
        )
    }

    /// The test's own pool on [`DATABASE`].
    pub fn observer(&self) -> &sqlx::PgPool {
        &self.observer
    }

    /// A configuration of `function` read from `vars` (plus `POSTGRES_URL`
    /// through the proxy and [`TEST_AUTH_SECRET`]), as a process reads its
    /// environment; a later entry overrides an earlier one.
    pub fn config(&self, function: &'static str, vars: &[(&str, &str)]) -> Config {
        let mut all: Vec<(String, String)> = vec![
            ("POSTGRES_URL".into(), self.url()),
            ("AUTH_SECRET".into(), TEST_AUTH_SECRET.into()),
        ];
        all.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        Config::from_lookup(function, move |name| {
            all.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        })
        .unwrap_or_else(|error| panic!("invalid test configuration: {error}"))
    }

    /// A function served in-process on this server (through the proxy).
    pub fn app(&self, function: &'static str, vars: &[(&str, &str)]) -> TestApp {
        let config = self.config(function, vars);
        TestApp {
            state: AppState::new(Db::connect_lazy(&config.db), config),
            observer: self.observer.clone(),
        }
    }

    /// Backends on [`DATABASE`] with `application_name`.
    pub async fn backends(&self, application_name: &str) -> i64 {
        backends_on(&self.observer, DATABASE, application_name).await
    }

    /// Waits (up to `bound`) until the server shows `expected` backends of
    /// `application_name`, and returns the last count.
    pub async fn wait_for_backends(
        &self,
        application_name: &str,
        expected: i64,
        bound: Duration,
    ) -> i64 {
        wait_for_backends_on(&self.observer, DATABASE, application_name, expected, bound).await
    }

    /// Stops the server (`pg_ctl stop -m fast`: sessions are terminated),
    /// and has the functions' proxy refuse connections, as a stopped
    /// server's port does.
    pub async fn stop(&mut self) {
        self.proxy.refuse();
        self.proxy.cut_all();
        let server = self.server.take().expect("the server is running");
        tokio::task::spawn_blocking(move || {
            server.stop().expect("stop the private server");
        })
        .await
        .expect("stopping task");
    }

    /// Starts the server again (on a new port) and points both proxies at it.
    pub async fn start_again(&mut self) {
        let server = start_devdb(self.dir.clone()).await;
        let upstream = addr(server.port());
        self.proxy.retarget(upstream);
        self.admin.retarget(upstream);
        self.server = Some(server);
        self.proxy.listen().await;
    }

    /// Runs `sql` on [`DATABASE`] through the test's own path.
    pub async fn execute(&self, sql: &str) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&self.observer)
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error}"));
    }

    /// A connection of the test's own, outside any pool (to take the
    /// server's connection slots, say).
    pub async fn connect_admin(&self) -> Result<sqlx::PgConnection, sqlx::Error> {
        use sqlx::ConnectOptions;
        options(self.admin.port(), DATABASE)
            .application_name("chat-backend-test:hog")
            .connect()
            .await
    }

    /// The server's `max_connections`.
    pub async fn max_connections(&self) -> i64 {
        let value: String = sqlx::query_scalar("SHOW max_connections")
            .fetch_one(&self.observer)
            .await
            .expect("max_connections");
        value.parse().expect("a number")
    }
}

/// The password in [`PrivateServer::url`].
pub const DB_PASSWORD: &str = "db-pa55word-Xq7Lm2Vr9";

impl Drop for PrivateServer {
    fn drop(&mut self) {
        // A backend whose client went silent would hold up a fast stop.
        self.proxy.cut_all();
        self.admin.cut_all();
        let dir = self.dir.clone();
        let server = self.server.take();
        // Drop cannot await; stopping takes a moment of blocking work.
        let _ = std::thread::spawn(move || match server {
            Some(server) => server.stop_and_remove(),
            None => std::fs::remove_dir_all(&dir).map_err(Into::into),
        })
        .join();
    }
}

async fn start_devdb(dir: PathBuf) -> devdb::DevDb {
    tokio::task::spawn_blocking(move || devdb::DevDb::ensure_running(&dir))
        .await
        .expect("starting task")
        .unwrap_or_else(|error| panic!("could not start a private server: {error:#}"))
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn options(port: u16, database: &str) -> PgConnectOptions {
    PgConnectOptions::new()
        .host("127.0.0.1")
        .port(port)
        .username("postgres")
        .database(database)
}
