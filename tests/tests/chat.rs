//! `POST` and `DELETE /api/chat` and `GET /api/chat/{id}/stream`: the
//! stream's bytes, what is saved and when, every rule of the request, and
//! the connections, whatever ends the stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chat::model::offline::OfflineModel;
use chat::model::{ChatModel, ModelError, Prompt, Reply};
use chat::{Chat, ChatBody};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use http::Response;
use http_body_util::BodyExt;
use integration_tests::expect::{bad_request, error_body};
use integration_tests::{ApiRequest, Shape, TestApp, TestDb, TestResponse, TestUser, read_body};
use serde_json::{Value, json};
use shared::config::ChatConfig;
use shared::http::identity::UserType;
use uuid::Uuid;

// ---------------------------------------------------------------------------
// Helpers

fn config(vars: &[(&str, &str)]) -> ChatConfig {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    ChatConfig::from_lookup(move |name| {
        vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
    .expect("a valid chat configuration")
}

/// The chat function with the offline model, typing without pause.
fn offline_chat(vars: &[(&str, &str)]) -> Chat {
    let mut all = vec![("OFFLINE_MODEL_DELAY_MS", "0")];
    all.extend_from_slice(vars);
    Chat::new(config(&all)).expect("the offline model")
}

struct Fixture {
    db: TestDb,
    app: TestApp,
    chat: Chat,
    ada: TestUser,
}

async fn fixture(app_vars: &[(&str, &str)], chat: Chat) -> Fixture {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "chat", app_vars);
    let ada = app.user("ada@example.com", UserType::Regular).await;
    Fixture { db, app, chat, ada }
}

fn message_body(chat_id: Uuid, message_id: Uuid, text: &str) -> Value {
    json!({
        "id": chat_id,
        "message": {"id": message_id, "role": "user", "parts": [{"type": "text", "text": text}]},
        "selectedChatModel": "chat-model",
        "selectedVisibilityType": "private",
    })
}

fn post(token: &str, body: &Value) -> ApiRequest {
    ApiRequest::new("POST", "/api/chat")
        .bearer(token)
        .json(body)
}

impl Fixture {
    async fn raw(&self, request: ApiRequest, shape: Shape) -> Response<ChatBody> {
        let chat = self.chat.clone();
        self.app
            .call_raw(
                move |req, state| chat.handle(req, state),
                request.build(shape),
            )
            .await
    }

    /// Calls the chat route and reads the whole answer.
    async fn call(&self, request: ApiRequest, shape: Shape) -> TestResponse {
        let response = read_body(self.raw(request, shape).await).await;
        assert_eq!(
            self.app.checked_out_after_settling().await,
            0,
            "a connection stayed checked out"
        );
        response
    }

    async fn count(&self, sql: &str, id: Uuid) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .bind(id)
            .fetch_one(self.db.observer())
            .await
            .expect("count")
    }

    async fn messages(&self, chat_id: Uuid) -> Vec<(String, Value)> {
        sqlx::query_as::<_, (String, sqlx::types::Json<Value>)>(
            r#"SELECT role, parts FROM "Message_v2" WHERE "chatId" = $1 ORDER BY "createdAt", role DESC"#,
        )
        .bind(chat_id)
        .fetch_all(self.db.observer())
        .await
        .expect("messages")
        .into_iter()
        .map(|(role, parts)| (role, parts.0))
        .collect()
    }

    /// Waits (bounded) until the chat has `n` messages.
    async fn wait_for_messages(&self, chat_id: Uuid, n: usize) -> Vec<(String, Value)> {
        let start = Instant::now();
        loop {
            let messages = self.messages(chat_id).await;
            if messages.len() >= n || start.elapsed() > Duration::from_secs(5) {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The events of an SSE body: each `data:` payload, JSON or `[DONE]`.
fn events(text: &str) -> Vec<Value> {
    assert!(
        text.ends_with("\n\n"),
        "an SSE body ends with a blank line: {text:?}"
    );
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|event| {
            let data = event
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data event: {event:?}"));
            if data == "[DONE]" {
                Value::String("[DONE]".into())
            } else {
                serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"))
            }
        })
        .collect()
}

fn text_of(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "text-delta")
        .filter_map(|e| e["delta"].as_str())
        .collect()
}

fn assistant_text(parts: &Value) -> String {
    parts
        .as_array()
        .expect("parts")
        .iter()
        .filter(|p| p["type"] == "text")
        .filter_map(|p| p["text"].as_str())
        .collect()
}

/// A model that follows a script: fail to start, or send these deltas
/// (an `Err` breaks the reply off), pausing between them, and optionally
/// fall silent afterwards.
#[derive(Clone, Default)]
struct Scripted {
    refuse: bool,
    deltas: Vec<Result<&'static str, &'static str>>,
    pause: Duration,
    hang_at_end: bool,
    replies_started: Arc<AtomicUsize>,
}

impl ChatModel for Scripted {
    fn reply(&self, _prompt: Prompt) -> BoxFuture<'_, Result<Reply, ModelError>> {
        let script = self.clone();
        Box::pin(async move {
            if script.refuse {
                return Err(ModelError::Unavailable("scripted refusal".into()));
            }
            script.replies_started.fetch_add(1, Ordering::SeqCst);
            let pause = script.pause;
            let deltas = futures_util::stream::iter(script.deltas).then(move |d| async move {
                tokio::time::sleep(pause).await;
                d.map(str::to_owned)
                    .map_err(|e| ModelError::Interrupted(e.into()))
            });
            let tail = futures_util::stream::iter(script.hang_at_end.then_some(()))
                .then(|()| async { std::future::pending::<Result<String, ModelError>>().await });
            Ok(deltas.chain(tail).boxed())
        })
    }

    fn title(&self, first_message: &str) -> BoxFuture<'_, Result<String, ModelError>> {
        let title = chat::title::from_text(first_message);
        Box::pin(async move { Ok(title) })
    }
}

