//! `GET`, `POST` and `DELETE /api/document`, as the upstream chatbot
//! answers them, for every event shape Lambda delivers, on every path:
//! what the caller sees, and what the database holds afterwards (a refused
//! request changes nothing). Every call ends with no connection checked
//! out.

use std::time::Duration;

use integration_tests::expect::{
    bad_request, error_body, error_with_cause, invalid_authorizations,
};
use integration_tests::{ApiRequest, Shape, TestApp, TestDb, TestResponse, TestUser};
use serde_json::{Value, json};
use shared::db::models::{self, Suggestion, timestamp};
use shared::db::queries::{document, suggestion};
use shared::http::identity::UserType;
use uuid::Uuid;

const DOCUMENT_BODY_LIMIT: usize = 1024 * 1024;

struct Fixture {
    db: TestDb,
    app: TestApp,
    ada: TestUser,
    babbage: TestUser,
    /// Ada's document: two versions, a suggestion on each.
    essay: Uuid,
    essay_versions: Vec<models::Document>,
    /// Babbage's document: one version.
    engine: Uuid,
}

async fn fixture() -> Fixture {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "document", &[]);
    let ada = app.user("ada@example.com", UserType::Regular).await;
    let babbage = app.user("babbage@example.com", UserType::Guest).await;
    let essay = Uuid::new_v4();
    let mut essay_versions = Vec::new();
    for content in ["Notes on the engine.", "Notes on the Analytical Engine."] {
        let version = a_version(&app, essay, ada.id, "Notes", content).await;
        a_suggestion(&app, &version, ada.id).await;
        essay_versions.push(version);
    }
    let engine = Uuid::new_v4();
    a_version(&app, engine, babbage.id, "Engine", "Gears.").await;
    Fixture {
        db,
        app,
        ada,
        babbage,
        essay,
        essay_versions,
        engine,
    }
}

/// Saves a version through the test's own pool, then lets a millisecond
/// pass so that the next version is later.
async fn a_version(
    app: &TestApp,
    id: Uuid,
    user: Uuid,
    title: &str,
    content: &str,
) -> models::Document {
    document::save(app.observer(), id, title, "text", content, user)
        .await
        .expect("version")
        .expect("saved")
}

async fn a_suggestion(app: &TestApp, version: &models::Document, user: Uuid) -> Suggestion {
    let suggestion = Suggestion {
        id: Uuid::new_v4(),
        document_id: version.id,
        document_created_at: version.created_at,
        original_text: "engine".into(),
        suggested_text: "Engine".into(),
        description: Some("A proper noun.".into()),
        is_resolved: false,
        user_id: user,
        created_at: models::now(),
    };
    suggestion::save_all(app.observer(), std::slice::from_ref(&suggestion))
        .await
        .expect("suggestion");
    suggestion
}

impl Fixture {
    /// Calls the document function ([`TestApp::call`] checks what it
    /// leaves).
    #[track_caller]
    fn call(&self, request: lambda_http::Request) -> impl Future<Output = TestResponse> {
        self.app.call(::document::handle, request)
    }

    /// Every document version and suggestion, and how many users there
    /// are: what a refused request must leave as it was.
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

    async fn versions_of(&self, id: Uuid) -> Vec<models::Document> {
        document::get_versions(self.db.observer(), id)
            .await
            .expect("versions")
    }

    async fn suggestions_on(&self, id: Uuid) -> Vec<Suggestion> {
        suggestion::get_by_document_id(self.db.observer(), id)
            .await
            .expect("suggestions")
    }
}

/// A version as upstream serialises a drizzle row.
fn version_json(version: &models::Document) -> Value {
    json!({
        "id": version.id.to_string(),
        "createdAt": timestamp::format(&version.created_at),
        "title": version.title,
        "content": version.content,
        "kind": version.kind,
        "userId": version.user_id.to_string(),
    })
}

fn get(id: &str) -> ApiRequest {
    ApiRequest::get("/api/document").query("id", id)
}

fn post(id: &str, body: &Value) -> ApiRequest {
    ApiRequest::new("POST", "/api/document")
        .query("id", id)
        .json(body)
}

fn post_raw(id: &str, body: &str) -> ApiRequest {
    ApiRequest::new("POST", "/api/document")
        .query("id", id)
        .header("content-type", "application/json")
        .body(body)
}

