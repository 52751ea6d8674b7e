//! `/api/suggestions`, as the upstream chatbot serves it
//! (`app/(chat)/api/suggestions/route.ts`):
//!
//! - `GET /api/suggestions?documentId=`: the suggestions on one of the
//!   caller's documents, oldest first (`[]` when there are none).
//!
//! Upstream's codes and messages are kept, and its order of checks: the
//! parameter, then the caller (`unauthorized:suggestions`), then
//! ownership (`forbidden:api`, when the first suggestion is someone
//! else's). Where we differ, on purpose:
//!
//! - a document that exists and belongs to someone else is 403
//!   `forbidden:api` even when it has no suggestions: upstream's `[]` there
//!   would tell the caller something about another user's document. A
//!   document the caller owns, or one that does not exist, with no
//!   suggestions is still `[]`;
//! - a `documentId` that is not a UUID is 400 `bad_request:api`;
//! - other methods are 405.

use http::{Method, Response};
use lambda_http::{Body, Request};
use shared::AppState;
use shared::db::queries::suggestion;
use shared::http::extract::uuid_param;
use shared::http::{
    ApiError, ApiResult, DbContext, ErrorType, Surface, connect_unconfirmed, response,
};

/// Serves one request to `/api/suggestions`.
pub async fn handle(request: Request, state: AppState) -> ApiResult<Response<Body>> {
    match *request.method() {
        Method::GET => list(&request, &state).await,
        _ => Err(ApiError::method_not_allowed("GET")),
    }
}

async fn list(request: &Request, state: &AppState) -> ApiResult<Response<Body>> {
    let document_id = uuid_param(request, "documentId")?;
    // One round trip: the caller, the document's owner and its suggestions.
    let (caller, mut conn) = connect_unconfirmed(request, state, Surface::Suggestions).await?;
    let found = suggestion::for_caller(&mut conn, caller.user_id(), document_id)
        .await
        .context("load the document's suggestions")?;
    let caller = caller.confirm(found.caller_found)?;
    let forbidden = || ApiError::new(ErrorType::Forbidden, Surface::Api);
    // The owner of a document is the owner of its first version, as the
    // document route decides it.
    if found
        .answer
        .owner
        .is_some_and(|owner| owner != caller.user_id)
    {
        return Err(forbidden());
    }
    let suggestions = found.answer.suggestions;
    // Upstream's own check. Suggestions carry the id of whoever asked for
    // them, who need not be the document's owner.
    if suggestions
        .first()
        .is_some_and(|first| first.user_id != caller.user_id)
    {
        return Err(forbidden());
    }
    response::ok(&suggestions)
}
