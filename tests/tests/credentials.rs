//! A database password that rotates while the function runs: the real
//! `history` binary reads it from Secrets Manager through the Parameters
//! and Secrets extension's local endpoint (played here by a small HTTP
//! server speaking the extension's protocol), and the role's password is
//! changed on a private server that checks passwords (scram-sha-256).
//! With the new secret served, new connections log in and no request
//! fails. (RDS IAM tokens are checked against the AWS SDK's signature in
//! `shared`'s unit tests; no RDS is reachable here.)

use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use integration_tests::lambda_api::FakeLambda;
use integration_tests::{ApiRequest, Shape, TEST_AUTH_SECRET, process};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use shared::config::AuthConfig;
use shared::http::identity::{UserType, issue_token};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

const SECRET_ID: &str = "chat-backend/database";
const SESSION_TOKEN: &str = "session-token-of-the-function";

/// The extension's `GET /secretsmanager/get`, serving the current
/// password to callers that present the session token.
#[derive(Clone, Default)]
struct Extension {
    password: Arc<Mutex<String>>,
    reads: Arc<Mutex<u32>>,
}

impl Extension {
    async fn start(password: &str) -> (Extension, SocketAddr) {
        let extension = Extension::default();
        extension.set(password);
        let app = Router::new()
            .route("/secretsmanager/get", get(serve))
            .with_state(extension.clone());
        // The server runs for the rest of the test process.
        let (addr, _server) = integration_tests::runtime_api::serve(app).await;
        (extension, addr)
    }

    fn set(&self, password: &str) {
        *self.password.lock().expect("lock") = password.to_owned();
    }

    fn reads(&self) -> u32 {
        *self.reads.lock().expect("lock")
    }
}

async fn serve(
    State(extension): State<Extension>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> (StatusCode, String) {
    if headers
        .get("x-aws-parameters-secrets-token")
        .and_then(|v| v.to_str().ok())
        != Some(SESSION_TOKEN)
    {
        return (StatusCode::UNAUTHORIZED, "missing token".into());
    }
    if query.get("secretId").map(String::as_str) != Some(SECRET_ID) {
        return (StatusCode::BAD_REQUEST, "unknown secret".into());
    }
    *extension.reads.lock().expect("lock") += 1;
    let password = extension.password.lock().expect("lock").clone();
    // The layout of an RDS secret.
    let secret = json!({
        "engine": "postgres", "host": "ignored", "port": 5432,
        "username": "app", "password": password,
    });
    let answer = json!({
        "ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:chat-backend/database",
        "Name": SECRET_ID,
        "SecretString": secret.to_string(),
        "VersionId": Uuid::new_v4(),
        "VersionStages": ["AWSCURRENT"],
    });
    (StatusCode::OK, answer.to_string())
}

/// A private server where role `app` logs in with a password, holding a
/// migrated database `chat`; removed when dropped.
struct PasswordServer {
    dir: PathBuf,
    server: Option<devdb::DevDb>,
}

impl PasswordServer {
    async fn start(password: &str) -> PasswordServer {
        let dir = std::env::temp_dir().join(format!(
            "chat-backend-credentials-{}",
            Uuid::new_v4().simple()
        ));
        let server = devdb::DevDb::ensure_running(&dir)
            .unwrap_or_else(|error| panic!("the private server could not start: {error:#}"));
        let admin_url = server.url();
        let data_dir = server.data_dir().to_path_buf();
        let guard = PasswordServer {
            dir,
            server: Some(server),
        };
        // The test's own role stays trusted; `app` must give its password.
        let hba = data_dir.join("pg_hba.conf");
        std::fs::write(
            &hba,
            "host all postgres 127.0.0.1/32 trust\nhost all app 127.0.0.1/32 scram-sha-256\n",
        )
        .expect("write pg_hba.conf");
        std::fs::set_permissions(&hba, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let owner = std::fs::metadata(&data_dir).expect("owner");
        std::os::unix::fs::chown(&hba, Some(owner.uid()), Some(owner.gid())).expect("chown");

        let mut admin = PgConnection::connect(&admin_url).await.expect("admin");
        for sql in [
            format!("CREATE ROLE app LOGIN SUPERUSER PASSWORD '{password}'"),
            "CREATE DATABASE chat OWNER app".to_owned(),
            "SELECT pg_reload_conf()".to_owned(),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut admin)
                .await
                .expect("set up the server");
        }
        let _ = admin.close().await;
        let mut chat = PgConnection::connect(&guard.admin_url("chat"))
            .await
            .expect("connect to chat");
        migrate::MIGRATOR.run(&mut chat).await.expect("migrate");
        let _ = chat.close().await;
        guard
    }

    fn port(&self) -> u16 {
        self.server.as_ref().map_or(0, devdb::DevDb::port)
    }

    fn admin_url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port())
    }

    async fn admin(&self) -> PgConnection {
        PgConnection::connect(&self.admin_url("chat"))
            .await
            .expect("admin connection")
    }

    /// A user of the chat database, as the auth function would create.
    async fn user(&self) -> Uuid {
        let id = Uuid::new_v4();
        let mut admin = self.admin().await;
        sqlx::query(r#"INSERT INTO "User" (id, email) VALUES ($1, 'ada@example.com')"#)
            .bind(id)
            .execute(&mut admin)
            .await
            .expect("create a user");
        let _ = admin.close().await;
        id
    }

    /// Ends `app`'s sessions (as a rotation's cleanup, or a failover,
    /// would), so that the next request needs a new login.
    async fn end_app_sessions(&self) -> i64 {
        let mut admin = self.admin().await;
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'app'",
        )
        .fetch_one(&mut admin)
        .await
        .expect("terminate");
        let _ = admin.close().await;
        n
    }
}

