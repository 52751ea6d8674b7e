//! The migrate function's configuration.

use std::time::Duration;

use super::{ConfigError, DbConfig, Env};

/// The migrate function's configuration: its own connection (never the
/// pool) and the bounds it sets on it.
#[derive(Debug, Clone)]
pub struct MigrateConfig {
    /// Where the database is. Its `application_name` is
    /// `chat-backend:migrate`; pool settings do not apply.
    pub db: DbConfig,
    /// Bound on each migration statement, and on waiting for another
    /// migration run to finish (`MIGRATE_STATEMENT_TIMEOUT_SECS`, 600:
    /// index builds on a large database take a while, and Lambda allows 900).
    pub statement_timeout: Duration,
    /// Bound on waiting for a table lock held by the running application
    /// (`MIGRATE_LOCK_TIMEOUT_SECS`, 10), so that a migration never queues
    /// every request behind it for long.
    pub lock_timeout: Duration,
}

impl MigrateConfig {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (a stand-in for the
    /// environment in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        Ok(Self {
            db: DbConfig::read("migrate", &env)?,
            statement_timeout: env.secs_nonzero("MIGRATE_STATEMENT_TIMEOUT_SECS", 600)?,
            lock_timeout: env.secs_nonzero("MIGRATE_LOCK_TIMEOUT_SECS", 10)?,
        })
    }
}
