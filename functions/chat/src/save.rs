//! Saving the reply: the stream guard's end work, in a unit of work of its
//! own (committed when it succeeds).

use std::sync::{Arc, Mutex};

use serde_json::json;
use shared::AppState;
use shared::db::models;
use shared::db::queries::message;
use shared::db::queries::message::NewMessage;
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
    let reply = (!text.is_empty()).then(|| assistant_message(&turn, &text, new_title.as_deref()));
    let changed_title = new_title.as_deref().filter(|t| *t != turn.title);
    if reply.is_some() || changed_title.is_some() {
        // One round trip, even on a connection found dead (`queries::message`).
        let mut conn = state.connection().await?;
        message::save_reply(&mut conn, reply.as_ref(), turn.chat_id, changed_title)
            .await
            .context("save the reply")?;
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
