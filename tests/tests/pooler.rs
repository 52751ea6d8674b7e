//! The functions behind a transaction-mode pooler (PgBouncer here; RDS
//! Proxy by the same settings): why sqlx's defaults break there, and that
//! `DB_POOLER=transaction` works, leaves nothing on the server's sessions
//! and keeps to the pooler's connections. (`cargo xtask test` also runs the
//! API's whole test suite through PgBouncer.)

use std::time::Duration;

use devdb::PgBouncer;
use integration_tests::database::server_upstream;
use integration_tests::{ApiRequest, Shape, TEST_AUTH_SECRET, TestApp, TestDb};
use shared::db::queries::chat;
use shared::http::identity::UserType;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use uuid::Uuid;

/// PgBouncer with one server connection per database, so that every
/// client of a database shares one server session and whatever a client
/// leaves on it is seen by the next.
fn one_server_connection() -> PgBouncer {
    PgBouncer::start(&server_upstream(), 1).expect("PgBouncer starts (apt-get install pgbouncer)")
}

fn through(bouncer: &PgBouncer, db: &TestDb) -> PgConnectOptions {
    bouncer
        .url(db.name())
        .parse::<PgConnectOptions>()
        .expect("the pooler URL parses")
        // A startup parameter PgBouncer refuses; not what is tested here.
        .extra_float_digits(None)
}

/// How many prepared statements the one server session behind `bouncer`
/// holds, asked through the pooler in a simple query (which prepares
/// nothing itself).
async fn statements_on_the_server(bouncer: &PgBouncer, db: &TestDb) -> i64 {
    let mut conn = PgConnection::connect_with(&through(bouncer, db))
        .await
        .expect("connect through PgBouncer");
    let rows = sqlx::raw_sql("SELECT count(*)::text FROM pg_prepared_statements")
        .fetch_all(&mut conn)
        .await
        .expect("pg_prepared_statements");
    conn.close().await.expect("close");
    use sqlx::Row;
    rows[0]
        .get::<String, _>(0)
        .parse()
        .expect("a count in text")
}

#[tokio::test]
async fn sqlx_named_statements_collide_behind_a_transaction_pooler() {
    let db = TestDb::migrated().await;
    let bouncer = one_server_connection();
    // Two clients, each with sqlx's defaults (named, cached statements),
    // on the one server session: the second prepares the same name again.
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_lazy_with(through(&bouncer, &db));
    let mut first = pool.acquire().await.expect("first client");
    let mut second = pool.acquire().await.expect("second client");
    sqlx::query("SELECT 1")
        .execute(&mut *first)
        .await
        .expect("the first client's statement");
    let error = sqlx::query("SELECT 2")
        .execute(&mut *second)
        .await
        .expect_err("the second client's statement reuses a name the session holds");
    assert!(
        error.to_string().contains("already exists"),
        "unexpected error: {error}"
    );
    drop((first, second));
    pool.close().await;
}

#[tokio::test]
async fn a_statement_cache_of_size_zero_still_leaves_statements_on_the_server() {
    // What the issue tracker suggests for poolers: turn sqlx's cache off.
    // Its statements are still prepared under names, and never closed.
    let db = TestDb::migrated().await;
    let options = db.config("pooler-probe").connect_options().clone();
    let mut conn = PgConnection::connect_with(&options.statement_cache_capacity(0))
        .await
        .expect("connect");
    for n in 0..5 {
        sqlx::query("SELECT $1::int")
            .bind(n)
            .execute(&mut conn)
            .await
            .expect("a statement");
    }
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_prepared_statements")
        .persistent(false)
        .fetch_one(&mut conn)
        .await
        .expect("pg_prepared_statements");
    conn.close().await.expect("close");
    assert!(
        left >= 1,
        "with no cache, sqlx left {left} statements on the server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_transaction_mode_the_api_works_and_leaves_no_statement_on_the_server() {
    let db = TestDb::migrated().await;
    let bouncer = one_server_connection();
    let config = db.config_through_pooler(
        "history",
        &bouncer.url("postgres"),
        &[("AUTH_SECRET", TEST_AUTH_SECRET), ("DB_POOL_MAX", "4")],
    );
    let app = TestApp::with_config(&db, config);
    let ada = app.user("ada@example.com", UserType::Regular).await;
    for i in 0..3 {
        chat::save(
            app.observer(),
            Uuid::new_v4(),
            ada.id,
            &format!("Ada {i}"),
            "private",
        )
        .await
        .expect("chat");
    }
    // Four client connections, one server connection, 200 requests (reads
    // and deletes of nothing), eight at a time.
    let mut answered = 0;
    for _ in 0..25 {
        let batch = (0..8).map(|i| {
            let request = if i % 4 == 3 {
                ApiRequest::delete("/api/history")
            } else {
                ApiRequest::get("/api/history").query("limit", "10")
            }
            .bearer(&ada.token)
            .build(Shape::RestV1);
            app.call_unchecked(history::handle, request)
        });
        for response in futures_util::future::join_all(batch).await {
            assert_eq!(response.status, 200, "{}", response.text);
            answered += 1;
        }
        // Deleting history deletes the chats: put one back.
        chat::save(app.observer(), Uuid::new_v4(), ada.id, "again", "private")
            .await
            .expect("chat");
    }
    assert_eq!(answered, 200);
    assert_eq!(app.checked_out_after_settling().await, 0);
    assert_eq!(statements_on_the_server(&bouncer, &db).await, 0);
    // No client session was left holding a transaction open either.
    let open: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND state LIKE 'idle in transaction%'",
    )
    .fetch_one(db.observer())
    .await
    .expect("pg_stat_activity");
    assert_eq!(open, 0);
    app.db().close_within(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_failed_handler_behind_the_pooler_writes_nothing() {
    // In transaction mode an invocation's work is one transaction: a vote
    // on a message of a chat that is not the caller's is refused, and the
    // refused request's earlier statements (if any) are rolled back.
    let db = TestDb::migrated().await;
    let bouncer = one_server_connection();
    let config = db.config_through_pooler(
        "vote",
        &bouncer.url("postgres"),
        &[("AUTH_SECRET", TEST_AUTH_SECRET)],
    );
    let app = TestApp::with_config(&db, config);
    let ada = app.user("ada@example.com", UserType::Regular).await;
    let babbage = app.user("babbage@example.com", UserType::Regular).await;
    let chat_id = Uuid::new_v4();
    chat::save(app.observer(), chat_id, ada.id, "Ada's", "private")
        .await
        .expect("chat");
    let request = ApiRequest::new("PATCH", "/api/vote")
        .bearer(&babbage.token)
        .json(&serde_json::json!({
            "chatId": chat_id,
            "messageId": Uuid::new_v4(),
            "type": "up",
        }))
        .build(Shape::HttpV2);
    let response = app.call(vote::handle, request).await;
    assert_eq!(response.status, 403, "{}", response.text);
    let votes: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "Vote_v2""#)
        .fetch_one(db.observer())
        .await
        .expect("votes");
    assert_eq!(votes, 0);
    assert_eq!(statements_on_the_server(&bouncer, &db).await, 0);
}
