//! The database every measurement of a run shares, and what is in it.
//!
//! One private database (`integration_tests::TestDb`, on the private
//! PostgreSQL it starts from the machine's binaries), migrated, holding a
//! realistic amount of other people's data so that the queries walk real
//! indexes: 500 users with 20 chats each, and then the users the
//! benchmarks act as.

use anyhow::{Context, Result};
use integration_tests::{ApiRequest, Shape, TEST_AUTH_SECRET, TestDb};
use serde_json::{Value, json};
use shared::config::AuthConfig;
use shared::http::identity::{UserType, issue_token};
use uuid::Uuid;

/// Users besides the ones the benchmarks act as, each with 20 chats.
const BACKGROUND_USERS: i64 = 500;

/// The chats of the history reader (the brief's "history with 20 chats").
pub const READER_CHATS: u32 = 20;

/// Users that send chat messages (one stream each at a time).
const CHATTERS: usize = 64;

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct User {
    /// Their id.
    pub id: Uuid,
    /// Their session token.
    pub token: String,
}

/// The shared database and the users and rows the benchmarks use.
pub struct Fixture {
    /// The database (dropped with the fixture).
    pub db: TestDb,
    /// The secret the tokens are signed with (`AUTH_SECRET`).
    pub secret: &'static str,
    /// A user with [`READER_CHATS`] chats: the history reader and voter.
    pub reader: User,
    /// One of the reader's chats, with [`Fixture::message`] in it.
    pub chat: Uuid,
    /// A message of [`Fixture::chat`], to vote on.
    pub message: Uuid,
    /// A document of the reader's, with a suggestion.
    pub document: Uuid,
    /// Users with no chats, who send chat messages.
    pub chatters: Vec<User>,
}

impl Fixture {
    /// A fresh migrated database with the fixture's rows, analysed.
    pub async fn create() -> Result<Fixture> {
        let db = TestDb::migrated().await;
        let auth = AuthConfig::with_secret(TEST_AUTH_SECRET);
        let pool = db.observer();
        let user = |email: String| {
            let auth = auth.clone();
            async move {
                let id = Uuid::new_v4();
                sqlx::query(r#"INSERT INTO "User" (id, email) VALUES ($1, $2)"#)
                    .bind(id)
                    .bind(&email)
                    .execute(pool)
                    .await?;
                let token = issue_token(&auth, id, UserType::Regular, Some(&email))?;
                anyhow::Ok(User { id, token })
            }
        };

        let reader = user("reader@example.com".to_owned()).await?;
        sqlx::query(
            r#"INSERT INTO "User" (id, email)
               SELECT gen_random_uuid(), 'user' || n || '@example.com'
               FROM generate_series(1, $1) AS n"#,
        )
        .bind(BACKGROUND_USERS)
        .execute(pool)
        .await?;
        // Twenty chats for the reader and for every background user, a
        // minute apart, stored as upstream stores them (UTC, milliseconds).
        sqlx::query(
            r#"INSERT INTO "Chat" (id, "createdAt", "userId", title, visibility)
               SELECT gen_random_uuid(),
                      date_trunc('milliseconds', now() AT TIME ZONE 'utc') - n * interval '1 minute',
                      u.id, 'A chat about topic ' || n, 'private'
               FROM "User" u, generate_series(1, $1) AS n"#,
        )
        .bind(i64::from(READER_CHATS))
        .execute(pool)
        .await?;
        let chat: Uuid = sqlx::query_scalar(
            r#"SELECT id FROM "Chat" WHERE "userId" = $1 ORDER BY "createdAt" DESC LIMIT 1"#,
        )
        .bind(reader.id)
        .fetch_one(pool)
        .await?;
        let message = Uuid::new_v4();
        sqlx::query(
            r#"INSERT INTO "Message_v2" (id, "chatId", role, parts, attachments, "createdAt")
               VALUES ($1, $2, 'assistant', '[{"type":"text","text":"Hello!"}]', '[]',
                       date_trunc('milliseconds', now() AT TIME ZONE 'utc'))"#,
        )
        .bind(message)
        .bind(chat)
        .execute(pool)
        .await?;
        let document = Uuid::new_v4();
        sqlx::query(
            r#"INSERT INTO "Document" (id, "createdAt", title, content, text, "userId")
               VALUES ($1, date_trunc('milliseconds', now() AT TIME ZONE 'utc'),
                       'Notes', 'Some text to improve.', 'text', $2)"#,
        )
        .bind(document)
        .bind(reader.id)
        .execute(pool)
        .await?;
        sqlx::query(
            r#"INSERT INTO "Suggestion" (id, "documentId", "documentCreatedAt", "originalText",
                                         "suggestedText", description, "isResolved", "userId", "createdAt")
               SELECT gen_random_uuid(), id, "createdAt", 'Some text', 'Better text',
                      'Say it better', false, "userId", "createdAt"
               FROM "Document" WHERE id = $1"#,
        )
        .bind(document)
        .execute(pool)
        .await?;
        let mut chatters = Vec::new();
        for n in 0..CHATTERS {
            chatters.push(user(format!("chatter{n}@example.com")).await?);
        }
        sqlx::raw_sql("ANALYZE")
            .execute(pool)
            .await
            .context("ANALYZE")?;
        Ok(Fixture {
            db,
            secret: TEST_AUTH_SECRET,
            reader,
            chat,
            message,
            document,
            chatters,
        })
    }

