//! The connection contract of the design document, proven on a real server:
//! the pool never holds more backends than its maximum, nothing stays
//! checked out after any invocation on any path, idle connections go, an
//! unreachable database answers 503 within the connect timeout, closing is
//! complete and idempotent, and connections the server kills do not fail
//! the next invocation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use integration_tests::expect::error_body;
use integration_tests::sampler::BackendSampler;
use integration_tests::{ApiRequest, Shape, TestApp, TestDb, TestUser};
use lambda_http::{Body, Request};
use shared::AppState;
use shared::db::LEAK_SETTLE;
use shared::db::queries::chat;
use shared::http::identity::UserType;
use shared::http::{ApiResult, DbContext, response};
use uuid::Uuid;

const HISTORY: &str = "chat-backend:history";

async fn user_with_chats(app: &TestApp, n: usize) -> TestUser {
    let user = app.user("ada@example.com", UserType::Regular).await;
    for i in 0..n {
        chat::save(
            app.observer(),
            Uuid::new_v4(),
            user.id,
            &format!("chat {i}"),
            "private",
        )
        .await
        .expect("chat");
    }
    user
}

fn list(user: &TestUser) -> Request {
    ApiRequest::get("/api/history")
        .query("limit", "20")
        .bearer(&user.token)
        .build(Shape::HttpV2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_invocations_one_at_a_time_share_one_connection_and_leave_none_checked_out() {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "history", &[("DB_POOL_MAX", "3")]);
    let ada = user_with_chats(&app, 20).await;
    let sampler = BackendSampler::start(&db, HISTORY);

    for i in 0..500 {
        let response = app.call(history::handle, list(&ada)).await;
        assert_eq!(response.status, 200, "invocation {i}: {}", response.text);
        assert_eq!(response.json["chats"].as_array().map(Vec::len), Some(20));
    }

    let max_backends = sampler.stop().await;
    let metrics = app.db().metrics().snapshot();
    println!(
        "500 sequential invocations: {} connections opened, at most {max_backends} backends seen",
        metrics.opened
    );
    assert!(
        max_backends <= 3,
        "saw {max_backends} backends, pool max is 3"
    );
    // One invocation at a time needs one connection, reused throughout.
    assert_eq!(metrics.opened, 1);
    assert_eq!(metrics.leaks, 0);
    assert_eq!(metrics.invocations, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_invocations_fifty_at_a_time_never_exceed_the_pool_maximum() {
    let db = TestDb::migrated().await;
    let app = Arc::new(TestApp::new(&db, "history", &[("DB_POOL_MAX", "3")]));
    let ada = user_with_chats(&app, 20).await;
    let sampler = BackendSampler::start(&db, HISTORY);

    let statuses: Vec<u16> = futures_util::stream::iter(0..500)
        .map(|_| {
            let app = app.clone();
            let request = list(&ada);
            async move { app.call(history::handle, request).await.status }
        })
        .buffer_unordered(50)
        .collect()
        .await;

    let max_backends = sampler.stop().await;
    let metrics = app.db().metrics().snapshot();
    println!(
        "500 invocations, 50 in flight: {} connections opened, at most {max_backends} backends seen",
        metrics.opened
    );
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    assert!(
        max_backends <= 3,
        "saw {max_backends} backends, pool max is 3"
    );
    assert!(metrics.opened <= 3, "opened {}", metrics.opened);
    assert_eq!(app.checked_out_after_settling().await, 0);
    assert_eq!(app.db().metrics().snapshot().leaks, 0);
}

/// A handler that takes a connection, uses it, then panics holding it.
async fn panics_holding_a_connection(
    _: Request,
    state: AppState,
) -> ApiResult<http::Response<Body>> {
    let mut conn = state.db.pool().acquire().await.context("acquire")?;
    sqlx::query("SELECT 1")
        .execute(&mut *conn)
        .await
        .context("select")?;
    panic!("boom, with a connection checked out");
}

/// A handler that panics inside a transaction it has written in.
async fn panics_in_a_transaction(_: Request, state: AppState) -> ApiResult<http::Response<Body>> {
    let mut tx = state.db.pool().begin().await.context("begin")?;
    sqlx::query(r#"INSERT INTO "User" (email) VALUES ('written-then-panicked')"#)
        .execute(&mut *tx)
        .await
        .context("insert")?;
    panic!("boom, mid-transaction");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_panics_and_bad_input_leave_no_connection_checked_out() {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "history", &[("DB_POOL_MAX", "1")]);
    let ada = user_with_chats(&app, 3).await;
    let deleted = app.user("gone@example.com", UserType::Guest).await;
    sqlx::query(r#"DELETE FROM "User" WHERE id = $1"#)
        .bind(deleted.id)
        .execute(db.observer())
        .await
        .expect("delete user");

    let cases: Vec<(Request, u16)> = vec![
        // Bad input, refused before the database is touched.
        (
            ApiRequest::get("/api/history")
                .query("limit", "lots")
                .bearer(&ada.token)
                .build(Shape::RestV1),
            400,
        ),
        // Refused after the database was asked (the cursor is unknown).
        (
            ApiRequest::get("/api/history")
                .query("ending_before", &Uuid::new_v4().to_string())
                .bearer(&ada.token)
                .build(Shape::HttpV2),
            400,
        ),
        // A token of a user who no longer exists (the database says so).
        (
            ApiRequest::get("/api/history")
                .bearer(&deleted.token)
                .build(Shape::HttpV2),
            401,
        ),
        (
            ApiRequest::new("PUT", "/api/history")
                .bearer(&ada.token)
                .build(Shape::FunctionUrl),
            405,
        ),
    ];
    // `call` checks after each one that no connection stays checked out.
    for (request, status) in cases {
        let response = app.call(history::handle, request).await;
        assert_eq!(response.status, status, "{}", response.text);
    }

    let response = app.call(panics_holding_a_connection, list(&ada)).await;
    assert_eq!(response.status, 500);
    assert_eq!(response.json, error_body(""));

    let response = app.call(panics_in_a_transaction, list(&ada)).await;
    assert_eq!(response.status, 500);
    let written: i64 =
        sqlx::query_scalar(r#"SELECT count(*) FROM "User" WHERE email = 'written-then-panicked'"#)
            .fetch_one(db.observer())
            .await
            .expect("count");
    assert_eq!(written, 0, "the panicked transaction was rolled back");

    // The pool (of one) still serves: nothing was lost on any path.
    let response = app.call(history::handle, list(&ada)).await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(app.db().metrics().snapshot().leaks, 0);
    assert!(db.backends(HISTORY).await <= 1);
}

/// A handler stuck in a slow query.
async fn sleeps_in_the_database(_: Request, state: AppState) -> ApiResult<http::Response<Body>> {
    sqlx::query("SELECT pg_sleep(30)")
        .execute(state.db.pool())
        .await
        .context("sleep in the database")?;
    response::ok(&serde_json::json!({}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_past_its_deadline_gets_a_503_and_its_connection_comes_back() {
    let db = TestDb::migrated().await;
    let app = TestApp::new(
        &db,
        "history",
        &[
            ("DB_POOL_MAX", "1"),
            ("HANDLER_TIMEOUT_SECS", "1"),
            ("DB_STATEMENT_TIMEOUT_SECS", "2"),
        ],
    );
    let ada = user_with_chats(&app, 1).await;

    let started = Instant::now();
    let response = app.call_unchecked(sleeps_in_the_database, list(&ada)).await;
    let took = started.elapsed();
    assert_eq!(response.status, 503, "{}", response.text);
    assert_eq!(response.headers["retry-after"], "1");
    assert!(
        took < Duration::from_millis(1500),
        "answered after {took:?}"
    );

    // The query goes on on the server until statement_timeout ends it;
    // then the connection is drained and comes back to the pool.
    assert_eq!(
        app.state
            .db
            .wait_until_settled(Duration::from_secs(5))
            .await,
        0
    );
    let response = app.call(history::handle, list(&ada)).await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert!(db.backends(HISTORY).await <= 1);
    assert_eq!(app.db().metrics().snapshot().timed_out, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_kept_past_its_handler_is_reported_as_a_leak() {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "history", &[]);
    let ada = user_with_chats(&app, 1).await;

    // A handler that hands its connection to a task that outlives it, and
    // the leak check after it: the check gives returns LEAK_SETTLE to
    // settle before it counts, so the task keeps the connection well past
    // that.
    let leaky = |_: Request, state: AppState| async move {
        let conn = state.db.pool().acquire().await.context("acquire")?;
        tokio::spawn(async move {
            tokio::time::sleep(LEAK_SETTLE * 3).await;
            drop(conn);
        });
        response::ok(&serde_json::json!({}))
    };
    assert_eq!(app.call_unchecked(leaky, list(&ada)).await.status, 200);
    app.wait_for_leaks(LEAK_SETTLE + Duration::from_secs(1))
        .await;
    assert_eq!(app.db().metrics().snapshot().leaks, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_after_the_idle_timeout_and_the_server_sees_them_go() {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "history", &[("DB_IDLE_TIMEOUT_SECS", "1")]);
    let ada = user_with_chats(&app, 1).await;

    assert_eq!(app.call(history::handle, list(&ada)).await.status, 200);
    assert_eq!(db.backends(HISTORY).await, 1);
    // The reaper runs once per idle timeout: gone within two.
    assert_eq!(
        db.wait_for_backends(HISTORY, 0, Duration::from_secs(4))
            .await,
        0
    );
    assert_eq!(app.db().size(), 0);

    // And the next invocation simply opens a new one.
    assert_eq!(app.call(history::handle, list(&ada)).await.status, 200);
    assert_eq!(app.db().metrics().snapshot().opened, 2);
}

/// A port that accepts connections and never says a word: a database
/// behind a black hole.
async fn silent_port() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (port, task)
}

/// A port where nothing listens.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

fn app_at(port: u16, db: &TestDb) -> TestApp {
    let url = format!("postgres://app:s3cr3t@127.0.0.1:{port}/chat");
    let mut app = TestApp::new(db, "history", &[("DB_CONNECT_TIMEOUT_SECS", "1")]);
    let config = shared::config::Config::from_lookup("history", |name| match name {
        "POSTGRES_URL" => Some(url.clone()),
        "DB_CONNECT_TIMEOUT_SECS" => Some("1".to_owned()),
        "AUTH_SECRET" => Some(integration_tests::TEST_AUTH_SECRET.to_owned()),
        _ => None,
    })
    .expect("config");
    app.state = AppState::new(shared::db::Db::connect_lazy(&config.db), config);
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_answers_503_within_the_connect_timeout() {
    let db = TestDb::migrated().await;
    let (silent, _keep) = silent_port().await;
    for port in [silent, closed_port()] {
        let app = app_at(port, &db);
        let token = shared::http::identity::issue_token(
            &app.state.config.auth,
            Uuid::new_v4(),
            UserType::Regular,
            None,
        )
        .expect("token");
        let started = Instant::now();
        let response = app
            .call(
                history::handle,
                ApiRequest::get("/api/history")
                    .bearer(&token)
                    .build(Shape::HttpV2),
            )
            .await;
        let took = started.elapsed();
        assert_eq!(response.status, 503, "port {port}: {}", response.text);
        assert_eq!(response.json, error_body(""));
        assert!(!response.text.contains("s3cr3t"));
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
            "port {port}: answered after {took:?}, connect timeout is 1 s"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_pool_leaves_no_backend_is_idempotent_and_later_requests_get_a_clean_503() {
    let db = TestDb::migrated().await;
    let app = Arc::new(TestApp::new(&db, "history", &[("DB_POOL_MAX", "4")]));
    let ada = user_with_chats(&app, 2).await;
    // Open several connections at once.
    let statuses: Vec<u16> = futures_util::stream::iter(0..20)
        .map(|_| {
            let app = app.clone();
            let request = list(&ada);
            async move { app.call(history::handle, request).await.status }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(statuses.iter().all(|&s| s == 200));
    assert!(db.backends(HISTORY).await >= 1);

    let started = Instant::now();
    app.db().close_within(Duration::from_secs(5)).await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        db.wait_for_backends(HISTORY, 0, Duration::from_secs(2))
            .await,
        0
    );

    // A second close is harmless and immediate.
    let started = Instant::now();
    app.db().close_within(Duration::from_secs(5)).await;
    assert!(started.elapsed() < Duration::from_millis(100));

    let response = app.call(history::handle, list(&ada)).await;
    assert_eq!(response.status, 503, "{}", response.text);
    assert_eq!(response.json["code"], "");
    assert_eq!(db.backends(HISTORY).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_waits_at_most_its_bound_for_a_connection_that_never_comes_back() {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "history", &[]);
    let held = app.db().pool().acquire().await.expect("connection");
    let started = Instant::now();
    app.db().close_within(Duration::from_secs(1)).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(2),
        "{took:?}"
    );
    drop(held);
    // Returned to a closed pool, it is closed rather than kept.
    assert_eq!(
        db.wait_for_backends(HISTORY, 0, Duration::from_secs(2))
            .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_terminated_by_the_server_does_not_fail_the_next_invocation() {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "history", &[("DB_POOL_MAX", "1")]);
    let ada = user_with_chats(&app, 1).await;
    assert_eq!(app.call(history::handle, list(&ada)).await.status, 200);

    for round in 0..3 {
        // Kill it while it sits idle in the pool (not while it is on its
        // way back from the last invocation).
        assert_eq!(app.checked_out_after_settling().await, 0);
        let killed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = $1 AND application_name = $2) AS k",
        )
        .bind(db.name())
        .bind(HISTORY)
        .fetch_one(db.observer())
        .await
        .expect("terminate");
        assert_eq!(killed, 1, "round {round}");
        assert_eq!(
            db.wait_for_backends(HISTORY, 0, Duration::from_secs(2))
                .await,
            0
        );
        // Idle past DB_CHECK_AFTER_IDLE_MS: a pooled connection would be
        // pinged, the warm one has its first statement guarded instead.
        tokio::time::sleep(app.state.config.db.check_after_idle + Duration::from_millis(150)).await;

        let response = app.call(history::handle, list(&ada)).await;
        assert_eq!(response.status, 200, "round {round}: {}", response.text);
    }
    // Each dead connection was found once: by a ping, or by the guarded
    // first statement, which ran again on a fresh connection.
    let seen = app.db().metrics().snapshot();
    assert_eq!(seen.failed_checks + seen.retried, 3, "{seen:?}");
    assert_eq!(app.checked_out_after_settling().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_server_closed_for_idleness_does_not_fail_the_next_invocation() {
    let db = TestDb::migrated().await;
    db.execute(&format!(
        r#"ALTER DATABASE "{}" SET idle_session_timeout = '300ms'"#,
        db.name()
    ))
    .await;
    let app = TestApp::new(&db, "history", &[("DB_POOL_MAX", "1")]);
    let ada = user_with_chats(&app, 1).await;

    for round in 0..3 {
        let response = app.call(history::handle, list(&ada)).await;
        assert_eq!(response.status, 200, "round {round}: {}", response.text);
        // The server ends the idle session; the pool still holds it.
        assert_eq!(
            db.wait_for_backends(HISTORY, 0, Duration::from_secs(3))
                .await,
            0
        );
        assert_eq!(app.db().size(), 1);
    }
    // Found dead by a ping (idle a while) or by the guarded first
    // statement, which ran again on a fresh connection.
    let seen = app.db().metrics().snapshot();
    assert!(seen.failed_checks + seen.retried >= 2, "{seen:?}");
}
