//! Recovery from an index build that failed half-way.
//!
//! Our index migrations use `CREATE INDEX CONCURRENTLY IF NOT EXISTS`, so
//! that a deploy onto a busy database does not block its writes. When such a
//! build fails (a lock timeout, a deploy cancelled), PostgreSQL leaves the
//! index behind, marked invalid, and the migration unrecorded. Re-running it
//! would then find the name taken, skip the build, and record the migration
//! as applied with a useless index. So before migrating, an invalid index
//! that a *pending* migration creates is dropped, and the migration builds it
//! afresh. Nothing an applied migration made is ever touched, and no other
//! run can be building it: we hold the migration lock.

use std::collections::HashSet;

use sqlx::PgConnection;
use sqlx::migrate::Migrator;

use super::MigrateError;

const MARKER: &str = "CREATE INDEX CONCURRENTLY IF NOT EXISTS";

/// The index names that pending migrations build concurrently.
fn pending_concurrent_indexes(migrator: &Migrator, applied: &HashSet<i64>) -> Vec<String> {
    migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration() && !applied.contains(&m.version))
        .flat_map(|m| index_names(m.sql.as_str()))
        .collect()
}

/// The quoted names following each `CREATE INDEX CONCURRENTLY IF NOT EXISTS`.
fn index_names(sql: &str) -> Vec<String> {
    sql.match_indices(MARKER)
        .filter_map(|(at, _)| {
            let rest = sql[at + MARKER.len()..].trim_start();
            let rest = rest.strip_prefix('"')?;
            rest.split_once('"').map(|(name, _)| name.to_owned())
        })
        .collect()
}

pub(crate) async fn drop_invalid_leftovers(
    conn: &mut PgConnection,
    migrator: &Migrator,
    applied: &HashSet<i64>,
) -> Result<(), MigrateError> {
    let names = pending_concurrent_indexes(migrator, applied);
    if names.is_empty() {
        return Ok(());
    }
    let invalid: Vec<String> = sqlx::query_scalar(
        r#"SELECT c.relname::text
           FROM pg_index i
           JOIN pg_class c ON c.oid = i.indexrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE NOT i.indisvalid AND n.nspname = current_schema() AND c.relname = ANY($1)"#,
    )
    .bind(&names)
    .fetch_all(&mut *conn)
    .await
    .map_err(MigrateError::sql("look for invalid indexes"))?;
    for name in invalid {
        tracing::warn!(index = %name, "dropping an invalid index left by a failed build");
        // The name comes from pg_class and from our own migrations; quote it
        // as an identifier all the same.
        let statement = format!(
            "DROP INDEX CONCURRENTLY IF EXISTS \"{}\"",
            name.replace('"', "\"\"")
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut *conn)
            .await
            .map_err(MigrateError::sql("drop an invalid index"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_index_names_our_migrations_build() {
        let sql = "-- no-transaction\n-- a comment\nCREATE INDEX CONCURRENTLY IF NOT EXISTS \"Chat_x_idx\"\n ON \"Chat\" (id);";
        assert_eq!(index_names(sql), vec!["Chat_x_idx".to_owned()]);
        assert!(index_names("CREATE TABLE \"x\" (id int);").is_empty());
    }

    #[test]
    fn every_concurrent_index_migration_is_recognised() {
        let all = pending_concurrent_indexes(&crate::MIGRATOR, &HashSet::new());
        let concurrent = crate::MIGRATOR
            .iter()
            .filter(|m| m.sql.as_str().contains("CONCURRENTLY"))
            .count();
        assert_eq!(all.len(), concurrent, "{all:?}");
        assert!(all.contains(&"Chat_userId_createdAt_id_idx".to_owned()));
    }
}