fn delete(id: &str, timestamp: &str) -> ApiRequest {
    ApiRequest::delete("/api/document")
        .query("id", id)
        .query("timestamp", timestamp)
}

#[tokio::test]
async fn post_saves_a_version_and_answers_it_in_a_one_element_array_in_every_shape() {
    let f = fixture().await;
    for shape in Shape::ALL {
        let id = Uuid::new_v4();
        let response = f
            .call(
                post(
                    &id.to_string(),
                    &json!({"title": "Sketch", "content": "fn main() {}", "kind": "code"}),
                )
                .bearer(&f.ada.token)
                .build(shape),
            )
            .await;
        assert_eq!(response.status, 200, "{shape:?}: {}", response.text);
        assert_eq!(response.headers["content-type"], "application/json");
        let saved = f.versions_of(id).await;
        assert_eq!(saved.len(), 1, "{shape:?}");
        assert_eq!(
            response.json,
            json!([{
                "id": id.to_string(),
                "createdAt": timestamp::format(&saved[0].created_at),
                "title": "Sketch",
                "content": "fn main() {}",
                "kind": "code",
                "userId": f.ada.id.to_string(),
            }]),
            "{shape:?}"
        );
    }
}

#[tokio::test]
async fn versions_posted_twice_read_back_oldest_first_and_delete_after_the_first_takes_only_the_second_with_its_suggestions()
 {
    let f = fixture().await;
    for shape in Shape::ALL {
        let id = Uuid::new_v4();
        let mut posted = Vec::new();
        for content in ["First draft.", "Second draft."] {
            let response = f
                .call(
                    post(
                        &id.to_string(),
                        &json!({"title": "Draft", "content": content, "kind": "text"}),
                    )
                    .bearer(&f.ada.token)
                    .build(shape),
                )
                .await;
            assert_eq!(response.status, 200, "{shape:?}: {}", response.text);
            posted.push(response.json[0].clone());
            // Timestamps are milliseconds: make the second version later.
            tokio::time::sleep(Duration::from_millis(3)).await;
        }

        let response = f
            .call(get(&id.to_string()).bearer(&f.ada.token).build(shape))
            .await;
        assert_eq!(response.status, 200, "{shape:?}: {}", response.text);
        assert_eq!(response.headers["content-type"], "application/json");
        assert_eq!(response.json, Value::Array(posted.clone()), "{shape:?}");
        let versions = f.versions_of(id).await;
        assert_eq!(
            response.json,
            json!([version_json(&versions[0]), version_json(&versions[1])])
        );

        let on_first = a_suggestion(&f.app, &versions[0], f.ada.id).await;
        a_suggestion(&f.app, &versions[1], f.ada.id).await;
        let first_created_at = response.json[0]["createdAt"]
            .as_str()
            .expect("createdAt")
            .to_owned();
        let response = f
            .call(
                delete(&id.to_string(), &first_created_at)
                    .bearer(&f.ada.token)
                    .build(shape),
            )
            .await;
        assert_eq!(response.status, 200, "{shape:?}: {}", response.text);
        assert_eq!(response.headers["content-type"], "application/json");
        assert_eq!(response.json, json!([posted[1]]), "{shape:?}");
        assert_eq!(f.versions_of(id).await, versions[..1].to_vec());
        assert_eq!(f.suggestions_on(id).await, vec![on_first]);

        let response = f
            .call(get(&id.to_string()).bearer(&f.ada.token).build(shape))
            .await;
        assert_eq!(response.json, json!([posted[0]]), "{shape:?}");
    }
    // Ada's other document was not touched.
    assert_eq!(f.versions_of(f.essay).await, f.essay_versions);
    assert_eq!(f.suggestions_on(f.essay).await.len(), 2);
}

