//! `"Vote_v2"`: thumbs up and down on assistant messages.

use sqlx::PgExecutor;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::caller::{ForCaller, caller_anchor, caller_found, first_uuid, rows_with};
use crate::db::models::Vote;

/// Up or down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VoteType {
    /// 👍
    Up,
    /// 👎
    Down,
}

/// Upstream's `voteMessage`: records the vote, or changes it, in one
/// statement (upstream reads, then inserts or updates).
pub async fn vote<'e>(
    db: impl PgExecutor<'e>,
    chat_id: Uuid,
    message_id: Uuid,
    vote: VoteType,
) -> sqlx::Result<Vote> {
    sqlx::query_as(
        r#"INSERT INTO "Vote_v2" ("chatId", "messageId", "isUpvoted") VALUES ($1, $2, $3)
           ON CONFLICT ("chatId", "messageId") DO UPDATE SET "isUpvoted" = EXCLUDED."isUpvoted"
           RETURNING "chatId", "messageId", "isUpvoted""#,
    )
    .bind(chat_id)
    .bind(message_id)
    .bind(vote == VoteType::Up)
    .fetch_one(db)
    .await
}

/// Records or changes a vote, only if the message belongs to the chat, in
/// one statement: the message row is locked as it is read, so its deletion
/// cannot slip in between and fail the foreign key. `None` when the message
/// is not in the chat.
pub async fn vote_in_chat<'e>(
    db: impl PgExecutor<'e>,
    chat_id: Uuid,
    message_id: Uuid,
    vote: VoteType,
) -> sqlx::Result<Option<Vote>> {
    sqlx::query_as(
        r#"INSERT INTO "Vote_v2" ("chatId", "messageId", "isUpvoted")
           SELECT "chatId", id, $3 FROM "Message_v2" WHERE id = $2 AND "chatId" = $1
           FOR KEY SHARE
           ON CONFLICT ("chatId", "messageId") DO UPDATE SET "isUpvoted" = EXCLUDED."isUpvoted"
           RETURNING "chatId", "messageId", "isUpvoted""#,
    )
    .bind(chat_id)
    .bind(message_id)
    .bind(vote == VoteType::Up)
    .fetch_optional(db)
    .await
}

/// A chat's owner, and its votes if the caller owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedVotes {
    /// Who the chat belongs to.
    pub owner: Uuid,
    /// Its votes (none unless the caller is the owner), by message id.
    pub votes: Vec<Vote>,
}

/// Upstream's `getVotesByChatId` with the checks before it, in one
/// statement: whether `caller` exists ([`super::caller`]), who owns the
/// chat, and its votes, read only if `caller` does. The answer is `None`
/// when there is no such chat.
pub async fn for_caller<'e>(
    db: impl PgExecutor<'e>,
    caller: Uuid,
    chat_id: Uuid,
) -> sqlx::Result<ForCaller<Option<OwnedVotes>>> {
    let rows: Vec<PgRow> = sqlx::query(concat!(
        r#"SELECT caller.found AS caller_found, c."userId" AS owner,
                  v."chatId", v."messageId", v."isUpvoted"
           FROM "#,
        caller_anchor!(),
        r#"
           LEFT JOIN "Chat" c ON c.id = $2
           LEFT JOIN "Vote_v2" v ON v."chatId" = c.id AND c."userId" = $1
           ORDER BY v."messageId""#
    ))
    .bind(caller)
    .bind(chat_id)
    .fetch_all(db)
    .await?;
    let answer = match first_uuid(&rows, "owner")? {
        Some(owner) => Some(OwnedVotes {
            owner,
            votes: rows_with(&rows, "messageId")?,
        }),
        None => None,
    };
    Ok(ForCaller {
        caller_found: caller_found(&rows)?,
        answer,
    })
}

/// Upstream's `getVotesByChatId`.
pub async fn get_by_chat_id<'e>(db: impl PgExecutor<'e>, chat_id: Uuid) -> sqlx::Result<Vec<Vote>> {
    sqlx::query_as(
        r#"SELECT "chatId", "messageId", "isUpvoted" FROM "Vote_v2"
           WHERE "chatId" = $1 ORDER BY "messageId""#,
    )
    .bind(chat_id)
    .fetch_all(db)
    .await
}
