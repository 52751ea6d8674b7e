//! The chat function's stream, in-process: time to the first byte, to the
//! first word, and the cost of each word after it, with the offline model
//! typing without pause, so that what is measured is ours (the request,
//! the database work before the stream, the UI message stream's framing,
//! the save when it ends), not the model.
//!
//! The suite reports medians of many replies; `benches/chat_stream.rs`
//! gives criterion's view of the same replies.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chat::Chat;
use chat::model::offline::OfflineModel;
use http_body_util::BodyExt;
use integration_tests::{ApiRequest, Shape, TestApp, TestDb, TestUser};
use serde_json::json;
use shared::config::ChatConfig;
use shared::http::identity::UserType;
use uuid::Uuid;

use crate::stats::Samples;

/// What every reply answers.
pub const PROMPT: &str = "How fast is this?";

/// Callers, so that each sends no more than a realistic day's messages and
/// the daily-limit count stays what it is in use.
const CALLERS: usize = 200;

/// The chat handler on a database of its own, and its callers.
pub struct StreamBench {
    /// The database (dropped with the bench).
    _db: TestDb,
    /// The function, in-process, through the cleanup wrapper.
    app: TestApp,
    /// The chat function's handler, with the offline model at zero delay.
    chat: Chat,
    /// Signed-in users, used in turn.
    users: Vec<TestUser>,
    /// The next user's index.
    next: AtomicUsize,
}

/// One reply's times, from the request.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    /// The first byte of the stream.
    pub first_byte: Duration,
    /// The first `text-delta` chunk.
    pub first_word: Duration,
    /// The end of the stream.
    pub end: Duration,
}

