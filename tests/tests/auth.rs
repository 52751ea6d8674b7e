//! `/api/auth/guest`, `/register`, `/login` and `/session`, as the upstream
//! chatbot signs users in, for every event shape Lambda delivers: what the
//! caller sees, what the database holds afterwards, and that the tokens
//! issued here open the other functions. Every call ends with no
//! connection checked out, and no response ever carries a password, a
//! password hash or the token secret.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::future::join_all;
use integration_tests::expect::{bad_request, error_body, error_with_cause};
use integration_tests::{
    ApiRequest, Shape, TEST_AUTH_SECRET, TestApp, TestDb, TestResponse, TestUser, sign_token,
};
use lambda_http::Request;
use serde_json::{Value, json};
use shared::config::AuthConfig;
use shared::http::identity::{IdentitySource, UserType, issue_token, verify_token};
use uuid::Uuid;

/// The password most tests register and sign in with.
const PASSWORD: &str = "correct-horse-battery";

/// A password that is not it.
const WRONG_PASSWORD: &str = "incorrect-horse-battery";

/// Hashes made once by other bcrypt implementations, for the passwords
/// below, so that users created by the upstream app (or imported from
/// elsewhere) are known to sign in here:
///
/// - `bcrypt-ts` 5.0.3 (upstream's `^5.0.2`; it writes `$2a$`) and 8.0.1
///   (it writes `$2b$`), installed with npm outside the repository:
///   `node -e 'import("bcrypt-ts").then(b => console.log(b.hashSync(pw, b.genSaltSync(10))))'`;
/// - Python's `bcrypt` 5.0.0:
///   `bcrypt.hashpw(pw.encode(), bcrypt.gensalt(10, prefix=b"2a"))` (and `b"2b"`);
/// - Apache's `htpasswd` 2.4.71 (`htpasswd -nbBC 10 user pw`), which
///   writes PHP's `$2y$`.
///
/// `(who made it, password, hash)`.
const FOREIGN_HASHES: [(&str, &str, &str); 11] = [
    (
        "bcrypt-ts 5.0.3",
        ASCII_PASSWORD,
        "$2a$10$QCBMM44tNQcuuLei3mdwwunhfX3PGUcCSXd3hdN92HOflV8GT6WuS",
    ),
    (
        "bcrypt-ts 5.0.3",
        UNICODE_PASSWORD,
        "$2a$10$Jnx/M12Ez1ss2mHlQ3bWP.pAxNDX/SoXGkGN1Sw3Ctsz61gzL1ic6",
    ),
    (
        "bcrypt-ts 8.0.1",
        ASCII_PASSWORD,
        "$2b$10$jxTfZ8vqqe57MJ2eduDm..2HQK98dkFQIYls8.CsPDKXUw5BV7s82",
    ),
    (
        "bcrypt-ts 8.0.1",
        UNICODE_PASSWORD,
        "$2b$10$.L5iKgHb5PO5GB2uuFAQcuAncEnhuS1asq6Pg45H27tfpy6Cq6dU2",
    ),
    (
        "bcrypt-ts 8.0.1, over 72 bytes (truncated by bcrypt-ts)",
        LONG_PASSWORD,
        "$2b$10$hpqKNP2VGSlh3vWMgA5HtOX0ZnI8rfyj5w7yD49.zQfOz2NmjUkxG",
    ),
    (
        "Python bcrypt 5.0.0, 2a",
        ASCII_PASSWORD,
        "$2a$10$Mcgo8CK4eRDlC7OURsbnnOvKybL0JuE1MhLJiKPDvxrjnKYDZ294S",
    ),
    (
        "Python bcrypt 5.0.0, 2b",
        ASCII_PASSWORD,
        "$2b$10$Wnv00xsAUyt9AqCWvtpUSupbe3DtHhkuWjcyehzwxY7MPpDjtrG.S",
    ),
    (
        "Python bcrypt 5.0.0, 2a",
        UNICODE_PASSWORD,
        "$2a$10$OJsZvqdaMdub8zE44c6Q6OS5UcIupLdY4mbBmlwZOuLzoY4A5Mscq",
    ),
    (
        "Python bcrypt 5.0.0, 2b",
        UNICODE_PASSWORD,
        "$2b$10$sOWPyJMslGJxDuOYrzcL9OO0ddqpTC/k6EJlPw9v0GI9T6ykS6Pu2",
    ),
    (
        "htpasswd 2.4.71",
        ASCII_PASSWORD,
        "$2y$10$QJueqIybBst4K9Crz1YGhOk1nlJLy2p5Kb0JOCd532gt2ZlZ7LK0y",
    ),
    (
        "htpasswd 2.4.71",
        UNICODE_PASSWORD,
        "$2y$10$3YKijlBpfSpsmAS.qw8Y7.8n7RZ28S407w3tl1p4Db5VZ3YJ4v7h2",
    ),
];
const ASCII_PASSWORD: &str = "upstream-pa55word";
const UNICODE_PASSWORD: &str = "pässwörd-ünïcode-🔑";
/// 80 bytes.
const LONG_PASSWORD: &str =
    "long-upstream-password-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

