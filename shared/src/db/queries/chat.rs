//! `"Chat"`: chats, history pages, and deletion with everything that hangs
//! off a chat.

use serde::Serialize;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::caller::{self, ForCaller, caller_anchor};
use crate::db::models::{self, Chat};

/// Upstream's `saveChat`.
pub async fn save<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    user_id: Uuid,
    title: &str,
    visibility: &str,
) -> sqlx::Result<Chat> {
    sqlx::query_as(
        r#"INSERT INTO "Chat" (id, "createdAt", "userId", title, visibility)
           VALUES ($1, $2, $3, $4, $5)
           RETURNING id, "createdAt", title, "userId", visibility"#,
    )
    .bind(id)
    .bind(models::now())
    .bind(user_id)
    .bind(title)
    .bind(visibility)
    .fetch_one(db)
    .await
}

/// Who owns chat `id` (`None`: no such chat), in the statement that also
/// says whether `caller` exists ([`super::caller`]).
pub async fn owner_for_caller<'e>(
    db: impl PgExecutor<'e>,
    caller: Uuid,
    id: Uuid,
) -> sqlx::Result<ForCaller<Option<Uuid>>> {
    let statement = concat!(
        r#"SELECT caller.found AS caller_found,
                  (SELECT "userId" FROM "Chat" WHERE id = $2) AS owner
           FROM "#,
        caller_anchor!()
    );
    caller::owner_for_caller(db, statement, caller, id).await
}

/// Upstream's `getChatById`.
pub async fn get_by_id<'e>(db: impl PgExecutor<'e>, id: Uuid) -> sqlx::Result<Option<Chat>> {
    sqlx::query_as(
        r#"SELECT id, "createdAt", title, "userId", visibility FROM "Chat" WHERE id = $1"#,
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Upstream's `deleteChatById`: the chat, its votes, messages and stream
/// ids, in one statement. Returns the deleted chat.
///
/// The chat row is locked first, so a message being saved into it at the
/// same moment waits, then fails on its foreign key, rather than making
/// this delete fail.
pub async fn delete_by_id<'e>(db: impl PgExecutor<'e>, id: Uuid) -> sqlx::Result<Option<Chat>> {
    sqlx::query_as(
        r#"WITH target AS (SELECT id FROM "Chat" WHERE id = $1 FOR UPDATE),
                votes AS (DELETE FROM "Vote_v2" WHERE "chatId" IN (SELECT id FROM target)),
                messages AS (DELETE FROM "Message_v2" WHERE "chatId" IN (SELECT id FROM target)),
                streams AS (DELETE FROM "Stream" WHERE "chatId" IN (SELECT id FROM target))
           DELETE FROM "Chat" WHERE id IN (SELECT id FROM target)
           RETURNING id, "createdAt", title, "userId", visibility"#,
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Upstream's `deleteAllChatsByUserId`: every chat of the user, with its
/// votes, messages and stream ids, in one statement. Returns how many
/// chats went.
pub async fn delete_all_by_user_id<'e>(
    db: impl PgExecutor<'e>,
    user_id: Uuid,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        r#"WITH target AS (SELECT id FROM "Chat" WHERE "userId" = $1 FOR UPDATE),
                votes AS (DELETE FROM "Vote_v2" WHERE "chatId" IN (SELECT id FROM target)),
                messages AS (DELETE FROM "Message_v2" WHERE "chatId" IN (SELECT id FROM target)),
                streams AS (DELETE FROM "Stream" WHERE "chatId" IN (SELECT id FROM target)),
                chats AS (DELETE FROM "Chat" WHERE id IN (SELECT id FROM target) RETURNING 1)
           SELECT count(*) FROM chats"#,
    )
    .bind(user_id)
    .fetch_one(db)
    .await
}

/// Where a history page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// The newest chats.
    Newest,
    /// Chats newer than this one (upstream's `starting_after`: the newest
    /// `limit` of them).
    StartingAfter(Uuid),
    /// Chats older than this one (upstream's `ending_before`: what the
    /// sidebar loads as it scrolls back).
    EndingBefore(Uuid),
}

/// One page of history: upstream's `{ chats, hasMore }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatPage {
    /// Newest first.
    pub chats: Vec<Chat>,
    /// Whether more chats lie beyond this page.
    pub has_more: bool,
}

/// Upstream's `getChatsByUserId`: a page of the user's chats, newest first.
///
/// Returns `None` when the cursor is not one of the user's chats (upstream
/// looks the cursor up among all chats; we do not let one user page by
/// another's chat). Chats created in the same millisecond are ordered by
/// id, so a page boundary never skips or repeats one.
pub async fn page_by_user_id<'e>(
    db: impl PgExecutor<'e>,
    user_id: Uuid,
    limit: u32,
    cursor: Cursor,
) -> sqlx::Result<Option<ChatPage>> {
    Ok(page_for_caller(db, user_id, limit, cursor).await?.answer)
}

