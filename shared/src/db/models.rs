//! The rows of the upstream chatbot's tables, serialised as its API
//! serialises them (drizzle rows through `Response.json`): camelCase keys,
//! timestamps as ISO 8601 in UTC with milliseconds (`2025-01-31T12:00:00.000Z`).
//!
//! Timestamps are `timestamp without time zone` holding UTC, as upstream
//! stores them. We write them with millisecond precision, as JavaScript's
//! `Date` does: clients send back the `createdAt` they were given (to delete
//! document versions after it, say), and a microsecond we kept but never
//! showed would make "after" wrong.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;
use uuid::Uuid;

/// The current time as we store it: UTC, to the millisecond.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(3)
}

/// Parses a timestamp the way JavaScript's `new Date(string)` accepts the
/// ones our API hands out: RFC 3339 (`2025-01-31T12:00:00.000Z`, or with an
/// offset). Returns UTC.
pub fn parse_timestamp(value: &str) -> Option<NaiveDateTime> {
    DateTime::parse_from_rfc3339(value.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc).naive_utc())
}

/// Serde helpers for `timestamp` columns.
pub mod timestamp {
    use chrono::NaiveDateTime;
    use serde::Serializer;

    /// `2025-01-31T12:00:00.000Z`, as JavaScript's `Date.toJSON()`.
    pub fn format(value: &NaiveDateTime) -> String {
        value.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    }

    /// Serialises like [`format`].
    pub fn serialize<S: Serializer>(
        value: &NaiveDateTime,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&value.format("%Y-%m-%dT%H:%M:%S%.3fZ"))
    }
}

/// A row of `"User"`. The password hash is never serialised.
#[derive(Debug, Clone, FromRow, Serialize)]
#[sqlx(rename_all = "camelCase")]
pub struct User {
    /// The user's id.
    pub id: Uuid,
    /// E-mail address, or `guest-<number>` for guests.
    pub email: String,
    /// bcrypt hash; `NULL` for users who cannot sign in with a password.
    #[serde(skip)]
    pub password: Option<String>,
}

/// A row of `"Chat"`.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct Chat {
    /// The chat's id (chosen by the client).
    pub id: Uuid,
    /// When the chat was saved.
    #[serde(with = "timestamp")]
    pub created_at: NaiveDateTime,
    /// Its title.
    pub title: String,
    /// Its owner.
    pub user_id: Uuid,
    /// `public` or `private`.
    #[schema(pattern = "^(public|private)$")]
    pub visibility: String,
}

/// A row of `"Message_v2"`.
#[derive(Debug, Clone, PartialEq, FromRow, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct Message {
    /// The message's id (chosen by the client for user messages).
    pub id: Uuid,
    /// Its chat.
    pub chat_id: Uuid,
    /// `user` or `assistant` (or `system`).
    pub role: String,
    /// The AI SDK message parts, as JSON.
    #[schema(value_type = Vec<Object>)]
    pub parts: sqlx::types::Json<serde_json::Value>,
    /// Attachments, as JSON (upstream keeps `[]` here now; files are parts).
    #[schema(value_type = Vec<Object>)]
    pub attachments: sqlx::types::Json<serde_json::Value>,
    /// When it was saved.
    #[serde(with = "timestamp")]
    pub created_at: NaiveDateTime,
}

/// A row of `"Vote_v2"`.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct Vote {
    /// The chat of the message.
    pub chat_id: Uuid,
    /// The message voted on.
    pub message_id: Uuid,
    /// Up or down.
    pub is_upvoted: bool,
}

/// A row of `"Document"`: one version of a document.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct Document {
    /// The document's id, shared by all its versions.
    pub id: Uuid,
    /// When this version was saved; with `id`, the primary key.
    #[serde(with = "timestamp")]
    pub created_at: NaiveDateTime,
    /// Its title.
    pub title: String,
    /// Its content.
    pub content: Option<String>,
    /// `text`, `code`, `image` or `sheet` (the column is named `text`).
    #[sqlx(rename = "text")]
    #[schema(pattern = "^(text|code|image|sheet)$")]
    pub kind: String,
    /// Its owner.
    pub user_id: Uuid,
}

/// A row of `"Suggestion"`.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct Suggestion {
    /// The suggestion's id.
    pub id: Uuid,
    /// The document it is about...
    pub document_id: Uuid,
    /// ...and the version of it.
    #[serde(with = "timestamp")]
    pub document_created_at: NaiveDateTime,
    /// The text to replace.
    pub original_text: String,
    /// The replacement.
    pub suggested_text: String,
    /// Why.
    pub description: Option<String>,
    /// Whether it was dealt with.
    pub is_resolved: bool,
    /// The document's owner.
    pub user_id: Uuid,
    /// When it was made.
    #[serde(with = "timestamp")]
    pub created_at: NaiveDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, Timelike};

    #[test]
    fn timestamps_serialise_like_javascript_dates() {
        let t = NaiveDate::from_ymd_opt(2025, 1, 31)
            .and_then(|d| d.and_hms_micro_opt(12, 0, 5, 123_456))
            .expect("valid date");
        assert_eq!(timestamp::format(&t), "2025-01-31T12:00:05.123Z");
    }

    #[test]
    fn now_is_whole_milliseconds() {
        assert_eq!(now().nanosecond() % 1_000_000, 0);
    }

    #[test]
    fn timestamps_we_hand_out_parse_back_to_the_same_instant() {
        let t = now();
        assert_eq!(parse_timestamp(&timestamp::format(&t)), Some(t));
        assert_eq!(
            parse_timestamp("2025-01-31T13:00:00.000+01:00"),
            parse_timestamp("2025-01-31T12:00:00.000Z")
        );
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn the_password_hash_is_never_serialised() {
        let user = User {
            id: Uuid::nil(),
            email: "ada@example.com".into(),
            password: Some("$2b$10$abcdefghijklmnopqrstuv".into()),
        };
        let json = serde_json::to_string(&user).expect("serialises");
        assert!(!json.contains("$2b$"), "{json}");
    }
}
