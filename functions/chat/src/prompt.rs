//! What the model is asked: the system prompt, the chat's text so far, and
//! the new message.

use shared::db::models;

use crate::model::{Prompt, PromptMessage, Role};
use crate::request::ChatRequest;

/// The instructions the model gets (upstream's `regularPrompt`, in spirit).
const SYSTEM_PROMPT: &str =
    "You are a friendly assistant! Keep your responses concise and helpful.";

/// The conversation for the model: the system prompt, the text of the
/// chat's saved messages (the new one left out if it was resent), and the
/// new message.
pub(crate) fn build(history: &[models::Message], body: &ChatRequest) -> Prompt {
    let mut messages = vec![PromptMessage {
        role: Role::System,
        text: SYSTEM_PROMPT.to_owned(),
    }];
    for saved in history.iter().filter(|m| m.id != body.message.id) {
        let role = match saved.role.as_str() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            _ => continue,
        };
        let text = text_of(&saved.parts.0);
        if !text.is_empty() {
            messages.push(PromptMessage { role, text });
        }
    }
    messages.push(PromptMessage {
        role: Role::User,
        text: body.message.text.clone(),
    });
    Prompt {
        selected_model: body.selected_model.clone(),
        messages,
    }
}

/// The text parts of saved message parts, joined.
fn text_of(parts: &serde_json::Value) -> String {
    parts
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .filter(|p| p["type"] == "text")
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}
