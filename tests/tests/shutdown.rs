//! A function process as Lambda runs it: the real `history` binary behind
//! a local Lambda Runtime API. It registers its shutdown extension, serves
//! invocations on one connection, and when Lambda sends SIGTERM it closes
//! its connections and exits 0.

use std::time::{Duration, Instant};

use integration_tests::lambda_api::{FakeLambda, Outcome};
use integration_tests::{ApiRequest, Shape, TEST_AUTH_SECRET, TestApp, TestDb, process};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use shared::http::identity::UserType;

const HISTORY: &str = "chat-backend:history";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_sent_sigterm_closes_its_connections_and_exits_zero() {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "history", &[]);
    let ada = app.user("ada@example.com", UserType::Regular).await;
    let lambda = FakeLambda::start().await;
    let env = lambda.function_env_on("history", &db, &[]);
    let mut child = process::spawn("history", &env);

    // Three invocations, as API Gateway would send them.
    for shape in Shape::ALL {
        let event = ApiRequest::get("/api/history")
            .bearer(&ada.token)
            .event(shape);
        let outcome = lambda.invoke(event, Duration::from_secs(20)).await;
        let response = outcome.json();
        assert_eq!(response["statusCode"], 200, "{shape:?}: {response}");
        let body: serde_json::Value =
            serde_json::from_str(response["body"].as_str().expect("body")).expect("JSON body");
        assert_eq!(body, serde_json::json!({"chats": [], "hasMore": false}));
    }
    // One environment, one invocation at a time: one connection.
    assert_eq!(db.backends(HISTORY).await, 1);
    assert_eq!(
        lambda.extensions_registered().await,
        1,
        "the shutdown extension registered"
    );

    let pid = Pid::from_raw(i32::try_from(child.id().expect("running")).expect("pid"));
    kill(pid, Signal::SIGTERM).expect("send SIGTERM");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the function exits after SIGTERM")
        .expect("exit status");
    let logs = process::output(&mut child).await;
    assert_eq!(status.code(), Some(0), "{logs}");
    assert!(
        logs.contains("All database connections closed successfully"),
        "{logs}"
    );
    assert_eq!(
        db.wait_for_backends(HISTORY, 0, Duration::from_secs(3))
            .await,
        0,
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_size_chosen_is_logged_once_at_start() {
    let db = TestDb::migrated().await;
    let lambda = FakeLambda::start().await;
    let mut env = lambda.function_env("history");
    env.push(("POSTGRES_URL".into(), db.url()));
    env.push(("AWS_LAMBDA_MAX_CONCURRENCY".into(), "4".into()));
    let mut child = process::spawn("history", &env);
    // An invocation proves init is over; then stop it and read its logs.
    let event = ApiRequest::get("/api/history").event(Shape::HttpV2);
    let response = lambda.invoke(event, Duration::from_secs(20)).await.json();
    assert_eq!(response["statusCode"], 401);
    let pid = Pid::from_raw(i32::try_from(child.id().expect("running")).expect("pid"));
    kill(pid, Signal::SIGTERM).expect("send SIGTERM");
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    let logs = process::output(&mut child).await;
    assert_eq!(logs.matches("database pool ready").count(), 1, "{logs}");
    assert!(logs.contains("max_connections=4"), "{logs}");
    assert!(logs.contains("Lambda Managed Instances"), "{logs}");
    assert!(logs.contains("AUTH_SECRET is not set"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misconfigured_function_fails_at_init_naming_the_variable_and_never_the_password() {
    let lambda = FakeLambda::start().await;
    let cases = [
        (vec![("DB_POOL_MAX", "lots")], "DB_POOL_MAX is invalid"),
        (vec![("AUTH_SECRET", "short")], "AUTH_SECRET is invalid"),
        (
            vec![("DB_IDLE_TIMEOUT_SECS", "0")],
            "DB_IDLE_TIMEOUT_SECS is invalid",
        ),
    ];
    for (vars, expected) in cases {
        let mut env = lambda.function_env("history");
        env.push((
            "POSTGRES_URL".into(),
            "postgres://app:pa55word@127.0.0.1:1/chat".into(),
        ));
        env.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let mut child = process::spawn("history", &env);
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .expect("exits")
            .expect("status");
        let logs = process::output(&mut child).await;
        assert!(!status.success(), "{logs}");
        assert!(logs.contains(expected), "{expected}: {logs}");
        assert!(!logs.contains("pa55word"), "{logs}");
    }

    let mut env = lambda.function_env("history");
    env.retain(|(k, _)| k != "AWS_LAMBDA_FUNCTION_NAME");
    env.push((
        "POSTGRES_URL".into(),
        "postgres://app@127.0.0.1:1/chat".into(),
    ));
    let mut child = process::spawn("history", &env);
    let status = child.wait().await.expect("status");
    let logs = process::output(&mut child).await;
    assert!(!status.success());
    assert!(logs.contains("missing: AWS_LAMBDA_FUNCTION_NAME"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_reports_an_unreachable_database_as_a_503_response_not_an_error() {
    let lambda = FakeLambda::start().await;
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("address").port();
    let mut env = lambda.function_env("history");
    env.push((
        "POSTGRES_URL".into(),
        format!("postgres://app:pa55word@127.0.0.1:{port}/chat"),
    ));
    env.push(("DB_CONNECT_TIMEOUT_SECS".into(), "1".into()));
    env.push(("AUTH_SECRET".into(), TEST_AUTH_SECRET.into()));
    let mut child = process::spawn("history", &env);

    let auth = shared::config::AuthConfig::with_secret(TEST_AUTH_SECRET);
    let token =
        shared::http::identity::issue_token(&auth, uuid::Uuid::new_v4(), UserType::Guest, None)
            .expect("token");
    let event = ApiRequest::get("/api/history")
        .bearer(&token)
        .event(Shape::RestV1);
    let started = Instant::now();
    let outcome = lambda.invoke(event, Duration::from_secs(20)).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let response = match outcome {
        Outcome::Response(_) => outcome.json(),
        Outcome::Error(error) => panic!("reported as a Lambda error: {error}"),
    };
    assert_eq!(response["statusCode"], 503);
    assert!(!response.to_string().contains("pa55word"));
    drop(silent);
    let pid = Pid::from_raw(i32::try_from(child.id().expect("running")).expect("pid"));
    kill(pid, Signal::SIGTERM).expect("send SIGTERM");
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    let logs = process::output(&mut child).await;
    assert!(!logs.contains("pa55word"), "{logs}");
}