    /// `GET /api/history?limit=20` as the reader: the read route.
    pub fn history_request(&self) -> ApiRequest {
        ApiRequest::get("/api/history")
            .query("limit", &READER_CHATS.to_string())
            .bearer(&self.reader.token)
    }

    /// `PATCH /api/vote` as the reader: the write route (`up` or `down`).
    pub fn vote_request(&self, up: bool) -> ApiRequest {
        ApiRequest::new("PATCH", "/api/vote")
            .bearer(&self.reader.token)
            .json(&json!({
                "chatId": self.chat,
                "messageId": self.message,
                "type": if up { "up" } else { "down" },
            }))
    }

    /// `POST /api/chat` with a new chat, as `user`.
    pub fn chat_request(&self, user: &User) -> ApiRequest {
        ApiRequest::new("POST", "/api/chat")
            .bearer(&user.token)
            .json(&json!({
                "id": Uuid::new_v4(),
                "message": {
                    "id": Uuid::new_v4(),
                    "role": "user",
                    "parts": [{"type": "text", "text": "How fast is this?"}],
                },
                "selectedChatModel": "chat-model",
                "selectedVisibilityType": "private",
            }))
    }

    /// The first event of a cold start of `function` (the `round`th): a
    /// request that needs the database, as that function's callers send it.
    pub fn cold_event(&self, function: &str, round: usize) -> Result<Value> {
        let request = match function {
            "auth" => ApiRequest::get("/api/auth/session").bearer(&self.reader.token),
            // API Gateway's REST API streams (template.yaml); a new caller
            // each round keeps within the daily message limit.
            "chat" => {
                let caller = &self.chatters[round % self.chatters.len()];
                return Ok(self.chat_request(caller).event(Shape::RestV1));
            }
            "document" => ApiRequest::get("/api/document")
                .query("id", &self.document.to_string())
                .bearer(&self.reader.token),
            "history" => self.history_request(),
            "suggestions" => ApiRequest::get("/api/suggestions")
                .query("documentId", &self.document.to_string())
                .bearer(&self.reader.token),
            "vote" => self.vote_request(true),
            // A direct invocation: apply pending migrations (none) and report.
            "migrate" => return Ok(json!({})),
            other => anyhow::bail!("no cold-start event for {other}"),
        };
        Ok(request.event(Shape::HttpV2))
    }
}
