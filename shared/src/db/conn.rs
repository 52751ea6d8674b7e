//! A unit of work's connection ([`Conn`]), and transactions on it ([`Tx`]).
//!
//! A [`Conn`] comes only from a unit of work ([`super::Work::connection`]),
//! which hands out at most one at a time: a handler that asked the pool
//! for each statement would wait for its own previous connection's return,
//! or open another.
//!
//! Where the database is reached through a transaction-mode pooler
//! (`DB_POOLER=transaction`), a `Conn` is a transaction: the pooler hands
//! the client a server connection only for the length of a transaction,
//! and statements must stay on one server connection from preparation to
//! execution. Nobody has to remember to commit it: when the handle drops,
//! its open transaction goes back to its unit of work, which commits it if
//! the work succeeded and rolls it back if not ([`super::Work`]).
//! [`Conn::commit`] ends it early, for work that must be durable before
//! the handler goes on (the chat turn, before it streams).
//!
//! The statement naming follows the path, and travels with the handle:
//! directly to PostgreSQL, statements are prepared under names and kept for
//! the life of the connection, which saves a round trip each time one runs
//! again; through a transaction-mode pooler, a name prepared on one server
//! connection is unknown on the next, and a named statement sqlx never
//! closes would stay behind on whichever server it landed, so there every
//! statement is prepared unnamed (it lives until the next one). The query
//! functions in [`super::queries`] take any executor and know nothing of
//! this: `&mut Conn` and `&mut Tx` are executors that apply the choice.

use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use sqlx::error::BoxDynError;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Connection, Either, Execute, Executor, PgConnection, Postgres, Transaction};
use tracing::Instrument;

use super::Work;

/// What a [`Conn`] holds.
pub(super) enum Inner {
    /// Direct to PostgreSQL: statements stand alone (each is its own
    /// transaction unless the handler begins one).
    Plain(PoolConnection<Postgres>),
    /// Through a transaction-mode pooler: the whole unit of work is one
    /// transaction.
    Transaction(Transaction<'static, Postgres>),
}

/// A unit of work's connection (see the module docs).
pub struct Conn {
    /// Always `Some` until dropped or committed.
    inner: Option<Inner>,
    /// Statements are prepared under names (directly to PostgreSQL) or
    /// unnamed (through a transaction-mode pooler).
    named: bool,
    /// The unit of work it belongs to, which ends its transaction.
    work: Arc<Work>,
}

impl Conn {
    pub(super) fn new(inner: Inner, work: Arc<Work>) -> Self {
        Self {
            named: matches!(inner, Inner::Plain(_)),
            inner: Some(inner),
            work,
        }
    }

    /// Commits the work done on this connection now, rather than when the
    /// unit of work ends, and gives the connection back. Only for work that
    /// must be durable before the handler goes on (a chat turn commits
    /// before it waits for the model). Directly to PostgreSQL each
    /// statement has committed already, so this only gives it back.
    pub async fn commit(mut self) -> sqlx::Result<()> {
        match self.inner.take() {
            Some(Inner::Transaction(tx)) => tx.commit().await,
            // Given back by `Drop`, with its bound.
            plain => {
                self.inner = plain;
                Ok(())
            }
        }
    }

    /// Begins a transaction (a savepoint, when the connection already is
    /// one), whose statements are prepared as this connection's are.
    pub async fn begin(&mut self) -> sqlx::Result<Tx<'_>> {
        let named = self.named;
        Ok(Tx {
            tx: self.pg().begin().await?,
            named,
        })
    }

    // `inner` is taken only by `commit` and `drop`, which consume the
    // handle, so while it can be borrowed it is there: this cannot fail.
    fn pg(&mut self) -> &mut PgConnection {
        match self
            .inner
            .as_mut()
            .expect("a connection is used only before it ends")
        {
            Inner::Plain(conn) => conn,
            Inner::Transaction(tx) => tx,
        }
    }
}

