//! An OpenAI-compatible chat-completions provider (written next).

use std::time::Duration;

use futures_util::future::BoxFuture;
use shared::config::OpenAiConfig;

use super::{ChatModel, ModelError, Prompt, Reply};

/// A provider that speaks OpenAI's `/chat/completions` with `stream: true`.
pub struct OpenAiModel {
    _config: OpenAiConfig,
}

impl OpenAiModel {
    /// A provider for `config`, giving up on a first token after
    /// `first_token_timeout` and on silence after `idle_timeout`.
    pub fn new(
        config: OpenAiConfig,
        _first_token_timeout: Duration,
        _idle_timeout: Duration,
    ) -> Result<Self, ModelError> {
        Ok(Self { _config: config })
    }
}

impl ChatModel for OpenAiModel {
    fn reply(&self, _prompt: Prompt) -> BoxFuture<'_, Result<Reply, ModelError>> {
        Box::pin(async { Err(ModelError::Unavailable("not written yet".into())) })
    }

    fn title(&self, _first_message: &str) -> BoxFuture<'_, Result<String, ModelError>> {
        Box::pin(async { Err(ModelError::Unavailable("not written yet".into())) })
    }
}
