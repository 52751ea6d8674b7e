//! The pool's metrics as CloudWatch embedded metric format lines, printed
//! by the real `history` binary behind a local Lambda Runtime API: one
//! valid EMF document per invocation (or per `DB_METRICS_EVERY`), whose
//! figures match what the function did.

use std::time::Duration;

use integration_tests::lambda_api::FakeLambda;
use integration_tests::{ApiRequest, Shape, TestApp, TestDb, process};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use shared::http::identity::UserType;

/// The units CloudWatch accepts in an EMF metric definition.
const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Checks `doc` against the EMF specification's rules: `_aws` with an
/// integer `Timestamp` and one or more directives, each with a namespace,
/// dimension sets of at most 30 names that are string members of the
/// document, and at most 100 metrics with known units whose names are
/// numeric members (or arrays of numbers).
fn assert_valid_emf(doc: &Value) {
    let aws = &doc["_aws"];
    assert!(aws["Timestamp"].is_u64(), "Timestamp: {doc}");
    let directives = aws["CloudWatchMetrics"].as_array().expect("directives");
    assert!(!directives.is_empty(), "{doc}");
    for directive in directives {
        let namespace = directive["Namespace"].as_str().expect("a namespace");
        assert!(!namespace.is_empty() && namespace.len() <= 255);
        for set in directive["Dimensions"].as_array().expect("dimension sets") {
            let set = set.as_array().expect("a dimension set");
            assert!(set.len() <= 30);
            for name in set {
                let name = name.as_str().expect("a dimension name");
                assert!(doc[name].is_string(), "dimension {name}: {doc}");
            }
        }
        let metrics = directive["Metrics"].as_array().expect("metrics");
        assert!(!metrics.is_empty() && metrics.len() <= 100);
        for metric in metrics {
            let name = metric["Name"].as_str().expect("a metric name");
            let unit = metric["Unit"].as_str().unwrap_or("None");
            assert!(UNITS.contains(&unit), "unit {unit}");
            let value = &doc[name];
            let numeric = value.is_number()
                || value
                    .as_array()
                    .is_some_and(|values| values.iter().all(Value::is_number));
            assert!(numeric, "metric {name}: {doc}");
        }
    }
}

/// Runs `history` with `vars`, invokes it `n` times as Ada (the first
/// `unauthenticated` of them without a token), stops it, and returns the
/// EMF documents it printed.
async fn emf_lines(vars: &[(&str, &str)], n: usize, unauthenticated: usize) -> Vec<Value> {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "history", &[]);
    let ada = app.user("ada@example.com", UserType::Regular).await;
    let lambda = FakeLambda::start().await;
    let env = lambda.function_env_on("history", &db, vars);
    let mut child = process::spawn("history", &env);
    for i in 0..n {
        let mut request = ApiRequest::get("/api/history");
        if i >= unauthenticated {
            request = request.bearer(&ada.token);
        }
        let outcome = lambda
            .invoke(request.event(Shape::HttpV2), Duration::from_secs(20))
            .await;
        let status = &outcome.json()["statusCode"];
        assert_eq!(status, if i >= unauthenticated { 200 } else { 401 });
    }
    let pid = Pid::from_raw(i32::try_from(child.id().expect("running")).expect("pid"));
    kill(pid, Signal::SIGTERM).expect("SIGTERM");
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    process::output(&mut child)
        .await
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|doc| doc.get("_aws").is_some())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_invocation_prints_one_valid_emf_line_with_the_pools_figures() {
    // On Lambda the lines are on by default (AWS_LAMBDA_FUNCTION_NAME).
    let docs = emf_lines(&[], 5, 1).await;
    assert_eq!(docs.len(), 5, "{docs:#?}");
    for doc in &docs {
        assert_valid_emf(doc);
        assert_eq!(doc["FunctionName"], "history");
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "ChatBackend"
        );
        assert_eq!(doc["PoolMaxConnections"], 1);
        assert_eq!(doc["Invocations"], 1);
        assert_eq!(doc["LeaksDetected"], 0);
        assert_eq!(doc["HandlerTimeouts"], 0);
        assert!(doc["PoolSize"].as_u64().expect("size") <= 1);
        assert!(doc["AcquireTime"].as_f64().expect("time") >= 0.0);
    }
    // The unauthenticated first call took no connection; the next opened
    // the one connection the rest reused.
    assert_eq!(docs[0]["Acquisitions"], 0);
    assert_eq!(docs[0]["ConnectionsOpened"], 0);
    assert_eq!(docs[1]["Acquisitions"], 1);
    assert_eq!(docs[1]["ConnectionsOpened"], 1);
    for doc in &docs[2..] {
        assert_eq!(doc["Acquisitions"], 1);
        assert_eq!(doc["ConnectionsOpened"], 0, "warm: {doc}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_can_be_one_per_n_invocations_or_off() {
    let docs = emf_lines(
        &[
            ("DB_METRICS_EVERY", "2"),
            ("DB_METRICS_NAMESPACE", "Chat/Test"),
        ],
        4,
        0,
    )
    .await;
    assert_eq!(docs.len(), 2, "{docs:#?}");
    for doc in &docs {
        assert_valid_emf(doc);
        assert_eq!(doc["Invocations"], 2);
        assert_eq!(doc["Acquisitions"], 2);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "Chat/Test"
        );
    }
    assert_eq!(docs[0]["ConnectionsOpened"], 1);
    assert_eq!(docs[1]["ConnectionsOpened"], 0);

    let none = emf_lines(&[("DB_METRICS", "off")], 2, 0).await;
    assert!(none.is_empty(), "{none:#?}");
}
