//! Statements, prepared as the path to the database allows.
//!
//! sqlx prepares every statement under a name and keeps it for the life of
//! the connection, which saves a round trip each time a statement runs
//! again. Behind a transaction-mode pooler (PgBouncer, RDS Proxy) a client
//! connection is not a server connection: a name prepared on one server
//! connection is unknown on the next, and a statement sqlx never closes
//! stays behind on whichever server it landed (sqlx's statement cache of
//! size 0 does exactly that). So in pooler mode ([`use_named_statements`]
//! off) every statement is prepared unnamed, which lives only until the
//! next one, and [`super::Session`] runs each invocation's statements in
//! one transaction, so that the pooler keeps them on one server connection.
//!
//! Every query in `queries` goes through these functions rather than
//! sqlx's own, so the choice is made in one place, once per process, from
//! `DB_POOLER`.

use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::postgres::PgArguments;
use sqlx::query::{Query, QueryAs, QueryScalar};
use sqlx::{FromRow, Postgres};

static NAMED: AtomicBool = AtomicBool::new(true);

/// Whether statements are prepared under names and kept (the default), or
/// prepared unnamed for a transaction-mode pooler. A process talks to one
/// database through one path, so this is set once, when its pool is built.
pub fn use_named_statements(named: bool) {
    NAMED.store(named, Ordering::Relaxed);
}

/// Whether statements are prepared under names.
pub fn named_statements() -> bool {
    NAMED.load(Ordering::Relaxed)
}

/// `sqlx::query`, prepared as the path allows.
pub fn query(sql: &'static str) -> Query<'static, Postgres, PgArguments> {
    sqlx::query(sql).persistent(named_statements())
}

/// `sqlx::query_as`, prepared as the path allows.
pub fn query_as<O>(sql: &'static str) -> QueryAs<'static, Postgres, O, PgArguments>
where
    O: for<'r> FromRow<'r, sqlx::postgres::PgRow>,
{
    sqlx::query_as(sql).persistent(named_statements())
}

/// `sqlx::query_scalar`, prepared as the path allows.
pub fn query_scalar<O>(sql: &'static str) -> QueryScalar<'static, Postgres, O, PgArguments>
where
    (O,): for<'r> FromRow<'r, sqlx::postgres::PgRow>,
{
    sqlx::query_scalar(sql).persistent(named_statements())
}
