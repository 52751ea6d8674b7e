//! Building the pool, and the handle ([`Db`]) the rest of the code holds.
//!
//! The pool is sqlx's, configured for what a Lambda environment does to
//! connections:
//!
//! - **Frozen environments.** sqlx's idle reaper is a timer, and timers do
//!   not run while Lambda has the environment frozen; the server, a proxy or
//!   a NAT may drop the connection meanwhile, and a dropped TCP flow can make
//!   sqlx's own liveness ping hang until the acquire timeout. So sqlx's ping
//!   is off and [`check_before_acquire`] replaces it: a connection idle for
//!   longer than the idle timeout (one the reaper should have closed) is
//!   never handed out, and one idle for more than `DB_CHECK_AFTER_IDLE_MS`
//!   (1 s by default) must answer a ping within a short bound. One used
//!   more recently goes out unpinged, and its first statement is guarded
//!   instead ([`super::first`]).
//! - **The warm connection.** Between invocations the last connection
//!   does not come back here at all ([`super::warm`]): it waits, checked
//!   out, for the next unit of work, which saves sqlx's return ping and
//!   the next acquire's.
//! - **Returns that cannot hang.** sqlx pings every connection it takes
//!   back, with no bound; `db::Conn` gives its connection back itself,
//!   through the same return but bounded by the ping timeout, so that a
//!   path gone silent cannot hold a slot. A handler cut off by its deadline
//!   leaves its query running on the server; for a short while after such
//!   a cancellation the `after_release` hook drains it with a longer bound.
//! - **Bounded acquire.** `acquire_timeout` is the connect timeout: it bounds
//!   waiting for a free slot and opening a connection, together.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnectionMetadata;
use sqlx::postgres::{PgConnection, PgPoolOptions};
use sqlx::{Connection, PgPool};

use super::emf::EmfReporter;
use super::metrics::PoolMetrics;
use super::rotation::RotatingCredentials;
use super::warm::{WarmBounds, WarmSlot, close_quietly};
use crate::config::{DbConfig, Pooler};

/// After a handler is cancelled, connections released within this window
/// are drained with a bound (see the module docs).
const ABANDON_WINDOW: Duration = Duration::from_secs(5);

/// The process's handle on its pool: the pool itself plus the bookkeeping
/// that the cleanup wrapper and the leak check need. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: PgPool,
    pub(super) shared: Arc<HookState>,
}

/// State shared between the handle and the pool's hooks.
#[derive(Debug)]
pub(super) struct HookState {
    pub(super) metrics: PoolMetrics,
    /// Invocations (handlers or open streams) running right now; a leak
    /// check is only meaningful when none are.
    pub(super) in_flight: AtomicUsize,
    /// `db::Conn`s giving their connection back right now. The last
    /// one back, once no invocation runs, does the leak check: no task of
    /// its own per invocation (see [`Invocation`]'s `Drop`).
    pub(super) returning: AtomicUsize,
    /// When a handler was last cancelled, in milliseconds since `epoch`
    /// (0: never). Read by the `after_release` hook.
    pub(super) abandoned_at_ms: AtomicU64,
    pub(super) epoch: Instant,
    pub(super) application_name: String,
    /// The database is reached through a transaction-mode pooler.
    pub(super) transaction_pooler: bool,
    /// Prints the metrics at the end of invocations, if configured.
    pub(super) emf: Option<EmfReporter>,
    /// Credentials that change (Secrets Manager, IAM), if not the URL's.
    pub(super) credentials: Option<RotatingCredentials>,
    /// Bound on giving a connection back (`db::Conn`), and on draining
    /// one shortly after a handler was cut off mid-query.
    pub(super) return_bound: Duration,
    pub(super) drain_bound: Duration,
    /// Set once the process is shutting down ([`Db::begin_shutdown`]).
    pub(super) shutdown: tokio::sync::watch::Sender<bool>,
    /// The connection one invocation leaves for the next ([`super::warm`]).
    pub(super) warm: WarmSlot,
    pub(super) warm_bounds: WarmBounds,
}

impl HookState {
    fn now_ms(&self) -> u64 {
        // Offset by one so that 0 keeps meaning "never".
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    pub(super) fn recently_abandoned(&self) -> bool {
        let at = self.abandoned_at_ms.load(Ordering::Acquire);
        at != 0 && self.now_ms().saturating_sub(at) < ABANDON_WINDOW.as_millis() as u64
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("application_name", &self.shared.application_name)
            .field("size", &self.pool.size())
            .field("idle", &self.pool.num_idle())
            .finish()
    }
}

impl Db {
    /// Builds a pool that connects on first use.
    ///
    /// Must be called inside a Tokio runtime (sqlx spawns the idle reaper
    /// on it); [`super::global::init`] checks that for the process-wide
    /// pool. Outside `shared`, only tests call this, with their own config.
    pub fn connect_lazy(config: &DbConfig) -> Db {
        let bounds = AcquireBounds::for_config(config);
        let shared = Arc::new(HookState {
            metrics: PoolMetrics::default(),
            in_flight: AtomicUsize::new(0),
            returning: AtomicUsize::new(0),
            abandoned_at_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            application_name: config.application_name.clone(),
            transaction_pooler: config.pooler == Pooler::Transaction,
            emf: config.metrics.clone().map(EmfReporter::new),
            credentials: RotatingCredentials::new(&config.credentials, config.connect_options()),
            return_bound: bounds.ping_timeout,
            drain_bound: bounds.drain_timeout,
            shutdown: tokio::sync::watch::Sender::new(false),
            warm: WarmSlot::default(),
            warm_bounds: WarmBounds {
                idle_timeout: config.idle_timeout,
                max_lifetime: config.max_lifetime,
            },
        });
        let pool = with_hooks(pool_options(config), &shared, bounds)
            .connect_lazy_with(config.connect_options());
        Db { pool, shared }
    }

