//! `with_db_cleanup`: the wrapper every HTTP handler goes through.
//!
//! The Node.js design's `withDbCleanup(handler)` runs the handler and, in
//! `finally`, releases its connection. Here the cleanup is structural:
//! each invocation gets a unit of work of its own ([`Work`]), and whatever
//! way the handler ends (a response, an error, a panic, or its deadline),
//! the wrapper
//!
//! 1. ends the unit of work by the outcome: commits what the handler wrote
//!    if it answered `Ok`, rolls it back otherwise (a failed commit turns
//!    the answer into an error: the client is never told that something
//!    was written when it was not);
//! 2. turns the outcome into a response (errors in the upstream format; a
//!    panic into a generic 500; a deadline into a 503);
//! 3. calls [`release_connection`], and
//! 4. ends the invocation, which checks, once returns have settled, that no
//!    connection is still checked out (a leak), and reports it if one is.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use http::Response;
use lambda_http::{Request, RequestExt, Service, service_fn};
use tokio::time::Instant;

use super::deadline;
use crate::db::{Outcome, Work, release_connection};
use crate::http::{ApiError, ApiResult, AppState, DbContext};

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

/// How a handler ended.
enum Ended<B> {
    Answered(ApiResult<Response<B>>),
    Panicked(String),
    CutOff(Duration),
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
    let deadline = Instant::now() + budget;
    let work = Work::begin(&state.db);
    // Boxed: a handler's future can be deep (a chat turn), and the
    // runtime's own service stack nests this one again.
    let handler = Box::pin(handler(request, state.with_work(work.clone())));
    let ended = run_within(handler, budget).await;
    if matches!(ended, Ended::CutOff(_)) {
        // Mark before the connections it dropped are drained: they may be
        // mid-query, and must be drained with a bound.
        state.db.note_abandoned();
    }
    let ended = end_work(&work, ended, deadline).await;
    let response = respond(ended);
    drop(work);
    release_connection().await;
    drop(invocation);
    response
}

/// Runs the handler for at most `budget`, catching a panic.
async fn run_within<B, Fut>(handler: Fut, budget: Duration) -> Ended<B>
where
    Fut: Future<Output = ApiResult<Response<B>>> + Send,
{
    let work = AssertUnwindSafe(handler).catch_unwind();
    match tokio::time::timeout(budget, work).await {
        Ok(Ok(answer)) => Ended::Answered(answer),
        Ok(Err(panic)) => Ended::Panicked(panic_message(panic.as_ref()).to_owned()),
        Err(_) => Ended::CutOff(budget),
    }
}

/// Commits the invocation's work if the handler answered `Ok`, rolls it
/// back otherwise. The commit is bounded by what is left of the handler's
/// budget.
async fn end_work<B>(work: &Work, ended: Ended<B>, deadline: Instant) -> Ended<B> {
    let Ended::Answered(Ok(response)) = ended else {
        // Cannot fail: a rollback is queued, not awaited.
        let _ = work.end(Outcome::RollBack).await;
        return ended;
    };
    let commit = tokio::time::timeout_at(deadline, work.end(Outcome::Commit));
    match commit.await {
        Ok(committed) => Ended::Answered(
            committed
                .context("commit the invocation's work")
                .map(|()| response),
        ),
        Err(_) => Ended::Answered(Err(ApiError::unavailable(
            "the commit did not finish within the handler's time budget",
        ))),
    }
}

fn respond<B: From<String>>(ended: Ended<B>) -> Response<B> {
    match ended {
        Ended::Answered(Ok(response)) => response,
        Ended::Answered(Err(error)) => error.into_response(),
        Ended::Panicked(panic) => {
            tracing::error!(panic, "handler panicked");
            ApiError::internal("the handler panicked").into_response()
        }
        Ended::CutOff(budget) => {
            tracing::error!(
                budget_ms = budget.as_millis() as u64,
                "handler cut off by its deadline"
            );
            ApiError::unavailable("the handler did not finish within its time budget")
                .into_response()
        }
    }
}

/// How long the handler may run: the configured timeout, or what Lambda
/// leaves of the invocation, whichever is shorter.
fn time_budget(request: &Request, configured: Duration) -> Duration {
    let deadline_ms = request.lambda_context_ref().map_or(0, |c| c.deadline);
    deadline::budget(deadline_ms, configured)
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
