//! Black-box tests of the chat-backend functions, and the helpers they
//! share.
//!
//! Every test runs against a real PostgreSQL server, on a database of its
//! own ([`TestDb`]); handlers are called in-process with real
//! `lambda_http` requests built from API Gateway event JSON
//! ([`requests`]), or run as real processes behind a local Lambda Runtime
//! API ([`lambda_api`]). The tests themselves live in `tests/`, one file
//! per subject; their names say what they prove.

pub mod ai_sdk;
pub mod captured;
pub mod database;
pub mod expect;
pub mod fault_kit;
pub mod figures;
pub mod lambda_api;
pub mod lambda_stream;
pub mod private_server;
pub mod process;
pub mod proxy;
pub mod requests;
pub mod runtime_api;
pub mod sampler;
pub mod watch;
pub mod wire;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use http::Response;
use lambda_http::{Body, Request};
use serde_json::Value;
use shared::AppState;
use shared::db::Db;
use shared::http::ApiResult;
use shared::http::identity::{UserType, issue_token};
use shared::runtime::run_with_cleanup;
use uuid::Uuid;

pub use database::TestDb;
pub use requests::{ApiRequest, Shape};

/// The secret the test configurations sign tokens with.
pub const TEST_AUTH_SECRET: &str = "integration-tests-secret-0123456789abcdef";

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A function's handler, served in-process on a test database, through the
/// same cleanup wrapper as in production.
pub struct TestApp {
    /// The handler's state: its pool (named after the function) and config.
    pub state: AppState,
    /// The test's own pool, for fixtures and checks (not counted as ours).
    observer: sqlx::PgPool,
}

/// A response, read.
#[derive(Debug)]
pub struct TestResponse {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The body, parsed as JSON (`Value::Null` when empty or not JSON).
    pub json: Value,
    /// The body as text.
    pub text: String,
}

impl TestApp {
    /// A process of `function` on `db`, with the defaults of a process
    /// outside Lambda and [`TEST_AUTH_SECRET`], plus `vars` (as environment
    /// variables; `("AUTH_SECRET", "")` starts one without a secret).
    pub fn new(db: &TestDb, function: &'static str, vars: &[(&str, &str)]) -> TestApp {
        let mut all = vec![("AUTH_SECRET", TEST_AUTH_SECRET)];
        all.extend_from_slice(vars);
        Self::with_config(db, db.config_with(function, &all))
    }

    /// A process with the configuration `config` (say, from
    /// [`TestDb::config_through_pooler`]), checked through `db`.
    pub fn with_config(db: &TestDb, config: shared::config::Config) -> TestApp {
        TestApp {
            state: AppState::new(Db::connect_lazy(&config.db), config),
            observer: db.observer().clone(),
        }
    }

    /// The pool.
    pub fn db(&self) -> &Db {
        &self.state.db
    }

    /// Invokes `handler` with `request` through the cleanup wrapper, then
    /// checks what every invocation must leave: no connection checked out
    /// once returns have settled, and no transaction left unfinished.
    #[track_caller]
    pub fn call<H, Fut>(&self, handler: H, request: Request) -> impl Future<Output = TestResponse>
    where
        H: FnOnce(Request, AppState) -> Fut,
        Fut: Future<Output = ApiResult<Response<Body>>> + Send,
    {
        let caller = std::panic::Location::caller();
        async move {
            let response = self.call_unchecked(handler, request).await;
            self.assert_clean_after_call(caller).await;
            response
        }
    }

    /// [`TestApp::call`] without the checks after it: for handlers that
    /// leak on purpose, and calls made while others are still running.
    pub async fn call_unchecked<H, Fut>(&self, handler: H, request: Request) -> TestResponse
    where
        H: FnOnce(Request, AppState) -> Fut,
        Fut: Future<Output = ApiResult<Response<Body>>> + Send,
    {
        read(run_with_cleanup(&self.state, request, handler).await)
    }

    /// Fails the test (at `caller`) if a connection is still checked out
    /// once returns have settled, or a transaction was left unfinished.
    pub async fn assert_clean_after_call(&self, caller: &std::panic::Location<'_>) {
        let checked_out = self.checked_out_after_settling().await;
        assert_eq!(
            checked_out, 0,
            "a connection stayed checked out (call at {caller})"
        );
        let unfinished = self.state.db.metrics().snapshot().unfinished;
        assert_eq!(
            unfinished, 0,
            "a transaction outlived its unit of work (call at {caller})"
        );
    }

    /// Invokes `handler` through the cleanup wrapper and hands back the
    /// response as it is, for bodies that stream (read them with
    /// [`read_body`] or frame by frame).
    pub async fn call_raw<H, Fut, B>(&self, handler: H, request: Request) -> Response<B>
    where
        H: FnOnce(Request, AppState) -> Fut,
        Fut: Future<Output = ApiResult<Response<B>>> + Send,
        B: From<String>,
    {
        run_with_cleanup(&self.state, request, handler).await
    }

    /// Waits for connections on their way back to the pool, and returns
    /// how many are still checked out (0 unless something leaked).
    pub async fn checked_out_after_settling(&self) -> u32 {
        self.state
            .db
            .wait_until_settled(Duration::from_secs(2))
            .await
    }

    /// Waits (up to `bound`) until the pool has reported a leak, and
    /// returns how many it has reported. A bound of
    /// [`shared::db::LEAK_SETTLE`] plus a margin outwaits a leak check
    /// started at the beginning of the wait.
    pub async fn wait_for_leaks(&self, bound: Duration) -> u64 {
        let start = std::time::Instant::now();
        loop {
            let leaks = self.state.db.metrics().snapshot().leaks;
            if leaks > 0 || start.elapsed() >= bound {
                return leaks;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The test's own pool on the same database.
    pub fn observer(&self) -> &sqlx::PgPool {
        &self.observer
    }

    /// Creates a user (through the test's own pool, so that the function's
    /// pool counts only the function's work) and a session token for them.
    pub async fn user(&self, email: &str, user_type: UserType) -> TestUser {
        let user = shared::db::queries::user::create(
            &self.observer,
            email,
            "$2b$10$abcdefghijklmnopqrstuuv8J5U9uNvGQH7X9lsOeRDYJJkW0Sxum",
        )
        .await
        .expect("create a user");
        let token = issue_token(&self.state.config.auth, user.id, user_type, Some(email))
            .expect("issue a token");
        TestUser { id: user.id, token }
    }
}

/// A user of a test, with a valid session token.
#[derive(Debug, Clone)]
pub struct TestUser {
    /// Their id.
    pub id: Uuid,
    /// Their bearer token.
    pub token: String,
}

/// A JWT with `claims`, signed HS256 with `secret`: for tokens our issuer
/// would never write (expired ones, foreign issuers, odd claims).
pub fn sign_token(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("an HS256 token")
}

/// Reads a response whose body streams, to its end.
pub async fn read_body<B>(response: Response<B>) -> TestResponse
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    use http_body_util::BodyExt;
    let (parts, body) = response.into_parts();
    // A stream that never ends must fail the test, not hang it.
    let bytes = tokio::time::timeout(std::time::Duration::from_secs(60), body.collect())
        .await
        .expect("the body ends within a minute")
        .expect("the body reads to its end")
        .to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    TestResponse {
        status: parts.status.as_u16(),
        headers: parts.headers,
        json: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

/// Reads a response.
pub fn read(response: Response<Body>) -> TestResponse {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = match response.into_body() {
        Body::Text(text) => text,
        Body::Binary(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        _ => String::new(),
    };
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    TestResponse {
        status,
        headers,
        json,
        text,
    }
}
