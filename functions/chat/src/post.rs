//! `POST /api/chat`: save the user's message, stream the model's reply,
//! save the reply.
//!
//! The order is what keeps connections right:
//!
//! 1. Validate the body, then authenticate (which hands over the
//!    invocation's one connection).
//! 2. On that connection, in one transaction: the daily limit, the chat
//!    (created, with a title from the message's first words, if new; the
//!    caller's, or 403), the user's message, the stream's id. Commit, and
//!    give the connection back: none is held while the model writes.
//! 3. Ask the model to start. If it cannot, the answer is 503
//!    `offline:chat`, as upstream's.
//! 4. Answer the stream's head and hand its body to a task that forwards
//!    the model's words as they come. The task owns a [`StreamGuard`]
//!    whose end work (saving the reply and the title) runs exactly once,
//!    whatever ends the stream: the end of the reply, a model error, the
//!    time limit, the client going away, or the function shutting down
//!    (then what was written so far is saved, and the model is no longer
//!    asked for more; on shutdown the client is told, in an error chunk,
//!    before the pool closes). When the reply
//!    ends normally, it is saved before the stream's last chunks go out,
//!    so a client that reads the chat right after sees it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::{BoxFuture, Fuse, FusedFuture, FutureExt};
use http::Response;
use lambda_http::{Request, RequestExt};
use serde_json::json;
use shared::AppState;
use shared::db::queries::message::NewMessage;
use shared::db::queries::{chat as chats, message, stream};
use shared::db::{Db, StreamEnd, StreamGuard};
use shared::http::identity::UserType;
use shared::http::{ApiError, ApiResult, ErrorType, Surface, authenticate};
use shared::models;
use sqlx::Connection;
use tokio::sync::mpsc;
use tokio::time::Instant;
use uuid::Uuid;

use crate::model::{ModelError, Prompt, PromptMessage, Reply, Role};
use crate::request::ChatRequest;
use crate::ui_stream::{self, Chunk};
use crate::{Chat, ChatBody, forbidden, title};

/// The largest request body: a message of many parts is still far below.
pub const BODY_LIMIT: usize = 256 * 1024;

/// How many chunks may wait for a slow client before the model waits too.
const BUFFERED_CHUNKS: usize = 64;

/// The id of the reply's one text part.
const TEXT_PART: &str = "text-1";

/// What the client sees when the model fails mid-reply (upstream's
/// `onError`).
pub const ERROR_TEXT: &str = "Oops, an error occurred!";

/// How long a finished reply waits for a new chat's title still being
/// written.
const TITLE_GRACE: Duration = Duration::from_secs(2);

/// What the client sees when the reply ran out of time.
pub const TIMEOUT_TEXT: &str = "The reply took too long and was stopped.";

/// What the client sees when the function stops mid-reply (Lambda retires
/// the environment): the words so far are saved, and it may ask again.
pub const SHUTDOWN_TEXT: &str =
    "The server was restarting and the reply was cut short. Please try again.";

/// Time kept back from Lambda's deadline to save the reply and end the
/// stream cleanly.
const LAMBDA_DEADLINE_MARGIN: Duration = Duration::from_secs(2);

/// The instructions the model gets (upstream's `regularPrompt`, in spirit).
const SYSTEM_PROMPT: &str =
    "You are a friendly assistant! Keep your responses concise and helpful.";

