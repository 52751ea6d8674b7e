//! The most backends the server shows for one `application_name`, sampled
//! in `pg_stat_activity` while a test runs: what proves "never more than
//! the pool's maximum" under load, when a count at the end would miss the
//! peak.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use crate::TestDb;

/// Records the most backends of `application_name` the server shows while
/// it runs, sampling every few milliseconds.
pub struct BackendSampler {
    max: Arc<AtomicI64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl BackendSampler {
    /// Starts sampling `db` for backends of `application_name`.
    pub fn start(db: &TestDb, application_name: &'static str) -> BackendSampler {
        let max = Arc::new(AtomicI64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let pool = db.observer().clone();
        let name = db.name().to_owned();
        let (max2, stop2) = (max.clone(), stop.clone());
        let task = tokio::spawn(async move {
            while !stop2.load(Ordering::Relaxed) {
                let n: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
                )
                .bind(&name)
                .bind(application_name)
                .fetch_one(&pool)
                .await
                .expect("sample pg_stat_activity");
                max2.fetch_max(n, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        });
        BackendSampler { max, stop, task }
    }

    /// Stops sampling, and returns the most backends seen.
    pub async fn stop(self) -> i64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("sampler");
        self.max.load(Ordering::Relaxed)
    }
}
