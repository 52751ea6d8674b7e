//! The graceful-shutdown hook: on SIGTERM, running work ends in order and
//! the pool closes.

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;

use crate::db::close_all_connections;

/// Registers the hook that closes every connection on SIGTERM or SIGINT.
///
/// Registration needs a Lambda Runtime API that serves extensions; where it
/// does not (some local emulators), the function still runs, without it.
pub async fn register_shutdown_hook() {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        return;
    }
    let registration = lambda_runtime::spawn_graceful_shutdown_handler(|| async {
        close_all_connections().await;
    });
    if AssertUnwindSafe(registration).catch_unwind().await.is_err() {
        tracing::warn!(
            "could not register the shutdown extension: connections will not be closed on SIGTERM"
        );
    }
}