/// Serves `POST /api/chat`.
pub async fn post(
    chat: Chat,
    request: &Request,
    state: &AppState,
) -> ApiResult<Response<ChatBody>> {
    let body = ChatRequest::from_request(request, BODY_LIMIT)?;
    let (caller, mut conn) = authenticate(request, state, Surface::Chat).await?;

    let limit = match caller.user_type {
        UserType::Guest => chat.config().guest_messages_per_day,
        UserType::Regular => chat.config().regular_messages_per_day,
    };
    let turn_started = Turn::new(&body);
    let mut tx = conn.begin().await?;
    // The user's messages of the last 24 hours, this one not included yet:
    // the limit is how many a day, so the last allowed one is the limit-th.
    let sent = message::count_by_user_id(&mut *tx, caller.user_id, 24).await?;
    if sent >= i64::from(limit) {
        return Err(ApiError::new(ErrorType::RateLimit, Surface::Chat));
    }
    let (history, new_chat) = match chats::get_by_id(&mut *tx, body.chat_id).await? {
        Some(existing) if existing.user_id != caller.user_id => return Err(forbidden()),
        Some(_) => (
            message::get_by_chat_id(&mut *tx, body.chat_id).await?,
            false,
        ),
        None => {
            chats::save(
                &mut *tx,
                body.chat_id,
                caller.user_id,
                &turn_started.title,
                body.visibility,
            )
            .await?;
            (Vec::new(), true)
        }
    };
    if !turn_started.resent(&history) {
        message::save_all(&mut *tx, &[turn_started.user_message(&body)]).await?;
    }
    stream::create(&mut *tx, turn_started.stream_id, body.chat_id).await?;
    tx.commit().await?;
    // The model may take minutes; the connection goes back now.
    conn.finish().await?;

    let prompt = prompt(&history, &body);
    // The model bounds its own start (and says why it gave up); this is
    // the backstop, a little later.
    let first_token_timeout = chat.config().first_token_timeout + Duration::from_secs(1);
    let reply = match tokio::time::timeout(first_token_timeout, chat.model().reply(prompt)).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(error)) => return Err(offline(error)),
        Err(_) => return Err(offline(ModelError::Unavailable("no answer in time".into()))),
    };

    let deadline = stream_deadline(request, chat.config().stream_timeout);
    let produced = Arc::new(Mutex::new(Produced::default()));
    let guard = StreamGuard::new(&state.db, "chat").on_end({
        let db = state.db.clone();
        let produced = produced.clone();
        let turn = turn_started.clone();
        move |end| save_reply(db, turn, produced, end)
    });
    let (sink, receiver) = mpsc::channel(BUFFERED_CHUNKS);
    let shutdown = state.db.shutting_down().boxed();
    let title = new_chat.then(|| {
        let text = body.message.text.clone();
        let chat = chat.clone();
        async move { chat.model().title(&text).await }.boxed()
    });
    tokio::spawn(stream_reply(StreamTask {
        turn: turn_started,
        reply,
        title,
        sink,
        guard,
        produced,
        deadline,
        shutdown,
    }));
    Ok(ui_stream::response(receiver))
}

/// The ids and titles of one exchange, fixed before the stream starts.
#[derive(Debug, Clone)]
struct Turn {
    chat_id: Uuid,
    user_message_id: Uuid,
    assistant_message_id: Uuid,
    stream_id: Uuid,
    /// The title the chat is created with: the message's first words.
    title: String,
}

impl Turn {
    fn new(body: &ChatRequest) -> Self {
        Self {
            chat_id: body.chat_id,
            user_message_id: body.message.id,
            assistant_message_id: Uuid::new_v4(),
            stream_id: Uuid::new_v4(),
            title: title::from_text(&body.message.text),
        }
    }

    /// Whether the user's message is already saved: a client retrying a
    /// request whose answer it lost sends the same message again.
    fn resent(&self, history: &[models::Message]) -> bool {
        history.iter().any(|m| m.id == self.user_message_id)
    }

    fn user_message(&self, body: &ChatRequest) -> NewMessage {
        NewMessage {
            id: self.user_message_id,
            chat_id: self.chat_id,
            role: "user".to_owned(),
            parts: serde_json::Value::Array(body.message.parts.clone()),
            attachments: json!([]),
            created_at: models::now(),
        }
    }
}

