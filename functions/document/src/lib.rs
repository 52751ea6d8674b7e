//! `/api/document`, as the upstream chatbot serves it
//! (`app/(chat)/api/document/route.ts`). A document is a list of versions
//! sharing an id; its owner is the owner of its first version.
//!
//! - `GET /api/document?id=`: every version of one of the caller's
//!   documents, oldest first;
//! - `POST /api/document?id=` with `{title, content, kind}`: saves a new
//!   version (the first one creates the document), answering
//!   `[savedVersion]` (upstream answers drizzle's `.returning()` array);
//! - `DELETE /api/document?id=&timestamp=`: deletes the versions saved
//!   after `timestamp` (a `createdAt` as this API hands it out), with their
//!   suggestions, answering the deleted versions, oldest first.
//!
//! Upstream's codes and messages are kept, and its order of checks:
//! parameters, then the caller (`unauthorized:document`), then the
//! document (`not_found:document`) and its owner (`forbidden:document`).
//! Where we differ, on purpose:
//!
//! - POST without a valid session is `unauthorized:document` (upstream
//!   answers `not_found:document`, a slip);
//! - DELETE of a document that does not exist is `not_found:document`
//!   (upstream crashes reading the owner of no version);
//! - ids that are not UUIDs, a `timestamp` that is not RFC 3339, bodies
//!   that are not JSON objects, and a missing or non-string `title`,
//!   `content` or `kind` are 400 `bad_request:api` with a cause; a `kind`
//!   other than `text`, `code`, `image` or `sheet`, and a title or content
//!   holding NUL (which PostgreSQL's text cannot store), are 400
//!   `bad_request:document` with a cause;
//! - POST reads its body before it checks the caller (upstream checks the
//!   caller first), so that no connection is taken for a request that
//!   cannot succeed;
//! - bodies over [`BODY_LIMIT`] are 413, other methods 405.

use http::{Method, Response};
use lambda_http::{Body, Request};
use serde::Deserialize;
use shared::AppState;
use shared::db::models;
use shared::db::queries::document;
use shared::http::extract::{json_body, parse_uuid, query_param, uuid_param};
use shared::http::{
    ApiError, ApiResult, DbContext, ErrorType, Surface, connect_unconfirmed, response,
};

/// The largest POST body accepted. Documents are whole essays, programs or
/// spreadsheets, and every save sends all of it.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The kinds of document upstream's artifacts know.
pub const KINDS: [&str; 4] = ["text", "code", "image", "sheet"];

/// Serves one request to `/api/document`.
pub async fn handle(request: Request, state: AppState) -> ApiResult<Response<Body>> {
    match *request.method() {
        Method::GET => versions(&request, &state).await,
        Method::POST => save(&request, &state).await,
        Method::DELETE => delete_after(&request, &state).await,
        _ => Err(ApiError::method_not_allowed("GET, POST, DELETE")),
    }
}

async fn versions(request: &Request, state: &AppState) -> ApiResult<Response<Body>> {
    // Upstream's wording for GET differs from POST's and DELETE's.
    let id = query_param(request, "id")
        .ok_or_else(|| ApiError::bad_request("Parameter id is missing"))?;
    let id = parse_uuid(&id, "id")?;
    // One round trip: the versions' statement also confirms the caller.
    let (caller, mut conn) = connect_unconfirmed(request, state, Surface::Document).await?;
    let found = document::versions_for_caller(&mut conn, caller.user_id(), id)
        .await
        .context("load the document's versions")?;
    let caller = caller.confirm(found.caller_found)?;
    let versions = found.answer;
    let first = versions.first().ok_or_else(not_found)?;
    if first.user_id != caller.user_id {
        return Err(forbidden());
    }
    response::ok(&versions)
}

async fn save(request: &Request, state: &AppState) -> ApiResult<Response<Body>> {
    let id = uuid_param(request, "id")?;
    let body = document_body(request)?;
    // Two round trips: the caller and the owner, then the save.
    let (caller, mut conn) = connect_unconfirmed(request, state, Surface::Document).await?;
    let found = document::owner_for_caller(&mut conn, caller.user_id(), id)
        .await
        .context("load the document's owner")?;
    let caller = caller.confirm(found.caller_found)?;
    if found.answer.is_some_and(|owner| owner != caller.user_id) {
        return Err(forbidden());
    }
    // A save that lost a race for its millisecond stamp saves again, one
    // millisecond later (see `document::save`).
    for _ in 0..SAVE_ATTEMPTS {
        let saved = document::save(
            &mut conn,
            id,
            &body.title,
            &body.kind,
            &body.content,
            caller.user_id,
        )
        .await
        .context("save the document's version")?;
        if let Some(saved) = saved {
            return response::ok(&[saved]);
        }
    }
    Err(ApiError::unavailable(
        "concurrent saves of one document kept taking the same timestamp",
    ))
}

async fn delete_after(request: &Request, state: &AppState) -> ApiResult<Response<Body>> {
    let id = uuid_param(request, "id")?;
    let timestamp = query_param(request, "timestamp")
        .ok_or_else(|| ApiError::bad_request("Parameter timestamp is required."))?;
    let timestamp = models::parse_timestamp(&timestamp).ok_or_else(|| {
        ApiError::bad_request(
            "Parameter timestamp must be an RFC 3339 date-time, such as 2025-01-31T12:00:00.000Z.",
        )
    })?;
    // Two round trips: the caller and the owner, then the deletion.
    let (caller, mut conn) = connect_unconfirmed(request, state, Surface::Document).await?;
    let found = document::owner_for_caller(&mut conn, caller.user_id(), id)
        .await
        .context("load the document's owner")?;
    let caller = caller.confirm(found.caller_found)?;
    if found.answer.ok_or_else(not_found)? != caller.user_id {
        return Err(forbidden());
    }
    let deleted = document::delete_after(&mut conn, id, timestamp)
        .await
        .context("delete the document's later versions")?;
    tracing::info!(deleted = deleted.len(), "deleted document versions");
    response::ok(&deleted)
}

/// The POST body. Upstream destructures `{content, title, kind}` without
/// checking them; `title` is `NOT NULL` in the schema.
#[derive(Deserialize)]
struct DocumentBody {
    title: String,
    content: String,
    kind: String,
}

fn document_body(request: &Request) -> ApiResult<DocumentBody> {
    let body: DocumentBody = json_body(request, BODY_LIMIT)?;
    let invalid =
        |cause: String| ApiError::new(ErrorType::BadRequest, Surface::Document).with_cause(cause);
    if !KINDS.contains(&body.kind.as_str()) {
        return Err(invalid(format!(
            "Parameter kind must be one of {}.",
            KINDS.join(", ")
        )));
    }
    // PostgreSQL's text cannot hold NUL: the insert would fail, and the
    // client's mistake would be answered as our 500.
    for (name, value) in [("title", &body.title), ("content", &body.content)] {
        if value.contains('\0') {
            return Err(invalid(format!(
                "Parameter {name} must not contain NUL characters."
            )));
        }
    }
    Ok(body)
}

/// How many times a save is tried before concurrent saves are declared
/// too busy. Every round of a race has a winner, so this many saves of one
/// document at once all succeed.
const SAVE_ATTEMPTS: usize = 5;

fn not_found() -> ApiError {
    ApiError::new(ErrorType::NotFound, Surface::Document)
}

fn forbidden() -> ApiError {
    ApiError::new(ErrorType::Forbidden, Surface::Document)
}
