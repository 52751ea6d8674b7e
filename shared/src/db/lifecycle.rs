//! The Node.js design's connection helpers: release, its old alias, and close-all.

use std::time::{Duration, Instant};

use super::{Db, global};

/// The bound on closing the pool, as the Node.js design's `end({ timeout: 5 })`.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long closing first waits for running invocations to end in order
/// (a stream saving the reply it was cut short in). Lambda gives a
/// function with an internal extension 500 ms between SIGTERM and its
/// kill; this leaves the rest of them to close the connections.
pub const WIND_DOWN: Duration = Duration::from_millis(300);

/// The Node.js design's `releaseConnection()`. Connections go back to the pool when
/// their handle is dropped, so there is nothing to do but say so; the
/// cleanup wrapper calls it after every handler, on every path, and then
/// checks that the connections really did go back.
pub async fn release_connection() {
    tracing::debug!("Connection released back to the pool");
}

/// The Node.js design's `closeDbConnection`, kept for callers written against that
/// name: the same as [`release_connection`].
pub use self::release_connection as close_db_connection;

/// The Node.js design's `closeAllConnections()`: closes the process's pool, waiting at
/// most 5 seconds for checked-out connections to come back, and logs the
/// outcome. Idempotent; a request after it gets a clean "unavailable" error.
/// Called by the shutdown hook that every function registers.
pub async fn close_all_connections() {
    match global::get() {
        Ok(db) => db.close_within(CLOSE_TIMEOUT).await,
        Err(_) => tracing::debug!("no database pool to close"),
    }
}

impl Db {
    /// Closes this pool, waiting at most `bound` for checked-out connections,
    /// and logs the outcome. Idempotent.
    ///
    /// First it tells running work that the process is stopping
    /// ([`Db::shutting_down`]) and gives it [`WIND_DOWN`] (within `bound`)
    /// to end in order: a stream cut short then saves its reply while the
    /// pool can still take the write.
    pub async fn close_within(&self, bound: Duration) {
        if self.raw_pool().is_closed() && self.size() == 0 {
            tracing::debug!("database pool already closed");
            return;
        }
        let start = Instant::now();
        self.begin_shutdown();
        let still_running = self.wait_for_invocations(WIND_DOWN.min(bound)).await;
        if still_running > 0 {
            tracing::warn!(
                still_running,
                "closing the pool with invocations still running"
            );
        }
        // sqlx's close() waits for every checked-out connection before it
        // closes the idle ones; close those first, so that a straggler
        // cannot keep them open.
        self.close_idle().await;
        let remaining = bound.saturating_sub(start.elapsed());
        match tokio::time::timeout(remaining, self.raw_pool().close()).await {
            Ok(()) => tracing::info!("All database connections closed successfully"),
            Err(_) => tracing::error!(
                still_checked_out = self.checked_out(),
                bound_ms = bound.as_millis() as u64,
                "Error closing all database connections: some were still checked out"
            ),
        }
    }
}
