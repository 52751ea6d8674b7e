//! Round trips to the database per route, warm, counted on the wire.
//!
//! Against a database across a network every round trip costs more than
//! all of our own code, so each route is held to its floor: a warm read is
//! one round trip (the caller's check, the owner's and the rows in one
//! statement), a write at most two. The functions reach the server through
//! the test proxy, which counts what the clients wait for
//! ([`integration_tests::wire`]); each route is called once to warm it
//! (the connection opened, its statements prepared), then counted.

use std::future::Future;
use std::time::Duration;

use integration_tests::fault_kit::{StreamReader, chat_body, chat_post, chat_raw, offline_chat};
use integration_tests::proxy::Proxy;
use integration_tests::{
    ApiRequest, Shape, TEST_AUTH_SECRET, TestApp, TestDb, TestResponse, TestUser,
};
use lambda_http::Request;
use serde_json::json;
use shared::AppState;
use shared::db::queries::message::{self, NewMessage};
use shared::db::queries::{chat, document};
use shared::http::ApiResult;
use shared::http::identity::UserType;
use uuid::Uuid;

/// A database behind a counting proxy, and a function's app on it.
struct Wire {
    db: TestDb,
    proxy: Proxy,
}

impl Wire {
    async fn start() -> Wire {
        let db = TestDb::migrated().await;
        let server = url::Url::parse(&db.url()).expect("the database URL");
        let upstream = format!(
            "{}:{}",
            server.host_str().expect("a host"),
            server.port().expect("a port")
        );
        let upstream = tokio::net::lookup_host(upstream)
            .await
            .expect("the server's address")
            .next()
            .expect("an address");
        let proxy = Proxy::start(upstream).await;
        Wire { db, proxy }
    }

    /// `function` served in-process, its pool of one reaching the
    /// database through the proxy.
    fn app(&self, function: &'static str) -> TestApp {
        let mut url = url::Url::parse(&self.db.url()).expect("the database URL");
        url.set_host(Some("127.0.0.1")).expect("a host");
        url.set_port(Some(self.proxy.port())).expect("a port");
        let config = self.db.config_at(
            function,
            url.as_str(),
            &[("DB_POOL_MAX", "1"), ("AUTH_SECRET", TEST_AUTH_SECRET)],
        );
        TestApp::with_config(&self.db, config)
    }

    /// The round trips `call` makes once warm: it runs once to warm up,
    /// then again, counted. `request` builds the call's request each time.
    async fn warm_round_trips<H, Fut>(
        &self,
        app: &TestApp,
        handler: H,
        request: impl Fn() -> Request,
        status: u16,
    ) -> usize
    where
        H: FnOnce(Request, AppState) -> Fut + Clone,
        Fut: Future<Output = ApiResult<http::Response<lambda_http::Body>>> + Send,
    {
        let warm: TestResponse = app.call(handler.clone(), request()).await;
        assert_eq!(warm.status, status, "{}", warm.text);
        let before = self.proxy.round_trips();
        let counted = app.call(handler, request()).await;
        assert_eq!(counted.status, status, "{}", counted.text);
        self.proxy.round_trips() - before
    }
}

