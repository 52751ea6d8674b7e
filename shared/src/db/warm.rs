//! The warm connection: the one an invocation leaves for the next.
//!
//! Going through sqlx's pool costs two round trips per invocation that are
//! not the work: sqlx pings every connection it takes back, and our
//! liveness check ([`super::pool`]) may ping it again before handing it
//! out. In a Lambda environment invocations come one at a time, so the
//! connection one invocation ends with is, nearly always, the one the next
//! begins with. It waits here, still checked out of sqlx's pool, and the
//! next unit of work takes it as it is:
//!
//! - idle for less than the idle timeout: not pinged; its first statement
//!   is guarded instead ([`super::first`]): bounded by the ping's bound,
//!   and rerun on a fresh connection if the connection turned out to be
//!   dead or silent (a write not marked replayable is pinged first). The
//!   guard finds whatever a ping would have, within the same bound,
//!   without the round trip;
//! - idle past the idle timeout (the environment was frozen), or older
//!   than the maximum lifetime: closed, never used (the path may be gone).
//!
//! One connection waits at most; with more invocations at once (a pool of
//! more than one, `AWS_LAMBDA_MAX_CONCURRENCY`), the others go back to the
//! pool as before. sqlx's idle reaper does not see this one, so a task of
//! ours closes it once it has been idle for the idle timeout, as the
//! reaper would. The leak check and the shutdown path know it is here: it
//! is not "checked out" ([`Db::checked_out`]), and [`Db::close_idle`]
//! closes it first.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use sqlx::Postgres;
use sqlx::pool::PoolConnection;

use super::Db;
use super::metrics::PoolMetrics;
use super::pool::HookState;

/// The slot, in the pool's shared state.
#[derive(Debug, Default)]
pub(super) struct WarmSlot {
    parked: Mutex<Option<Parked>>,
    /// Whether the task that closes an expired connection runs.
    reaper: std::sync::atomic::AtomicBool,
}

#[derive(Debug)]
struct Parked {
    conn: PoolConnection<Postgres>,
    /// When it was left here.
    at: Instant,
    /// When it first came here: a lower bound on its age, for the maximum
    /// lifetime (sqlx does not tell a connection's age).
    since: Instant,
}

/// A connection taken from the slot, and what the taker must do with it.
pub(super) struct TakenWarm {
    pub(super) conn: PoolConnection<Postgres>,
    pub(super) since: Instant,
}

impl WarmSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Parked>> {
        // Replaced whole: a panic cannot leave it half-written.
        self.parked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a connection waits here (0 or 1).
    pub(super) fn count(&self) -> u32 {
        u32::from(self.lock().is_some())
    }
}

impl Db {
    /// Leaves `conn` for the next unit of work, or hands it back when it
    /// should go to the pool instead: the slot is taken, the process is
    /// shutting down, or a handler was just cut off (its connection may
    /// hold a statement still running, which the pool drains).
    pub(super) fn keep_warm(
        &self,
        conn: PoolConnection<Postgres>,
        since: Instant,
    ) -> Result<(), PoolConnection<Postgres>> {
        let shared = &self.shared;
        if *shared.shutdown.borrow() || shared.recently_abandoned() || self.raw_pool().is_closed() {
            return Err(conn);
        }
        let mut parked = shared.warm.lock();
        if parked.is_some() {
            return Err(conn);
        }
        *parked = Some(Parked {
            conn,
            at: Instant::now(),
            since,
        });
        drop(parked);
        self.start_warm_reaper();
        Ok(())
    }

    /// The waiting connection, if one is fit to use (module docs); one
    /// that is not is closed.
    pub(super) fn take_warm(&self) -> Option<TakenWarm> {
        let Parked { conn, at, since } = self.shared.warm.lock().take()?;
        let idle = at.elapsed();
        let bounds = &self.shared.warm_bounds;
        if idle > bounds.idle_timeout || since.elapsed() > bounds.max_lifetime {
            PoolMetrics::inc(&self.shared.metrics.discarded_stale);
            tracing::debug!(
                idle_for_ms = idle.as_millis() as u64,
                "closing the warm connection: idle past the idle timeout or too old"
            );
            close_quietly(conn);
            return None;
        }
        Some(TakenWarm { conn, since })
    }

    /// Takes the waiting connection out to close it (shutdown, snapshot).
    pub(super) fn take_warm_to_close(&self) -> Option<PoolConnection<Postgres>> {
        self.shared.warm.lock().take().map(|parked| parked.conn)
    }

    /// Starts, once per pool, the task that closes the warm connection
    /// once it has been idle for the idle timeout.
    fn start_warm_reaper(&self) {
        use std::sync::atomic::Ordering;
        if self.shared.warm.reaper.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(reap(Arc::downgrade(&self.shared)));
    }
}

/// The bounds the slot applies, from the pool's configuration.
#[derive(Debug, Clone, Copy)]
pub(super) struct WarmBounds {
    pub(super) idle_timeout: Duration,
    pub(super) max_lifetime: Duration,
}

/// Closes the warm connection whenever it has been idle for the idle
/// timeout; ends with the pool. Timers do not run while the environment is
/// frozen: [`Db::take_warm`] checks the same bound on the way out.
async fn reap(shared: Weak<HookState>) {
    loop {
        let wait = {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let mut parked = shared.warm.lock();
            let idle_timeout = shared.warm_bounds.idle_timeout;
            match parked.as_ref().map(|p| p.at.elapsed()) {
                Some(idle) if idle >= idle_timeout => {
                    if let Some(expired) = parked.take() {
                        tracing::debug!("closing the warm connection: idle for the idle timeout");
                        close_quietly(expired.conn);
                    }
                    idle_timeout
                }
                Some(idle) => idle_timeout - idle,
                None => idle_timeout,
            }
        };
        tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
    }
}

/// Closes a connection without waiting on it: sqlx sends the goodbye from
/// a task of its own, bounded, and frees the pool's slot.
pub(super) fn close_quietly(mut conn: PoolConnection<Postgres>) {
    conn.close_on_drop();
    drop(conn);
}
