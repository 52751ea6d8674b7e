//! The chat function's OpenAI-compatible provider, against a local server
//! that speaks OpenAI's streaming protocol byte for byte.
//!
//! The fake provider is a raw socket, so that every byte is ours: it
//! records each request and answers with a fixture from
//! `fixtures/openai/` (answers as OpenAI, Ollama and a re-framing proxy
//! send them), in uneven HTTP/1.1 chunks that split lines and characters,
//! or breaks off, or falls silent. First the provider alone: what it asks
//! for, the text it rebuilds, and how each failure maps to `Unavailable`
//! (the reply never started) or `Interrupted` (it broke off). Then
//! `POST /api/chat` with it: the 503, the streamed words, what is saved.
//! Every wait is bounded.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chat::Chat;
use chat::model::openai::OpenAiModel;
use chat::model::{ChatModel, ModelError, Prompt, PromptMessage, Reply, Role};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use integration_tests::expect::error_body;
use integration_tests::{ApiRequest, Shape, TestApp, TestDb, TestUser, workspace_root};
use serde_json::{Value, json};
use shared::config::{ChatConfig, ModelConfig};
use shared::db::queries::{chat as chats, message};
use shared::http::identity::UserType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use uuid::Uuid;

/// The key the tests configure: it must never show in an error.
const KEY: &str = "sk-test-Zq81mXv0Rb3kTn6Wc2Pd9YsLh4";

/// The bound on any one wait of a test.
const BOUND: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// The fake provider.

/// One request the provider received.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    /// Names in lower case.
    headers: HashMap<String, String>,
    body: Value,
}

impl Received {
    fn streamed(&self) -> bool {
        self.body["stream"] == json!(true)
    }
}

/// What the provider answers to one request.
#[derive(Debug, Clone)]
enum Answer {
    /// `status` with a JSON body of known length.
    Json(u16, Vec<u8>),
    /// `200 text/event-stream`, chunked: after `delay`, `body` in uneven
    /// pieces, then `end`.
    Stream {
        body: Vec<u8>,
        delay: Duration,
        end: End,
    },
    /// `200 text/event-stream` without a length: `body`, then the socket
    /// closes (a body delimited by the connection's end).
    UntilClose(Vec<u8>),
    /// The request is read and never answered.
    Silent,
}

/// How a chunked answer ends.
#[derive(Debug, Clone, Copy)]
enum End {
    /// The last chunk: the connection can serve another request.
    Complete,
    /// The socket closes mid-body, as when a connection is cut.
    Cut,
    /// Nothing more is sent, and the connection stays open.
    Hang,
}

fn stream(body: Vec<u8>) -> Answer {
    Answer::Stream {
        body,
        delay: Duration::ZERO,
        end: End::Complete,
    }
}

/// The sizes of the pieces a body is sent in, in turn: lines, JSON and
/// multi-byte characters all end up split somewhere.
const PIECES: [usize; 6] = [1, 5, 13, 64, 7, 300];

type Script = Arc<dyn Fn(&Received) -> Answer + Send + Sync>;

struct Provider {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    connections: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl Provider {
    /// A provider on a free local port that answers each request as
    /// `script` says.
    async fn start(script: impl Fn(&Received) -> Answer + Send + Sync + 'static) -> Provider {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let script: Script = Arc::new(script);
        let server = tokio::spawn({
            let received = received.clone();
            let connections = connections.clone();
            async move {
                // The connections' tasks live in the set: stopping the
                // server stops them (hanging answers included).
                let mut open = JoinSet::new();
                loop {
                    tokio::select! {
                        accepted = listener.accept() => {
                            let Ok((socket, _)) = accepted else { return };
                            connections.fetch_add(1, Ordering::SeqCst);
                            open.spawn(serve(socket, script.clone(), received.clone()));
                        }
                        Some(_) = open.join_next(), if !open.is_empty() => {}
                    }
                }
            }
        });
        Provider {
            addr,
            received,
            connections,
            server,
        }
    }

