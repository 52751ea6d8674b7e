//! Ada and Babbage. Babbage, signed in, aims every route of every function
//! at Ada's chat, messages, votes, document and suggestions: every attempt
//! is refused or sees only his own, and afterwards every table holds
//! exactly what it held before.

use integration_tests::fault_kit::fingerprint;
use integration_tests::{ApiRequest, Shape, TestApp, TestDb, TestResponse, TestUser};
use serde_json::json;
use shared::db::models::{self, Suggestion};
use shared::db::queries::vote::{self, VoteType};
use shared::db::queries::{chat, document, message, suggestion};
use shared::http::identity::UserType;
use uuid::Uuid;

struct Adas {
    chat_id: Uuid,
    message_id: Uuid,
    document_id: Uuid,
    created_at: String,
}

async fn adas_things(app: &TestApp, ada: &TestUser) -> Adas {
    let pool = app.observer();
    let chat_id = Uuid::new_v4();
    chat::save(pool, chat_id, ada.id, "Ada's notes", "private")
        .await
        .expect("chat");
    let message_id = Uuid::new_v4();
    message::save_all(
        pool,
        &[message::NewMessage {
            id: message_id,
            chat_id,
            role: "assistant".into(),
            parts: json!([{"type": "text", "text": "The Analytical Engine weaves algebraic patterns."}]),
            attachments: json!([]),
            created_at: models::now(),
        }],
    )
    .await
    .expect("message");
    vote::vote(pool, chat_id, message_id, VoteType::Up)
        .await
        .expect("vote");
    shared::db::queries::stream::create(pool, Uuid::new_v4(), chat_id)
        .await
        .expect("stream");
    let document_id = Uuid::new_v4();
    let first = document::save(pool, document_id, "Note G", "text", "v1", ada.id)
        .await
        .expect("document")
        .expect("saved");
    document::save(pool, document_id, "Note G", "text", "v2", ada.id)
        .await
        .expect("document");
    suggestion::save_all(
        pool,
        &[Suggestion {
            id: Uuid::new_v4(),
            document_id,
            document_created_at: first.created_at,
            original_text: "v1".into(),
            suggested_text: "Bernoulli".into(),
            description: None,
            is_resolved: false,
            user_id: ada.id,
            created_at: models::now(),
        }],
    )
    .await
    .expect("suggestion");
    Adas {
        chat_id,
        message_id,
        document_id,
        created_at: models::timestamp::format(&first.created_at),
    }
}

#[tokio::test]
async fn babbage_can_neither_read_change_nor_delete_anything_of_adas_through_any_route() {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "fixtures", &[]);
    let ada = app.user("ada@example.com", UserType::Regular).await;
    let babbage = app.user("babbage@example.com", UserType::Regular).await;
    let adas = adas_things(&app, &ada).await;
    let before = fingerprint(db.observer()).await;

    let chat_id = adas.chat_id.to_string();
    let message_id = adas.message_id.to_string();
    let document_id = adas.document_id.to_string();
    let attempts: Vec<(&str, ApiRequest, u16)> = vec![
        (
            "vote",
            ApiRequest::get("/api/vote").query("chatId", &chat_id),
            403,
        ),
        (
            "vote",
            ApiRequest::new("PATCH", "/api/vote")
                .json(&json!({"chatId": chat_id, "messageId": message_id, "type": "down"})),
            403,
        ),
        (
            "document",
            ApiRequest::get("/api/document").query("id", &document_id),
            403,
        ),
        (
            "document",
            ApiRequest::new("POST", "/api/document")
                .query("id", &document_id)
                .json(&json!({"title": "Mine now", "content": "x", "kind": "text"})),
            403,
        ),
        (
            "document",
            ApiRequest::delete("/api/document")
                .query("id", &document_id)
                .query("timestamp", &adas.created_at),
            403,
        ),
        (
            "suggestions",
            ApiRequest::get("/api/suggestions").query("documentId", &document_id),
            403,
        ),
        // Ada's chat as a page cursor is "not found" for Babbage.
        (
            "history",
            ApiRequest::get("/api/history").query("ending_before", &chat_id),
            400,
        ),
    ];
    for shape in Shape::ALL {
        for (function, request, status) in &attempts {
            let babbages_app = TestApp::new(&db, "probe", &[]);
            let request = request.clone().bearer(&babbage.token).build(shape);
            let response: TestResponse = match *function {
                "vote" => babbages_app.call(vote_fn::handle, request).await,
                "document" => babbages_app.call(::document::handle, request).await,
                "suggestions" => babbages_app.call(suggestions::handle, request).await,
                _ => babbages_app.call(history::handle, request).await,
            };
            assert_eq!(
                response.status, *status,
                "{shape:?} {function}: {}",
                response.text
            );
            assert!(
                !response.text.contains("Analytical"),
                "{function} leaked Ada's message"
            );
            assert!(
                !response.text.contains("Bernoulli"),
                "{function} leaked Ada's suggestion"
            );
        }
        // His own history is his own: empty, and deleting it deletes none of Ada's.
        let history = TestApp::new(&db, "history", &[]);
        let listed = history
            .call(
                history::handle,
                ApiRequest::get("/api/history")
                    .bearer(&babbage.token)
                    .build(shape),
            )
            .await;
        assert_eq!(listed.json, json!({"chats": [], "hasMore": false}));
        let deleted = history
            .call(
                history::handle,
                ApiRequest::delete("/api/history")
                    .bearer(&babbage.token)
                    .build(shape),
            )
            .await;
        assert_eq!(deleted.json, json!({"deletedCount": 0}));
    }

    assert_eq!(
        fingerprint(db.observer()).await,
        before,
        "something of Ada's changed"
    );
}

/// The vote crate, named apart from the `vote` query module.
use ::vote as vote_fn;
