//! Small tools the fault, load and security tests share: the chat function
//! in-process, chat bodies, reading the UI message stream, and a sampler
//! of the backends the server shows.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use chat::{Chat, ChatBody};
use http::Response;
use serde_json::{Value, json};
use shared::config::ChatConfig;
use uuid::Uuid;

use crate::{ApiRequest, Shape, TestApp, TestResponse, read_body};

/// The chat function with the offline model pausing `delay_ms` before
/// each word, plus `vars`.
pub fn offline_chat(delay_ms: u64, vars: &[(&str, &str)]) -> Chat {
    let delay = delay_ms.to_string();
    let mut all = vec![("OFFLINE_MODEL_DELAY_MS", delay.as_str())];
    all.extend_from_slice(vars);
    chat_with(&all)
}

/// The chat function configured by `vars` (a later entry overrides an
/// earlier one), as its process would read them from its environment.
pub fn chat_with(vars: &[(&str, &str)]) -> Chat {
    let all: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let config = ChatConfig::from_lookup(move |name| {
        all.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    })
    .expect("a valid chat configuration");
    Chat::new(config).expect("the configured model")
}

/// The body of `POST /api/chat` for one text message.
pub fn chat_body(chat_id: Uuid, message_id: Uuid, text: &str, visibility: &str) -> Value {
    json!({
        "id": chat_id,
        "message": {"id": message_id, "role": "user", "parts": [{"type": "text", "text": text}]},
        "selectedChatModel": "chat-model",
        "selectedVisibilityType": visibility,
    })
}

/// `POST /api/chat` as `token`.
pub fn chat_post(token: &str, body: &Value) -> ApiRequest {
    ApiRequest::new("POST", "/api/chat")
        .bearer(token)
        .json(body)
}

/// Calls the chat function in-process and hands back the raw response.
pub async fn chat_raw(app: &TestApp, chat: &Chat, request: ApiRequest) -> Response<ChatBody> {
    let chat = chat.clone();
    app.call_raw(
        move |req, state| chat.handle(req, state),
        request.build(Shape::HttpV2),
    )
    .await
}

/// Posts `body` to the chat function in-process as `token`, and reads
/// the answer to its end (within 20 s).
pub async fn chat_to_end(app: &TestApp, chat: &Chat, token: &str, body: &Value) -> StreamReader {
    let mut reader = StreamReader::new(chat_raw(app, chat, chat_post(token, body)).await);
    assert!(
        reader.to_end(Duration::from_secs(20)).await,
        "the chat answer ends: {}",
        reader.text
    );
    reader
}

/// Calls the chat function in-process and reads the whole answer.
pub async fn chat_call(app: &TestApp, chat: &Chat, request: ApiRequest) -> TestResponse {
    read_body(chat_raw(app, chat, request).await).await
}

/// The `data:` payloads of an SSE body (JSON, or the string `[DONE]`);
/// incomplete trailing events are left out.
pub fn sse_events(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .filter_map(|data| {
            if data == "[DONE]" {
                Some(Value::String("[DONE]".into()))
            } else {
                serde_json::from_str(data).ok()
            }
        })
        .collect()
}

/// The text the `text-delta` events carry.
pub fn streamed_text(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "text-delta")
        .filter_map(|e| e["delta"].as_str())
        .collect()
}

/// Whether the events end as a complete reply (`finish`, then `[DONE]`).
pub fn finished(events: &[Value]) -> bool {
    events.iter().any(|e| e["type"] == "finish")
}

/// Whether an `error` event was sent.
pub fn errored(events: &[Value]) -> bool {
    events.iter().any(|e| e["type"] == "error")
}

/// The text of the assistant messages saved in `chat_id`, oldest first.
pub async fn saved_replies(pool: &sqlx::PgPool, chat_id: Uuid) -> Vec<String> {
    let rows: Vec<sqlx::types::Json<Value>> = sqlx::query_scalar(
        r#"SELECT parts FROM "Message_v2" WHERE "chatId" = $1 AND role = 'assistant' ORDER BY "createdAt""#,
    )
    .bind(chat_id)
    .fetch_all(pool)
    .await
    .expect("read the replies");
    rows.into_iter()
        .map(|parts| {
            parts
                .0
                .as_array()
                .map(|parts| {
                    parts
                        .iter()
                        .filter(|p| p["type"] == "text")
                        .filter_map(|p| p["text"].as_str())
                        .collect::<String>()
                })
                .unwrap_or_default()
        })
        .collect()
}