#[tokio::test]
async fn delete_with_a_timestamp_after_every_version_deletes_nothing_and_answers_an_empty_list() {
    let f = fixture().await;
    let before = f.snapshot().await;
    let last = timestamp::format(&f.essay_versions[1].created_at);
    // The same instant with an offset is the same instant.
    let last_in_paris = models::parse_timestamp(&last)
        .map(|t| {
            (t + chrono::Duration::hours(1))
                .format("%Y-%m-%dT%H:%M:%S%.3f+01:00")
                .to_string()
        })
        .expect("timestamp");
    for timestamp in [last, last_in_paris, "2999-01-01T00:00:00Z".to_owned()] {
        let response = f
            .call(
                delete(&f.essay.to_string(), &timestamp)
                    .bearer(&f.ada.token)
                    .build(Shape::HttpV2),
            )
            .await;
        assert_eq!(response.status, 200, "{timestamp}: {}", response.text);
        assert_eq!(response.json, json!([]), "{timestamp}");
    }
    assert_eq!(f.snapshot().await, before);

    // Before every version: the document is emptied.
    let response = f
        .call(
            delete(&f.essay.to_string(), "2000-01-01T00:00:00.000Z")
                .bearer(&f.ada.token)
                .build(Shape::RestV1),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(
        response.json,
        json!([
            version_json(&f.essay_versions[0]),
            version_json(&f.essay_versions[1])
        ])
    );
    assert!(f.versions_of(f.essay).await.is_empty());
    assert!(f.suggestions_on(f.essay).await.is_empty());
    assert_eq!(f.versions_of(f.engine).await.len(), 1);
}

#[tokio::test]
async fn authorizer_claims_identify_the_caller_on_every_method_without_a_token() {
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
            json!([
                version_json(&f.essay_versions[0]),
                version_json(&f.essay_versions[1])
            ])
        );
        let id = Uuid::new_v4();
        let response = f
            .call(
                post(
                    &id.to_string(),
                    &json!({"title": "Plot", "content": "", "kind": "image"}),
                )
                .claims(claims.clone())
                .build(shape),
            )
            .await;
        assert_eq!(response.status, 200, "{shape:?}: {}", response.text);
        let saved = f.versions_of(id).await;
        assert_eq!(response.json, json!([version_json(&saved[0])]));
        assert_eq!(saved[0].user_id, f.ada.id);
        let response = f
            .call(
                delete(&id.to_string(), "2000-01-01T00:00:00Z")
                    .claims(claims.clone())
                    .build(shape),
            )
            .await;
        assert_eq!(response.status, 200, "{shape:?}: {}", response.text);
        assert_eq!(response.json, json!([version_json(&saved[0])]));
        assert!(f.versions_of(id).await.is_empty());
    }
}

#[tokio::test]
async fn a_missing_id_is_a_400_in_upstreams_words_for_each_method_before_the_caller_is_checked() {
    let f = fixture().await;
    let before = f.snapshot().await;
    let body = json!({"title": "T", "content": "C", "kind": "text"});
    let cases = [
        (ApiRequest::get("/api/document"), "Parameter id is missing"),
        (get(""), "Parameter id is missing"),
        (
            ApiRequest::new("POST", "/api/document").json(&body),
            "Parameter id is required.",
        ),
        (post("", &body), "Parameter id is required."),
        (
            ApiRequest::delete("/api/document").query("timestamp", "2000-01-01T00:00:00Z"),
            "Parameter id is required.",
        ),
        (
            delete("", "2000-01-01T00:00:00Z"),
            "Parameter id is required.",
        ),
    ];
    for (request, cause) in cases {
        for request in [request.clone(), request.bearer(&f.ada.token)] {
            let response = f.call(request.build(Shape::HttpV2)).await;
            assert_eq!(response.status, 400, "{cause}: {}", response.text);
            assert_eq!(response.json, bad_request(cause));
        }
    }
    assert_eq!(f.snapshot().await, before);
}