    /// The pool, to use directly (tests, tools). The warm connection
    /// ([`super::warm`]) goes back to it first, so that a pool of one
    /// has its connection to hand out.
    pub fn pool(&self) -> &PgPool {
        if let Some(conn) = self.take_warm_to_close() {
            give_back(conn, self);
        }
        &self.pool
    }

    /// The pool as it is, for this module's own use: the warm connection
    /// stays where it is.
    pub(super) fn raw_pool(&self) -> &PgPool {
        &self.pool
    }

    /// The pool's maximum number of connections.
    pub fn max_connections(&self) -> u32 {
        self.pool.options().get_max_connections()
    }

    /// Connections open right now (idle or checked out).
    pub fn size(&self) -> u32 {
        self.pool.size()
    }

    /// Connections checked out right now (including ones a dropped handle
    /// is still returning), not counting the warm one, which waits for
    /// the next invocation as an idle one does.
    pub fn checked_out(&self) -> u32 {
        self.pool.size().saturating_sub(self.idle())
    }

    /// Connections waiting to be used: the pool's idle ones and the warm one.
    pub fn idle(&self) -> u32 {
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        idle.saturating_add(self.shared.warm.count())
    }

    /// Whether the database is reached through a transaction-mode pooler.
    pub fn behind_transaction_pooler(&self) -> bool {
        self.shared.transaction_pooler
    }

    /// How long giving a connection back may take: the ping bound, or the
    /// drain bound shortly after a handler was cut off mid-query.
    pub(crate) fn return_bound(&self) -> Duration {
        if self.shared.recently_abandoned() {
            self.shared.drain_bound
        } else {
            self.shared.return_bound
        }
    }

    /// The credentials that change, if they do.
    pub(crate) fn rotating_credentials(&self) -> Option<&RotatingCredentials> {
        self.shared.credentials.as_ref()
    }

    /// The `application_name` this pool's connections carry.
    pub fn application_name(&self) -> &str {
        &self.shared.application_name
    }

    /// The pool's counters.
    pub fn metrics(&self) -> &PoolMetrics {
        &self.shared.metrics
    }

    /// Waits (up to `bound`) until no connection is checked out, and
    /// returns how many still are.
    pub async fn wait_until_settled(&self, bound: Duration) -> u32 {
        poll_until_zero(bound, || self.checked_out()).await
    }

    /// Closes every idle connection now, keeping the pool open (before a
    /// SnapStart snapshot, or at shutdown before waiting for the rest).
    pub async fn close_idle(&self) {
        if let Some(conn) = self.take_warm_to_close() {
            let _ = conn.close().await;
        }
        for _ in 0..self.pool.num_idle() {
            match self.pool.try_acquire() {
                Some(conn) => {
                    // Terminate is a write: it cannot hang on a dead peer.
                    let _ = conn.close().await;
                }
                None => break,
            }
        }
    }

    /// Records that a handler was cut off mid-work, so that the connections
    /// it drops are drained with a bound (see the module docs). Call it
    /// before dropping the handler's future.
    pub(crate) fn note_abandoned(&self) {
        PoolMetrics::inc(&self.shared.metrics.timed_out);
        self.shared
            .abandoned_at_ms
            .store(self.shared.now_ms(), Ordering::Release);
    }

    /// Tells whatever waits on [`Db::shutting_down`] that the process is
    /// about to stop. Idempotent.
    pub(crate) fn begin_shutdown(&self) {
        self.shared.shutdown.send_replace(true);
    }

