//! Every route, as the functions serve it: method, path, parameters, body
//! and the statuses each can answer. Every error is `ErrorBody`
//! (`{code, message, cause?}`); 500 and 503 are listed because the
//! functions answer them (a failure on our side; a database that cannot be
//! reached in time), not because a client should ever see them.
//!
//! The functions are never called: they carry the descriptions.

use shared::db::models::{Chat, Document, Message, Suggestion, Vote};
use shared::http::error::ErrorBody;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi};

use crate::bodies::{
    ChatPage, ChatRequest, Credentials, Deleted, DocumentRequest, Session, SignedIn, StreamEvent,
    VoteRequest,
};

/// The API: its routes and the schemas they use.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "chat-backend",
        description = "The HTTP API of the Vercel AI chatbot, served by AWS Lambda functions over PostgreSQL.",
        license(name = "MIT", identifier = "MIT"),
    ),
    paths(
        guest, register, login, session,
        history, delete_history,
        votes, cast_vote,
        document_versions, save_document, delete_document_versions,
        suggestions,
        post_chat, delete_chat, resume_stream,
    ),
    components(schemas(ErrorBody, Message)),
    modifiers(&BearerToken),
    security(("bearer" = [])),
)]
pub struct Api;

/// The session token the auth routes issue.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Signs in as a new guest.
#[utoipa::path(post, path = "/api/auth/guest", tag = "auth", security(()),
    responses(
        ServerErrors,
        (status = 200, description = "Signed in", body = SignedIn),
        (status = 413, description = "Body too large", body = ErrorBody),
    ))]
pub fn guest() {}

/// Creates an account and signs in.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", security(()),
    request_body = Credentials,
    responses(
        ServerErrors,
        (status = 200, description = "Registered and signed in", body = SignedIn),
        (status = 400, description = "Invalid address or password, or the address is taken", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
    ))]
pub fn register() {}

/// Signs in with an e-mail address and password.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", security(()),
    request_body = Credentials,
    responses(
        ServerErrors,
        (status = 200, description = "Signed in", body = SignedIn),
        (status = 400, description = "Not a JSON object with email and password", body = ErrorBody),
        (status = 401, description = "Not an account's address and password", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
    ))]
pub fn login() {}

/// The caller's session.
#[utoipa::path(get, path = "/api/auth/session", tag = "auth",
    responses(
        ServerErrors,
        SignedOut,
        (status = 200, description = "The caller", body = Session),
    ))]
pub fn session() {}

/// A page of the caller's chats, newest first.
#[utoipa::path(get, path = "/api/history", tag = "history",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Chats per page (10 when not given)"),
        ("starting_after" = Option<uuid::Uuid>, Query, description = "The page of chats newer than this one"),
        ("ending_before" = Option<uuid::Uuid>, Query, description = "The page of chats older than this one"),
    ),
    responses(
        ServerErrors,
        SignedOut,
        (status = 200, description = "The page", body = ChatPage),
        (status = 400, description = "Both cursors, a bad limit, or an unknown cursor", body = ErrorBody),
    ))]
pub fn history() {}

/// Deletes all the caller's chats.
#[utoipa::path(delete, path = "/api/history", tag = "history",
    responses(
        ServerErrors,
        SignedOut,
        (status = 200, description = "How many went", body = Deleted),
    ))]
pub fn delete_history() {}

/// The votes on the messages of one of the caller's chats.
#[utoipa::path(get, path = "/api/vote", tag = "vote",
    params(("chatId" = uuid::Uuid, Query, description = "The chat")),
    responses(
        ServerErrors,
        SignedOut,
        (status = 200, description = "The votes", body = Vec<Vote>),
        (status = 400, description = "chatId missing or not a UUID", body = ErrorBody),
        (status = 403, description = "Another user's chat", body = ErrorBody),
        (status = 404, description = "No such chat", body = ErrorBody),
    ))]
pub fn votes() {}

/// Votes on a message of one of the caller's chats, or changes the vote.
#[utoipa::path(patch, path = "/api/vote", tag = "vote",
    request_body = VoteRequest,
    responses(
        ServerErrors,
        SignedOut,
        (status = 200, description = "Voted", body = String, content_type = "text/plain", example = "Message voted"),
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 403, description = "Another user's chat", body = ErrorBody),
        (status = 404, description = "No such chat, or the message is not in it", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
    ))]
pub fn cast_vote() {}

