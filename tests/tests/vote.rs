//! `GET` and `PATCH /api/vote`, as the upstream chatbot answers them, for
//! every event shape Lambda delivers, on every path: what the caller sees,
//! and what the database holds afterwards (a refused request changes
//! nothing). Every call ends with no connection checked out.

use integration_tests::expect::{
    bad_request, error_body, error_with_cause, invalid_authorizations,
};
use integration_tests::{ApiRequest, Shape, TestApp, TestDb, TestResponse, TestUser};
use serde_json::{Value, json};
use shared::db::models;
use shared::db::queries::chat;
use shared::db::queries::message::{self, NewMessage};
use shared::db::queries::vote::{self, VoteType};
use shared::http::identity::UserType;
use uuid::Uuid;

const VOTE_BODY_LIMIT: usize = 16 * 1024;

struct Fixture {
    db: TestDb,
    app: TestApp,
    ada: TestUser,
    babbage: TestUser,
    /// Ada's chat, and its messages: a question and two answers.
    chat: Uuid,
    question: Uuid,
    answers: [Uuid; 2],
    /// Another chat of Ada's, with one answer.
    other_chat: Uuid,
    other_answer: Uuid,
    /// Babbage's chat, with one answer.
    babbages_chat: Uuid,
    babbages_answer: Uuid,
}

async fn fixture() -> Fixture {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "vote", &[]);
    let ada = app.user("ada@example.com", UserType::Regular).await;
    let babbage = app.user("babbage@example.com", UserType::Guest).await;
    let chat = a_chat(&app, ada.id).await;
    let question = a_message(&app, chat, "user").await;
    let answers = [
        a_message(&app, chat, "assistant").await,
        a_message(&app, chat, "assistant").await,
    ];
    let other_chat = a_chat(&app, ada.id).await;
    let other_answer = a_message(&app, other_chat, "assistant").await;
    let babbages_chat = a_chat(&app, babbage.id).await;
    let babbages_answer = a_message(&app, babbages_chat, "assistant").await;
    Fixture {
        db,
        app,
        ada,
        babbage,
        chat,
        question,
        answers,
        other_chat,
        other_answer,
        babbages_chat,
        babbages_answer,
    }
}

async fn a_chat(app: &TestApp, user: Uuid) -> Uuid {
    let id = Uuid::new_v4();
    chat::save(app.observer(), id, user, "A chat", "private")
        .await
        .expect("chat");
    id
}

async fn a_message(app: &TestApp, chat_id: Uuid, role: &str) -> Uuid {
    let id = Uuid::new_v4();
    let new = NewMessage {
        id,
        chat_id,
        role: role.to_owned(),
        parts: json!([{"type": "text", "text": "hello"}]),
        attachments: json!([]),
        created_at: models::now(),
    };
    message::save_all(app.observer(), &[new])
        .await
        .expect("message");
    id
}

impl Fixture {
    /// Calls the vote function ([`TestApp::call`] checks what it leaves).
    #[track_caller]
    fn call(&self, request: lambda_http::Request) -> impl Future<Output = TestResponse> {
        self.app.call(::vote::handle, request)
    }

    /// Records a vote through the test's own pool.
    async fn voted(&self, chat_id: Uuid, message_id: Uuid, vote: VoteType) {
        vote::vote(self.db.observer(), chat_id, message_id, vote)
            .await
            .expect("vote");
    }

    /// Every vote, and how many chats and messages there are: what a
    /// refused request must leave as it was.
    async fn snapshot(&self) -> Value {
        sqlx::query_scalar(
            r#"SELECT json_build_object(
                   'votes', (SELECT coalesce(json_agg(v ORDER BY "chatId", "messageId"), '[]')
                             FROM "Vote_v2" v),
                   'chats', (SELECT count(*) FROM "Chat"),
                   'messages', (SELECT count(*) FROM "Message_v2"))"#,
        )
        .fetch_one(self.db.observer())
        .await
        .expect("snapshot")
    }

    /// The votes of a chat, as `(messageId, isUpvoted)`.
    async fn votes_of(&self, chat_id: Uuid) -> Vec<(Uuid, bool)> {
        sqlx::query_as(
            r#"SELECT "messageId", "isUpvoted" FROM "Vote_v2" WHERE "chatId" = $1
               ORDER BY "messageId""#,
        )
        .bind(chat_id)
        .fetch_all(self.db.observer())
        .await
        .expect("votes")
    }
}

