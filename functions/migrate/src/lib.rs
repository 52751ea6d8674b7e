//! The migration function: applies the SQL migrations in `migrations/`
//! (embedded at build time) to the database.
//!
//! As the design document's `migrate.ts`, it never uses the pool: it opens
//! its own single connection, bounds every statement and lock wait on it,
//! and closes it on every path, success or failure (then logs "Migration
//! database connection closed"). Closing the connection is also what frees
//! the session advisory lock that sqlx's migrator takes (and does not
//! release when a migration fails), so a failed run never blocks the next.
//! Two runs started at once serialise on that lock and both succeed.
//!
//! It serves three ways (see `main.rs`):
//! - [`migrate`] as a plain command (`cargo run -p migrate`);
//! - invoked directly as a Lambda function, answering a [`Report`];
//! - as a CloudFormation custom resource ([`custom_resource`]), so that a
//!   deploy whose migration fails, fails and rolls back.

pub mod custom_resource;
mod indexes;
mod lock;

pub use lock::lock_id;

use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use shared::config::{ConfigError, MigrateConfig};
use sqlx::migrate::{Migrate, Migrator};
use sqlx::{Connection, PgConnection};

/// The project's migrations, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Migrations this run applied, in order.
    pub applied: Vec<AppliedMigration>,
    /// How many of the known migrations were applied before this run.
    pub already_applied: usize,
    /// How long the run took, connection included.
    pub elapsed_ms: u64,
}

/// One migration applied by a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppliedMigration {
    /// Its version (the file name's number).
    pub version: i64,
    /// Its description (the rest of the file name).
    pub description: String,
}

/// Why a run failed. The messages never contain the database URL.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// No connection within the connect timeout.
    #[error("could not connect to the database within {0:?}")]
    ConnectTimeout(Duration),
    /// The connection attempt failed.
    #[error("could not connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    /// A statement of our own (settings, locking, bookkeeping) failed.
    #[error("failed to {what}: {source}")]
    Sql {
        /// What we were doing.
        what: &'static str,
        /// The error.
        #[source]
        source: sqlx::Error,
    },
    /// Another run held the migration lock for longer than the bound.
    #[error("another migration run held the migration lock for longer than {0:?}")]
    LockTimeout(Duration),
    /// A migration failed, or the database's migration history does not
    /// match the migrations we carry.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl MigrateError {
    fn sql(what: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Sql { what, source }
    }
}

