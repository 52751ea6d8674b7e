//! `GET` and `DELETE /api/history`, as the upstream chatbot answers them,
//! for every event shape Lambda delivers, on every path: what the caller
//! sees, and what the database holds afterwards. Every test ends with no
//! connection checked out.

use chrono::NaiveDateTime;
use integration_tests::expect::{bad_request, error_body, invalid_authorizations};
use integration_tests::{ApiRequest, Shape, TestApp, TestDb, TestResponse, TestUser};
use serde_json::json;
use shared::db::queries::chat;
use shared::http::identity::UserType;
use uuid::Uuid;

struct Fixture {
    db: TestDb,
    app: TestApp,
    ada: TestUser,
    babbage: TestUser,
    /// Ada's chat ids, newest first.
    adas: Vec<Uuid>,
}

/// Ada with `n` chats a minute apart, Babbage with two.
async fn fixture(n: usize) -> Fixture {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "history", &[]);
    let ada = app.user("ada@example.com", UserType::Regular).await;
    let babbage = app.user("babbage@example.com", UserType::Guest).await;
    let mut adas = Vec::new();
    for i in 0..n {
        adas.push(chat_at(&app, ada.id, &format!("Ada {i}"), i).await);
    }
    adas.reverse();
    for i in 0..2 {
        chat_at(&app, babbage.id, &format!("Babbage {i}"), i).await;
    }
    Fixture {
        db,
        app,
        ada,
        babbage,
        adas,
    }
}

