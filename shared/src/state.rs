//! What a handler is given: the pool and the configuration.

use std::sync::Arc;

use crate::config::Config;
use crate::db::Db;

/// Everything a handler needs from its process, cheap to clone (two `Arc`s).
///
/// The wrapper hands one to every invocation, so handlers never touch the
/// global pool and tests can run them against a pool of their own.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The function's connection pool.
    pub db: Db,
    /// The function's configuration, read once at start.
    pub config: Arc<Config>,
}

impl AppState {
    /// Bundles a pool and a configuration.
    pub fn new(db: Db, config: Config) -> Self {
        Self {
            db,
            config: Arc::new(config),
        }
    }
}