/// Applies `migrator`'s pending migrations on a connection of its own (see
/// the crate docs), and reports what it did.
pub async fn migrate(config: &MigrateConfig, migrator: &Migrator) -> Result<Report, MigrateError> {
    let started = Instant::now();
    let mut conn = connect(config).await?;
    let outcome = run_on(&mut conn, config, migrator).await;
    close(conn).await;
    let (applied, already_applied) = outcome?;
    let report = Report {
        applied,
        already_applied,
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    tracing::info!(
        applied = report.applied.len(),
        already_applied = report.already_applied,
        elapsed_ms = report.elapsed_ms,
        "migrations complete"
    );
    Ok(report)
}

/// The HTTP client that answers CloudFormation (an HTTPS PUT to S3), built
/// on first use: building it reads the system's CA certificates (some 3 ms,
/// the larger part of this function's init), which a direct invocation
/// never needs.
#[derive(Debug, Default)]
pub struct AnswerClient(OnceLock<reqwest::Client>);

impl AnswerClient {
    /// The client, built the first time.
    pub fn get(&self) -> Result<&reqwest::Client, reqwest::Error> {
        if let Some(client) = self.0.get() {
            return Ok(client);
        }
        // rustls needs its crypto provider chosen once per process; ring is
        // the one the whole workspace uses (sqlx's TLS too).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(self.0.get_or_init(|| client))
    }
}

/// Time kept, of what the invocation has left, for the answer to
/// CloudFormation: the HTTP client's own 10 s bound, and room to spare.
const ANSWER_TIME: Duration = Duration::from_secs(15);

/// Serves one Lambda invocation: a CloudFormation custom-resource request
/// (always answered, see [`custom_resource`]), or a direct invocation,
/// which answers the [`Report`] or fails.
///
/// `config` is passed as read, error included: a custom resource must be
/// answered even when the function is misconfigured.
pub async fn handle_invocation(
    config: Result<&MigrateConfig, &ConfigError>,
    client: &AnswerClient,
    event: Value,
    time_left: Duration,
) -> Result<Value, MigrateFailure> {
    let Some(parsed) = custom_resource::parse(&event) else {
        let config = config.map_err(|e| MigrateFailure::Config(e.to_string()))?;
        let report = migrate(config, &MIGRATOR).await?;
        return serde_json::to_value(report).map_err(|e| MigrateFailure::Config(e.to_string()));
    };
    // Without a client CloudFormation cannot be answered at all.
    let client = client.get().map_err(|error| {
        MigrateFailure::Config(format!("could not build the HTTP client: {error}"))
    })?;
    match parsed {
        Ok(request) => {
            let budget = time_left.saturating_sub(ANSWER_TIME);
            let run = async {
                let config = config.map_err(|e| MigrateFailure::Config(e.to_string()))?;
                migrate(config, &MIGRATOR)
                    .await
                    .map_err(MigrateFailure::Migrate)
            };
            let response = custom_resource::handle(&request, run, budget, client).await;
            serde_json::to_value(response).map_err(|e| MigrateFailure::Config(e.to_string()))
        }
        Err(error) => {
            custom_resource::answer_malformed(&event, &error, client).await;
            Err(MigrateFailure::Config(format!(
                "malformed custom resource request: {error}"
            )))
        }
    }
}

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateFailure {
    /// The function is misconfigured, or the event is unusable.
    #[error("{0}")]
    Config(String),
    /// The migration itself failed.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
}

impl From<MigrateFailure> for lambda_runtime::Diagnostic {
    fn from(failure: MigrateFailure) -> Self {
        let error_type = match failure {
            MigrateFailure::Config(_) => "MigrateConfigError",
            MigrateFailure::Migrate(_) => "MigrateError",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_owned(),
            error_message: failure.to_string(),
        }
    }
}

async fn connect(config: &MigrateConfig) -> Result<PgConnection, MigrateError> {
    let bound = config.db.connect_timeout;
    tracing::info!(
        database = config.db.redacted_url(),
        "connecting to run migrations"
    );
    tokio::time::timeout(bound, async {
        // The password may come from Secrets Manager or an IAM token.
        let options = shared::db::rotation::connect_options_now(&config.db)
            .await
            .map_err(|error| MigrateError::Connect(error.into()))?;
        PgConnection::connect_with(&options)
            .await
            .map_err(MigrateError::Connect)
    })
    .await
    .map_err(|_| MigrateError::ConnectTimeout(bound))?
}

/// Closes the migration connection, bounded: a graceful close is a write,
/// but a wedged socket must not keep the function from answering.
async fn close(conn: PgConnection) {
    match tokio::time::timeout(Duration::from_secs(5), conn.close()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "closing the migration connection failed"),
        Err(_) => tracing::warn!("closing the migration connection timed out; dropped it"),
    }
    tracing::info!("Migration database connection closed");
}

async fn run_on(
    conn: &mut PgConnection,
    config: &MigrateConfig,
    migrator: &Migrator,
) -> Result<(Vec<AppliedMigration>, usize), MigrateError> {
    set(conn, "statement_timeout", config.statement_timeout).await?;
    set(conn, "lock_timeout", config.lock_timeout).await?;
    // Another run may be migrating: wait for it as long as a statement may
    // take, since its statements are what we wait for.
    lock::acquire(conn, config.statement_timeout).await?;

    // Under our lock, the list of applied migrations cannot change except
    // by our own hand: the difference before and after is what we did.
    conn.ensure_migrations_table("_sqlx_migrations").await?;
    let before: HashSet<i64> = applied_versions(conn).await?;
    indexes::drop_invalid_leftovers(conn, migrator, &before).await?;
    // The migrator takes the lock again (it nests, so at once) and releases
    // it once; ours is released below, or by closing the connection.
    migrator.run(&mut *conn).await?;
    let after = applied_versions(conn).await?;
    conn.unlock().await?;

    let applied = migrator
        .iter()
        .filter(|m| after.contains(&m.version) && !before.contains(&m.version))
        .map(|m| AppliedMigration {
            version: m.version,
            description: m.description.to_string(),
        })
        .collect();
    let already = migrator
        .iter()
        .filter(|m| before.contains(&m.version))
        .count();
    Ok((applied, already))
}

async fn applied_versions(conn: &mut PgConnection) -> Result<HashSet<i64>, MigrateError> {
    Ok(conn
        .list_applied_migrations("_sqlx_migrations")
        .await?
        .into_iter()
        .map(|m| m.version)
        .collect())
}

async fn set(
    conn: &mut PgConnection,
    setting: &'static str,
    value: Duration,
) -> Result<(), MigrateError> {
    sqlx::query("SELECT set_config($1, $2, false)")
        .bind(setting)
        .bind(format!("{}ms", value.as_millis()))
        .execute(conn)
        .await
        .map_err(MigrateError::sql("set the migration connection's timeouts"))?;
    Ok(())
}
