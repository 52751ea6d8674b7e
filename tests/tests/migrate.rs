//! The migrate function, against a real server: what it applies and
//! reports, that it leaves no connection and no lock behind on any path,
//! that concurrent runs serialise, that a database built by the upstream
//! drizzle migrations is adopted without a row touched, that a failed index
//! build is repaired, that its timeouts bound every wait, and the ways it is
//! run: as a command, and as Lambda runs it (directly, and as a
//! CloudFormation custom resource).

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use chrono::{NaiveDate, NaiveDateTime};
use integration_tests::lambda_api::{FakeLambda, Outcome};
use integration_tests::{TestDb, process};
use migrate::{AppliedMigration, MIGRATOR, MigrateError, Report};
use serde_json::{Value, json};
use shared::config::MigrateConfig;
use shared::db::Db;
use shared::db::models::Chat;
use shared::db::queries::chat::{self, ChatPage, Cursor};
use shared::db::queries::message;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, Connection, PgConnection, SqlSafeStr};
use uuid::Uuid;

/// The `application_name` of the migration connection.
const MIGRATE_APP: &str = "chat-backend:migrate";

/// Our tables, sorted.
const OUR_TABLES: [&str; 7] = [
    "Chat",
    "Document",
    "Message_v2",
    "Stream",
    "Suggestion",
    "User",
    "Vote_v2",
];

/// Every index in `public` after our migrations, sorted: the primary keys of
/// 0001, the migrations table's, and one per index migration (0002-0007).
const OUR_INDEXES: [&str; 14] = [
    "Chat_pkey",
    "Chat_userId_createdAt_id_idx",
    "Document_id_createdAt_pk",
    "Message_v2_chatId_createdAt_idx",
    "Message_v2_pkey",
    "Stream_chatId_createdAt_idx",
    "Stream_id_pk",
    "Suggestion_documentId_documentCreatedAt_idx",
    "Suggestion_id_pk",
    "User_email_idx",
    "User_pkey",
    "Vote_v2_chatId_messageId_pk",
    "Vote_v2_messageId_idx",
    "_sqlx_migrations_pkey",
];

/// Upper bound on any one migration run in these tests.
const RUN_BOUND: Duration = Duration::from_secs(60);

/// Every migration of `MIGRATOR`, as a report lists them.
fn every_migration() -> Vec<AppliedMigration> {
    MIGRATOR
        .iter()
        .map(|m| AppliedMigration {
            version: m.version,
            description: m.description.to_string(),
        })
        .collect()
}

fn every_version() -> Vec<i64> {
    MIGRATOR.iter().map(|m| m.version).collect()
}

fn versions(applied: &[AppliedMigration]) -> Vec<i64> {
    applied.iter().map(|m| m.version).collect()
}

/// `migrate::migrate`, bounded.
async fn run(config: &MigrateConfig, migrator: &Migrator) -> Result<Report, MigrateError> {
    tokio::time::timeout(RUN_BOUND, migrate::migrate(config, migrator))
        .await
        .unwrap_or_else(|_| panic!("migrate did not finish within {RUN_BOUND:?}"))
}

/// A simple (transactional) migration.
fn migration(version: i64, description: &'static str, sql: &'static str) -> Migration {
    Migration::new(
        version,
        description.into(),
        MigrationType::Simple,
        sql.into_sql_str(),
        false,
    )
}

/// Our migrations followed by `extra`.
fn ours_and(extra: Vec<Migration>) -> Migrator {
    let mut all: Vec<Migration> = MIGRATOR.iter().cloned().collect();
    all.extend(extra);
    Migrator::with_migrations(all)
}

/// The tables in `public`, sorted.
async fn tables(db: &TestDb) -> Vec<String> {
    let mut names: Vec<String> =
        sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
            .fetch_all(db.observer())
            .await
            .expect("list tables");
    names.sort();
    names
}

/// Our tables plus the migrations table, sorted.
fn migrated_tables() -> Vec<String> {
    let mut names: Vec<String> = OUR_TABLES.iter().map(|t| (*t).to_owned()).collect();
    names.push("_sqlx_migrations".to_owned());
    names.sort();
    names
}

/// Every index in `public` and whether it is valid, sorted by name.
async fn indexes(db: &TestDb) -> Vec<(String, bool)> {
    let mut found: Vec<(String, bool)> = sqlx::query_as(
        r#"SELECT c.relname::text, i.indisvalid
           FROM pg_index i
           JOIN pg_class c ON c.oid = i.indexrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public'"#,
    )
    .fetch_all(db.observer())
    .await
    .expect("list indexes");
    found.sort();
    found
}

fn all_valid(names: &[&str]) -> Vec<(String, bool)> {
    names.iter().map(|n| ((*n).to_owned(), true)).collect()
}

/// An index's oid and validity, if it exists.
async fn index_state(db: &TestDb, name: &str) -> Option<(i64, bool)> {
    sqlx::query_as(
        r#"SELECT i.indexrelid::bigint, i.indisvalid
           FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
           WHERE c.relname = $1"#,
    )
    .bind(name)
    .fetch_optional(db.observer())
    .await
    .expect("read pg_index")
}