#[tokio::test]
async fn delete_without_a_timestamp_or_with_one_that_is_not_rfc_3339_is_a_400_and_deletes_nothing()
{
    let f = fixture().await;
    let before = f.snapshot().await;
    let essay = f.essay.to_string();
    let response = f
        .call(
            ApiRequest::delete("/api/document")
                .query("id", &essay)
                .bearer(&f.ada.token)
                .build(Shape::RestV1),
        )
        .await;
    assert_eq!(response.status, 400);
    assert_eq!(
        response.json,
        bad_request("Parameter timestamp is required.")
    );
    for timestamp in [
        "yesterday",
        "1735689600000",
        "2025-01-31",
        "2025-01-31 12:00:00",
        "2025-13-01T00:00:00Z",
        "2025-01-31T12:00:00",
        "Fri Jan 31 2025 12:00:00 GMT+0000",
        "' OR 1=1 --",
        "2025-01-31T12:00:00Z'; DELETE FROM \"Document\"; --",
    ] {
        for shape in Shape::ALL {
            let response = f
                .call(delete(&essay, timestamp).bearer(&f.ada.token).build(shape))
                .await;
            assert_eq!(response.status, 400, "{timestamp} {shape:?}");
            assert_eq!(
                response.json,
                bad_request(
                    "Parameter timestamp must be an RFC 3339 date-time, such as 2025-01-31T12:00:00.000Z."
                ),
                "{timestamp}"
            );
        }
    }
    assert_eq!(f.snapshot().await, before);
}

#[tokio::test]
async fn ids_that_are_not_uuids_are_400s_naming_the_parameter_on_every_method() {
    let f = fixture().await;
    let before = f.snapshot().await;
    let body = json!({"title": "T", "content": "C", "kind": "text"});
    for id in [
        "not-a-uuid",
        "1 OR 1=1",
        "' OR '1'='1",
        "'; DROP TABLE \"Document\"; --",
        &format!("{}' --", f.essay),
    ] {
        for request in [get(id), post(id, &body), delete(id, "2000-01-01T00:00:00Z")] {
            let response = f
                .call(request.bearer(&f.ada.token).build(Shape::HttpV2))
                .await;
            assert_eq!(response.status, 400, "{id}: {}", response.text);
            assert_eq!(response.json, bad_request("Parameter id must be a UUID."));
        }
    }
    assert_eq!(f.snapshot().await, before);
}

#[tokio::test]
async fn post_bodies_that_are_not_json_objects_are_400s_with_a_cause_and_save_nothing() {
    let f = fixture().await;
    let before = f.snapshot().await;
    let cases = [
        ("", "The request body is empty."),
        ("{", "The request body is not valid JSON."),
        (
            r#"{"title": "T", "content": "C", "kind": "text""#,
            "The request body is not valid JSON.",
        ),
        (
            "title=T&content=C&kind=text",
            "The request body is not valid JSON.",
        ),
        (
            r#"["T", "C", "text"]"#,
            "Invalid request body: invalid type: sequence, expected a JSON object at line 1 column 0.",
        ),
        (
            "null",
            "Invalid request body: invalid type: null, expected a JSON object at line 1 column 4.",
        ),
        (
            r#""text""#,
            "Invalid request body: invalid type: string \"text\", expected a JSON object at line 1 column 6.",
        ),
    ];
    for (body, cause) in cases {
        for id in [f.essay, Uuid::new_v4()] {
            let response = f
                .call(
                    post_raw(&id.to_string(), body)
                        .bearer(&f.ada.token)
                        .build(Shape::RestV1),
                )
                .await;
            assert_eq!(response.status, 400, "{body}: {}", response.text);
            assert_eq!(response.json, bad_request(cause), "{body}");
        }
    }
    assert_eq!(f.snapshot().await, before);
}

#[tokio::test]
async fn post_bodies_missing_a_field_or_with_a_field_of_the_wrong_type_are_400s_with_a_cause() {
    let f = fixture().await;
    let before = f.snapshot().await;
    let cases = [
        (
            r#"{"content": "C", "kind": "text"}"#,
            "Invalid request body: missing field `title` at line 1 column 32.",
        ),
        (
            r#"{"title": "T", "kind": "text"}"#,
            "Invalid request body: missing field `content` at line 1 column 30.",
        ),
        (
            r#"{"title": "T", "content": "C"}"#,
            "Invalid request body: missing field `kind` at line 1 column 30.",
        ),
        (
            r#"{"title": null, "content": "C", "kind": "text"}"#,
            "Invalid request body: invalid type: null, expected a string at line 1 column 14.",
        ),
        (
            r#"{"content": null, "title": "T", "kind": "text"}"#,
            "Invalid request body: invalid type: null, expected a string at line 1 column 16.",
        ),
        (
            r#"{"title": 42, "content": "C", "kind": "text"}"#,
            "Invalid request body: invalid type: integer `42`, expected a string at line 1 column 12.",
        ),
        (
            r#"{"content": ["a", "b"], "title": "T", "kind": "text"}"#,
            "Invalid request body: invalid type: sequence, expected a string at line 1 column 12.",
        ),
        (
            r#"{"kind": {"type": "text"}, "title": "T", "content": "C"}"#,
            "Invalid request body: invalid type: map, expected a string at line 1 column 9.",
        ),
        (
            r#"{"kind": true, "title": "T", "content": "C"}"#,
            "Invalid request body: invalid type: boolean `true`, expected a string at line 1 column 13.",
        ),
    ];
    for (body, cause) in cases {
        let response = f
            .call(
                post_raw(&f.essay.to_string(), body)
                    .bearer(&f.ada.token)
                    .build(Shape::HttpV2),
            )
            .await;
        assert_eq!(response.status, 400, "{body}: {}", response.text);
        assert_eq!(response.json, bad_request(cause), "{body}");
    }
    assert_eq!(f.snapshot().await, before);
}