/// Every version of one of the caller's documents, oldest first.
#[utoipa::path(get, path = "/api/document", tag = "document",
    params(("id" = uuid::Uuid, Query, description = "The document")),
    responses(
        ServerErrors,
        SignedOut,
        (status = 200, description = "Its versions", body = Vec<Document>),
        (status = 400, description = "id missing or not a UUID", body = ErrorBody),
        (status = 403, description = "Another user's document", body = ErrorBody),
        (status = 404, description = "No such document", body = ErrorBody),
    ))]
pub fn document_versions() {}

/// Saves a new version of a document (the first creates it).
#[utoipa::path(post, path = "/api/document", tag = "document",
    params(("id" = uuid::Uuid, Query, description = "The document")),
    request_body = DocumentRequest,
    responses(
        ServerErrors,
        SignedOut,
        (status = 200, description = "The saved version", body = Vec<Document>),
        (status = 400, description = "Invalid id or body", body = ErrorBody),
        (status = 403, description = "Another user's document", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
    ))]
pub fn save_document() {}

/// Deletes the versions of a document saved after a time.
#[utoipa::path(delete, path = "/api/document", tag = "document",
    params(
        ("id" = uuid::Uuid, Query, description = "The document"),
        ("timestamp" = String, Query, format = DateTime, description = "A `createdAt` as the API hands it out"),
    ),
    responses(
        ServerErrors,
        SignedOut,
        (status = 200, description = "The deleted versions, oldest first", body = Vec<Document>),
        (status = 400, description = "id or timestamp missing or invalid", body = ErrorBody),
        (status = 403, description = "Another user's document", body = ErrorBody),
        (status = 404, description = "No such document", body = ErrorBody),
    ))]
pub fn delete_document_versions() {}

/// The suggestions on one of the caller's documents, oldest first.
#[utoipa::path(get, path = "/api/suggestions", tag = "suggestions",
    params(("documentId" = uuid::Uuid, Query, description = "The document")),
    responses(
        ServerErrors,
        SignedOut,
        (status = 200, description = "Its suggestions", body = Vec<Suggestion>),
        (status = 400, description = "documentId missing or not a UUID", body = ErrorBody),
        (status = 403, description = "Another user's document", body = ErrorBody),
    ))]
pub fn suggestions() {}

/// Sends a message; the reply streams back as the AI SDK's UI message
/// stream (server-sent events).
#[utoipa::path(post, path = "/api/chat", tag = "chat",
    request_body = ChatRequest,
    responses(
        ServerErrors,
        SignedOut,
        (status = 200, description = "The reply, streamed", body = StreamEvent, content_type = "text/event-stream"),
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 403, description = "Another user's chat", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 429, description = "The daily message limit is reached", body = ErrorBody),
    ))]
pub fn post_chat() {}

/// Deletes one of the caller's chats, with its messages and votes.
#[utoipa::path(delete, path = "/api/chat", tag = "chat",
    params(("id" = uuid::Uuid, Query, description = "The chat")),
    responses(
        ServerErrors,
        SignedOut,
        (status = 200, description = "The deleted chat", body = Chat),
        (status = 400, description = "id missing or not a UUID", body = ErrorBody),
        (status = 403, description = "Not one of the caller's chats (or no such chat)", body = ErrorBody),
    ))]
pub fn delete_chat() {}

/// Resumes a chat's stream: empty, or the last reply if it is recent.
#[utoipa::path(get, path = "/api/chat/{id}/stream", tag = "chat",
    params(("id" = String, Path, description = "The chat (anything not a UUID is not found)")),
    responses(
        ServerErrors,
        SignedOut,
        (status = 200, description = "The stream", body = StreamEvent, content_type = "text/event-stream"),
        (status = 403, description = "Another user's private chat", body = ErrorBody),
        (status = 404, description = "No such chat, or it has no stream", body = ErrorBody),
    ))]
pub fn resume_stream() {}

/// What every route can answer from our side: a failure (500), or a
/// database that cannot be reached in time (503, with `Retry-After`).
#[derive(IntoResponses)]
pub enum ServerErrors {
    /// A failure on our side.
    #[response(status = 500, description = "Failure on our side")]
    Internal(ErrorBody),
    /// The database (or, for sign-in, the token secret; for chat, the
    /// model) is unavailable.
    #[response(
        status = 503,
        description = "Unavailable: the database cannot be reached in time (sign-in: no token secret; chat: the model)"
    )]
    Unavailable(ErrorBody),
}

/// What every route that needs a caller answers without one.
#[derive(IntoResponses)]
pub enum SignedOut {
    /// No valid session token or authorizer claims.
    #[response(status = 401, description = "Not signed in")]
    Unauthorized(ErrorBody),
}
