//! The reply's stream: the model's words, forwarded to the client as UI
//! message stream chunks as they come, then the end in order.
//!
//! The task is a small state machine. Its events are what the model and
//! the world do ([`Event`]: a piece of text, the model's end or failure, a
//! new chat's title, the function shutting down, the deadline); each one
//! becomes chunks for the client and what the stream has produced for the
//! end work to save; the first that ends the reply decides how
//! ([`Ending`]). Then the model is dropped (for a provider, that closes
//! its connection, which stops the generation it bills), the reply is
//! saved (the [`StreamGuard`]'s end work) and only then do the last chunks
//! go out, so a client that reads the chat right after sees it. When the
//! client has gone, nothing more is sent, but the words so far are saved
//! all the same. On shutdown the client is told, in an error chunk, before
//! the pool closes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::{BoxFuture, Fuse, FusedFuture, FutureExt};
use shared::runtime::{StreamEnd, StreamGuard};
use tokio::sync::mpsc;
use tokio::time::Instant;
use uuid::Uuid;

use crate::model::{ModelError, Reply};
use crate::title;
use crate::ui_stream::{self, Chunk};

/// The id of the reply's one text part.
const TEXT_PART: &str = "text-1";

/// What the client sees when the model fails mid-reply (upstream's
/// `onError`).
pub const ERROR_TEXT: &str = "Oops, an error occurred!";

/// What the client sees when the reply ran out of time.
pub const TIMEOUT_TEXT: &str = "The reply took too long and was stopped.";

/// What the client sees when the function stops mid-reply (Lambda retires
/// the environment): the words so far are saved, and it may ask again.
pub const SHUTDOWN_TEXT: &str =
    "The server was restarting and the reply was cut short. Please try again.";

/// How long a finished reply waits for a new chat's title still being
/// written.
const TITLE_GRACE: Duration = Duration::from_secs(2);

/// What the stream produced, for the end work to save.
#[derive(Debug, Default)]
pub(crate) struct Produced {
    pub(crate) text: String,
    pub(crate) title: Option<String>,
}

/// `produced`, locked.
pub(crate) fn lock(produced: &Mutex<Produced>) -> std::sync::MutexGuard<'_, Produced> {
    // A panic while holding it cannot leave it half-written: the fields are
    // replaced or appended to whole.
    produced.lock().unwrap_or_else(|e| e.into_inner())
}

/// Everything the reply's task needs, handed over when the stream starts.
pub(crate) struct ReplyTask {
    pub(crate) assistant_message_id: Uuid,
    pub(crate) reply: Reply,
    /// A new chat's title, being written.
    pub(crate) title: Option<BoxFuture<'static, Result<String, ModelError>>>,
    pub(crate) sink: mpsc::Sender<Bytes>,
    pub(crate) guard: StreamGuard,
    pub(crate) produced: Arc<Mutex<Produced>>,
    pub(crate) deadline: Instant,
    /// Completes when the process begins to shut down.
    pub(crate) shutdown: BoxFuture<'static, ()>,
}

/// What the reply reacts to.
enum Event {
    /// More of the model's text.
    Text(String),
    /// The model's reply is complete.
    ModelEnded,
    /// The model's reply broke off.
    ModelFailed(ModelError),
    /// A new chat's title, or why there is none.
    Title(Result<String, ModelError>),
    /// The function is shutting down.
    ShuttingDown,
    /// The reply's deadline passed.
    TimedOut,
}

/// How the reply ended.
#[derive(Debug, Clone, Copy)]
enum Ending {
    Completed,
    Failed(&'static str),
    ClientGone,
}

/// Runs the reply's stream to its end (see the module docs).
pub(crate) async fn run(task: ReplyTask) {
    let ReplyTask {
        assistant_message_id,
        reply,
        title,
        sink,
        mut guard,
        produced,
        deadline,
        shutdown,
    } = task;
    let mut stream = Stream {
        client: Client { sink, deadline },
        produced,
    };
    let mut events = Events {
        reply,
        title: title.map_or_else(Fuse::terminated, FutureExt::fuse),
        shutdown,
        deadline,
    };
    let mut ending = stream.open(&assistant_message_id.to_string()).await;
    while ending.is_none() {
        ending = stream.on(events.next().await).await;
    }
    let mut ending = ending.unwrap_or(Ending::Completed);
    // No more words are wanted: stop the model.
    drop(events.reply);
    if matches!(ending, Ending::Completed) {
        ending = stream.title_after_the_end(&mut events.title).await;
    }
    drop(events.title);
    stream.close(ending, &mut guard).await;
}

/// The client's end of the stream.
struct Client {
    sink: mpsc::Sender<Bytes>,
    deadline: Instant,
}

impl Client {
    /// Sends `bytes`; `false` when the client went away (the body was
    /// dropped) or stayed too slow past the deadline.
    async fn send(&self, bytes: Bytes) -> bool {
        let sent = tokio::time::timeout_at(self.deadline, self.sink.send(bytes)).await;
        matches!(sent, Ok(Ok(())))
    }
}

/// The reply as it is sent and recorded.
struct Stream {
    client: Client,
    produced: Arc<Mutex<Produced>>,
}

impl Stream {
    /// The message, its step and its text part begin.
    async fn open(&mut self, message_id: &str) -> Option<Ending> {
        for chunk in [
            Chunk::Start { message_id },
            Chunk::StartStep,
            Chunk::TextStart { id: TEXT_PART },
        ] {
            if !self.client.send(chunk.to_sse()).await {
                return Some(Ending::ClientGone);
            }
        }
        None
    }