async fn chat_at(app: &TestApp, user: Uuid, title: &str, minute: usize) -> Uuid {
    let id = Uuid::new_v4();
    chat::save(app.observer(), id, user, title, "private")
        .await
        .expect("chat");
    let at: NaiveDateTime = chrono::NaiveDate::from_ymd_opt(2025, 3, 1)
        .and_then(|d| d.and_hms_milli_opt(9, minute as u32, 0, 125))
        .expect("date");
    sqlx::query(r#"UPDATE "Chat" SET "createdAt" = $2 WHERE id = $1"#)
        .bind(id)
        .bind(at)
        .execute(app.observer())
        .await
        .expect("set time");
    id
}

impl Fixture {
    /// Calls the history function ([`TestApp::call`] checks what it
    /// leaves).
    #[track_caller]
    fn call(&self, request: lambda_http::Request) -> impl Future<Output = TestResponse> {
        self.app.call(history::handle, request)
    }

    async fn chats_of(&self, user: Uuid) -> i64 {
        sqlx::query_scalar(r#"SELECT count(*) FROM "Chat" WHERE "userId" = $1"#)
            .bind(user)
            .fetch_one(self.db.observer())
            .await
            .expect("count")
    }
}

fn ids(response: &TestResponse) -> Vec<Uuid> {
    response.json["chats"]
        .as_array()
        .unwrap_or_else(|| panic!("no chats in {}", response.text))
        .iter()
        .map(|c| {
            c["id"]
                .as_str()
                .and_then(|s| Uuid::parse_str(s).ok())
                .expect("chat id")
        })
        .collect()
}

#[tokio::test]
async fn the_first_page_is_the_callers_ten_newest_chats_in_upstreams_json_shape() {
    let f = fixture(12).await;
    for shape in Shape::ALL {
        let response = f
            .call(
                ApiRequest::get("/api/history")
                    .bearer(&f.ada.token)
                    .build(shape),
            )
            .await;
        assert_eq!(response.status, 200, "{shape:?}: {}", response.text);
        assert_eq!(response.headers["content-type"], "application/json");
        assert_eq!(ids(&response), f.adas[..10], "{shape:?}");
        assert_eq!(response.json["hasMore"], true);
        let first = &response.json["chats"][0];
        assert_eq!(
            first,
            &json!({
                "id": f.adas[0].to_string(),
                "createdAt": "2025-03-01T09:11:00.125Z",
                "title": "Ada 11",
                "userId": f.ada.id.to_string(),
                "visibility": "private",
            })
        );
    }
}

#[tokio::test]
async fn ending_before_pages_back_through_every_chat_exactly_once() {
    let f = fixture(7).await;
    let mut seen: Vec<Uuid> = Vec::new();
    let mut cursor: Option<Uuid> = None;
    loop {
        let mut request = ApiRequest::get("/api/history")
            .query("limit", "3")
            .bearer(&f.ada.token);
        if let Some(id) = cursor {
            request = request.query("ending_before", &id.to_string());
        }
        let response = f.call(request.build(Shape::RestV1)).await;
        assert_eq!(response.status, 200, "{}", response.text);
        let page = ids(&response);
        seen.extend(&page);
        if response.json["hasMore"] == false {
            break;
        }
        cursor = page.last().copied();
    }
    assert_eq!(seen, f.adas);
}

#[tokio::test]
async fn starting_after_gives_the_newest_chats_newer_than_the_cursor() {
    let f = fixture(5).await;
    let response = f
        .call(
            ApiRequest::get("/api/history")
                .query("limit", "2")
                .query("starting_after", &f.adas[4].to_string())
                .bearer(&f.ada.token)
                .build(Shape::HttpV2),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(ids(&response), f.adas[..2]);
    assert_eq!(response.json["hasMore"], true);
}

#[tokio::test]
async fn a_caller_with_no_chats_gets_an_empty_page() {
    let f = fixture(0).await;
    let response = f
        .call(
            ApiRequest::get("/api/history")
                .bearer(&f.ada.token)
                .build(Shape::HttpV2),
        )
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json, json!({"chats": [], "hasMore": false}));
}

#[tokio::test]
async fn both_cursors_at_once_are_refused_before_anything_else_is_checked() {
    let f = fixture(2).await;
    let both = ApiRequest::get("/api/history")
        .query("starting_after", &f.adas[0].to_string())
        .query("ending_before", &f.adas[1].to_string());
    // Even without a caller: upstream checks the cursors first.
    for request in [both.clone(), both.bearer(&f.ada.token)] {
        let response = f.call(request.build(Shape::HttpV2)).await;
        assert_eq!(response.status, 400);
        assert_eq!(
            response.json,
            bad_request("Only one of starting_after or ending_before can be provided.")
        );
    }
}

#[tokio::test]
async fn malformed_limits_and_cursors_are_400s_that_name_the_parameter() {
    let f = fixture(1).await;
    for limit in [
        "abc",
        "0",
        "101",
        "-1",
        "1.5",
        "10abc",
        "99999999999999999999",
    ] {
        let response = f
            .call(
                ApiRequest::get("/api/history")
                    .query("limit", limit)
                    .bearer(&f.ada.token)
                    .build(Shape::RestV1),
            )
            .await;
        assert_eq!(response.status, 400, "limit={limit}");
        assert_eq!(
            response.json,
            bad_request("Parameter limit must be a whole number from 1 to 100.")
        );
    }
    for (name, value) in [
        ("ending_before", "not-a-uuid"),
        ("starting_after", "1 OR 1=1"),
        ("ending_before", "'; DROP TABLE \"Chat\"; --"),
    ] {
        let response = f
            .call(
                ApiRequest::get("/api/history")
                    .query(name, value)
                    .bearer(&f.ada.token)
                    .build(Shape::HttpV2),
            )
            .await;
        assert_eq!(response.status, 400, "{name}={value}");
        assert_eq!(
            response.json,
            bad_request(&format!("Parameter {name} must be a UUID."))
        );
    }
    assert_eq!(f.chats_of(f.ada.id).await, 1);
}

#[tokio::test]
async fn a_cursor_that_is_not_one_of_the_callers_chats_is_refused() {
    let f = fixture(2).await;
    let babbages: Uuid = sqlx::query_scalar(r#"SELECT id FROM "Chat" WHERE "userId" = $1 LIMIT 1"#)
        .bind(f.babbage.id)
        .fetch_one(f.db.observer())
        .await
        .expect("Babbage's chat");
    for cursor in [Uuid::new_v4(), babbages] {
        let response = f
            .call(
                ApiRequest::get("/api/history")
                    .query("ending_before", &cursor.to_string())
                    .bearer(&f.ada.token)
                    .build(Shape::HttpV2),
            )
            .await;
        assert_eq!(response.status, 400);
        assert_eq!(
            response.json,
            bad_request("The chat given as the page cursor was not found.")
        );
    }
}

#[tokio::test]
async fn callers_without_a_valid_session_get_401_on_both_methods_and_nothing_is_deleted() {
    let f = fixture(3).await;
    let headers = invalid_authorizations(f.ada.id);
    for method in ["GET", "DELETE"] {
        for header in &headers {
            let mut request = ApiRequest::new(method, "/api/history");
            if let Some(value) = header {
                request = request.header("authorization", value);
            }
            let response = f.call(request.build(Shape::HttpV2)).await;
            assert_eq!(response.status, 401, "{method} with {header:?}");
            assert_eq!(response.json, error_body("unauthorized:chat"));
        }
    }
    assert_eq!(f.chats_of(f.ada.id).await, 3);
}

#[tokio::test]
async fn a_token_whose_user_was_deleted_is_refused() {
    let f = fixture(0).await;
    sqlx::query(r#"DELETE FROM "User" WHERE id = $1"#)
        .bind(f.ada.id)
        .execute(f.db.observer())
        .await
        .expect("delete Ada");
    let response = f
        .call(
            ApiRequest::get("/api/history")
                .bearer(&f.ada.token)
                .build(Shape::HttpV2),
        )
        .await;
    assert_eq!(response.status, 401);
    assert_eq!(response.json, error_body("unauthorized:chat"));
}

#[tokio::test]
async fn delete_removes_all_of_the_callers_chats_with_their_messages_and_only_theirs() {
    let f = fixture(4).await;
    let message_id = Uuid::new_v4();
    sqlx::query(
        r#"INSERT INTO "Message_v2" (id, "chatId", role, parts, attachments, "createdAt")
           VALUES ($1, $2, 'user', '[]', '[]', now())"#,
    )
    .bind(message_id)
    .bind(f.adas[0])
    .execute(f.db.observer())
    .await
    .expect("message");

    for shape in Shape::ALL {
        let response = f
            .call(
                ApiRequest::delete("/api/history")
                    .bearer(&f.ada.token)
                    .build(shape),
            )
            .await;
        assert_eq!(response.status, 200, "{shape:?}: {}", response.text);
        let expected = if shape == Shape::RestV1 { 4 } else { 0 };
        assert_eq!(
            response.json,
            json!({"deletedCount": expected}),
            "{shape:?}"
        );
    }
    assert_eq!(f.chats_of(f.ada.id).await, 0);
    assert_eq!(f.chats_of(f.babbage.id).await, 2);
    let messages: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "Message_v2""#)
        .fetch_one(f.db.observer())
        .await
        .expect("count");
    assert_eq!(messages, 0);
}

#[tokio::test]
async fn other_methods_are_405_with_an_allow_header() {
    let f = fixture(1).await;
    for method in ["POST", "PUT", "PATCH"] {
        let response = f
            .call(
                ApiRequest::new(method, "/api/history")
                    .bearer(&f.ada.token)
                    .body("{}")
                    .build(Shape::HttpV2),
            )
            .await;
        assert_eq!(response.status, 405, "{method}");
        assert_eq!(response.headers["allow"], "GET, DELETE");
        assert_eq!(response.json["code"], "bad_request:api");
    }
    assert_eq!(f.chats_of(f.ada.id).await, 1);
}

#[tokio::test]
async fn api_gateway_authorizer_claims_identify_the_caller_without_a_token() {
    let f = fixture(3).await;
    let claims = json!({"sub": f.ada.id.to_string(), "email": "ada@example.com"});
    for shape in [Shape::RestV1, Shape::HttpV2] {
        let response = f
            .call(
                ApiRequest::get("/api/history")
                    .claims(claims.clone())
                    .build(shape),
            )
            .await;
        assert_eq!(response.status, 200, "{shape:?}: {}", response.text);
        assert_eq!(ids(&response), f.adas, "{shape:?}");
    }
    // Claims win over a token: Babbage's token with Ada's claims is Ada.
    let response = f
        .call(
            ApiRequest::get("/api/history")
                .claims(claims)
                .bearer(&f.babbage.token)
                .build(Shape::HttpV2),
        )
        .await;
    assert_eq!(ids(&response), f.adas);
}

#[tokio::test]
async fn a_caller_new_to_us_from_the_authorizer_gets_a_user_row_and_an_empty_history() {
    let f = fixture(1).await;
    let newcomer = Uuid::new_v4();
    let response = f
        .call(
            ApiRequest::get("/api/history")
                .claims(json!({"sub": newcomer.to_string(), "email": "new@example.com"}))
                .build(Shape::RestV1),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.json, json!({"chats": [], "hasMore": false}));
    let email: String = sqlx::query_scalar(r#"SELECT email FROM "User" WHERE id = $1"#)
        .bind(newcomer)
        .fetch_one(f.db.observer())
        .await
        .expect("user row");
    assert_eq!(email, "new@example.com");
}

#[tokio::test]
async fn authorizer_claims_without_a_uuid_subject_are_unauthorized() {
    let f = fixture(1).await;
    let response = f
        .call(
            ApiRequest::get("/api/history")
                .claims(json!({"sub": "ada", "email": "ada@example.com"}))
                .build(Shape::RestV1),
        )
        .await;
    assert_eq!(response.status, 401);
    assert_eq!(response.json, error_body("unauthorized:chat"));
}
