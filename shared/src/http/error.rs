//! The one error type of the HTTP surface, rendered as the upstream chatbot
//! renders its `ChatSDKError` (`lib/errors.ts`).
//!
//! Every error a handler returns becomes `{"code": "<type>:<surface>",
//! "message": "...", "cause": "..."}` with the status of its type. Errors of
//! the `database` surface, and internal errors, are logged with their source
//! and answered with a generic body: internal text never reaches a client.
//!
//! Where we differ from upstream, on purpose:
//! - an unexpected server-side failure is a 500 (upstream answers 400
//!   `bad_request:database`), so that gateways and alarms count it as ours;
//! - a database that cannot be reached in time is `offline:database`, a 503
//!   with `Retry-After`, so that clients know to retry;
//! - bodies over the size limit get 413 and wrong methods 405, with the
//!   `bad_request:api` body.

use std::borrow::Cow;
use std::fmt;

use http::{HeaderValue, Response, StatusCode, header};
use serde::Serialize;

/// The part of a code before the colon; it decides the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// 400
    BadRequest,
    /// 401
    Unauthorized,
    /// 403
    Forbidden,
    /// 404
    NotFound,
    /// 429
    RateLimit,
    /// 503
    Offline,
}

/// The part of a code after the colon: where the error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// Chats and messages.
    Chat,
    /// Sign-in.
    Auth,
    /// Request validation.
    Api,
    /// Resumable streams.
    Stream,
    /// The database: logged, never shown.
    Database,
    /// Chat history.
    History,
    /// Votes.
    Vote,
    /// Documents.
    Document,
    /// Suggestions.
    Suggestions,
}

impl ErrorType {
    fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::RateLimit => "rate_limit",
            Self::Offline => "offline",
        }
    }

    /// The HTTP status of this type, as upstream's `getStatusCodeByType`.
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::RateLimit => StatusCode::TOO_MANY_REQUESTS,
            Self::Offline => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl Surface {
    fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Auth => "auth",
            Self::Api => "api",
            Self::Stream => "stream",
            Self::Database => "database",
            Self::History => "history",
            Self::Vote => "vote",
            Self::Document => "document",
            Self::Suggestions => "suggestions",
        }
    }
}

/// The body of every non-database error whose code upstream does not list.
pub const DEFAULT_MESSAGE: &str = "Something went wrong. Please try again later.";

