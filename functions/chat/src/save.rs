//! Saving the reply: the stream guard's end work, in a unit of work of its
//! own (committed when it succeeds).

use std::sync::{Arc, Mutex};

use serde_json::json;
use shared::AppState;
use shared::db::models;
use shared::db::queries::message::NewMessage;
use shared::db::queries::{chat as chats, message};
use shared::http::{ApiResult, DbContext};
use shared::runtime::StreamEnd;

use crate::reply::{Produced, lock};
use crate::turn::Turn;

/// Saves what the model wrote (if anything), and a better title for a new
/// chat, however the stream ended.
pub(crate) async fn reply(
    state: AppState,
    turn: Turn,
    produced: Arc<Mutex<Produced>>,
    end: StreamEnd,
) -> ApiResult<()> {
    let (text, new_title) = {
        let produced = lock(&produced);
        (produced.text.clone(), produced.title.clone())
    };
    let mut conn = state.connection().await?;
    if !text.is_empty() {
        message::save_all(
            &mut conn,
            &[assistant_message(&turn, &text, new_title.as_deref())],
        )
        .await
        .context("save the reply")?;
    }
    if let Some(new_title) = new_title.filter(|t| *t != turn.title) {
        chats::update_title(&mut conn, turn.chat_id, &new_title)
            .await
            .context("save the chat's title")?;
    }
    tracing::info!(?end, chars = text.len(), "reply saved");
    Ok(())
}

/// The message as the AI SDK assembles it from the stream, which is what
/// upstream's `onFinish` saves: the step, the text, and the title part if
/// one was sent.
fn assistant_message(turn: &Turn, text: &str, title: Option<&str>) -> NewMessage {
    let mut parts = vec![
        json!({"type": "step-start"}),
        json!({"type": "text", "text": text, "state": "done"}),
    ];
    if let Some(title) = title {
        parts.push(json!({"type": "data-chat-title", "data": title}));
    }
    NewMessage {
        id: turn.assistant_message_id,
        chat_id: turn.chat_id,
        role: "assistant".to_owned(),
        parts: serde_json::Value::Array(parts),
        attachments: json!([]),
        created_at: models::now(),
    }
}
