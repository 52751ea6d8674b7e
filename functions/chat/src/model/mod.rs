//! The models that write replies, behind one small trait.
//!
//! A model streams the reply to a conversation as text deltas, and writes
//! a short title for a new chat. Two implement it: [`offline::OfflineModel`],
//! a deterministic built-in that needs no network (the default, and what
//! the tests use), and [`openai::OpenAiModel`], any OpenAI-compatible
//! chat-completions API.
//!
//! Errors come in two kinds, because the client sees them differently: an
//! error before the first token means the reply never started (the route
//! answers 503 `offline:chat`); an error after it is reported inside the
//! stream, which has already begun.

pub mod offline;
pub mod openai;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use shared::config::{ChatConfig, ModelConfig};

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Instructions to the model.
    System,
    /// The person chatting.
    User,
    /// The model.
    Assistant,
}

impl Role {
    /// The name chat-completions APIs use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

/// One message of the conversation, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptMessage {
    /// Who said it.
    pub role: Role,
    /// What was said.
    pub text: String,
}

/// What a model is asked to continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// The client's `selectedChatModel` (each model maps it as it sees fit).
    pub selected_model: String,
    /// The conversation so far, oldest first, ending with the user's new
    /// message; the first may be a system message.
    pub messages: Vec<PromptMessage>,
}

impl Prompt {
    /// The text of the last user message.
    pub fn last_user_text(&self) -> &str {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map_or("", |m| m.text.as_str())
    }
}

/// Why a model failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ModelError {
    /// The reply could not start: the provider refused, failed or did not
    /// answer in time. `.0` is for logs only (it never reaches a client).
    #[error("the model could not start a reply: {0}")]
    Unavailable(String),
    /// The reply broke off after it started.
    #[error("the model's reply broke off: {0}")]
    Interrupted(String),
}

/// The reply, as it is written: text deltas, or an error that ends it.
pub type Reply = BoxStream<'static, Result<String, ModelError>>;

/// A model that writes replies and titles.
pub trait ChatModel: Send + Sync {
    /// Starts the reply to `prompt`. Resolves once the reply has started
    /// (the provider accepted the request); the stream then yields text
    /// deltas. An error here is [`ModelError::Unavailable`]; errors inside
    /// the stream are [`ModelError::Interrupted`].
    fn reply(&self, prompt: Prompt) -> BoxFuture<'_, Result<Reply, ModelError>>;

    /// A short title for a chat that starts with `first_message`.
    fn title(&self, first_message: &str) -> BoxFuture<'_, Result<String, ModelError>>;
}

/// The model the configuration names.
pub fn from_config(config: &ChatConfig) -> Result<Arc<dyn ChatModel>, ModelError> {
    Ok(match &config.model {
        ModelConfig::Offline { token_delay } => Arc::new(offline::OfflineModel::new(*token_delay)),
        ModelConfig::OpenAi(openai) => Arc::new(openai::OpenAiModel::new(
            openai.clone(),
            config.first_token_timeout,
            config.idle_timeout,
        )?),
    })
}
