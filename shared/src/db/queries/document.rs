//! `"Document"`: documents, one row per saved version.

use chrono::NaiveDateTime;
use sqlx::PgExecutor;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::caller::{self, ForCaller, caller_anchor, caller_found, rows_with};
use crate::db::models::{self, Document};

/// Upstream's `saveDocument`: a new version of document `id`.
///
/// Versions are keyed by `(id, "createdAt")` in milliseconds, so a save in
/// the same millisecond as the latest version is stamped one millisecond
/// after it: versions stay ordered and never collide. Two saves racing for
/// the same stamp leave one without a row: `None`, and the caller saves again.
pub async fn save<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    title: &str,
    kind: &str,
    content: &str,
    user_id: Uuid,
) -> sqlx::Result<Option<Document>> {
    sqlx::query_as(
        r#"INSERT INTO "Document" (id, "createdAt", title, content, text, "userId")
           SELECT $1, GREATEST($2, max("createdAt") + interval '1 millisecond'), $3, $4, $5, $6
           FROM "Document" WHERE id = $1
           ON CONFLICT (id, "createdAt") DO NOTHING
           RETURNING id, "createdAt", title, content, text, "userId""#,
    )
    .bind(id)
    .bind(models::now())
    .bind(title)
    .bind(content)
    .bind(kind)
    .bind(user_id)
    .fetch_optional(db)
    .await
}

/// The owner of document `id`: the owner of its first version, as upstream
/// decides it (without reading every version's content).
pub async fn owner<'e>(db: impl PgExecutor<'e>, id: Uuid) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        r#"SELECT "userId" FROM "Document" WHERE id = $1 ORDER BY "createdAt" ASC LIMIT 1"#,
    )
    .bind(id)
    .fetch_optional(db)
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

/// [`get_versions`] in the statement that also says whether `caller`
/// exists ([`super::caller`]).
pub async fn versions_for_caller<'e>(
    db: impl PgExecutor<'e>,
    caller: Uuid,
    id: Uuid,
) -> sqlx::Result<ForCaller<Vec<Document>>> {
    let rows: Vec<PgRow> = sqlx::query(concat!(
        r#"SELECT caller.found AS caller_found,
                  d.id, d."createdAt", d.title, d.content, d.text, d."userId"
           FROM "#,
        caller_anchor!(),
        r#"
           LEFT JOIN "Document" d ON d.id = $2
           ORDER BY d."createdAt" ASC"#
    ))
    .bind(caller)
    .bind(id)
    .fetch_all(db)
    .await?;
    Ok(ForCaller {
        caller_found: caller_found(&rows)?,
        answer: rows_with(&rows, "id")?,
    })
}

/// [`owner`], in the statement that also says whether `caller` exists
/// ([`super::caller`]).
pub async fn owner_for_caller<'e>(
    db: impl PgExecutor<'e>,
    caller: Uuid,
    id: Uuid,
) -> sqlx::Result<ForCaller<Option<Uuid>>> {
    let statement = concat!(
        r#"SELECT caller.found AS caller_found,
                  (SELECT "userId" FROM "Document" WHERE id = $2
                   ORDER BY "createdAt" ASC LIMIT 1) AS owner
           FROM "#,
        caller_anchor!()
    );
    caller::owner_for_caller(db, statement, caller, id).await
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
