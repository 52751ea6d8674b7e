//! The stream guard: the Node.js design's try/finally around streamed responses.
//!
//! A streamed response outlives its handler: the handler returns the
//! response head at once, and the body keeps producing chunks afterwards.
//! The guard travels with the body. However the stream ends (it completes,
//! it fails, or the client goes away and the body is dropped), the guard's
//! end work runs exactly once, then the connection release and the leak
//! check that [`with_db_cleanup`](super::with_db_cleanup) does for ordinary
//! handlers. While the stream runs, it counts as an invocation in flight,
//! so that no leak check mistakes its work for a leak.

use std::future::Future;

use futures_util::future::BoxFuture;

use super::Db;
use super::pool::Invocation;
use super::release_connection;

/// How a stream ended, as told to the guard's end work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// Every chunk was produced.
    Completed,
    /// Production failed (the error was reported inside the stream).
    Failed,
    /// The stream was dropped before it ended: the client went away, or
    /// the function is shutting down.
    Abandoned,
}

type EndWork = Box<dyn FnOnce(StreamEnd) -> BoxFuture<'static, ()> + Send>;

/// Owned by a streaming body; runs its end work exactly once (see the
/// module docs).
pub struct StreamGuard {
    label: &'static str,
    end_work: Option<EndWork>,
    invocation: Option<Invocation>,
}

impl StreamGuard {
    /// A guard for one stream served from `db`'s pool.
    pub fn new(db: &Db, label: &'static str) -> Self {
        Self {
            label,
            end_work: None,
            invocation: Some(db.begin_invocation(label)),
        }
    }

    /// Work to run when the stream ends, whatever the way (for example,
    /// saving what was generated). It runs once.
    pub fn on_end<F, Fut>(mut self, work: F) -> Self
    where
        F: FnOnce(StreamEnd) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.end_work = Some(Box::new(move |end| Box::pin(work(end))));
        self
    }

    /// Ends the stream in order: the end work runs now (awaited, so that the
    /// stream's last chunk can follow it), then the release. The
    /// invocation counts as running until the guard is dropped: keep it
    /// until the last chunk is sent, so that a shutdown waiting for running
    /// invocations ([`Db::shutting_down`](super::Db::shutting_down)) waits
    /// for that chunk too.
    pub async fn finish(&mut self, end: StreamEnd) {
        if let Some(work) = self.end_work.take() {
            work(end).await;
        }
        release_connection().await;
        tracing::debug!(stream = self.label, ?end, "stream ended");
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let invocation = self.invocation.take();
        let Some(work) = self.end_work.take() else {
            return; // finished in order; the invocation ends here
        };
        let label = self.label;
        tracing::debug!(stream = label, "stream abandoned before its end");
        // Drop cannot wait: run the end work on the runtime, detached from
        // the (dropped) body, and only then end the invocation.
        let cleanup = async move {
            work(StreamEnd::Abandoned).await;
            release_connection().await;
            drop(invocation);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(cleanup);
            }
            Err(_) => tracing::error!(
                stream = label,
                "stream dropped outside a runtime: its end work could not run"
            ),
        }
    }
}
