//! Taking the migration lock without waiting inside a statement.
//!
//! sqlx's migrator serialises runs with a session advisory lock, taken with
//! a blocking `pg_advisory_lock`. A run waiting there holds a snapshot, and
//! `CREATE INDEX CONCURRENTLY` in the run that holds the lock waits for
//! every older snapshot to go: the two wait for each other, and PostgreSQL
//! ends the waiting run with "deadlock detected". So we take the same lock
//! first, by polling `pg_try_advisory_lock` (no snapshot is held between
//! attempts), bounded; the migrator's own `pg_advisory_lock` then returns at
//! once, advisory locks nesting within a session.

use std::time::{Duration, Instant};

use sqlx::PgConnection;

use super::MigrateError;

/// The migrator's lock id for `database`: the formula of sqlx-postgres
/// (`generate_lock_id`), which is not public. `tests/tests/migrate.rs`
/// checks that the two agree.
pub fn lock_id(database: &str) -> i64 {
    const CRC_IEEE: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    0x3d32_ad9e * i64::from(CRC_IEEE.checksum(database.as_bytes()))
}

/// Takes the migration lock of the connection's database, waiting at most
/// `bound` for another run to release it.
pub(crate) async fn acquire(conn: &mut PgConnection, bound: Duration) -> Result<(), MigrateError> {
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut *conn)
        .await
        .map_err(MigrateError::sql("read the database name"))?;
    let id = lock_id(&database);
    let started = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(id)
            .fetch_one(&mut *conn)
            .await
            .map_err(MigrateError::sql("take the migration lock"))?;
        if taken {
            return Ok(());
        }
        if started.elapsed() >= bound {
            return Err(MigrateError::LockTimeout(bound));
        }
        tracing::info!("another migration run holds the lock; waiting");
        tokio::time::sleep(pause.min(bound.saturating_sub(started.elapsed()))).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}
