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
use std::time::Instant;

use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream};
use futures_util::{StreamExt, TryStreamExt};
use sqlx::error::BoxDynError;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Connection, Either, Execute, Executor, PgConnection, Postgres, Transaction};

use super::Work;
use super::first::{Replayable, Verdict, connection_lost, judge};
use super::metrics::PoolMetrics;
use super::pool::{bounded_ping, give_back};

/// What a [`Conn`] holds.
pub(super) enum Inner {
    /// Direct to PostgreSQL: statements stand alone (each is its own
    /// transaction unless the handler begins one).
    Plain(PoolConnection<Postgres>),
    /// Through a transaction-mode pooler: the whole unit of work is one
    /// transaction.
    Transaction(Transaction<'static, Postgres>),
}

/// A connection as a unit of work takes it.
pub(super) struct Taken {
    pub(super) inner: Inner,
    /// Known to be alive: it answered a ping or a statement just now.
    /// An unchecked one's first statement is guarded ([`super::first`]).
    pub(super) checked: bool,
    /// A lower bound on its age (for the warm slot's maximum lifetime).
    pub(super) since: Instant,
}

impl Taken {
    pub(super) fn plain(conn: PoolConnection<Postgres>, checked: bool, since: Instant) -> Self {
        Self {
            inner: Inner::Plain(conn),
            checked,
            since,
        }
    }
}

/// A unit of work's connection (see the module docs).
pub struct Conn {
    /// `Some` until dropped or committed (or lost while being replaced).
    inner: Option<Inner>,
    /// Statements are prepared under names (directly to PostgreSQL) or
    /// unnamed (through a transaction-mode pooler).
    named: bool,
    /// See [`Taken::checked`].
    checked: bool,
    /// See [`Taken::since`].
    since: Instant,
    /// Gone silent under a statement: closed, never kept.
    broken: bool,
    /// The unit of work it belongs to, which ends its transaction.
    work: Arc<Work>,
}

impl Conn {
    pub(super) fn new(taken: Taken, work: Arc<Work>) -> Self {
        Self {
            named: matches!(taken.inner, Inner::Plain(_)),
            inner: Some(taken.inner),
            checked: taken.checked,
            since: taken.since,
            broken: false,
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
        // A transaction's statements cannot be rerun one by one: make sure
        // of the connection before it begins.
        self.make_sure_alive().await?;
        let named = self.named;
        Ok(Tx {
            tx: self.pg()?.begin().await?,
            named,
        })
    }

    /// The connection. `inner` is taken by `commit` and `drop`, which
    /// consume the handle, and lost only when replacing a dead connection
    /// failed (an error the handler has already seen).
    fn pg(&mut self) -> sqlx::Result<&mut PgConnection> {
        match self.inner.as_mut() {
            Some(Inner::Plain(conn)) => Ok(conn),
            Some(Inner::Transaction(tx)) => Ok(tx),
            None => Err(sqlx::Error::PoolClosed),
        }
    }

    /// Pings an unchecked connection (bounded), and replaces it with a
    /// fresh one if it does not answer.
    async fn make_sure_alive(&mut self) -> sqlx::Result<()> {
        if self.checked {
            return Ok(());
        }
        let bound = self.work.db().return_bound();
        let started = Instant::now();
        if bounded_ping(self.pg()?, bound).await.is_err() {
            PoolMetrics::inc(&self.work.db().metrics().failed_checks);
            self.replace(started).await?;
        }
        self.checked = true;
        Ok(())
    }

    /// Throws this connection away (it is gone) and takes a fresh one from
    /// the pool, pinged, in its place: the second try after a dead one, so
    /// it pays a round trip to be sure. All of it within what is left of
    /// the acquire bound since `started`, as the ping before an acquire
    /// would have been.
    async fn replace(&mut self, started: Instant) -> sqlx::Result<()> {
        let db = self.work.db().clone();
        if let Some(Inner::Plain(old)) = self.inner.take() {
            // Detached, its slot is free at once; dropped, its socket closes
            // without a goodbye, which a dead path could hold up.
            drop(old.detach());
        }
        let deadline = started + db.raw_pool().options().get_acquire_timeout();
        let fresh = tokio::time::timeout_at(deadline.into(), fresh_connection(&db))
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
        self.inner = Some(Inner::Plain(fresh));
        self.since = Instant::now();
        self.broken = false;
        Ok(())
    }

    /// Runs the first statement on an unchecked connection ([`super::first`]),
    /// to the end, and returns all it answered.
    async fn first_statement(
        &mut self,
        statement: Replayable,
    ) -> sqlx::Result<Vec<Either<PgQueryResult, PgRow>>> {
        if !statement.is_replayable() {
            self.make_sure_alive().await?;
            return self.run_to_end(statement).await;
        }
        let bound = self.work.db().return_bound();
        let started = Instant::now();
        let attempt = tokio::time::timeout(bound, self.run_to_end(statement.clone()))
            .await
            .ok();
        match judge(attempt, bound) {
            Verdict::Answered(answered) => {
                self.checked = true;
                answered
            }
            Verdict::Rerun => {
                PoolMetrics::inc(&self.work.db().metrics().retried);
                self.replace(started).await?;
                self.checked = true;
                self.run_to_end(statement).await
            }
        }
    }

    async fn run_to_end(
        &mut self,
        statement: Replayable,
    ) -> sqlx::Result<Vec<Either<PgQueryResult, PgRow>>> {
        let named = self.named;
        let pg = self.pg()?;
        let answered = if named {
            pg.fetch_many(statement).try_collect().await
        } else {
            pg.fetch_many(Unnamed(statement)).try_collect().await
        };
        if answered.as_ref().is_err_and(connection_lost) {
            self.broken = true;
        }
        answered
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
///
/// Most of the time, though, a plain connection is not given back at all:
/// it waits for the next unit of work in the warm slot ([`super::warm`]),
/// which saves the return's ping and the next acquire's.
impl Drop for Conn {
    fn drop(&mut self) {
        let db = self.work.db();
        match self.inner.take() {
            Some(Inner::Plain(conn)) if self.broken => drop(conn.detach()),
            Some(Inner::Plain(conn)) => {
                if let Err(conn) = db.keep_warm(conn, self.since) {
                    give_back(conn, db);
                }
            }
            Some(transaction) => self.work.park(transaction),
            None => {}
        }
    }
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

/// `Executor` for a transaction: everything is the connection's, but for
/// the naming (module docs).
impl<'c> Executor<'c> for &'c mut Tx<'_> {
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
        fetch_many_naming(self.pg(), named, query)
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
        fetch_optional_naming(self.pg(), named, query)
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

    // Only for the query macros' compile-time checks; sqlx asks for it
    // because the workspace enables them (`sqlx::migrate!`).
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

/// `Executor` for a unit of work's connection: the connection's, but for
/// the naming, and for the first statement on an unchecked connection,
/// which is guarded ([`super::first`]) and so runs to its end before its
/// rows are handed on.
impl<'c> Executor<'c> for &'c mut Conn {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        if self.checked || query.statement().is_some() {
            let named = self.named;
            return match self.pg() {
                Ok(pg) => fetch_many_naming(pg, named, query),
                Err(error) => stream::once(async { Err(error) }).boxed(),
            };
        }
        let statement = Replayable::of(query);
        stream::once(async move {
            let answered = self.first_statement(statement.map_err(sqlx::Error::Encode)?);
            answered
                .await
                .map(|all| stream::iter(all.into_iter().map(Ok)))
        })
        .try_flatten()
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        if self.checked || query.statement().is_some() {
            let named = self.named;
            return match self.pg() {
                Ok(pg) => fetch_optional_naming(pg, named, query),
                Err(error) => Box::pin(async { Err(error) }),
            };
        }
        let statement = Replayable::of(query);
        Box::pin(async move {
            let all = self
                .first_statement(statement.map_err(sqlx::Error::Encode)?)
                .await?;
            Ok(all.into_iter().find_map(|item| item.right()))
        })
    }

    fn prepare_with<'e>(
        self,
        sql: sqlx::SqlStr,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement, sqlx::Error>>
    where
        'c: 'e,
    {
        Box::pin(async move { self.pg()?.prepare_with(sql, parameters).await })
    }

    // As for `Tx`.
    fn describe<'e>(
        self,
        sql: sqlx::SqlStr,
    ) -> BoxFuture<'e, Result<sqlx::Describe<Postgres>, sqlx::Error>>
    where
        'c: 'e,
    {
        Box::pin(async move { self.pg()?.describe(sql).await })
    }
}

/// A connection from the pool that answers a ping; a dead idle one is
/// followed by a new one.
async fn fresh_connection(db: &super::Db) -> sqlx::Result<PoolConnection<Postgres>> {
    let mut fresh = db.acquire_with_fresh_credentials().await?;
    if bounded_ping(&mut fresh, db.return_bound()).await.is_err() {
        drop(fresh.detach());
        fresh = db.acquire_with_fresh_credentials().await?;
    }
    Ok(fresh)
}

fn fetch_many_naming<'e, 'q: 'e, E>(
    pg: &'e mut PgConnection,
    named: bool,
    query: E,
) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
where
    E: 'q + Execute<'q, Postgres>,
{
    if named {
        pg.fetch_many(query)
    } else {
        pg.fetch_many(Unnamed(query))
    }
}

fn fetch_optional_naming<'e, 'q: 'e, E>(
    pg: &'e mut PgConnection,
    named: bool,
    query: E,
) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
where
    E: 'q + Execute<'q, Postgres>,
{
    if named {
        pg.fetch_optional(query)
    } else {
        pg.fetch_optional(Unnamed(query))
    }
}
