//! `GET /api/suggestions`, as the upstream chatbot answers it, for every
//! event shape Lambda delivers, on every path: what the caller sees, and
//! that the database is left as it was. Every call ends with no connection
//! checked out.

use chrono::NaiveDateTime;
use integration_tests::expect::{bad_request, error_body, invalid_authorizations};
use integration_tests::{ApiRequest, Shape, TestApp, TestDb, TestResponse, TestUser};
use serde_json::{Value, json};
use shared::db::models::{Suggestion, timestamp};
use shared::db::queries::{document, suggestion};
use shared::http::identity::UserType;
use uuid::Uuid;

struct Fixture {
    db: TestDb,
    app: TestApp,
    ada: TestUser,
    babbage: TestUser,
    /// Ada's document (two versions), with three suggestions, oldest first.
    essay: Uuid,
    essay_suggestions: Vec<Suggestion>,
    /// Ada's document without suggestions.
    blank: Uuid,
    /// Babbage's document, with one suggestion, and one without any.
    engine: Uuid,
    engine_blank: Uuid,
}

async fn fixture() -> Fixture {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "suggestions", &[]);
    let ada = app.user("ada@example.com", UserType::Regular).await;
    let babbage = app.user("babbage@example.com", UserType::Guest).await;

    let essay = Uuid::new_v4();
    let first = a_version(&app, essay, ada.id).await;
    let second = a_version(&app, essay, ada.id).await;
    let mut essay_suggestions = Vec::new();
    for (i, version) in [first, first, second].into_iter().enumerate() {
        essay_suggestions.push(a_suggestion(&app, essay, version, ada.id, i, None).await);
    }
    let blank = Uuid::new_v4();
    a_version(&app, blank, ada.id).await;

    let engine = Uuid::new_v4();
    let version = a_version(&app, engine, babbage.id).await;
    a_suggestion(&app, engine, version, babbage.id, 0, Some("why")).await;
    let engine_blank = Uuid::new_v4();
    a_version(&app, engine_blank, babbage.id).await;

    Fixture {
        db,
        app,
        ada,
        babbage,
        essay,
        essay_suggestions,
        blank,
        engine,
        engine_blank,
    }
}

/// Saves a version through the test's own pool (each one later than the
/// last, `document::save` sees to it).
async fn a_version(app: &TestApp, id: Uuid, user: Uuid) -> NaiveDateTime {
    document::save(app.observer(), id, "Notes", "text", "Some text.", user)
        .await
        .expect("version")
        .expect("saved")
        .created_at
}

/// A suggestion made `minute` minutes into a fixed hour, so that the
/// expected order and JSON are exact.
async fn a_suggestion(
    app: &TestApp,
    document_id: Uuid,
    document_created_at: NaiveDateTime,
    user: Uuid,
    minute: usize,
    description: Option<&str>,
) -> Suggestion {
    let suggestion = Suggestion {
        id: Uuid::new_v4(),
        document_id,
        document_created_at,
        original_text: format!("original {minute}"),
        suggested_text: format!("suggested {minute}"),
        description: description.map(str::to_owned),
        is_resolved: minute % 2 == 1,
        user_id: user,
        created_at: chrono::NaiveDate::from_ymd_opt(2025, 3, 1)
            .and_then(|d| d.and_hms_milli_opt(9, minute as u32, 0, 250))
            .expect("time"),
    };
    suggestion::save_all(app.observer(), std::slice::from_ref(&suggestion))
        .await
        .expect("suggestion");
    suggestion
}

impl Fixture {
    /// Calls the suggestions function ([`TestApp::call`] checks what it
    /// leaves).
    #[track_caller]
    fn call(&self, request: lambda_http::Request) -> impl Future<Output = TestResponse> {
        self.app.call(::suggestions::handle, request)
    }

    /// Every document version and suggestion, and how many users there
    /// are: a read must leave them as they were.
    async fn snapshot(&self) -> Value {
        sqlx::query_scalar(
            r#"SELECT json_build_object(
                   'documents', (SELECT coalesce(json_agg(d ORDER BY id, "createdAt"), '[]')
                                 FROM "Document" d),
                   'suggestions', (SELECT coalesce(json_agg(s ORDER BY id), '[]')
                                   FROM "Suggestion" s),
                   'users', (SELECT count(*) FROM "User"))"#,
        )
        .fetch_one(self.db.observer())
        .await
        .expect("snapshot")
    }
}

fn get(document_id: &str) -> ApiRequest {
    ApiRequest::get("/api/suggestions").query("documentId", document_id)
}

