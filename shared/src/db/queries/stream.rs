//! `"Stream"`: the ids of a chat's response streams, for resuming them.

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::db::models;

/// Upstream's `createStreamId`.
pub async fn create<'e>(
    db: impl PgExecutor<'e>,
    stream_id: Uuid,
    chat_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query(r#"INSERT INTO "Stream" (id, "chatId", "createdAt") VALUES ($1, $2, $3)"#)
        .bind(stream_id)
        .bind(chat_id)
        .bind(models::now())
        .execute(db)
        .await?;
    Ok(())
}

/// Upstream's `getStreamIdsByChatId`: oldest first.
pub async fn ids_by_chat_id<'e>(db: impl PgExecutor<'e>, chat_id: Uuid) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        r#"SELECT id FROM "Stream" WHERE "chatId" = $1 ORDER BY "createdAt" ASC, id ASC"#,
    )
    .bind(chat_id)
    .fetch_all(db)
    .await
}
