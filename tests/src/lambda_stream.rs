//! A local Lambda Runtime API that hands over streamed responses as they
//! come, chunk by chunk.
//!
//! [`crate::lambda_api::FakeLambda`] reads a response whole. A function
//! that streams (`chat`) posts its answer with
//! `Lambda-Runtime-Function-Response-Mode: streaming`, chunked: a JSON
//! prelude (status and headers), eight NUL bytes, then the body as it is
//! produced, and error trailers if it fails midway. This API forwards every
//! chunk to the test the moment it arrives, so that a test can act in the
//! middle of a stream (send SIGTERM, pause the process) and see exactly
//! what the client had received by then. It also serves the extension
//! endpoints the shutdown hook registers with, and buffered answers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::sync::{Mutex, mpsc};

use crate::runtime_api::{Pending, extension_next, registered, serve};

/// What arrives for one invocation.
#[derive(Debug)]
pub enum Piece {
    /// A chunk of the response body as posted (prelude included).
    Chunk(Bytes),
    /// The response is complete; `trailers` names an error if there was one.
    End {
        /// Trailers (`lambda-runtime-function-error-type`, ...).
        trailers: Vec<(String, String)>,
    },
    /// The function reported an error (`/error`).
    Error(Value),
}

#[derive(Default)]
struct Inner {
    sinks: HashMap<String, mpsc::UnboundedSender<Piece>>,
    extensions_registered: usize,
}

#[derive(Clone)]
struct AppState {
    queue: Arc<Mutex<mpsc::UnboundedReceiver<Pending>>>,
    inner: Arc<Mutex<Inner>>,
}

/// A running local Runtime API with streaming responses.
pub struct StreamingLambda {
    addr: SocketAddr,
    sender: mpsc::UnboundedSender<Pending>,
    inner: Arc<Mutex<Inner>>,
    server: tokio::task::JoinHandle<()>,
}

/// One invocation's answer, as it arrives.
pub struct Invocation {
    /// The request id Lambda gave the invocation.
    pub request_id: String,
    pieces: mpsc::UnboundedReceiver<Piece>,
    /// Everything received so far, prelude included.
    pub received: Vec<u8>,
    /// Whether the answer is complete.
    pub ended: bool,
    /// Trailers of the end, if any.
    pub trailers: Vec<(String, String)>,
    /// An error posted to `/error`.
    pub error: Option<Value>,
}

impl StreamingLambda {
    /// Starts one on a free local port.
    pub async fn start() -> StreamingLambda {
        let (sender, receiver) = mpsc::unbounded_channel();
        let inner = Arc::new(Mutex::new(Inner::default()));
        let state = AppState {
            queue: Arc::new(Mutex::new(receiver)),
            inner: inner.clone(),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .route("/2020-01-01/extension/register", post(register))
            .route("/2020-01-01/extension/event/next", get(extension_next))
            .with_state(state);
        let (addr, server) = serve(app).await;
        StreamingLambda {
            addr,
            sender,
            inner,
            server,
        }
    }

    /// Where it listens (`AWS_LAMBDA_RUNTIME_API`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The environment Lambda gives a function process, pointing here.
    pub fn function_env(&self, function: &str) -> Vec<(String, String)> {
        crate::runtime_api::function_env(self.addr, function)
    }

    /// [`StreamingLambda::function_env`] for `function` on `db`, signing
    /// tokens with [`crate::TEST_AUTH_SECRET`], plus `vars`.
    pub fn function_env_on(
        &self,
        function: &str,
        db: &crate::TestDb,
        vars: &[(&str, &str)],
    ) -> Vec<(String, String)> {
        crate::runtime_api::function_env_on(self.addr, function, db, vars)
    }

    /// Queues `event`, with a deadline `deadline` from now; the answer
    /// arrives in the returned [`Invocation`].
    pub async fn invoke(&self, event: Value, deadline: Duration) -> Invocation {
        let pending = Pending::new(event, deadline);
        let request_id = pending.id.clone();
        let (tx, rx) = mpsc::unbounded_channel();
        self.inner.lock().await.sinks.insert(pending.id.clone(), tx);
        self.sender
            .send(pending)
            .expect("the fake Lambda API is running");
        Invocation {
            request_id,
            pieces: rx,
            received: Vec::new(),
            ended: false,
            trailers: Vec::new(),
            error: None,
        }
    }

    /// How many extensions registered (the shutdown hook registers one).
    pub async fn extensions_registered(&self) -> usize {
        self.inner.lock().await.extensions_registered
    }
}

impl Drop for StreamingLambda {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Invocation {
    /// Waits (up to `bound`) for the next piece; false when nothing more
    /// will come or the bound passed.
    pub async fn next(&mut self, bound: Duration) -> bool {
        if self.ended {
            return false;
        }
        match tokio::time::timeout(bound, self.pieces.recv()).await {
            Ok(Some(Piece::Chunk(bytes))) => {
                self.received.extend_from_slice(&bytes);
                true
            }
            Ok(Some(Piece::End { trailers })) => {
                self.trailers = trailers;
                self.ended = true;
                false
            }
            Ok(Some(Piece::Error(error))) => {
                self.error = Some(error);
                self.ended = true;
                false
            }
            Ok(None) => {
                self.ended = true;
                false
            }
            Err(_) => false,
        }
    }