async fn a_chat_with_an_answer(app: &TestApp, user: Uuid) -> (Uuid, Uuid) {
    let chat_id = Uuid::new_v4();
    chat::save(app.observer(), chat_id, user, "A chat", "private")
        .await
        .expect("chat");
    let answer = Uuid::new_v4();
    let new = NewMessage {
        id: answer,
        chat_id,
        role: "assistant".to_owned(),
        parts: json!([{"type": "text", "text": "hello"}]),
        attachments: json!([]),
        created_at: shared::db::models::now(),
    };
    message::save_all(app.observer(), &[new])
        .await
        .expect("message");
    (chat_id, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_read_is_one_round_trip_on_every_read_route() {
    let wire = Wire::start().await;
    let app = wire.app("history");
    let ada: TestUser = app.user("ada@example.com", UserType::Regular).await;
    let (chat_id, _) = a_chat_with_an_answer(&app, ada.id).await;
    let doc = Uuid::new_v4();
    document::save(app.observer(), doc, "Notes", "text", "Gears.", ada.id)
        .await
        .expect("document")
        .expect("saved");
    let get = |path: &str, name: &str, value: &str| {
        ApiRequest::get(path)
            .query(name, value)
            .bearer(&ada.token)
            .build(Shape::HttpV2)
    };

    let history = wire
        .warm_round_trips(
            &app,
            history::handle,
            || get("/api/history", "limit", "5"),
            200,
        )
        .await;
    let vote_app = wire.app("vote");
    let chat = chat_id.to_string();
    let votes = wire
        .warm_round_trips(
            &vote_app,
            vote::handle,
            || get("/api/vote", "chatId", &chat),
            200,
        )
        .await;
    let document_app = wire.app("document");
    let doc = doc.to_string();
    let versions = wire
        .warm_round_trips(
            &document_app,
            ::document::handle,
            || get("/api/document", "id", &doc),
            200,
        )
        .await;
    let suggestions_app = wire.app("suggestions");
    let suggestions = wire
        .warm_round_trips(
            &suggestions_app,
            suggestions::handle,
            || get("/api/suggestions", "documentId", &doc),
            200,
        )
        .await;
    let counted = [
        ("GET /api/history", history),
        ("GET /api/vote", votes),
        ("GET /api/document", versions),
        ("GET /api/suggestions", suggestions),
    ];
    eprintln!("warm round trips: {counted:?}");
    for (route, round_trips) in counted {
        assert_eq!(round_trips, 1, "{route}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_write_is_at_most_two_round_trips() {
    let wire = Wire::start().await;
    let vote_app = wire.app("vote");
    let ada: TestUser = vote_app.user("ada@example.com", UserType::Regular).await;
    let (chat_id, answer) = a_chat_with_an_answer(&vote_app, ada.id).await;
    let doc = Uuid::new_v4().to_string();
    let with_token = |request: ApiRequest| request.bearer(&ada.token).build(Shape::HttpV2);

    let vote = wire
        .warm_round_trips(
            &vote_app,
            vote::handle,
            || {
                with_token(ApiRequest::new("PATCH", "/api/vote").json(&json!({
                    "chatId": chat_id, "messageId": answer, "type": "up"
                })))
            },
            200,
        )
        .await;
    let document_app = wire.app("document");
    let save = wire
        .warm_round_trips(
            &document_app,
            ::document::handle,
            || {
                with_token(
                    ApiRequest::new("POST", "/api/document")
                        .query("id", &doc)
                        .json(&json!({"title": "Notes", "content": "Gears.", "kind": "text"})),
                )
            },
            200,
        )
        .await;
    let delete_versions = wire
        .warm_round_trips(
            &document_app,
            ::document::handle,
            || {
                with_token(
                    ApiRequest::delete("/api/document")
                        .query("id", &doc)
                        .query("timestamp", "2999-01-01T00:00:00.000Z"),
                )
            },
            200,
        )
        .await;
    let history_app = wire.app("history");
    let delete_history = wire
        .warm_round_trips(
            &history_app,
            history::handle,
            || with_token(ApiRequest::delete("/api/history")),
            200,
        )
        .await;
    let counted = [
        ("PATCH /api/vote", vote),
        ("POST /api/document", save),
        ("DELETE /api/document", delete_versions),
        ("DELETE /api/history", delete_history),
    ];
    eprintln!("warm round trips: {counted:?}");
    for (route, round_trips) in counted {
        assert!(round_trips <= 2, "{route}: {round_trips}");
    }
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_chat_turn_makes_few_round_trips_before_its_first_byte_and_one_to_save() {
    let wire = Wire::start().await;
    let app = wire.app("chat");
    let ada: TestUser = app.user("ada@example.com", UserType::Regular).await;
    // Words 100 ms apart: the head comes well before the reply is saved.
    let chat = offline_chat(100, &[]);
    let chat_id = Uuid::new_v4();
    let mut counts = Vec::new();
    for turn in 0..2 {
        let body = chat_body(chat_id, Uuid::new_v4(), "Hello there", "private");
        let before = wire.proxy.round_trips();
        let head = chat_raw(&app, &chat, chat_post(&ada.token, &body)).await;
        let to_first_byte = wire.proxy.round_trips() - before;
        let mut reader = StreamReader::new(head);
        assert_eq!(reader.status, 200, "{}", reader.text);
        assert!(
            reader.to_end(Duration::from_secs(20)).await,
            "{}",
            reader.text
        );
        assert_eq!(app.checked_out_after_settling().await, 0);
        let to_save = wire.proxy.round_trips() - before - to_first_byte;
        if turn > 0 {
            counts.push((to_first_byte, to_save));
        }
    }
    eprintln!("warm chat turn (to the first byte, to save): {counts:?}");
    let (to_first_byte, to_save) = counts[0];
    assert_eq!(to_first_byte, 2, "to the first byte");
    assert_eq!(to_save, 1, "to save the reply");
}
