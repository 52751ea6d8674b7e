//! `"Message_v2"`: the messages of chats, in AI SDK "parts" form.

use chrono::{Duration, NaiveDateTime};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::db::models::{self, Message};

/// The count of user `$user`'s messages (theirs as the chats' owner) sent
/// since `$since`, as an SQL expression: the daily limit's measure, here
/// and in the chat turn's one read (`super::turn`).
macro_rules! user_messages_since {
    ($user:literal, $since:literal) => {
        concat!(
            r#"(SELECT count(m.id)
               FROM "Message_v2" m JOIN "Chat" c ON m."chatId" = c.id
               WHERE c."userId" = "#,
            $user,
            r#" AND m."createdAt" >= "#,
            $since,
            r#" AND m.role = 'user')"#
        )
    };
}
pub(crate) use user_messages_since;

/// A message to save (upstream's `DBMessage` as `saveMessages` takes it).
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    /// The message's id.
    pub id: Uuid,
    /// Its chat.
    pub chat_id: Uuid,
    /// `user` or `assistant`.
    pub role: String,
    /// AI SDK message parts.
    pub parts: serde_json::Value,
    /// Attachments (upstream saves `[]`).
    pub attachments: serde_json::Value,
    /// When it was created.
    pub created_at: NaiveDateTime,
}

/// Upstream's `saveMessages`: all of them in one statement.
pub async fn save_all<'e>(db: impl PgExecutor<'e>, messages: &[NewMessage]) -> sqlx::Result<u64> {
    if messages.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = messages.iter().map(|m| m.id).collect();
    let chat_ids: Vec<Uuid> = messages.iter().map(|m| m.chat_id).collect();
    let roles: Vec<&str> = messages.iter().map(|m| m.role.as_str()).collect();
    // JSON goes as text and is cast on the server: the columns are `json`
    // (not `jsonb`), which keeps the text exactly as sent.
    let parts: Vec<String> = messages.iter().map(|m| m.parts.to_string()).collect();
    let attachments: Vec<String> = messages.iter().map(|m| m.attachments.to_string()).collect();
    let created: Vec<NaiveDateTime> = messages.iter().map(|m| m.created_at).collect();
    let done = sqlx::query(
        r#"INSERT INTO "Message_v2" (id, "chatId", role, parts, attachments, "createdAt")
           SELECT id, chat_id, role, parts::json, attachments::json, created_at
           FROM UNNEST($1::uuid[], $2::uuid[], $3::varchar[], $4::text[], $5::text[], $6::timestamp[])
                AS m(id, chat_id, role, parts, attachments, created_at)"#,
    )
    .bind(ids)
    .bind(chat_ids)
    .bind(roles)
    .bind(parts)
    .bind(attachments)
    .bind(created)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// The end of a turn in one statement: the assistant's message (if there
/// is one) and the chat's new title (if there is one). It may run twice
/// (`db::first` reruns it on a fresh connection if the first found the
/// connection dead): the message has its own id, and a second insert of it
/// does nothing; the title is set, not changed by.
pub async fn save_reply<'e>(
    db: impl PgExecutor<'e>,
    reply: Option<&NewMessage>,
    chat_id: Uuid,
    title: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        r#"/* replayable */
           WITH saved AS (
               INSERT INTO "Message_v2" (id, "chatId", role, parts, attachments, "createdAt")
               SELECT $1, $2, $3, $4::text::json, $5::text::json, $6 WHERE $1::uuid IS NOT NULL
               ON CONFLICT (id) DO NOTHING
           ), titled AS (
               UPDATE "Chat" SET title = $7 WHERE id = $2 AND $7::text IS NOT NULL
           )
           SELECT 1"#,
    )
    .bind(reply.map(|m| m.id))
    .bind(chat_id)
    .bind(reply.map(|m| m.role.as_str()))
    .bind(reply.map(|m| m.parts.to_string()))
    .bind(reply.map(|m| m.attachments.to_string()))
    .bind(reply.map(|m| m.created_at))
    .bind(title)
    .execute(db)
    .await?;
    Ok(())
}

/// Upstream's `updateMessage`: replaces a message's parts. Returns whether
/// a message changed.
pub async fn update_parts<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    parts: &serde_json::Value,
) -> sqlx::Result<bool> {
    let done = sqlx::query(r#"UPDATE "Message_v2" SET parts = $2::json WHERE id = $1"#)
        .bind(id)
        .bind(parts.to_string())
        .execute(db)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Upstream's `getMessagesByChatId`: oldest first.
pub async fn get_by_chat_id<'e>(
    db: impl PgExecutor<'e>,
    chat_id: Uuid,
) -> sqlx::Result<Vec<Message>> {
    sqlx::query_as(
        r#"SELECT id, "chatId", role, parts, attachments, "createdAt"
           FROM "Message_v2" WHERE "chatId" = $1 ORDER BY "createdAt" ASC"#,
    )
    .bind(chat_id)
    .fetch_all(db)
    .await
}

/// Upstream's `getMessageById`.
pub async fn get_by_id<'e>(db: impl PgExecutor<'e>, id: Uuid) -> sqlx::Result<Option<Message>> {
    sqlx::query_as(
        r#"SELECT id, "chatId", role, parts, attachments, "createdAt"
           FROM "Message_v2" WHERE id = $1"#,
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Upstream's `deleteMessagesByChatIdAfterTimestamp`: the chat's messages
/// created at or after `timestamp`, with their votes, in one statement.
/// Returns how many messages went.
pub async fn delete_by_chat_id_after<'e>(
    db: impl PgExecutor<'e>,
    chat_id: Uuid,
    timestamp: NaiveDateTime,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        r#"WITH target AS (
               SELECT id FROM "Message_v2" WHERE "chatId" = $1 AND "createdAt" >= $2 FOR UPDATE
           ),
           votes AS (
               DELETE FROM "Vote_v2" WHERE "chatId" = $1 AND "messageId" IN (SELECT id FROM target)
           ),
           messages AS (
               DELETE FROM "Message_v2" WHERE id IN (SELECT id FROM target) RETURNING 1
           )
           SELECT count(*) FROM messages"#,
    )
    .bind(chat_id)
    .bind(timestamp)
    .fetch_one(db)
    .await
}

/// Upstream's `getMessageCountByUserId`: how many messages the user sent
/// (role `user`) in the last `hours` hours, across their chats.
pub async fn count_by_user_id<'e>(
    db: impl PgExecutor<'e>,
    user_id: Uuid,
    hours: u32,
) -> sqlx::Result<i64> {
    let since = models::now() - Duration::hours(i64::from(hours));
    sqlx::query_scalar(concat!("SELECT ", user_messages_since!("$1", "$2")))
        .bind(user_id)
        .bind(since)
        .fetch_one(db)
        .await
}
