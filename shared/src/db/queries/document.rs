//! `"Document"`: documents, one row per saved version.

use chrono::NaiveDateTime;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::models::{self, Document};

/// Upstream's `saveDocument`: a new version of document `id`.
pub async fn save<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    title: &str,
    kind: &str,
    content: &str,
    user_id: Uuid,
) -> sqlx::Result<Document> {
    sqlx::query_as(
        r#"INSERT INTO "Document" (id, "createdAt", title, content, text, "userId")
           VALUES ($1, $2, $3, $4, $5, $6)
           RETURNING id, "createdAt", title, content, text, "userId""#,
    )
    .bind(id)
    .bind(models::now())
    .bind(title)
    .bind(content)
    .bind(kind)
    .bind(user_id)
    .fetch_one(db)
    .await
}

/// Upstream's `getDocumentsById`: every version, oldest first.
pub async fn get_versions<'e>(db: impl PgExecutor<'e>, id: Uuid) -> sqlx::Result<Vec<Document>> {
    sqlx::query_as(
        r#"SELECT id, "createdAt", title, content, text, "userId"
           FROM "Document" WHERE id = $1 ORDER BY "createdAt" ASC"#,
    )
    .bind(id)
    .fetch_all(db)
    .await
}

/// Upstream's `getDocumentById`: the latest version.
pub async fn get_latest<'e>(db: impl PgExecutor<'e>, id: Uuid) -> sqlx::Result<Option<Document>> {
    sqlx::query_as(
        r#"SELECT id, "createdAt", title, content, text, "userId"
           FROM "Document" WHERE id = $1 ORDER BY "createdAt" DESC LIMIT 1"#,
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Upstream's `deleteDocumentsByIdAfterTimestamp`: the versions newer than
/// `timestamp`, with their suggestions, in one statement. Returns the
/// deleted versions, oldest first.
pub async fn delete_after<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    timestamp: NaiveDateTime,
) -> sqlx::Result<Vec<Document>> {
    sqlx::query_as(
        r#"WITH suggestions AS (
               DELETE FROM "Suggestion" WHERE "documentId" = $1 AND "documentCreatedAt" > $2
           ),
           versions AS (
               DELETE FROM "Document" WHERE id = $1 AND "createdAt" > $2
               RETURNING id, "createdAt", title, content, text, "userId"
           )
           SELECT * FROM versions ORDER BY "createdAt" ASC"#,
    )
    .bind(id)
    .bind(timestamp)
    .fetch_all(db)
    .await
}