    /// Reads until the body holds `needle` (true), or the answer ends or
    /// `bound` passes (false).
    pub async fn until_contains(&mut self, needle: &str, bound: Duration) -> bool {
        let start = Instant::now();
        while !self.body_text().contains(needle) {
            let left = bound.saturating_sub(start.elapsed());
            if left.is_zero() || !self.next(left).await && self.ended {
                return self.body_text().contains(needle);
            }
        }
        true
    }

    /// Reads to the end of the answer, for at most `bound`; true if it ended.
    pub async fn until_end(&mut self, bound: Duration) -> bool {
        let start = Instant::now();
        while !self.ended {
            let left = bound.saturating_sub(start.elapsed());
            if left.is_zero() {
                return false;
            }
            self.next(left).await;
        }
        true
    }

    /// The prelude (`{"statusCode", "headers", ...}`), once received.
    pub fn prelude(&self) -> Option<Value> {
        let end = find(&self.received, &[0_u8; 8])?;
        serde_json::from_slice(&self.received[..end]).ok()
    }

    /// The body received so far (after the prelude), as text. For a
    /// buffered answer (no prelude), the whole answer.
    pub fn body_text(&self) -> String {
        match find(&self.received, &[0_u8; 8]) {
            Some(end) => String::from_utf8_lossy(&self.received[end + 8..]).into_owned(),
            None if self.received.first() == Some(&b'{') && self.ended => {
                String::from_utf8_lossy(&self.received).into_owned()
            }
            None => String::new(),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

async fn next(State(state): State<AppState>) -> Response {
    let pending = state.queue.lock().await.recv().await;
    let Some(pending) = pending else {
        return StatusCode::GONE.into_response();
    };
    pending.into_response()
}

async fn response(State(state): State<AppState>, Path(id): Path<String>, body: Body) -> StatusCode {
    let Some(sink) = state.inner.lock().await.sinks.remove(&id) else {
        return StatusCode::NOT_FOUND;
    };
    let mut body = body;
    let mut trailers = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            // The function went away mid-answer.
            break;
        };
        match frame.into_data() {
            Ok(data) => {
                let _ = sink.send(Piece::Chunk(data));
            }
            Err(frame) => {
                if let Ok(map) = frame.into_trailers() {
                    for (name, value) in &map {
                        trailers.push((
                            name.as_str().to_owned(),
                            value.to_str().unwrap_or("").to_owned(),
                        ));
                    }
                }
            }
        }
    }
    let _ = sink.send(Piece::End { trailers });
    StatusCode::ACCEPTED
}

async fn error(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match state.inner.lock().await.sinks.remove(&id) {
        Some(sink) => {
            let _ = sink.send(Piece::Error(value));
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

async fn init_error() -> StatusCode {
    StatusCode::ACCEPTED
}

async fn register(State(state): State<AppState>) -> Response {
    state.inner.lock().await.extensions_registered += 1;
    registered()
}