    /// Answers every request with `answer`.
    async fn always(answer: Answer) -> Provider {
        Provider::start(move |_| answer.clone()).await
    }

    fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().expect("not poisoned").clone()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(mut socket: TcpStream, script: Script, received: Arc<Mutex<Vec<Received>>>) {
    // Small writes go out as they are written, so pieces arrive apart.
    let _ = socket.set_nodelay(true);
    let mut buffer = Vec::new();
    while let Some(request) = read_request(&mut socket, &mut buffer).await {
        let answer = script(&request);
        received.lock().expect("not poisoned").push(request);
        if answer_with(&mut socket, answer).await.is_err() {
            return;
        }
    }
}

/// Writes `answer`; `Err` when the connection is done.
async fn answer_with(socket: &mut TcpStream, answer: Answer) -> Result<(), ()> {
    let failed = |_| ();
    match answer {
        Answer::Json(status, body) => {
            let head = format!(
                "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                reason(status),
                body.len()
            );
            socket.write_all(head.as_bytes()).await.map_err(failed)?;
            socket.write_all(&body).await.map_err(failed)?;
            Ok(())
        }
        Answer::Stream { body, delay, end } => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n\
                        transfer-encoding: chunked\r\ncache-control: no-cache\r\n\r\n";
            socket.write_all(head.as_bytes()).await.map_err(failed)?;
            tokio::time::sleep(delay).await;
            let mut rest = &body[..];
            for size in PIECES.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (piece, after) = rest.split_at((*size).min(rest.len()));
                rest = after;
                let mut chunk = format!("{:x}\r\n", piece.len()).into_bytes();
                chunk.extend_from_slice(piece);
                chunk.extend_from_slice(b"\r\n");
                socket.write_all(&chunk).await.map_err(failed)?;
            }
            match end {
                End::Complete => socket.write_all(b"0\r\n\r\n").await.map_err(failed),
                End::Cut => Err(()),
                End::Hang => std::future::pending().await,
            }
        }
        Answer::UntilClose(body) => {
            let head =
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
            socket.write_all(head.as_bytes()).await.map_err(failed)?;
            socket.write_all(&body).await.map_err(failed)?;
            let _ = socket.shutdown().await;
            Err(())
        }
        Answer::Silent => std::future::pending().await,
    }
}

fn reason(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown")
}

