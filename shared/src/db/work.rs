//! A unit of work: what one invocation (or one stream's end, or one tool's
//! write) does on the database, and how it ends.
//!
//! Committing is not a call someone must remember. A unit of work hands
//! out one connection at a time ([`Work::connection`]); a connection that
//! drops with a transaction open (always, behind a transaction-mode
//! pooler) leaves it here, and whoever runs the work ends it by its
//! outcome: the cleanup wrapper commits when the handler answers `Ok`, and
//! rolls back on an error, a panic or a deadline (`runtime::cleanup`); the
//! stream guard and `runtime::unit_of_work` do the same for work outside a
//! handler. The next connection the same work asks for is the one left
//! here, so an invocation never holds two.
//!
//! A transaction that comes back after its work has ended (a connection
//! kept past its handler, in a task of its own) is rolled back, logged as
//! an error and counted (`unfinished` in the pool's metrics), which every
//! in-process test checks after every call.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use sqlx::Postgres;
use sqlx::pool::PoolConnection;

use super::Db;
use super::conn::{Conn, Inner, Taken};
use super::metrics::PoolMetrics;
use super::rotation::is_login_refused;
use super::warm::TakenWarm;

/// How a unit of work ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The work succeeded: what it wrote stays.
    Commit,
    /// The work failed, panicked or ran out of time: nothing it wrote stays.
    RollBack,
}

/// One unit of work (see the module docs).
pub struct Work {
    db: Db,
    slot: Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    /// The transaction a dropped connection left open.
    parked: Option<Inner>,
    /// Set by [`Work::end`]: nothing may be parked after it.
    ended: bool,
}

impl Work {
    /// A unit of work on `db`'s pool. Only the runtime begins one, and it
    /// ends every one it begins.
    pub(crate) fn begin(db: &Db) -> Arc<Self> {
        Arc::new(Self {
            db: db.clone(),
            slot: Mutex::new(Slot::default()),
        })
    }

    /// The pool this work runs on.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The work's connection: the one a previous handle left open, or a
    /// new one from the pool. The time it took is counted in the pool's
    /// metrics.
    pub async fn connection(self: &Arc<Self>) -> sqlx::Result<Conn> {
        if let Some(parked) = self.lock().parked.take() {
            // A transaction that has run statements: known to be alive.
            let taken = Taken {
                inner: parked,
                checked: true,
                since: Instant::now(),
            };
            return Ok(Conn::new(taken, self.clone()));
        }
        let started = Instant::now();
        let taken = self.db.take_with_fresh_credentials().await?;
        self.db.metrics().record_acquire(started.elapsed());
        Ok(Conn::new(taken, self.clone()))
    }

    /// Ends the work: commits or rolls back the transaction left open, if
    /// any. A failed commit is the caller's to report.
    pub(crate) async fn end(&self, outcome: Outcome) -> sqlx::Result<()> {
        let parked = {
            let mut slot = self.lock();
            slot.ended = true;
            slot.parked.take()
        };
        match (parked, outcome) {
            (Some(Inner::Transaction(tx)), Outcome::Commit) => tx.commit().await,
            // Dropping queues the rollback: it cannot hang on a connection
            // cut off mid-query, which is then drained with a bound.
            (Some(transaction), Outcome::RollBack) => {
                drop(transaction);
                Ok(())
            }
            (Some(Inner::Plain(_)) | None, _) => Ok(()),
        }
    }

    /// Takes an open transaction back from a dropped connection (see the
    /// module docs).
    pub(super) fn park(&self, transaction: Inner) {
        let mut slot = self.lock();
        if slot.ended {
            drop(slot);
            self.unfinished(transaction);
        } else {
            slot.parked = Some(transaction);
        }
    }

    fn unfinished(&self, transaction: Inner) {
        PoolMetrics::inc(&self.db.metrics().unfinished);
        tracing::error!(
            "a transaction came back after its unit of work had ended: rolled back \
             (a connection was kept past its handler)"
        );
        drop(transaction);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        // The slot is replaced whole: a panic cannot leave it half-written.
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A unit of work dropped without being ended: only a bug in the runtime
/// can do that, so it is as loud as a transaction that came back late.
impl Drop for Work {
    fn drop(&mut self) {
        let slot = self.slot.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(transaction) = slot.parked.take() {
            self.unfinished(transaction);
        }
    }
}

impl Db {
    /// A connection from the pool (a transaction, behind a transaction-mode
    /// pooler), with credentials refreshed first if they rotate.
    async fn take_with_fresh_credentials(&self) -> sqlx::Result<Taken> {
        self.with_fresh_credentials(|| self.take()).await
    }

    /// A connection straight from the pool (never the warm one), with
    /// credentials refreshed first if they rotate: the replacement for a
    /// connection found dead (`db::Conn`).
    pub(super) async fn acquire_with_fresh_credentials(
        &self,
    ) -> sqlx::Result<PoolConnection<Postgres>> {
        self.with_fresh_credentials(|| self.raw_pool().acquire())
            .await
    }

    /// Runs `take` with the credentials read first if they rotate, and
    /// once more with them read again if the server refused them.
    async fn with_fresh_credentials<T, F>(&self, take: impl Fn() -> F) -> sqlx::Result<T>
    where
        F: Future<Output = sqlx::Result<T>>,
    {
        let credentials = self.rotating_credentials();
        if let Some(credentials) = credentials {
            credentials.refresh(self.raw_pool(), false).await?;
        }
        match take().await {
            // The password changed since it was read: read it again, once.
            Err(error) if credentials.is_some() && is_login_refused(&error) => {
                tracing::warn!("the database refused our login; fetching credentials again");
                if let Some(credentials) = credentials {
                    credentials.refresh(self.raw_pool(), true).await?;
                }
                take().await
            }
            other => other,
        }
    }

    /// Behind a transaction-mode pooler, a transaction (its `BEGIN` has
    /// answered: alive). Directly, the warm connection if there is one
    /// ([`super::warm`]), else one from the pool; either is unchecked, and
    /// its first statement is guarded ([`super::first`]), which is the
    /// liveness check: a ping first would cost a round trip and find
    /// nothing the guard does not.
    async fn take(&self) -> sqlx::Result<Taken> {
        if self.behind_transaction_pooler() {
            return Ok(Taken {
                inner: Inner::Transaction(self.raw_pool().begin().await?),
                checked: true,
                since: Instant::now(),
            });
        }
        if let Some(TakenWarm { conn, since }) = self.take_warm() {
            return Ok(Taken::plain(conn, false, since));
        }
        let conn = self.raw_pool().acquire().await?;
        Ok(Taken::plain(conn, false, Instant::now()))
    }
}
