//! A local Lambda Runtime API, to run a function's real binary as Lambda
//! runs it.
//!
//! AWS Lambda is the one part of the stack this machine cannot reach, so
//! the tests speak its protocol themselves: the function process polls
//! `GET /2018-06-01/runtime/invocation/next` for work and posts its answer
//! to `.../invocation/{id}/response` (or `/error`), exactly as it does on
//! Lambda; it registers its shutdown extension at
//! `POST /2020-01-01/extension/register`. [`FakeLambda::invoke`] queues an
//! event and waits for the function's answer; [`FakeLambda::first_poll`]
//! says when the process first asked for work, the end of what Lambda
//! bills as init (the benchmarks time cold starts with it).
//!
//! Two more parts of the protocol, for the tests of concurrency and
//! SnapStart: events are handed to as many pollers as ask, and
//! [`FakeLambda::max_in_flight`] says how many a process held at once (a
//! Lambda Managed Instances process polls with one worker per slot);
//! `GET /2018-06-01/runtime/restore/next`, which a process started with
//! `AWS_LAMBDA_INITIALIZATION_TYPE=snap-start` calls once its init is done,
//! is held, as Lambda holds it while it takes the snapshot, until
//! [`FakeLambda::restore`]; restore errors are kept for
//! [`FakeLambda::restore_errors`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

use crate::runtime_api::{Pending, extension_next, registered, serve};

/// What a function answered to one invocation.
#[derive(Debug)]
pub enum Outcome {
    /// The body posted to `/response`.
    Response(Bytes),
    /// The body posted to `/error`.
    Error(Value),
}

impl Outcome {
    /// The response body as JSON, or a panic saying what came instead.
    pub fn json(&self) -> Value {
        match self {
            Outcome::Response(body) => serde_json::from_slice(body)
                .unwrap_or_else(|e| panic!("response is not JSON ({e}): {body:?}")),
            Outcome::Error(error) => panic!("the function reported an error: {error}"),
        }
    }
}

#[derive(Default)]
struct Inner {
    answers: HashMap<String, oneshot::Sender<Outcome>>,
    extensions_registered: usize,
    init_errors: Vec<Value>,
    /// When the first `/next` poll came.
    first_poll: Option<Instant>,
    /// Events handed out and not yet answered, and the most at once.
    in_flight: usize,
    max_in_flight: usize,
    /// Whether the process has called `/restore/next`: its snapshot
    /// would be taken now.
    snapshot_requested: bool,
    restore_errors: Vec<Value>,
}

#[derive(Clone)]
struct AppState {
    queue: Arc<Mutex<mpsc::UnboundedReceiver<Pending>>>,
    inner: Arc<Mutex<Inner>>,
    polled: Arc<Notify>,
    snapshot: Arc<Snapshot>,
}

/// The snapshot a SnapStart process waits on at `/restore/next`.
#[derive(Default)]
struct Snapshot {
    /// Wakes whoever waits for the process to reach `/restore/next`.
    requested: Notify,
    /// Set when the test lets the process go on: restored.
    restored: tokio::sync::watch::Sender<bool>,
}

