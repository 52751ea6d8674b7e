//! The process-wide pool: the Node.js design's one shared client, in a `once_cell`.
//!
//! Only the edge touches it: `runtime` builds it at start and hands clones
//! of the [`Db`] to the cleanup wrapper, and [`super::close_all_connections`]
//! closes it at shutdown. Everything below takes the pool as a parameter,
//! which is what lets each test run on a pool (and a runtime) of its own.
//! Access returns `Result`; nothing here panics.

use once_cell::sync::OnceCell;

use super::Db;
use crate::config::DbConfig;

static GLOBAL: OnceCell<Db> = OnceCell::new();

/// Why the global pool is not available.
#[derive(Debug, thiserror::Error)]
pub enum GlobalPoolError {
    /// [`init`] was never called in this process.
    #[error("the database pool has not been initialised")]
    NotInitialised,
    /// [`init`] was called outside a Tokio runtime, where sqlx cannot spawn
    /// the pool's maintenance task.
    #[error("the database pool must be built inside a Tokio runtime")]
    NoRuntime,
}

/// Builds the process's pool from `config` on the first call, inside the
/// current Tokio runtime; later calls return the same pool, whatever their
/// config. No connection is opened until a handler needs one.
pub fn init(config: &DbConfig) -> Result<&'static Db, GlobalPoolError> {
    GLOBAL.get_or_try_init(|| {
        tokio::runtime::Handle::try_current().map_err(|_| GlobalPoolError::NoRuntime)?;
        let db = Db::connect_lazy(config);
        tracing::info!(
            max_connections = config.pool_max.max,
            why = config.pool_max.reason,
            idle_timeout_s = config.idle_timeout.as_secs(),
            connect_timeout_s = config.connect_timeout.as_secs(),
            database = config.redacted_url(),
            application_name = %config.application_name,
            "database pool ready (connects on first use)"
        );
        Ok(db)
    })
}

/// The process's pool, if [`init`] has built it.
pub fn get() -> Result<&'static Db, GlobalPoolError> {
    GLOBAL.get().ok_or(GlobalPoolError::NotInitialised)
}