/// Upstream's `getMessageByErrorCode`.
pub fn message_for(error_type: ErrorType, surface: Surface) -> &'static str {
    use ErrorType::*;
    use Surface::*;
    match (error_type, surface) {
        (_, Database) => "An error occurred while executing a database query.",
        (BadRequest, Api) => {
            "The request couldn't be processed. Please check your input and try again."
        }
        (Unauthorized, Auth) => "You need to sign in before continuing.",
        (Forbidden, Auth) => "Your account does not have access to this feature.",
        (RateLimit, Chat) => {
            "You have exceeded your maximum number of messages for the day. Please try again later."
        }
        (NotFound, Chat) => {
            "The requested chat was not found. Please check the chat ID and try again."
        }
        (Forbidden, Chat) => {
            "This chat belongs to another user. Please check the chat ID and try again."
        }
        (Unauthorized, Chat) => {
            "You need to sign in to view this chat. Please sign in and try again."
        }
        (Offline, Chat) => {
            "We're having trouble sending your message. Please check your internet connection and try again."
        }
        (NotFound, Document) => {
            "The requested document was not found. Please check the document ID and try again."
        }
        (Forbidden, Document) => {
            "This document belongs to another user. Please check the document ID and try again."
        }
        (Unauthorized, Document) => {
            "You need to sign in to view this document. Please sign in and try again."
        }
        (BadRequest, Document) => {
            "The request to create or update the document was invalid. Please check your input and try again."
        }
        _ => DEFAULT_MESSAGE,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Code(ErrorType, Surface),
    PayloadTooLarge,
    MethodNotAllowed(&'static str),
    Internal,
}

/// An error answered to a client. Build it with [`ApiError::new`] (an
/// upstream code), or let `?` convert a `sqlx::Error`.
pub struct ApiError {
    kind: Kind,
    /// Shown to the client as `cause` (upstream's second constructor
    /// argument): say what was wrong with the request, never internals.
    cause: Option<Cow<'static, str>>,
    /// Logged when the error is rendered, never shown.
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with the upstream code `error_type:surface`.
    pub fn new(error_type: ErrorType, surface: Surface) -> Self {
        Self {
            kind: Kind::Code(error_type, surface),
            cause: None,
            source: None,
        }
    }

    /// `bad_request:api` with a cause: the usual answer to invalid input.
    pub fn bad_request(cause: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorType::BadRequest, Surface::Api).with_cause(cause)
    }

    /// A body larger than `limit` bytes: 413.
    pub fn payload_too_large(limit: usize) -> Self {
        Self {
            kind: Kind::PayloadTooLarge,
            cause: Some(format!("The request body is larger than {limit} bytes.").into()),
            source: None,
        }
    }

    /// A method the route does not serve: 405, with `Allow: allow`.
    pub fn method_not_allowed(allow: &'static str) -> Self {
        Self {
            kind: Kind::MethodNotAllowed(allow),
            cause: Some(format!("This route answers {allow} only.").into()),
            source: None,
        }
    }

    /// A failure that is ours, not the client's: 500, logged with `source`.
    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            kind: Kind::Internal,
            cause: None,
            source: Some(source.into()),
        }
    }

    /// The database could not be reached (or answer) in time: 503
    /// `offline:database`, logged with `source`.
    pub fn unavailable(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::new(ErrorType::Offline, Surface::Database).with_source(source)
    }

    /// Adds the client-facing cause.
    pub fn with_cause(mut self, cause: impl Into<Cow<'static, str>>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    /// Adds the logged-only source.
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The response status.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            Kind::Code(t, _) => t.status(),
            Kind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The code a client sees (`""` for logged-only errors).
    pub fn code(&self) -> String {
        match self.kind {
            Kind::Code(_, Surface::Database) | Kind::Internal => String::new(),
            Kind::Code(t, s) => format!("{}:{}", t.as_str(), s.as_str()),
            Kind::PayloadTooLarge | Kind::MethodNotAllowed(_) => "bad_request:api".into(),
        }
    }

    fn is_logged_only(&self) -> bool {
        matches!(self.kind, Kind::Code(_, Surface::Database) | Kind::Internal)
    }

    /// The JSON body a client sees.
    pub fn body(&self) -> ErrorBody {
        if self.is_logged_only() {
            return ErrorBody {
                code: String::new(),
                message: DEFAULT_MESSAGE,
                cause: None,
            };
        }
        let message = match self.kind {
            Kind::Code(t, s) => message_for(t, s),
            _ => message_for(ErrorType::BadRequest, Surface::Api),
        };
        ErrorBody {
            code: self.code(),
            message,
            cause: self.cause.as_deref().map(str::to_owned),
        }
    }

    /// Logs what must be logged, and renders the response.
    pub fn into_response<B: From<String>>(self) -> Response<B> {
        self.log();
        let body = serde_json::to_string(&self.body())
            .unwrap_or_else(|_| format!(r#"{{"code":"","message":"{DEFAULT_MESSAGE}"}}"#));
        let mut response = Response::new(B::from(body));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        match self.kind {
            Kind::MethodNotAllowed(allow) => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            Kind::Code(ErrorType::Offline, _) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }

    fn log(&self) {
        let source = self.source.as_ref().map(|s| ErrorChain(s.as_ref()));
        if self.is_logged_only() {
            // Upstream's `visibility === "log"`: the full story, for us only.
            tracing::error!(
                status = self.status().as_u16(),
                kind = ?self.kind,
                cause = self.cause.as_deref(),
                source = source.map(|s| s.to_string()),
                "request failed"
            );
        } else if let Some(source) = source {
            tracing::warn!(code = %self.code(), source = %source, "request refused");
        } else {
            tracing::debug!(code = %self.code(), cause = self.cause.as_deref(), "request refused");
        }
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("status", &self.status().as_u16())
            .field("code", &self.code())
            .field("kind", &self.kind)
            .field("cause", &self.cause)
            .field(
                "source",
                &self
                    .source
                    .as_ref()
                    .map(|s| ErrorChain(s.as_ref()).to_string()),
            )
            .finish()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status().as_u16(), self.code())?;
        if let Some(cause) = &self.cause {
            write!(f, ": {cause}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// An error and its causes, on one line.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(cause) = next {
            write!(f, ": {cause}")?;
            next = cause.source();
        }
        Ok(())
    }
}

/// The JSON error body: `{"code", "message", "cause"?}`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ErrorBody {
    /// `"<type>:<surface>"`, or `""` for logged-only errors.
    pub code: String,
    /// The upstream message for the code.
    #[schema(value_type = String)]
    pub message: &'static str,
    /// What was wrong, when there is something to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// A database failure, with the step of the handler it happened in (for
/// the logs: "could not load the chat: pool timed out ...").
#[derive(Debug, thiserror::Error)]
#[error("could not {step}")]
pub struct DbStepError {
    step: &'static str,
    #[source]
    source: sqlx::Error,
}

impl ApiError {
    /// The database failed at `step`: 503 `offline:database` when it cannot
    /// serve us right now (retry later), else 500. Both are logged with the
    /// step and the error, and answered with the generic body.
    pub fn database(step: &'static str, error: sqlx::Error) -> Self {
        let unavailable = is_unavailable(&error);
        let source = DbStepError {
            step,
            source: error,
        };
        if unavailable {
            ApiError::unavailable(source)
        } else {
            ApiError::internal(source)
        }
    }
}

/// Names the step of a database result that failed: every database error
/// a handler returns says which step it was, as zero2prod's `context` does.
/// (There is no `From<sqlx::Error>`: a bare `?` would not compile.)
pub trait DbContext<T> {
    /// The result, or [`ApiError::database`] for `step`.
    fn context(self, step: &'static str) -> ApiResult<T>;
}

impl<T> DbContext<T> for Result<T, sqlx::Error> {
    fn context(self, step: &'static str) -> ApiResult<T> {
        self.map_err(|error| ApiError::database(step, error))
    }
}

/// Whether a database error means "the database cannot serve us right
/// now" (retry later) rather than "this request is broken".
fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 53300: too many connections;
            // 57P01-03: server shutting down or starting; 57014: canceled
            // (statement_timeout); 40001/40P01: serialization failure and
            // deadlock, which a retry resolves. 28000/28P01: our login
            // refused (credentials rotated under us), not the caller's fault.
            code.starts_with("08")
                || matches!(
                    code.as_ref(),
                    "53300"
                        | "57P01"
                        | "57P02"
                        | "57P03"
                        | "57014"
                        | "40001"
                        | "40P01"
                        | "28000"
                        | "28P01"
                )
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(error: ApiError) -> (u16, serde_json::Value, http::HeaderMap) {
        let response: Response<String> = error.into_response();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = serde_json::from_str(response.body()).expect("JSON body");
        (status, body, headers)
    }

    #[test]
    fn codes_render_with_the_upstream_status_and_message() {
        let (status, body, _) = render(ApiError::new(ErrorType::Forbidden, Surface::Chat));
        assert_eq!(status, 403);
        assert_eq!(
            body,
            serde_json::json!({
                "code": "forbidden:chat",
                "message": "This chat belongs to another user. Please check the chat ID and try again."
            })
        );
    }

    #[test]
    fn a_cause_is_shown() {
        let (status, body, _) = render(ApiError::bad_request(
            "Only one of starting_after or ending_before can be provided.",
        ));
        assert_eq!(status, 400);
        assert_eq!(body["code"], "bad_request:api");
        assert_eq!(
            body["message"],
            "The request couldn't be processed. Please check your input and try again."
        );
        assert_eq!(
            body["cause"],
            "Only one of starting_after or ending_before can be provided."
        );
    }

    #[test]
    fn unlisted_codes_get_the_default_message() {
        let (status, body, _) = render(ApiError::new(ErrorType::Forbidden, Surface::Vote));
        assert_eq!(status, 403);
        assert_eq!(body["code"], "forbidden:vote");
        assert_eq!(body["message"], DEFAULT_MESSAGE);
    }

    #[test]
    fn database_and_internal_errors_never_show_their_text() {
        let secret = "relation \"User\" does not exist at postgres://app:pw@db";
        for error in [
            ApiError::new(ErrorType::BadRequest, Surface::Database).with_cause(secret),
            ApiError::internal(std::io::Error::other(secret)),
            ApiError::unavailable(std::io::Error::other(secret)),
        ] {
            let (_, body, _) = render(error);
            assert_eq!(
                body,
                serde_json::json!({"code": "", "message": DEFAULT_MESSAGE})
            );
        }
    }

    #[test]
    fn an_unreachable_database_is_a_503_with_retry_after() {
        let (status, body, headers) = render(ApiError::database(
            "load the chat",
            sqlx::Error::PoolTimedOut,
        ));
        assert_eq!(status, 503);
        assert_eq!(body["code"], "");
        assert_eq!(headers[header::RETRY_AFTER], "1");
    }

    #[test]
    fn other_database_failures_are_500s() {
        let (status, _, _) = render(ApiError::database(
            "load the chat",
            sqlx::Error::RowNotFound,
        ));
        assert_eq!(status, 500);
    }

    #[test]
    fn size_and_method_errors_use_the_api_body() {
        let (status, body, _) = render(ApiError::payload_too_large(1024));
        assert_eq!(status, 413);
        assert_eq!(body["code"], "bad_request:api");
        let (status, _, headers) = render(ApiError::method_not_allowed("GET, DELETE"));
        assert_eq!(status, 405);
        assert_eq!(headers[header::ALLOW], "GET, DELETE");
    }

    #[test]
    fn every_listed_code_has_its_upstream_message() {
        use ErrorType::*;
        use Surface::*;
        let table = [
            (
                BadRequest,
                Api,
                "The request couldn't be processed. Please check your input and try again.",
            ),
            (Unauthorized, Auth, "You need to sign in before continuing."),
            (
                Forbidden,
                Auth,
                "Your account does not have access to this feature.",
            ),
            (
                RateLimit,
                Chat,
                "You have exceeded your maximum number of messages for the day. Please try again later.",
            ),
            (
                NotFound,
                Chat,
                "The requested chat was not found. Please check the chat ID and try again.",
            ),
            (
                Forbidden,
                Chat,
                "This chat belongs to another user. Please check the chat ID and try again.",
            ),
            (
                Unauthorized,
                Chat,
                "You need to sign in to view this chat. Please sign in and try again.",
            ),
            (
                Offline,
                Chat,
                "We're having trouble sending your message. Please check your internet connection and try again.",
            ),
            (
                NotFound,
                Document,
                "The requested document was not found. Please check the document ID and try again.",
            ),
            (
                Forbidden,
                Document,
                "This document belongs to another user. Please check the document ID and try again.",
            ),
            (
                Unauthorized,
                Document,
                "You need to sign in to view this document. Please sign in and try again.",
            ),
            (
                BadRequest,
                Document,
                "The request to create or update the document was invalid. Please check your input and try again.",
            ),
            (
                NotFound,
                Database,
                "An error occurred while executing a database query.",
            ),
        ];
        for (t, s, message) in table {
            assert_eq!(message_for(t, s), message, "{t:?}:{s:?}");
        }
    }
}