/// Reads one HTTP/1.1 request (head and `content-length` body).
async fn read_request(socket: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<Received> {
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        if socket.read_buf(buffer).await.ok()? == 0 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let end = head_end + 4 + length;
    while buffer.len() < end {
        if socket.read_buf(buffer).await.ok()? == 0 {
            return None;
        }
    }
    let body = serde_json::from_slice(&buffer[head_end + 4..end]).unwrap_or(Value::Null);
    buffer.drain(..end);
    Some(Received {
        method,
        path,
        headers,
        body,
    })
}

// ---------------------------------------------------------------------------
// Helpers.

fn fixture(name: &str) -> Vec<u8> {
    let path = workspace_root().join("tests/fixtures/openai").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text a fixture's stream spells (`<name>.txt` beside `<name>.sse`).
fn fixture_text(name: &str) -> String {
    String::from_utf8(fixture(&name.replace(".sse", ".txt"))).expect("UTF-8")
}

/// The chat configuration for `provider`, as the environment gives it,
/// with `vars` on top of a key, a model map and 5 s timeouts.
fn config(base_url: &str, vars: &[(&str, &str)]) -> ChatConfig {
    let mut all: HashMap<String, String> = [
        ("CHAT_MODEL_PROVIDER", "openai"),
        ("OPENAI_BASE_URL", base_url),
        ("OPENAI_MODEL", "gpt-4.1-mini"),
        (
            "OPENAI_MODEL_MAP",
            "chat-model=gpt-4.1-mini,chat-model-reasoning=o4-mini",
        ),
        ("OPENAI_TITLE_MODEL", "gpt-4.1-nano"),
        ("OPENAI_API_KEY", KEY),
        ("MODEL_FIRST_TOKEN_TIMEOUT_SECS", "5"),
        ("MODEL_IDLE_TIMEOUT_SECS", "5"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in vars {
        if v.is_empty() {
            all.remove(*k);
        } else {
            all.insert((*k).to_owned(), (*v).to_owned());
        }
    }
    ChatConfig::from_lookup(move |k| all.get(k).cloned()).expect("a valid configuration")
}

fn model(config: &ChatConfig) -> OpenAiModel {
    let ModelConfig::OpenAi(openai) = &config.model else {
        panic!("the openai provider is configured")
    };
    OpenAiModel::new(
        openai.clone(),
        config.first_token_timeout,
        config.idle_timeout,
    )
    .expect("a model")
}

async fn model_for(provider: &Provider, vars: &[(&str, &str)]) -> OpenAiModel {
    model(&config(&provider.base_url(), vars))
}

/// A conversation as the route builds it.
fn prompt(selected: &str) -> Prompt {
    let message = |role, text: &str| PromptMessage {
        role,
        text: text.to_owned(),
    };
    Prompt {
        selected_model: selected.to_owned(),
        messages: vec![
            message(
                Role::System,
                "You are a friendly assistant! Keep your responses concise and helpful.",
            ),
            message(Role::User, "Hello"),
            message(Role::Assistant, "Hi! What can I do for you?"),
            message(Role::User, "Say hello \"properly\" — in Japanese too"),
        ],
    }
}

/// Starts a reply, within the bound.
async fn start(model: &OpenAiModel, selected: &str) -> Result<Reply, ModelError> {
    tokio::time::timeout(BOUND, model.reply(prompt(selected)))
        .await
        .expect("reply() resolves within the bound")
}

/// The reply's deltas, and the error that ended it, if any (nothing may
/// follow an error).
async fn read_reply(reply: Reply) -> (Vec<String>, Option<ModelError>) {
    tokio::time::timeout(BOUND, async move {
        let mut reply = reply;
        let mut deltas = Vec::new();
        while let Some(item) = reply.next().await {
            match item {
                Ok(delta) => deltas.push(delta),
                Err(error) => {
                    assert!(reply.next().await.is_none(), "nothing after an error");
                    return (deltas, Some(error));
                }
            }
        }
        (deltas, None)
    })
    .await
    .expect("the reply ends within the bound")
}

async fn whole_reply(model: &OpenAiModel, selected: &str) -> String {
    let reply = start(model, selected).await.expect("the reply starts");
    let (deltas, error) = read_reply(reply).await;
    assert!(error.is_none(), "no error: {error:?}");
    assert!(deltas.iter().all(|d| !d.is_empty()), "no empty deltas");
    deltas.concat()
}

/// The message of an `Unavailable`, checked free of the key.
fn unavailable(error: ModelError) -> String {
    assert_no_key(&error);
    match error {
        ModelError::Unavailable(message) => message,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// The message of an `Interrupted`, checked free of the key.
fn interrupted(error: Option<ModelError>) -> String {
    let error = error.expect("the reply ended with an error");
    assert_no_key(&error);
    match error {
        ModelError::Interrupted(message) => message,
        other => panic!("expected Interrupted, got {other:?}"),
    }
}

fn assert_no_key(error: &ModelError) {
    for shown in [error.to_string(), format!("{error:?}")] {
        assert!(!shown.contains(KEY), "the key shows in {shown}");
        assert!(
            !shown.contains("Zq81mXv0"),
            "part of the key shows in {shown}"
        );
    }
}

// ---------------------------------------------------------------------------
// The provider alone.

#[tokio::test]
async fn openais_stream_rebuilds_the_exact_text_from_what_openai_expects() {
    let provider = Provider::always(stream(fixture("openai_stream.sse"))).await;
    let model = model_for(&provider, &[]).await;

    let text = whole_reply(&model, "chat-model-reasoning").await;
    assert_eq!(text, fixture_text("openai_stream.sse"));

    let received = provider.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    // Exactly these keys: nothing OpenAI-only that others would refuse.
    assert_eq!(
        request.body,
        json!({
            "model": "o4-mini",
            "messages": [
                {"role": "system", "content": "You are a friendly assistant! Keep your responses concise and helpful."},
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "Hi! What can I do for you?"},
                {"role": "user", "content": "Say hello \"properly\" — in Japanese too"},
            ],
            "stream": true,
        })
    );
    assert_eq!(
        request.headers.get("authorization").map(String::as_str),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(
        request.headers.get("accept").map(String::as_str),
        Some("text/event-stream")
    );
    assert_eq!(
        request.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
}

#[tokio::test]
async fn ollamas_stream_works_without_a_key_and_unknown_ids_get_the_default_model() {
    let provider = Provider::always(stream(fixture("ollama_stream.sse"))).await;
    let model = model_for(
        &provider,
        &[("OPENAI_API_KEY", ""), ("OPENAI_MODEL", "llama3.2")],
    )
    .await;

    let text = whole_reply(&model, "some-model-the-client-made-up").await;
    assert_eq!(text, fixture_text("ollama_stream.sse"));
    assert!(text.contains("Rust & Go <3"), "Go's escapes are undone");

    let request = &provider.received()[0];
    assert_eq!(request.body["model"], "llama3.2");
    assert_eq!(request.body["stream"], true);
    assert!(
        !request.headers.contains_key("authorization"),
        "no key, no header: {:?}",
        request.headers
    );

    // A mapped id gets its mapping.
    let _ = whole_reply(&model, "chat-model").await;
    assert_eq!(provider.received()[1].body["model"], "gpt-4.1-mini");
}

#[tokio::test]
async fn keep_alive_comments_crlf_line_endings_and_event_lines_are_read_through() {
    let provider = Provider::always(stream(fixture("proxy_keepalive_crlf.sse"))).await;
    let model = model_for(&provider, &[]).await;
    assert_eq!(
        whole_reply(&model, "chat-model").await,
        fixture_text("proxy_keepalive_crlf.sse")
    );
}

#[tokio::test]
async fn a_body_that_ends_after_the_finish_reason_without_done_is_a_whole_reply() {
    let with_done = fixture("openai_stream.sse");
    let without_done = with_done[..with_done.len() - b"data: [DONE]\n\n".len()].to_vec();
    assert!(without_done.ends_with(b"}\n\n"));
    let hanging = Answer::Stream {
        body: without_done.clone(),
        delay: Duration::ZERO,
        end: End::Hang,
    };
    for answer in [
        stream(without_done.clone()),
        Answer::UntilClose(without_done),
        // The connection stays open: the text is whole all the same, and
        // the idle timeout (5 s here) is not waited out.
        hanging,
    ] {
        let provider = Provider::always(answer).await;
        let model = model_for(&provider, &[]).await;
        let started = Instant::now();
        assert_eq!(
            whole_reply(&model, "chat-model").await,
            fixture_text("openai_stream.sse")
        );
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}

#[tokio::test]
async fn a_key_pasted_with_its_line_break_is_sent_trimmed() {
    let provider = Provider::always(stream(fixture("ollama_stream.sse"))).await;
    let pasted = format!("  {KEY}\n");
    let model = model_for(&provider, &[("OPENAI_API_KEY", &pasted)]).await;
    let _ = whole_reply(&model, "chat-model").await;
    assert_eq!(
        provider.received()[0].headers.get("authorization"),
        Some(&format!("Bearer {KEY}"))
    );
}

#[tokio::test]
async fn a_provider_that_ignores_stream_true_still_gives_its_text() {
    let provider = Provider::always(Answer::Json(200, fixture("title.json"))).await;
    let model = model_for(&provider, &[]).await;
    assert_eq!(
        whole_reply(&model, "chat-model").await,
        "\"Greeting and an offer of help\""
    );
}

#[tokio::test]
async fn refusals_before_the_stream_are_unavailable_at_once_with_status_and_message() {
    for (status, body, expected) in [
        (
            401,
            "error_401.json",
            "invalid_api_key: Incorrect API key provided",
        ),
        (
            429,
            "error_429.json",
            "rate_limit_exceeded: Rate limit reached",
        ),
        (
            500,
            "error_500.json",
            "server_error: The server had an error",
        ),
    ] {
        let provider = Provider::always(Answer::Json(status, fixture(body))).await;
        let model = model_for(&provider, &[]).await;
        let started = Instant::now();
        let error = start(&model, "chat-model").await.err().expect("refused");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{status}: at once"
        );
        let message = unavailable(error);
        assert!(
            message.contains(&format!("HTTP {status}")) && message.contains(expected),
            "{status}: {message}"
        );
        assert!(message.chars().count() < 400, "cut short: {message}");
    }
}

#[tokio::test]
async fn an_error_object_mid_stream_comes_after_the_deltas_before_it() {
    let provider = Provider::always(stream(fixture("openai_error_midstream.sse"))).await;
    let model = model_for(&provider, &[]).await;
    let reply = start(&model, "chat-model").await.expect("the reply starts");
    let (deltas, error) = read_reply(reply).await;
    assert_eq!(deltas.concat(), fixture_text("openai_error_midstream.sse"));
    let message = interrupted(error);
    assert!(
        message.contains("server_error: The server had an error while processing your request"),
        "{message}"
    );
}

#[tokio::test]
async fn a_connection_cut_mid_stream_is_an_interruption() {
    let body = fixture("openai_stream.sse");
    let text = fixture_text("openai_stream.sse");
    // Cut in the middle of the tenth event's JSON, and after it whole.
    let tenth = body
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w == b"\n\n")
        .nth(9)
        .map(|(at, _)| at)
        .expect("ten events");
    for cut in [tenth - 40, tenth + 2] {
        let part = body[..cut].to_vec();
        for answer in [
            Answer::Stream {
                body: part.clone(),
                delay: Duration::ZERO,
                end: End::Cut,
            },
            Answer::UntilClose(part.clone()),
        ] {
            let provider = Provider::always(answer).await;
            let model = model_for(&provider, &[]).await;
            let reply = start(&model, "chat-model").await.expect("the reply starts");
            let (deltas, error) = read_reply(reply).await;
            let got = deltas.concat();
            assert!(
                !got.is_empty() && text.starts_with(&got) && got.len() < text.len(),
                "a prefix: {got:?}"
            );
            let message = interrupted(error);
            assert!(
                message.contains("connection") || message.contains("ended before"),
                "{message}"
            );
        }
    }
}

#[tokio::test]
async fn silence_after_the_headers_is_an_interruption_after_the_idle_timeout() {
    let provider = Provider::always(Answer::Stream {
        body: Vec::new(),
        delay: Duration::ZERO,
        end: End::Hang,
    })
    .await;
    let model = model_for(&provider, &[("MODEL_IDLE_TIMEOUT_SECS", "1")]).await;
    let reply = start(&model, "chat-model").await.expect("headers came");
    let started = Instant::now();
    let (deltas, error) = read_reply(reply).await;
    let waited = started.elapsed();
    assert!(deltas.is_empty());
    let message = interrupted(error);
    assert!(message.contains("no data"), "{message}");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_provider_that_never_answers_is_unavailable_after_the_first_token_timeout() {
    let provider = Provider::always(Answer::Silent).await;
    let model = model_for(&provider, &[("MODEL_FIRST_TOKEN_TIMEOUT_SECS", "1")]).await;
    let started = Instant::now();
    let error = start(&model, "chat-model").await.err().expect("no answer");
    let waited = started.elapsed();
    let message = unavailable(error);
    assert!(message.contains("no response within"), "{message}");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert_eq!(provider.received().len(), 1, "the request was sent");
}

#[tokio::test]
async fn a_provider_that_cannot_be_reached_is_unavailable_at_once() {
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("address")
    };
    let model = model(&config(&format!("http://{closed}/v1"), &[]));
    let started = Instant::now();
    let error = start(&model, "chat-model").await.err().expect("refused");
    assert!(started.elapsed() < Duration::from_secs(2));
    let message = unavailable(error);
    assert!(message.contains("the request failed"), "{message}");
}

#[tokio::test]
async fn the_title_is_the_completions_content_from_the_title_model() {
    let provider = Provider::always(Answer::Json(200, fixture("title.json"))).await;
    let model = model_for(&provider, &[]).await;
    let title = tokio::time::timeout(BOUND, model.title("Hello there, can you help me?"))
        .await
        .expect("within the bound")
        .expect("a title");
    // As the model wrote it: the caller cleans it (`title::clean`).
    assert_eq!(title, "\"Greeting and an offer of help\"");
    assert_eq!(
        chat::title::clean(&title).as_deref(),
        Some("Greeting and an offer of help")
    );

    let request = &provider.received()[0];
    assert_eq!(request.path, "/v1/chat/completions");
    assert_eq!(request.body["model"], "gpt-4.1-nano");
    assert_eq!(request.body["stream"], false);
    let messages = request.body["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["role"], "system");
    assert!(
        messages[0]["content"]
            .as_str()
            .is_some_and(|p| p.contains("80 characters")),
        "{messages:?}"
    );
    assert_eq!(
        messages[1],
        json!({"role": "user", "content": "Hello there, can you help me?"})
    );

    // A refusal, or silence, is Unavailable; silence within the bound.
    let refusing = Provider::always(Answer::Json(500, fixture("error_500.json"))).await;
    let error = model_for(&refusing, &[])
        .await
        .title("Hi")
        .await
        .expect_err("refused");
    assert!(unavailable(error).contains("HTTP 500"));
    let silent = Provider::always(Answer::Silent).await;
    let model = model_for(&silent, &[("MODEL_FIRST_TOKEN_TIMEOUT_SECS", "1")]).await;
    let started = Instant::now();
    let error = tokio::time::timeout(BOUND, model.title("Hi"))
        .await
        .expect("within the bound")
        .expect_err("no answer");
    unavailable(error);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_provider_that_echoes_the_key_never_gets_it_into_an_error_or_debug_output() {
    // A misbehaving proxy that quotes the Authorization header back.
    let provider = Provider::start(|request| {
        let echoed = request
            .headers
            .get("authorization")
            .cloned()
            .unwrap_or_default();
        if request.body["model"] == "o4-mini" {
            let body =
                json!({"error": {"message": format!("bad credentials: {echoed}"), "type": "auth"}});
            Answer::Json(401, body.to_string().into_bytes())
        } else {
            let event = json!({"error": {"message": format!("upstream refused {echoed}")}});
            stream(format!("data: {event}\n\n").into_bytes())
        }
    })
    .await;
    let config = config(&provider.base_url(), &[]);
    let model = model(&config);
    assert!(!format!("{model:?}").contains(KEY));
    assert!(!format!("{config:?}").contains(KEY));

    let error = start(&model, "chat-model-reasoning")
        .await
        .err()
        .expect("refused");
    assert!(unavailable(error).contains("bad credentials: Bearer [redacted]"));

    let reply = start(&model, "chat-model").await.expect("the reply starts");
    let (_, error) = read_reply(reply).await;
    assert!(interrupted(error).contains("upstream refused Bearer [redacted]"));
}

#[tokio::test]
async fn one_connection_serves_reply_after_reply_and_the_title() {
    let provider = Provider::start(|request| {
        if request.streamed() {
            stream(fixture("openai_stream.sse"))
        } else {
            Answer::Json(200, fixture("title.json"))
        }
    })
    .await;
    let model = model_for(&provider, &[]).await;
    for _ in 0..2 {
        assert_eq!(
            whole_reply(&model, "chat-model").await,
            fixture_text("openai_stream.sse")
        );
    }
    let title = tokio::time::timeout(BOUND, model.title("Hello"))
        .await
        .expect("within the bound");
    assert!(title.is_ok(), "{title:?}");
    assert_eq!(provider.received().len(), 3);
    assert_eq!(provider.connections(), 1, "the connection was reused");
}

// ---------------------------------------------------------------------------
// `POST /api/chat` with the provider.

struct Route {
    _db: TestDb,
    app: TestApp,
    chat: Chat,
    ada: TestUser,
    provider: Provider,
}

/// The chat function as the environment configures it for `provider`.
async fn route(provider: Provider) -> Route {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "chat", &[]);
    let ada = app.user("ada@example.com", UserType::Regular).await;
    let chat = Chat::new(config(&provider.base_url(), &[])).expect("the chat function");
    Route {
        _db: db,
        app,
        chat,
        ada,
        provider,
    }
}

/// What the route answered: status, content type, body.
struct Answered {
    status: u16,
    content_type: String,
    body: String,
}

impl Route {
    /// Posts "Hello" to a new chat, and reads the answer to its end.
    async fn post(&self, chat_id: Uuid) -> Answered {
        let request = ApiRequest::new("POST", "/api/chat")
            .bearer(&self.ada.token)
            .json(&json!({
                "id": chat_id,
                "message": {"id": Uuid::new_v4(), "role": "user", "parts": [{"type": "text", "text": "Hello"}]},
                "selectedChatModel": "chat-model",
                "selectedVisibilityType": "private",
            }))
            .build(Shape::HttpV2);
        let chat = self.chat.clone();
        let response = tokio::time::timeout(
            BOUND,
            shared::runtime::run_with_cleanup(&self.app.state, request, |req, state| {
                chat.handle(req, state)
            }),
        )
        .await
        .expect("the route answers within the bound");
        let (parts, body) = response.into_parts();
        let bytes = tokio::time::timeout(BOUND, body.collect())
            .await
            .expect("the body ends within the bound")
            .expect("infallible")
            .to_bytes();
        Answered {
            status: parts.status.as_u16(),
            content_type: parts
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            body: String::from_utf8(bytes.to_vec()).expect("UTF-8"),
        }
    }

    /// The text of the assistant's saved message in `chat_id`, if any.
    async fn saved_reply(&self, chat_id: Uuid) -> Option<String> {
        let saved = message::get_by_chat_id(self.app.observer(), chat_id)
            .await
            .expect("messages");
        let reply = saved.iter().find(|m| m.role == "assistant")?;
        let parts = reply.parts.0.as_array().expect("parts");
        assert_eq!(parts[0], json!({"type": "step-start"}));
        assert_eq!(parts[1]["state"], "done");
        parts[1]["text"].as_str().map(str::to_owned)
    }
}

/// The UI message stream's chunks (`[DONE]` as a string).
fn ui_chunks(body: &str) -> Vec<Value> {
    assert!(body.ends_with("\n\n"), "whole events: {body}");
    body.split_terminator("\n\n")
        .map(|event| {
            let data = event.strip_prefix("data: ").expect("data events only");
            if data == "[DONE]" {
                json!("[DONE]")
            } else {
                serde_json::from_str(data).expect("JSON chunks")
            }
        })
        .collect()
}

fn text_of(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter(|c| c["type"] == "text-delta")
        .filter_map(|c| c["delta"].as_str())
        .collect()
}

#[tokio::test]
async fn the_route_answers_503_offline_when_the_provider_refuses() {
    let route = route(Provider::always(Answer::Json(500, fixture("error_500.json"))).await).await;
    let answered = route.post(Uuid::new_v4()).await;
    assert_eq!(answered.status, 503);
    let body: Value = serde_json::from_str(&answered.body).expect("JSON");
    assert_eq!(body, error_body("offline:chat"));
    assert_eq!(route.provider.received().len(), 1);
    assert_eq!(route.app.checked_out_after_settling().await, 0);
}

#[tokio::test]
async fn the_route_streams_the_providers_words_and_saves_them_with_the_title() {
    let route = route(
        Provider::start(|request| {
            if request.streamed() {
                // The words wait a little, so that the title (asked for
                // at the same time) is written before the reply ends.
                Answer::Stream {
                    body: fixture("openai_stream.sse"),
                    delay: Duration::from_millis(300),
                    end: End::Complete,
                }
            } else {
                Answer::Json(200, fixture("title.json"))
            }
        })
        .await,
    )
    .await;
    let chat_id = Uuid::new_v4();
    let answered = route.post(chat_id).await;
    assert_eq!(answered.status, 200, "{}", answered.body);
    assert_eq!(answered.content_type, "text/event-stream");

    let chunks = ui_chunks(&answered.body);
    let expected = fixture_text("openai_stream.sse");
    assert_eq!(text_of(&chunks), expected);
    let types: Vec<&str> = chunks.iter().filter_map(|c| c["type"].as_str()).collect();
    assert_eq!(types[..3], ["start", "start-step", "text-start"]);
    assert_eq!(
        types[types.len() - 3..],
        ["text-end", "finish-step", "finish"]
    );
    assert_eq!(chunks.last(), Some(&json!("[DONE]")));
    assert!(
        chunks
            .contains(&json!({"type": "data-chat-title", "data": "Greeting and an offer of help"})),
        "{chunks:?}"
    );

    assert_eq!(
        route.saved_reply(chat_id).await.as_deref(),
        Some(expected.as_str())
    );
    let saved = chats::get_by_id(route.app.observer(), chat_id)
        .await
        .expect("query")
        .expect("the chat");
    assert_eq!(saved.title, "Greeting and an offer of help");
    let received = route.provider.received();
    assert_eq!(received.len(), 2, "the reply and the title");
    let reply = received.iter().find(|r| r.streamed()).expect("the reply");
    assert_eq!(reply.body["model"], "gpt-4.1-mini");
    assert_eq!(
        reply.body["messages"][1],
        json!({"role": "user", "content": "Hello"})
    );
    assert_eq!(route.app.checked_out_after_settling().await, 0);
}

#[tokio::test]
async fn a_provider_error_mid_stream_reaches_the_client_and_the_partial_text_is_saved() {
    let route = route(
        Provider::start(|request| {
            if request.streamed() {
                stream(fixture("openai_error_midstream.sse"))
            } else {
                Answer::Json(200, fixture("title.json"))
            }
        })
        .await,
    )
    .await;
    let chat_id = Uuid::new_v4();
    let answered = route.post(chat_id).await;
    assert_eq!(answered.status, 200);

    let chunks = ui_chunks(&answered.body);
    let partial = fixture_text("openai_error_midstream.sse");
    assert_eq!(text_of(&chunks), partial);
    let tail: Vec<Value> = chunks[chunks.len() - 3..].to_vec();
    assert_eq!(tail[0]["type"], "text-end");
    assert_eq!(
        tail[1],
        json!({"type": "error", "errorText": "Oops, an error occurred!"})
    );
    assert_eq!(tail[2], json!("[DONE]"));
    assert!(!chunks.iter().any(|c| c["type"] == "finish"));

    assert_eq!(
        route.saved_reply(chat_id).await.as_deref(),
        Some(partial.as_str())
    );
    assert_eq!(route.app.checked_out_after_settling().await, 0);
}