    /// Completes once the process has begun to shut down, at once if it
    /// already has. Long work (a streamed reply) selects on it to end early
    /// and in order, while the pool is still open to save what it has.
    pub fn shutting_down(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut receiver = self.shared.shutdown.subscribe();
        async move {
            // An error means the sender is gone with the pool: nothing
            // will ever be signalled, so wait forever, like an open pool.
            if receiver.wait_for(|down| *down).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Gives `conn` back to the pool through sqlx's return (which pings it),
/// bounded by [`Db::return_bound`]: past the bound the return is dropped,
/// which closes the socket and frees the slot. Counted as returning, so
/// that the leak check waits for it.
pub(super) fn give_back(mut conn: sqlx::pool::PoolConnection<sqlx::Postgres>, db: &Db) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        close_quietly(conn);
        return;
    };
    let db = db.clone();
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
    runtime.spawn(tracing::Instrument::in_current_span(returning));
}

/// Reads `count` every millisecond until it is zero or `bound` has passed,
/// and returns its last value.
pub(super) async fn poll_until_zero<T: PartialEq + Default>(
    bound: Duration,
    count: impl Fn() -> T,
) -> T {
    let start = Instant::now();
    loop {
        let now = count();
        if now == T::default() || start.elapsed() >= bound {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
/// sqlx's pool settings for `config`, before our hooks.
fn pool_options(config: &DbConfig) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(config.pool_max.max)
        .min_connections(0)
        .acquire_timeout(config.connect_timeout)
        .idle_timeout(config.idle_timeout)
        .max_lifetime(config.max_lifetime)
        // Replaced by `check_before_acquire`, which is bounded.
        .test_before_acquire(false)
}

/// The hooks that count connections, check them before use and drain
/// them after a cancelled handler (module docs).
fn with_hooks(
    options: PgPoolOptions,
    shared: &Arc<HookState>,
    bounds: AcquireBounds,
) -> PgPoolOptions {
    let on_connect = shared.clone();
    let on_acquire = shared.clone();
    let on_release = shared.clone();
    options
        .after_connect(move |_conn, _meta| {
            PoolMetrics::inc(&on_connect.metrics.opened);
            Box::pin(async { Ok(()) })
        })
        .before_acquire(move |conn, meta| {
            let shared = on_acquire.clone();
            Box::pin(async move { check_before_acquire(conn, meta, bounds, &shared).await })
        })
        .after_release(move |conn, _meta| {
            let shared = on_release.clone();
            Box::pin(async move {
                if !shared.recently_abandoned() {
                    return Ok(true);
                }
                drain(conn, bounds.drain_timeout).await.map(|()| true)
            })
        })
}

/// The limits the hooks apply.
#[derive(Clone, Copy)]
struct AcquireBounds {
    /// Idle longer than this: discarded unchecked.
    idle_timeout: Duration,
    /// Idle longer than this: pinged first.
    check_after: Duration,
    /// How long a ping may take (and giving a connection back).
    ping_timeout: Duration,
    /// How long draining a cancelled statement may take.
    drain_timeout: Duration,
}

impl AcquireBounds {
    fn for_config(config: &DbConfig) -> Self {
        Self {
            idle_timeout: config.idle_timeout,
            check_after: config.check_after_idle,
            // A ping answers in well under a millisecond on a healthy path;
            // leave room in the acquire bound to open a new connection instead.
            ping_timeout: (config.connect_timeout / 2).min(Duration::from_secs(2)),
            // A cancelled query keeps running on the server until it ends or
            // hits statement_timeout; draining it can take that long.
            drain_timeout: config.statement_timeout.unwrap_or(config.connect_timeout)
                + Duration::from_secs(1),
        }
    }
}

/// The liveness check that replaces sqlx's unbounded ping (module docs).
async fn check_before_acquire(
    conn: &mut PgConnection,
    meta: PoolConnectionMetadata,
    bounds: AcquireBounds,
    shared: &HookState,
) -> Result<bool, sqlx::Error> {
    let AcquireBounds {
        idle_timeout,
        check_after,
        ping_timeout,
        ..
    } = bounds;
    let idle_for = meta.idle_for;
    if idle_for < check_after {
        return Ok(true);
    }
    if idle_for > idle_timeout {
        // The reaper would have closed it, had the environment not been
        // frozen; the path to the server may be gone, so do not even ping.
        PoolMetrics::inc(&shared.metrics.discarded_stale);
        tracing::debug!(
            idle_for_ms = idle_for.as_millis() as u64,
            "discarding a connection idle past the idle timeout"
        );
        return Ok(false);
    }
    bounded_ping(conn, ping_timeout)
        .await
        .map(|()| true)
        .inspect_err(|_| {
            PoolMetrics::inc(&shared.metrics.failed_checks);
        })
}

/// Waits, at most `bound`, until a connection whose statement was
/// abandoned mid-way is ready for the next one.
///
/// The abandoned statement usually ends in an error (cancelled by
/// `statement_timeout`), which the first ping reads and returns, with the
/// connection's last `ReadyForQuery` still unread; the next ping reads it.
/// So an error from the server means "drained, ping again"; only a
/// connection error (or the bound) means the connection is lost. Returning
/// the error to sqlx would make it close the connection, and over TLS that
/// close can hang and hold the pool's slot for good.
async fn drain(conn: &mut PgConnection, bound: Duration) -> Result<(), sqlx::Error> {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match bounded_ping(conn, left).await {
            Err(sqlx::Error::Database(error)) => {
                tracing::debug!(%error, "drained an abandoned statement's error");
            }
            other => return other,
        }
    }
}

/// A ping that gives up after `bound`. An error makes sqlx close the
/// connection without a goodbye, which cannot hang either.
pub(super) async fn bounded_ping(
    conn: &mut PgConnection,
    bound: Duration,
) -> Result<(), sqlx::Error> {
    match tokio::time::timeout(bound, conn.ping()).await {
        Ok(result) => result,
        Err(_) => Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer to a ping within {} ms", bound.as_millis()),
        ))),
    }
}