/// The versions `_sqlx_migrations` records as successfully applied, in
/// order, and how many rows it has in all.
async fn recorded(db: &TestDb) -> (Vec<i64>, i64) {
    let versions =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(db.observer())
            .await
            .expect("read _sqlx_migrations");
    let rows = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(db.observer())
        .await
        .expect("count _sqlx_migrations");
    (versions, rows)
}

/// Backends of the migration connection on `db`, polled for up to 2 s (the
/// server notices a closed socket asynchronously).
async fn migrate_backends_after_settling(db: &TestDb) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let n = db.backends(MIGRATE_APP).await;
        if n == 0 || Instant::now() >= deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Advisory locks held or awaited on `db`, by anyone.
async fn advisory_locks(db: &TestDb) -> i64 {
    sqlx::query_scalar(
        r#"SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
           WHERE l.locktype = 'advisory' AND d.datname = $1"#,
    )
    .bind(db.name())
    .fetch_one(db.observer())
    .await
    .expect("read pg_locks")
}

/// A session of its own on `db` (not the migration's, not the observer's).
async fn session(db: &TestDb, function: &'static str) -> PgConnection {
    tokio::time::timeout(
        Duration::from_secs(10),
        PgConnection::connect_with(&db.config(function).connect_options()),
    )
    .await
    .expect("connect within 10 s")
    .expect("connect")
}

/// A local port with nothing listening on it.
fn unused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a local port");
    listener.local_addr().expect("local address").port()
}

/// A migrate configuration for `url`, with a 1 s connect timeout.
fn migrate_config_for(url: &str) -> MigrateConfig {
    MigrateConfig::from_lookup(|name| match name {
        "POSTGRES_URL" => Some(url.to_owned()),
        "DB_CONNECT_TIMEOUT_SECS" => Some("1".to_owned()),
        _ => None,
    })
    .expect("a valid configuration")
}

/// The SQLSTATE of a migration error's database error.
fn sqlstate(error: &sqlx::Error) -> Option<String> {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned())
}

#[track_caller]
fn assert_took(elapsed: Duration, at_least: Duration, under: Duration) {
    assert!(
        elapsed >= at_least && elapsed < under,
        "took {elapsed:?}, expected between {at_least:?} and {under:?}"
    );
}

/// Runs the `migrate` command with exactly `env` (plus `PATH`): its exit
/// code, stdout, stderr and how long it took.
async fn run_command(env: &[(&str, &str)]) -> (Option<i32>, String, String, Duration) {
    let binary = process::binary("migrate");
    let mut command = tokio::process::Command::new(binary);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = Instant::now();
    let output = tokio::time::timeout(RUN_BOUND, command.output())
        .await
        .expect("the migrate command did not exit in time")
        .expect("run the migrate command");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        started.elapsed(),
    )
}

/// One request received by [`CloudFormation`].
#[derive(Debug)]
struct Put {
    method: Method,
    path_and_query: String,
    content_type: Option<Vec<u8>>,
    body: Value,
}

/// Stands in for the pre-signed S3 URLs CloudFormation waits on: records
/// every request it receives.
struct CloudFormation {
    addr: std::net::SocketAddr,
    received: Arc<Mutex<Vec<Put>>>,
    server: tokio::task::JoinHandle<()>,
}

impl CloudFormation {
    async fn start() -> CloudFormation {
        async fn record(
            State(received): State<Arc<Mutex<Vec<Put>>>>,
            method: Method,
            uri: Uri,
            headers: HeaderMap,
            body: Bytes,
        ) -> StatusCode {
            let put = Put {
                method,
                path_and_query: uri
                    .path_and_query()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default(),
                content_type: headers
                    .get(http::header::CONTENT_TYPE)
                    .map(|v| v.as_bytes().to_vec()),
                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            };
            received.lock().unwrap_or_else(|e| e.into_inner()).push(put);
            StatusCode::OK
        }
        let received = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().fallback(record).with_state(received.clone());
        let (addr, server) = integration_tests::runtime_api::serve(app).await;
        CloudFormation {
            addr,
            received,
            server,
        }
    }

    /// A pre-signed-looking URL for `request`'s answer.
    fn response_url(&self, request: &str) -> String {
        format!(
            "http://{}/cloudformation/{request}?X-Amz-Signature=0123abcd",
            self.addr
        )
    }