    /// What `event` does to the reply; `Some` once it has ended.
    async fn on(&mut self, event: Event) -> Option<Ending> {
        match event {
            Event::Text(delta) => {
                lock(&self.produced).text.push_str(&delta);
                let chunk = Chunk::TextDelta {
                    id: TEXT_PART,
                    delta: &delta,
                };
                self.sent(chunk).await
            }
            Event::Title(written) => self.title(written).await,
            Event::ModelEnded => Some(Ending::Completed),
            Event::ModelFailed(error) => {
                tracing::error!(%error, "the model's reply broke off");
                Some(Ending::Failed(ERROR_TEXT))
            }
            Event::ShuttingDown => {
                tracing::warn!("the function is shutting down: ending the reply where it is");
                Some(Ending::Failed(SHUTDOWN_TEXT))
            }
            Event::TimedOut => {
                tracing::warn!("the reply reached its time limit");
                Some(Ending::Failed(TIMEOUT_TEXT))
            }
        }
    }

    /// Sends `chunk`; the client's leaving ends the reply.
    async fn sent(&self, chunk: Chunk<'_>) -> Option<Ending> {
        (!self.client.send(chunk.to_sse()).await).then_some(Ending::ClientGone)
    }

    /// A new chat's title, when the model has written one worth keeping.
    async fn title(&mut self, written: Result<String, ModelError>) -> Option<Ending> {
        let name = written.ok().and_then(|t| title::clean(&t))?;
        let chunk = Chunk::ChatTitle { data: &name }.to_sse();
        lock(&self.produced).title = Some(name);
        (!self.client.send(chunk).await).then_some(Ending::ClientGone)
    }

    /// A short reply can end before the model's title call returns; a new
    /// chat's title is worth a short wait.
    async fn title_after_the_end(
        &mut self,
        title: &mut Fuse<BoxFuture<'static, Result<String, ModelError>>>,
    ) -> Ending {
        if title.is_terminated() {
            return Ending::Completed;
        }
        let grace = self.client.deadline.min(Instant::now() + TITLE_GRACE);
        match tokio::time::timeout_at(grace, title).await {
            Ok(written) => self.title(written).await.unwrap_or(Ending::Completed),
            Err(_) => Ending::Completed,
        }
    }

    /// Saves the reply (the guard's end work), then sends the last chunks.
    async fn close(self, ending: Ending, guard: &mut StreamGuard) {
        let (end, closing) = match ending {
            Ending::Completed => (
                StreamEnd::Completed,
                vec![
                    Chunk::TextEnd { id: TEXT_PART },
                    Chunk::FinishStep,
                    Chunk::Finish,
                ],
            ),
            Ending::Failed(text) => (
                StreamEnd::Failed,
                vec![
                    Chunk::TextEnd { id: TEXT_PART },
                    Chunk::Error { error_text: text },
                ],
            ),
            Ending::ClientGone => (StreamEnd::Abandoned, Vec::new()),
        };
        guard.finish(end).await;
        if end == StreamEnd::Abandoned {
            return;
        }
        for chunk in closing {
            if !self.client.send(chunk.to_sse()).await {
                return;
            }
        }
        let _ = self.client.send(Bytes::from_static(ui_stream::DONE)).await;
    }
}

/// Where the events come from.
struct Events {
    reply: Reply,
    title: Fuse<BoxFuture<'static, Result<String, ModelError>>>,
    shutdown: BoxFuture<'static, ()>,
    deadline: Instant,
}

impl Events {
    async fn next(&mut self) -> Event {
        tokio::select! {
            // The title first when both are ready: the stream's bytes are
            // then the same every time for the same reply.
            biased;
            written = &mut self.title, if !self.title.is_terminated() => Event::Title(written),
            // SIGTERM: end the reply here, in order, so that the words the
            // client has are saved before the pool closes.
            () = &mut self.shutdown => Event::ShuttingDown,
            next = tokio::time::timeout_at(self.deadline, self.reply.next()) => match next {
                Ok(Some(Ok(delta))) => Event::Text(delta),
                Ok(None) => Event::ModelEnded,
                Ok(Some(Err(error))) => Event::ModelFailed(error),
                Err(_) => Event::TimedOut,
            },
        }
    }
}
