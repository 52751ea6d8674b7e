//! Hostile callers, beyond what `ownership.rs` (another user's ids on
//! every route) and `auth.rs` (forged, expired, `alg: none` and deleted
//! users' tokens; login timing) already prove: SQL injection in every
//! query parameter and string field, a public chat that others may read
//! but not change, and secrets that never reach a response or a log line
//! of the real binaries.

use std::time::Duration;

use integration_tests::captured::Captured;
use integration_tests::fault_kit::{chat_body, chat_post, chat_to_end, fingerprint, offline_chat};
use integration_tests::figures::Scenario;
use integration_tests::lambda_api::{FakeLambda, Outcome};
use integration_tests::{ApiRequest, Shape, TEST_AUTH_SECRET, TestApp, TestDb, TestResponse};
use serde_json::{Value, json};
use shared::http::identity::UserType;
use uuid::Uuid;

const GROUP: &str = "Security";

/// Strings that break out of a quoted SQL literal or identifier, comment
/// out the rest, stack a statement or bend a `LIKE`.
const INJECTIONS: [&str; 6] = [
    r#"' OR '1'='1"#,
    r#"'; DROP TABLE "User"; --"#,
    r#"") OR 1=1; DELETE FROM "Chat"; --"#,
    "1; UPDATE \"User\" SET password = NULL",
    "%' OR id IS NOT NULL --",
    "\\'; SELECT pg_sleep(5); --",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_injection_in_every_query_parameter_and_id_is_refused_and_changes_nothing() {
    let mut record = Scenario::new(GROUP, "sql_injection_parameters", "SQL injection in query parameters and ids")
        .did(&format!("{} injection strings in every query parameter and path id of every route (history, vote, document, suggestions, chat delete and resume), as the owner of the data", INJECTIONS.len()))
        .checked("every answer a 4xx, none a 5xx; every table's rows byte for byte unchanged");
    let db = TestDb::migrated().await;
    let history = TestApp::new(&db, "history", &[]);
    let vote = TestApp::new(&db, "vote", &[]);
    let document = TestApp::new(&db, "document", &[]);
    let suggestions = TestApp::new(&db, "suggestions", &[]);
    let chat_app = TestApp::new(&db, "chat", &[]);
    let chat = offline_chat(0, &[]);
    let ada = history.user("ada@example.com", UserType::Regular).await;
    let chat_id = Uuid::new_v4();
    chat_to_end(
        &chat_app,
        &chat,
        &ada.token,
        &chat_body(chat_id, Uuid::new_v4(), "Hi", "private"),
    )
    .await;
    let before = fingerprint(db.observer()).await;

    let mut attempts = 0;
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for evil in INJECTIONS {
        let requests: Vec<(&TestApp, &str, ApiRequest)> = vec![
            (
                &history,
                "history",
                ApiRequest::get("/api/history").query("limit", evil),
            ),
            (
                &history,
                "history",
                ApiRequest::get("/api/history").query("starting_after", evil),
            ),
            (
                &history,
                "history",
                ApiRequest::get("/api/history").query("ending_before", evil),
            ),
            (
                &vote,
                "vote",
                ApiRequest::get("/api/vote").query("chatId", evil),
            ),
            (
                &document,
                "document",
                ApiRequest::get("/api/document").query("id", evil),
            ),
            (
                &document,
                "document",
                ApiRequest::delete("/api/document")
                    .query("id", evil)
                    .query("timestamp", evil),
            ),
            (
                &document,
                "document",
                ApiRequest::delete("/api/document")
                    .query("id", &Uuid::new_v4().to_string())
                    .query("timestamp", evil),
            ),
            (
                &suggestions,
                "suggestions",
                ApiRequest::get("/api/suggestions").query("documentId", evil),
            ),
            (
                &chat_app,
                "chat",
                ApiRequest::delete("/api/chat").query("id", evil),
            ),
            (
                &chat_app,
                "chat",
                ApiRequest::get(&format!("/api/chat/{}/stream", urlencode(evil))),
            ),
        ];
        for (app, function, request) in requests {
            let request = request.bearer(&ada.token).build(Shape::HttpV2);
            let answer = call(app, function, &chat, request).await;
            attempts += 1;
            *statuses.entry(answer.status).or_default() += 1;
            assert!(
                (400..500).contains(&answer.status),
                "{function} {evil:?}: {} {}",
                answer.status,
                answer.text
            );
        }
    }
    assert_eq!(fingerprint(db.observer()).await, before, "a table changed");
    record.figure("requests", attempts);
    record.figure(
        "answers",
        statuses
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    record.passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_injection_in_every_string_field_is_stored_as_text_or_refused_and_touches_nothing_else()
{
    let mut record = Scenario::new(GROUP, "sql_injection_bodies", "SQL injection in body fields")
        .did(&format!("{} injection strings in every string field of every JSON body: register and login (email, password), document (title, content, kind), vote (chatId, messageId, type), chat (ids, text, model, visibility)", INJECTIONS.len()))
        .checked("no 5xx; what is saved is the string itself, verbatim; another user's rows and every other table unchanged");
    let db = TestDb::migrated().await;
    let auth = TestApp::new(&db, "auth", &[]);
    let vote = TestApp::new(&db, "vote", &[]);
    let document = TestApp::new(&db, "document", &[]);
    let chat_app = TestApp::new(&db, "chat", &[]);
    let chat = offline_chat(0, &[]);
    let ada = auth.user("ada@example.com", UserType::Regular).await;
    let babbage = auth.user("babbage@example.com", UserType::Regular).await;
    let adas_chat = Uuid::new_v4();
    chat_to_end(
        &chat_app,
        &chat,
        &ada.token,
        &chat_body(adas_chat, Uuid::new_v4(), "Hi", "private"),
    )
    .await;
    let adas_rows = || async {
        sqlx::query_scalar::<_, Option<String>>(
            r#"SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM (
                 SELECT u::text FROM "User" u WHERE email = 'ada@example.com'
                 UNION ALL SELECT c::text FROM "Chat" c WHERE "userId" = $1
                 UNION ALL SELECT m::text FROM "Message_v2" m WHERE "chatId" = $2) t"#,
        )
        .bind(ada.id)
        .bind(adas_chat)
        .fetch_one(db.observer())
        .await
        .expect("Ada's rows")
    };
    let before = adas_rows().await;

    let mut attempts = 0;
    let mut stored = 0;
    for evil in INJECTIONS {
        let credentials = [
            json!({"email": evil, "password": "secret-password"}),
            json!({"email": "carol@example.com", "password": evil}),
        ];
        for body in &credentials {
            for route in ["/api/auth/register", "/api/auth/login"] {
                let request = ApiRequest::new("POST", route)
                    .json(body)
                    .build(Shape::HttpV2);
                let answer = auth.call(auth::handle, request).await;
                attempts += 1;
                assert!(answer.status < 500, "{route} {body}: {}", answer.text);
            }
        }
        sqlx::query(r#"DELETE FROM "User" WHERE email = 'carol@example.com'"#)
            .execute(db.observer())
            .await
            .expect("clean up");

        let id = Uuid::new_v4();
        let save = ApiRequest::new("POST", "/api/document")
            .query("id", &id.to_string())
            .bearer(&babbage.token)
            .json(&json!({"title": evil, "content": evil, "kind": "text"}))
            .build(Shape::HttpV2);
        let answer = document.call(document::handle, save).await;
        attempts += 1;
        assert_eq!(answer.status, 200, "{}", answer.text);
        let (title, content): (String, Option<String>) =
            sqlx::query_as(r#"SELECT title, content FROM "Document" WHERE id = $1"#)
                .bind(id)
                .fetch_one(db.observer())
                .await
                .expect("the saved document");
        assert_eq!((title.as_str(), content.as_deref()), (evil, Some(evil)));
        stored += 1;
        let bad_kind = ApiRequest::new("POST", "/api/document")
            .query("id", &id.to_string())
            .bearer(&babbage.token)
            .json(&json!({"title": "t", "content": "c", "kind": evil}))
            .build(Shape::HttpV2);
        let answer = document.call(document::handle, bad_kind).await;
        attempts += 1;
        assert_eq!(answer.status, 400, "{}", answer.text);

        for body in [
            json!({"chatId": evil, "messageId": Uuid::new_v4(), "type": "up"}),
            json!({"chatId": adas_chat, "messageId": evil, "type": "up"}),
            json!({"chatId": adas_chat, "messageId": Uuid::new_v4(), "type": evil}),
        ] {
            let request = ApiRequest::new("PATCH", "/api/vote")
                .bearer(&babbage.token)
                .json(&body)
                .build(Shape::HttpV2);
            let answer = vote.call(vote::handle, request).await;
            attempts += 1;
            assert!(
                (400..500).contains(&answer.status),
                "{body}: {}",
                answer.text
            );
        }

        let chat_id = Uuid::new_v4();
        let mut bodies = vec![chat_body(chat_id, Uuid::new_v4(), evil, "private")];
        for (field, pointer) in [
            ("id", "/id"),
            ("message id", "/message/id"),
            ("model", "/selectedChatModel"),
            ("visibility", "/selectedVisibilityType"),
        ] {
            let mut body = chat_body(Uuid::new_v4(), Uuid::new_v4(), "Hi", "private");
            *body
                .pointer_mut(pointer)
                .unwrap_or_else(|| panic!("{field}")) = json!(evil);
            bodies.push(body);
        }
        for body in bodies {
            let reader = chat_to_end(&chat_app, &chat, &babbage.token, &body).await;
            attempts += 1;
            assert!(reader.status < 500, "{body}: {}", reader.text);
        }
        let text: Value = sqlx::query_scalar(
            r#"SELECT parts FROM "Message_v2" WHERE "chatId" = $1 AND role = 'user'"#,
        )
        .bind(chat_id)
        .fetch_one(db.observer())
        .await
        .expect("the saved message");
        assert_eq!(text[0]["text"], evil);
        stored += 1;
    }
    assert_eq!(adas_rows().await, before, "Ada's rows changed");
    let users: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "User" WHERE password IS NULL"#)
        .fetch_one(db.observer())
        .await
        .expect("users");
    assert_eq!(users, 0, "no password was wiped");
    record.figure("requests", attempts);
    record.figure("strings saved verbatim", stored);
    record.passed();
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn call(
    app: &TestApp,
    function: &str,
    chat: &chat::Chat,
    request: lambda_http::Request,
) -> TestResponse {
    match function {
        "auth" => app.call(auth::handle, request).await,
        "history" => app.call(history::handle, request).await,
        "vote" => app.call(vote::handle, request).await,
        "document" => app.call(document::handle, request).await,
        "suggestions" => app.call(suggestions::handle, request).await,
        "chat" => {
            let chat = chat.clone();
            integration_tests::read_body(app.call_raw(move |r, s| chat.handle(r, s), request).await)
                .await
        }
        other => panic!("no function {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_that_are_not_utf8_are_400s_in_the_error_format_and_change_nothing() {
    let mut record = Scenario::new(GROUP, "binary_bodies", "Bodies that are not UTF-8")
        .did("every route with a JSON body (login, register, chat, document, vote) sent bytes that are not UTF-8 as `application/json`, base64-encoded in the event as API Gateway sends them; and a valid JSON body sent base64-encoded")
        .checked("each invalid body is a 400 `bad_request:api` in the error format and no table changes; the base64-encoded valid body is accepted");
    let db = TestDb::migrated().await;
    let apps: Vec<(&str, TestApp)> = ["auth", "chat", "document", "vote"]
        .into_iter()
        .map(|name| (name, TestApp::new(&db, name, &[])))
        .collect();
    let chat = offline_chat(0, &[]);
    let ada = apps[0].1.user("ada@example.com", UserType::Regular).await;
    let routes = [
        ("auth", "POST", "/api/auth/login"),
        ("auth", "POST", "/api/auth/register"),
        ("chat", "POST", "/api/chat"),
        ("document", "POST", "/api/document"),
        ("vote", "PATCH", "/api/vote"),
    ];
    let bodies: [&[u8]; 3] = [
        b"\xff\xfe\x00{",
        b"{\"email\": \"\xc3\x28@example.com\", \"title\": \"\xe2\x82\"}",
        &[0x80; 64],
    ];
    let before = fingerprint(db.observer()).await;
    let mut refused = 0;
    for (function, method, path) in routes {
        let app = &apps
            .iter()
            .find(|(name, _)| *name == function)
            .expect("app")
            .1;
        for bytes in bodies {
            let request = ApiRequest::new(method, path)
                .query("id", &Uuid::new_v4().to_string())
                .bearer(&ada.token)
                .header("content-type", "application/json")
                .binary_body(bytes)
                .build(Shape::HttpV2);
            let answer = call(app, function, &chat, request).await;
            assert_eq!(answer.status, 400, "{method} {path}: {}", answer.text);
            assert_eq!(answer.json["code"], "bad_request:api", "{}", answer.text);
            assert!(answer.json["message"].is_string(), "{}", answer.text);
            refused += 1;
        }
    }
    assert_eq!(fingerprint(db.observer()).await, before, "a table changed");

    // API Gateway also base64-encodes text bodies of some content types:
    // a valid body arriving so is read like any other.
    let id = Uuid::new_v4();
    let document = &apps[2].1;
    let save = ApiRequest::new("POST", "/api/document")
        .query("id", &id.to_string())
        .bearer(&ada.token)
        .header("content-type", "application/json")
        .binary_body(r#"{"title": "Notes", "content": "café", "kind": "text"}"#.as_bytes())
        .build(Shape::HttpV2);
    let answer = document.call(document::handle, save).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let content: Option<String> =
        sqlx::query_scalar(r#"SELECT content FROM "Document" WHERE id = $1"#)
            .bind(id)
            .fetch_one(db.observer())
            .await
            .expect("the saved document");
    assert_eq!(content.as_deref(), Some("café"));
    record.figure("invalid bodies refused with 400", refused);
    record.passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_chat_is_readable_by_others_but_never_changed_and_a_private_one_is_invisible() {
    let mut record = Scenario::new(GROUP, "visibility", "Private and public chats")
        .did("Ada has a private and a public chat with a reply; Babbage resumes, votes on, posts into, deletes, and lists them")
        .checked("private: every request refused (403/404) and absent from his history; public: resuming allowed; reading its votes (as upstream), voting, posting into it and deleting it refused (403); every table unchanged");
    let db = TestDb::migrated().await;
    let chat_app = TestApp::new(&db, "chat", &[]);
    let vote = TestApp::new(&db, "vote", &[]);
    let history = TestApp::new(&db, "history", &[]);
    let chat = offline_chat(0, &[]);
    let ada = chat_app.user("ada@example.com", UserType::Regular).await;
    let babbage = chat_app
        .user("babbage@example.com", UserType::Regular)
        .await;
    let mut ids = Vec::new();
    for visibility in ["private", "public"] {
        let chat_id = Uuid::new_v4();
        let body = chat_body(chat_id, Uuid::new_v4(), "Hi", visibility);
        chat_to_end(&chat_app, &chat, &ada.token, &body).await;
        let reply: Uuid = sqlx::query_scalar(
            r#"SELECT id FROM "Message_v2" WHERE "chatId" = $1 AND role = 'assistant'"#,
        )
        .bind(chat_id)
        .fetch_one(db.observer())
        .await
        .expect("the reply");
        ids.push((visibility, chat_id, reply));
    }
    let before = fingerprint(db.observer()).await;
    let mut checks = 0;
    for (visibility, chat_id, reply) in &ids {
        let public = *visibility == "public";
        let id = chat_id.to_string();
        let cases: Vec<(&TestApp, &str, ApiRequest, bool)> = vec![
            (
                &chat_app,
                "chat",
                ApiRequest::get(&format!("/api/chat/{id}/stream")),
                public,
            ),
            (
                &vote,
                "vote",
                ApiRequest::get("/api/vote").query("chatId", &id),
                false,
            ),
            (
                &vote,
                "vote",
                ApiRequest::new("PATCH", "/api/vote")
                    .json(&json!({"chatId": chat_id, "messageId": reply, "type": "down"})),
                false,
            ),
            (
                &chat_app,
                "chat",
                chat_post(
                    &babbage.token,
                    &chat_body(*chat_id, Uuid::new_v4(), "Mine now", "public"),
                ),
                false,
            ),
            (
                &chat_app,
                "chat",
                ApiRequest::delete("/api/chat").query("id", &id),
                false,
            ),
        ];
        for (app, function, request, allowed) in cases {
            let answer = call(
                app,
                function,
                &chat,
                request.bearer(&babbage.token).build(Shape::HttpV2),
            )
            .await;
            checks += 1;
            if allowed {
                assert_eq!(
                    answer.status, 200,
                    "{visibility} {function}: {}",
                    answer.text
                );
            } else {
                assert!(
                    answer.status == 403 || answer.status == 404,
                    "{visibility} {function}: {} {}",
                    answer.status,
                    answer.text
                );
            }
        }
    }
    let listed = history
        .call(
            history::handle,
            ApiRequest::get("/api/history")
                .bearer(&babbage.token)
                .build(Shape::HttpV2),
        )
        .await;
    assert_eq!(listed.json["chats"], json!([]), "{}", listed.text);
    assert_eq!(fingerprint(db.observer()).await, before);
    record.figure("requests", checks + 1);
    record.passed();
}

/// Every invocation's answer, as text.
fn answer_text(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Response(body) => String::from_utf8_lossy(body).into_owned(),
        Outcome::Error(error) => error.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_or_log_line_of_the_real_binaries_holds_a_password_a_hash_a_token_or_a_secret() {
    let mut record = Scenario::new(GROUP, "secrets", "Secrets stay secret")
        .did("the real `auth` and `history` binaries, logging at debug level, with a password in the database URL: register, log in right and wrong, read the session, use a forged token; then the database made unreachable and both invoked again")
        .checked("no answer and no log line holds the user's password, its bcrypt hash, `AUTH_SECRET`, the database password, or an issued token");
    const DB_PASSWORD: &str = "Db-pa55word-Kq8Zr4Lm";
    const USER_PASSWORD: &str = "correct-horse-battery-staple";
    let db = TestDb::migrated().await;
    let mut url = url::Url::parse(&db.url()).expect("the test URL");
    // The test server trusts local connections: the password is carried
    // along, never checked, so it shows wherever the URL leaks.
    url.set_password(Some(DB_PASSWORD)).expect("a password");
    let lambda = FakeLambda::start().await;
    let mut texts = Vec::new();
    let mut logs = String::new();
    let mut tokens: Vec<String> = Vec::new();
    let mut invocations = 0;
    for reachable in [true, false] {
        let mut url = url.clone();
        if !reachable {
            // A port where nothing listens.
            let closed = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            url.set_port(Some(closed)).expect("a port");
        }
        for function in ["auth", "history"] {
            let mut env = lambda.function_env(function);
            env.extend(
                [
                    ("POSTGRES_URL", url.to_string()),
                    ("AUTH_SECRET", TEST_AUTH_SECRET.to_owned()),
                    ("RUST_LOG", "debug".to_owned()),
                    ("DB_CONNECT_TIMEOUT_SECS", "2".to_owned()),
                ]
                .map(|(k, v)| (k.to_owned(), v)),
            );
            let mut process = Captured::spawn(function, &env);
            let token = tokens.first().cloned().unwrap_or_default();
            let events: Vec<Value> = match function {
                "auth" => vec![
                    ApiRequest::new("POST", "/api/auth/register")
                        .json(&json!({"email": "ada@example.com", "password": USER_PASSWORD}))
                        .event(Shape::RestV1),
                    ApiRequest::new("POST", "/api/auth/login")
                        .json(&json!({"email": "ada@example.com", "password": USER_PASSWORD}))
                        .event(Shape::RestV1),
                    ApiRequest::new("POST", "/api/auth/login")
                        .json(&json!({"email": "ada@example.com", "password": "wrong-password"}))
                        .event(Shape::RestV1),
                    ApiRequest::get("/api/auth/session")
                        .bearer(&token)
                        .event(Shape::RestV1),
                ],
                _ => vec![
                    ApiRequest::get("/api/history")
                        .bearer(&token)
                        .event(Shape::RestV1),
                    ApiRequest::get("/api/history")
                        .bearer(&integration_tests::sign_token(
                            &json!({"sub": Uuid::new_v4(), "exp": 4_000_000_000_u64}),
                            "not-the-secret-but-32-characters-long",
                        ))
                        .event(Shape::RestV1),
                ],
            };
            for event in events {
                let outcome = lambda.invoke(event, Duration::from_secs(20)).await;
                invocations += 1;
                let text = answer_text(&outcome);
                if let Outcome::Response(_) = outcome {
                    let body = &outcome.json()["body"];
                    if let Some(token) = body
                        .as_str()
                        .and_then(|b| serde_json::from_str::<Value>(b).ok())
                        .and_then(|b| b["token"].as_str().map(str::to_owned))
                    {
                        tokens.push(token);
                    }
                }
                texts.push(text);
            }
            process.signal(nix::sys::signal::Signal::SIGTERM);
            process.wait(Duration::from_secs(10)).await;
            logs.push_str(&process.logs());
        }
        if reachable {
            assert!(
                !tokens.is_empty(),
                "register and login answered tokens: {texts:?}"
            );
        }
    }
    let hash: String =
        sqlx::query_scalar(r#"SELECT password FROM "User" WHERE email = 'ada@example.com'"#)
            .fetch_one(db.observer())
            .await
            .expect("Ada's hash");
    let mut secrets = vec![
        ("the user's password", USER_PASSWORD.to_owned()),
        ("the password hash", hash),
        ("AUTH_SECRET", TEST_AUTH_SECRET.to_owned()),
        ("the database password", DB_PASSWORD.to_owned()),
    ];
    for token in &tokens {
        secrets.push(("an issued token (in logs)", token.clone()));
    }
    for (what, secret) in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "{what} is in the logs:\n{logs}"
        );
        if !what.starts_with("an issued token") {
            for text in &texts {
                assert!(
                    !text.contains(secret.as_str()),
                    "{what} is in an answer: {text}"
                );
            }
        }
    }
    assert!(logs.lines().count() > 10, "the binaries logged: {logs}");
    assert!(
        texts.iter().any(|t| t.contains("503")),
        "the unreachable database was reported: {texts:?}"
    );
    record.figure("invocations", invocations);
    record.figure("log lines scanned", logs.lines().count());
    record.passed();
}
