//! The stream guard: the Node.js design's try/finally around streamed responses.
//!
//! A streamed response outlives its handler: the handler returns the
//! response head at once, and the body keeps producing chunks afterwards.
//! The guard travels with the body. However the stream ends (it completes,
//! it fails, or the client goes away and the body is dropped), the guard's
//! end work runs exactly once, in a unit of work of its own that commits
//! if the end work succeeds, then the connection release and the leak
//! check that [`with_db_cleanup`](super::with_db_cleanup) does for ordinary
//! handlers. While the stream runs, it counts as an invocation in flight,
//! so that no leak check mistakes its work for a leak. The end work runs
//! in the span of the invocation that started the stream, so its log lines
//! carry that invocation's request id even when the body was dropped
//! elsewhere.

use std::future::Future;

use futures_util::future::BoxFuture;
use tracing::{Instrument, Span};

use super::unit_of_work;
use crate::db::{Invocation, release_connection};
use crate::http::{ApiResult, AppState};

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

type EndWork = Box<dyn FnOnce(StreamEnd, AppState) -> BoxFuture<'static, ApiResult<()>> + Send>;

/// Owned by a streaming body; runs its end work exactly once (see the
/// module docs).
pub struct StreamGuard {
    label: &'static str,
    state: AppState,
    end_work: Option<EndWork>,
    invocation: Option<Invocation>,
    /// The span of the invocation that started the stream.
    span: Span,
}

impl StreamGuard {
    /// A guard for one stream of the function whose state is `state`.
    pub fn new(state: &AppState, label: &'static str) -> Self {
        Self {
            label,
            state: state.clone(),
            end_work: None,
            invocation: Some(state.db.begin_invocation(label)),
            span: Span::current(),
        }
    }

    /// Work to run when the stream ends, whatever the way (for example,
    /// saving what was generated). It runs once, in a unit of work of its
    /// own: what it writes is committed if it answers `Ok`, rolled back if
    /// it fails (the failure is logged).
    pub fn on_end<F, Fut>(mut self, work: F) -> Self
    where
        F: FnOnce(StreamEnd, AppState) -> Fut + Send + 'static,
        Fut: Future<Output = ApiResult<()>> + Send + 'static,
    {
        self.end_work = Some(Box::new(move |end, state| Box::pin(work(end, state))));
        self
    }

    /// Ends the stream in order: the end work runs now (awaited, so that the
    /// stream's last chunk can follow it), then the release. The
    /// invocation counts as running until the guard is dropped: keep it
    /// until the last chunk is sent, so that a shutdown waiting for running
    /// invocations (`Db::shutting_down`) waits for that chunk too.
    pub async fn finish(&mut self, end: StreamEnd) {
        if let Some(work) = self.end_work.take() {
            run_end_work(self.label, &self.state, work, end)
                .instrument(self.span.clone())
                .await;
        }
        release_connection().await;
        tracing::debug!(stream = self.label, ?end, "stream ended");
    }
}

async fn run_end_work(label: &'static str, state: &AppState, work: EndWork, end: StreamEnd) {
    if let Err(error) = unit_of_work(state, |state| work(end, state)).await {
        // Debug shows the source chain: a database error's step, and why.
        tracing::error!(stream = label, ?end, ?error, "the stream's end work failed");
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let invocation = self.invocation.take();
        let Some(work) = self.end_work.take() else {
            return; // finished in order; the invocation ends here
        };
        let label = self.label;
        let state = self.state.clone();
        let span = self.span.clone();
        span.in_scope(|| tracing::debug!(stream = label, "stream abandoned before its end"));
        // Drop cannot wait: run the end work on the runtime, detached from
        // the (dropped) body, and only then end the invocation.
        let cleanup = async move {
            run_end_work(label, &state, work, StreamEnd::Abandoned).await;
            release_connection().await;
            drop(invocation);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(cleanup.instrument(span));
            }
            Err(_) => span.in_scope(|| {
                tracing::error!(
                    stream = label,
                    "stream dropped outside a runtime: its end work could not run"
                )
            }),
        }
    }
}