/// The upstream schema's tables.
pub const TABLES: [&str; 7] = [
    "User",
    "Chat",
    "Message_v2",
    "Vote_v2",
    "Document",
    "Suggestion",
    "Stream",
];

/// A fingerprint of every row of every table: its row count and a
/// checksum of its rows, table by table; equal fingerprints, equal data.
pub async fn fingerprint(pool: &sqlx::PgPool) -> Vec<(String, i64, Option<String>)> {
    let mut out = Vec::new();
    for table in TABLES {
        let (count, sum): (i64, Option<String>) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            r#"SELECT count(*), md5(string_agg(t::text, ',' ORDER BY t::text)) FROM "{table}" t"#
        )))
        .fetch_one(pool)
        .await
        .expect("checksum");
        out.push((table.to_owned(), count, sum));
    }
    out
}

/// How many messages with `id` are saved.
pub async fn messages_with_id(pool: &sqlx::PgPool, id: Uuid) -> i64 {
    sqlx::query_scalar(r#"SELECT count(*) FROM "Message_v2" WHERE id = $1"#)
        .bind(id)
        .fetch_one(pool)
        .await
        .expect("count messages")
}

/// Records the most backends of `application_name` on `database` that the
/// server shows while it runs, sampling every few milliseconds; a sample
/// that fails (the server is down) is skipped.
pub struct BackendSampler {
    max: Arc<AtomicI64>,
    samples: Arc<AtomicI64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl BackendSampler {
    /// Starts sampling through `pool`.
    pub fn start(pool: &sqlx::PgPool, database: &str, application_name: &str) -> BackendSampler {
        let max = Arc::new(AtomicI64::new(0));
        let samples = Arc::new(AtomicI64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let pool = pool.clone();
        let (database, name) = (database.to_owned(), application_name.to_owned());
        let (max2, samples2, stop2) = (max.clone(), samples.clone(), stop.clone());
        let task = tokio::spawn(async move {
            while !stop2.load(Ordering::Relaxed) {
                let sample = tokio::time::timeout(
                    Duration::from_secs(2),
                    sqlx::query_scalar::<_, i64>(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
                    )
                    .bind(&database)
                    .bind(&name)
                    .fetch_one(&pool),
                )
                .await;
                if let Ok(Ok(n)) = sample {
                    max2.fetch_max(n, Ordering::Relaxed);
                    samples2.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        BackendSampler {
            max,
            samples,
            stop,
            task,
        }
    }

    /// Stops sampling: `(most backends seen, samples taken)`.
    pub async fn stop(self) -> (i64, i64) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
        (
            self.max.load(Ordering::Relaxed),
            self.samples.load(Ordering::Relaxed),
        )
    }
}

/// A streamed chat answer, read frame by frame as the client would.
pub struct StreamReader {
    body: ChatBody,
    /// The status of the answer.
    pub status: u16,
    /// What was read so far.
    pub text: String,
    /// Whether the body ended.
    pub ended: bool,
}

impl StreamReader {
    /// Starts reading `response`.
    pub fn new(response: Response<ChatBody>) -> StreamReader {
        let status = response.status().as_u16();
        StreamReader {
            body: response.into_body(),
            status,
            text: String::new(),
            ended: false,
        }
    }

    /// Reads until the text holds `needle` (true), or the body ends or
    /// `bound` passes (false).
    pub async fn until(&mut self, needle: &str, bound: Duration) -> bool {
        use http_body_util::BodyExt;
        let deadline = tokio::time::Instant::now() + bound;
        while !self.text.contains(needle) && !self.ended {
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.text.push_str(&String::from_utf8_lossy(&data));
                    }
                }
                Ok(Some(Err(never))) => match never {},
                Ok(None) => self.ended = true,
                Err(_) => return false,
            }
        }
        self.text.contains(needle)
    }

    /// Reads to the end, for at most `bound`; true if the body ended.
    pub async fn to_end(&mut self, bound: Duration) -> bool {
        // A needle no SSE body holds: read until the end.
        self.until("\u{0}never\u{0}", bound).await;
        self.ended
    }

    /// The events read so far.
    pub fn events(&self) -> Vec<Value> {
        sse_events(&self.text)
    }

    /// Stops reading: the client goes away.
    pub fn hang_up(self) {
        drop(self.body);
    }
}
