//! A handler's connection: one per invocation.
//!
//! [`Db::session`] takes the invocation's one connection (a handler that
//! asked the pool for each statement would wait for its own previous
//! connection's return, or open another). Where the database is reached
//! through a transaction-mode pooler (`DB_POOLER=transaction`), the session
//! is a transaction: the pooler hands the client a server connection only
//! for the length of a transaction, and the unnamed statements of pooler
//! mode (see [`super::sql`]) must stay on one server connection from
//! preparation to execution. [`Session::finish`] commits it; a session
//! dropped without finishing is rolled back, so a handler that fails
//! half-way writes nothing in pooler mode.

use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, Postgres, Transaction};

use super::Db;
use super::credentials::is_login_refused;

/// The invocation's connection (see the module docs).
pub struct Session {
    /// Always `Some` until dropped or finished.
    inner: Option<Inner>,
    /// How long giving the connection back may take (see `Drop`).
    return_bound: Duration,
    /// The pool's handle, told when the connection is back.
    db: Db,
}

enum Inner {
    /// Direct to PostgreSQL: statements stand alone (each is its own
    /// transaction unless the handler begins one).
    Plain(PoolConnection<Postgres>),
    /// Through a transaction-mode pooler: the whole invocation is one
    /// transaction.
    Transaction(Transaction<'static, Postgres>),
}

impl Session {
    /// Ends the invocation's database work: in pooler mode, commits it.
    /// Answer the client only after this, so that what it was told was
    /// written is.
    pub async fn finish(mut self) -> sqlx::Result<()> {
        match self.inner.take() {
            Some(Inner::Transaction(tx)) => tx.commit().await,
            // Given back by `Drop`, with its bound.
            plain => {
                self.inner = plain;
                Ok(())
            }
        }
    }

    // `inner` is taken only by `finish` and `drop`, which consume the
    // session, so while it can be dereferenced it is there: these cannot
    // fail.
    fn inner(&self) -> &Inner {
        self.inner
            .as_ref()
            .expect("a session is used only before it ends")
    }

    fn inner_mut(&mut self) -> &mut Inner {
        self.inner
            .as_mut()
            .expect("a session is used only before it ends")
    }
}

/// sqlx gives a dropped connection back from a spawned task that pings it
/// first, with no bound: a path that went silent (a half-open TCP flow, an
/// environment frozen mid-return and thawed with its network gone) would
/// hold the slot until TCP gives up, minutes later, and with a pool of one
/// fail every later invocation. So the session gives its connection back
/// itself, through the same return, bounded: past the bound the return is
/// dropped, which closes the socket and frees the slot.
impl Drop for Session {
    fn drop(&mut self) {
        let Some(Inner::Plain(mut conn)) = self.inner.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let giving_back = conn.return_to_pool();
        let bound = self.return_bound;
        let db = self.db.clone();
        db.returning();
        runtime.spawn(async move {
            if tokio::time::timeout(bound, giving_back).await.is_err() {
                tracing::warn!(
                    bound_ms = bound.as_millis() as u64,
                    "a connection did not come back within the bound; closed it"
                );
            }
            db.returned().await;
        });
    }
}

impl Deref for Session {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        match self.inner() {
            Inner::Plain(conn) => conn,
            Inner::Transaction(tx) => tx,
        }
    }
}

impl DerefMut for Session {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match self.inner_mut() {
            Inner::Plain(conn) => conn,
            Inner::Transaction(tx) => tx,
        }
    }
}

impl Db {
    /// The invocation's connection: see the module docs. The time it took
    /// is counted in the pool's metrics.
    pub async fn session(&self) -> sqlx::Result<Session> {
        let started = Instant::now();
        let credentials = self.rotating_credentials();
        if let Some(credentials) = credentials {
            credentials.refresh(self.pool(), false).await?;
        }
        let inner = match self.take().await {
            // The password changed since it was read: read it again, once.
            Err(error) if credentials.is_some() && is_login_refused(&error) => {
                tracing::warn!("the database refused our login; fetching credentials again");
                if let Some(credentials) = credentials {
                    credentials.refresh(self.pool(), true).await?;
                }
                self.take().await?
            }
            other => other?,
        };
        self.metrics().record_acquire(started.elapsed());
        Ok(Session {
            inner: Some(inner),
            return_bound: self.return_bound(),
            db: self.clone(),
        })
    }

    async fn take(&self) -> sqlx::Result<Inner> {
        Ok(if self.behind_transaction_pooler() {
            Inner::Transaction(self.pool().begin().await?)
        } else {
            Inner::Plain(self.pool().acquire().await?)
        })
    }
}
