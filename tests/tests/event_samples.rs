//! Every function, fed the sample events that the AWS libraries themselves
//! test with: API Gateway REST (payload 1.0) with a Lambda authorizer, HTTP
//! API (2.0) without an authorizer and with JWT, Lambda and IAM authorizers,
//! and a Function URL request. The samples are read from the
//! `aws_lambda_events` and `lambda_http` crates this workspace builds with
//! (found through `cargo metadata`), and only pointed at our routes: path,
//! method, query, the caller's token or claims, and a body.

use std::path::PathBuf;
use std::sync::OnceLock;

use integration_tests::{TestApp, TestDb, TestResponse, TestUser};
use lambda_http::Request;
use serde_json::{Map, Value, json};
use shared::db::models::{self, Suggestion};
use shared::db::queries::{chat, document, message, suggestion};
use shared::http::identity::UserType;
use uuid::Uuid;

/// The samples, as (crate, file, payload version).
const SAMPLES: [(&str, &str, Version); 7] = [
    (
        "aws_lambda_events",
        "src/fixtures/example-apigw-request.json",
        Version::V1,
    ),
    (
        "lambda_http",
        "tests/data/apigw_proxy_request.json",
        Version::V1,
    ),
    (
        "aws_lambda_events",
        "src/fixtures/example-apigw-v2-request-no-authorizer.json",
        Version::V2,
    ),
    (
        "aws_lambda_events",
        "src/fixtures/example-apigw-v2-request-jwt-authorizer.json",
        Version::V2,
    ),
    (
        "aws_lambda_events",
        "src/fixtures/example-apigw-v2-request-lambda-authorizer.json",
        Version::V2,
    ),
    (
        "aws_lambda_events",
        "src/fixtures/example-apigw-v2-request-iam.json",
        Version::V2,
    ),
    (
        "lambda_http",
        "tests/data/lambda_function_url_request.json",
        Version::V2,
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// The platform the tests run on, as `cargo -vV` names it.
fn host_triple() -> String {
    let output = devdb::cargo().arg("-vV").output().expect("cargo -vV runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .expect("cargo -vV names the host")
        .to_owned()
}

/// Where each dependency's sources are, from `cargo metadata`.
fn crate_dir(name: &str) -> PathBuf {
    static METADATA: OnceLock<Value> = OnceLock::new();
    let metadata = METADATA.get_or_init(|| {
        // Only this platform's packages: the others' sources may not have
        // been downloaded, and the test stays offline.
        let output = devdb::cargo()
            .args(["metadata", "--format-version", "1", "--offline"])
            .args(["--filter-platform", &host_triple()])
            .current_dir(integration_tests::workspace_root())
            .output()
            .expect("cargo metadata runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("cargo metadata is JSON")
    });
    let manifest = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["manifest_path"].as_str())
        .unwrap_or_else(|| panic!("{name} is not a dependency"));
    PathBuf::from(manifest)
        .parent()
        .expect("a crate directory")
        .to_path_buf()
}

fn sample(krate: &str, file: &str) -> Value {
    let path = crate_dir(krate).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("a JSON sample")
}

/// What to send, on top of a sample.
struct Call<'a> {
    method: &'a str,
    path: &'a str,
    query: Vec<(&'a str, String)>,
    token: Option<&'a str>,
    body: Option<Value>,
}

/// The sample `event`, pointed at `call`.
fn aim(mut event: Value, version: Version, call: &Call<'_>) -> Request {
    let query: Map<String, Value> = call
        .query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
        .collect();
    let headers = event["headers"].as_object_mut().expect("headers");
    headers.retain(|k, _| {
        !k.eq_ignore_ascii_case("authorization") && !k.eq_ignore_ascii_case("content-type")
    });
    if let Some(token) = call.token {
        headers.insert("authorization".into(), json!(format!("Bearer {token}")));
    }
    if call.body.is_some() {
        headers.insert("content-type".into(), json!("application/json"));
    }
    let headers = headers.clone();
    event["body"] = call
        .body
        .as_ref()
        .map_or(Value::Null, |b| json!(b.to_string()));
    event["isBase64Encoded"] = json!(false);
    match version {
        Version::V1 => {
            event["path"] = json!(call.path);
            event["resource"] = json!(call.path);
            event["httpMethod"] = json!(call.method);
            event["requestContext"]["httpMethod"] = json!(call.method);
            event["queryStringParameters"] = if query.is_empty() {
                Value::Null
            } else {
                Value::Object(query.clone())
            };
            event["multiValueQueryStringParameters"] = if query.is_empty() {
                Value::Null
            } else {
                Value::Object(query.iter().map(|(k, v)| (k.clone(), json!([v]))).collect())
            };
            event["multiValueHeaders"] = Value::Object(
                headers
                    .iter()
                    .map(|(k, v)| (k.clone(), json!([v])))
                    .collect(),
            );
        }
        Version::V2 => {
            event["rawPath"] = json!(call.path);
            event["requestContext"]["http"]["method"] = json!(call.method);
            event["requestContext"]["http"]["path"] = json!(call.path);
            event["rawQueryString"] = json!(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(call.query.iter().map(|(k, v)| (*k, v.as_str())))
                    .finish()
            );
            event["queryStringParameters"] = if query.is_empty() {
                Value::Null
            } else {
                Value::Object(query)
            };
            event["cookies"] = Value::Null;
        }
    }
    event["headers"] = Value::Object(headers);
    lambda_http::request::from_str(&event.to_string()).expect("lambda_http reads the aimed sample")
}

/// Ada's world: a chat with a voted message, a document with a suggestion.
struct World {
    db: TestDb,
    ada: TestUser,
    chat_id: Uuid,
    document_id: Uuid,
}

async fn world() -> World {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "fixtures", &[]);
    let ada = app.user("ada@example.com", UserType::Regular).await;
    let pool = app.observer();
    let chat_id = Uuid::new_v4();
    chat::save(pool, chat_id, ada.id, "Samples", "private")
        .await
        .expect("chat");
    let answer = message::NewMessage {
        id: Uuid::new_v4(),
        chat_id,
        role: "assistant".into(),
        parts: json!([{"type": "text", "text": "hi"}]),
        attachments: json!([]),
        created_at: models::now(),
    };
    message::save_all(pool, std::slice::from_ref(&answer))
        .await
        .expect("message");
    shared::db::queries::vote::vote(
        pool,
        chat_id,
        answer.id,
        shared::db::queries::vote::VoteType::Up,
    )
    .await
    .expect("vote");
    let document_id = Uuid::new_v4();
    let version = document::save(pool, document_id, "Doc", "text", "Body", ada.id)
        .await
        .expect("document")
        .expect("saved");
    let s = Suggestion {
        id: Uuid::new_v4(),
        document_id,
        document_created_at: version.created_at,
        original_text: "Body".into(),
        suggested_text: "A body".into(),
        description: None,
        is_resolved: false,
        user_id: ada.id,
        created_at: models::now(),
    };
    suggestion::save_all(pool, &[s]).await.expect("suggestion");
    World {
        db,
        ada,
        chat_id,
        document_id,
    }
}

async fn call_each_function(w: &World, event: &Value, version: Version, label: &str) {
    let token = Some(w.ada.token.as_str());
    let chat_id = w.chat_id.to_string();
    let document_id = w.document_id.to_string();
    let calls: Vec<(&'static str, Call<'_>)> = vec![
        (
            "history",
            Call {
                method: "GET",
                path: "/api/history",
                query: vec![],
                token,
                body: None,
            },
        ),
        (
            "vote",
            Call {
                method: "GET",
                path: "/api/vote",
                query: vec![("chatId", chat_id.clone())],
                token,
                body: None,
            },
        ),
        (
            "document",
            Call {
                method: "GET",
                path: "/api/document",
                query: vec![("id", document_id.clone())],
                token,
                body: None,
            },
        ),
        (
            "suggestions",
            Call {
                method: "GET",
                path: "/api/suggestions",
                query: vec![("documentId", document_id.clone())],
                token,
                body: None,
            },
        ),
        (
            "auth",
            Call {
                method: "GET",
                path: "/api/auth/session",
                query: vec![],
                token,
                body: None,
            },
        ),
        (
            "auth",
            Call {
                method: "POST",
                path: "/api/auth/login",
                query: vec![],
                token: None,
                body: Some(json!({"email": "nobody@example.com", "password": "wrong-password"})),
            },
        ),
    ];
    for (function, call) in calls {
        let app = TestApp::new(&w.db, function, &[]);
        let request = aim(event.clone(), version, &call);
        let response: TestResponse = match function {
            "history" => app.call(history::handle, request).await,
            "vote" => app.call(vote::handle, request).await,
            "document" => app.call(::document::handle, request).await,
            "suggestions" => app.call(suggestions::handle, request).await,
            _ => app.call(auth::handle, request).await,
        };
        let what = format!("{label}: {} {}", call.method, call.path);
        match (function, call.method) {
            ("history", _) => {
                assert_eq!(response.status, 200, "{what}: {}", response.text);
                assert_eq!(response.json["chats"][0]["id"], json!(chat_id), "{what}");
            }
            ("vote", _) => {
                assert_eq!(response.status, 200, "{what}: {}", response.text);
                assert_eq!(response.json[0]["isUpvoted"], true, "{what}");
            }
            ("document", _) => {
                assert_eq!(response.status, 200, "{what}: {}", response.text);
                assert_eq!(response.json[0]["content"], "Body", "{what}");
            }
            ("suggestions", _) => {
                assert_eq!(response.status, 200, "{what}: {}", response.text);
                assert_eq!(response.json[0]["suggestedText"], "A body", "{what}");
            }
            ("auth", "GET") => {
                assert_eq!(response.status, 200, "{what}: {}", response.text);
                assert_eq!(response.json["user"]["id"], json!(w.ada.id), "{what}");
            }
            _ => {
                // The body reached the handler intact: a well-formed login
                // that simply fails.
                assert_eq!(response.status, 401, "{what}: {}", response.text);
                assert_eq!(response.json["code"], "unauthorized:auth", "{what}");
            }
        }
    }
}

#[tokio::test]
async fn every_function_serves_the_aws_sample_events_of_every_payload_shape() {
    let w = world().await;
    for (krate, file, version) in SAMPLES {
        let event = sample(krate, file);
        call_each_function(&w, &event, version, file).await;
    }
}

#[tokio::test]
async fn authorizer_claims_in_the_sample_events_identify_the_caller_without_a_token() {
    let w = world().await;
    let sub = w.ada.id.to_string();
    // A Cognito user-pool authorizer on a REST API nests its claims.
    let mut rest = sample(
        "aws_lambda_events",
        "src/fixtures/example-apigw-request.json",
    );
    rest["requestContext"]["authorizer"] =
        json!({"claims": {"sub": sub, "email": "ada@example.com"}});
    // An HTTP API JWT authorizer.
    let mut jwt = sample(
        "aws_lambda_events",
        "src/fixtures/example-apigw-v2-request-jwt-authorizer.json",
    );
    jwt["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = json!(sub);
    // An HTTP API Lambda authorizer's context.
    let mut lambda = sample(
        "aws_lambda_events",
        "src/fixtures/example-apigw-v2-request-lambda-authorizer.json",
    );
    lambda["requestContext"]["authorizer"]["lambda"]["sub"] = json!(sub);

    for (event, version, label) in [
        (rest, Version::V1, "cognito"),
        (jwt, Version::V2, "jwt"),
        (lambda, Version::V2, "lambda"),
    ] {
        let app = TestApp::new(&w.db, "history", &[]);
        let call = Call {
            method: "GET",
            path: "/api/history",
            query: vec![],
            token: None,
            body: None,
        };
        let response = app.call(history::handle, aim(event, version, &call)).await;
        assert_eq!(response.status, 200, "{label}: {}", response.text);
        assert_eq!(response.json["chats"][0]["id"], json!(w.chat_id), "{label}");
    }
}
