//! Load: many more clients at once than the pools have connections, for a
//! bounded time, on the real handlers in-process and a real server.
//!
//! Every request must be answered, with a success or a clean 503 or 429;
//! the server must never show more backends of a function than its pool's
//! maximum; and the throughput and latency percentiles are recorded for
//! the report. CI runs it for 5 seconds; `RELIABILITY_LOAD_SECS` makes it
//! longer (`cargo xtask reliability --load-secs 120`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use integration_tests::fault_kit::{
    BackendSampler, StreamReader, chat_body, chat_post, chat_raw, offline_chat,
};
use integration_tests::figures::{Scenario, percentiles};
use integration_tests::{ApiRequest, Shape, TestApp, TestDb, TestUser};
use shared::http::identity::UserType;
use tokio::task::JoinSet;
use uuid::Uuid;

/// Clients of each of the history and document functions.
const CLIENTS: usize = 48;
/// Clients of the chat function.
const CHAT_CLIENTS: usize = 16;
/// Each function's pool.
const POOL: i64 = 4;

fn duration() -> Duration {
    let secs = std::env::var("RELIABILITY_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(5);
    Duration::from_secs(secs)
}

/// One answered request.
struct Sample {
    route: &'static str,
    status: u16,
    took: Duration,
}

/// What one client does, once; the route and status of its answer.
async fn one_request(
    which: usize,
    history: &TestApp,
    document: &TestApp,
    user: &TestUser,
) -> (&'static str, u16) {
    if which.is_multiple_of(2) {
        let request = ApiRequest::get("/api/history")
            .query("limit", "10")
            .bearer(&user.token)
            .build(Shape::HttpV2);
        (
            "GET /api/history",
            history
                .call_unchecked(history::handle, request)
                .await
                .status,
        )
    } else {
        let id = Uuid::new_v4().to_string();
        let save = ApiRequest::new("POST", "/api/document")
            .query("id", &id)
            .bearer(&user.token)
            .json(&serde_json::json!({"title": "Load", "content": "x", "kind": "text"}))
            .build(Shape::HttpV2);
        let status = document.call_unchecked(document::handle, save).await.status;
        ("POST /api/document", status)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_more_clients_than_connections_are_all_answered_and_the_pools_never_exceed_their_maximum()
 {
    let seconds = duration();
    let mut record = Scenario::new("Load", "load", "Many more clients than connections")
        .did(&format!(
            "{} clients on GET /api/history and POST /api/document and {CHAT_CLIENTS} on POST /api/chat (one user, offline model) for {} s, in-process on one server; every pool holds at most {POOL} connections",
            CLIENTS * 2,
            seconds.as_secs()
        ))
        .checked("every request answered 2xx, or a clean 503 or 429 (the chat's daily limit); no function ever seen with more than 4 backends; nothing checked out afterwards");
    let db = TestDb::migrated().await;
    let pool = [("DB_POOL_MAX", "4")];
    let history_app = Arc::new(TestApp::new(&db, "history", &pool));
    let document_app = Arc::new(TestApp::new(&db, "document", &pool));
    let chat_app = Arc::new(TestApp::new(&db, "chat", &pool));
    let chat = offline_chat(0, &[]);
    let ada = history_app.user("ada@example.com", UserType::Regular).await;
    let samplers: Vec<_> = ["history", "document", "chat"]
        .into_iter()
        .map(|f| BackendSampler::start(db.observer(), db.name(), &format!("chat-backend:{f}")))
        .collect();

    let started = Instant::now();
    let until = started + seconds;
    let mut clients = JoinSet::new();
    for client in 0..CLIENTS * 2 {
        let (history_app, document_app, ada) =
            (history_app.clone(), document_app.clone(), ada.clone());
        clients.spawn(async move {
            let mut samples = Vec::new();
            let mut n = client;
            while Instant::now() < until {
                let begun = Instant::now();
                let (route, status) = one_request(n, &history_app, &document_app, &ada).await;
                samples.push(Sample {
                    route,
                    status,
                    took: begun.elapsed(),
                });
                n += 1;
            }
            samples
        });
    }
    for _ in 0..CHAT_CLIENTS {
        let (chat_app, chat, ada) = (chat_app.clone(), chat.clone(), ada.clone());
        clients.spawn(async move {
            let mut samples = Vec::new();
            while Instant::now() < until {
                let begun = Instant::now();
                let body = chat_body(Uuid::new_v4(), Uuid::new_v4(), "Hello", "private");
                let mut reader = StreamReader::new(
                    chat_raw(&chat_app, &chat, chat_post(&ada.token, &body)).await,
                );
                assert!(
                    reader.to_end(Duration::from_secs(30)).await,
                    "a chat answer ends"
                );
                samples.push(Sample {
                    route: "POST /api/chat",
                    status: reader.status,
                    took: begun.elapsed(),
                });
            }
            samples
        });
    }
    let mut samples = Vec::new();
    while let Some(done) = clients.join_next().await {
        samples.extend(done.expect("a client"));
    }
    let elapsed = started.elapsed();
    let mut most = Vec::new();
    for sampler in samplers {
        most.push(sampler.stop().await);
    }

    let unclean: Vec<_> = samples
        .iter()
        .filter(|s| !(200..300).contains(&s.status) && s.status != 503 && s.status != 429)
        .map(|s| (s.route, s.status))
        .collect();
    assert_eq!(
        unclean,
        Vec::new(),
        "answers that are neither 2xx nor a clean 503/429"
    );
    let count = |f: &dyn Fn(&Sample) -> bool| samples.iter().filter(|s| f(s)).count();
    record.figure("requests", samples.len());
    record.figure(
        "throughput",
        format!(
            "{:.0} requests/s",
            samples.len() as f64 / elapsed.as_secs_f64()
        ),
    );
    record.figure("2xx", count(&|s| (200..300).contains(&s.status)));
    record.figure("503", count(&|s| s.status == 503));
    record.figure("429 (daily chat limit)", count(&|s| s.status == 429));
    for route in ["GET /api/history", "POST /api/document", "POST /api/chat"] {
        let mut took: Vec<Duration> = samples
            .iter()
            .filter(|s| s.route == route)
            .map(|s| s.took)
            .collect();
        let (p50, p90, p99, max) = percentiles(&mut took);
        record.figure(
            &format!("{route} p50/p90/p99/max"),
            format!(
                "{}/{}/{}/{} ms",
                p50.as_millis(),
                p90.as_millis(),
                p99.as_millis(),
                max.as_millis()
            ),
        );
    }
    let seen: Vec<String> = most.iter().map(|(max, _)| max.to_string()).collect();
    record.figure(
        "most backends seen (history, document, chat)",
        seen.join(", "),
    );
    for (max, samples) in &most {
        assert!(*samples > 0, "the sampler saw the server");
        assert!(*max <= POOL, "{max} backends, more than the pool's {POOL}");
    }
    // The chat answers 50 a day for a regular user, then 429s: both seen.
    assert!(count(&|s| s.route == "POST /api/chat" && s.status == 200) > 0);
    for app in [&history_app, &document_app, &chat_app] {
        assert_eq!(app.checked_out_after_settling().await, 0);
    }
    record.passed();
}