    /// The requests received since the last call.
    fn take(&self) -> Vec<Put> {
        std::mem::take(&mut *self.received.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for CloudFormation {
    fn drop(&mut self) {
        self.server.abort();
    }
}

const STACK_ID: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/chat-backend/0d1c";
const LOGICAL_ID: &str = "DatabaseMigrations";

/// A custom-resource request as CloudFormation sends it.
fn custom_resource_event(
    request_type: &str,
    request_id: &str,
    response_url: &str,
    physical_id: Option<&str>,
) -> Value {
    let mut event = json!({
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:migrate",
        "ResponseURL": response_url,
        "StackId": STACK_ID,
        "RequestId": request_id,
        "LogicalResourceId": LOGICAL_ID,
        "ResourceType": "Custom::DatabaseMigrations",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:migrate"
        }
    });
    if let Some(id) = physical_id {
        event["PhysicalResourceId"] = json!(id);
    }
    event
}

/// The `migrate` binary served by a local Lambda Runtime API.
struct MigrateLambda {
    fake: FakeLambda,
    child: tokio::process::Child,
}

impl MigrateLambda {
    /// Starts the binary with Lambda's environment plus `vars`.
    async fn start(vars: &[(&str, &str)]) -> MigrateLambda {
        let fake = FakeLambda::start().await;
        let mut env = fake.function_env("migrate");
        env.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let child = process::spawn("migrate", &env);
        MigrateLambda { fake, child }
    }

    /// One invocation, with a 40 s deadline (25 s of it for migrating).
    async fn invoke(&self, event: Value) -> Outcome {
        self.fake.invoke(event, Duration::from_secs(40)).await
    }

    /// Stops the process and returns what it wrote to stdout (its logs).
    async fn stop(mut self) -> String {
        let _ = self.child.start_kill();
        let output = tokio::time::timeout(Duration::from_secs(10), self.child.wait_with_output())
            .await
            .expect("the function process did not stop in time")
            .expect("read the function's output");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

/// The rows of a table (or any relation), as a count and a checksum.
async fn fingerprint(db: &TestDb, table: &str) -> (i64, Option<String>) {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT count(*), md5(string_agg(t::text, ',' ORDER BY t::text)) FROM {table} t"
    )))
    .fetch_one(db.observer())
    .await
    .unwrap_or_else(|e| panic!("fingerprint {table}: {e}"))
}

/// Every table an upstream drizzle database holds, deprecated ones and the
/// drizzle journal included, with the rows the fixture puts in it.
const UPSTREAM_TABLES: [(&str, i64); 10] = [
    (r#""User""#, 2),
    (r#""Chat""#, 3),
    (r#""Message""#, 1),
    (r#""Vote""#, 1),
    (r#""Message_v2""#, 3),
    (r#""Vote_v2""#, 1),
    (r#""Stream""#, 1),
    (r#""Document""#, 2),
    (r#""Suggestion""#, 1),
    ("drizzle.__drizzle_migrations", 9),
];

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, mo, d)
        .and_then(|date| date.and_hms_opt(h, mi, s))
        .expect("a valid timestamp")
}

// ---------------------------------------------------------------------------
// What a run applies and reports

#[tokio::test]
async fn an_empty_database_gets_every_migration_in_order_and_every_table_and_valid_index() {
    let db = TestDb::empty().await;
    assert_eq!(tables(&db).await, Vec::<String>::new());

    let report = run(&db.migrate_config(), &MIGRATOR)
        .await
        .expect("migrate an empty database");

    assert_eq!(report.applied, every_migration());
    assert_eq!(
        versions(&report.applied),
        vec![1, 2, 3, 4, 5, 6, 7],
        "the migrations directory changed: update this test"
    );
    assert_eq!(report.applied[0].description, "upstream schema");
    assert_eq!(report.already_applied, 0);
    assert_eq!(tables(&db).await, migrated_tables());
    assert_eq!(indexes(&db).await, all_valid(&OUR_INDEXES));
    assert_eq!(recorded(&db).await, (every_version(), 7));
}

#[tokio::test]
async fn a_second_run_applies_nothing_and_counts_every_migration_as_already_applied() {
    let db = TestDb::empty().await;
    let first = run(&db.migrate_config(), &MIGRATOR)
        .await
        .expect("first run");
    assert_eq!(first.applied, every_migration());

    let second = run(&db.migrate_config(), &MIGRATOR)
        .await
        .expect("second run");
    assert_eq!(second.applied, Vec::<AppliedMigration>::new());
    assert_eq!(second.already_applied, MIGRATOR.iter().count());
    assert_eq!(recorded(&db).await, (every_version(), 7));
    assert_eq!(indexes(&db).await, all_valid(&OUR_INDEXES));
}

// ---------------------------------------------------------------------------
// No connection, no lock left behind

#[tokio::test]
async fn after_a_successful_run_its_connection_is_closed_and_the_migration_lock_is_free() {
    let db = TestDb::empty().await;
    run(&db.migrate_config(), &MIGRATOR).await.expect("migrate");

    assert_eq!(migrate_backends_after_settling(&db).await, 0);
    assert_eq!(advisory_locks(&db).await, 0);

    let mut other = session(&db, "test-lock-probe").await;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(migrate::lock_id(db.name()))
        .fetch_one(&mut other)
        .await
        .expect("try the lock");
    assert!(locked, "another session could not take the migration lock");
    let unlocked: bool = sqlx::query_scalar("SELECT pg_advisory_unlock($1)")
        .bind(migrate::lock_id(db.name()))
        .fetch_one(&mut other)
        .await
        .expect("unlock");
    assert!(unlocked);
    other.close().await.expect("close the probe session");

    let started = Instant::now();
    let again = run(&db.migrate_config(), &MIGRATOR)
        .await
        .expect("a second run");
    assert_eq!(again.already_applied, 7);
    assert_took(started.elapsed(), Duration::ZERO, Duration::from_secs(5));
}

#[tokio::test]
async fn a_failing_migration_is_not_recorded_and_leaves_no_connection_or_lock_behind() {
    let db = TestDb::empty().await;
    let good = || migration(1, "good", "CREATE TABLE good (id int);");
    let broken = Migrator::with_migrations(vec![
        good(),
        migration(2, "broken", "SELECT * FROM no_such_table;"),
    ]);

    let error = run(&db.migrate_config(), &broken)
        .await
        .expect_err("the broken migration must fail the run");
    match &error {
        MigrateError::Migrate(sqlx::migrate::MigrateError::ExecuteMigration(source, 2)) => {
            assert_eq!(sqlstate(source).as_deref(), Some("42P01"), "{source}");
        }
        other => panic!("expected migration 2 to fail, got {other:?}"),
    }
    assert!(
        error
            .to_string()
            .starts_with("migration failed: while executing migration 2:"),
        "{error}"
    );
    assert_eq!(recorded(&db).await, (vec![1], 1));
    assert_eq!(tables(&db).await, vec!["_sqlx_migrations", "good"]);
    assert_eq!(migrate_backends_after_settling(&db).await, 0);
    assert_eq!(advisory_locks(&db).await, 0);

    let fixed = Migrator::with_migrations(vec![
        good(),
        migration(2, "fixed", "CREATE TABLE fixed (id int);"),
    ]);
    let report = run(&db.migrate_config(), &fixed)
        .await
        .expect("the fixed migration applies");
    assert_eq!(
        report.applied,
        vec![AppliedMigration {
            version: 2,
            description: "fixed".to_owned()
        }]
    );
    assert_eq!(report.already_applied, 1);
    assert_eq!(recorded(&db).await, (vec![1, 2], 2));
    assert_eq!(tables(&db).await, vec!["_sqlx_migrations", "fixed", "good"]);
    assert_eq!(migrate_backends_after_settling(&db).await, 0);
}

#[tokio::test]
async fn a_server_that_never_answers_fails_the_run_after_the_connect_timeout() {
    // Accepts connections (the kernel's backlog does) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a local port");
    let port = silent.local_addr().expect("local address").port();
    let config = migrate_config_for(&format!(
        "postgres://migrator:hunter2-in-process@127.0.0.1:{port}/chat"
    ));

    let started = Instant::now();
    let error = run(&config, &MIGRATOR).await.expect_err("nothing answers");
    assert_took(
        started.elapsed(),
        Duration::from_secs(1),
        Duration::from_secs(4),
    );
    assert!(
        matches!(error, MigrateError::ConnectTimeout(d) if d == Duration::from_secs(1)),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "could not connect to the database within 1s"
    );

    drop(silent);
    let refused = migrate_config_for(&format!(
        "postgres://migrator:hunter2-in-process@127.0.0.1:{}/chat",
        unused_port()
    ));
    let error = run(&refused, &MIGRATOR).await.expect_err("nothing listens");
    assert!(matches!(error, MigrateError::Connect(_)), "{error:?}");
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("hunter2-in-process"), "{shown}");
}

// ---------------------------------------------------------------------------
// Concurrent runs

#[tokio::test]
async fn two_runs_started_at_once_both_succeed_and_apply_each_migration_exactly_once() {
    let db = TestDb::empty().await;
    let (a, b) = (db.migrate_config(), db.migrate_config());
    let (first, second) = tokio::join!(run(&a, &MIGRATOR), run(&b, &MIGRATOR));
    let (first, second) = match (first, second) {
        (Ok(first), Ok(second)) => (first, second),
        (first, second) => panic!("both runs must succeed:\n{first:?}\n{second:?}"),
    };

    let mut union: Vec<i64> = versions(&first.applied);
    union.extend(versions(&second.applied));
    union.sort();
    assert_eq!(union, every_version(), "{first:?} / {second:?}");
    // Each run's report is consistent with what it found.
    assert_eq!(first.applied.len() + first.already_applied, 7);
    assert_eq!(second.applied.len() + second.already_applied, 7);

    assert_eq!(recorded(&db).await, (every_version(), 7));
    assert_eq!(indexes(&db).await, all_valid(&OUR_INDEXES));
    assert_eq!(migrate_backends_after_settling(&db).await, 0);
    assert_eq!(advisory_locks(&db).await, 0);
}

// ---------------------------------------------------------------------------
// An upstream database

#[tokio::test]
async fn a_database_built_by_upstream_drizzle_migrations_is_adopted_without_a_row_lost_or_changed()
{
    let db = TestDb::empty().await;
    let sql = std::fs::read_to_string(
        integration_tests::workspace_root().join("tests/fixtures/upstream_drizzle_database.sql"),
    )
    .expect("read the fixture");
    // The dump empties search_path for its session: a pool of its own.
    let loader = Db::connect_lazy(&db.config("fixture-loader"));
    let loaded = sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(loader.pool())
        .await;
    loader.close_within(Duration::from_secs(5)).await;
    loaded.expect("load the upstream fixture");

    let mut before = Vec::new();
    for (table, rows) in UPSTREAM_TABLES {
        let print = fingerprint(&db, table).await;
        assert_eq!(print.0, rows, "{table} as loaded");
        before.push(print);
    }

    let report = run(&db.migrate_config(), &MIGRATOR)
        .await
        .expect("migrate the upstream database");
    assert_eq!(report.applied, every_migration());
    assert_eq!(report.already_applied, 0);

    for ((table, _), before) in UPSTREAM_TABLES.iter().zip(before) {
        assert_eq!(fingerprint(&db, table).await, before, "{table}");
    }
    let mut expected_tables = migrated_tables();
    expected_tables.extend(["Message".to_owned(), "Vote".to_owned()]);
    expected_tables.sort();
    assert_eq!(tables(&db).await, expected_tables);
    let ours: Vec<(String, bool)> = indexes(&db)
        .await
        .into_iter()
        .filter(|(name, _)| name != "Message_pkey" && name != "Vote_chatId_messageId_pk")
        .collect();
    assert_eq!(ours, all_valid(&OUR_INDEXES));

    // Our queries read the upstream rows.
    let pool = db.observer();
    let ada = Uuid::parse_str("11111111-1111-4111-8111-111111111111").expect("uuid");
    let first = Uuid::parse_str("aaaaaaaa-0000-4000-8000-000000000001").expect("uuid");
    let second = Uuid::parse_str("aaaaaaaa-0000-4000-8000-000000000002").expect("uuid");
    let page = chat::page_by_user_id(pool, ada, 10, Cursor::Newest)
        .await
        .expect("page Ada's chats");
    assert_eq!(
        page,
        Some(ChatPage {
            chats: vec![
                Chat {
                    id: second,
                    created_at: at(2025, 1, 2, 10, 0, 0),
                    title: "Second chat".to_owned(),
                    user_id: ada,
                    visibility: "public".to_owned(),
                },
                Chat {
                    id: first,
                    created_at: at(2025, 1, 1, 10, 0, 0),
                    title: "First chat".to_owned(),
                    user_id: ada,
                    visibility: "private".to_owned(),
                },
            ],
            has_more: false,
        })
    );
    let messages = message::get_by_chat_id(pool, first)
        .await
        .expect("read the first chat's messages");
    let read: Vec<(Uuid, Uuid, String, Value, Value, NaiveDateTime)> = messages
        .into_iter()
        .map(|m| {
            (
                m.id,
                m.chat_id,
                m.role,
                m.parts.0,
                m.attachments.0,
                m.created_at,
            )
        })
        .collect();
    assert_eq!(
        read,
        vec![
            (
                Uuid::parse_str("bbbbbbbb-0000-4000-8000-000000000001").expect("uuid"),
                first,
                "user".to_owned(),
                json!([{"type": "text", "text": "Hello"}]),
                json!([]),
                at(2025, 1, 1, 10, 0, 1),
            ),
            (
                Uuid::parse_str("bbbbbbbb-0000-4000-8000-000000000002").expect("uuid"),
                first,
                "assistant".to_owned(),
                json!([{"type": "text", "text": "Hi! How can I help?"}]),
                json!([]),
                at(2025, 1, 1, 10, 0, 2),
            ),
        ]
    );
}

// ---------------------------------------------------------------------------
// A failed index build

#[tokio::test]
async fn an_invalid_index_left_by_a_failed_build_is_dropped_and_built_again() {
    let db = TestDb::migrated().await;
    let index = "Chat_userId_createdAt_id_idx";
    let version = MIGRATOR
        .iter()
        .find(|m| m.sql.as_str().contains(index))
        .map(|m| m.version)
        .expect("a migration builds the index");
    // What a cancelled CREATE INDEX CONCURRENTLY leaves: the index, invalid,
    // and its migration unrecorded.
    db.execute(&format!(
        r#"DROP INDEX "{index}";
           DELETE FROM _sqlx_migrations WHERE version = {version};
           CREATE INDEX "{index}" ON "Chat" ("userId", "createdAt" DESC, "id" DESC);
           UPDATE pg_index SET indisvalid = false WHERE indexrelid = '"{index}"'::regclass;"#
    ))
    .await;
    let (leftover, valid) = index_state(&db, index).await.expect("the leftover exists");
    assert!(!valid);

    let report = run(&db.migrate_config(), &MIGRATOR).await.expect("migrate");
    assert_eq!(
        report.applied,
        vec![AppliedMigration {
            version,
            description: "index chat user created".to_owned()
        }]
    );
    assert_eq!(report.already_applied, 6);
    let (rebuilt, valid) = index_state(&db, index).await.expect("the index exists");
    assert!(valid, "the index is still invalid");
    assert_ne!(rebuilt, leftover, "the leftover was not rebuilt");
    assert_eq!(indexes(&db).await, all_valid(&OUR_INDEXES));
    assert_eq!(recorded(&db).await, (every_version(), 7));
}

#[tokio::test]
async fn an_invalid_index_of_an_applied_migration_is_left_alone() {
    let db = TestDb::migrated().await;
    let index = "User_email_idx";
    db.execute(&format!(
        r#"UPDATE pg_index SET indisvalid = false WHERE indexrelid = '"{index}"'::regclass"#
    ))
    .await;
    let before = index_state(&db, index).await.expect("the index exists");

    let report = run(&db.migrate_config(), &MIGRATOR).await.expect("migrate");
    assert_eq!(report.applied, Vec::<AppliedMigration>::new());
    assert_eq!(report.already_applied, 7);
    assert_eq!(index_state(&db, index).await, Some(before));
}

// ---------------------------------------------------------------------------
// Timeouts

#[tokio::test]
async fn a_migration_waiting_for_a_table_lock_gives_up_after_the_lock_timeout() {
    let db = TestDb::migrated().await;
    let mut holder = session(&db, "test-lock-holder").await;
    let mut tx = holder.begin().await.expect("begin");
    sqlx::query(r#"LOCK TABLE "Chat" IN ACCESS EXCLUSIVE MODE"#)
        .execute(&mut *tx)
        .await
        .expect("lock Chat");

    let migrator = ours_and(vec![migration(
        8,
        "chat extra",
        r#"ALTER TABLE "Chat" ADD COLUMN extra int;"#,
    )]);
    let mut config = db.migrate_config();
    config.lock_timeout = Duration::from_secs(1);
    let started = Instant::now();
    let error = run(&config, &migrator)
        .await
        .expect_err("the lock is never granted");
    assert_took(
        started.elapsed(),
        Duration::from_secs(1),
        Duration::from_secs(5),
    );
    match &error {
        MigrateError::Migrate(sqlx::migrate::MigrateError::ExecuteMigration(source, 8)) => {
            // lock_not_available
            assert_eq!(sqlstate(source).as_deref(), Some("55P03"), "{source}");
        }
        other => panic!("expected migration 8 to time out, got {other:?}"),
    }
    assert_eq!(migrate_backends_after_settling(&db).await, 0);
    tx.rollback().await.expect("release Chat");
    holder.close().await.expect("close the holder");

    assert_eq!(recorded(&db).await, (every_version(), 7));
    let extra: bool = sqlx::query_scalar(
        r#"SELECT EXISTS (SELECT 1 FROM information_schema.columns
                          WHERE table_name = 'Chat' AND column_name = 'extra')"#,
    )
    .fetch_one(db.observer())
    .await
    .expect("read the columns");
    assert!(!extra);
    assert_eq!(advisory_locks(&db).await, 0);
}

#[tokio::test]
async fn waiting_for_another_runs_lock_gives_up_after_the_statement_timeout() {
    let db = TestDb::migrated().await;
    let lock_id = migrate::lock_id(db.name());
    let mut other_run = session(&db, "test-other-run").await;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(lock_id)
        .fetch_one(&mut other_run)
        .await
        .expect("take the migration lock");
    assert!(locked);

    let mut config = db.migrate_config();
    config.statement_timeout = Duration::from_secs(1);
    let started = Instant::now();
    let error = run(&config, &MIGRATOR)
        .await
        .expect_err("the migration lock is never granted");
    assert_took(
        started.elapsed(),
        Duration::from_secs(1),
        Duration::from_secs(5),
    );
    match &error {
        MigrateError::LockTimeout(bound) => assert_eq!(*bound, Duration::from_secs(1)),
        other => panic!("expected the lock wait to time out, got {other:?}"),
    }
    assert_eq!(migrate_backends_after_settling(&db).await, 0);

    other_run.close().await.expect("release the lock");
    let report = run(&db.migrate_config(), &MIGRATOR)
        .await
        .expect("migrate once the lock is free");
    assert_eq!(report.already_applied, 7);
}

// ---------------------------------------------------------------------------
// The command

#[tokio::test]
async fn the_command_migrates_the_database_and_prints_the_report_as_json() {
    let db = TestDb::empty().await;
    let url = db.url();
    let (code, stdout, stderr, _) = run_command(&[("POSTGRES_URL", url.as_str())]).await;
    assert_eq!(code, Some(0), "stdout: {stdout}\nstderr: {stderr}");
    let report: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("stdout is not the JSON report ({e}): {stdout:?}"));
    let expected: Vec<Value> = every_migration()
        .iter()
        .map(|m| json!({"version": m.version, "description": m.description}))
        .collect();
    assert_eq!(report["applied"], Value::Array(expected));
    assert_eq!(report["alreadyApplied"], json!(0));
    assert!(report["elapsedMs"].is_u64(), "{report}");
    assert_eq!(tables(&db).await, migrated_tables());
    assert_eq!(migrate_backends_after_settling(&db).await, 0);
}

#[tokio::test]
async fn the_command_fails_quickly_without_the_password_when_the_database_is_unreachable() {
    let url = format!(
        "postgres://migrator:hunter2-command@127.0.0.1:{}/chat",
        unused_port()
    );
    let (code, stdout, stderr, took) = run_command(&[
        ("POSTGRES_URL", url.as_str()),
        ("DB_CONNECT_TIMEOUT_SECS", "2"),
    ])
    .await;
    assert_eq!(code, Some(1), "stderr: {stderr}");
    assert_took(took, Duration::ZERO, Duration::from_secs(5));
    assert!(
        last_line(&stderr).starts_with("migration failed: could not connect to the database"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2-command"), "{stderr}");
    assert!(!stdout.contains("hunter2-command"), "{stdout}");
}

#[tokio::test]
async fn the_command_without_postgres_url_fails_naming_it() {
    let (code, _, stderr, _) = run_command(&[]).await;
    assert_eq!(code, Some(1), "stderr: {stderr}");
    assert!(
        last_line(&stderr).starts_with("migration failed: POSTGRES_URL is not set"),
        "{stderr}"
    );
}

/// The last line of a command's output (logs come before the outcome).
fn last_line(output: &str) -> &str {
    output.trim_end().lines().last().unwrap_or_default()
}

#[tokio::test]
async fn the_lock_id_is_the_one_sqlx_s_migrator_takes() {
    use sqlx::migrate::Migrate;
    let db = TestDb::migrated().await;
    let mut holder = session(&db, "test-lock-holder").await;
    // sqlx's own locking path, as Migrator::run takes it.
    holder.lock().await.expect("take sqlx's migration lock");
    let mut other = session(&db, "test-lock-probe").await;
    let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(migrate::lock_id(db.name()))
        .fetch_one(&mut other)
        .await
        .expect("probe the lock");
    assert!(!free, "our id must name the lock sqlx holds");
    holder.unlock().await.expect("release");
    let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(migrate::lock_id(db.name()))
        .fetch_one(&mut other)
        .await
        .expect("probe the lock");
    assert!(free);
}

// ---------------------------------------------------------------------------
// As Lambda runs it

#[tokio::test]
async fn invoked_directly_as_a_lambda_function_it_migrates_and_answers_the_report() {
    let db = TestDb::empty().await;
    let url = db.url();
    let function = MigrateLambda::start(&[("POSTGRES_URL", url.as_str())]).await;

    let report = function.invoke(json!({})).await.json();
    let expected: Vec<Value> = every_migration()
        .iter()
        .map(|m| json!({"version": m.version, "description": m.description}))
        .collect();
    assert_eq!(report["applied"], Value::Array(expected));
    assert_eq!(report["alreadyApplied"], json!(0));
    assert_eq!(tables(&db).await, migrated_tables());
    assert_eq!(migrate_backends_after_settling(&db).await, 0);

    let again = function.invoke(json!({})).await.json();
    assert_eq!(again["applied"], json!([]));
    assert_eq!(again["alreadyApplied"], json!(7));

    let logs = function.stop().await;
    assert_eq!(
        logs.matches("Migration database connection closed").count(),
        2,
        "{logs}"
    );
}

#[tokio::test]
async fn as_a_custom_resource_each_request_is_answered_once_and_only_create_and_update_migrate() {
    let db = TestDb::empty().await;
    let cloudformation = CloudFormation::start().await;
    let url = db.url();
    let function = MigrateLambda::start(&[("POSTGRES_URL", url.as_str())]).await;
    let data =
        |applied: &str, already: &str| json!({"Applied": applied, "AlreadyApplied": already});
    let answer = |status: &str, request_id: &str, physical_id: &str, data: Value| {
        json!({
            "Status": status,
            "PhysicalResourceId": physical_id,
            "StackId": STACK_ID,
            "RequestId": request_id,
            "LogicalResourceId": LOGICAL_ID,
            "Data": data,
        })
    };
    let physical = migrate::custom_resource::PHYSICAL_RESOURCE_ID;
    assert_eq!(physical, "chat-backend-database-migrations");

    // (request, physical id sent, expected answer, tables afterwards)
    let steps = [
        (
            "Delete",
            "req-delete-before-create",
            Some("an-earlier-id"),
            answer(
                "SUCCESS",
                "req-delete-before-create",
                "an-earlier-id",
                json!({}),
            ),
            Vec::<String>::new(),
        ),
        (
            "Create",
            "req-create",
            None,
            answer("SUCCESS", "req-create", physical, data("7", "0")),
            migrated_tables(),
        ),
        (
            "Update",
            "req-update",
            Some(physical),
            answer("SUCCESS", "req-update", physical, data("0", "7")),
            migrated_tables(),
        ),
        (
            "Delete",
            "req-delete",
            Some(physical),
            answer("SUCCESS", "req-delete", physical, json!({})),
            migrated_tables(),
        ),
    ];
    for (request_type, request_id, physical_id, expected, tables_after) in steps {
        let response_url = cloudformation.response_url(request_id);
        let event = custom_resource_event(request_type, request_id, &response_url, physical_id);
        let outcome = function.invoke(event).await.json();

        let puts = cloudformation.take();
        assert_eq!(puts.len(), 1, "{request_type}: {puts:?}");
        let put = &puts[0];
        assert_eq!(put.method, Method::PUT, "{request_type}");
        assert_eq!(
            put.path_and_query,
            format!("/cloudformation/{request_id}?X-Amz-Signature=0123abcd")
        );
        assert_eq!(
            put.content_type.as_deref(),
            Some(&b""[..]),
            "{request_type}: the pre-signed URL wants an empty Content-Type"
        );
        assert_eq!(put.body, expected, "{request_type}");
        assert_eq!(outcome, expected, "{request_type}: the invocation's answer");
        assert_eq!(tables(&db).await, tables_after, "{request_type}");
        assert_eq!(migrate_backends_after_settling(&db).await, 0);
    }
    drop(function.stop().await);
}

#[tokio::test]
async fn a_custom_resource_create_whose_migration_fails_is_answered_failed_without_the_password() {
    let cloudformation = CloudFormation::start().await;
    let url = format!(
        "postgres://migrator:hunter2-lambda@127.0.0.1:{}/chat",
        unused_port()
    );
    let function = MigrateLambda::start(&[
        ("POSTGRES_URL", url.as_str()),
        ("DB_CONNECT_TIMEOUT_SECS", "1"),
    ])
    .await;

    let response_url = cloudformation.response_url("req-create");
    let event = custom_resource_event("Create", "req-create", &response_url, None);
    let outcome = function.invoke(event).await.json();

    let puts = cloudformation.take();
    assert_eq!(puts.len(), 1, "{puts:?}");
    let body = &puts[0].body;
    assert_eq!(body["Status"], "FAILED");
    assert_eq!(body["StackId"], STACK_ID);
    assert_eq!(body["RequestId"], "req-create");
    assert_eq!(body["LogicalResourceId"], LOGICAL_ID);
    assert_eq!(
        body["PhysicalResourceId"],
        "chat-backend-database-migrations"
    );
    assert_eq!(body["Data"], json!({}));
    let reason = body["Reason"].as_str().expect("a Reason");
    assert!(
        reason.starts_with("could not connect to the database"),
        "{reason}"
    );
    assert!(!reason.contains("hunter2-lambda"), "{reason}");
    assert_eq!(&outcome, body, "the invocation answers what it sent");

    let logs = function.stop().await;
    assert!(!logs.contains("hunter2-lambda"), "{logs}");
}

#[tokio::test]
async fn a_misconfigured_function_still_answers_a_custom_resource_create_failed_naming_postgres_url()
 {
    let cloudformation = CloudFormation::start().await;
    let function = MigrateLambda::start(&[]).await;

    let response_url = cloudformation.response_url("req-create");
    let event = custom_resource_event("Create", "req-create", &response_url, None);
    let outcome = function.invoke(event).await.json();

    let puts = cloudformation.take();
    assert_eq!(puts.len(), 1, "{puts:?}");
    let body = &puts[0].body;
    assert_eq!(body["Status"], "FAILED");
    assert_eq!(body["RequestId"], "req-create");
    assert_eq!(
        body["PhysicalResourceId"],
        "chat-backend-database-migrations"
    );
    let reason = body["Reason"].as_str().expect("a Reason");
    assert!(reason.starts_with("POSTGRES_URL is not set"), "{reason}");
    assert_eq!(&outcome, body);
    drop(function.stop().await);
}

#[tokio::test]
async fn a_malformed_custom_resource_request_is_still_answered_failed_and_the_invocation_fails() {
    let cloudformation = CloudFormation::start().await;
    let db = TestDb::empty().await;
    let url = db.url();
    let function = MigrateLambda::start(&[("POSTGRES_URL", url.as_str())]).await;

    let response_url = cloudformation.response_url("req-malformed");
    let mut event = custom_resource_event("Create", "req-malformed", &response_url, None);
    event
        .as_object_mut()
        .expect("an object")
        .remove("RequestType");
    let outcome = function.invoke(event).await;

    let puts = cloudformation.take();
    assert_eq!(puts.len(), 1, "{puts:?}");
    let body = &puts[0].body;
    assert_eq!(body["Status"], "FAILED");
    assert_eq!(body["StackId"], STACK_ID);
    assert_eq!(body["RequestId"], "req-malformed");
    assert_eq!(body["LogicalResourceId"], LOGICAL_ID);
    assert_eq!(
        body["PhysicalResourceId"],
        "chat-backend-database-migrations"
    );
    let reason = body["Reason"].as_str().expect("a Reason");
    assert!(
        reason.starts_with("malformed custom resource request:") && reason.contains("RequestType"),
        "{reason}"
    );
    match outcome {
        Outcome::Error(error) => {
            assert_eq!(error["errorType"], "MigrateConfigError", "{error}");
            let message = error["errorMessage"].as_str().unwrap_or_default();
            assert!(
                message.starts_with("malformed custom resource request:"),
                "{error}"
            );
        }
        Outcome::Response(body) => panic!("expected the invocation to fail, got {body:?}"),
    }
    assert_eq!(tables(&db).await, Vec::<String>::new(), "nothing migrated");
    drop(function.stop().await);
}
