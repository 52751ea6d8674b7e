//! What serverless and networks do to database connections, done on
//! purpose: the database restarts, fills up, goes silent, kills sessions;
//! the function process is frozen and thawed, or told to stop mid-stream; a
//! query runs past its timeout; the model provider hangs mid-reply.
//!
//! Each test asserts that the system recovers by itself (the next request
//! works with no restart of anything of ours), that nothing is lost or
//! written twice, that nothing stays checked out of the pool and that the
//! server never sees more backends than configured. Faults that would
//! disturb the shared test server (restarts, a full `max_connections`,
//! network faults) run on a [`PrivateServer`] of the test's own. Each test
//! leaves a record for `cargo xtask reliability` ([`Scenario`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chat::model::offline::OfflineModel;
use integration_tests::captured::Captured;
use integration_tests::expect;
use integration_tests::fault_kit::{
    BackendSampler, StreamReader, chat_body, chat_post, chat_raw, chat_with, errored, finished,
    messages_with_id, offline_chat, saved_replies, streamed_text,
};
use integration_tests::figures::Scenario;
use integration_tests::lambda_api::FakeLambda;
use integration_tests::lambda_stream::StreamingLambda;
use integration_tests::private_server::PrivateServer;
use integration_tests::{ApiRequest, Shape, TEST_AUTH_SECRET, TestApp, TestDb, TestUser};
use lambda_http::{Body, Request};
use nix::sys::signal::Signal;
use shared::AppState;
use shared::http::identity::UserType;
use shared::http::{ApiResult, DbContext, response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

const GROUP: &str = "Faults";
const HISTORY: &str = "chat-backend:history";
const CHAT: &str = "chat-backend:chat";

fn history_of(user: &TestUser) -> Request {
    ApiRequest::get("/api/history")
        .query("limit", "5")
        .bearer(&user.token)
        .build(Shape::HttpV2)
}

/// Statuses and latencies of requests made in a loop.
#[derive(Default)]
struct Tally {
    statuses: Vec<(Instant, u16, Duration)>,
}

impl Tally {
    fn count(&self, status: u16) -> usize {
        self.statuses
            .iter()
            .filter(|(_, s, _)| *s == status)
            .count()
    }

    fn others(&self, allowed: &[u16]) -> Vec<u16> {
        self.statuses
            .iter()
            .map(|(_, s, _)| *s)
            .filter(|s| !allowed.contains(s))
            .collect()
    }

    fn slowest(&self) -> Duration {
        self.statuses
            .iter()
            .map(|(_, _, d)| *d)
            .max()
            .unwrap_or_default()
    }

    /// Requests in flight at some moment between `from` and `to`.
    fn overlapping(&self, from: Instant, to: Instant) -> usize {
        self.statuses
            .iter()
            .filter(|(done, _, took)| *done >= from && *done - *took <= to)
            .count()
    }

    /// The first success at or after `since`.
    fn first_success_after(&self, since: Instant) -> Option<Instant> {
        self.statuses
            .iter()
            .filter(|(at, s, _)| *s == 200 && *at >= since)
            .map(|(at, _, _)| *at)
            .min()
    }
}

/// `clients` tasks calling the history route in a loop until `stop`.
fn history_clients(
    app: &Arc<TestApp>,
    user: &TestUser,
    clients: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Tally>> {
    (0..clients)
        .map(|_| {
            let (app, user, stop) = (app.clone(), user.clone(), stop.clone());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let answer = app.call_unchecked(history::handle, history_of(&user)).await;
                    let done = Instant::now();
                    tally.statuses.push((done, answer.status, done - started));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                tally
            })
        })
        .collect()
}

