//! `with_db_cleanup`: the wrapper every HTTP handler goes through.
//!
//! The Node.js design's `withDbCleanup(handler)` runs the handler and, in `finally`,
//! releases its connection. Here the cleanup is structural: whatever way
//! the handler ends (a response, an error, a panic, or its deadline), the
//! wrapper
//!
//! 1. turns the outcome into a response (errors in the upstream format; a
//!    panic into a generic 500; a deadline into a 503),
//! 2. calls [`release_connection`](super::release_connection), and
//! 3. ends the invocation, which checks, once returns have settled, that no
//!    connection is still checked out (a leak), and reports it if one is.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::FutureExt;
use http::Response;
use lambda_http::{Request, RequestExt, Service, service_fn};

use super::release_connection;
use crate::AppState;
use crate::http::{ApiError, ApiResult};

/// Time kept back from Lambda's own deadline, so that a handler cut off by
/// it still gets its 503 out before Lambda kills the invocation.
const LAMBDA_DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// Wraps `handler` into the service that the Lambda runtime (or a test)
/// calls: every invocation runs through [`run_with_cleanup`] with `state`.
///
/// The handler receives the request and the state, and answers a response
/// or an [`ApiError`]; the service itself never fails.
pub fn with_db_cleanup<H, Fut, B>(
    state: AppState,
    handler: H,
) -> impl Service<
    Request,
    Response = Response<B>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<B>, Infallible>> + Send,
> + Clone
+ Send
+ 'static
where
    H: Fn(Request, AppState) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ApiResult<Response<B>>> + Send + 'static,
    B: From<String> + Send + 'static,
{
    service_fn(move |request: Request| {
        let state = state.clone();
        let handler = handler.clone();
        async move { Ok(run_with_cleanup(&state, request, handler).await) }
    })
}

/// Runs one invocation of `handler` with the cleanup described in the
/// module docs. Tests call it directly, with a pool of their own.
pub async fn run_with_cleanup<H, Fut, B>(
    state: &AppState,
    request: Request,
    handler: H,
) -> Response<B>
where
    H: FnOnce(Request, AppState) -> Fut,
    Fut: Future<Output = ApiResult<Response<B>>> + Send,
    B: From<String>,
{
    let invocation = state.db.begin_invocation("http");
    let budget = time_budget(&request, state.config.handler_timeout);
    let request_id = request
        .lambda_context_ref()
        .map(|context| context.request_id.clone());

    let mut work = Box::pin(AssertUnwindSafe(handler(request, state.clone())).catch_unwind());
    let outcome = tokio::select! {
        outcome = &mut work => Some(outcome),
        () = tokio::time::sleep(budget) => None,
    };
    if outcome.is_none() {
        // Mark before dropping the handler: the connections it drops now
        // may be mid-query, and must be drained with a bound.
        state.db.note_abandoned();
    }
    drop(work);

    let response = match outcome {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(error))) => error.into_response(),
        Some(Err(panic)) => {
            tracing::error!(
                request_id,
                panic = panic_message(panic.as_ref()),
                "handler panicked"
            );
            ApiError::internal("the handler panicked").into_response()
        }
        None => {
            tracing::error!(
                request_id,
                budget_ms = budget.as_millis() as u64,
                "handler cut off by its deadline"
            );
            ApiError::unavailable("the handler did not finish within its time budget")
                .into_response()
        }
    };

    release_connection().await;
    drop(invocation);
    response
}

/// How long the handler may run: the configured timeout, or what Lambda
/// leaves of the invocation, whichever is shorter.
fn time_budget(request: &Request, configured: Duration) -> Duration {
    let deadline_ms = request.lambda_context_ref().map_or(0, |c| c.deadline);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    // Lambda gives a wall-clock deadline. A deadline already past is no
    // deadline at all: some local emulators (`cargo lambda watch`) send a
    // duration there instead, and Lambda itself would have ended us.
    if deadline_ms <= now_ms {
        return configured;
    }
    let left = Duration::from_millis(deadline_ms - now_ms);
    configured.min(left.saturating_sub(LAMBDA_DEADLINE_MARGIN))
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    if let Some(message) = panic.downcast_ref::<&str>() {
        message
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message
    } else {
        "(no message)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_runtime::Context;

    fn with_deadline(deadline_ms: u64) -> Request {
        let mut context = Context::default();
        context.deadline = deadline_ms;
        Request::default().with_lambda_context(context)
    }

    fn now_ms() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    const CONFIGURED: Duration = Duration::from_secs(25);

    #[test]
    fn without_a_lambda_context_the_configured_timeout_applies() {
        assert_eq!(time_budget(&Request::default(), CONFIGURED), CONFIGURED);
    }

    #[test]
    fn a_near_lambda_deadline_shortens_the_budget_and_keeps_a_margin() {
        let budget = time_budget(&with_deadline(now_ms() + 3_000), CONFIGURED);
        assert!(
            budget <= Duration::from_millis(2_500) && budget > Duration::from_millis(2_000),
            "{budget:?}"
        );
        let far = time_budget(&with_deadline(now_ms() + 900_000), CONFIGURED);
        assert_eq!(far, CONFIGURED);
    }

    #[test]
    fn a_deadline_in_the_past_is_ignored_as_cargo_lambda_watch_sends_one() {
        // cargo lambda watch sends `lambda-runtime-deadline-ms: 600000`.
        assert_eq!(time_budget(&with_deadline(600_000), CONFIGURED), CONFIGURED);
    }
}