/// A running local Runtime API.
pub struct FakeLambda {
    addr: SocketAddr,
    sender: mpsc::UnboundedSender<Pending>,
    inner: Arc<Mutex<Inner>>,
    polled: Arc<Notify>,
    snapshot: Arc<Snapshot>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeLambda {
    /// Starts one on a free local port.
    pub async fn start() -> FakeLambda {
        let (sender, receiver) = mpsc::unbounded_channel();
        let inner = Arc::new(Mutex::new(Inner::default()));
        let polled = Arc::new(Notify::new());
        let snapshot = Arc::new(Snapshot::default());
        let state = AppState {
            queue: Arc::new(Mutex::new(receiver)),
            inner: inner.clone(),
            polled: polled.clone(),
            snapshot: snapshot.clone(),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .route("/2018-06-01/runtime/restore/next", get(restore_next))
            .route("/2018-06-01/runtime/restore/error", post(restore_error))
            .route("/2020-01-01/extension/register", post(register))
            .route("/2020-01-01/extension/event/next", get(extension_next))
            .with_state(state);
        let (addr, server) = serve(app).await;
        FakeLambda {
            addr,
            sender,
            inner,
            polled,
            snapshot,
            server,
        }
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn runtime_api(&self) -> String {
        self.addr.to_string()
    }

    /// The environment Lambda gives a function process, pointing here.
    pub fn function_env(&self, function: &str) -> Vec<(String, String)> {
        crate::runtime_api::function_env(self.addr, function)
    }

    /// [`FakeLambda::function_env`] for `function` on `db`, signing tokens
    /// with [`crate::TEST_AUTH_SECRET`], plus `vars`.
    pub fn function_env_on(
        &self,
        function: &str,
        db: &crate::TestDb,
        vars: &[(&str, &str)],
    ) -> Vec<(String, String)> {
        crate::runtime_api::function_env_on(self.addr, function, db, vars)
    }

    /// Queues `event` for the function and waits (up to `timeout`) for its
    /// answer. The invocation's deadline is `timeout` from now.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Outcome {
        let pending = Pending::new(event, timeout);
        let (tx, rx) = oneshot::channel();
        self.inner
            .lock()
            .await
            .answers
            .insert(pending.id.clone(), tx);
        self.sender
            .send(pending)
            .expect("the fake Lambda API is running");
        tokio::time::timeout(timeout, rx)
            .await
            .expect("the function did not answer in time")
            .expect("the invocation was dropped")
    }

    /// How many extensions registered (the shutdown hook registers one).
    pub async fn extensions_registered(&self) -> usize {
        self.inner.lock().await.extensions_registered
    }

    /// When the function first polled for work, waiting up to `bound`
    /// for it; `None` if it did not.
    pub async fn first_poll(&self, bound: Duration) -> Option<Instant> {
        let wait = async {
            loop {
                let polled = self.polled.notified();
                if let Some(at) = self.inner.lock().await.first_poll {
                    return at;
                }
                polled.await;
            }
        };
        tokio::time::timeout(bound, wait).await.ok()
    }

    /// Errors the function reported at init.
    pub async fn init_errors(&self) -> Vec<Value> {
        self.inner.lock().await.init_errors.clone()
    }

    /// The most events the function held at once (handed out by `/next`,
    /// not yet answered).
    pub async fn max_in_flight(&self) -> usize {
        self.inner.lock().await.max_in_flight
    }

    /// Events the function holds right now.
    pub async fn in_flight(&self) -> usize {
        self.inner.lock().await.in_flight
    }

    /// Waits up to `bound` for a SnapStart process to finish its init and
    /// call `/restore/next` (the moment Lambda takes the snapshot); false
    /// if it did not.
    pub async fn snapshot_requested(&self, bound: Duration) -> bool {
        let wait = async {
            loop {
                let requested = self.snapshot.requested.notified();
                if self.inner.lock().await.snapshot_requested {
                    return;
                }
                requested.await;
            }
        };
        tokio::time::timeout(bound, wait).await.is_ok()
    }

    /// Answers the held `/restore/next` (and any later one): the process
    /// is restored from its snapshot.
    pub fn restore(&self) {
        self.snapshot.restored.send_replace(true);
    }

    /// Errors the function reported after a restore.
    pub async fn restore_errors(&self) -> Vec<Value> {
        self.inner.lock().await.restore_errors.clone()
    }
}

impl Drop for FakeLambda {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next(State(state): State<AppState>) -> Response {
    let now = Instant::now();
    state.inner.lock().await.first_poll.get_or_insert(now);
    state.polled.notify_waiters();
    // One poller at a time takes the next event; others wait their turn.
    let pending = state.queue.lock().await.recv().await;
    let Some(pending) = pending else {
        return StatusCode::GONE.into_response();
    };
    {
        let mut inner = state.inner.lock().await;
        inner.in_flight += 1;
        inner.max_in_flight = inner.max_in_flight.max(inner.in_flight);
    }
    pending.into_response()
}

async fn response(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    answer(&state, &id, Outcome::Response(body)).await
}

async fn error(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    answer(&state, &id, Outcome::Error(value)).await
}

async fn answer(state: &AppState, id: &str, outcome: Outcome) -> StatusCode {
    let mut inner = state.inner.lock().await;
    match inner.answers.remove(id) {
        Some(tx) => {
            inner.in_flight = inner.in_flight.saturating_sub(1);
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

async fn init_error(State(state): State<AppState>, body: Bytes) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state.inner.lock().await.init_errors.push(value);
    StatusCode::ACCEPTED
}

async fn restore_next(State(state): State<AppState>) -> StatusCode {
    let mut restored = state.snapshot.restored.subscribe();
    state.inner.lock().await.snapshot_requested = true;
    state.snapshot.requested.notify_waiters();
    // Lambda answers only once the environment is restored from the
    // snapshot; until then the process waits here, its init over.
    match restored.wait_for(|restored| *restored).await {
        Ok(_) => StatusCode::OK,
        Err(_) => StatusCode::GONE,
    }
}

async fn restore_error(State(state): State<AppState>, body: Bytes) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state.inner.lock().await.restore_errors.push(value);
    StatusCode::ACCEPTED
}

async fn register(State(state): State<AppState>) -> Response {
    state.inner.lock().await.extensions_registered += 1;
    registered()
}
