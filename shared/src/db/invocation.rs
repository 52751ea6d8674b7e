//! Invocations in flight, and the leak check after the last one ends.
//!
//! The cleanup wrapper and the stream guard mark each invocation's start
//! and end ([`Db::begin_invocation`]). A leak check is only meaningful when
//! no invocation runs: then every connection should be back in the pool,
//! once the returns on their way have settled. The last connection back,
//! or the last invocation to end, checks, and a connection still out is a
//! leak: counted in the metrics and logged as an error.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tracing::Instrument;

use super::Db;
use super::emf::PoolState;
use super::metrics::PoolMetrics;
use super::pool::poll_until_zero;

/// How long a leak check waits for connections that are on their way back
/// to the pool (sqlx returns them from a spawned task, after a ping).
pub const LEAK_SETTLE: Duration = Duration::from_secs(1);

impl Db {
    /// Marks the start of an invocation; the returned token marks its end
    /// when dropped, and then checks for leaks.
    pub(crate) fn begin_invocation(&self, label: &'static str) -> Invocation {
        self.shared.in_flight.fetch_add(1, Ordering::AcqRel);
        PoolMetrics::inc(&self.shared.metrics.invocations);
        Invocation {
            db: self.clone(),
            label,
            reports: true,
        }
    }

    /// Counts something as running until the token drops, without
    /// counting an invocation of its own: a streamed body the runtime is
    /// still sending, which a shutdown must wait for.
    pub(crate) fn keep_running(&self, label: &'static str) -> Invocation {
        self.shared.in_flight.fetch_add(1, Ordering::AcqRel);
        Invocation {
            db: self.clone(),
            label,
            reports: false,
        }
    }

    /// Waits, at most `bound`, until no invocation (handler or open
    /// stream) is running; returns how many still are.
    pub(crate) async fn wait_for_invocations(&self, bound: Duration) -> usize {
        poll_until_zero(bound, || self.in_flight()).await
    }

    fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// A `Conn` begins giving its connection back; call
    /// [`Db::returned`] when it is back (or given up).
    pub(crate) fn returning(&self) {
        self.shared.returning.fetch_add(1, Ordering::SeqCst);
    }

    /// A `Conn`'s connection is back. The last one back after the last
    /// invocation ended checks for leaks, on the task that returned it.
    pub(crate) async fn returned(&self) {
        let left = self.shared.returning.fetch_sub(1, Ordering::SeqCst) - 1;
        if left == 0 && self.in_flight() == 0 && self.checked_out() > 0 {
            self.clone().check_for_leaks("the last invocation").await;
        }
    }

    /// After the last running invocation ends: any connection still checked
    /// out once returns have settled was leaked (kept past its handler).
    async fn check_for_leaks(self, label: &'static str) {
        let checked_out = self.wait_until_settled(LEAK_SETTLE).await;
        // Another invocation may have started meanwhile; its connections
        // are not leaks.
        if checked_out > 0 && self.in_flight() == 0 {
            PoolMetrics::inc(&self.shared.metrics.leaks);
            tracing::error!(
                checked_out,
                handler = label,
                "connection leak: connections still checked out after the handler ended"
            );
        }
    }
}

/// One running invocation (see [`Db::begin_invocation`]).
pub(crate) struct Invocation {
    db: Db,
    label: &'static str,
    /// Prints the metrics line at its end (not for [`Db::keep_running`]).
    reports: bool,
}

impl Drop for Invocation {
    fn drop(&mut self) {
        let left = self.db.shared.in_flight.fetch_sub(1, Ordering::SeqCst) - 1;
        if let Some(emf) = self.db.shared.emf.as_ref().filter(|_| self.reports) {
            let pool = PoolState {
                max: self.db.max_connections(),
                size: self.db.size(),
                idle: self.db.idle(),
            };
            emf.invocation_ended(self.db.metrics().snapshot(), pool);
        }
        // The usual end: the handler's session is still on its way back,
        // and the last one back does the check (`Db::returned`). Leaving
        // it to that task, rather than spawning one here to wait for it,
        // keeps a second task (and the wake-up of an idle worker thread
        // that spawning costs) off every invocation. Whichever of the two
        // sees both counters at zero second checks: at least one does.
        if left > 0
            || self.db.shared.returning.load(Ordering::SeqCst) > 0
            || self.db.checked_out() == 0
        {
            return;
        }
        // A connection out with no session returning it: a leak, or one
        // taken from the pool directly and returned by sqlx's own task.
        // Check once returns settle, off the response path.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(
                self.db
                    .clone()
                    .check_for_leaks(self.label)
                    .in_current_span(),
            );
        }
    }
}
