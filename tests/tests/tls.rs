//! TLS to the database, against a PostgreSQL server of each test's own that
//! speaks TLS with a certificate from a test CA, for the name `localhost`
//! only, and refuses every connection without TLS (a `hostssl`-only
//! `pg_hba.conf`).
//!
//! Every connection here is made from a configuration read as a function
//! reads its environment (`Config::from_lookup`): `sslmode` from the URL,
//! the CA from `DB_SSL_ROOT_CERT` or the URL's `sslrootcert`. The URLs
//! carry a password (the server trusts every local connection and ignores
//! it) so that the tests can check that no error shows it.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use integration_tests::{ApiRequest, Shape, TEST_AUTH_SECRET, read};
use shared::AppState;
use shared::config::{Config, MigrateConfig};
use shared::db::Db;
use shared::http::DbContext;
use shared::http::identity::{UserType, issue_token};
use shared::runtime::run_with_cleanup;
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use uuid::Uuid;

/// In every URL, never in any error.
const PASSWORD: &str = "tls-test-pw";

/// The database each server gets.
const DATABASE: &str = "chat";

/// What the server says a connection is.
const SSL_OF_THIS_CONNECTION: &str = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

/// A test CA: its certificate in PEM and what it needs to sign.
struct TestCa {
    pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let key = rcgen::KeyPair::generate().expect("a CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let pem = params.self_signed(&key).expect("a CA certificate").pem();
        TestCa {
            pem,
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A server certificate for `names` and its key, both in PEM.
    fn server_certificate(&self, names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("a server key");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("server params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "test database");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("a server certificate");
        (cert.pem(), key.serialize_pem())
    }
}

/// A private server with TLS on; stopped and removed when dropped, however
/// the test ends.
struct TlsServer {
    /// Where its files are; removed on drop even if the server never came up.
    dir: PathBuf,
    server: Option<devdb::DevDb>,
    /// The CA that signed the server's certificate.
    ca: TestCa,
    /// [`Self::ca`]'s certificate as a file.
    ca_file: PathBuf,
}

impl TlsServer {
    /// Starts a server, turns TLS on with a certificate for `localhost`
    /// signed by a fresh test CA, allows only TLS connections, and creates
    /// [`DATABASE`].
    async fn start() -> TlsServer {
        let dir =
            std::env::temp_dir().join(format!("chat-backend-tls-{}", Uuid::new_v4().simple()));
        let mut guard = TlsServer {
            dir: dir.clone(),
            server: None,
            ca: TestCa::new("chat-backend test CA"),
            ca_file: dir.join("ca.pem"),
        };
        let server = devdb::DevDb::ensure_running(&dir)
            .unwrap_or_else(|error| panic!("the private server could not start: {error:#}"));
        let plain_url = server.url();
        let data_dir = server.data_dir().to_path_buf();
        guard.server = Some(server);

        let (cert, key) = guard.ca.server_certificate(&["localhost"]);
        // The server runs as the data directory's owner (the postgres user
        // when the tests run as root) and refuses a key others can read.
        write_for_server(&data_dir.join("server.crt"), &cert, 0o644, &data_dir);
        write_for_server(&data_dir.join("server.key"), &key, 0o600, &data_dir);
        // No `host` line: a connection without TLS matches nothing and is
        // refused.
        write_for_server(
            &data_dir.join("pg_hba.conf"),
            "hostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
            0o600,
            &data_dir,
        );
        std::fs::write(&guard.ca_file, &guard.ca.pem).expect("write the CA file");

        let mut conn = PgConnection::connect(&plain_url)
            .await
            .expect("connect before TLS is on");
        // One statement at a time: ALTER SYSTEM refuses a transaction block.
        for sql in [
            "ALTER SYSTEM SET ssl = on",
            "ALTER SYSTEM SET ssl_cert_file = 'server.crt'",
            "ALTER SYSTEM SET ssl_key_file = 'server.key'",
            "SELECT pg_reload_conf()",
        ] {
            sqlx::raw_sql(sql)
                .execute(&mut conn)
                .await
                .unwrap_or_else(|error| panic!("{sql}: {error}"));
        }
        let _ = conn.close().await;
        guard.wait_for_tls().await;

        let mut conn = guard.admin().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            r#"CREATE DATABASE "{DATABASE}""#
        )))
        .execute(&mut conn)
        .await
        .expect("create the database");
        let _ = conn.close().await;
        guard
    }

