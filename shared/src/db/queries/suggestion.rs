//! `"Suggestion"`: edits proposed for a version of a document.

use sqlx::PgExecutor;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::caller::{ForCaller, caller_anchor, caller_found, first_uuid, rows_with};
use crate::db::models::Suggestion;

/// A document's owner and its suggestions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentSuggestions {
    /// The owner of its first version; `None`: no such document.
    pub owner: Option<Uuid>,
    /// Its suggestions, oldest first.
    pub suggestions: Vec<Suggestion>,
}

/// A document's owner (as `document::owner`) and its suggestions (as
/// [`get_by_document_id`]), in the statement that also says whether
/// `caller` exists ([`super::caller`]).
pub async fn for_caller<'e>(
    db: impl PgExecutor<'e>,
    caller: Uuid,
    document_id: Uuid,
) -> sqlx::Result<ForCaller<DocumentSuggestions>> {
    let rows: Vec<PgRow> = sqlx::query(concat!(
        r#"SELECT caller.found AS caller_found, owner.id AS owner,
                  s.id, s."documentId", s."documentCreatedAt", s."originalText",
                  s."suggestedText", s.description, s."isResolved", s."userId", s."createdAt"
           FROM "#,
        caller_anchor!(),
        r#"
           LEFT JOIN LATERAL (
               SELECT "userId" AS id FROM "Document" WHERE id = $2
               ORDER BY "createdAt" ASC LIMIT 1
           ) owner ON TRUE
           LEFT JOIN "Suggestion" s ON s."documentId" = $2
           ORDER BY s."createdAt" ASC, s.id ASC"#
    ))
    .bind(caller)
    .bind(document_id)
    .fetch_all(db)
    .await?;
    Ok(ForCaller {
        caller_found: caller_found(&rows)?,
        answer: DocumentSuggestions {
            owner: first_uuid(&rows, "owner")?,
            suggestions: rows_with(&rows, "id")?,
        },
    })
}

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