impl Drop for PasswordServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take()
            && let Err(error) = server.stop_and_remove()
        {
            eprintln!("note: the private server was not removed: {error:#}");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The history function's environment: the server's URL without a
/// password, the secret to read it from, and `session_token` to read it
/// with.
fn history_env(
    lambda: &FakeLambda,
    server: &PasswordServer,
    extension: SocketAddr,
    session_token: &str,
) -> Vec<(String, String)> {
    let mut env = lambda.function_env("history");
    env.extend(
        [
            (
                "POSTGRES_URL",
                format!("postgres://app@127.0.0.1:{}/chat", server.port()),
            ),
            ("DB_SECRET_ID", SECRET_ID.to_owned()),
            ("AWS_SESSION_TOKEN", session_token.to_owned()),
            (
                "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT",
                extension.port().to_string(),
            ),
            ("AUTH_SECRET", TEST_AUTH_SECRET.to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_rotated_in_secrets_manager_is_picked_up_without_a_failed_request() {
    let server = PasswordServer::start("first-password").await;
    let (extension, addr) = Extension::start("first-password").await;
    let lambda = FakeLambda::start().await;
    let env = history_env(&lambda, &server, addr, SESSION_TOKEN);
    let mut child = process::spawn("history", &env);
    let token = issue_token(
        &AuthConfig::with_secret(TEST_AUTH_SECRET),
        server.user().await,
        UserType::Regular,
        Some("ada@example.com"),
    )
    .expect("token");
    let call = || async {
        let event = ApiRequest::get("/api/history")
            .bearer(&token)
            .event(Shape::RestV1);
        let response = lambda.invoke(event, Duration::from_secs(20)).await.json();
        response["statusCode"].as_u64().unwrap_or(0)
    };

    for _ in 0..3 {
        assert_eq!(call().await, 200);
    }
    // Read once, before the first connection; warm requests reuse it.
    assert_eq!(extension.reads(), 1);

    // Rotation: the role's password changes and the secret with it; the
    // old sessions go.
    let mut admin = server.admin().await;
    sqlx::raw_sql("ALTER ROLE app PASSWORD 'second-password'")
        .execute(&mut admin)
        .await
        .expect("rotate");
    let _ = admin.close().await;
    extension.set("second-password");
    assert_eq!(server.end_app_sessions().await, 1);
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The next request finds its connection dead, logs in with the old
    // password, is refused, reads the secret again and logs in: 200.
    for _ in 0..3 {
        assert_eq!(call().await, 200);
    }
    assert_eq!(extension.reads(), 2, "one more read, on the refused login");

    let pid = Pid::from_raw(i32::try_from(child.id().expect("running")).expect("pid"));
    kill(pid, Signal::SIGTERM).expect("SIGTERM");
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    let logs = process::output(&mut child).await;
    assert!(
        logs.contains("refused our login"),
        "the retry is logged: {logs}"
    );
    for secret in ["first-password", "second-password"] {
        assert!(!logs.contains(secret), "a password in the logs: {logs}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_that_cannot_be_read_is_a_503_that_names_no_secret() {
    let server = PasswordServer::start("first-password").await;
    let (extension, addr) = Extension::start("first-password").await;
    let lambda = FakeLambda::start().await;
    // Not the function's token: the extension refuses.
    let env = history_env(&lambda, &server, addr, "someone-else");
    let _child = process::spawn("history", &env);
    let token = issue_token(
        &AuthConfig::with_secret(TEST_AUTH_SECRET),
        server.user().await,
        UserType::Regular,
        None,
    )
    .expect("token");
    let event = ApiRequest::get("/api/history")
        .bearer(&token)
        .event(Shape::HttpV2);
    let response = lambda.invoke(event, Duration::from_secs(20)).await.json();
    assert_eq!(response["statusCode"], 503, "{response}");
    let body = response["body"].as_str().unwrap_or_default();
    assert!(body.contains("try again later"), "{body}");
    assert!(
        !body.contains(SECRET_ID) && !body.contains("password"),
        "{body}"
    );
    assert_eq!(extension.reads(), 0);
}
