//! Concurrency models: how many invocations a function serves at once, and
//! how many connections that takes.
//!
//! - On Lambda Managed Instances (`AWS_LAMBDA_MAX_CONCURRENCY=4`) the real
//!   binary serves four invocations at once, on a pool of four, and the
//!   server never sees a fifth backend.
//! - On classic Lambda (no variable) it serves one at a time, on one
//!   connection.
//! - Under `cargo lambda watch --concurrency 3`, three processes of one
//!   connection each serve three requests at once.
//! - In-process, more callers than the pool holds wait for a connection
//!   rather than opening more.
//!
//! To see invocations overlap, the test holds `"Chat"` locked: every
//! `GET /api/history` then waits on the server, holding its connection, so
//! the server shows exactly the invocations in flight, for as long as the
//! test needs to count them, and timing plays no part.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use integration_tests::lambda_api::FakeLambda;
use integration_tests::sampler::BackendSampler;
use integration_tests::watch::Watch;
use integration_tests::{ApiRequest, Shape, TestApp, TestDb, TestUser, process};
use shared::http::identity::UserType;
use sqlx::{Postgres, Transaction};
use tokio::process::Child;

const HISTORY: &str = "chat-backend:history";

/// How long the test waits for the overlap it expects before it fails.
const BOUND: Duration = Duration::from_secs(30);

