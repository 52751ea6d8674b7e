//! Counters a pool keeps about itself.
//!
//! They cost one relaxed atomic add each and answer the questions an
//! operator asks of a serverless pool: how often do we connect, how often do
//! we throw a connection away, and did anything leak.

use std::sync::atomic::{AtomicU64, Ordering};

/// Running totals for one pool, since it was built.
#[derive(Debug, Default)]
pub struct PoolMetrics {
    /// Connections opened (each is a new server backend).
    pub(crate) opened: AtomicU64,
    /// Idle connections not handed out because they sat idle past the idle
    /// timeout (the reaper did not run: a frozen environment).
    pub(crate) discarded_stale: AtomicU64,
    /// Idle connections that failed the liveness check (killed by the
    /// server, or a dead network path).
    pub(crate) failed_checks: AtomicU64,
    /// First statements run again on a fresh connection because the warm
    /// one turned out to be gone (`db::first`).
    pub(crate) retried: AtomicU64,
    /// Handlers cut off by their deadline.
    pub(crate) timed_out: AtomicU64,
    /// Invocations after which connections were still checked out.
    pub(crate) leaks: AtomicU64,
    /// Transactions that came back after their unit of work had ended
    /// (`db::Work`), and were rolled back.
    pub(crate) unfinished: AtomicU64,
    /// Invocations run through the cleanup wrapper or a stream guard.
    pub(crate) invocations: AtomicU64,
    /// Connections taken by units of work (`db::Work::connection`).
    pub(crate) acquisitions: AtomicU64,
    /// Time spent taking them, in microseconds.
    pub(crate) acquire_micros: AtomicU64,
}

/// A copy of [`PoolMetrics`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetricsSnapshot {
    /// See [`PoolMetrics`].
    pub opened: u64,
    /// See [`PoolMetrics`].
    pub discarded_stale: u64,
    /// See [`PoolMetrics`].
    pub failed_checks: u64,
    /// See [`PoolMetrics`].
    pub retried: u64,
    /// See [`PoolMetrics`].
    pub timed_out: u64,
    /// See [`PoolMetrics`].
    pub leaks: u64,
    /// See [`PoolMetrics`].
    pub unfinished: u64,
    /// See [`PoolMetrics`].
    pub invocations: u64,
    /// See [`PoolMetrics`].
    pub acquisitions: u64,
    /// See [`PoolMetrics`].
    pub acquire_micros: u64,
}

impl PoolMetrics {
    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_acquire(&self, took: std::time::Duration) {
        Self::inc(&self.acquisitions);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.acquire_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The current totals.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            opened: get(&self.opened),
            discarded_stale: get(&self.discarded_stale),
            failed_checks: get(&self.failed_checks),
            retried: get(&self.retried),
            timed_out: get(&self.timed_out),
            leaks: get(&self.leaks),
            unfinished: get(&self.unfinished),
            invocations: get(&self.invocations),
            acquisitions: get(&self.acquisitions),
            acquire_micros: get(&self.acquire_micros),
        }
    }
}