#[tokio::test]
async fn post_kinds_other_than_text_code_image_or_sheet_and_nul_characters_are_400_bad_request_document()
 {
    let f = fixture().await;
    let before = f.snapshot().await;
    let kind_cause = "Parameter kind must be one of text, code, image, sheet.";
    let mut cases = Vec::new();
    for kind in [
        "",
        "pdf",
        "TEXT",
        " text",
        "text'; DROP TABLE \"Document\"; --",
    ] {
        cases.push((
            json!({"title": "T", "content": "C", "kind": kind}),
            kind_cause,
        ));
    }
    cases.push((
        json!({"title": "T\u{0}", "content": "C", "kind": "text"}),
        "Parameter title must not contain NUL characters.",
    ));
    cases.push((
        json!({"title": "T", "content": "a\u{0}b", "kind": "text"}),
        "Parameter content must not contain NUL characters.",
    ));
    for (body, cause) in cases {
        let response = f
            .call(
                post(&f.essay.to_string(), &body)
                    .bearer(&f.ada.token)
                    .build(Shape::HttpV2),
            )
            .await;
        assert_eq!(response.status, 400, "{body}: {}", response.text);
        assert_eq!(
            response.json,
            error_with_cause("bad_request:document", cause),
            "{body}"
        );
    }
    assert_eq!(f.snapshot().await, before);

    // And every kind upstream knows is saved.
    for kind in ["text", "code", "image", "sheet"] {
        let id = Uuid::new_v4();
        let response = f
            .call(
                post(
                    &id.to_string(),
                    &json!({"title": kind, "content": "", "kind": kind}),
                )
                .bearer(&f.ada.token)
                .build(Shape::HttpV2),
            )
            .await;
        assert_eq!(response.status, 200, "{kind}: {}", response.text);
        assert_eq!(response.json[0]["kind"], kind);
        assert_eq!(f.versions_of(id).await[0].kind, kind);
    }
}

