//! How fast the chat function streams, in-process, with the offline model
//! typing without pause, on a private PostgreSQL: the time to the first
//! byte of the stream, the time to the first word, the whole reply, and
//! from those the cost of each word beyond the first.
//!
//! `cargo bench -p integration-tests --bench chat_stream`

use std::time::{Duration, Instant};

use chat::Chat;
use chat::model::offline::OfflineModel;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use integration_tests::{ApiRequest, Shape, TestApp, TestDb, TestUser};
use serde_json::json;
use shared::config::ChatConfig;
use shared::http::identity::UserType;
use uuid::Uuid;

const PROMPT: &str = "How fast is this?";

struct Bench {
    _db: TestDb,
    app: TestApp,
    chat: Chat,
    /// Callers in turn: each sends at most a realistic day's messages, so
    /// that the daily-limit count stays what it is in use.
    users: Vec<TestUser>,
    next: std::sync::atomic::AtomicUsize,
}

impl Bench {
    fn caller(&self) -> &TestUser {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        &self.users[n % self.users.len()]
    }
}

/// One reply, read to its end: (first byte, first word, end).
async fn one_reply(bench: &Bench) -> (Duration, Duration, Duration) {
    let body = json!({
        "id": Uuid::new_v4(),
        "message": {"id": Uuid::new_v4(), "role": "user", "parts": [{"type": "text", "text": PROMPT}]},
        "selectedChatModel": "chat-model",
        "selectedVisibilityType": "private",
    });
    let request = ApiRequest::new("POST", "/api/chat")
        .bearer(&bench.caller().token)
        .json(&body)
        .build(Shape::HttpV2);
    let chat = bench.chat.clone();
    let started = Instant::now();
    let response = bench
        .app
        .call_raw(move |req, state| chat.handle(req, state), request)
        .await;
    let mut body = response.into_body();
    let mut first_byte = None;
    let mut first_word = None;
    while let Some(frame) = body.frame().await {
        let data = frame.expect("a frame").into_data().unwrap_or_default();
        first_byte.get_or_insert_with(|| started.elapsed());
        if first_word.is_none() && data.windows(10).any(|w| w == b"text-delta") {
            first_word = Some(started.elapsed());
        }
    }
    let end = started.elapsed();
    (first_byte.unwrap_or(end), first_word.unwrap_or(end), end)
}

fn streaming(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let bench = runtime.block_on(async {
        let db = TestDb::migrated().await;
        let app = TestApp::new(&db, "chat", &[]);
        let mut users = Vec::new();
        for n in 0..200 {
            users.push(
                app.user(&format!("user{n}@example.com"), UserType::Regular)
                    .await,
            );
        }
        let config = ChatConfig::from_lookup(|name| match name {
            "OFFLINE_MODEL_DELAY_MS" => Some("0".into()),
            "CHAT_MAX_MESSAGES_PER_DAY_REGULAR" => Some("1000".into()),
            _ => None,
        })
        .expect("a configuration");
        let chat = Chat::new(config).expect("the offline model");
        let bench = Bench {
            _db: db,
            app,
            chat,
            users,
            next: Default::default(),
        };
        // A database in use has rows and statistics: without them the first
        // thousand replies measure the planner's guesses about empty tables.
        for _ in 0..200 {
            one_reply(&bench).await;
        }
        sqlx::raw_sql("ANALYZE")
            .execute(bench.app.observer())
            .await
            .expect("ANALYZE");
        bench
    });
    let words = OfflineModel::deltas(&OfflineModel::reply_text(PROMPT)).len() as u32;

    let mut group = c.benchmark_group("chat_stream");
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("time_to_first_byte", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let bench = &bench;
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += one_reply(bench).await.0;
                }
                total
            }
        })
    });
    group.bench_function("time_to_first_word", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let bench = &bench;
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += one_reply(bench).await.1;
                }
                total
            }
        })
    });
    group.bench_function(format!("whole_reply_of_{words}_words"), |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let bench = &bench;
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += one_reply(bench).await.2;
                }
                total
            }
        })
    });
    group.finish();

    // The cost of a word: the reply after its first word, divided by the
    // words after it, as a median over many replies.
    let mut per_word: Vec<Duration> = runtime.block_on(async {
        let mut samples = Vec::new();
        for _ in 0..300 {
            let (_, first_word, end) = one_reply(&bench).await;
            samples.push((end - first_word) / (words - 1));
        }
        samples
    });
    per_word.sort();
    println!(
        "per-word overhead ({words} words a reply, 300 replies): median {:?}, p99 {:?}",
        per_word[per_word.len() / 2],
        per_word[per_word.len() * 99 / 100]
    );
}

criterion_group!(benches, streaming);
criterion_main!(benches);
