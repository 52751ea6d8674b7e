//! `GET /api/chat/{id}/stream`: resuming a stream, as upstream does when it
//! has no store of live streams.
//!
//! Upstream keeps live streams in Redis when it has one, so a reloaded page
//! can pick up a reply mid-way. Writing every chunk somewhere while it
//! streams would mean holding a connection for the whole reply, which this
//! backend does not do; so it answers as upstream does without that store:
//! if the chat's last message is the assistant's and at most 15 seconds
//! old (the reply finished while the page reloaded), the stream carries it
//! as a transient `data-appendMessage` part; otherwise the stream is empty.

use chrono::Duration;
use http::Response;
use lambda_http::Request;
use shared::AppState;
use shared::db::models;
use shared::db::queries::{chat, message, stream};
use shared::http::{ApiError, ApiResult, DbContext, ErrorType, Surface, connect_as_caller};
use uuid::Uuid;

use crate::ui_stream::{self, Chunk};
use crate::{ChatBody, forbidden, not_found};

/// How recent a finished reply must be to be handed to a resuming client.
pub const RECENT: Duration = Duration::seconds(15);

/// Serves `GET /api/chat/{id}/stream`.
pub async fn resume(
    request: &Request,
    state: &AppState,
    chat_id: &str,
) -> ApiResult<Response<ChatBody>> {
    let requested_at = models::now();
    // Upstream's chat lookup fails on an id that is not a UUID, which it
    // answers as "not found".
    let chat_id = Uuid::parse_str(chat_id).map_err(|_| not_found())?;
    let (caller, mut conn) = connect_as_caller(request, state, Surface::Chat).await?;
    let chat = chat::get_by_id(&mut conn, chat_id)
        .await
        .context("load the chat")?
        .ok_or_else(not_found)?;
    if chat.visibility == "private" && chat.user_id != caller.user_id {
        return Err(forbidden());
    }
    if stream::ids_by_chat_id(&mut conn, chat_id)
        .await
        .context("load the chat's streams")?
        .is_empty()
    {
        return Err(ApiError::new(ErrorType::NotFound, Surface::Stream));
    }
    let messages = message::get_by_chat_id(&mut conn, chat_id)
        .await
        .context("load the chat's messages")?;
    let recent_reply = messages
        .last()
        .filter(|m| m.role == "assistant" && requested_at - m.created_at <= RECENT);
    let Some(reply) = recent_reply else {
        return Ok(ui_stream::complete(&[]));
    };
    let data = serde_json::to_string(reply).map_err(ApiError::internal)?;
    Ok(ui_stream::complete(&[Chunk::AppendMessage {
        data,
        transient: true,
    }]))
}
