//! Every log line written during an invocation carries its request id,
//! including the lines of the tasks it spawns: the reply task of a
//! streamed chat turn, which saves the reply after the handler has
//! answered, and the stream guard's end work.
//!
//! The real `chat` binary runs behind a local streaming Lambda Runtime API
//! with Lambda's JSON log format (`AWS_LAMBDA_LOG_FORMAT=JSON`), at debug
//! level for our own crates, and the test reads what it printed.

use std::time::Duration;

use integration_tests::captured::Captured;
use integration_tests::fault_kit::{chat_body, chat_post};
use integration_tests::lambda_stream::StreamingLambda;
use integration_tests::{ApiRequest, Shape, TestApp, TestDb};
use serde_json::Value;
use shared::http::identity::UserType;
use uuid::Uuid;

/// The JSON log lines of `logs` (not the EMF metrics documents, which are
/// metrics, not log lines), from the first one that says `after` on.
fn log_lines_after(logs: &str, after: &str) -> Vec<Value> {
    logs.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line.get("level").is_some() && line.get("_aws").is_none())
        .skip_while(|line| !message(line).contains(after))
        .skip(1)
        .collect()
}

fn message(line: &Value) -> &str {
    line["fields"]["message"].as_str().unwrap_or("")
}

/// The request ids in the line's spans (`spans` lists them all, the
/// innermost, `span`, among them).
fn request_ids(line: &Value) -> Vec<&str> {
    let mut ids: Vec<&str> = line["spans"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|span| span["requestId"].as_str())
        .collect();
    ids.dedup();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_logged_during_an_invocation_carries_its_request_id_spawned_tasks_included() {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "chat", &[]);
    let ada = app.user("ada@example.com", UserType::Regular).await;
    let lambda = StreamingLambda::start().await;
    let env = lambda.function_env_on(
        "chat",
        &db,
        &[
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("RUST_LOG", "info,shared=debug,chat=debug"),
            ("OFFLINE_MODEL_DELAY_MS", "5"),
        ],
    );
    let mut process = Captured::spawn("chat", &env);
    const BOUND: Duration = Duration::from_secs(20);

    // A streamed turn in a new chat: its reply is saved by the reply task
    // after the handler has answered.
    let body = chat_body(Uuid::new_v4(), Uuid::new_v4(), "Hello there", "private");
    let mut turn = lambda
        .invoke(chat_post(&ada.token, &body).event(Shape::RestV1), BOUND)
        .await;
    assert!(turn.until_end(BOUND).await, "{}", process.logs());
    assert!(turn.body_text().contains("[DONE]"), "{}", turn.body_text());
    // A request refused in the handler.
    let mut refused = lambda
        .invoke(
            ApiRequest::new("POST", "/api/chat")
                .bearer(&ada.token)
                .json(&serde_json::json!({"id": "not a uuid"}))
                .event(Shape::RestV1),
            BOUND,
        )
        .await;
    assert!(refused.until_end(BOUND).await, "{}", process.logs());
    assert!(
        process.wait_for_log("request refused", BOUND).await,
        "{}",
        process.logs()
    );
    let logs = process.logs();
    let _ = process.wait(Duration::ZERO).await;

    let lines = log_lines_after(&logs, "database pool ready");
    let of = |needle: &str| -> Vec<&str> {
        lines
            .iter()
            .filter(|line| message(line).contains(needle))
            .flat_map(request_ids)
            .collect()
    };
    // The lines that matter carry the right invocation's id.
    assert_eq!(of("reply saved"), vec![turn.request_id.as_str()], "{logs}");
    assert_eq!(of("stream ended"), vec![turn.request_id.as_str()], "{logs}");
    assert_eq!(
        of("request refused"),
        vec![refused.request_id.as_str()],
        "{logs}"
    );
    // And no line written after init lacks one.
    let ours = [turn.request_id.as_str(), refused.request_id.as_str()];
    let without: Vec<&Value> = lines
        .iter()
        .filter(|line| !request_ids(line).iter().any(|id| ours.contains(id)))
        .collect();
    assert!(
        without.is_empty(),
        "lines without their invocation's request id: {without:#?}"
    );
    assert!(lines.len() >= 3, "{logs}");
}
