//! The whole backend as a developer runs it: every function under the real
//! `cargo lambda watch`, one base URL, driven over HTTP on localhost, on a
//! database of the test's own. Sign-up, a streamed chat, history, votes,
//! documents, suggestions and deletion, then the errors that cross function
//! boundaries; then the watcher is stopped, and every function's
//! connections must be gone from the server.
//!
//! Needs `cargo lambda` (`pip install cargo-lambda`; `.ci/run` and
//! `cargo xtask dev` install it).

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use integration_tests::TestDb;
use integration_tests::watch::Watch;
use serde_json::{Value, json};
use uuid::Uuid;

/// Pause of the offline model before each word: long enough that the
/// first chunk clearly comes before the last word is written.
const TOKEN_DELAY_MS: u64 = 60;

/// The backends of every function on the test's database.
async fn function_backends(db: &TestDb) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'chat-backend:%'",
    )
    .bind(db.name())
    .fetch_one(db.observer())
    .await
    .expect("pg_stat_activity")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_backend_under_cargo_lambda_watch_serves_every_route_and_closes_its_connections()
{
    // reqwest's TLS (unused on localhost) needs a crypto provider chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = TestDb::migrated().await;
    let delay = TOKEN_DELAY_MS.to_string();
    let ready = [
        "/api/auth/session",
        "/api/history",
        "/api/vote?chatId=00000000-0000-4000-8000-000000000000",
        "/api/document?id=00000000-0000-4000-8000-000000000000",
        "/api/suggestions?documentId=00000000-0000-4000-8000-000000000000",
    ]
    .map(|path| (reqwest::Method::GET, path))
    .into_iter()
    .chain([(
        reqwest::Method::DELETE,
        "/api/chat?id=00000000-0000-4000-8000-000000000000",
    )])
    .collect::<Vec<_>>();
    let watch = Watch::start(&db, &[], &[("OFFLINE_MODEL_DELAY_MS", &delay)], &ready).await;
    let http = reqwest::Client::new();

    // Sign up, and use the token everywhere.
    let signed_up: Value = http
        .post(watch.url("/api/auth/register"))
        .json(&json!({"email": "ada@example.com", "password": "correct horse"}))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("JSON");
    let token = signed_up["token"].as_str().expect("a token").to_owned();
    let bearer = format!("Bearer {token}");

    // A chat, streamed: the first chunk long before the last word.
    let chat_id = Uuid::new_v4();
    let body = json!({
        "id": chat_id,
        "message": {"id": Uuid::new_v4(), "role": "user", "parts": [{"type": "text", "text": "Hello over HTTP"}]},
        "selectedChatModel": "chat-model",
        "selectedVisibilityType": "private",
    });
    let started = Instant::now();
    let response = http
        .post(watch.url("/api/chat"))
        .header("authorization", &bearer)
        .json(&body)
        .send()
        .await
        .expect("chat");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = response.bytes_stream();
    let mut text = String::new();
    let mut first_delta_at = None;
    while let Some(chunk) = stream.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.expect("a chunk")));
        if first_delta_at.is_none() && text.contains("text-delta") {
            first_delta_at = Some(started.elapsed());
        }
    }
    let total = started.elapsed();
    let first = first_delta_at.expect("at least one word");
    let words = text.matches("\"text-delta\"").count() as u32;
    println!("streamed {words} words: first after {first:?}, all after {total:?}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(words > 10);
    // The words come one pause apart: the whole reply takes words x pause,
    // and the first word came before half of it.
    assert!(total >= Duration::from_millis(TOKEN_DELAY_MS) * (words - 1));
    assert!(
        first < total / 2,
        "first word after {first:?} of {total:?}: not streamed"
    );
    let reads = integration_tests::ai_sdk::read("ai6", &text);
    assert!(reads.errors.is_empty());
    let reply_id = reads.message["id"]
        .as_str()
        .expect("a message id")
        .to_owned();

    // History, vote, document, suggestions, session: one token, every function.
    let history: Value = http
        .get(watch.url("/api/history"))
        .header("authorization", &bearer)
        .send()
        .await
        .expect("history")
        .json()
        .await
        .expect("JSON");
    assert_eq!(history["chats"][0]["id"], json!(chat_id));
    assert_eq!(history["chats"][0]["title"], "Hello over HTTP");
    let voted = http
        .patch(watch.url("/api/vote"))
        .header("authorization", &bearer)
        .json(&json!({"chatId": chat_id, "messageId": reply_id, "type": "up"}))
        .send()
        .await
        .expect("vote");
    assert_eq!(voted.status(), 200);
    assert_eq!(voted.text().await.expect("text"), "Message voted");
    let votes: Value = http
        .get(watch.url("/api/vote"))
        .query(&[("chatId", chat_id.to_string())])
        .header("authorization", &bearer)
        .send()
        .await
        .expect("votes")
        .json()
        .await
        .expect("JSON");
    assert_eq!(votes[0]["isUpvoted"], true);
    let document_id = Uuid::new_v4();
    for content in ["First draft", "Second draft"] {
        let saved = http
            .post(watch.url("/api/document"))
            .query(&[("id", document_id.to_string())])
            .header("authorization", &bearer)
            .json(&json!({"title": "Essay", "content": content, "kind": "text"}))
            .send()
            .await
            .expect("document");
        assert_eq!(saved.status(), 200);
    }
    let versions: Value = http
        .get(watch.url("/api/document"))
        .query(&[("id", document_id.to_string())])
        .header("authorization", &bearer)
        .send()
        .await
        .expect("versions")
        .json()
        .await
        .expect("JSON");
    assert_eq!(versions.as_array().map(Vec::len), Some(2));
    let deleted: Value = http
        .delete(watch.url("/api/document"))
        .query(&[
            ("id", document_id.to_string()),
            (
                "timestamp",
                versions[0]["createdAt"]
                    .as_str()
                    .expect("a time")
                    .to_owned(),
            ),
        ])
        .header("authorization", &bearer)
        .send()
        .await
        .expect("delete versions")
        .json()
        .await
        .expect("JSON");
    assert_eq!(deleted[0]["content"], "Second draft");
    let suggestions: Value = http
        .get(watch.url("/api/suggestions"))
        .query(&[("documentId", document_id.to_string())])
        .header("authorization", &bearer)
        .send()
        .await
        .expect("suggestions")
        .json()
        .await
        .expect("JSON");
    assert_eq!(suggestions, json!([]));
    let session: Value = http
        .get(watch.url("/api/auth/session"))
        .header("authorization", &bearer)
        .send()
        .await
        .expect("session")
        .json()
        .await
        .expect("JSON");
    assert_eq!(session["user"]["email"], "ada@example.com");

    // Across function boundaries, a bad token is refused everywhere alike.
    let forged = format!(
        "Bearer {}",
        integration_tests::sign_token(
            &json!({"sub": signed_up["user"]["id"], "type": "regular", "iss": "chat-backend", "exp": 4_102_444_800_u64}),
            "not-our-secret-not-our-secret-xx"
        )
    );
    for (method, path) in [
        ("GET", "/api/history"),
        (
            "GET",
            "/api/vote?chatId=00000000-0000-4000-8000-000000000000",
        ),
        (
            "GET",
            "/api/document?id=00000000-0000-4000-8000-000000000000",
        ),
        (
            "GET",
            "/api/suggestions?documentId=00000000-0000-4000-8000-000000000000",
        ),
        ("GET", "/api/auth/session"),
        (
            "DELETE",
            "/api/chat?id=00000000-0000-4000-8000-000000000000",
        ),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let response = http
            .request(method, watch.url(path))
            .header("authorization", &forged)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 401, "{path}");
    }

    // Deleting the chat through the chat function empties the history.
    let gone = http
        .delete(watch.url("/api/chat"))
        .query(&[("id", chat_id.to_string())])
        .header("authorization", &bearer)
        .send()
        .await
        .expect("delete chat");
    assert_eq!(gone.status(), 200);
    let history: Value = http
        .get(watch.url("/api/history"))
        .header("authorization", &bearer)
        .send()
        .await
        .expect("history")
        .json()
        .await
        .expect("JSON");
    assert_eq!(history, json!({"chats": [], "hasMore": false}));

    // Every function held its connection while it ran...
    assert!(function_backends(&db).await >= 1);
    // ...and stopping the watcher closes them all.
    watch.stop().await;
    let started = Instant::now();
    while function_backends(&db).await > 0 && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(function_backends(&db).await, 0);
}