#[tokio::test]
async fn post_accepts_and_ignores_fields_it_does_not_know() {
    let f = fixture().await;
    let id = Uuid::new_v4();
    let response = f
        .call(
            post(
                &id.to_string(),
                &json!({
                    "title": "T",
                    "content": "C",
                    "kind": "sheet",
                    "userId": f.babbage.id,
                    "createdAt": "2000-01-01T00:00:00.000Z",
                    "id": f.engine,
                    "extra": [1, {"nested": true}],
                }),
            )
            .bearer(&f.ada.token)
            .build(Shape::FunctionUrl),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    let saved = f.versions_of(id).await;
    assert_eq!(response.json, json!([version_json(&saved[0])]));
    assert_eq!(saved[0].user_id, f.ada.id);
    assert_eq!(saved[0].kind, "sheet");
    assert_ne!(
        timestamp::format(&saved[0].created_at),
        "2000-01-01T00:00:00.000Z"
    );
    assert_eq!(f.versions_of(f.engine).await.len(), 1);
}

#[tokio::test]
async fn hostile_strings_in_the_title_and_content_are_stored_and_answered_verbatim() {
    let f = fixture().await;
    let id = Uuid::new_v4();
    let title = r#"Robert'); DROP TABLE "Document";--"#;
    let content =
        "' OR '1'='1 $1 \\x00 %00 \\'; <script>alert(1)</script> \u{202e} 🧮 \"quoted\"\n\ttab";
    let response = f
        .call(
            post(
                &id.to_string(),
                &json!({"title": title, "content": content, "kind": "code"}),
            )
            .bearer(&f.ada.token)
            .build(Shape::RestV1),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.json[0]["title"], title);
    assert_eq!(response.json[0]["content"], content);
    let response = f
        .call(
            get(&id.to_string())
                .bearer(&f.ada.token)
                .build(Shape::RestV1),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.json[0]["title"], title);
    assert_eq!(response.json[0]["content"], content);
    assert_eq!(f.versions_of(f.essay).await, f.essay_versions);
}

#[tokio::test]
async fn callers_without_a_valid_session_get_401_unauthorized_document_on_every_method_and_nothing_changes()
 {
    let f = fixture().await;
    let before = f.snapshot().await;
    let essay = f.essay.to_string();
    let body = json!({"title": "T", "content": "C", "kind": "text"});
    // POST included: upstream answers it not_found:document.
    let requests = [
        get(&essay),
        post(&essay, &body),
        post(&Uuid::new_v4().to_string(), &body),
        delete(&essay, "2000-01-01T00:00:00Z"),
    ];
    for request in &requests {
        for header in invalid_authorizations(f.ada.id) {
            let mut request = request.clone();
            if let Some(value) = &header {
                request = request.header("authorization", value);
            }
            let response = f.call(request.build(Shape::HttpV2)).await;
            assert_eq!(response.status, 401, "{header:?}: {}", response.text);
            assert_eq!(response.json, error_body("unauthorized:document"));
        }
        let response = f
            .call(
                request
                    .clone()
                    .claims(json!({"sub": "ada' OR 1=1 --"}))
                    .build(Shape::RestV1),
            )
            .await;
        assert_eq!(response.status, 401, "{}", response.text);
        assert_eq!(response.json, error_body("unauthorized:document"));
    }
    assert_eq!(f.snapshot().await, before);

    // A token outlives nothing: once its user is gone, it is refused.
    let ghost = f.app.user("ghost@example.com", UserType::Regular).await;
    sqlx::query(r#"DELETE FROM "User" WHERE id = $1"#)
        .bind(ghost.id)
        .execute(f.db.observer())
        .await
        .expect("delete the ghost");
    let before = f.snapshot().await;
    let id = Uuid::new_v4().to_string();
    for request in [
        get(&id),
        post(&id, &body),
        delete(&id, "2000-01-01T00:00:00Z"),
    ] {
        let response = f
            .call(request.bearer(&ghost.token).build(Shape::FunctionUrl))
            .await;
        assert_eq!(response.status, 401, "{}", response.text);
        assert_eq!(response.json, error_body("unauthorized:document"));
    }
    assert_eq!(f.snapshot().await, before);
}

#[tokio::test]
async fn a_document_that_does_not_exist_is_404_not_found_document_on_get_and_delete() {
    let f = fixture().await;
    let before = f.snapshot().await;
    let nowhere = Uuid::new_v4().to_string();
    for request in [get(&nowhere), delete(&nowhere, "2000-01-01T00:00:00Z")] {
        let response = f
            .call(request.bearer(&f.ada.token).build(Shape::HttpV2))
            .await;
        assert_eq!(response.status, 404, "{}", response.text);
        assert_eq!(response.json, error_body("not_found:document"));
    }
    assert_eq!(f.snapshot().await, before);
}

#[tokio::test]
async fn babbage_can_neither_read_nor_add_to_nor_delete_from_adas_document() {
    let f = fixture().await;
    let before = f.snapshot().await;
    let essay = f.essay.to_string();
    let body = json!({"title": "Mine now", "content": "Overwritten.", "kind": "text"});
    for shape in Shape::ALL {
        for request in [
            get(&essay),
            post(&essay, &body),
            delete(&essay, "2000-01-01T00:00:00Z"),
        ] {
            let response = f.call(request.bearer(&f.babbage.token).build(shape)).await;
            assert_eq!(response.status, 403, "{shape:?}: {}", response.text);
            assert_eq!(response.json, error_body("forbidden:document"));
        }
    }
    // Claims for Babbage are no better than his token.
    let response = f
        .call(
            delete(&essay, "2000-01-01T00:00:00Z")
                .claims(json!({"sub": f.babbage.id.to_string()}))
                .build(Shape::RestV1),
        )
        .await;
    assert_eq!(response.status, 403);
    assert_eq!(response.json, error_body("forbidden:document"));
    assert_eq!(f.snapshot().await, before);

    // And Ada cannot touch Babbage's.
    let response = f
        .call(
            get(&f.engine.to_string())
                .bearer(&f.ada.token)
                .build(Shape::HttpV2),
        )
        .await;
    assert_eq!(response.status, 403);
    assert_eq!(response.json, error_body("forbidden:document"));
}

#[tokio::test]
async fn post_bodies_up_to_1_mib_are_saved_and_larger_ones_are_413_and_save_nothing() {
    let f = fixture().await;
    const HEAD: &str = r#"{"title":"Long","kind":"text","content":""#;
    let padded = |size: usize| {
        let mut body = HEAD.to_owned();
        body.push_str(&"x".repeat(size - HEAD.len() - 2));
        body.push_str(r#""}"#);
        assert_eq!(body.len(), size);
        body
    };
    let id = Uuid::new_v4();
    let before = f.snapshot().await;
    let response = f
        .call(
            post_raw(&id.to_string(), &padded(DOCUMENT_BODY_LIMIT + 1))
                .bearer(&f.ada.token)
                .build(Shape::HttpV2),
        )
        .await;
    assert_eq!(response.status, 413, "{}", response.text);
    assert_eq!(
        response.json,
        bad_request("The request body is larger than 1048576 bytes.")
    );
    assert_eq!(f.snapshot().await, before);

    let response = f
        .call(
            post_raw(&id.to_string(), &padded(DOCUMENT_BODY_LIMIT))
                .bearer(&f.ada.token)
                .build(Shape::HttpV2),
        )
        .await;
    assert_eq!(response.status, 200, "{}", &response.text[..200]);
    let saved = f.versions_of(id).await;
    assert_eq!(saved.len(), 1);
    assert_eq!(
        saved[0].content.as_ref().map(String::len),
        Some(DOCUMENT_BODY_LIMIT - HEAD.len() - 2)
    );
}

#[tokio::test]
async fn other_methods_are_405_with_allow_get_post_delete_and_change_nothing() {
    let f = fixture().await;
    let before = f.snapshot().await;
    for method in ["PUT", "PATCH", "OPTIONS"] {
        let response = f
            .call(
                ApiRequest::new(method, "/api/document")
                    .query("id", &f.essay.to_string())
                    .json(&json!({"title": "T", "content": "C", "kind": "text"}))
                    .bearer(&f.ada.token)
                    .build(Shape::HttpV2),
            )
            .await;
        assert_eq!(response.status, 405, "{method}");
        assert_eq!(response.headers["allow"], "GET, POST, DELETE");
        assert_eq!(
            response.json,
            bad_request("This route answers GET, POST, DELETE only."),
            "{method}"
        );
    }
    assert_eq!(f.snapshot().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saves_of_one_document_at_the_same_moment_all_succeed_as_distinct_versions() {
    let db = TestDb::migrated().await;
    let app = std::sync::Arc::new(TestApp::new(&db, "document", &[]));
    let ada = app.user("ada@example.com", UserType::Regular).await;
    let id = Uuid::new_v4();
    let saves = (0..5).map(|i| {
        let app = app.clone();
        let request = ApiRequest::new("POST", "/api/document")
            .query("id", &id.to_string())
            .bearer(&ada.token)
            .json(&json!({"title": "Essay", "content": format!("draft {i}"), "kind": "text"}))
            .build(Shape::HttpV2);
        async move { app.call(::document::handle, request).await.status }
    });
    let statuses = futures_util::future::join_all(saves).await;
    assert_eq!(statuses, vec![200; 5]);
    let stamps: Vec<chrono::NaiveDateTime> =
        sqlx::query_scalar(r#"SELECT "createdAt" FROM "Document" WHERE id = $1 ORDER BY 1"#)
            .bind(id)
            .fetch_all(app.observer())
            .await
            .expect("versions");
    assert_eq!(stamps.len(), 5);
    assert!(stamps.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(app.checked_out_after_settling().await, 0);
}