/// What no response body may ever contain.
fn secrets() -> Vec<String> {
    let mut secrets: Vec<String> = [
        PASSWORD,
        WRONG_PASSWORD,
        ASCII_PASSWORD,
        UNICODE_PASSWORD,
        LONG_PASSWORD,
        TEST_AUTH_SECRET,
        "$2a$",
        "$2b$",
        "$2y$",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    secrets.push(password_of_bytes(72));
    secrets
}

/// Fails the test if `response` carries anything of [`secrets`].
fn assert_no_secrets(response: &TestResponse) {
    for secret in secrets() {
        assert!(
            !response.text.contains(&secret),
            "a response carries {secret:?}: {}",
            response.text
        );
    }
}

/// A password of exactly `n` bytes (`n` even), of two-byte characters, so
/// that its length in bytes is twice its length in characters.
fn password_of_bytes(n: usize) -> String {
    "é".repeat(n / 2)
}

struct Fixture {
    db: TestDb,
    app: TestApp,
    /// Another function on the same database, to show that our tokens
    /// open it.
    history: TestApp,
}

async fn fixture() -> Fixture {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "auth", &[]);
    let history = TestApp::new(&db, "history", &[]);
    Fixture { db, app, history }
}

impl Fixture {
    /// Calls the auth function ([`TestApp::call`] checks what it leaves),
    /// then checks that nothing secret is in the body.
    async fn call(&self, request: Request) -> TestResponse {
        let response = self.app.call(auth::handle, request).await;
        assert_no_secrets(&response);
        response
    }

    async fn post(&self, route: &str, body: &Value, shape: Shape) -> TestResponse {
        self.call(
            ApiRequest::new("POST", &format!("/api/auth/{route}"))
                .json(body)
                .build(shape),
        )
        .await
    }

    async fn register(&self, email: &str, password: &str) -> TestResponse {
        let body = json!({"email": email, "password": password});
        self.post("register", &body, Shape::HttpV2).await
    }

    async fn login(&self, email: &str, password: &str) -> TestResponse {
        let body = json!({"email": email, "password": password});
        self.post("login", &body, Shape::HttpV2).await
    }

    async fn session(&self, token: &str, shape: Shape) -> TestResponse {
        self.call(
            ApiRequest::get("/api/auth/session")
                .bearer(token)
                .build(shape),
        )
        .await
    }

