//! Statements that confirm their caller as they do their work.
//!
//! A session token is checked against the database on every request: a
//! deleted user's token is refused. That check used to be a statement of
//! its own, a round trip before the work. A read route folds it into its
//! one statement instead: the statement starts from a one-row anchor that
//! says whether the caller's `"User"` row exists, and joins the work to
//! it, so that one round trip answers both. `$1` is always the caller.
//!
//! The anchor's row comes back even when the work finds nothing (its
//! columns NULL, from the `LEFT JOIN`), so "no such caller" and "nothing
//! there" stay apart.

use sqlx::postgres::PgRow;
use sqlx::{FromRow, Row};

/// The anchor: one row, whose `found` says whether caller `$1` exists.
macro_rules! caller_anchor {
    () => {
        r#"(SELECT EXISTS (SELECT 1 FROM "User" WHERE id = $1) AS found) AS caller"#
    };
}
pub(crate) use caller_anchor;

/// What a statement that confirms its caller found: whether the caller
/// exists, and its answer (only meaningful when they do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForCaller<T> {
    /// The caller's `"User"` row exists.
    pub caller_found: bool,
    /// What the work found.
    pub answer: T,
}

/// Runs `statement`, which selects `caller_found` and `owner` (a `uuid`,
/// NULL when there is no such thing) from the anchor, with `$1` the caller
/// and `$2` the thing's id. The owner check before a write, with the
/// caller's, in one round trip.
pub(crate) async fn owner_for_caller<'e>(
    db: impl sqlx::PgExecutor<'e>,
    statement: &'static str,
    caller: uuid::Uuid,
    id: uuid::Uuid,
) -> sqlx::Result<ForCaller<Option<uuid::Uuid>>> {
    let (caller_found, answer) = sqlx::query_as(statement)
        .bind(caller)
        .bind(id)
        .fetch_one(db)
        .await?;
    Ok(ForCaller {
        caller_found,
        answer,
    })
}

/// Whether the caller was found: every row says so (`caller_found`).
pub(crate) fn caller_found(rows: &[PgRow]) -> sqlx::Result<bool> {
    match rows.first() {
        Some(row) => row.try_get("caller_found"),
        // The anchor always gives a row; none means the statement is wrong.
        None => Err(sqlx::Error::RowNotFound),
    }
}

/// The first row's `column`, a `uuid` the work may have left NULL.
pub(crate) fn first_uuid(rows: &[PgRow], column: &str) -> sqlx::Result<Option<uuid::Uuid>> {
    match rows.first() {
        Some(row) => row.try_get(column),
        None => Ok(None),
    }
}

/// The rows that carry the work's `key` column, as `T`; the others are the
/// anchor's placeholder.
pub(crate) fn rows_with<T>(rows: &[PgRow], key: &str) -> sqlx::Result<Vec<T>>
where
    T: for<'r> FromRow<'r, PgRow>,
{
    let mut found = Vec::with_capacity(rows.len());
    for row in rows {
        if row.try_get::<Option<uuid::Uuid>, _>(key)?.is_some() {
            found.push(T::from_row(row)?);
        }
    }
    Ok(found)
}
