//! What the two local Lambda Runtime APIs ([`crate::lambda_api`], which
//! reads answers whole, and [`crate::lambda_stream`], which hands them over
//! chunk by chunk) have in common: how an event is handed to a function, the
//! environment a function process gets, the extension endpoints the
//! shutdown hook uses, and serving an axum router on a free local port.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// Serves `app` on a free port of 127.0.0.1 until the returned task is
/// aborted.
pub async fn serve(app: Router) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port");
    let addr = listener.local_addr().expect("local address");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, server)
}

/// An event queued for the function, with its request id and deadline.
pub(crate) struct Pending {
    pub id: String,
    pub event: Value,
    pub deadline_ms: u64,
}

impl Pending {
    /// `event` under a new request id, due `deadline` from now.
    pub fn new(event: Value, deadline: Duration) -> Pending {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Pending {
            id: uuid::Uuid::new_v4().to_string(),
            event,
            deadline_ms: now_ms + deadline.as_millis() as u64,
        }
    }

    /// The answer to `GET /runtime/invocation/next` that hands it over,
    /// with the headers Lambda sends.
    pub fn into_response(self) -> Response {
        let mut headers = HeaderMap::new();
        let mut put = |name: &'static str, value: String| {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        };
        put("lambda-runtime-aws-request-id", self.id);
        put("lambda-runtime-deadline-ms", self.deadline_ms.to_string());
        put(
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:test".to_owned(),
        );
        put(
            "lambda-runtime-trace-id",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".to_owned(),
        );
        (StatusCode::OK, headers, self.event.to_string()).into_response()
    }
}

/// The environment Lambda gives a function process, for a Runtime API at
/// `addr`.
pub fn function_env(addr: SocketAddr, function: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", addr.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", function.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// [`function_env`] for `function` on `db`, signing tokens with
/// [`crate::TEST_AUTH_SECRET`], plus `vars`.
pub fn function_env_on(
    addr: SocketAddr,
    function: &str,
    db: &crate::TestDb,
    vars: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut env = function_env(addr, function);
    env.push(("POSTGRES_URL".into(), db.url()));
    env.push(("AUTH_SECRET".into(), crate::TEST_AUTH_SECRET.into()));
    env.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    env
}

/// The answer to `POST /2020-01-01/extension/register`: a new extension id.
pub fn registered() -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert("lambda-extension-identifier", value);
    }
    let body = serde_json::json!({
        "functionName": "test",
        "functionVersion": "$LATEST",
        "handler": "bootstrap",
    });
    (StatusCode::OK, headers, body.to_string()).into_response()
}

/// `GET /2020-01-01/extension/event/next`. Lambda answers an extension's
/// poll only with events it subscribed to; the shutdown helper subscribes
/// to none. Hold the poll open.
pub async fn extension_next() -> Response {
    std::future::pending::<()>().await;
    StatusCode::OK.into_response()
}
