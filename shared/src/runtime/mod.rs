//! The top layer of `shared`: what every function's `main` calls, and the
//! only module that knows the configuration, the database, the HTTP
//! surface and the Lambda runtime together.
//!
//! ```text
//! mod.rs        run_http / run_http_streaming: the whole life of a function process
//! cleanup       with_db_cleanup: the wrapper every HTTP handler goes through
//! stream_guard  the same cleanup for streamed responses, whatever ends them
//! response_body a streamed body counts as running until the runtime has sent it
//! unit_of_work  a unit of work outside a handler (a stream's end, a tool's write)
//! shutdown      the SIGTERM hook that ends running work and closes the pool
//! snapstart     no open connection in a SnapStart snapshot
//! deadline      how long an invocation may still run (one helper, one margin)
//! ```
//!
//! [`run_http`] is the whole life of an HTTP function process:
//!
//! 1. logging (`AWS_LAMBDA_LOG_LEVEL`/`RUST_LOG`, `AWS_LAMBDA_LOG_FORMAT=JSON`);
//! 2. the configuration, read once; a bad value stops the process at init,
//!    with a message that names the variable;
//! 3. the process's pool ([`crate::db::global`]), connecting on first use,
//!    its size chosen for the concurrency the process will see, and logged;
//! 4. the graceful-shutdown hook: Lambda sends SIGTERM only to functions
//!    with an extension registered, so `spawn_graceful_shutdown_handler`
//!    registers a no-op one, and on SIGTERM (or SIGINT) the hook calls
//!    [`close_all_connections`](crate::db::close_all_connections), then the process exits 0;
//! 5. the pool registered as a SnapStart resource: no open connection is
//!    captured in a snapshot;
//! 6. the Lambda runtime, with every invocation going through
//!    [`with_db_cleanup`]. The concurrent runtime serves
//!    `AWS_LAMBDA_MAX_CONCURRENCY` invocations at once on Lambda Managed
//!    Instances and one at a time elsewhere.

mod cleanup;
pub mod deadline;
mod response_body;
mod shutdown;
mod snapstart;
mod stream_guard;
mod unit_of_work;

use std::future::Future;
use std::sync::Arc;

use http::Response;
use lambda_http::{Body, Request};
use lambda_runtime::layers::TracingLayer;

use crate::config::Config;
use crate::db;
use crate::http::{ApiResult, AppState};

pub use cleanup::{run_with_cleanup, with_db_cleanup};
pub use response_body::RunningBody;
pub use shutdown::register_shutdown_hook;
pub use snapstart::PoolSnapshotGuard;
pub use stream_guard::{StreamEnd, StreamGuard};
pub use unit_of_work::unit_of_work;

/// The error a function's `main` returns.
pub type Error = lambda_http::Error;

/// The variables the Lambda Runtime API client needs; without them
/// `lambda_runtime` would panic, so we say what is missing instead.
const LAMBDA_VARIABLES: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

/// Runs the HTTP function `function` with `handler` until the process is
/// told to stop (see the module docs).
pub async fn run_http<H, Fut>(function: &'static str, handler: H) -> Result<(), Error>
where
    H: Fn(Request, AppState) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ApiResult<Response<Body>>> + Send + 'static,
{
    init_tracing();
    require_lambda_environment(function)?;
    let state = start(function).await?;
    let snapshot_guard = Arc::new(PoolSnapshotGuard(state.db.clone()));
    lambda_http::runtime_concurrent(with_db_cleanup(state, handler))
        // Every invocation in a span carrying its request id (lambda_http's
        // builders leave it out; `lambda_runtime::run` adds it).
        .layer(TracingLayer::new())
        .register_snapstart_resource(snapshot_guard)
        .run_concurrent()
        .await
}

/// Runs an HTTP function whose responses stream (Lambda response
/// streaming): as [`run_http`], with a body that is sent as it is produced.
/// The concurrent streaming runtime serves `AWS_LAMBDA_MAX_CONCURRENCY`
/// streams at once on Lambda Managed Instances, one at a time elsewhere.
pub async fn run_http_streaming<H, Fut, B>(function: &'static str, handler: H) -> Result<(), Error>
where
    H: Fn(Request, AppState) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ApiResult<Response<B>>> + Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + From<String> + Unpin + Send + 'static,
    B::Error: Into<Error> + Send + std::fmt::Debug,
{
    init_tracing();
    require_lambda_environment(function)?;
    let state = start(function).await?;
    let snapshot_guard = Arc::new(PoolSnapshotGuard(state.db.clone()));
    // A shutdown waits for a body until the runtime has sent all of it.
    let handler = move |request: Request, state: AppState| {
        let handler = handler.clone();
        async move {
            let db = state.db.clone();
            let response = handler(request, state).await?;
            Ok(response.map(|body| RunningBody::new(body, &db)))
        }
    };
    lambda_http::streaming_runtime_concurrent(with_db_cleanup(state, handler))
        .layer(TracingLayer::new())
        .register_snapstart_resource(snapshot_guard)
        .run_concurrent()
        .await
}

/// Initialises logging for the process; later calls do nothing, so that a
/// `main` may log before [`run_http`] does.
pub fn init_tracing() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(lambda_runtime::tracing::init_default_subscriber);
}

/// Steps 2 to 4 of the module docs: configuration, pool, shutdown hook.
pub async fn start(function: &'static str) -> Result<AppState, Error> {
    // The hook's registration is a round trip to the Runtime API: it is
    // polled first, so that its request is on its way while the
    // configuration is read and the pool built.
    let ((), state) = tokio::join!(register_shutdown_hook(), async {
        let config = Config::from_env(function).inspect_err(|error| {
            tracing::error!(%error, "invalid configuration");
        })?;
        let db = db::global::init(&config.db)?.clone();
        if config.auth.secret.is_none() {
            tracing::warn!(
                "AUTH_SECRET is not set: bearer tokens are refused, and only API \
                 Gateway authorizer claims identify callers"
            );
        }
        Ok::<_, Error>(AppState::new(db, config))
    });
    state
}

fn require_lambda_environment(function: &str) -> Result<(), Error> {
    let missing: Vec<&str> = LAMBDA_VARIABLES
        .into_iter()
        .filter(|name| std::env::var_os(name).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the {function} function runs inside AWS Lambda or a local emulator \
         (`cargo lambda watch`, see the README); missing: {}",
        missing.join(", ")
    )
    .into())
}