/// sqlx gives a dropped connection back from a spawned task that pings it
/// first, with no bound: a path that went silent (a half-open TCP flow, an
/// environment frozen mid-return and thawed with its network gone) would
/// hold the slot until TCP gives up, minutes later, and with a pool of one
/// fail every later invocation. So a plain connection is given back here,
/// through the same return, bounded: past the bound the return is dropped,
/// which closes the socket and frees the slot. An open transaction goes to
/// the unit of work instead, which ends it.
impl Drop for Conn {
    fn drop(&mut self) {
        match self.inner.take() {
            Some(Inner::Plain(conn)) => give_back(conn, &self.work),
            Some(transaction) => self.work.park(transaction),
            None => {}
        }
    }
}

fn give_back(mut conn: PoolConnection<Postgres>, work: &Work) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let db = work.db().clone();
    let bound = db.return_bound();
    let giving_back = conn.return_to_pool();
    db.returning();
    let returning = async move {
        if tokio::time::timeout(bound, giving_back).await.is_err() {
            tracing::warn!(
                bound_ms = bound.as_millis() as u64,
                "a connection did not come back within the bound; closed it"
            );
        }
        db.returned().await;
    };
    runtime.spawn(returning.in_current_span());
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field(
                "transaction",
                &matches!(self.inner, Some(Inner::Transaction(_))),
            )
            .field("named", &self.named)
            .finish()
    }
}

/// A transaction on a [`Conn`]; rolled back if dropped uncommitted.
pub struct Tx<'c> {
    tx: Transaction<'c, Postgres>,
    named: bool,
}

impl Tx<'_> {
    /// Commits it.
    pub async fn commit(self) -> sqlx::Result<()> {
        self.tx.commit().await
    }

    /// Rolls it back.
    pub async fn rollback(self) -> sqlx::Result<()> {
        self.tx.rollback().await
    }

    fn pg(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

impl fmt::Debug for Tx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tx").field("named", &self.named).finish()
    }
}

/// A statement to be prepared unnamed, whatever it asked for.
struct Unnamed<E>(E);

impl<'q, E: Execute<'q, Postgres>> Execute<'q, Postgres> for Unnamed<E> {
    fn sql(self) -> sqlx::SqlStr {
        self.0.sql()
    }

    fn statement(&self) -> Option<&PgStatement> {
        self.0.statement()
    }

    fn take_arguments(&mut self) -> Result<Option<PgArguments>, BoxDynError> {
        self.0.take_arguments()
    }

    fn persistent(&self) -> bool {
        false
    }
}

/// `Executor` for a handle that knows how its statements are prepared:
/// everything is the connection's, but for the naming (module docs).
macro_rules! executor_naming_statements {
    ($handle:ty) => {
        impl<'c> Executor<'c> for &'c mut $handle {
            type Database = Postgres;

            fn fetch_many<'e, 'q: 'e, E>(
                self,
                query: E,
            ) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
            where
                'c: 'e,
                E: 'q + Execute<'q, Postgres>,
            {
                let named = self.named;
                let pg = self.pg();
                if named {
                    pg.fetch_many(query)
                } else {
                    pg.fetch_many(Unnamed(query))
                }
            }

            fn fetch_optional<'e, 'q: 'e, E>(
                self,
                query: E,
            ) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
            where
                'c: 'e,
                E: 'q + Execute<'q, Postgres>,
            {
                let named = self.named;
                let pg = self.pg();
                if named {
                    pg.fetch_optional(query)
                } else {
                    pg.fetch_optional(Unnamed(query))
                }
            }

            fn prepare_with<'e>(
                self,
                sql: sqlx::SqlStr,
                parameters: &'e [PgTypeInfo],
            ) -> BoxFuture<'e, Result<PgStatement, sqlx::Error>>
            where
                'c: 'e,
            {
                self.pg().prepare_with(sql, parameters)
            }

            // Only for the query macros' compile-time checks; sqlx asks for
            // it because the workspace enables them (`sqlx::migrate!`).
            fn describe<'e>(
                self,
                sql: sqlx::SqlStr,
            ) -> BoxFuture<'e, Result<sqlx::Describe<Postgres>, sqlx::Error>>
            where
                'c: 'e,
            {
                self.pg().describe(sql)
            }
        }
    };
}

executor_naming_statements!(Conn);
executor_naming_statements!(Tx<'_>);