/// The conversation for the model: the system prompt, the chat's text so
/// far, and the new message.
fn prompt(history: &[models::Message], body: &ChatRequest) -> Prompt {
    let mut messages = vec![PromptMessage {
        role: Role::System,
        text: SYSTEM_PROMPT.to_owned(),
    }];
    for saved in history.iter().filter(|m| m.id != body.message.id) {
        let role = match saved.role.as_str() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            _ => continue,
        };
        let text = text_of(&saved.parts.0);
        if !text.is_empty() {
            messages.push(PromptMessage { role, text });
        }
    }
    messages.push(PromptMessage {
        role: Role::User,
        text: body.message.text.clone(),
    });
    Prompt {
        selected_model: body.selected_model.clone(),
        messages,
    }
}

/// The text parts of saved message parts, joined.
fn text_of(parts: &serde_json::Value) -> String {
    parts
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .filter(|p| p["type"] == "text")
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

fn offline(error: ModelError) -> ApiError {
    tracing::error!(%error, "the model could not start a reply");
    ApiError::new(ErrorType::Offline, Surface::Chat).with_source(error)
}

/// When the stream must end: the configured bound, or what Lambda leaves
/// of the invocation (less a margin to save and close), if sooner.
fn stream_deadline(request: &Request, bound: Duration) -> Instant {
    let now = Instant::now();
    let deadline_ms = request.lambda_context_ref().map_or(0, |c| c.deadline);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    // A deadline already past is none (see shared's cleanup wrapper).
    if deadline_ms <= now_ms {
        return now + bound;
    }
    let left = Duration::from_millis(deadline_ms - now_ms).saturating_sub(LAMBDA_DEADLINE_MARGIN);
    now + bound.min(left)
}

/// What the stream produced, for the end work to save.
#[derive(Debug, Default)]
struct Produced {
    text: String,
    title: Option<String>,
}

struct StreamTask {
    turn: Turn,
    reply: Reply,
    title: Option<BoxFuture<'static, Result<String, ModelError>>>,
    sink: mpsc::Sender<Bytes>,
    guard: StreamGuard,
    produced: Arc<Mutex<Produced>>,
    deadline: Instant,
    /// Completes when the process begins to shut down.
    shutdown: BoxFuture<'static, ()>,
}

/// How the reply ended.
enum Ending {
    Completed,
    Failed(&'static str),
    ClientGone,
}

/// Forwards the model's words to the client, then ends the stream (see
/// the module docs).
async fn stream_reply(task: StreamTask) {
    let StreamTask {
        turn,
        mut reply,
        title,
        sink,
        mut guard,
        produced,
        deadline,
        mut shutdown,
    } = task;
    // A send fails when the client went away (the body was dropped) or
    // stayed too slow past the deadline.
    let send = |chunk: Bytes| {
        let sink = sink.clone();
        async move {
            matches!(
                tokio::time::timeout_at(deadline, sink.send(chunk)).await,
                Ok(Ok(()))
            )
        }
    };
    let mut title = match title {
        Some(title) => title.fuse(),
        None => Fuse::terminated(),
    };
    let message_id = turn.assistant_message_id.to_string();
    let mut ending = Ending::Completed;
    for chunk in [
        Chunk::Start {
            message_id: &message_id,
        },
        Chunk::StartStep,
        Chunk::TextStart { id: TEXT_PART },
    ] {
        if !send(chunk.to_sse()).await {
            ending = Ending::ClientGone;
            break;
        }
    }

    while matches!(ending, Ending::Completed) {
        tokio::select! {
            // The title first when both are ready: the stream's bytes are
            // then the same every time for the same reply.
            biased;
            // A new chat's title, when the model has written it.
            written = &mut title, if !title.is_terminated() => {
                if let Some(name) = written.ok().and_then(|t| title::clean(&t)) {
                    let chunk = Chunk::ChatTitle { data: &name }.to_sse();
                    lock(&produced).title = Some(name);
                    if !send(chunk).await {
                        ending = Ending::ClientGone;
                    }
                }
            }
            // SIGTERM: end the reply here, in order, so that the words the
            // client has are saved before the pool closes.
            () = &mut shutdown => {
                tracing::warn!("the function is shutting down: ending the reply where it is");
                ending = Ending::Failed(SHUTDOWN_TEXT);
            }
            next = tokio::time::timeout_at(deadline, reply.next()) => match next {
                Ok(Some(Ok(delta))) => {
                    lock(&produced).text.push_str(&delta);
                    let chunk = Chunk::TextDelta { id: TEXT_PART, delta: &delta }.to_sse();
                    if !send(chunk).await {
                        ending = Ending::ClientGone;
                    }
                }
                Ok(None) => break,
                Ok(Some(Err(error))) => {
                    tracing::error!(%error, "the model's reply broke off");
                    ending = Ending::Failed(ERROR_TEXT);
                }
                Err(_) => {
                    tracing::warn!("the reply reached its time limit");
                    ending = Ending::Failed(TIMEOUT_TEXT);
                }
            }
        }
    }
    // No more words are wanted: stop the model (for a provider, this
    // closes its connection, which stops the generation it bills).
    drop(reply);
    // A short reply can end before the model's title call returns; a new
    // chat's title is worth a short wait.
    if matches!(ending, Ending::Completed)
        && !title.is_terminated()
        && let Ok(Ok(written)) =
            tokio::time::timeout_at(deadline.min(Instant::now() + TITLE_GRACE), &mut title).await
        && let Some(name) = title::clean(&written)
    {
        let chunk = Chunk::ChatTitle { data: &name }.to_sse();
        lock(&produced).title = Some(name);
        if !send(chunk).await {
            ending = Ending::ClientGone;
        }
    }
    drop(title);

    let (end, closing) = match ending {
        Ending::Completed => (
            StreamEnd::Completed,
            vec![
                Chunk::TextEnd { id: TEXT_PART },
                Chunk::FinishStep,
                Chunk::Finish,
            ],
        ),
        Ending::Failed(text) => (
            StreamEnd::Failed,
            vec![
                Chunk::TextEnd { id: TEXT_PART },
                Chunk::Error { error_text: text },
            ],
        ),
        Ending::ClientGone => (StreamEnd::Abandoned, Vec::new()),
    };
    // The reply is saved before the last chunks go out.
    guard.finish(end).await;
    if end == StreamEnd::Abandoned {
        return;
    }
    for chunk in closing {
        if !send(chunk.to_sse()).await {
            return;
        }
    }
    let _ = send(Bytes::from_static(ui_stream::DONE)).await;
}

fn lock(produced: &Mutex<Produced>) -> std::sync::MutexGuard<'_, Produced> {
    // A panic while holding it cannot leave it half-written: the fields are
    // replaced or appended to whole.
    produced.lock().unwrap_or_else(|e| e.into_inner())
}

/// The stream's end work: save what the model wrote, and a better title.
async fn save_reply(db: Db, turn: Turn, produced: Arc<Mutex<Produced>>, end: StreamEnd) {
    let (text, new_title) = {
        let produced = lock(&produced);
        (produced.text.clone(), produced.title.clone())
    };
    let result: sqlx::Result<()> = async {
        let mut conn = db.session().await?;
        if !text.is_empty() {
            // The message as the AI SDK assembles it from the stream, which
            // is what upstream's `onFinish` saves: the step, the text, and
            // the title part if one was sent.
            let mut parts = vec![
                json!({"type": "step-start"}),
                json!({"type": "text", "text": text, "state": "done"}),
            ];
            if let Some(title) = &new_title {
                parts.push(json!({"type": "data-chat-title", "data": title}));
            }
            let reply = NewMessage {
                id: turn.assistant_message_id,
                chat_id: turn.chat_id,
                role: "assistant".to_owned(),
                parts: serde_json::Value::Array(parts),
                attachments: json!([]),
                created_at: models::now(),
            };
            message::save_all(&mut *conn, &[reply]).await?;
        }
        if let Some(new_title) = new_title.filter(|t| *t != turn.title) {
            chats::update_title(&mut *conn, turn.chat_id, &new_title).await?;
        }
        conn.finish().await
    }
    .await;
    match result {
        Ok(()) => tracing::info!(?end, chars = text.len(), "reply saved"),
        Err(error) => tracing::error!(%error, ?end, "the reply could not be saved"),
    }
}
