//! `DELETE /api/chat?id=`: one of the caller's chats goes, with its
//! messages, votes and stream ids (one statement), answered as the deleted
//! chat. As upstream, a chat that is not the caller's, or that does not
//! exist, is 403 `forbidden:chat`: the answer does not tell the two apart.

use http::Response;
use lambda_http::Request;
use shared::AppState;
use shared::db::queries::chat;
use shared::http::extract::uuid_param;
use shared::http::{ApiError, ApiResult, DbContext, Surface, connect_unconfirmed};

use crate::{ChatBody, forbidden, ui_stream};

/// Serves `DELETE /api/chat`.
pub async fn delete(request: &Request, state: &AppState) -> ApiResult<Response<ChatBody>> {
    let id = uuid_param(request, "id")?;
    // Two round trips: the caller and the chat's owner, then the deletion.
    let (caller, mut conn) = connect_unconfirmed(request, state, Surface::Chat).await?;
    let found = chat::owner_for_caller(&mut conn, caller.user_id(), id)
        .await
        .context("load the chat")?;
    let caller = caller.confirm(found.caller_found)?;
    let owned = found.answer == Some(caller.user_id);
    if !owned {
        return Err(forbidden());
    }
    let deleted = chat::delete_by_id(&mut conn, id)
        .await
        .context("delete the chat")?;
    tracing::info!(chat_id = %id, "chat deleted");
    ui_stream::json(&deleted).map_err(ApiError::internal)
}