    fn port(&self) -> u16 {
        self.server.as_ref().map_or(0, devdb::DevDb::port)
    }

    /// A URL of [`DATABASE`] on `host`, with a password and `query`.
    fn url(&self, host: &str, query: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@{host}:{}/{DATABASE}?{query}",
            self.port()
        )
    }

    /// The test's own connection (TLS, certificate not checked) to `database`.
    async fn admin_to(&self, database: &str) -> Result<PgConnection, sqlx::Error> {
        let url = format!(
            "postgres://postgres@127.0.0.1:{}/{database}?sslmode=require",
            self.port()
        );
        PgConnection::connect(&url).await
    }

    async fn admin(&self) -> PgConnection {
        self.admin_to("postgres")
            .await
            .expect("the test's own TLS connection")
    }

    /// Waits until the reloaded configuration serves TLS (the postmaster
    /// reloads after `pg_reload_conf()` returns).
    async fn wait_for_tls(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match self.admin_to("postgres").await {
                Ok(conn) => {
                    let _ = conn.close().await;
                    return;
                }
                Err(error) if Instant::now() > deadline => {
                    panic!("the server did not turn TLS on: {error}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// The history function's configuration with `POSTGRES_URL` = `url`
    /// and `DB_SSL_ROOT_CERT` = `ca` if given, read as the function reads
    /// its environment.
    fn config(&self, url: &str, ca: Option<&str>) -> Config {
        self.config_with(url, ca, &[])
    }

    /// [`Self::config`] with `extra` variables.
    fn config_with(&self, url: &str, ca: Option<&str>, extra: &[(&str, &str)]) -> Config {
        let url = url.to_owned();
        let ca = ca.map(str::to_owned);
        let extra: Vec<(String, String)> = extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup("history", move |name| match name {
            "POSTGRES_URL" => Some(url.clone()),
            "DB_SSL_ROOT_CERT" => ca.clone(),
            "AUTH_SECRET" => Some(TEST_AUTH_SECRET.to_owned()),
            "DB_POOL_MAX" => Some("1".to_owned()),
            "DB_CONNECT_TIMEOUT_SECS" => Some("5".to_owned()),
            _ => extra
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone()),
        })
        .unwrap_or_else(|error| panic!("invalid test configuration: {error}"))
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take()
            && let Err(error) = server.stop_and_remove()
        {
            eprintln!("note: the private TLS server was not removed: {error:#}");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes `contents` to `path` with `mode`, owned by whoever owns
/// `data_dir`, so that the server can read it.
fn write_for_server(path: &Path, contents: &str, mode: u32, data_dir: &Path) {
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
    let owner = std::fs::metadata(data_dir).expect("the data directory's owner");
    std::os::unix::fs::chown(path, Some(owner.uid()), Some(owner.gid()))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
}

/// Connects with `config`'s pool and asks the server whether the
/// connection is TLS; the error as the pool reports it otherwise.
async fn ssl_of(config: &Config) -> Result<bool, String> {
    let db = Db::connect_lazy(&config.db);
    let result = sqlx::query_scalar::<_, bool>(SSL_OF_THIS_CONNECTION)
        .fetch_one(db.pool())
        .await
        .map_err(|error| error.to_string());
    db.close_within(Duration::from_secs(5)).await;
    result
}

/// The error connecting with `config`, checked to be a TLS error that does
/// not show the password.
async fn tls_error(config: &Config) -> String {
    let error = ssl_of(config)
        .await
        .expect_err("the connection must be refused");
    assert!(!error.contains(PASSWORD), "{error}");
    error
}

#[tokio::test]
async fn the_history_function_connects_with_verify_full_and_a_ca_file_and_its_connections_are_tls()
{
    let server = TlsServer::start().await;
    let ca_file = server.ca_file.to_string_lossy().into_owned();
    let url = server.url("localhost", "sslmode=verify-full");
    let config = server.config(&url, Some(&ca_file));

    // The migrate function reads the same variables.
    let migrate_config = MigrateConfig::from_lookup(|name| match name {
        "POSTGRES_URL" => Some(url.clone()),
        "DB_SSL_ROOT_CERT" => Some(ca_file.clone()),
        _ => None,
    })
    .expect("a migrate configuration");
    migrate::migrate(&migrate_config, &migrate::MIGRATOR)
        .await
        .expect("migrations apply over verify-full");

    let mut observer = server.admin_to(DATABASE).await.expect("the observer");
    let user: Uuid =
        sqlx::query_scalar(r#"INSERT INTO "User" (email) VALUES ('ada@example.com') RETURNING id"#)
            .fetch_one(&mut observer)
            .await
            .expect("a user");
    let token = issue_token(
        &config.auth,
        user,
        UserType::Regular,
        Some("ada@example.com"),
    )
    .expect("a token");

    let state = AppState::new(Db::connect_lazy(&config.db), config);
    let request = ApiRequest::get("/api/history")
        .bearer(&token)
        .build(Shape::RestV1);
    let response = read(run_with_cleanup(&state, request, history::handle).await);
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.json["chats"], serde_json::json!([]));

    // The function's own connection, idle in its pool now, as the server
    // sees it.
    let (tls, all): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) \
         FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
         WHERE a.application_name = 'chat-backend:history'",
    )
    .fetch_one(&mut observer)
    .await
    .expect("pg_stat_ssl");
    assert_eq!((tls, all), (1, 1), "the function's connections over TLS");
    state.db.close_within(Duration::from_secs(5)).await;
    let _ = observer.close().await;
}

/// A handler stuck in a slow query.
async fn sleeps_in_the_database(
    _: lambda_http::Request,
    state: AppState,
) -> shared::http::ApiResult<http::Response<lambda_http::Body>> {
    sqlx::query("SELECT pg_sleep(30)")
        .execute(state.db.pool())
        .await
        .context("sleep in the database")?;
    shared::http::response::ok(&serde_json::json!({}))
}

/// Over TLS, a connection whose statement was abandoned used to stay
/// checked out for good: draining it read the cancelled statement's error,
/// sqlx then closed the connection, and that close hangs on a TLS stream.
/// With a pool of one, every later request failed.
#[tokio::test]
async fn over_tls_a_handler_cut_off_mid_query_gets_its_connection_back() {
    let server = TlsServer::start().await;
    let url = server.url("localhost", "sslmode=require");
    let config = server.config_with(
        &url,
        None,
        &[
            ("HANDLER_TIMEOUT_SECS", "1"),
            ("DB_STATEMENT_TIMEOUT_SECS", "2"),
        ],
    );
    let state = AppState::new(Db::connect_lazy(&config.db), config);
    let request = ApiRequest::get("/api/history").build(Shape::HttpV2);
    let response = read(run_with_cleanup(&state, request, sleeps_in_the_database).await);
    assert_eq!(response.status, 503, "{}", response.text);

    // statement_timeout ends the query at 2 s; the drain then gives the
    // connection back, still open and over TLS.
    let settled = state.db.wait_until_settled(Duration::from_secs(6)).await;
    assert_eq!(settled, 0, "the connection did not come back");
    assert_eq!(state.db.size(), 1);
    let answer: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(state.db.pool())
        .await
        .expect("the pool of one works again");
    assert_eq!(answer, 1);
    state.db.close_within(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn verify_full_succeeds_with_the_ca_as_pem_text_or_as_the_urls_sslrootcert() {
    let server = TlsServer::start().await;
    let url = server.url("localhost", "sslmode=verify-full");
    let inline = server.config(&url, Some(&server.ca.pem));
    assert_eq!(ssl_of(&inline).await, Ok(true));

    // No variable: the URL's own sslrootcert, as sqlx reads it.
    let ca_file = server.ca_file.to_string_lossy().into_owned();
    let url = server.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca_file}"),
    );
    let from_url = server.config(&url, None);
    assert_eq!(ssl_of(&from_url).await, Ok(true));
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_as_an_unknown_issuer() {
    let server = TlsServer::start().await;
    let other = TestCa::new("some other CA");
    for mode in ["verify-full", "verify-ca"] {
        let url = server.url("localhost", &format!("sslmode={mode}"));
        let config = server.config(&url, Some(&other.pem));
        let error = tls_error(&config).await;
        assert!(
            error.contains("invalid peer certificate: UnknownIssuer"),
            "{mode}: {error}"
        );
    }
    // Without a CA of ours, only the public roots: refused the same way.
    let url = server.url("localhost", "sslmode=verify-full");
    let config = server.config(&url, None);
    let error = tls_error(&config).await;
    assert!(error.contains("UnknownIssuer"), "{error}");
}

#[tokio::test]
async fn verify_full_refuses_a_host_name_the_certificate_does_not_name_and_verify_ca_does_not_check_it()
 {
    let server = TlsServer::start().await;
    // The certificate names `localhost`; 127.0.0.1 is the same server by
    // another name.
    let wrong_name = server.url("127.0.0.1", "sslmode=verify-full");
    let config = server.config(&wrong_name, Some(&server.ca.pem));
    let error = tls_error(&config).await;
    assert!(
        error.contains("invalid peer certificate: certificate not valid for name \"127.0.0.1\""),
        "{error}"
    );

    let chain_only = server.url("127.0.0.1", "sslmode=verify-ca");
    let config = server.config(&chain_only, Some(&server.ca.pem));
    assert_eq!(ssl_of(&config).await, Ok(true));
}

#[tokio::test]
async fn require_encrypts_without_a_ca_and_a_ca_makes_it_check_the_chain() {
    let server = TlsServer::start().await;
    let url = server.url("127.0.0.1", "sslmode=require");
    let config = server.config(&url, None);
    assert_eq!(ssl_of(&config).await, Ok(true));

    // With a CA, `require` checks the chain, as libpq's does.
    let other = TestCa::new("some other CA");
    let config = server.config(&url, Some(&other.pem));
    let error = tls_error(&config).await;
    assert!(error.contains("UnknownIssuer"), "{error}");
}

#[tokio::test]
async fn a_server_that_demands_tls_refuses_sslmode_disable() {
    let server = TlsServer::start().await;
    let url = server.url("localhost", "sslmode=disable");
    let config = server.config(&url, None);
    let error = ssl_of(&config)
        .await
        .expect_err("a connection without TLS is refused");
    assert!(error.contains("no pg_hba.conf entry"), "{error}");
    assert!(error.contains("no encryption"), "{error}");
    assert!(!error.contains(PASSWORD), "{error}");
}

#[test]
fn a_ca_that_cannot_be_read_stops_the_configuration_naming_the_variable() {
    // No server needed: the bundle is read when the configuration is.
    let url =
        format!("postgres://postgres:{PASSWORD}@localhost:5432/{DATABASE}?sslmode=verify-full");
    let lookup = |name: &str| match name {
        "POSTGRES_URL" => Some(url.clone()),
        "DB_SSL_ROOT_CERT" => Some("/nonexistent/ca.pem".to_owned()),
        _ => None,
    };
    let error = Config::from_lookup("history", lookup)
        .expect_err("refused at start")
        .to_string();
    assert!(error.starts_with("DB_SSL_ROOT_CERT is invalid"), "{error}");
    assert!(
        error.contains("/nonexistent/ca.pem cannot be read"),
        "{error}"
    );
    assert!(!error.contains(PASSWORD), "{error}");
}
