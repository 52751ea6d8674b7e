//! `/api/vote`, as the upstream chatbot serves it
//! (`app/(chat)/api/vote/route.ts`):
//!
//! - `GET /api/vote?chatId=`: the votes on the messages of one of the
//!   caller's chats, as `[{chatId, messageId, isUpvoted}]`;
//! - `PATCH /api/vote` with `{chatId, messageId, type: "up" | "down"}`:
//!   records the caller's vote on a message of their chat (or changes it),
//!   answering the text `Message voted`.
//!
//! Upstream's order of checks, codes and messages are kept: parameters,
//! then the caller (`unauthorized:vote`), then the chat (`not_found:chat`
//! on GET but `not_found:vote` on PATCH, as upstream), then its owner
//! (`forbidden:vote`). Where we differ, on purpose:
//!
//! - ids that are not UUIDs, bodies that are not JSON objects, fields of
//!   the wrong type and a `type` other than `up` or `down` are 400
//!   `bad_request:api` with a cause (upstream would reach the database
//!   with them, and fail there);
//! - a vote on a message that is not in the chat, or does not exist, is
//!   404 `not_found:vote` and writes nothing (upstream's insert would fail
//!   on its foreign key, or record a vote filed under the wrong chat);
//! - bodies over [`BODY_LIMIT`] are 413, other methods 405.

use http::{Method, Response, StatusCode};
use lambda_http::{Body, Request};
use serde::Deserialize;
use shared::AppState;
use shared::db::queries::chat;
use shared::db::queries::vote::{self, VoteType};
use shared::http::extract::{json_body, parse_uuid, uuid_param};
use shared::http::{
    ApiError, ApiResult, DbContext, ErrorType, Surface, connect_unconfirmed, response,
};
use uuid::Uuid;

/// The largest PATCH body accepted: two ids and a word, with room to spare
/// for the fields clients add and we ignore.
pub const BODY_LIMIT: usize = 16 * 1024;

/// What PATCH answers, as upstream (`new Response("Message voted")`).
pub const VOTED: &str = "Message voted";

/// Serves one request to `/api/vote`.
pub async fn handle(request: Request, state: AppState) -> ApiResult<Response<Body>> {
    match *request.method() {
        Method::GET => list(&request, &state).await,
        Method::PATCH => record_vote(&request, &state).await,
        _ => Err(ApiError::method_not_allowed("GET, PATCH")),
    }
}

async fn list(request: &Request, state: &AppState) -> ApiResult<Response<Body>> {
    let chat_id = uuid_param(request, "chatId")?;
    // One round trip: the caller, the chat's owner and its votes.
    let (caller, mut conn) = connect_unconfirmed(request, state, Surface::Vote).await?;
    let found = vote::for_caller(&mut conn, caller.user_id(), chat_id)
        .await
        .context("load the chat's votes")?;
    let caller = caller.confirm(found.caller_found)?;
    let chat = found
        .answer
        .ok_or_else(|| ApiError::new(ErrorType::NotFound, Surface::Chat))?;
    if chat.owner != caller.user_id {
        return Err(ApiError::new(ErrorType::Forbidden, Surface::Vote));
    }
    response::ok(&chat.votes)
}

async fn record_vote(request: &Request, state: &AppState) -> ApiResult<Response<Body>> {
    let VoteRequest {
        chat_id,
        message_id,
        vote,
    } = vote_request(request)?;
    // Two round trips: the caller and the chat's owner, then the vote.
    let (caller, mut conn) = connect_unconfirmed(request, state, Surface::Vote).await?;
    let not_found = || ApiError::new(ErrorType::NotFound, Surface::Vote);
    let found = chat::owner_for_caller(&mut conn, caller.user_id(), chat_id)
        .await
        .context("load the chat")?;
    let caller = caller.confirm(found.caller_found)?;
    if found.answer.ok_or_else(not_found)? != caller.user_id {
        return Err(ApiError::new(ErrorType::Forbidden, Surface::Vote));
    }
    // The chat's owner could otherwise file a vote on any message (someone
    // else's included) under their own chat; and a message that does not
    // exist would fail on the foreign key, as a 500.
    if vote::vote_in_chat(&mut conn, chat_id, message_id, vote)
        .await
        .context("record the vote")?
        .is_none()
    {
        return Err(not_found().with_cause("The message is not in this chat."));
    }
    Ok(response::text(StatusCode::OK, VOTED))
}

struct VoteRequest {
    chat_id: Uuid,
    message_id: Uuid,
    vote: VoteType,
}

/// The PATCH body as sent. Every field is optional here so that a missing
/// one gets upstream's message rather than serde's.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VoteBody {
    chat_id: Option<String>,
    message_id: Option<String>,
    #[serde(rename = "type")]
    vote_type: Option<String>,
}

fn vote_request(request: &Request) -> ApiResult<VoteRequest> {
    let body: VoteBody = json_body(request, BODY_LIMIT)?;
    // Upstream tests `!chatId || !messageId || !type`: empty strings and
    // nulls are missing too.
    let given = |value: Option<String>| value.filter(|v| !v.is_empty());
    let (Some(chat_id), Some(message_id), Some(vote_type)) = (
        given(body.chat_id),
        given(body.message_id),
        given(body.vote_type),
    ) else {
        return Err(ApiError::bad_request(
            "Parameters chatId, messageId, and type are required.",
        ));
    };
    let chat_id = parse_uuid(&chat_id, "chatId")?;
    let message_id = parse_uuid(&message_id, "messageId")?;
    let vote = match vote_type.as_str() {
        "up" => VoteType::Up,
        "down" => VoteType::Down,
        _ => {
            return Err(ApiError::bad_request(
                r#"Parameter type must be "up" or "down"."#,
            ));
        }
    };
    Ok(VoteRequest {
        chat_id,
        message_id,
        vote,
    })
}
