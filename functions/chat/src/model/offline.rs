//! The built-in offline model: a deterministic reply, word by word.
//!
//! It needs no network and no key, so the whole backend runs and is tested
//! anywhere; its reply depends only on the user's message, so tests can
//! expect exact bytes; and its configurable pause before each word makes
//! streaming visible (and measurable) locally.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;

use super::{ChatModel, ModelError, Prompt, Reply};
use crate::title;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct OfflineModel {
    token_delay: Duration,
}

impl OfflineModel {
    /// A model that pauses `token_delay` before each word.
    pub fn new(token_delay: Duration) -> Self {
        Self { token_delay }
    }

    /// The reply to `message`, whole.
    pub fn reply_text(message: &str) -> String {
        let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
        format!(
            "You said: \"{message}\". I am the built-in offline model of this chat backend, \
             so I answer every message the same way. Configure a model provider to get real answers."
        )
    }

    /// `text` cut into the deltas the model sends: each word with the
    /// space before it.
    pub fn deltas(text: &str) -> Vec<String> {
        let mut deltas: Vec<String> = Vec::new();
        for (i, word) in text.split(' ').enumerate() {
            deltas.push(if i == 0 {
                word.to_owned()
            } else {
                format!(" {word}")
            });
        }
        deltas
    }
}

impl ChatModel for OfflineModel {
    fn reply(&self, prompt: Prompt) -> BoxFuture<'_, Result<Reply, ModelError>> {
        let deltas = Self::deltas(&Self::reply_text(prompt.last_user_text()));
        let delay = self.token_delay;
        Box::pin(async move {
            let reply = futures_util::stream::iter(deltas).then(move |delta| async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Ok(delta)
            });
            Ok(reply.boxed())
        })
    }

    fn title(&self, first_message: &str) -> BoxFuture<'_, Result<String, ModelError>> {
        let title = title::from_text(first_message);
        Box::pin(async move { Ok(title) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PromptMessage, Role};

    #[tokio::test]
    async fn the_reply_is_deterministic_and_its_deltas_rebuild_it() {
        let model = OfflineModel::new(Duration::ZERO);
        let prompt = Prompt {
            selected_model: "chat-model".into(),
            messages: vec![PromptMessage {
                role: Role::User,
                text: "Hello   there".into(),
            }],
        };
        let deltas: Vec<String> = model
            .reply(prompt)
            .await
            .expect("started")
            .map(|d| d.expect("no error"))
            .collect()
            .await;
        assert_eq!(deltas[0], "You");
        assert_eq!(deltas[1], " said:");
        assert_eq!(deltas.concat(), OfflineModel::reply_text("Hello there"));
        assert!(deltas.concat().starts_with("You said: \"Hello there\"."));
    }
}
