//! The CloudFormation custom-resource protocol, for running migrations on
//! every deploy.
//!
//! CloudFormation invokes the function with a request (`Create`, `Update` or
//! `Delete`) and waits, for up to an hour, for an answer PUT to the
//! pre-signed `ResponseURL`. A function that fails without answering leaves
//! the stack hanging, so every request that carries a `ResponseURL` is
//! answered: SUCCESS or FAILED with a reason, whatever happened, including a
//! migration that runs out of time or panics. `Create` and `Update` migrate;
//! `Delete` does nothing (a stack deletion must not touch the data).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Report;

/// The physical id of the migrations "resource": constant, so that an
/// update never looks like a replacement to CloudFormation.
pub const PHYSICAL_RESOURCE_ID: &str = "chat-backend-database-migrations";

/// Longest `Reason` we send: the whole response must stay under 4 KiB.
const MAX_REASON_LEN: usize = 1024;

/// A custom-resource request (the fields we use).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Request {
    /// `Create`, `Update` or `Delete`.
    pub request_type: String,
    /// Where the answer goes (a pre-signed S3 URL).
    #[serde(rename = "ResponseURL")]
    pub response_url: String,
    /// Echoed back.
    pub stack_id: String,
    /// Echoed back.
    pub request_id: String,
    /// Echoed back.
    pub logical_resource_id: String,
    /// Present on `Update` and `Delete`.
    #[serde(default)]
    pub physical_resource_id: Option<String>,
}

/// The answer CloudFormation expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Response {
    /// `SUCCESS` or `FAILED`.
    pub status: &'static str,
    /// Why, for a failure (shown in the stack's events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// See [`PHYSICAL_RESOURCE_ID`].
    pub physical_resource_id: String,
    /// Echoed from the request.
    pub stack_id: String,
    /// Echoed from the request.
    pub request_id: String,
    /// Echoed from the request.
    pub logical_resource_id: String,
    /// Outputs available to the template with `Fn::GetAtt`.
    pub data: serde_json::Map<String, Value>,
}

/// Whether an event is a custom-resource request: `Some` when it carries a
/// `ResponseURL` (then it must be answered), with the request if it parses.
pub fn parse(event: &Value) -> Option<Result<Request, String>> {
    event.get("ResponseURL")?;
    Some(serde_json::from_value(event.clone()).map_err(|e| e.to_string()))
}

/// Handles a request: migrates for `Create`/`Update` (within `time_left`,
/// so that there is time to answer), then answers CloudFormation.
pub async fn handle<F, E>(
    request: &Request,
    migrate: F,
    time_left: Duration,
    client: &reqwest::Client,
) -> Response
where
    F: Future<Output = Result<Report, E>>,
    E: std::fmt::Display,
{
    let response = match request.request_type.as_str() {
        "Delete" => success(request, serde_json::Map::new()),
        "Create" | "Update" => {
            let run = AssertUnwindSafe(migrate).catch_unwind();
            match tokio::time::timeout(time_left, run).await {
                Ok(Ok(Ok(report))) => success(request, report_data(&report)),
                Ok(Ok(Err(error))) => failure(request, &error.to_string()),
                Ok(Err(_panic)) => failure(request, "the migration function panicked"),
                Err(_) => failure(
                    request,
                    "the migration did not finish within the function's time limit",
                ),
            }
        }
        other => failure(request, &format!("unknown RequestType {other:?}")),
    };
    send(client, &request.response_url, &response).await;
    response
}

/// Answers a request that has a `ResponseURL` but does not parse, so that
/// the stack does not hang waiting for it.
pub async fn answer_malformed(event: &Value, error: &str, client: &reqwest::Client) {
    let field = |name: &str| {
        event
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let Some(url) = event.get("ResponseURL").and_then(Value::as_str) else {
        return;
    };
    let response = Response {
        status: "FAILED",
        reason: Some(truncate(&format!(
            "malformed custom resource request: {error}"
        ))),
        physical_resource_id: PHYSICAL_RESOURCE_ID.to_owned(),
        stack_id: field("StackId"),
        request_id: field("RequestId"),
        logical_resource_id: field("LogicalResourceId"),
        data: serde_json::Map::new(),
    };
    send(client, url, &response).await;
}

fn report_data(report: &Report) -> serde_json::Map<String, Value> {
    let mut data = serde_json::Map::new();
    data.insert("Applied".into(), report.applied.len().to_string().into());
    data.insert(
        "AlreadyApplied".into(),
        report.already_applied.to_string().into(),
    );
    data
}

fn success(request: &Request, data: serde_json::Map<String, Value>) -> Response {
    Response {
        status: "SUCCESS",
        reason: None,
        physical_resource_id: physical_id(request),
        stack_id: request.stack_id.clone(),
        request_id: request.request_id.clone(),
        logical_resource_id: request.logical_resource_id.clone(),
        data,
    }
}

fn failure(request: &Request, reason: &str) -> Response {
    tracing::error!(reason, request_type = %request.request_type, "custom resource failed");
    Response {
        status: "FAILED",
        reason: Some(truncate(reason)),
        ..success(request, serde_json::Map::new())
    }
}

fn physical_id(request: &Request) -> String {
    request
        .physical_resource_id
        .clone()
        .unwrap_or_else(|| PHYSICAL_RESOURCE_ID.to_owned())
}

fn truncate(reason: &str) -> String {
    if reason.len() <= MAX_REASON_LEN {
        return reason.to_owned();
    }
    let cut = (0..=MAX_REASON_LEN)
        .rev()
        .find(|&i| reason.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}…", &reason[..cut])
}

/// PUTs the answer, retrying a few times: CloudFormation hears nothing else.
async fn send(client: &reqwest::Client, url: &str, response: &Response) {
    let body = match serde_json::to_vec(response) {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, "could not serialise the custom resource response");
            return;
        }
    };
    for attempt in 1..=3 {
        // The URL is pre-signed for a PUT without a content type.
        let result = client
            .put(url)
            .header(reqwest::header::CONTENT_TYPE, "")
            .body(body.clone())
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        match result {
            Ok(_) => {
                tracing::info!(status = response.status, "answered CloudFormation");
                return;
            }
            Err(error) => {
                // reqwest's error text may contain the pre-signed URL; keep
                // only its kind.
                tracing::warn!(
                    attempt,
                    status = error.status().map(|s| s.as_u16()),
                    timeout = error.is_timeout(),
                    connect = error.is_connect(),
                    "answering CloudFormation failed"
                );
                tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
            }
        }
    }
    tracing::error!("could not answer CloudFormation: the stack will wait until it times out");
}