fn get(chat_id: &str) -> ApiRequest {
    ApiRequest::get("/api/vote").query("chatId", chat_id)
}

fn patch(body: &Value) -> ApiRequest {
    ApiRequest::new("PATCH", "/api/vote").json(body)
}

fn patch_raw(body: &str) -> ApiRequest {
    ApiRequest::new("PATCH", "/api/vote")
        .header("content-type", "application/json")
        .body(body)
}

fn vote_body(chat_id: Uuid, message_id: Uuid, vote: &str) -> Value {
    json!({"chatId": chat_id, "messageId": message_id, "type": vote})
}

fn assert_voted(response: &TestResponse, context: &str) {
    assert_eq!(response.status, 200, "{context}: {}", response.text);
    assert_eq!(response.text, "Message voted", "{context}");
    assert_eq!(
        response.headers["content-type"], "text/plain;charset=UTF-8",
        "{context}"
    );
}

#[tokio::test]
async fn get_answers_the_votes_on_the_callers_chat_as_upstream_serialises_them_in_every_shape() {
    let f = fixture().await;
    f.voted(f.chat, f.answers[0], VoteType::Up).await;
    f.voted(f.chat, f.answers[1], VoteType::Down).await;
    f.voted(f.other_chat, f.other_answer, VoteType::Up).await;
    f.voted(f.babbages_chat, f.babbages_answer, VoteType::Up)
        .await;
    let mut expected = vec![
        json!({"chatId": f.chat, "messageId": f.answers[0], "isUpvoted": true}),
        json!({"chatId": f.chat, "messageId": f.answers[1], "isUpvoted": false}),
    ];
    // Upstream does not order them; we answer them by message id.
    expected.sort_by_key(|v| v["messageId"].as_str().map(str::to_owned));
    for shape in Shape::ALL {
        let response = f
            .call(get(&f.chat.to_string()).bearer(&f.ada.token).build(shape))
            .await;
        assert_eq!(response.status, 200, "{shape:?}: {}", response.text);
        assert_eq!(response.headers["content-type"], "application/json");
        assert_eq!(response.json, Value::Array(expected.clone()), "{shape:?}");
    }
}

#[tokio::test]
async fn get_on_a_chat_without_votes_answers_an_empty_list() {
    let f = fixture().await;
    let response = f
        .call(
            get(&f.chat.to_string())
                .bearer(&f.ada.token)
                .build(Shape::HttpV2),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.json, json!([]));
}

#[tokio::test]
async fn patch_records_a_vote_then_changes_it_in_place_answering_message_voted_in_every_shape() {
    let f = fixture().await;
    for shape in Shape::ALL {
        for (vote, upvoted) in [("up", true), ("down", false), ("up", true)] {
            let response = f
                .call(
                    patch(&vote_body(f.chat, f.answers[0], vote))
                        .bearer(&f.ada.token)
                        .build(shape),
                )
                .await;
            assert_voted(&response, &format!("{shape:?} {vote}"));
            assert_eq!(
                f.votes_of(f.chat).await,
                vec![(f.answers[0], upvoted)],
                "{shape:?} {vote}"
            );
        }
    }
    // Ada may vote on her own question too: upstream does not check roles.
    let response = f
        .call(
            patch(&vote_body(f.chat, f.question, "down"))
                .bearer(&f.ada.token)
                .build(Shape::RestV1),
        )
        .await;
    assert_voted(&response, "question");
    assert_eq!(f.votes_of(f.chat).await.len(), 2);
    assert!(f.votes_of(f.other_chat).await.is_empty());
}