    /// How many `"User"` rows there are.
    async fn users(&self) -> i64 {
        sqlx::query_scalar(r#"SELECT count(*) FROM "User""#)
            .fetch_one(self.db.observer())
            .await
            .expect("count users")
    }

    /// The `(id, password)` of every user with `email`.
    async fn rows_of(&self, email: &str) -> Vec<(Uuid, Option<String>)> {
        sqlx::query_as(r#"SELECT id, password FROM "User" WHERE email = $1 ORDER BY id"#)
            .bind(email)
            .fetch_all(self.db.observer())
            .await
            .expect("read users")
    }

    /// A user written straight into the table, as another app would.
    async fn insert_user(&self, email: &str, password_hash: Option<&str>) -> Uuid {
        sqlx::query_scalar(r#"INSERT INTO "User" (email, password) VALUES ($1, $2) RETURNING id"#)
            .bind(email)
            .bind(password_hash)
            .fetch_one(self.db.observer())
            .await
            .expect("insert a user")
    }

    /// Shows that `token` opens another function: history answers 200.
    async fn opens_history(&self, token: &str) {
        let response = self
            .history
            .call(
                history::handle,
                ApiRequest::get("/api/history")
                    .bearer(token)
                    .build(Shape::HttpV2),
            )
            .await;
        assert_eq!(response.status, 200, "history: {}", response.text);
        assert_eq!(response.json, json!({"chats": [], "hasMore": false}));
    }

    /// The auth function of a process started without `AUTH_SECRET`.
    fn without_secret(&mut self) {
        self.app = TestApp::new(&self.db, "auth", &[("AUTH_SECRET", "")]);
    }
}

/// The answer to a body that is JSON but not an object: `shared`'s
/// extractor refuses it, with serde's cause ("invalid type: sequence,
/// expected a JSON object at line 1 column 0"); should it ever let one
/// through, the auth function refuses it itself.
fn not_an_object(request: Request) -> Value {
    match shared::http::extract::json_body::<Value>(&request, auth::BODY_LIMIT) {
        Err(refused) => serde_json::to_value(refused.body()).expect("an error body"),
        Ok(_) => bad_request("The request body must be a JSON object."),
    }
}

/// The answer to a registration of an address already taken.
fn email_taken() -> Value {
    error_with_cause(
        "bad_request:auth",
        "An account with this email already exists.",
    )
}

/// Checks a sign-in answer, `{token, user: {id, email, type}}`, and that
/// its token verifies as that user; returns the user's id and the token.
#[track_caller]
fn signed_in(f: &Fixture, response: &TestResponse, email: &str, user_type: &str) -> (Uuid, String) {
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.headers["content-type"], "application/json");
    let token = response.json["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in {}", response.text))
        .to_owned();
    let id = response.json["user"]["id"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .unwrap_or_else(|| panic!("no user id in {}", response.text));
    assert_eq!(
        response.json,
        json!({"token": token, "user": {"id": id, "email": email, "type": user_type}})
    );
    let identity = verify_token(&f.app.state.config.auth, &token).expect("the token verifies");
    assert_eq!(identity.user_id, id);
    assert_eq!(identity.email.as_deref(), Some(email));
    assert_eq!(identity.source, IdentitySource::SessionToken);
    let expected_type = if user_type == "guest" {
        UserType::Guest
    } else {
        UserType::Regular
    };
    assert_eq!(identity.user_type, expected_type);
    (id, token)
}

fn is_guest_email(email: &str) -> bool {
    email
        .strip_prefix("guest-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The `exp` of a token, as `Date.toISOString()` writes it.
fn expiry_of(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("a JWT payload");
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON");
    let exp = claims["exp"].as_i64().expect("exp");
    chrono::DateTime::from_timestamp(exp, 0)
        .expect("a time")
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

// --- guest ---------------------------------------------------------------

#[tokio::test]
async fn a_guest_sign_in_answers_a_guest_token_for_a_new_passwordless_user_in_every_event_shape() {
    let f = fixture().await;
    // The REST API's path carries its stage: routing must not mind.
    let rest = ApiRequest::new("POST", "/api/auth/guest").build(Shape::RestV1);
    assert_eq!(rest.uri().path(), "/prod/api/auth/guest");

    for shape in Shape::ALL {
        let response = f
            .call(ApiRequest::new("POST", "/api/auth/guest").build(shape))
            .await;
        let email = response.json["user"]["email"]
            .as_str()
            .unwrap_or_else(|| panic!("{shape:?}: {}", response.text))
            .to_owned();
        assert!(is_guest_email(&email), "{email}");
        let (id, token) = signed_in(&f, &response, &email, "guest");
        assert_eq!(f.rows_of(&email).await, vec![(id, None)], "{shape:?}");
        f.opens_history(&token).await;

        let session = f.session(&token, shape).await;
        assert_eq!(session.status, 200, "{shape:?}: {}", session.text);
        assert_eq!(
            session.json["user"],
            json!({"id": id, "email": email, "type": "guest"})
        );
    }
    assert_eq!(f.users().await, 3);
}

#[tokio::test]
async fn guests_signing_in_at_once_get_distinct_guest_emails() {
    let f = fixture().await;
    let responses = join_all((0..10).map(|_| {
        f.app.call(
            auth::handle,
            ApiRequest::new("POST", "/api/auth/guest").build(Shape::HttpV2),
        )
    }))
    .await;
    let mut emails = Vec::new();
    for response in &responses {
        assert_no_secrets(response);
        let email = response.json["user"]["email"]
            .as_str()
            .unwrap_or_else(|| panic!("{}", response.text));
        assert!(is_guest_email(email), "{email}");
        signed_in(&f, response, email, "guest");
        emails.push(email.to_owned());
    }
    emails.sort();
    emails.dedup();
    assert_eq!(emails.len(), 10, "{emails:?}");
    assert_eq!(f.users().await, 10);
}

// --- register ------------------------------------------------------------

#[tokio::test]
async fn registering_creates_a_regular_user_with_a_cost_10_bcrypt_hash_and_a_token_that_opens_other_functions()
 {
    let f = fixture().await;
    for (i, shape) in Shape::ALL.into_iter().enumerate() {
        let email = format!("ada{i}@example.com");
        // Fields the route does not know are ignored, as upstream's zod
        // schema ignores them.
        let body = json!({"email": email, "password": PASSWORD, "name": "Ada", "remember": true});
        let response = f.post("register", &body, shape).await;
        let (id, token) = signed_in(&f, &response, &email, "regular");

        let rows = f.rows_of(&email).await;
        assert_eq!(rows.len(), 1, "{shape:?}");
        assert_eq!(rows[0].0, id);
        let hash = rows[0].1.clone().expect("a password hash");
        assert!(hash.starts_with("$2b$10$") && hash.len() == 60, "{hash}");
        f.opens_history(&token).await;

        // The stored hash is the password's: it signs in.
        let login = f.login(&email, PASSWORD).await;
        assert_eq!(signed_in(&f, &login, &email, "regular").0, id);
    }
    assert_eq!(f.users().await, 3);
}

#[tokio::test]
async fn invalid_registrations_are_400s_that_name_the_field_and_write_nothing() {
    let f = fixture().await;
    let too_long = format!("{}@example.com", "a".repeat(53));
    assert_eq!(too_long.chars().count(), 65);
    let cases = [
        (json!({"password": PASSWORD}), "Field email is required."),
        (
            json!({"email": null, "password": PASSWORD}),
            "Field email is required.",
        ),
        (
            json!({"email": 42, "password": PASSWORD}),
            "Field email must be a string.",
        ),
        (
            json!({"email": ["ada@example.com"], "password": PASSWORD}),
            "Field email must be a string.",
        ),
        (
            json!({"email": {"address": "ada@example.com"}, "password": PASSWORD}),
            "Field email must be a string.",
        ),
        (
            json!({"email": "", "password": PASSWORD}),
            "Field email must be a valid e-mail address.",
        ),
        (
            json!({"email": "ada.example.com", "password": PASSWORD}),
            "Field email must be a valid e-mail address.",
        ),
        (
            json!({"email": "ada@", "password": PASSWORD}),
            "Field email must be a valid e-mail address.",
        ),
        (
            json!({"email": "ada@example", "password": PASSWORD}),
            "Field email must be a valid e-mail address.",
        ),
        (
            json!({"email": " ada@example.com", "password": PASSWORD}),
            "Field email must be a valid e-mail address.",
        ),
        (
            json!({"email": "guest-1737000000000", "password": PASSWORD}),
            "Field email must be a valid e-mail address.",
        ),
        (
            json!({"email": too_long, "password": PASSWORD}),
            "Field email must be at most 64 characters long.",
        ),
        (
            json!({"email": "ada@example.com"}),
            "Field password is required.",
        ),
        (
            json!({"email": "ada@example.com", "password": 123456}),
            "Field password must be a string.",
        ),
        (
            json!({"email": "ada@example.com", "password": ""}),
            "Field password must be at least 6 characters long.",
        ),
        (
            json!({"email": "ada@example.com", "password": "short"}),
            "Field password must be at least 6 characters long.",
        ),
        (
            json!({"email": "ada@example.com", "password": "x".repeat(73)}),
            "Field password must be at most 72 bytes long (in UTF-8).",
        ),
        (
            // 37 characters, 74 bytes: the limit is bcrypt's, in bytes.
            json!({"email": "ada@example.com", "password": password_of_bytes(74)}),
            "Field password must be at most 72 bytes long (in UTF-8).",
        ),
        (json!({}), "Field email is required."),
    ];
    for (body, cause) in cases {
        let response = f.post("register", &body, Shape::HttpV2).await;
        assert_eq!(response.status, 400, "{body}: {}", response.text);
        assert_eq!(response.json, bad_request(cause), "{body}");
    }
    assert_eq!(f.users().await, 0);
}

#[tokio::test]
async fn malformed_register_and_login_bodies_are_400s_and_write_nothing() {
    let f = fixture().await;
    let cases: [(Option<&str>, &str); 5] = [
        (None, "The request body is empty."),
        (Some(""), "The request body is empty."),
        (Some("{"), "The request body is not valid JSON."),
        (
            Some("{\"email\": \"ada@example.com\","),
            "The request body is not valid JSON.",
        ),
        (
            Some("email=ada%40example.com&password=correct-horse"),
            "The request body is not valid JSON.",
        ),
    ];
    for route in ["register", "login"] {
        for (body, cause) in cases {
            let mut request = ApiRequest::new("POST", &format!("/api/auth/{route}"));
            if let Some(body) = body {
                request = request.body(body);
            }
            let response = f.call(request.build(Shape::RestV1)).await;
            assert_eq!(response.status, 400, "{route} {body:?}: {}", response.text);
            assert_eq!(response.json, bad_request(cause), "{route} {body:?}");
        }
        for body in ["[]", "null", "\"ada@example.com\"", "42"] {
            let request = ApiRequest::new("POST", &format!("/api/auth/{route}")).body(body);
            let expected = not_an_object(request.build(Shape::RestV1));
            let response = f.call(request.build(Shape::RestV1)).await;
            assert_eq!(response.status, 400, "{route} {body}: {}", response.text);
            assert_eq!(response.json, expected, "{route} {body}");
        }
    }
    for (body, cause) in [
        (json!({"password": PASSWORD}), "Field email is required."),
        (
            json!({"email": 1, "password": PASSWORD}),
            "Field email must be a string.",
        ),
        (
            json!({"email": "ada@example.com"}),
            "Field password is required.",
        ),
        (
            json!({"email": "ada@example.com", "password": false}),
            "Field password must be a string.",
        ),
    ] {
        let response = f.post("login", &body, Shape::FunctionUrl).await;
        assert_eq!(response.status, 400, "{body}: {}", response.text);
        assert_eq!(response.json, bad_request(cause), "{body}");
    }
    assert_eq!(f.users().await, 0);
}

#[tokio::test]
async fn the_limits_are_inclusive_a_64_character_email_and_a_72_byte_password_register_and_sign_in()
{
    let f = fixture().await;
    let email = format!("{}@example.com", "b".repeat(52));
    assert_eq!(email.chars().count(), 64);
    let password = password_of_bytes(72);
    assert_eq!(password.len(), 72);
    let response = f.register(&email, &password).await;
    signed_in(&f, &response, &email, "regular");
    let login = f.login(&email, &password).await;
    signed_in(&f, &login, &email, "regular");
    // Every one of the 72 bytes counts: "é" is C3 A9, "ê" is C3 AA.
    let other = format!("{}ê", password_of_bytes(70));
    assert_eq!(other.len(), 72);
    assert_eq!(
        f.login(&email, &other).await.json,
        error_body("unauthorized:auth")
    );
}

#[tokio::test]
async fn registering_a_taken_email_is_refused_and_changes_nothing() {
    let f = fixture().await;
    let foreign = FOREIGN_HASHES[0].2;
    let ada = f.insert_user("ada@example.com", Some(foreign)).await;
    let response = f.register("ada@example.com", PASSWORD).await;
    assert_eq!(response.status, 400, "{}", response.text);
    assert_eq!(response.json, email_taken());
    assert_eq!(
        f.rows_of("ada@example.com").await,
        vec![(ada, Some(foreign.to_owned()))]
    );
    assert_eq!(f.users().await, 1);

    // Taken by an account registered here, too.
    let first = f.register("babbage@example.com", PASSWORD).await;
    signed_in(&f, &first, "babbage@example.com", "regular");
    let second = f.register("babbage@example.com", WRONG_PASSWORD).await;
    assert_eq!(second.status, 400);
    assert_eq!(second.json, email_taken());
    assert_eq!(f.users().await, 2);
    // The first password still opens the account; the second does not.
    assert_eq!(f.login("babbage@example.com", PASSWORD).await.status, 200);
    assert_eq!(
        f.login("babbage@example.com", WRONG_PASSWORD).await.status,
        401
    );
}

#[tokio::test]
async fn ten_concurrent_registrations_of_one_email_create_exactly_one_user() {
    let f = fixture().await;
    let body = json!({"email": "ada@example.com", "password": PASSWORD});
    let responses = join_all((0..10).map(|_| {
        f.app.call(
            auth::handle,
            ApiRequest::new("POST", "/api/auth/register")
                .json(&body)
                .build(Shape::HttpV2),
        )
    }))
    .await;
    let mut succeeded = 0;
    for response in &responses {
        assert_no_secrets(response);
        match response.status {
            200 => {
                succeeded += 1;
                signed_in(&f, response, "ada@example.com", "regular");
            }
            400 => assert_eq!(response.json, email_taken()),
            other => panic!("{other}: {}", response.text),
        }
    }
    assert_eq!(succeeded, 1);
    assert_eq!(f.rows_of("ada@example.com").await.len(), 1);
    assert_eq!(f.users().await, 1);
}

// --- login ---------------------------------------------------------------

#[tokio::test]
async fn signing_in_with_the_right_password_answers_a_regular_token_in_every_event_shape() {
    let f = fixture().await;
    let registered = f.register("ada@example.com", PASSWORD).await;
    let (id, _) = signed_in(&f, &registered, "ada@example.com", "regular");
    for shape in Shape::ALL {
        let body = json!({"email": "ada@example.com", "password": PASSWORD, "redirect": false});
        let response = f.post("login", &body, shape).await;
        let (signed_in_as, token) = signed_in(&f, &response, "ada@example.com", "regular");
        assert_eq!(signed_in_as, id, "{shape:?}");
        f.opens_history(&token).await;
    }
    assert_eq!(f.users().await, 1);
}

#[tokio::test]
async fn users_whose_hashes_other_bcrypt_implementations_made_sign_in() {
    let f = fixture().await;
    let mut users = Vec::new();
    for (i, (maker, password, hash)) in FOREIGN_HASHES.iter().enumerate() {
        let email = format!("user{i}@example.com");
        let id = f.insert_user(&email, Some(hash)).await;
        users.push((maker, email, *password, id));
    }
    // At once: each is a cost-10 bcrypt.
    let responses = join_all(users.iter().map(|(_, email, password, _)| {
        f.app.call(
            auth::handle,
            ApiRequest::new("POST", "/api/auth/login")
                .json(&json!({"email": email, "password": password}))
                .build(Shape::HttpV2),
        )
    }))
    .await;
    for ((maker, email, _, id), response) in users.iter().zip(&responses) {
        assert_no_secrets(response);
        assert_eq!(response.status, 200, "{maker}: {}", response.text);
        assert_eq!(signed_in(&f, response, email, "regular").0, *id, "{maker}");
    }
    // And a wrong password is still wrong for each kind of hash.
    for email in [
        "user0@example.com",
        "user2@example.com",
        "user9@example.com",
    ] {
        let response = f.login(email, WRONG_PASSWORD).await;
        assert_eq!(response.status, 401, "{email}");
        assert_eq!(response.json, error_body("unauthorized:auth"));
    }
}

#[tokio::test]
async fn a_wrong_password_an_unknown_email_a_passwordless_user_and_a_guest_get_identical_401s() {
    let f = fixture().await;
    // bcrypt-ts's hash of ASCII_PASSWORD, as upstream would have stored it.
    f.insert_user("ada@example.com", Some(FOREIGN_HASHES[2].2))
        .await;
    f.insert_user("nopassword@example.com", None).await;
    f.insert_user("broken@example.com", Some("not-a-bcrypt-hash"))
        .await;
    let guest = f
        .call(ApiRequest::new("POST", "/api/auth/guest").build(Shape::HttpV2))
        .await;
    let guest_email = guest.json["user"]["email"]
        .as_str()
        .expect("a guest")
        .to_owned();
    let users = f.users().await;

    let attempts = [
        ("ada@example.com", WRONG_PASSWORD),
        ("ada@example.com", ""),
        ("ada@example.com", "UPSTREAM-PA55WORD"),
        ("Ada@example.com", ASCII_PASSWORD),
        ("nobody@example.com", ASCII_PASSWORD),
        ("", ASCII_PASSWORD),
        ("nopassword@example.com", ASCII_PASSWORD),
        ("nopassword@example.com", ""),
        ("broken@example.com", "not-a-bcrypt-hash"),
        (guest_email.as_str(), ASCII_PASSWORD),
        (guest_email.as_str(), ""),
    ];
    // At once: each costs a cost-10 bcrypt.
    let responses = join_all(attempts.iter().map(|(email, password)| {
        f.app.call(
            auth::handle,
            ApiRequest::new("POST", "/api/auth/login")
                .json(&json!({"email": email, "password": password}))
                .build(Shape::HttpV2),
        )
    }))
    .await;
    for ((email, password), response) in attempts.iter().zip(&responses) {
        assert_no_secrets(response);
        assert_eq!(response.status, 401, "{email} / {password}");
        assert_eq!(response.json, error_body("unauthorized:auth"));
        assert_eq!(response.headers["content-type"], "application/json");
        assert_eq!(response.text, responses[0].text, "the bodies differ");
    }
    assert_eq!(f.users().await, users);
    // The right password does open Ada's account.
    let response = f.login("ada@example.com", ASCII_PASSWORD).await;
    signed_in(&f, &response, "ada@example.com", "regular");
}

#[tokio::test]
async fn an_unknown_email_costs_as_much_time_as_a_wrong_password() {
    let f = fixture().await;
    // A cost-10 hash, as every hash upstream or this function writes.
    f.insert_user("ada@example.com", Some(FOREIGN_HASHES[2].2))
        .await;

    // Alternated, so that a slow moment of the machine hits both series.
    // (The first login of a process also makes the dummy hash; the median
    // leaves that one out.)
    let mut unknown = Vec::new();
    let mut wrong = Vec::new();
    for i in 0..5 {
        for (email, series) in [
            (format!("nobody{i}@example.com"), &mut unknown),
            ("ada@example.com".to_owned(), &mut wrong),
        ] {
            let request = ApiRequest::new("POST", "/api/auth/login")
                .json(&json!({"email": email, "password": WRONG_PASSWORD}))
                .build(Shape::HttpV2);
            let started = Instant::now();
            let response = f.app.call(auth::handle, request).await;
            series.push(started.elapsed());
            assert_eq!(response.status, 401);
            assert_eq!(response.json, error_body("unauthorized:auth"));
            assert_no_secrets(&response);
        }
    }
    let median = |series: &mut Vec<Duration>| {
        series.sort();
        series[series.len() / 2]
    };
    let (unknown, wrong) = (median(&mut unknown), median(&mut wrong));
    eprintln!("login medians: unknown email {unknown:?}, wrong password {wrong:?}");
    assert!(
        unknown * 2 >= wrong && wrong * 2 >= unknown,
        "unknown email {unknown:?} vs wrong password {wrong:?}"
    );
    // Both paths really ran bcrypt (cost 10 takes tens of milliseconds).
    assert!(unknown >= Duration::from_millis(10), "{unknown:?}");
}

// --- session -------------------------------------------------------------

#[tokio::test]
async fn a_valid_token_gives_the_session_with_the_email_the_database_holds_in_every_event_shape() {
    let f = fixture().await;
    let ada = f.app.user("ada@example.com", UserType::Regular).await;
    // A token whose e-mail claim is out of date: the session says what the
    // database says.
    let stale = issue_token(
        &f.app.state.config.auth,
        ada.id,
        UserType::Regular,
        Some("old-address@example.com"),
    )
    .expect("a token");
    for shape in Shape::ALL {
        for token in [&ada.token, &stale] {
            let response = f.session(token, shape).await;
            assert_eq!(response.status, 200, "{shape:?}: {}", response.text);
            assert_eq!(
                response.json,
                json!({
                    "user": {"id": ada.id, "email": "ada@example.com", "type": "regular"},
                    "expires": expiry_of(token),
                }),
                "{shape:?}"
            );
        }
    }
    // 30 days ahead, as upstream's NextAuth sessions.
    let expires = chrono::DateTime::parse_from_rfc3339(&expiry_of(&ada.token)).expect("ISO 8601");
    let days = (expires.timestamp() - unix_now()) / 86_400;
    assert!((29..=30).contains(&days), "{days}");
}

#[tokio::test]
async fn expired_wrongly_signed_unsigned_and_malformed_tokens_get_401_from_the_session_route() {
    let f = fixture().await;
    let ada = f.app.user("ada@example.com", UserType::Regular).await;
    let claims = |exp: i64| {
        json!({
            "sub": ada.id, "type": "regular", "email": "ada@example.com",
            "iss": "chat-backend", "iat": unix_now() - 3600, "exp": exp,
        })
    };

    // The forging is right: with our secret and a future expiry, it works.
    let fresh = sign_token(&claims(unix_now() + 600), TEST_AUTH_SECRET);
    assert!(verify_token(&f.app.state.config.auth, &fresh).is_ok());
    assert_eq!(f.session(&fresh, Shape::HttpV2).await.status, 200);

    // Past the 5 s leeway.
    let expired = sign_token(&claims(unix_now() - 60), TEST_AUTH_SECRET);
    assert!(verify_token(&f.app.state.config.auth, &expired).is_err());
    let other_secret = "someone-elses-secret-0123456789abcdef";
    let wrongly_signed = issue_token(
        &AuthConfig::with_secret(other_secret),
        ada.id,
        UserType::Regular,
        None,
    )
    .expect("a token");
    let forged_elsewhere = sign_token(&claims(unix_now() + 600), other_secret);
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string()),
        URL_SAFE_NO_PAD.encode(claims(unix_now() + 600).to_string())
    );
    let mut tampered = fresh.clone();
    tampered.pop();
    tampered.push(if fresh.ends_with('A') { 'B' } else { 'A' });

    for token in [
        expired,
        wrongly_signed,
        forged_elsewhere,
        unsigned,
        tampered,
        "not.a.jwt".to_owned(),
        "abc".to_owned(),
        "x".repeat(5000),
    ] {
        let response = f.session(&token, Shape::HttpV2).await;
        assert_eq!(response.status, 401, "{token}: {}", response.text);
        assert_eq!(response.json, error_body("unauthorized:auth"));
    }
    for header in [None, Some("Bearer"), Some("Basic YWRhOnB3")] {
        let mut request = ApiRequest::get("/api/auth/session");
        if let Some(value) = header {
            request = request.header("authorization", value);
        }
        let response = f.call(request.build(Shape::RestV1)).await;
        assert_eq!(response.status, 401, "{header:?}");
        assert_eq!(response.json, error_body("unauthorized:auth"));
    }
    assert_eq!(f.users().await, 1);
}

#[tokio::test]
async fn the_token_of_a_deleted_user_gets_401_from_the_session_route() {
    let f = fixture().await;
    let ada: TestUser = f.app.user("ada@example.com", UserType::Regular).await;
    assert_eq!(f.session(&ada.token, Shape::HttpV2).await.status, 200);
    sqlx::query(r#"DELETE FROM "User" WHERE id = $1"#)
        .bind(ada.id)
        .execute(f.db.observer())
        .await
        .expect("delete Ada");
    let response = f.session(&ada.token, Shape::HttpV2).await;
    assert_eq!(response.status, 401);
    assert_eq!(response.json, error_body("unauthorized:auth"));
    assert_eq!(f.users().await, 0);
}

#[tokio::test]
async fn authorizer_claims_give_the_session_of_their_user_with_no_expiry() {
    let f = fixture().await;
    let ada = f.insert_user("ada@example.com", None).await;
    for shape in [Shape::RestV1, Shape::HttpV2] {
        let response = f
            .call(
                ApiRequest::get("/api/auth/session")
                    .claims(json!({"sub": ada.to_string(), "email": "ada@example.com", "custom:user_type": "guest"}))
                    .build(shape),
            )
            .await;
        assert_eq!(response.status, 200, "{shape:?}: {}", response.text);
        assert_eq!(
            response.json,
            json!({
                "user": {"id": ada, "email": "ada@example.com", "type": "guest"},
                "expires": null,
            })
        );
    }
}

// --- every route ---------------------------------------------------------

#[tokio::test]
async fn wrong_methods_are_405_with_the_allowed_method_and_write_nothing() {
    let f = fixture().await;
    let cases = [
        ("guest", ["GET", "PUT", "DELETE"], "POST"),
        ("register", ["GET", "PUT", "PATCH"], "POST"),
        ("login", ["GET", "PUT", "DELETE"], "POST"),
        ("session", ["POST", "PUT", "DELETE"], "GET"),
    ];
    for (route, methods, allow) in cases {
        for method in methods {
            let response = f
                .call(
                    ApiRequest::new(method, &format!("/api/auth/{route}"))
                        .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
                        .build(Shape::HttpV2),
                )
                .await;
            assert_eq!(response.status, 405, "{method} {route}");
            assert_eq!(response.headers["allow"], allow, "{method} {route}");
            assert_eq!(
                response.json,
                bad_request(&format!("This route answers {allow} only."))
            );
        }
    }
    assert_eq!(f.users().await, 0);
}

#[tokio::test]
async fn paths_that_are_not_auth_routes_are_404() {
    let f = fixture().await;
    for (method, path) in [
        ("POST", "/api/auth/logout"),
        ("GET", "/api/auth"),
        ("GET", "/api/auth/"),
        ("POST", "/api/auth/guest/extra"),
        ("GET", "/api/auth/sessions"),
    ] {
        let response = f
            .call(ApiRequest::new(method, path).build(Shape::HttpV2))
            .await;
        assert_eq!(response.status, 404, "{method} {path}");
        assert_eq!(response.json, error_body("not_found:auth"));
    }
    assert_eq!(f.users().await, 0);
}

#[tokio::test]
async fn bodies_over_16_kib_are_413_and_write_nothing() {
    let f = fixture().await;
    let body =
        json!({"email": "ada@example.com", "password": PASSWORD, "padding": "x".repeat(16 * 1024)});
    for route in ["guest", "register", "login"] {
        let response = f.post(route, &body, Shape::HttpV2).await;
        assert_eq!(response.status, 413, "{route}");
        assert_eq!(
            response.json,
            bad_request("The request body is larger than 16384 bytes.")
        );
    }
    assert_eq!(f.users().await, 0);
}

#[tokio::test]
async fn without_auth_secret_the_token_issuing_routes_answer_503_and_write_nothing() {
    let mut f = fixture().await;
    let ada = f.app.user("ada@example.com", UserType::Regular).await;
    f.without_secret();
    let body = json!({"email": "babbage@example.com", "password": PASSWORD});
    for route in ["guest", "register", "login"] {
        let response = f.post(route, &body, Shape::HttpV2).await;
        assert_eq!(response.status, 503, "{route}: {}", response.text);
        assert_eq!(response.json, error_body("offline:auth"));
        assert_eq!(response.headers["retry-after"], "1");
    }
    // No token can be checked either: the session route refuses, as every
    // other function does.
    let session = f.session(&ada.token, Shape::HttpV2).await;
    assert_eq!(session.status, 401);
    assert_eq!(session.json, error_body("unauthorized:auth"));
    assert_eq!(f.users().await, 1);
}
