//! What the tests expect of every function alike, typed once: the upstream
//! chatbot's error messages (its `lib/errors.ts`), the error bodies built
//! from them, and the `Authorization` headers that must identify no one.
//!
//! The messages are typed here, not imported from `shared`: they are the
//! tests' own reading of upstream, so that a message changed by mistake in
//! the code under test fails the tests instead of changing with them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use shared::http::identity::{UserType, issue_token};
use uuid::Uuid;

/// Upstream's message for a code it does not list, and ours for an error
/// on our side (with the code `""`).
pub const DEFAULT_MESSAGE: &str = "Something went wrong. Please try again later.";

/// `*:database`, whatever the type.
pub const DATABASE_MESSAGE: &str = "An error occurred while executing a database query.";

/// `bad_request:api`.
pub const BAD_REQUEST_API_MESSAGE: &str =
    "The request couldn't be processed. Please check your input and try again.";

/// `unauthorized:auth`.
pub const UNAUTHORIZED_AUTH_MESSAGE: &str = "You need to sign in before continuing.";

/// `forbidden:auth`.
pub const FORBIDDEN_AUTH_MESSAGE: &str = "Your account does not have access to this feature.";

/// `rate_limit:chat`.
pub const RATE_LIMIT_CHAT_MESSAGE: &str =
    "You have exceeded your maximum number of messages for the day. Please try again later.";

/// `not_found:chat`.
pub const NOT_FOUND_CHAT_MESSAGE: &str =
    "The requested chat was not found. Please check the chat ID and try again.";

/// `forbidden:chat`.
pub const FORBIDDEN_CHAT_MESSAGE: &str =
    "This chat belongs to another user. Please check the chat ID and try again.";

/// `unauthorized:chat`.
pub const UNAUTHORIZED_CHAT_MESSAGE: &str =
    "You need to sign in to view this chat. Please sign in and try again.";

/// `offline:chat`.
pub const OFFLINE_CHAT_MESSAGE: &str = "We're having trouble sending your message. Please check your internet connection and try again.";

/// `not_found:document`.
pub const NOT_FOUND_DOCUMENT_MESSAGE: &str =
    "The requested document was not found. Please check the document ID and try again.";

/// `forbidden:document`.
pub const FORBIDDEN_DOCUMENT_MESSAGE: &str =
    "This document belongs to another user. Please check the document ID and try again.";

/// `unauthorized:document`.
pub const UNAUTHORIZED_DOCUMENT_MESSAGE: &str =
    "You need to sign in to view this document. Please sign in and try again.";

/// `bad_request:document`.
pub const BAD_REQUEST_DOCUMENT_MESSAGE: &str = "The request to create or update the document was invalid. Please check your input and try again.";

/// The message upstream answers with `code` (`"<type>:<surface>"`), as its
/// `getMessageByErrorCode` chooses it.
pub fn message_for(code: &str) -> &'static str {
    if code.ends_with(":database") {
        return DATABASE_MESSAGE;
    }
    match code {
        "bad_request:api" => BAD_REQUEST_API_MESSAGE,
        "unauthorized:auth" => UNAUTHORIZED_AUTH_MESSAGE,
        "forbidden:auth" => FORBIDDEN_AUTH_MESSAGE,
        "rate_limit:chat" => RATE_LIMIT_CHAT_MESSAGE,
        "not_found:chat" => NOT_FOUND_CHAT_MESSAGE,
        "forbidden:chat" => FORBIDDEN_CHAT_MESSAGE,
        "unauthorized:chat" => UNAUTHORIZED_CHAT_MESSAGE,
        "offline:chat" => OFFLINE_CHAT_MESSAGE,
        "not_found:document" => NOT_FOUND_DOCUMENT_MESSAGE,
        "forbidden:document" => FORBIDDEN_DOCUMENT_MESSAGE,
        "unauthorized:document" => UNAUTHORIZED_DOCUMENT_MESSAGE,
        "bad_request:document" => BAD_REQUEST_DOCUMENT_MESSAGE,
        _ => DEFAULT_MESSAGE,
    }
}

/// The error body of `code` without a cause: `{"code", "message"}`.
/// `error_body("")` is the body of an error on our side.
pub fn error_body(code: &str) -> Value {
    json!({"code": code, "message": message_for(code)})
}

/// The error body of `code` with `cause`: `{"code", "message", "cause"}`.
pub fn error_with_cause(code: &str, cause: &str) -> Value {
    json!({"code": code, "message": message_for(code), "cause": cause})
}

/// `bad_request:api` with `cause`: what every route answers to input it
/// refuses.
pub fn bad_request(cause: &str) -> Value {
    error_with_cause("bad_request:api", cause)
}

/// `Authorization` headers that identify no one (`None`: no header), for a
/// test that `user` exists: a token signed with another secret, an
/// unsigned one (`alg: none`), malformed and oversized ones, and other
/// schemes.
pub fn invalid_authorizations(user: Uuid) -> Vec<Option<String>> {
    let forged = issue_token(
        &shared::config::AuthConfig::with_secret("someone-elses-secret-0123456789abcdef"),
        user,
        UserType::Regular,
        None,
    )
    .expect("token");
    let unsigned = format!(
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
        URL_SAFE_NO_PAD.encode(
            json!({"sub": user, "type": "regular", "iss": "chat-backend", "exp": 4_102_444_800_u64})
                .to_string()
        )
    );
    vec![
        None,
        Some("Bearer".into()),
        Some("Bearer ".into()),
        Some("Basic YWRhOnB3".into()),
        Some(format!("Bearer {forged}")),
        Some(format!("Bearer {unsigned}")),
        Some("Bearer not.a.jwt".into()),
        Some("Bearer ' OR 1=1 --".into()),
        Some(format!("Bearer {}", "x".repeat(10_000))),
    ]
}