fn scripted_chat(script: Scripted, vars: &[(&str, &str)]) -> Chat {
    Chat::with_model(config(vars), Arc::new(script))
}

// ---------------------------------------------------------------------------
// The stream

#[tokio::test]
async fn a_new_chat_streams_the_ui_message_stream_byte_for_byte() {
    let f = fixture(&[], offline_chat(&[])).await;
    let chat_id = Uuid::new_v4();
    let response = f
        .call(
            post(
                &f.ada.token,
                &message_body(chat_id, Uuid::new_v4(), "Hello there"),
            ),
            Shape::HttpV2,
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    for (name, value) in chat::ui_stream::HEADERS {
        assert_eq!(response.headers[name], value, "{name}");
    }
    let events = events(&response.text);
    let message_id = events[0]["messageId"]
        .as_str()
        .expect("a message id")
        .to_owned();
    // The exact bytes: every chunk, in order.
    let mut expected = format!(
        "data: {{\"type\":\"start\",\"messageId\":\"{message_id}\"}}\n\n\
         data: {{\"type\":\"start-step\"}}\n\n\
         data: {{\"type\":\"text-start\",\"id\":\"text-1\"}}\n\n\
         data: {{\"type\":\"data-chat-title\",\"data\":\"Hello there\"}}\n\n"
    );
    for delta in OfflineModel::deltas(&OfflineModel::reply_text("Hello there")) {
        let delta = serde_json::to_string(&delta).expect("a JSON string");
        expected.push_str(&format!(
            "data: {{\"type\":\"text-delta\",\"id\":\"text-1\",\"delta\":{delta}}}\n\n"
        ));
    }
    expected.push_str(
        "data: {\"type\":\"text-end\",\"id\":\"text-1\"}\n\n\
         data: {\"type\":\"finish-step\"}\n\n\
         data: {\"type\":\"finish\"}\n\n\
         data: [DONE]\n\n",
    );
    assert_eq!(response.text, expected);
    assert!(Uuid::parse_str(&message_id).is_ok());
}

#[tokio::test]
async fn the_chat_the_user_message_the_stream_id_and_the_reply_are_saved() {
    let f = fixture(&[], offline_chat(&[])).await;
    let chat_id = Uuid::new_v4();
    let message_id = Uuid::new_v4();
    let response = f
        .call(
            post(
                &f.ada.token,
                &message_body(chat_id, message_id, "What is Rust?"),
            ),
            Shape::RestV1,
        )
        .await;
    assert_eq!(response.status, 200);
    let reply_id = events(&response.text)[0]["messageId"].clone();

    let (title, owner, visibility): (String, Uuid, String) =
        sqlx::query_as(r#"SELECT title, "userId", visibility FROM "Chat" WHERE id = $1"#)
            .bind(chat_id)
            .fetch_one(f.db.observer())
            .await
            .expect("the chat");
    assert_eq!(
        (title.as_str(), owner, visibility.as_str()),
        ("What is Rust?", f.ada.id, "private")
    );
    let messages = f.messages(chat_id).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(
        messages[0],
        (
            "user".to_owned(),
            json!([{"type": "text", "text": "What is Rust?"}])
        )
    );
    assert_eq!(messages[1].0, "assistant");
    assert_eq!(
        assistant_text(&messages[1].1),
        OfflineModel::reply_text("What is Rust?")
    );
    assert_eq!(messages[1].1[0], json!({"type": "step-start"}));
    let saved_id: Uuid = sqlx::query_scalar(
        r#"SELECT id FROM "Message_v2" WHERE role = 'assistant' AND "chatId" = $1"#,
    )
    .bind(chat_id)
    .fetch_one(f.db.observer())
    .await
    .expect("the reply's id");
    assert_eq!(
        json!(saved_id),
        reply_id,
        "the reply is saved under the id the stream announced"
    );
    assert_eq!(
        f.count(
            r#"SELECT count(*) FROM "Stream" WHERE "chatId" = $1"#,
            chat_id
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_second_message_continues_the_chat_without_a_new_title() {
    let f = fixture(&[], offline_chat(&[])).await;
    let chat_id = Uuid::new_v4();
    f.call(
        post(
            &f.ada.token,
            &message_body(chat_id, Uuid::new_v4(), "First"),
        ),
        Shape::HttpV2,
    )
    .await;
    let response = f
        .call(
            post(
                &f.ada.token,
                &message_body(chat_id, Uuid::new_v4(), "Second"),
            ),
            Shape::HttpV2,
        )
        .await;
    let events = events(&response.text);
    assert!(
        events.iter().all(|e| e["type"] != "data-chat-title"),
        "no title for an existing chat"
    );
    assert_eq!(text_of(&events), OfflineModel::reply_text("Second"));
    assert_eq!(f.messages(chat_id).await.len(), 4);
    assert_eq!(
        f.count(
            r#"SELECT count(*) FROM "Stream" WHERE "chatId" = $1"#,
            chat_id
        )
        .await,
        2
    );
}

#[tokio::test]
async fn a_resent_message_is_not_saved_twice() {
    let f = fixture(&[], offline_chat(&[])).await;
    let chat_id = Uuid::new_v4();
    let body = message_body(chat_id, Uuid::new_v4(), "Once");
    assert_eq!(
        f.call(post(&f.ada.token, &body), Shape::HttpV2)
            .await
            .status,
        200
    );
    assert_eq!(
        f.call(post(&f.ada.token, &body), Shape::HttpV2)
            .await
            .status,
        200
    );
    let users = f
        .messages(chat_id)
        .await
        .into_iter()
        .filter(|(role, _)| role == "user")
        .count();
    assert_eq!(users, 1);
}

#[tokio::test]
async fn every_event_shape_and_authorizer_claims_reach_the_chat_route() {
    let f = fixture(&[], offline_chat(&[])).await;
    for shape in Shape::ALL {
        let chat_id = Uuid::new_v4();
        let response = f
            .call(
                post(&f.ada.token, &message_body(chat_id, Uuid::new_v4(), "Hi")),
                shape,
            )
            .await;
        assert_eq!(response.status, 200, "{shape:?}: {}", response.text);
        assert_eq!(f.wait_for_messages(chat_id, 2).await.len(), 2, "{shape:?}");
    }
    let chat_id = Uuid::new_v4();
    let request = ApiRequest::new("POST", "/api/chat")
        .claims(json!({"sub": f.ada.id.to_string()}))
        .json(&message_body(chat_id, Uuid::new_v4(), "Claims"));
    assert_eq!(f.call(request, Shape::RestV1).await.status, 200);
}

// ---------------------------------------------------------------------------
// The rules of the request

#[tokio::test]
async fn invalid_bodies_are_400s_with_a_cause_and_save_nothing() {
    let f = fixture(&[], offline_chat(&[])).await;
    let chat_id = Uuid::new_v4();
    let ok = message_body(chat_id, Uuid::new_v4(), "Hello");
    let with = |pointer: &str, value: Value| {
        let mut body = ok.clone();
        *body.pointer_mut(pointer).expect("a field") = value;
        body
    };
    let without = |field: &str| {
        let mut body = ok.clone();
        body.as_object_mut().expect("object").remove(field);
        body
    };
    let cases: Vec<(Value, Option<&str>)> = vec![
        (with("/id", json!("not-a-uuid")), Some("id must be a UUID.")),
        (
            with("/message/id", json!("1")),
            Some("message.id must be a UUID."),
        ),
        (
            with("/message/role", json!("assistant")),
            Some("message.role must be \"user\"."),
        ),
        (
            with("/message/parts", json!([])),
            Some("message.parts must not be empty."),
        ),
        (
            with("/message/parts/0/text", json!("")),
            Some("A text part must have 1 to 2000 characters."),
        ),
        (
            with("/message/parts/0/text", json!("x".repeat(2001))),
            Some("A text part must have 1 to 2000 characters."),
        ),
        (
            with(
                "/message/parts/0",
                json!({"type": "file", "mediaType": "image/gif", "name": "a.gif", "url": "https://x.test/a.gif"}),
            ),
            Some("A file part's mediaType must be image/jpeg or image/png."),
        ),
        (
            with(
                "/message/parts/0",
                json!({"type": "file", "mediaType": "image/png", "name": "a.png", "url": "not a url"}),
            ),
            Some("A file part's url must be a URL."),
        ),
        (
            with(
                "/message/parts/0",
                json!({"type": "file", "mediaType": "image/png", "name": "n".repeat(101), "url": "https://x.test/a.png"}),
            ),
            Some("A file part's name must have 1 to 100 characters."),
        ),
        (
            with("/selectedVisibilityType", json!("secret")),
            Some("selectedVisibilityType must be \"public\" or \"private\"."),
        ),
        (without("message"), Some("Field message is required.")),
        (without("selectedChatModel"), None),
        (with("/message/parts/0/type", json!("video")), None),
        (json!([1, 2, 3]), None),
    ];
    for (body, cause) in cases {
        let response = f.call(post(&f.ada.token, &body), Shape::HttpV2).await;
        assert_eq!(response.status, 400, "{body}: {}", response.text);
        assert_eq!(response.json["code"], "bad_request:api", "{body}");
        if let Some(cause) = cause {
            assert_eq!(response.json, bad_request(cause), "{body}");
        }
    }
    let response = f
        .call(
            ApiRequest::new("POST", "/api/chat")
                .bearer(&f.ada.token)
                .body("{not json"),
            Shape::HttpV2,
        )
        .await;
    assert_eq!(response.status, 400);
    // A text of 2000 UTF-16 units is fine, as zod counts them.
    let emoji = "😀".repeat(1000);
    let response = f
        .call(
            post(&f.ada.token, &with("/message/parts/0/text", json!(emoji))),
            Shape::HttpV2,
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(
        f.count(r#"SELECT count(*) FROM "Chat" WHERE id = $1"#, chat_id)
            .await,
        1,
        "only the valid one"
    );
}

#[tokio::test]
async fn a_signed_out_caller_gets_401_and_nothing_is_saved() {
    let f = fixture(&[], offline_chat(&[])).await;
    let chat_id = Uuid::new_v4();
    let request =
        ApiRequest::new("POST", "/api/chat").json(&message_body(chat_id, Uuid::new_v4(), "Hi"));
    let response = f.call(request, Shape::HttpV2).await;
    assert_eq!(response.status, 401);
    assert_eq!(response.json, error_body("unauthorized:chat"));
    assert_eq!(
        f.count(r#"SELECT count(*) FROM "Chat" WHERE id = $1"#, chat_id)
            .await,
        0
    );
}

#[tokio::test]
async fn another_users_chat_is_403_and_nothing_is_saved_into_it() {
    let f = fixture(&[], offline_chat(&[])).await;
    let babbage = f.app.user("babbage@example.com", UserType::Regular).await;
    let chat_id = Uuid::new_v4();
    f.call(
        post(&f.ada.token, &message_body(chat_id, Uuid::new_v4(), "Mine")),
        Shape::HttpV2,
    )
    .await;
    let before = f.messages(chat_id).await;
    let response = f
        .call(
            post(
                &babbage.token,
                &message_body(chat_id, Uuid::new_v4(), "Intrusion"),
            ),
            Shape::HttpV2,
        )
        .await;
    assert_eq!(response.status, 403);
    assert_eq!(response.json["code"], "forbidden:chat");
    assert_eq!(f.messages(chat_id).await, before);
}

#[tokio::test]
async fn past_the_daily_limit_a_user_gets_429_and_nothing_is_saved() {
    let f = fixture(
        &[],
        offline_chat(&[("CHAT_MAX_MESSAGES_PER_DAY_REGULAR", "2")]),
    )
    .await;
    let guest = f.app.user("guest-1732700000000", UserType::Guest).await;
    let chat_id = Uuid::new_v4();
    for n in 0..2 {
        let response = f
            .call(
                post(&f.ada.token, &message_body(chat_id, Uuid::new_v4(), "Hi")),
                Shape::HttpV2,
            )
            .await;
        assert_eq!(response.status, 200, "message {n}");
    }
    let before = f.messages(chat_id).await;
    let response = f
        .call(
            post(
                &f.ada.token,
                &message_body(chat_id, Uuid::new_v4(), "Third"),
            ),
            Shape::HttpV2,
        )
        .await;
    assert_eq!(response.status, 429);
    assert_eq!(response.json, error_body("rate_limit:chat"));
    assert_eq!(f.messages(chat_id).await, before);
    // The guest's allowance is another (20 by default): not used up.
    let response = f
        .call(
            post(
                &guest.token,
                &message_body(Uuid::new_v4(), Uuid::new_v4(), "Hi"),
            ),
            Shape::HttpV2,
        )
        .await;
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn a_model_that_cannot_start_is_503_offline_chat() {
    let script = Scripted {
        refuse: true,
        ..Scripted::default()
    };
    let f = fixture(&[], scripted_chat(script, &[])).await;
    let chat_id = Uuid::new_v4();
    let response = f
        .call(
            post(&f.ada.token, &message_body(chat_id, Uuid::new_v4(), "Hi")),
            Shape::HttpV2,
        )
        .await;
    assert_eq!(response.status, 503);
    assert_eq!(response.json, error_body("offline:chat"));
    // As upstream, the user's message was saved before the model was asked.
    assert_eq!(f.messages(chat_id).await.len(), 1);
}

#[tokio::test]
async fn other_methods_are_405() {
    let f = fixture(&[], offline_chat(&[])).await;
    for method in ["GET", "PUT", "PATCH"] {
        let response = f
            .call(
                ApiRequest::new(method, "/api/chat").bearer(&f.ada.token),
                Shape::HttpV2,
            )
            .await;
        assert_eq!(response.status, 405, "{method}");
        assert_eq!(response.headers["allow"], "POST, DELETE");
    }
    let response = f
        .call(
            ApiRequest::new("POST", &format!("/api/chat/{}/stream", Uuid::new_v4()))
                .bearer(&f.ada.token),
            Shape::HttpV2,
        )
        .await;
    assert_eq!(response.status, 405);
    assert_eq!(response.headers["allow"], "GET");
}

// ---------------------------------------------------------------------------
// Whatever ends the stream

#[tokio::test]
async fn a_reply_that_breaks_off_ends_with_an_error_chunk_and_its_words_are_saved() {
    let script = Scripted {
        deltas: vec![Ok("Half"), Ok(" a"), Err("provider fell over")],
        ..Scripted::default()
    };
    let f = fixture(&[], scripted_chat(script, &[])).await;
    let chat_id = Uuid::new_v4();
    let response = f
        .call(
            post(&f.ada.token, &message_body(chat_id, Uuid::new_v4(), "Hi")),
            Shape::HttpV2,
        )
        .await;
    assert_eq!(response.status, 200);
    let events = events(&response.text);
    let tail: Vec<&Value> = events.iter().rev().take(3).collect();
    assert_eq!(tail[0], "[DONE]");
    assert_eq!(
        tail[1],
        &json!({"type": "error", "errorText": "Oops, an error occurred!"})
    );
    assert_eq!(tail[2], &json!({"type": "text-end", "id": "text-1"}));
    assert_eq!(text_of(&events), "Half a");
    let messages = f.messages(chat_id).await;
    assert_eq!(assistant_text(&messages[1].1), "Half a");
}

#[tokio::test]
async fn a_reply_past_its_time_limit_is_stopped_and_its_words_are_saved() {
    let script = Scripted {
        deltas: vec![Ok("Slow")],
        hang_at_end: true,
        ..Scripted::default()
    };
    let f = fixture(
        &[],
        scripted_chat(script, &[("CHAT_STREAM_TIMEOUT_SECS", "1")]),
    )
    .await;
    let chat_id = Uuid::new_v4();
    let started = Instant::now();
    let response = f
        .call(
            post(&f.ada.token, &message_body(chat_id, Uuid::new_v4(), "Hi")),
            Shape::HttpV2,
        )
        .await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let events = events(&response.text);
    assert!(events.contains(&json!({"type": "error", "errorText": chat::reply::TIMEOUT_TEXT})));
    assert_eq!(assistant_text(&f.messages(chat_id).await[1].1), "Slow");
}

/// Reads `frames` frames of a streaming body, then drops it.
async fn read_then_drop(response: Response<ChatBody>, frames: usize) -> String {
    let mut body = response.into_body();
    let mut read = Vec::<u8>::new();
    for _ in 0..frames {
        match body.frame().await {
            Some(Ok(frame)) => {
                read.extend_from_slice(&frame.into_data().unwrap_or_else(|_| Bytes::new()))
            }
            _ => break,
        }
    }
    drop(body);
    String::from_utf8_lossy(&read).into_owned()
}

#[tokio::test]
async fn a_client_that_goes_away_leaves_the_words_written_so_far_saved_once() {
    let script = Scripted {
        deltas: vec![
            Ok("One"),
            Ok(" two"),
            Ok(" three"),
            Ok(" four"),
            Ok(" five"),
        ],
        pause: Duration::from_millis(50),
        ..Scripted::default()
    };
    let started = script.replies_started.clone();
    let f = fixture(&[], scripted_chat(script, &[])).await;
    let chat_id = Uuid::new_v4();
    let response = f
        .raw(
            post(&f.ada.token, &message_body(chat_id, Uuid::new_v4(), "Hi")),
            Shape::HttpV2,
        )
        .await;
    // start, start-step, text-start, title, "One": then the client leaves.
    let read = read_then_drop(response, 5).await;
    assert!(read.ends_with("\"delta\":\"One\"}\n\n"), "{read}");
    let messages = f.wait_for_messages(chat_id, 2).await;
    let saved = assistant_text(&messages[1].1);
    assert!(
        saved.starts_with("One") && "One two three four five".starts_with(&saved),
        "{saved}"
    );
    assert_ne!(
        saved, "One two three four five",
        "the model was stopped early"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(f.messages(chat_id).await.len(), 2, "saved exactly once");
    assert_eq!(started.load(Ordering::SeqCst), 1);
    assert_eq!(f.app.checked_out_after_settling().await, 0);
    assert_eq!(f.app.db().metrics().snapshot().leaks, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_cut_at_a_hundred_random_points_leave_every_chat_whole_and_no_connection_behind() {
    let f = fixture(
        &[],
        offline_chat(&[
            ("OFFLINE_MODEL_DELAY_MS", "1"),
            ("CHAT_MAX_MESSAGES_PER_DAY_REGULAR", "1000"),
        ]),
    )
    .await;
    let full = OfflineModel::reply_text("Cut me");
    let total_frames = 4 + OfflineModel::deltas(&full).len() + 4;
    // A fixed seed: the same hundred cuts every run.
    let mut seed: u64 = 0x5eed_cafe;
    let mut chats = Vec::new();
    let (mut cut_before_words, mut cut_mid_reply) = (0, 0);
    for _ in 0..100 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let cut = (seed >> 33) as usize % (total_frames + 1);
        cut_before_words += usize::from(cut < 4);
        cut_mid_reply += usize::from((4..total_frames - 4).contains(&cut));
        let chat_id = Uuid::new_v4();
        let response = f
            .raw(
                post(
                    &f.ada.token,
                    &message_body(chat_id, Uuid::new_v4(), "Cut me"),
                ),
                Shape::HttpV2,
            )
            .await;
        assert_eq!(response.status(), 200);
        read_then_drop(response, cut).await;
        chats.push(chat_id);
    }
    // Every stream's end work has run: nothing checked out, nothing left
    // in a transaction, no leak reported.
    assert_eq!(f.app.checked_out_after_settling().await, 0);
    // Behind a transaction-mode pooler an invocation's statements share a
    // transaction, so a reply still being saved shows as "idle in
    // transaction" between its statements: wait for what is left over.
    let mut in_transaction: i64 = -1;
    for _ in 0..50 {
        in_transaction = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
        )
        .fetch_one(f.db.observer())
        .await
        .expect("pg_stat_activity");
        if in_transaction == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(in_transaction, 0);
    assert_eq!(f.app.db().metrics().snapshot().leaks, 0);
    let (mut partial, mut whole, mut none) = (0, 0, 0);
    for chat_id in chats {
        let messages = f.wait_for_messages(chat_id, 1).await;
        assert!(
            !messages.is_empty() && messages.len() <= 2,
            "{chat_id}: {messages:?}"
        );
        assert_eq!(messages[0].0, "user");
        if let Some((role, parts)) = messages.get(1) {
            assert_eq!(role, "assistant");
            let saved = assistant_text(parts);
            assert!(!saved.is_empty() && full.starts_with(&saved), "{saved:?}");
            if saved == full {
                whole += 1;
            } else {
                partial += 1;
            }
        } else {
            none += 1;
        }
        let chats: i64 = f
            .count(r#"SELECT count(*) FROM "Chat" WHERE id = $1"#, chat_id)
            .await;
        assert_eq!(chats, 1);
    }
    // The cuts fell everywhere: before the first word, mid-reply, after
    // it. What was saved depends on how far generation had run on when the
    // cut came (a busy machine reads slower), so only the cuts are counted
    // on; every outcome above was checked to be whole or a prefix.
    println!(
        "cuts: {cut_before_words} before any word, {cut_mid_reply} mid-reply; \
         saved: {none} nothing, {partial} a prefix, {whole} whole"
    );
    assert!(cut_before_words >= 3 && cut_mid_reply >= 50 && whole > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_streams_at_once_share_a_pool_of_two_and_all_complete() {
    let f = Arc::new(
        fixture(
            &[("DB_POOL_MAX", "2")],
            offline_chat(&[("OFFLINE_MODEL_DELAY_MS", "2")]),
        )
        .await,
    );
    let streams = (0..20).map(|i| {
        let f = f.clone();
        async move {
            let chat_id = Uuid::new_v4();
            let response = f
                .call(
                    post(
                        &f.ada.token,
                        &message_body(chat_id, Uuid::new_v4(), &format!("Stream {i}")),
                    ),
                    Shape::HttpV2,
                )
                .await;
            (chat_id, i, response)
        }
    });
    for (chat_id, i, response) in futures_util::future::join_all(streams).await {
        assert_eq!(response.status, 200, "{}", response.text);
        let events = events(&response.text);
        assert_eq!(events.last(), Some(&json!("[DONE]")));
        assert_eq!(
            text_of(&events),
            OfflineModel::reply_text(&format!("Stream {i}"))
        );
        assert_eq!(f.messages(chat_id).await.len(), 2);
    }
    assert!(f.db.backends("chat-backend:chat").await <= 2);
}

// ---------------------------------------------------------------------------
// DELETE /api/chat

#[tokio::test]
async fn delete_removes_the_owners_chat_with_everything_in_it() {
    let f = fixture(&[], offline_chat(&[])).await;
    let chat_id = Uuid::new_v4();
    f.call(
        post(&f.ada.token, &message_body(chat_id, Uuid::new_v4(), "Bye")),
        Shape::HttpV2,
    )
    .await;
    let babbage = f.app.user("babbage@example.com", UserType::Regular).await;
    let delete = |token: &str, id: &str| {
        ApiRequest::delete("/api/chat")
            .query("id", id)
            .bearer(token)
    };

    for (token, id) in [
        (&babbage.token, chat_id.to_string()),
        (&f.ada.token, Uuid::new_v4().to_string()),
    ] {
        let response = f.call(delete(token, &id), Shape::HttpV2).await;
        assert_eq!(response.status, 403, "{}", response.text);
        assert_eq!(response.json["code"], "forbidden:chat");
    }
    let response = f
        .call(
            ApiRequest::delete("/api/chat").bearer(&f.ada.token),
            Shape::HttpV2,
        )
        .await;
    assert_eq!(response.json, bad_request("Parameter id is required."));
    let response = f
        .call(
            ApiRequest::delete("/api/chat").query("id", &chat_id.to_string()),
            Shape::HttpV2,
        )
        .await;
    assert_eq!(response.status, 401);
    assert_eq!(
        f.messages(chat_id).await.len(),
        2,
        "refusals changed nothing"
    );

    let response = f
        .call(delete(&f.ada.token, &chat_id.to_string()), Shape::RestV1)
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.json["id"], json!(chat_id));
    assert_eq!(response.json["title"], "Bye");
    assert!(f.messages(chat_id).await.is_empty());
    assert_eq!(
        f.count(
            r#"SELECT count(*) FROM "Stream" WHERE "chatId" = $1"#,
            chat_id
        )
        .await,
        0
    );
}

// ---------------------------------------------------------------------------
// GET /api/chat/{id}/stream

#[tokio::test]
async fn resuming_hands_over_a_reply_that_just_finished_and_nothing_otherwise() {
    let f = fixture(&[], offline_chat(&[])).await;
    let chat_id = Uuid::new_v4();
    f.call(
        post(
            &f.ada.token,
            &message_body(chat_id, Uuid::new_v4(), "Resume"),
        ),
        Shape::HttpV2,
    )
    .await;
    let resume =
        |token: &str, id: &str| ApiRequest::get(&format!("/api/chat/{id}/stream")).bearer(token);

    let response = f
        .call(resume(&f.ada.token, &chat_id.to_string()), Shape::HttpV2)
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.headers["content-type"], "text/event-stream");
    let events = events(&response.text);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["type"], "data-appendMessage");
    assert_eq!(events[0]["transient"], true);
    let message: Value =
        serde_json::from_str(events[0]["data"].as_str().expect("JSON text")).expect("a message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["chatId"], json!(chat_id));
    assert_eq!(events[1], "[DONE]");

    // A reply older than 15 seconds is not handed over.
    sqlx::query(r#"UPDATE "Message_v2" SET "createdAt" = "createdAt" - interval '20 seconds' WHERE "chatId" = $1"#)
        .bind(chat_id)
        .execute(f.db.observer())
        .await
        .expect("age the messages");
    let response = f
        .call(resume(&f.ada.token, &chat_id.to_string()), Shape::HttpV2)
        .await;
    assert_eq!(response.text, "data: [DONE]\n\n");
}

#[tokio::test]
async fn resuming_follows_upstreams_rules_of_visibility_and_existence() {
    let f = fixture(&[], offline_chat(&[])).await;
    let babbage = f.app.user("babbage@example.com", UserType::Regular).await;
    let private = Uuid::new_v4();
    f.call(
        post(
            &f.ada.token,
            &message_body(private, Uuid::new_v4(), "Secret"),
        ),
        Shape::HttpV2,
    )
    .await;
    let public = Uuid::new_v4();
    let mut body = message_body(public, Uuid::new_v4(), "Open");
    body["selectedVisibilityType"] = json!("public");
    f.call(post(&f.ada.token, &body), Shape::HttpV2).await;
    let without_streams = Uuid::new_v4();
    shared::db::queries::chat::save(
        f.db.observer(),
        without_streams,
        f.ada.id,
        "Quiet",
        "private",
    )
    .await
    .expect("a chat");

    let resume =
        |token: &str, id: &str| ApiRequest::get(&format!("/api/chat/{id}/stream")).bearer(token);
    let cases = [
        (&babbage.token, private.to_string(), 403, "forbidden:chat"),
        (&babbage.token, public.to_string(), 200, ""),
        (
            &f.ada.token,
            Uuid::new_v4().to_string(),
            404,
            "not_found:chat",
        ),
        (&f.ada.token, "not-a-uuid".to_owned(), 404, "not_found:chat"),
        (
            &f.ada.token,
            without_streams.to_string(),
            404,
            "not_found:stream",
        ),
    ];
    for (token, id, status, code) in cases {
        let response = f.call(resume(token, &id), Shape::HttpV2).await;
        assert_eq!(response.status, status, "{id}: {}", response.text);
        if !code.is_empty() {
            assert_eq!(response.json["code"], code, "{id}");
        }
    }
    let response = f
        .call(
            ApiRequest::get(&format!("/api/chat/{private}/stream")),
            Shape::HttpV2,
        )
        .await;
    assert_eq!(response.status, 401);
}

// ---------------------------------------------------------------------------
// The AI SDK reads it, as useChat does

#[tokio::test]
async fn the_ai_sdks_own_reader_makes_the_saved_message_of_the_stream() {
    let f = fixture(&[], offline_chat(&[])).await;
    let chat_id = Uuid::new_v4();
    let response = f
        .call(
            post(
                &f.ada.token,
                &message_body(chat_id, Uuid::new_v4(), "Hello there"),
            ),
            Shape::HttpV2,
        )
        .await;
    let saved = f.messages(chat_id).await;
    let saved_parts = &saved[1].1;
    let message_id = events(&response.text)[0]["messageId"].clone();
    for version in integration_tests::ai_sdk::VERSIONS {
        let read = integration_tests::ai_sdk::read(version, &response.text);
        assert!(read.errors.is_empty(), "{version}: {:?}", read.errors);
        assert_eq!(read.message["id"], message_id, "{version}");
        assert_eq!(read.message["role"], "assistant", "{version}");
        assert_eq!(
            read.message["parts"],
            json!([
                {"type": "step-start"},
                {"type": "text", "text": OfflineModel::reply_text("Hello there"), "state": "done"},
                {"type": "data-chat-title", "data": "Hello there"},
            ]),
            "{version}"
        );
        // What useChat shows is what a reload of the chat shows.
        assert_eq!(&read.message["parts"], saved_parts, "{version}");
    }
}

#[tokio::test]
async fn the_ai_sdk_reports_a_reply_that_broke_off_with_its_words_so_far() {
    let script = Scripted {
        deltas: vec![Ok("Half"), Err("gone")],
        ..Scripted::default()
    };
    let f = fixture(&[], scripted_chat(script, &[])).await;
    let chat_id = Uuid::new_v4();
    let response = f
        .call(
            post(&f.ada.token, &message_body(chat_id, Uuid::new_v4(), "Hi")),
            Shape::HttpV2,
        )
        .await;
    for version in integration_tests::ai_sdk::VERSIONS {
        let read = integration_tests::ai_sdk::read(version, &response.text);
        assert_eq!(
            read.errors,
            vec!["Oops, an error occurred!".to_owned()],
            "{version}"
        );
        assert_eq!(read.message["parts"][1]["text"], "Half", "{version}");
    }
}

#[tokio::test]
async fn the_ai_sdk_reads_a_resumed_stream_and_keeps_its_part_transient() {
    let f = fixture(&[], offline_chat(&[])).await;
    let chat_id = Uuid::new_v4();
    f.call(
        post(
            &f.ada.token,
            &message_body(chat_id, Uuid::new_v4(), "Resume"),
        ),
        Shape::HttpV2,
    )
    .await;
    let response = f
        .call(
            ApiRequest::get(&format!("/api/chat/{chat_id}/stream")).bearer(&f.ada.token),
            Shape::HttpV2,
        )
        .await;
    for version in integration_tests::ai_sdk::VERSIONS {
        let read = integration_tests::ai_sdk::read(version, &response.text);
        assert!(read.errors.is_empty(), "{version}");
        // Transient data parts reach onData, not the message's parts.
        let parts = read
            .message
            .get("parts")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        assert_eq!(parts, 0, "{version}: {}", read.message);
    }
}

#[test]
fn a_stream_the_ai_sdk_cannot_read_fails_the_check() {
    let result = std::panic::catch_unwind(|| {
        integration_tests::ai_sdk::read(
            "ai6",
            "data: {\"type\":\"start\"}\n\ndata: {\"type\":\"no-such-chunk\"}\n\n",
        )
    });
    assert!(
        result.is_err(),
        "an unreadable stream must fail the test that sent it"
    );
}