impl StreamBench {
    /// A fresh database with callers, warmed with `warm_up` replies and
    /// analysed, as a database in use is (without statistics the first
    /// replies measure the planner's guesses about empty tables).
    pub async fn new(warm_up: usize) -> Result<StreamBench> {
        let db = TestDb::migrated().await;
        let app = TestApp::new(&db, "chat", &[]);
        let mut users = Vec::new();
        for n in 0..CALLERS {
            users.push(
                app.user(&format!("user{n}@example.com"), UserType::Regular)
                    .await,
            );
        }
        let config = ChatConfig::from_lookup(|name| match name {
            "OFFLINE_MODEL_DELAY_MS" => Some("0".into()),
            "CHAT_MAX_MESSAGES_PER_DAY_REGULAR" => Some("100000".into()),
            _ => None,
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let chat = Chat::new(config).map_err(|e| anyhow::anyhow!("{e}"))?;
        let bench = StreamBench {
            _db: db,
            app,
            chat,
            users,
            next: AtomicUsize::new(0),
        };
        for _ in 0..warm_up {
            bench.reply().await?;
        }
        sqlx::raw_sql("ANALYZE")
            .execute(bench.app.observer())
            .await
            .context("ANALYZE")?;
        Ok(bench)
    }

    /// Words in each reply.
    pub fn words(&self) -> usize {
        OfflineModel::deltas(&OfflineModel::reply_text(PROMPT)).len()
    }

    /// One reply, read to its end.
    pub async fn reply(&self) -> Result<Reply> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let caller = &self.users[n % self.users.len()];
        let body = json!({
            "id": Uuid::new_v4(),
            "message": {"id": Uuid::new_v4(), "role": "user", "parts": [{"type": "text", "text": PROMPT}]},
            "selectedChatModel": "chat-model",
            "selectedVisibilityType": "private",
        });
        let request = ApiRequest::new("POST", "/api/chat")
            .bearer(&caller.token)
            .json(&body)
            .build(Shape::HttpV2);
        let chat = self.chat.clone();
        let started = Instant::now();
        let response = self
            .app
            .call_raw(move |req, state| chat.handle(req, state), request)
            .await;
        if response.status() != 200 {
            bail!("the chat answered {}", response.status());
        }
        let mut body = response.into_body();
        let mut first_byte = None;
        let mut first_word = None;
        while let Some(frame) = body.frame().await {
            let data = frame
                .map_err(|e| anyhow::anyhow!("{e:?}"))?
                .into_data()
                .unwrap_or_default();
            first_byte.get_or_insert_with(|| started.elapsed());
            if first_word.is_none() && data.windows(10).any(|w| w == b"text-delta") {
                first_word = Some(started.elapsed());
            }
        }
        let end = started.elapsed();
        Ok(Reply {
            first_byte: first_byte.unwrap_or(end),
            first_word: first_word.context("a reply without words")?,
            end,
        })
    }
}

/// Medians over many replies.
#[derive(Debug, Default)]
pub struct StreamResults {
    /// Words in each reply.
    pub words: usize,
    /// Time to the first byte.
    pub first_byte: Samples,
    /// Time to the first word.
    pub first_word: Samples,
    /// Each word after the first: (end - first word) / (words - 1).
    pub per_word: Samples,
    /// Whole replies through a local Runtime API ([`through_runtime_api`]).
    pub through_runtime_api: Samples,
}

/// Measures `replies` replies, one at a time.
pub async fn run(replies: usize) -> Result<StreamResults> {
    let bench = StreamBench::new(replies.min(200)).await?;
    let words = bench.words();
    let mut results = StreamResults {
        words,
        ..StreamResults::default()
    };
    for _ in 0..replies {
        let reply = bench.reply().await?;
        results.first_byte.push(reply.first_byte);
        results.first_word.push(reply.first_word);
        results
            .per_word
            .push((reply.end - reply.first_word) / (words as u32 - 1));
    }
    Ok(results)
}

/// Whole replies streamed by the chat function's release binary behind a
/// local Runtime API, one at a time, warm: what the in-process figures
/// leave out is the Runtime API connection (the streamed POST of the
/// answer), where Nagle's algorithm once cost 40 ms
/// (`vendor/lambda_runtime_api_client/PATCHED.md`).
pub async fn through_runtime_api(f: &crate::fixtures::Fixture, replies: usize) -> Result<Samples> {
    use crate::process::{FunctionProcess, Program};
    let process = FunctionProcess::spawn(
        Program::Rust("chat"),
        &f.db.url(),
        f.secret,
        &[("OFFLINE_MODEL_DELAY_MS", "0")],
    )
    .await?;
    process.init_time().await?;
    let mut samples = Samples::new();
    // The first replies warm the process (connections, statements).
    for n in 0..replies + 5 {
        let caller = &f.chatters[n % f.chatters.len()];
        let event = f.chat_request(caller).event(Shape::RestV1);
        let (took, status, body) = process.invoke(&event).await?;
        if status != 200 || !body.contains("[DONE]") {
            bail!("the chat answered {status}: {body}");
        }
        if n >= 5 {
            samples.push(took);
        }
    }
    process.stop().await;
    Ok(samples)
}

/// Many streams at once in one chat process.
#[derive(Debug)]
pub struct ManyStreams {
    /// Streams at once.
    pub streams: usize,
    /// Peak RSS of the process after one reply, bytes.
    pub peak_after_one: u64,
    /// Peak RSS after all of them, bytes.
    pub peak: u64,
    /// How long the one reply took.
    pub one: Duration,
    /// How long all of them took together (about `one` when they really
    /// ran at once).
    pub all: Duration,
}

/// Peak memory of the chat function serving `streams` replies at once
/// (`AWS_LAMBDA_MAX_CONCURRENCY`), with the offline model's default pause
/// between words, so that the streams overlap as real ones do.
pub async fn many_at_once(f: &crate::fixtures::Fixture, streams: usize) -> Result<ManyStreams> {
    use crate::process::{FunctionProcess, Program};
    if streams > f.chatters.len() {
        bail!("{streams} streams need as many callers");
    }
    let concurrency = streams.to_string();
    let process = FunctionProcess::spawn(
        Program::Rust("chat"),
        &f.db.url(),
        f.secret,
        &[("AWS_LAMBDA_MAX_CONCURRENCY", concurrency.as_str())],
    )
    .await?;
    process.init_time().await?;
    let event = |n: usize| f.chat_request(&f.chatters[n]).event(Shape::RestV1);
    let (one, status, body) = process.invoke(&event(0)).await?;
    if status != 200 || !body.contains("text-delta") {
        bail!("the chat answered {status}: {body}");
    }
    let peak_after_one = process.peak_memory()?;
    let start = Instant::now();
    let process = &process;
    let replies = (0..streams).map(|n| {
        let event = event(n);
        async move { process.invoke(&event).await }
    });
    for (_, status, body) in futures_util::future::try_join_all(replies).await? {
        if status != 200 || !body.contains("[DONE]") {
            bail!("a concurrent stream answered {status}: {body}");
        }
    }
    let all = start.elapsed();
    let peak = process.peak_memory()?;
    Ok(ManyStreams {
        streams,
        peak_after_one,
        peak,
        one,
        all,
    })
}