/// [`page_by_user_id`], for the user as the caller: the same statement
/// also says whether they exist ([`super::caller`]).
pub async fn page_for_caller<'e>(
    db: impl PgExecutor<'e>,
    user_id: Uuid,
    limit: u32,
    cursor: Cursor,
) -> sqlx::Result<ForCaller<Option<ChatPage>>> {
    let (statement, cursor_id) = match cursor {
        Cursor::Newest => (PAGE_NEWEST, None),
        Cursor::StartingAfter(id) => (PAGE_NEWER_THAN, Some(id)),
        Cursor::EndingBefore(id) => (PAGE_OLDER_THAN, Some(id)),
    };
    let rows: Vec<PageRow> = sqlx::query_as(statement)
        .bind(user_id)
        .bind(i64::from(limit) + 1)
        .bind(cursor_id)
        .fetch_all(db)
        .await?;

    let caller_found = rows.first().is_some_and(|row| row.caller_found);
    if rows.first().is_some_and(|row| !row.cursor_found) {
        return Ok(ForCaller {
            caller_found,
            answer: None,
        });
    }
    let mut chats: Vec<Chat> = rows.into_iter().filter_map(PageRow::into_chat).collect();
    let has_more = chats.len() > limit as usize;
    chats.truncate(limit as usize);
    Ok(ForCaller {
        caller_found,
        answer: Some(ChatPage { chats, has_more }),
    })
}

// The page queries. $1: user, $2: limit + 1 (one more tells whether there
// is more), $3: cursor chat. Each starts from the caller's anchor (one row,
// `caller_found`), and with a cursor `cursor_row` is always one row too
// (NULLs when the cursor is not the user's chat), so the result tells "no
// such caller", "no such cursor" and "empty page" apart in one round trip.
// All three walk the ("userId", "createdAt" DESC, id DESC) index.
const PAGE_NEWEST: &str = concat!(
    r#"
    SELECT ch.id, ch."createdAt", ch.title, ch."userId", ch.visibility,
           TRUE AS cursor_found, caller.found AS caller_found
    FROM "#,
    caller_anchor!(),
    r#"
    LEFT JOIN LATERAL (
        SELECT * FROM "Chat" ch
        WHERE ch."userId" = $1 AND $3::uuid IS NULL
        ORDER BY ch."createdAt" DESC, ch.id DESC
        LIMIT $2
    ) ch ON caller.found"#
);

/// The page query with a cursor: `$op` compares each chat with the cursor
/// chat (`>` newer, `<` older).
macro_rules! page_from_cursor {
    ($op:literal) => {
        concat!(
            r#"
    WITH cursor_row AS (
        SELECT c."createdAt", c.id, caller.found
        FROM "#,
            caller_anchor!(),
            r#"
        LEFT JOIN "Chat" c ON c.id = $3 AND c."userId" = $1
    )
    SELECT ch.id, ch."createdAt", ch.title, ch."userId", ch.visibility,
           cursor_row.id IS NOT NULL AS cursor_found, cursor_row.found AS caller_found
    FROM cursor_row
    LEFT JOIN LATERAL (
        SELECT * FROM "Chat" ch
        WHERE ch."userId" = $1
          AND (ch."createdAt", ch.id) "#,
            $op,
            r#" (cursor_row."createdAt", cursor_row.id)
        ORDER BY ch."createdAt" DESC, ch.id DESC
        LIMIT $2
    ) ch ON TRUE"#
        )
    };
}

const PAGE_NEWER_THAN: &str = page_from_cursor!(">");
const PAGE_OLDER_THAN: &str = page_from_cursor!("<");

/// A row of the page query: a chat (all NULL when the page is empty) and
/// whether the cursor was found.
#[derive(sqlx::FromRow)]
#[sqlx(rename_all = "camelCase")]
struct PageRow {
    id: Option<Uuid>,
    created_at: Option<chrono::NaiveDateTime>,
    title: Option<String>,
    user_id: Option<Uuid>,
    visibility: Option<String>,
    #[sqlx(rename = "cursor_found")]
    cursor_found: bool,
    #[sqlx(rename = "caller_found")]
    caller_found: bool,
}

impl PageRow {
    fn into_chat(self) -> Option<Chat> {
        Some(Chat {
            id: self.id?,
            created_at: self.created_at?,
            title: self.title?,
            user_id: self.user_id?,
            visibility: self.visibility?,
        })
    }
}

/// Upstream's `updateChatVisibilityById`. Returns whether a chat changed.
pub async fn update_visibility<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    visibility: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query(r#"UPDATE "Chat" SET visibility = $2 WHERE id = $1"#)
        .bind(id)
        .bind(visibility)
        .execute(db)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Upstream's `updateChatTitleById`. Returns whether a chat changed.
pub async fn update_title<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    title: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query(r#"UPDATE "Chat" SET title = $2 WHERE id = $1"#)
        .bind(id)
        .bind(title)
        .execute(db)
        .await?;
    Ok(done.rows_affected() > 0)
}
