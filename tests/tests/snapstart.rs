//! SnapStart: no database connection is captured in a snapshot, and the
//! restored function starts clean.
//!
//! The real `history` binary is started as Lambda starts a SnapStart
//! function (`AWS_LAMBDA_INITIALIZATION_TYPE=snap-start`). Its init ends
//! with the runtime's `before_snapshot` hooks and a call to
//! `/restore/next`, which the local Runtime API holds, as Lambda holds it
//! while it takes the snapshot: the server is checked at that moment. Then
//! the process is restored and must serve on a connection opened after the
//! restore. The functions' pool connects on first use, so their own init
//! opens nothing; what the pool's guard does with a connection that is open
//! at that moment is proven on a pool the test fills itself.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use integration_tests::lambda_api::FakeLambda;
use integration_tests::{ApiRequest, Shape, TestApp, TestDb, process};
use lambda_http::SnapStartResource;
use shared::http::identity::UserType;
use shared::runtime::PoolSnapshotGuard;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

const HISTORY: &str = "chat-backend:history";

/// The guard's line in the logs: proof that the hook ran.
const GUARD_RAN: &str = "closed idle connections before the snapshot";

/// A running process's output, collected as it comes (the process is not
/// stopped to read it, since the test checks it mid-init).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<String>>);

impl Logs {
    fn collect(&self, stream: Option<impl AsyncRead + Unpin + Send + 'static>) {
        let Some(stream) = stream else { return };
        let logs = self.0.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut logs = logs.lock().unwrap_or_else(|e| e.into_inner());
                logs.push_str(&line);
                logs.push('\n');
            }
        });
    }

    /// Waits up to two seconds for a line containing `text` (lines reach
    /// the pipe a moment after the process writes them).
    async fn wait_for(&self, text: &str) -> bool {
        for _ in 0..100 {
            if self.text().contains(text) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    fn text(&self) -> String {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The server's clock, to date backends against.
async fn server_now(db: &TestDb) -> chrono::NaiveDateTime {
    sqlx::query_scalar("SELECT clock_timestamp()::timestamp")
        .fetch_one(db.observer())
        .await
        .expect("the server's clock")
}

/// When each backend of `application_name` on `db` started.
async fn backend_starts(db: &TestDb, application_name: &str) -> Vec<chrono::NaiveDateTime> {
    sqlx::query_scalar(
        "SELECT backend_start::timestamp FROM pg_stat_activity \
         WHERE datname = $1 AND application_name = $2",
    )
    .bind(db.name())
    .bind(application_name)
    .fetch_all(db.observer())
    .await
    .expect("pg_stat_activity")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapstart_function_holds_no_connection_at_the_snapshot_and_serves_after_restore_on_a_fresh_one()
 {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "history", &[]);
    let ada = app.user("ada@example.com", UserType::Regular).await;
    let lambda = FakeLambda::start().await;
    let env = lambda.function_env_on(
        "history",
        &db,
        &[("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")],
    );
    let mut child = process::spawn("history", &env);
    let logs = Logs::default();
    logs.collect(child.stdout.take());
    logs.collect(child.stderr.take());

    // Init is over: the process waits to be restored.
    assert!(
        lambda.snapshot_requested(Duration::from_secs(30)).await,
        "the function never asked for /restore/next: {}",
        logs.text()
    );
    assert!(
        logs.wait_for(GUARD_RAN).await,
        "the pool's SnapStart hook did not run before the snapshot: {}",
        logs.text()
    );
    assert_eq!(
        db.backends(HISTORY).await,
        0,
        "a connection would be frozen into the snapshot"
    );
    assert!(
        lambda
            .first_poll(Duration::from_millis(200))
            .await
            .is_none(),
        "the function asked for work before it was restored"
    );

    let restored_at = server_now(&db).await;
    lambda.restore();
    let event = ApiRequest::get("/api/history")
        .bearer(&ada.token)
        .event(Shape::HttpV2);
    let response = lambda.invoke(event, Duration::from_secs(20)).await.json();
    assert_eq!(response["statusCode"], 200, "{response}: {}", logs.text());
    let body: serde_json::Value =
        serde_json::from_str(response["body"].as_str().expect("a body")).expect("JSON body");
    assert_eq!(body, serde_json::json!({"chats": [], "hasMore": false}));

    let starts = backend_starts(&db, HISTORY).await;
    assert_eq!(starts.len(), 1, "one invocation, one connection");
    assert!(
        starts[0] > restored_at,
        "the connection ({}) predates the restore ({restored_at})",
        starts[0]
    );
    assert!(lambda.init_errors().await.is_empty());
    assert!(lambda.restore_errors().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_guard_closes_an_open_connection_and_the_pool_reconnects_after_restore() {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "history", &[("DB_POOL_MAX", "2")]);
    let ada = app.user("ada@example.com", UserType::Regular).await;
    let list = || {
        ApiRequest::get("/api/history")
            .bearer(&ada.token)
            .build(Shape::HttpV2)
    };

    // An invocation leaves its connection idle in the pool, as init work
    // done with the pool would.
    assert_eq!(app.call(history::handle, list()).await.status, 200);
    assert_eq!(db.backends(HISTORY).await, 1);

    let guard = PoolSnapshotGuard(app.db().clone());
    guard.before_snapshot().await.expect("before_snapshot");
    assert_eq!(app.db().size(), 0, "the pool still holds a connection");
    assert_eq!(
        db.wait_for_backends(HISTORY, 0, Duration::from_secs(2))
            .await,
        0,
        "the server still has the connection"
    );

    guard.after_restore().await.expect("after_restore");
    assert_eq!(app.call(history::handle, list()).await.status, 200);
    assert_eq!(db.backends(HISTORY).await, 1);
    assert_eq!(
        app.db().metrics().snapshot().opened,
        2,
        "a fresh connection"
    );
}