#[tokio::test]
async fn authorizer_claims_identify_the_caller_on_both_methods_without_a_token() {
    let f = fixture().await;
    let claims = json!({"sub": f.ada.id.to_string(), "email": "ada@example.com"});
    for shape in [Shape::RestV1, Shape::HttpV2] {
        let response = f
            .call(
                patch(&vote_body(f.chat, f.answers[1], "down"))
                    .claims(claims.clone())
                    .build(shape),
            )
            .await;
        assert_voted(&response, &format!("{shape:?}"));
        let response = f
            .call(get(&f.chat.to_string()).claims(claims.clone()).build(shape))
            .await;
        assert_eq!(response.status, 200, "{shape:?}: {}", response.text);
        assert_eq!(
            response.json,
            json!([{"chatId": f.chat, "messageId": f.answers[1], "isUpvoted": false}])
        );
    }
    // Claims win over a token: Babbage's token with Ada's claims is Ada.
    let response = f
        .call(
            get(&f.chat.to_string())
                .claims(claims)
                .bearer(&f.babbage.token)
                .build(Shape::HttpV2),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
}

#[tokio::test]
async fn get_without_a_chat_id_is_a_400_before_the_caller_is_checked() {
    let f = fixture().await;
    for request in [
        ApiRequest::get("/api/vote"),
        get(""),
        ApiRequest::get("/api/vote").query("chatid", &f.chat.to_string()),
    ] {
        for request in [request.clone(), request.bearer(&f.ada.token)] {
            let response = f.call(request.build(Shape::HttpV2)).await;
            assert_eq!(response.status, 400, "{}", response.text);
            assert_eq!(response.json, bad_request("Parameter chatId is required."));
        }
    }
}

#[tokio::test]
async fn chat_ids_that_are_not_uuids_are_400s_naming_the_parameter() {
    let f = fixture().await;
    for chat_id in [
        "not-a-uuid",
        "1 OR 1=1",
        "' OR '1'='1",
        "'; DROP TABLE \"Vote_v2\"; --",
        &format!("{}'--", f.chat),
        "00000000-0000-0000-0000-00000000000g",
    ] {
        for shape in Shape::ALL {
            let response = f.call(get(chat_id).bearer(&f.ada.token).build(shape)).await;
            assert_eq!(response.status, 400, "{chat_id} {shape:?}");
            assert_eq!(
                response.json,
                bad_request("Parameter chatId must be a UUID.")
            );
        }
    }
}

#[tokio::test]
async fn patch_without_chat_id_message_id_or_type_is_a_400_with_upstreams_cause_and_writes_nothing()
{
    let f = fixture().await;
    let before = f.snapshot().await;
    let (chat_id, message_id) = (f.chat.to_string(), f.answers[0].to_string());
    let bodies = [
        json!({}),
        json!({"messageId": message_id, "type": "up"}),
        json!({"chatId": chat_id, "type": "up"}),
        json!({"chatId": chat_id, "messageId": message_id}),
        json!({"chatId": null, "messageId": message_id, "type": "up"}),
        json!({"chatId": chat_id, "messageId": null, "type": "up"}),
        json!({"chatId": chat_id, "messageId": message_id, "type": null}),
        json!({"chatId": "", "messageId": message_id, "type": "up"}),
        json!({"chatId": chat_id, "messageId": "", "type": "up"}),
        json!({"chatId": chat_id, "messageId": message_id, "type": ""}),
        // Keys are case-sensitive, as in JavaScript.
        json!({"chatid": chat_id, "messageid": message_id, "Type": "up"}),
    ];
    for body in bodies {
        // Upstream reads the body before it checks the caller.
        for request in [patch(&body), patch(&body).bearer(&f.ada.token)] {
            let response = f.call(request.build(Shape::RestV1)).await;
            assert_eq!(response.status, 400, "{body}: {}", response.text);
            assert_eq!(
                response.json,
                bad_request("Parameters chatId, messageId, and type are required."),
                "{body}"
            );
        }
    }
    assert_eq!(f.snapshot().await, before);
}

#[tokio::test]
async fn patch_bodies_that_are_not_json_objects_are_400s_with_a_cause_and_write_nothing() {
    let f = fixture().await;
    let before = f.snapshot().await;
    let array = format!(r#"["{}", "{}", "up"]"#, f.chat, f.answers[0]);
    let cases: [(&str, &str); 8] = [
        ("", "The request body is empty."),
        ("{", "The request body is not valid JSON."),
        (
            r#"{"chatId": "a", "messageId": "b", "type": "up""#,
            "The request body is not valid JSON.",
        ),
        (
            "chatId=a&messageId=b&type=up",
            "The request body is not valid JSON.",
        ),
        (
            &array,
            "Invalid request body: invalid type: sequence, expected a JSON object at line 1 column 0.",
        ),
        (
            "null",
            "Invalid request body: invalid type: null, expected a JSON object at line 1 column 4.",
        ),
        (
            r#""up""#,
            "Invalid request body: invalid type: string \"up\", expected a JSON object at line 1 column 4.",
        ),
        (
            "42",
            "Invalid request body: invalid type: integer `42`, expected a JSON object at line 1 column 2.",
        ),
    ];
    for (body, cause) in cases {
        let response = f
            .call(patch_raw(body).bearer(&f.ada.token).build(Shape::HttpV2))
            .await;
        assert_eq!(response.status, 400, "{body}: {}", response.text);
        assert_eq!(response.json, bad_request(cause), "{body}");
    }
    assert_eq!(f.snapshot().await, before);
}

#[tokio::test]
async fn patch_fields_of_the_wrong_type_are_400s_with_serdes_cause_and_write_nothing() {
    let f = fixture().await;
    let before = f.snapshot().await;
    // Raw bodies, so that the positions serde reports are fixed.
    let cases = [
        (
            r#"{"chatId": 42, "messageId": "9f1c7e56-0d7b-4c1e-8a55-3b1f0c2d4e6f", "type": "up"}"#,
            "Invalid request body: invalid type: integer `42`, expected a string at line 1 column 13.",
        ),
        (
            r#"{"messageId": true, "chatId": "9f1c7e56-0d7b-4c1e-8a55-3b1f0c2d4e6f", "type": "up"}"#,
            "Invalid request body: invalid type: boolean `true`, expected a string at line 1 column 18.",
        ),
        (
            r#"{"type": ["up"], "chatId": "9f1c7e56-0d7b-4c1e-8a55-3b1f0c2d4e6f", "messageId": "9f1c7e56-0d7b-4c1e-8a55-3b1f0c2d4e6f"}"#,
            "Invalid request body: invalid type: sequence, expected a string at line 1 column 9.",
        ),
        (
            r#"{"chatId": {"id": "9f1c7e56-0d7b-4c1e-8a55-3b1f0c2d4e6f"}, "type": "up"}"#,
            "Invalid request body: invalid type: map, expected a string at line 1 column 11.",
        ),
        (
            r#"{"type": 1}"#,
            "Invalid request body: invalid type: integer `1`, expected a string at line 1 column 10.",
        ),
        (
            r#"{"chatId": "a", "chatId": "b", "messageId": "c", "type": "up"}"#,
            "Invalid request body: duplicate field `chatId` at line 1 column 24.",
        ),
    ];
    for (body, cause) in cases {
        let response = f
            .call(patch_raw(body).bearer(&f.ada.token).build(Shape::HttpV2))
            .await;
        assert_eq!(response.status, 400, "{body}: {}", response.text);
        assert_eq!(response.json, bad_request(cause), "{body}");
    }
    assert_eq!(f.snapshot().await, before);
}

#[tokio::test]
async fn patch_ids_that_are_not_uuids_and_types_other_than_up_or_down_are_400s_and_write_nothing() {
    let f = fixture().await;
    let before = f.snapshot().await;
    let (chat_id, message_id) = (f.chat.to_string(), f.answers[0].to_string());
    let hostile = [
        "not-a-uuid",
        "' OR '1'='1",
        "'; DELETE FROM \"Vote_v2\"; --",
        "1; DROP TABLE \"Chat\"",
    ];
    let mut cases = Vec::new();
    for value in hostile {
        cases.push((
            json!({"chatId": value, "messageId": message_id, "type": "up"}),
            "Parameter chatId must be a UUID.",
        ));
        cases.push((
            json!({"chatId": chat_id, "messageId": value, "type": "up"}),
            "Parameter messageId must be a UUID.",
        ));
    }
    for vote in [
        "UP",
        "Down",
        "sideways",
        " up",
        "up'; DROP TABLE \"Vote_v2\"; --",
        "true",
    ] {
        cases.push((
            json!({"chatId": chat_id, "messageId": message_id, "type": vote}),
            r#"Parameter type must be "up" or "down"."#,
        ));
    }
    for (body, cause) in cases {
        let response = f
            .call(patch(&body).bearer(&f.ada.token).build(Shape::RestV1))
            .await;
        assert_eq!(response.status, 400, "{body}: {}", response.text);
        assert_eq!(response.json, bad_request(cause), "{body}");
    }
    assert_eq!(f.snapshot().await, before);
}

#[tokio::test]
async fn patch_accepts_and_ignores_fields_it_does_not_know() {
    let f = fixture().await;
    let response = f
        .call(
            patch(&json!({
                "chatId": f.chat,
                "messageId": f.answers[0],
                "type": "up",
                "isUpvoted": false,
                "userId": f.babbage.id,
                "extra": {"nested": [1, 2, 3]},
            }))
            .bearer(&f.ada.token)
            .build(Shape::HttpV2),
        )
        .await;
    assert_voted(&response, "extra fields");
    assert_eq!(f.votes_of(f.chat).await, vec![(f.answers[0], true)]);
}

#[tokio::test]
async fn callers_without_a_valid_session_get_401_unauthorized_vote_on_both_methods_and_nothing_changes()
 {
    let f = fixture().await;
    f.voted(f.chat, f.answers[0], VoteType::Up).await;
    let before = f.snapshot().await;
    let requests = [
        get(&f.chat.to_string()),
        patch(&vote_body(f.chat, f.answers[0], "down")),
    ];
    for request in &requests {
        for header in invalid_authorizations(f.ada.id) {
            let mut request = request.clone();
            if let Some(value) = &header {
                request = request.header("authorization", value);
            }
            let response = f.call(request.build(Shape::HttpV2)).await;
            assert_eq!(response.status, 401, "{header:?}: {}", response.text);
            assert_eq!(response.json, error_body("unauthorized:vote"));
        }
        // Authorizer claims without a UUID subject identify no one.
        let response = f
            .call(
                request
                    .clone()
                    .claims(json!({"sub": "ada' OR 1=1 --"}))
                    .build(Shape::RestV1),
            )
            .await;
        assert_eq!(response.status, 401, "{}", response.text);
        assert_eq!(response.json, error_body("unauthorized:vote"));
    }
    assert_eq!(f.snapshot().await, before);
    // A token outlives nothing: once Babbage is gone, his token is refused.
    sqlx::query(r#"DELETE FROM "Vote_v2" WHERE "chatId" = $1"#)
        .bind(f.babbages_chat)
        .execute(f.db.observer())
        .await
        .expect("delete votes");
    sqlx::query(
        r#"WITH m AS (DELETE FROM "Message_v2" WHERE "chatId" = $1),
                c AS (DELETE FROM "Chat" WHERE id = $1)
           DELETE FROM "User" WHERE id = $2"#,
    )
    .bind(f.babbages_chat)
    .bind(f.babbage.id)
    .execute(f.db.observer())
    .await
    .expect("delete Babbage");
    let before = f.snapshot().await;
    let response = f
        .call(
            get(&f.chat.to_string())
                .bearer(&f.babbage.token)
                .build(Shape::FunctionUrl),
        )
        .await;
    assert_eq!(response.status, 401);
    assert_eq!(response.json, error_body("unauthorized:vote"));
    assert_eq!(f.snapshot().await, before);
}

#[tokio::test]
async fn a_chat_that_does_not_exist_is_404_not_found_chat_on_get_and_not_found_vote_on_patch() {
    let f = fixture().await;
    let before = f.snapshot().await;
    let nowhere = Uuid::new_v4();
    let response = f
        .call(
            get(&nowhere.to_string())
                .bearer(&f.ada.token)
                .build(Shape::HttpV2),
        )
        .await;
    assert_eq!(response.status, 404);
    assert_eq!(response.json, error_body("not_found:chat"));
    let response = f
        .call(
            patch(&vote_body(nowhere, f.answers[0], "up"))
                .bearer(&f.ada.token)
                .build(Shape::HttpV2),
        )
        .await;
    assert_eq!(response.status, 404);
    assert_eq!(response.json, error_body("not_found:vote"));
    assert_eq!(f.snapshot().await, before);
}

#[tokio::test]
async fn babbage_can_neither_read_nor_change_the_votes_on_adas_chat() {
    let f = fixture().await;
    f.voted(f.chat, f.answers[0], VoteType::Up).await;
    let before = f.snapshot().await;
    for shape in Shape::ALL {
        let response = f
            .call(
                get(&f.chat.to_string())
                    .bearer(&f.babbage.token)
                    .build(shape),
            )
            .await;
        assert_eq!(response.status, 403, "{shape:?}: {}", response.text);
        assert_eq!(response.json, error_body("forbidden:vote"));
        for message_id in [f.answers[0], f.answers[1], f.babbages_answer] {
            let response = f
                .call(
                    patch(&vote_body(f.chat, message_id, "down"))
                        .bearer(&f.babbage.token)
                        .build(shape),
                )
                .await;
            assert_eq!(response.status, 403, "{shape:?}: {}", response.text);
            assert_eq!(response.json, error_body("forbidden:vote"));
        }
    }
    // Nor through his own chat: Ada's message is not in it.
    let response = f
        .call(
            patch(&vote_body(f.babbages_chat, f.answers[0], "down"))
                .bearer(&f.babbage.token)
                .build(Shape::HttpV2),
        )
        .await;
    assert_eq!(response.status, 404, "{}", response.text);
    assert_eq!(
        response.json,
        error_with_cause("not_found:vote", "The message is not in this chat.")
    );
    // Claims for Babbage are no better than his token.
    let response = f
        .call(
            get(&f.chat.to_string())
                .claims(json!({"sub": f.babbage.id.to_string()}))
                .build(Shape::RestV1),
        )
        .await;
    assert_eq!(response.status, 403);
    assert_eq!(response.json, error_body("forbidden:vote"));
    assert_eq!(f.snapshot().await, before);
}

#[tokio::test]
async fn a_vote_on_a_message_outside_the_chat_or_on_no_message_is_404_not_found_vote_and_writes_nothing()
 {
    let f = fixture().await;
    let before = f.snapshot().await;
    for message_id in [f.other_answer, f.babbages_answer, Uuid::new_v4()] {
        let response = f
            .call(
                patch(&vote_body(f.chat, message_id, "up"))
                    .bearer(&f.ada.token)
                    .build(Shape::RestV1),
            )
            .await;
        assert_eq!(response.status, 404, "{}", response.text);
        assert_eq!(
            response.json,
            error_with_cause("not_found:vote", "The message is not in this chat.")
        );
    }
    assert_eq!(f.snapshot().await, before);
}

#[tokio::test]
async fn patch_bodies_up_to_16_kib_are_read_and_larger_ones_are_413_and_write_nothing() {
    let f = fixture().await;
    let padded = |size: usize| {
        let head = format!(
            r#"{{"chatId":"{}","messageId":"{}","type":"up","pad":""#,
            f.chat, f.answers[0]
        );
        let mut body = head.clone();
        body.push_str(&"x".repeat(size - head.len() - 2));
        body.push_str(r#""}"#);
        assert_eq!(body.len(), size);
        body
    };
    let before = f.snapshot().await;
    let response = f
        .call(
            patch_raw(&padded(VOTE_BODY_LIMIT + 1))
                .bearer(&f.ada.token)
                .build(Shape::HttpV2),
        )
        .await;
    assert_eq!(response.status, 413, "{}", response.text);
    assert_eq!(
        response.json,
        bad_request("The request body is larger than 16384 bytes.")
    );
    assert_eq!(f.snapshot().await, before);

    let response = f
        .call(
            patch_raw(&padded(VOTE_BODY_LIMIT))
                .bearer(&f.ada.token)
                .build(Shape::HttpV2),
        )
        .await;
    assert_voted(&response, "at the limit");
    assert_eq!(f.votes_of(f.chat).await, vec![(f.answers[0], true)]);
}

#[tokio::test]
async fn other_methods_are_405_with_allow_get_patch_and_change_nothing() {
    let f = fixture().await;
    let before = f.snapshot().await;
    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let response = f
            .call(
                ApiRequest::new(method, "/api/vote")
                    .query("chatId", &f.chat.to_string())
                    .json(&vote_body(f.chat, f.answers[0], "up"))
                    .bearer(&f.ada.token)
                    .build(Shape::HttpV2),
            )
            .await;
        assert_eq!(response.status, 405, "{method}");
        assert_eq!(response.headers["allow"], "GET, PATCH");
        assert_eq!(
            response.json,
            bad_request("This route answers GET, PATCH only."),
            "{method}"
        );
    }
    assert_eq!(f.snapshot().await, before);
}
