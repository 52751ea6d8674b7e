//! `/api/history`, as the upstream chatbot serves it
//! (`app/(chat)/api/history/route.ts`):
//!
//! - `GET /api/history?limit=&starting_after=&ending_before=`: a page of the
//!   caller's chats, newest first, as `{chats, hasMore}`;
//! - `DELETE /api/history`: deletes all the caller's chats (with their
//!   messages, votes and stream ids), answering `{deletedCount}`.
//!
//! This is the model the other functions follow: a `handle` that routes by
//! method, small functions per route that validate, take the
//! connection, call the queries with it, and answer JSON. Everything else
//! (the pool, cleanup, errors, identity) comes from `shared`.

use http::{Method, Response};
use lambda_http::{Body, Request};
use serde::Serialize;
use shared::AppState;
use shared::db::queries::chat::{self, Cursor};
use shared::http::extract::{parse_uuid, query_param};
use shared::http::{
    ApiError, ApiResult, DbContext, Surface, connect_as_caller, connect_unconfirmed, response,
};

/// Chats per page when the client does not say (upstream's default).
pub const DEFAULT_LIMIT: u32 = 10;

/// The most chats one page may ask for (upstream sets no bound).
pub const MAX_LIMIT: u32 = 100;

/// Serves one request to `/api/history`.
pub async fn handle(request: Request, state: AppState) -> ApiResult<Response<Body>> {
    match *request.method() {
        Method::GET => list(&request, &state).await,
        Method::DELETE => delete_all(&request, &state).await,
        _ => Err(ApiError::method_not_allowed("GET, DELETE")),
    }
}

async fn list(request: &Request, state: &AppState) -> ApiResult<Response<Body>> {
    // Upstream checks the cursors before it checks who is asking.
    let cursor = cursor(request)?;
    let limit = limit(request)?;
    // One round trip: the page's statement also confirms the caller.
    let (caller, mut conn) = connect_unconfirmed(request, state, Surface::Chat).await?;
    let found = chat::page_for_caller(&mut conn, caller.user_id(), limit, cursor)
        .await
        .context("load a page of the caller's chats")?;
    caller.confirm(found.caller_found)?;
    let page = found
        .answer
        .ok_or_else(|| ApiError::bad_request("The chat given as the page cursor was not found."))?;
    response::ok(&page)
}

async fn delete_all(request: &Request, state: &AppState) -> ApiResult<Response<Body>> {
    let (caller, mut conn) = connect_as_caller(request, state, Surface::Chat).await?;
    let deleted_count = chat::delete_all_by_user_id(&mut conn, caller.user_id)
        .await
        .context("delete the caller's chats")?;
    tracing::info!(deleted_count, "deleted the caller's chats");
    response::ok(&Deleted { deleted_count })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Deleted {
    deleted_count: i64,
}

fn cursor(request: &Request) -> ApiResult<Cursor> {
    match (
        query_param(request, "starting_after"),
        query_param(request, "ending_before"),
    ) {
        (Some(_), Some(_)) => Err(ApiError::bad_request(
            "Only one of starting_after or ending_before can be provided.",
        )),
        (Some(id), None) => Ok(Cursor::StartingAfter(parse_uuid(&id, "starting_after")?)),
        (None, Some(id)) => Ok(Cursor::EndingBefore(parse_uuid(&id, "ending_before")?)),
        (None, None) => Ok(Cursor::Newest),
    }
}

fn limit(request: &Request) -> ApiResult<u32> {
    let Some(raw) = query_param(request, "limit") else {
        return Ok(DEFAULT_LIMIT);
    };
    raw.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Parameter limit must be a whole number from 1 to {MAX_LIMIT}."
            ))
        })
}
