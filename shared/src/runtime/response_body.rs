//! A streamed response's body, counted as running until the runtime has
//! read it to its end.
//!
//! A stream's last chunks are handed to the Lambda runtime's own task,
//! which forwards them to the Runtime API. A shutdown waits for running
//! invocations, and an invocation that ended when its last chunk was
//! queued could see the process exit before that chunk left: the client
//! would miss the end of the stream. So the body itself keeps the
//! invocation running until the runtime drops it, after its end.

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};

use crate::db::{Db, Invocation};

/// `B`, counted as running while it lives (see the module docs).
pub struct RunningBody<B> {
    body: B,
    _running: Option<Invocation>,
}

impl<B> RunningBody<B> {
    /// `body`, running on `db` until dropped.
    pub(crate) fn new(body: B, db: &Db) -> Self {
        Self {
            body,
            _running: Some(db.keep_running("response body")),
        }
    }
}

impl<B: From<String>> From<String> for RunningBody<B> {
    /// A whole body (an error's), which needs no counting: it is sent at
    /// once.
    fn from(text: String) -> Self {
        Self {
            body: B::from(text),
            _running: None,
        }
    }
}

impl<B: Body + Unpin> Body for RunningBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