/// Holds `"Chat"` locked, so that every query on it waits; dropping it (or
/// [`Gate::open`]) lets them through.
struct Gate(Transaction<'static, Postgres>);

impl Gate {
    async fn close(db: &TestDb) -> Gate {
        let mut tx = db.observer().begin().await.expect("a transaction");
        sqlx::query(r#"LOCK TABLE "Chat" IN ACCESS EXCLUSIVE MODE"#)
            .execute(&mut *tx)
            .await
            .expect("lock \"Chat\"");
        Gate(tx)
    }

    async fn open(self) {
        self.0.rollback().await.expect("unlock \"Chat\"");
    }
}

/// Backends of `application_name` waiting at the gate: invocations in
/// flight, each holding its connection.
async fn waiting(db: &TestDb, application_name: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = $1 AND application_name = $2 AND wait_event_type = 'Lock'",
    )
    .bind(db.name())
    .bind(application_name)
    .fetch_one(db.observer())
    .await
    .expect("pg_stat_activity")
}

/// Waits (up to `bound`) until `expected` invocations wait at the gate,
/// then a little longer, and returns how many do then: a count that went
/// on rising past `expected` shows up.
async fn settled_waiting(db: &TestDb, expected: i64, bound: Duration) -> i64 {
    let started = Instant::now();
    while waiting(db, HISTORY).await < expected && started.elapsed() < bound {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    waiting(db, HISTORY).await
}

fn history_event(user: &TestUser) -> serde_json::Value {
    ApiRequest::get("/api/history")
        .bearer(&user.token)
        .event(Shape::HttpV2)
}

/// The real `history` binary behind a local Lambda Runtime API, with
/// `vars` added to Lambda's environment.
fn start_history(db: &TestDb, lambda: &FakeLambda, vars: &[(&str, &str)]) -> Child {
    process::spawn("history", &lambda.function_env_on("history", db, vars))
}

/// Sends `n` invocations at once, while `check` runs; every one must
/// answer 200.
async fn invoke_all_while(
    lambda: &FakeLambda,
    user: &TestUser,
    n: usize,
    check: impl Future<Output = ()>,
) {
    let invocations = join_all((0..n).map(|_| lambda.invoke(history_event(user), BOUND)));
    let (outcomes, ()) = tokio::join!(invocations, check);
    for outcome in outcomes {
        let response = outcome.json();
        assert_eq!(response["statusCode"], 200, "{response}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_max_concurrency_four_the_binary_serves_four_at_once_on_four_connections_and_never_more()
 {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "history", &[]);
    let ada = app.user("ada@example.com", UserType::Regular).await;
    let lambda = FakeLambda::start().await;
    let _child = start_history(&db, &lambda, &[("AWS_LAMBDA_MAX_CONCURRENCY", "4")]);
    let sampler = BackendSampler::start(&db, HISTORY);

    let gate = Gate::close(&db).await;
    invoke_all_while(&lambda, &ada, 8, async {
        assert_eq!(
            settled_waiting(&db, 4, BOUND).await,
            4,
            "invocations at once"
        );
        assert_eq!(db.backends(HISTORY).await, 4);
        assert_eq!(
            lambda.in_flight().await,
            4,
            "the other four wait their turn"
        );
        gate.open().await;
    })
    .await;

    let max_backends = sampler.stop().await;
    let max_in_flight = lambda.max_in_flight().await;
    println!(
        "AWS_LAMBDA_MAX_CONCURRENCY=4, 8 invocations: {max_in_flight} in flight at most, \
         {max_backends} backends at most"
    );
    assert_eq!(max_in_flight, 4);
    assert_eq!(max_backends, 4, "the pool is four, and never more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_max_concurrency_the_binary_serves_one_at_a_time_on_one_connection() {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "history", &[]);
    let ada = app.user("ada@example.com", UserType::Regular).await;
    let lambda = FakeLambda::start().await;
    let _child = start_history(&db, &lambda, &[]);
    let sampler = BackendSampler::start(&db, HISTORY);

    let gate = Gate::close(&db).await;
    invoke_all_while(&lambda, &ada, 3, async {
        assert_eq!(
            settled_waiting(&db, 1, BOUND).await,
            1,
            "invocations at once"
        );
        assert_eq!(lambda.in_flight().await, 1, "the other two wait their turn");
        gate.open().await;
    })
    .await;

    let max_backends = sampler.stop().await;
    let max_in_flight = lambda.max_in_flight().await;
    println!(
        "classic Lambda, 3 invocations: {max_in_flight} in flight at most, \
         {max_backends} backends at most"
    );
    assert_eq!(max_in_flight, 1);
    assert_eq!(max_backends, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_more_callers_than_the_pool_holds_wait_for_a_connection_and_open_no_more() {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "history", &[("DB_POOL_MAX", "4")]);
    let ada = app.user("ada@example.com", UserType::Regular).await;
    let sampler = BackendSampler::start(&db, HISTORY);
    let list = || {
        ApiRequest::get("/api/history")
            .bearer(&ada.token)
            .build(Shape::HttpV2)
    };

    let gate = Gate::close(&db).await;
    let calls = join_all((0..16).map(|_| app.call_unchecked(history::handle, list())));
    let (responses, ()) = tokio::join!(calls, async {
        assert_eq!(
            settled_waiting(&db, 4, BOUND).await,
            4,
            "callers holding a connection"
        );
        assert_eq!(db.backends(HISTORY).await, 4);
        gate.open().await;
    });

    let max_backends = sampler.stop().await;
    let metrics = app.db().metrics().snapshot();
    println!(
        "16 callers on a pool of 4: {} connections opened, {max_backends} backends at most",
        metrics.opened
    );
    assert!(responses.iter().all(|r| r.status == 200));
    assert_eq!(max_backends, 4);
    assert_eq!(metrics.opened, 4);
    assert_eq!(app.checked_out_after_settling().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_cargo_lambda_watch_with_concurrency_three_requests_overlap_on_one_connection_each() {
    // reqwest's TLS (unused on localhost) needs a crypto provider chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "history", &[]);
    let ada = app.user("ada@example.com", UserType::Regular).await;
    let watch = Watch::start(
        &db,
        &["--concurrency", "3"],
        &[],
        &[(reqwest::Method::GET, "/api/history")],
    )
    .await;
    let sampler = BackendSampler::start(&db, HISTORY);
    let http = reqwest::Client::new();

    let gate = Gate::close(&db).await;
    let requests = join_all((0..5).map(|_| {
        http.get(watch.url("/api/history"))
            .bearer_auth(&ada.token)
            .send()
    }));
    let (responses, ()) = tokio::join!(requests, async {
        // cargo lambda watch starts a process per extra request, through
        // cargo, which waits for the build directory when it is busy.
        let bound = Duration::from_secs(300);
        assert_eq!(settled_waiting(&db, 3, bound).await, 3, "requests at once");
        gate.open().await;
    });

    let max_backends = sampler.stop().await;
    println!("cargo lambda watch --concurrency 3, 5 requests: {max_backends} backends at most");
    for response in responses {
        assert_eq!(response.expect("an answer").status(), 200);
    }
    // Three processes, each classic Lambda's pool of one.
    assert_eq!(max_backends, 3);
    watch.stop().await;
    assert_eq!(
        db.wait_for_backends(HISTORY, 0, Duration::from_secs(10))
            .await,
        0
    );
}
