//! `POST /api/chat`: one turn of the conversation. Save the user's
//! message, stream the model's reply, save the reply.
//!
//! The order is what keeps connections right:
//!
//! 1. Validate the body ([`ChatRequest`]), then identify the caller, which
//!    hands over the invocation's one connection.
//! 2. On that connection, in two round trips (`queries::turn`): one read
//!    for the checks (the caller, the daily limit, the chat's owner and
//!    its messages), one write for the chat (created, with a title from the
//!    message's first words, if new; the caller's, or 403), the user's
//!    message and the stream's id. Then give the connection back: none is
//!    held while the model writes.
//! 3. Ask the model to start ([`prompt`] builds what it is asked). If it
//!    cannot, the answer is 503 `offline:chat`, as upstream's.
//! 4. Answer the stream's head and hand its body to a task that forwards
//!    the model's words as they come ([`reply`]). The task owns a
//!    [`StreamGuard`] whose end work ([`save`]) runs exactly once, whatever
//!    ends the stream: the end of the reply, a model error, the time limit,
//!    the client going away, or the function shutting down.
//!
//! [`prompt`]: crate::prompt
//! [`reply`]: crate::reply
//! [`save`]: crate::save

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use http::Response;
use lambda_http::{Request, RequestExt};
use shared::AppState;
use shared::db::Conn;
use shared::db::models;
use shared::db::queries::turn::{self as turns, NewTurn};
use shared::http::identity::{Identity, UserType};
use shared::http::{
    ApiError, ApiResult, DbContext, ErrorType, Surface, Unconfirmed, connect_unconfirmed,
};
use shared::runtime::StreamGuard;
use shared::runtime::deadline;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

use crate::model::{ModelError, Reply};
use crate::reply::{self, Produced, ReplyTask};
use crate::request::ChatRequest;
use crate::{Chat, ChatBody, forbidden, prompt, save, title, ui_stream};

/// The largest request body: a message of many parts is still far below.
pub const BODY_LIMIT: usize = 256 * 1024;

/// How many chunks may wait for a slow client before the model waits too.
const BUFFERED_CHUNKS: usize = 64;

/// Serves `POST /api/chat`.
pub async fn post(
    chat: Chat,
    request: &Request,
    state: &AppState,
) -> ApiResult<Response<ChatBody>> {
    let body = ChatRequest::from_request(request, BODY_LIMIT)?;
    let (caller, conn) = connect_unconfirmed(request, state, Surface::Chat).await?;
    let turn = Turn::new(&body);
    let begun = record_start(&chat, conn, caller, &body, &turn).await?;
    let reply = start_model(&chat, prompt::build(&begun.history, &body)).await?;

    let produced = Arc::new(Mutex::new(Produced::default()));
    let guard = StreamGuard::new(state, "chat").on_end({
        let produced = produced.clone();
        let turn = turn.clone();
        move |end, state| save::reply(state, turn, produced, end)
    });
    let (sink, receiver) = mpsc::channel(BUFFERED_CHUNKS);
    let title = begun.new_chat.then(|| {
        let text = body.message.text.clone();
        let chat = chat.clone();
        async move { chat.model().title(&text).await }.boxed()
    });
    let task = ReplyTask {
        assistant_message_id: turn.assistant_message_id,
        reply,
        title,
        sink,
        guard,
        produced,
        deadline: stream_deadline(request, chat.config().stream_timeout),
        shutdown: state.db.shutting_down().boxed(),
    };
    // The task keeps the invocation's span: its lines carry the request id.
    tokio::spawn(reply::run(task).in_current_span());
    Ok(ui_stream::response(receiver))
}

/// The ids and titles of one turn, fixed before the stream starts.
#[derive(Debug, Clone)]
pub(crate) struct Turn {
    pub(crate) chat_id: Uuid,
    pub(crate) user_message_id: Uuid,
    pub(crate) assistant_message_id: Uuid,
    pub(crate) stream_id: Uuid,
    /// The title the chat is created with: the message's first words.
    pub(crate) title: String,
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
}

/// What the database held when the turn began.
struct Begun {
    /// The chat's messages before this turn (the resent message included).
    history: Vec<models::Message>,
    /// The chat was created by this turn.
    new_chat: bool,
}

/// The user's messages allowed in 24 hours, by the caller's type.
fn daily_limit(chat: &Chat, caller: &Identity) -> u32 {
    match caller.user_type {
        UserType::Guest => chat.config().guest_messages_per_day,
        UserType::Regular => chat.config().regular_messages_per_day,
    }
}

/// Step 2 of the module docs, in two statements (one read, one write:
/// `queries::turn`), then gives the connection back.
async fn record_start(
    chat: &Chat,
    mut conn: Conn,
    caller: Unconfirmed,
    body: &ChatRequest,
    turn: &Turn,
) -> ApiResult<Begun> {
    let found = turns::start_for_caller(&mut conn, caller.user_id(), body.chat_id, 24)
        .await
        .context("load the caller's day and the chat")?;
    let caller = caller.confirm(found.caller_found)?;
    let start = found.answer;
    // The user's messages of the last 24 hours, this one not included yet:
    // the limit is how many a day, so the last allowed one is the limit-th.
    if start.sent >= i64::from(daily_limit(chat, &caller)) {
        return Err(ApiError::new(ErrorType::RateLimit, Surface::Chat));
    }
    if start.owner.is_some_and(|owner| owner != caller.user_id) {
        return Err(forbidden());
    }
    let new_chat = start.owner.is_none();
    let parts = serde_json::Value::Array(body.message.parts.clone());
    let new = NewTurn {
        chat_id: body.chat_id,
        user_id: caller.user_id,
        new_chat: new_chat.then_some((turn.title.as_str(), body.visibility)),
        user_message: (!turn.resent(&start.history)).then_some((turn.user_message_id, &parts)),
        stream_id: turn.stream_id,
        at: models::now(),
    };
    let recorded = turns::record_start(&mut conn, &new)
        .await
        .context("record the turn's start")?;
    if !recorded {
        // Created by someone else since the read.
        return Err(forbidden());
    }
    // The model may take minutes: the connection goes back now, committed.
    conn.commit().await.context("end the turn's start")?;
    Ok(Begun {
        history: start.history,
        new_chat,
    })
}

/// Step 3: the model's reply, once it has started.
async fn start_model(chat: &Chat, prompt: crate::model::Prompt) -> ApiResult<Reply> {
    // The model bounds its own start (and says why it gave up); this is
    // the backstop, a little later.
    let bound = chat.config().first_token_timeout + Duration::from_secs(1);
    match tokio::time::timeout(bound, chat.model().reply(prompt)).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(error)) => Err(offline(error)),
        Err(_) => Err(offline(ModelError::Unavailable("no answer in time".into()))),
    }
}

fn offline(error: ModelError) -> ApiError {
    tracing::error!(%error, "the model could not start a reply");
    ApiError::new(ErrorType::Offline, Surface::Chat).with_source(error)
}

/// When the stream must end: the configured bound, or what Lambda leaves
/// of the invocation (less the margin to save and close), if sooner.
fn stream_deadline(request: &Request, bound: Duration) -> Instant {
    let deadline_ms = request.lambda_context_ref().map_or(0, |c| c.deadline);
    Instant::now() + deadline::budget(deadline_ms, bound)
}