async fn join(tasks: Vec<tokio::task::JoinHandle<Tally>>) -> Tally {
    let mut all = Tally::default();
    for task in tasks {
        all.statuses
            .extend(task.await.expect("client task").statuses);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_restarting_under_requests_and_streams_is_survived_without_loss_or_leak() {
    let mut record = Scenario::new(GROUP, "database_restart", "The database restarts")
        .did("`pg_ctl stop -m fast`, then start, while 4 clients loop on GET /api/history and 3 chat replies stream (pools of 3)")
        .checked("requests are made while it is down; every answer 200 or a clean 503 within 5 s; requests work again with no restart of ours; every reply finishes and is saved exactly once; nothing checked out; never more than 3 backends per function");
    let mut server = PrivateServer::start().await;
    let vars = [("DB_POOL_MAX", "3"), ("DB_CONNECT_TIMEOUT_SECS", "2")];
    let app = Arc::new(server.app("history", &vars));
    let chat_app = server.app("chat", &vars);
    let chat = offline_chat(150, &[]);
    let ada = app.user("ada@example.com", UserType::Regular).await;
    let history_peak = BackendSampler::start(server.observer(), "chat", HISTORY);
    let chat_peak = BackendSampler::start(server.observer(), "chat", CHAT);

    let mut streams = Vec::new();
    for _ in 0..3 {
        let (chat_id, message_id) = (Uuid::new_v4(), Uuid::new_v4());
        let body = chat_body(chat_id, message_id, "Hello", "private");
        let mut reader =
            StreamReader::new(chat_raw(&chat_app, &chat, chat_post(&ada.token, &body)).await);
        assert_eq!(reader.status, 200, "{}", reader.text);
        assert!(reader.until("text-delta", Duration::from_secs(10)).await);
        streams.push((chat_id, message_id, reader));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let clients = history_clients(&app, &ada, 4, &stop);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let down = Instant::now();
    server.stop().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.start_again().await;
    let up = Instant::now();
    record.millis("database down for", up - down);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let tally = join(clients).await;

    for (_, _, reader) in &mut streams {
        assert!(reader.to_end(Duration::from_secs(20)).await);
    }
    let history_max = history_peak.stop().await.0;
    let chat_max = chat_peak.stop().await.0;
    record.figure("requests", tally.statuses.len());
    record.figure("200", tally.count(200));
    record.figure("503", tally.count(503));
    record.millis("slowest answer", tally.slowest());
    let recovered = tally
        .first_success_after(up)
        .expect("a request succeeded after the restart");
    record.millis("first 200 after the server was back", recovered - up);
    let during = tally.overlapping(down, up);
    record.figure("requests in flight during the outage", during);
    assert_eq!(tally.others(&[200, 503]), Vec::<u16>::new());
    // The outage reached requests. Whether they saw it as a 503 or, having
    // waited in the pool's connect retries, as a 200 once the server was
    // back depends on timing; either is right, a hang is not.
    assert!(during > 0, "no request was made while the server was down");
    assert!(
        tally.slowest() < Duration::from_secs(5),
        "a request outlived the connect timeout: {:?}",
        tally.slowest()
    );
    // The last answers of every client came after recovery: all 200.
    let after = app.call(history::handle, history_of(&ada)).await;
    assert_eq!(after.status, 200, "{}", after.text);

    let expected = OfflineModel::reply_text("Hello");
    for (chat_id, message_id, reader) in &streams {
        let events = reader.events();
        assert!(finished(&events), "{}", reader.text);
        assert_eq!(streamed_text(&events), expected);
        assert_eq!(messages_with_id(server.observer(), *message_id).await, 1);
        assert_eq!(
            saved_replies(server.observer(), *chat_id).await,
            vec![expected.clone()]
        );
    }
    record.figure(
        "replies streamed and saved once",
        format!("{}/3", streams.len()),
    );
    assert_eq!(app.checked_out_after_settling().await, 0);
    assert_eq!(chat_app.checked_out_after_settling().await, 0);
    assert!(
        history_max <= 3 && chat_max <= 3,
        "{history_max} {chat_max}"
    );
    record.figure(
        "most backends seen (history, chat)",
        format!("{history_max}, {chat_max}"),
    );
    record.passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_out_of_connection_slots_gets_clean_503s_then_recovers_by_itself() {
    let mut record = Scenario::new(GROUP, "max_connections", "`max_connections` reached")
        .did("every free slot of the server's `max_connections` (300) taken by other clients (`too many clients already`), requests made, then the slots freed")
        .checked("each request answers a 503 with Retry-After within the connect timeout (2 s), none hangs; after the slots free up the next request is 200; nothing checked out");
    let server = PrivateServer::start().await;
    let max_connections = server.max_connections().await;
    let app = server.app(
        "history",
        &[("DB_POOL_MAX", "2"), ("DB_CONNECT_TIMEOUT_SECS", "2")],
    );
    let ada = app.user("ada@example.com", UserType::Regular).await;

    // Other clients take every slot, a batch at a time.
    let mut hogs = Vec::new();
    let refusal = 'filling: loop {
        let batch = futures_util::future::join_all((0..25).map(|_| server.connect_admin())).await;
        let mut refused = None;
        for conn in batch {
            match conn {
                Ok(conn) => hogs.push(conn),
                Err(error) => refused = Some(error.to_string()),
            }
        }
        if let Some(refusal) = refused {
            break 'filling refusal;
        }
        assert!(
            (hogs.len() as i64) <= max_connections,
            "max_connections is not enforced"
        );
    };
    assert!(refusal.contains("too many clients"), "{refusal}");
    record.figure("connections taken by others", hogs.len());
    record.figure("max_connections", max_connections);

    let mut slowest = Duration::ZERO;
    for _ in 0..3 {
        let started = Instant::now();
        let answer = app.call(history::handle, history_of(&ada)).await;
        slowest = slowest.max(started.elapsed());
        assert_eq!(answer.status, 503, "{}", answer.text);
        assert!(answer.headers.contains_key("retry-after"));
        assert_eq!(answer.json["message"], expect::DEFAULT_MESSAGE);
    }
    record.millis("slowest 503", slowest);
    assert!(slowest < Duration::from_millis(3000), "{slowest:?}");

    drop(hogs);
    let freed = Instant::now();
    let answer = loop {
        let answer = app.call(history::handle, history_of(&ada)).await;
        if answer.status == 200 || freed.elapsed() > Duration::from_secs(5) {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(answer.status, 200, "{}", answer.text);
    record.millis("first 200 after the slots freed", freed.elapsed());
    assert_eq!(app.checked_out_after_settling().await, 0);
    assert!(server.backends(HISTORY).await <= 2);
    record.passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silently_dropped_network_path_never_hangs_a_request_and_the_next_one_works() {
    let mut record = Scenario::new(GROUP, "silent_network", "The network path drops packets silently")
        .did("a TCP proxy between function and server stops forwarding without closing: (a) only the pooled connections (a half-open connection, as a thawed environment or a NAT timeout leaves), (b) every connection, old and new, for three requests (about 6 s)")
        .checked("(a) the next request is 200 on a fresh connection; (b) requests answer 503 within the connect timeout (2 s), and once the path is back the next request is 200; nothing checked out, never more than 2 backends");
    let server = PrivateServer::start().await;
    let app = server.app(
        "history",
        &[("DB_POOL_MAX", "2"), ("DB_CONNECT_TIMEOUT_SECS", "2")],
    );
    let ada = app.user("ada@example.com", UserType::Regular).await;
    assert_eq!(
        app.call(history::handle, history_of(&ada)).await.status,
        200
    );

    // (a) The pooled connection goes half-open.
    server.proxy.blackhole_existing();
    let started = Instant::now();
    let answer = app.call(history::handle, history_of(&ada)).await;
    let took = started.elapsed();
    assert_eq!(answer.status, 200, "{}", answer.text);
    record.millis("(a) request on a half-open pooled connection", took);
    assert!(took < Duration::from_secs(3), "{took:?}");

    // (b) Nothing gets through.
    server.proxy.blackhole();
    let mut slowest = Duration::ZERO;
    for _ in 0..3 {
        let started = Instant::now();
        let answer = app.call(history::handle, history_of(&ada)).await;
        slowest = slowest.max(started.elapsed());
        assert_eq!(answer.status, 503, "{}", answer.text);
    }
    record.millis("(b) slowest 503 while silent", slowest);
    assert!(slowest < Duration::from_millis(3000), "{slowest:?}");

    server.proxy.restore();
    let back = Instant::now();
    let answer = app.call(history::handle, history_of(&ada)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    record.millis("(b) first request once the path is back", back.elapsed());
    // Connection attempts that were stuck in the silent path finish once
    // it is back; give them time under a loaded machine.
    assert_eq!(
        app.db().wait_until_settled(Duration::from_secs(10)).await,
        0
    );
    server.proxy.cut_all();
    assert!(server.backends(HISTORY).await <= 2);
    record.passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_the_server_kills_during_and_between_invocations_cost_at_most_a_clean_503() {
    let mut record = Scenario::new(GROUP, "server_kills_sessions", "The server kills sessions")
        .did("8 clients loop on GET /api/history (pool of 3) for 2 s while every backend of the function is `pg_terminate_backend`ed every 150 ms; then `idle_session_timeout` = 300 ms and requests 500 ms apart")
        .checked("every answer 200 or a clean 503; once the killing stops every request is 200; each request after an idle-session kill is 200; nothing checked out; never more than 3 backends");
    let db = TestDb::migrated().await;
    let app = Arc::new(TestApp::new(
        &db,
        "history",
        &[("DB_POOL_MAX", "3"), ("DB_CONNECT_TIMEOUT_SECS", "2")],
    ));
    let ada = app.user("ada@example.com", UserType::Regular).await;
    let peak = BackendSampler::start(db.observer(), db.name(), HISTORY);
    let stop = Arc::new(AtomicBool::new(false));
    let clients = history_clients(&app, &ada, 8, &stop);
    let mut killed = 0_i64;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
        )
        .bind(db.name())
        .bind(HISTORY)
        .fetch_one(db.observer())
        .await
        .expect("terminate backends");
        killed += n;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let tally = join(clients).await;
    record.figure("backends terminated", killed);
    record.figure("requests", tally.statuses.len());
    record.figure(
        "200 / 503",
        format!("{} / {}", tally.count(200), tally.count(503)),
    );
    assert!(killed > 0);
    assert_eq!(tally.others(&[200, 503]), Vec::<u16>::new());
    for _ in 0..20 {
        let answer = app.call(history::handle, history_of(&ada)).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
    }

    db.execute(&format!(
        r#"ALTER DATABASE "{}" SET idle_session_timeout = '300ms'"#,
        db.name()
    ))
    .await;
    // The setting applies to sessions opened from now on.
    app.db().close_idle().await;
    for _ in 0..4 {
        let answer = app.call(history::handle, history_of(&ada)).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    record.figure("requests after an idle-session kill, all 200", 4);
    assert_eq!(app.checked_out_after_settling().await, 0);
    let most = peak.stop().await.0;
    record.figure("most backends seen", most);
    assert!(most <= 3, "{most}");
    record.passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_frozen_past_the_idle_timeout_with_a_half_open_connection_answers_at_once_when_thawed()
 {
    let mut record = Scenario::new(GROUP, "sigstop", "A frozen and thawed environment")
        .did("the real `history` binary behind a local Lambda Runtime API answers, is paused with SIGSTOP for 2.5 s (idle timeout 1 s) while the network path silently drops its connection, then resumed with SIGCONT and invoked")
        .checked("the first invocation after the thaw is 200 without waiting on the dead connection (well under the 5 s connect timeout); the process then holds at most 1 backend; SIGTERM closes it and it exits 0");
    let server = PrivateServer::start().await;
    let app = server.app("history", &[]);
    let ada = app.user("ada@example.com", UserType::Regular).await;
    let lambda = FakeLambda::start().await;
    let mut env = lambda.function_env("history");
    env.extend(
        [
            ("POSTGRES_URL", server.url()),
            ("AUTH_SECRET", TEST_AUTH_SECRET.to_owned()),
            ("DB_IDLE_TIMEOUT_SECS", "1".to_owned()),
            ("DB_CONNECT_TIMEOUT_SECS", "5".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    let mut process = Captured::spawn("history", &env);
    let event = || {
        ApiRequest::get("/api/history")
            .bearer(&ada.token)
            .event(Shape::RestV1)
    };
    let first = lambda.invoke(event(), Duration::from_secs(20)).await.json();
    assert_eq!(first["statusCode"], 200, "{first}");
    assert_eq!(server.backends(HISTORY).await, 1);

    process.signal(Signal::SIGSTOP);
    server.proxy.blackhole_existing();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    process.signal(Signal::SIGCONT);
    let thawed = Instant::now();
    let answer = lambda.invoke(event(), Duration::from_secs(20)).await.json();
    let took = thawed.elapsed();
    assert_eq!(answer["statusCode"], 200, "{answer}\n{}", process.logs());
    record.millis("first invocation after the thaw", took);
    assert!(took < Duration::from_secs(2), "{took:?}");
    server.proxy.cut_all();
    let backends = server
        .wait_for_backends(HISTORY, 1, Duration::from_secs(3))
        .await;
    assert!(backends <= 1, "{backends}");

    process.signal(Signal::SIGTERM);
    let code = process.wait(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "{}", process.logs());
    assert_eq!(
        server
            .wait_for_backends(HISTORY, 0, Duration::from_secs(3))
            .await,
        0
    );
    record.passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_stream_saves_what_was_sent_closes_every_connection_and_exits_zero() {
    let mut record = Scenario::new(GROUP, "sigterm_stream", "SIGTERM during a stream")
        .did("the real `chat` binary behind a local streaming Lambda Runtime API streams a reply (150 ms a word); SIGTERM after the first words")
        .checked("the process exits 0 within 10 s and leaves no backend; the user message is saved exactly once; the client gets an error chunk saying the reply was cut short; the reply is saved exactly once, and it is what the client was sent");
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "chat", &[]);
    let ada = app.user("ada@example.com", UserType::Regular).await;
    let lambda = StreamingLambda::start().await;
    let env = lambda.function_env_on("chat", &db, &[("OFFLINE_MODEL_DELAY_MS", "150")]);
    let mut process = Captured::spawn("chat", &env);
    let (chat_id, message_id) = (Uuid::new_v4(), Uuid::new_v4());
    let body = chat_body(chat_id, message_id, "Hello", "private");
    let mut invocation = lambda
        .invoke(
            chat_post(&ada.token, &body).event(Shape::RestV1),
            Duration::from_secs(60),
        )
        .await;
    assert!(
        invocation
            .until_contains("text-delta", Duration::from_secs(20))
            .await,
        "{}",
        process.logs()
    );
    let signalled = Instant::now();
    process.signal(Signal::SIGTERM);
    let code = process.wait(Duration::from_secs(10)).await;
    let exited = signalled.elapsed();
    invocation.until_end(Duration::from_secs(2)).await;
    let logs = process.logs();
    assert_eq!(code, Some(0), "{logs}");
    record.millis("exit after SIGTERM", exited);
    assert_eq!(
        db.wait_for_backends(CHAT, 0, Duration::from_secs(3)).await,
        0
    );
    assert_eq!(messages_with_id(db.observer(), message_id).await, 1);
    let sent = streamed_text(&integration_tests::fault_kit::sse_events(
        &invocation.body_text(),
    ));
    let events = integration_tests::fault_kit::sse_events(&invocation.body_text());
    // The stream was ended in order: the client was told why, and what it
    // had been sent is what was saved, once, before the pool closed.
    let told = events
        .iter()
        .any(|e| e["type"] == "error" && e["errorText"] == chat::reply::SHUTDOWN_TEXT);
    assert!(told, "{}\n{logs}", invocation.body_text());
    assert!(!finished(&events));
    let saved = saved_replies(db.observer(), chat_id).await;
    let full = OfflineModel::reply_text("Hello");
    assert!(full.starts_with(&sent), "{sent}");
    assert!(sent.len() < full.len(), "the reply was not cut: {sent}");
    assert_eq!(saved, vec![sent.clone()], "{logs}");
    record.figure(
        "words sent before the stop",
        sent.split_whitespace().count(),
    );
    record.figure("words saved", saved[0].split_whitespace().count());
    record.passed();
}

/// A handler stuck in a query longer than the statement timeout.
async fn sleeps_in_the_database(_: Request, state: AppState) -> ApiResult<http::Response<Body>> {
    sqlx::query("SELECT pg_sleep(5)")
        .execute(state.db.pool())
        .await
        .context("sleep in the database")?;
    response::ok(&serde_json::json!({}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_past_the_statement_timeout_is_stopped_by_the_server_and_the_connection_is_reused()
{
    let mut record = Scenario::new(GROUP, "statement_timeout", "A slow query past `statement_timeout`")
        .did("a handler runs `pg_sleep(5)` with `DB_STATEMENT_TIMEOUT_SECS=1` (handler bound 10 s, pool of 1)")
        .checked("the server cancels it: a 503 after about 1 s, no query left running on the server; the same connection then serves the next request (200); nothing checked out");
    let db = TestDb::migrated().await;
    let app = TestApp::new(
        &db,
        "history",
        &[
            ("DB_POOL_MAX", "1"),
            ("DB_STATEMENT_TIMEOUT_SECS", "1"),
            ("HANDLER_TIMEOUT_SECS", "10"),
        ],
    );
    let ada = app.user("ada@example.com", UserType::Regular).await;
    assert_eq!(
        app.call(history::handle, history_of(&ada)).await.status,
        200
    );
    let pid_before: i32 = backend_pid(&db).await.expect("a backend");

    let started = Instant::now();
    let answer = app
        .call_unchecked(sleeps_in_the_database, history_of(&ada))
        .await;
    let took = started.elapsed();
    assert_eq!(answer.status, 503, "{}", answer.text);
    record.millis("answered after", took);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    let running: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2 AND state = 'active'",
    )
    .bind(db.name())
    .bind(HISTORY)
    .fetch_one(db.observer())
    .await
    .expect("pg_stat_activity");
    assert_eq!(running, 0);
    let answer = app.call(history::handle, history_of(&ada)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let reused = backend_pid(&db).await == Some(pid_before);
    record.figure("same connection reused", if reused { "yes" } else { "no" });
    assert_eq!(app.checked_out_after_settling().await, 0);
    assert!(db.backends(HISTORY).await <= 1);
    record.passed();
}

async fn backend_pid(db: &TestDb) -> Option<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
    )
    .bind(db.name())
    .bind(HISTORY)
    .fetch_optional(db.observer())
    .await
    .expect("pg_stat_activity")
}

/// A provider speaking OpenAI's streaming protocol that sends two words,
/// then either falls silent holding the connection (`hang`) or closes it.
async fn provider_that_breaks_off(hang: bool) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0_u8; 4096];
                // Headers and a small JSON body arrive at once on loopback;
                // read until the body's closing brace.
                while !request.ends_with(b"}") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request);
                if !text.contains("\"stream\":true") {
                    let body = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"A title"},"finish_reason":"stop"}]}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                    return;
                }
                let mut answer = String::from(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
                );
                for word in ["Half", " a"] {
                    answer.push_str(&format!(
                        "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{word}\"}}}}]}}\n\n"
                    ));
                }
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.flush().await;
                if hang {
                    tokio::time::sleep(Duration::from_secs(120)).await;
                }
            });
        }
    });
    (format!("http://127.0.0.1:{port}/v1"), task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_hangs_or_drops_mid_reply_ends_the_stream_with_an_error_and_saves_the_words_once()
 {
    let mut record = Scenario::new(GROUP, "provider_mid_stream", "The model provider fails or hangs mid-reply")
        .did("an OpenAI-compatible provider sends two words, then (a) falls silent holding the connection (`MODEL_IDLE_TIMEOUT_SECS=1`), (b) closes the connection")
        .checked("the client's stream ends with an `error` chunk and `[DONE]` within the idle bound; the two words are saved, once; the user message once; nothing checked out");
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "chat", &[]);
    let ada = app.user("ada@example.com", UserType::Regular).await;
    for (label, hang) in [("(a) silent", true), ("(b) closed", false)] {
        let (base_url, provider) = provider_that_breaks_off(hang).await;
        let chat = chat_with(&[
            ("CHAT_MODEL_PROVIDER", "openai"),
            ("OPENAI_BASE_URL", &base_url),
            ("OPENAI_MODEL", "test-model"),
            ("MODEL_IDLE_TIMEOUT_SECS", "1"),
        ]);
        let (chat_id, message_id) = (Uuid::new_v4(), Uuid::new_v4());
        let body = chat_body(chat_id, message_id, "Hello", "private");
        let started = Instant::now();
        let mut reader =
            StreamReader::new(chat_raw(&app, &chat, chat_post(&ada.token, &body)).await);
        assert_eq!(reader.status, 200, "{}", reader.text);
        assert!(
            reader.to_end(Duration::from_secs(10)).await,
            "{}",
            reader.text
        );
        let took = started.elapsed();
        record.millis(&format!("{label}: stream ended after"), took);
        let events = reader.events();
        assert!(errored(&events), "{}", reader.text);
        assert!(!finished(&events), "{}", reader.text);
        assert!(reader.text.ends_with("data: [DONE]\n\n"), "{}", reader.text);
        assert_eq!(streamed_text(&events), "Half a");
        assert_eq!(messages_with_id(db.observer(), message_id).await, 1);
        assert_eq!(
            saved_replies(db.observer(), chat_id).await,
            vec!["Half a".to_owned()]
        );
        if hang {
            assert!(took < Duration::from_secs(4), "{took:?}");
        }
        provider.abort();
    }
    assert_eq!(app.checked_out_after_settling().await, 0);
    record.passed();
}
