//! What a handler is given: the pool, the configuration, and its unit of
//! work.

use std::sync::Arc;

use crate::config::Config;
use crate::db::{Conn, Db, Work};

use super::{ApiError, ApiResult, DbContext};

/// Everything a handler needs from its process, cheap to clone.
///
/// The process holds one, built at start ([`AppState::new`]); the runtime
/// gives every invocation its own copy with a fresh unit of work, which it
/// ends when the invocation does (`runtime::cleanup`). So handlers never
/// touch the global pool, never commit, and tests can run them against a
/// pool of their own.
#[derive(Clone)]
pub struct AppState {
    /// The function's connection pool.
    pub db: Db,
    /// The function's configuration, read once at start.
    pub config: Arc<Config>,
    /// The unit of work connections are taken in; `None` in the process's
    /// own copy, which no handler sees.
    work: Option<Arc<Work>>,
}

impl AppState {
    /// Bundles a pool and a configuration.
    pub fn new(db: Db, config: Config) -> Self {
        Self {
            db,
            config: Arc::new(config),
            work: None,
        }
    }

    /// A copy for one unit of work (the runtime's, which ends it).
    pub(crate) fn with_work(&self, work: Arc<Work>) -> Self {
        Self {
            work: Some(work),
            ..self.clone()
        }
    }

    /// The unit of work's connection (see `db::Work`).
    ///
    /// Outside a unit of work there is none to give: that is a bug in the
    /// caller, answered as an internal error rather than a connection that
    /// nothing would commit.
    pub async fn connection(&self) -> ApiResult<Conn> {
        let work = self.work.as_ref().ok_or_else(|| {
            ApiError::internal("a connection was asked for outside a unit of work")
        })?;
        work.connection().await.context("take a connection")
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("db", &self.db)
            .field("config", &self.config)
            .field("in_unit_of_work", &self.work.is_some())
            .finish()
    }
}
