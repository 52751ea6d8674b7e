//! `/api/chat`, as the upstream chatbot serves it
//! (`app/(chat)/api/chat/route.ts` and `[id]/stream/route.ts`):
//!
//! - `POST /api/chat`: one turn ([`turn`]): the user's message is saved,
//!   and the model's reply streams back as the AI SDK's UI message stream
//!   ([`reply`], [`ui_stream`]); the reply is saved when it ends ([`save`]);
//! - `DELETE /api/chat?id=`: deletes one of the caller's chats, with its
//!   messages, votes and stream ids ([`delete`]);
//! - `GET /api/chat/{id}/stream`: resumes a stream ([`resume`]).
//!
//! The turn is the hard part for connections, and the reason this
//! function is built as it is: the database is used before the stream
//! starts (checks, the chat, the user's message, the stream id) and when
//! it ends (the reply, the title), never while tokens flow, so a slow model
//! holds no connection.
//!
//! ```text
//! turn       POST /api/chat's order of work, and the ids of one turn
//! prompt     what the model is asked
//! reply      the stream: the model's events to chunks, then the end in order
//! save       the stream's end work: the reply and the title, saved
//! request    the body, validated as upstream's schema does
//! model      the models (offline, OpenAI-compatible) behind one trait
//! ui_stream  the AI SDK's UI message stream: chunks, headers, the body
//! title      chat titles
//! resume     GET /api/chat/{id}/stream
//! delete     DELETE /api/chat
//! ``` The end runs through `shared`'s stream guard, which
//! runs it exactly once whether the reply completes, fails, times out or
//! the client goes away.

pub mod delete;
pub mod model;
mod prompt;
pub mod reply;
pub mod request;
pub mod resume;
mod save;
pub mod title;
pub mod turn;
pub mod ui_stream;

use std::sync::Arc;

use http::{Method, Response};
use lambda_http::{Request, RequestExt};
use shared::AppState;
use shared::config::ChatConfig;
use shared::http::{ApiError, ApiResult, ErrorType, Surface};

pub use ui_stream::ChatBody;

use model::ChatModel;

/// The chat function: its configuration and its model, made once per
/// process and shared by every invocation.
#[derive(Clone)]
pub struct Chat {
    inner: Arc<Inner>,
}

struct Inner {
    config: ChatConfig,
    model: Arc<dyn ChatModel>,
}

impl Chat {
    /// The chat function as the environment configures it.
    pub fn from_env() -> Result<Self, shared::runtime::Error> {
        let config = ChatConfig::from_env().inspect_err(|error| {
            tracing::error!(%error, "invalid configuration");
        })?;
        let chat = Self::new(config)?;
        Ok(chat)
    }

    /// The chat function with `config`.
    pub fn new(config: ChatConfig) -> Result<Self, model::ModelError> {
        let model = model::from_config(&config)?;
        Ok(Self::with_model(config, model))
    }

    /// The chat function with `config` and a model of the caller's (tests
    /// use it to put a scripted model in).
    pub fn with_model(config: ChatConfig, model: Arc<dyn ChatModel>) -> Self {
        Self {
            inner: Arc::new(Inner { config, model }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ChatConfig {
        &self.inner.config
    }

    /// The model.
    pub fn model(&self) -> &dyn ChatModel {
        self.inner.model.as_ref()
    }

    /// Serves one request to `/api/chat` or `/api/chat/{id}/stream`.
    pub async fn handle(self, request: Request, state: AppState) -> ApiResult<Response<ChatBody>> {
        if let Some(chat_id) = stream_path_id(&request) {
            return match *request.method() {
                Method::GET => resume::resume(&request, &state, &chat_id).await,
                _ => Err(ApiError::method_not_allowed("GET")),
            };
        }
        match *request.method() {
            Method::POST => turn::post(self, &request, &state).await,
            Method::DELETE => delete::delete(&request, &state).await,
            _ => Err(ApiError::method_not_allowed("POST, DELETE")),
        }
    }
}

/// The `{id}` of `/api/chat/{id}/stream`: API Gateway's path parameter,
/// or (under a catch-all route or a local emulator) the path's segment.
fn stream_path_id(request: &Request) -> Option<String> {
    let path = request.uri().path().trim_end_matches('/');
    let rest = path.strip_suffix("/stream")?;
    let from_path = rest
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty() && *s != "chat");
    request
        .path_parameters_ref()
        .and_then(|p| p.first("id").map(str::to_owned))
        .or_else(|| from_path.map(str::to_owned))
}

/// `not_found:chat`.
pub(crate) fn not_found() -> ApiError {
    ApiError::new(ErrorType::NotFound, Surface::Chat)
}

/// `forbidden:chat`.
pub(crate) fn forbidden() -> ApiError {
    ApiError::new(ErrorType::Forbidden, Surface::Chat)
}
