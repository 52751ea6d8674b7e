//! `"Suggestion"`: edits proposed for a version of a document.

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::db::models::Suggestion;

/// Upstream's `saveSuggestions`: all of them in one statement.
pub async fn save_all<'e>(
    db: impl PgExecutor<'e>,
    suggestions: &[Suggestion],
) -> sqlx::Result<u64> {
    if suggestions.is_empty() {
        return Ok(0);
    }
    let done = sqlx::query(
        r#"INSERT INTO "Suggestion" (id, "documentId", "documentCreatedAt", "originalText",
                                     "suggestedText", description, "isResolved", "userId", "createdAt")
           SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::timestamp[], $4::text[], $5::text[],
                                $6::text[], $7::bool[], $8::uuid[], $9::timestamp[])"#,
    )
    .bind(suggestions.iter().map(|s| s.id).collect::<Vec<_>>())
    .bind(suggestions.iter().map(|s| s.document_id).collect::<Vec<_>>())
    .bind(suggestions.iter().map(|s| s.document_created_at).collect::<Vec<_>>())
    .bind(suggestions.iter().map(|s| s.original_text.as_str()).collect::<Vec<_>>())
    .bind(suggestions.iter().map(|s| s.suggested_text.as_str()).collect::<Vec<_>>())
    .bind(suggestions.iter().map(|s| s.description.as_deref()).collect::<Vec<_>>())
    .bind(suggestions.iter().map(|s| s.is_resolved).collect::<Vec<_>>())
    .bind(suggestions.iter().map(|s| s.user_id).collect::<Vec<_>>())
    .bind(suggestions.iter().map(|s| s.created_at).collect::<Vec<_>>())
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Upstream's `getSuggestionsByDocumentId`: oldest first.
pub async fn get_by_document_id<'e>(
    db: impl PgExecutor<'e>,
    document_id: Uuid,
) -> sqlx::Result<Vec<Suggestion>> {
    sqlx::query_as(
        r#"SELECT id, "documentId", "documentCreatedAt", "originalText", "suggestedText",
                  description, "isResolved", "userId", "createdAt"
           FROM "Suggestion" WHERE "documentId" = $1 ORDER BY "createdAt" ASC, id ASC"#,
    )
    .bind(document_id)
    .fetch_all(db)
    .await
}