/// A suggestion as upstream serialises a drizzle row.
fn suggestion_json(s: &Suggestion) -> Value {
    json!({
        "id": s.id.to_string(),
        "documentId": s.document_id.to_string(),
        "documentCreatedAt": timestamp::format(&s.document_created_at),
        "originalText": s.original_text,
        "suggestedText": s.suggested_text,
        "description": s.description,
        "isResolved": s.is_resolved,
        "userId": s.user_id.to_string(),
        "createdAt": timestamp::format(&s.created_at),
    })
}

#[tokio::test]
async fn get_answers_the_suggestions_on_the_callers_document_oldest_first_in_every_shape() {
    let f = fixture().await;
    let expected: Vec<Value> = f.essay_suggestions.iter().map(suggestion_json).collect();
    assert_eq!(
        expected[0]["createdAt"], "2025-03-01T09:00:00.250Z",
        "the fixture is what the test thinks it is"
    );
    for shape in Shape::ALL {
        let response = f
            .call(get(&f.essay.to_string()).bearer(&f.ada.token).build(shape))
            .await;
        assert_eq!(response.status, 200, "{shape:?}: {}", response.text);
        assert_eq!(response.headers["content-type"], "application/json");
        assert_eq!(response.json, Value::Array(expected.clone()), "{shape:?}");
    }
    // Babbage's own, with a description.
    let response = f
        .call(
            get(&f.engine.to_string())
                .bearer(&f.babbage.token)
                .build(Shape::HttpV2),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.json[0]["description"], "why");
    assert_eq!(response.json.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn the_callers_document_without_suggestions_and_a_document_that_does_not_exist_both_answer_an_empty_list()
 {
    let f = fixture().await;
    for id in [f.blank, Uuid::new_v4()] {
        for shape in Shape::ALL {
            let response = f
                .call(get(&id.to_string()).bearer(&f.ada.token).build(shape))
                .await;
            assert_eq!(response.status, 200, "{shape:?}: {}", response.text);
            assert_eq!(response.headers["content-type"], "application/json");
            assert_eq!(response.json, json!([]), "{shape:?}");
        }
    }
}

#[tokio::test]
async fn authorizer_claims_identify_the_caller_without_a_token() {
    let f = fixture().await;
    let claims = json!({"sub": f.ada.id.to_string(), "email": "ada@example.com"});
    for shape in [Shape::RestV1, Shape::HttpV2] {
        let response = f
            .call(
                get(&f.essay.to_string())
                    .claims(claims.clone())
                    .build(shape),
            )
            .await;
        assert_eq!(response.status, 200, "{shape:?}: {}", response.text);
        assert_eq!(
            response.json,
            Value::Array(f.essay_suggestions.iter().map(suggestion_json).collect())
        );
    }
    // Claims win over a token: Babbage's token with Ada's claims is Ada.
    let response = f
        .call(
            get(&f.essay.to_string())
                .claims(claims)
                .bearer(&f.babbage.token)
                .build(Shape::HttpV2),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
}

#[tokio::test]
async fn a_missing_document_id_is_a_400_before_the_caller_is_checked() {
    let f = fixture().await;
    for request in [
        ApiRequest::get("/api/suggestions"),
        get(""),
        ApiRequest::get("/api/suggestions").query("id", &f.essay.to_string()),
    ] {
        for request in [request.clone(), request.bearer(&f.ada.token)] {
            let response = f.call(request.build(Shape::HttpV2)).await;
            assert_eq!(response.status, 400, "{}", response.text);
            assert_eq!(
                response.json,
                bad_request("Parameter documentId is required.")
            );
        }
    }
}

#[tokio::test]
async fn document_ids_that_are_not_uuids_are_400s_naming_the_parameter() {
    let f = fixture().await;
    let before = f.snapshot().await;
    for id in [
        "not-a-uuid",
        "1 OR 1=1",
        "' OR '1'='1",
        "'; DELETE FROM \"Suggestion\"; --",
        &format!("{}' OR 'a'='a", f.engine),
    ] {
        for shape in Shape::ALL {
            let response = f.call(get(id).bearer(&f.ada.token).build(shape)).await;
            assert_eq!(response.status, 400, "{id} {shape:?}");
            assert_eq!(
                response.json,
                bad_request("Parameter documentId must be a UUID.")
            );
        }
    }
    assert_eq!(f.snapshot().await, before);
}

#[tokio::test]
async fn callers_without_a_valid_session_get_401_unauthorized_suggestions_with_the_default_message()
{
    let f = fixture().await;
    let before = f.snapshot().await;
    for header in invalid_authorizations(f.ada.id) {
        let mut request = get(&f.essay.to_string());
        if let Some(value) = &header {
            request = request.header("authorization", value);
        }
        let response = f.call(request.build(Shape::HttpV2)).await;
        assert_eq!(response.status, 401, "{header:?}: {}", response.text);
        assert_eq!(response.json, error_body("unauthorized:suggestions"));
    }
    let response = f
        .call(
            get(&f.essay.to_string())
                .claims(json!({"sub": "ada' OR 1=1 --"}))
                .build(Shape::RestV1),
        )
        .await;
    assert_eq!(response.status, 401);
    assert_eq!(response.json, error_body("unauthorized:suggestions"));

    // A token outlives nothing: once its user is gone, it is refused.
    let ghost = f.app.user("ghost@example.com", UserType::Regular).await;
    sqlx::query(r#"DELETE FROM "User" WHERE id = $1"#)
        .bind(ghost.id)
        .execute(f.db.observer())
        .await
        .expect("delete the ghost");
    let response = f
        .call(
            get(&f.essay.to_string())
                .bearer(&ghost.token)
                .build(Shape::FunctionUrl),
        )
        .await;
    assert_eq!(response.status, 401);
    assert_eq!(response.json, error_body("unauthorized:suggestions"));
    assert_eq!(f.snapshot().await, before);
}

#[tokio::test]
async fn babbage_can_neither_read_the_suggestions_on_adas_document_nor_learn_that_it_has_none() {
    let f = fixture().await;
    let before = f.snapshot().await;
    for id in [f.essay, f.blank] {
        for shape in Shape::ALL {
            let response = f
                .call(get(&id.to_string()).bearer(&f.babbage.token).build(shape))
                .await;
            assert_eq!(response.status, 403, "{shape:?}: {}", response.text);
            assert_eq!(response.json, error_body("forbidden:api"));
        }
        let response = f
            .call(
                get(&id.to_string())
                    .claims(json!({"sub": f.babbage.id.to_string()}))
                    .build(Shape::RestV1),
            )
            .await;
        assert_eq!(response.status, 403, "{}", response.text);
        assert_eq!(response.json, error_body("forbidden:api"));
    }
    // Nor Ada Babbage's.
    for id in [f.engine, f.engine_blank] {
        let response = f
            .call(
                get(&id.to_string())
                    .bearer(&f.ada.token)
                    .build(Shape::HttpV2),
            )
            .await;
        assert_eq!(response.status, 403, "{}", response.text);
        assert_eq!(response.json, error_body("forbidden:api"));
    }
    assert_eq!(f.snapshot().await, before);
}

#[tokio::test]
async fn suggestions_that_someone_else_asked_for_on_the_callers_document_are_refused_as_upstream_refuses_them()
 {
    let f = fixture().await;
    // Babbage asked for suggestions on Ada's document (upstream's tool
    // records whoever asked), before any of hers.
    let version: NaiveDateTime = sqlx::query_scalar(
        r#"SELECT "createdAt" FROM "Document" WHERE id = $1 ORDER BY "createdAt" LIMIT 1"#,
    )
    .bind(f.blank)
    .fetch_one(f.db.observer())
    .await
    .expect("version");
    a_suggestion(&f.app, f.blank, version, f.babbage.id, 0, None).await;
    a_suggestion(&f.app, f.blank, version, f.ada.id, 1, None).await;
    let before = f.snapshot().await;
    let response = f
        .call(
            get(&f.blank.to_string())
                .bearer(&f.ada.token)
                .build(Shape::HttpV2),
        )
        .await;
    assert_eq!(response.status, 403, "{}", response.text);
    assert_eq!(response.json, error_body("forbidden:api"));
    // Babbage does not own the document: refused too.
    let response = f
        .call(
            get(&f.blank.to_string())
                .bearer(&f.babbage.token)
                .build(Shape::HttpV2),
        )
        .await;
    assert_eq!(response.status, 403, "{}", response.text);
    assert_eq!(response.json, error_body("forbidden:api"));
    assert_eq!(f.snapshot().await, before);
}

#[tokio::test]
async fn other_methods_are_405_with_allow_get_and_change_nothing() {
    let f = fixture().await;
    let before = f.snapshot().await;
    for method in ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        let response = f
            .call(
                ApiRequest::new(method, "/api/suggestions")
                    .query("documentId", &f.essay.to_string())
                    .json(&json!({"documentId": f.essay}))
                    .bearer(&f.ada.token)
                    .build(Shape::HttpV2),
            )
            .await;
        assert_eq!(response.status, 405, "{method}");
        assert_eq!(response.headers["allow"], "GET");
        assert_eq!(
            response.json,
            bad_request("This route answers GET only."),
            "{method}"
        );
    }
    assert_eq!(f.snapshot().await, before);
}
