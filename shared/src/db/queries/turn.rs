//! A chat turn's start (`POST /api/chat`), in two statements: one reads
//! everything the checks need, one writes everything the turn begins with.
//!
//! Upstream runs seven statements before the stream starts (the caller,
//! the day's count, the chat, its messages, the new chat, the message, the
//! stream id); against a database across a network each is a round trip
//! before the first byte. Here:
//!
//! 1. [`start_for_caller`], a read: whether the caller exists
//!    ([`super::caller`]), how many messages they sent in the window, who
//!    owns the chat, and its messages (only if the caller owns it);
//! 2. [`record_start`], one write with data-modifying CTEs: the chat (if
//!    new), the user's message (unless resent) and the stream id, each only
//!    if the chat is the caller's as the write finds it. A chat created by
//!    someone else between the two statements makes it write nothing and
//!    answer `false`; it is atomic on its own, as one statement.

use chrono::{Duration, NaiveDateTime};
use sqlx::PgExecutor;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::caller::{ForCaller, caller_anchor, caller_found, first_uuid, rows_with};
use super::message::user_messages_since;
use crate::db::models::{self, Message};

/// What a turn's checks need, read in one statement.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnStart {
    /// The caller's user messages in the window.
    pub sent: i64,
    /// Who owns the chat; `None`: it does not exist yet.
    pub owner: Option<Uuid>,
    /// Its messages, oldest first (none unless the caller owns it).
    pub history: Vec<Message>,
}

/// Step 1 of the module docs: `caller`'s user messages of the last `hours`
/// hours, chat `chat_id`'s owner and its messages.
pub async fn start_for_caller<'e>(
    db: impl PgExecutor<'e>,
    caller: Uuid,
    chat_id: Uuid,
    hours: u32,
) -> sqlx::Result<ForCaller<TurnStart>> {
    let since = models::now() - Duration::hours(i64::from(hours));
    let rows: Vec<PgRow> = sqlx::query(concat!(
        "SELECT caller.found AS caller_found, ",
        user_messages_since!("$1", "$3"),
        r#" AS sent,
                  (SELECT "userId" FROM "Chat" WHERE id = $2) AS owner,
                  h.id, h."chatId", h.role, h.parts, h.attachments, h."createdAt"
           FROM "#,
        caller_anchor!(),
        r#"
           LEFT JOIN LATERAL (
               SELECT m.* FROM "Message_v2" m JOIN "Chat" c ON c.id = m."chatId"
               WHERE m."chatId" = $2 AND c."userId" = $1
           ) h ON caller.found
           ORDER BY h."createdAt" ASC"#
    ))
    .bind(caller)
    .bind(chat_id)
    .bind(since)
    .fetch_all(db)
    .await?;
    let sent = match rows.first() {
        Some(row) => sqlx::Row::try_get(row, "sent")?,
        None => 0,
    };
    Ok(ForCaller {
        caller_found: caller_found(&rows)?,
        answer: TurnStart {
            sent,
            owner: first_uuid(&rows, "owner")?,
            history: rows_with(&rows, "id")?,
        },
    })
}

/// What a turn begins with (step 2 of the module docs).
#[derive(Debug, Clone)]
pub struct NewTurn<'a> {
    /// The chat.
    pub chat_id: Uuid,
    /// Its owner: the caller.
    pub user_id: Uuid,
    /// Create the chat, with this title and visibility (it is new).
    pub new_chat: Option<(&'a str, &'a str)>,
    /// Save the user's message (it was not sent before): its id and parts.
    pub user_message: Option<(Uuid, &'a serde_json::Value)>,
    /// The stream's id.
    pub stream_id: Uuid,
    /// When all of it happened.
    pub at: NaiveDateTime,
}

/// Step 2 of the module docs. `false`: the chat is someone else's (created
/// since step 1), and nothing was written.
pub async fn record_start<'e>(db: impl PgExecutor<'e>, turn: &NewTurn<'_>) -> sqlx::Result<bool> {
    let (title, visibility) = turn.new_chat.unzip();
    let (message_id, parts) = turn.user_message.unzip();
    sqlx::query_scalar(
        r#"WITH new_chat AS (
               INSERT INTO "Chat" (id, "createdAt", "userId", title, visibility)
               SELECT $1, $3, $2, $4, $5 WHERE $4::text IS NOT NULL
               ON CONFLICT (id) DO NOTHING
               RETURNING id
           ), owned AS (
               SELECT EXISTS (SELECT 1 FROM new_chat)
                   OR EXISTS (SELECT 1 FROM "Chat" WHERE id = $1 AND "userId" = $2) AS ok
           ), user_message AS (
               INSERT INTO "Message_v2" (id, "chatId", role, parts, attachments, "createdAt")
               SELECT $6, $1, 'user', $7::text::json, '[]'::json, $3
               FROM owned WHERE ok AND $6::uuid IS NOT NULL
           ), stream AS (
               INSERT INTO "Stream" (id, "chatId", "createdAt")
               SELECT $8, $1, $3 FROM owned WHERE ok
           )
           SELECT ok FROM owned"#,
    )
    .bind(turn.chat_id)
    .bind(turn.user_id)
    .bind(turn.at)
    .bind(title)
    .bind(visibility)
    .bind(message_id)
    .bind(parts.map(|p| p.to_string()))
    .bind(turn.stream_id)
    .fetch_one(db)
    .await
}
