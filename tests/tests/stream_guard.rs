//! The stream guard, the Node.js design's try/finally around streamed responses: its
//! end work runs exactly once however the stream ends, and the leak check
//! waits for the stream rather than mistaking its work for a leak.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use integration_tests::{TestApp, TestDb};
use shared::db::LEAK_SETTLE;
use shared::runtime::{StreamEnd, StreamGuard};
use tokio::sync::mpsc;

/// A guard whose end work records how it ended, after a query of its own.
fn guard(
    app: &TestApp,
    ends: mpsc::UnboundedSender<StreamEnd>,
    runs: Arc<AtomicUsize>,
) -> StreamGuard {
    let pool = app.db().pool().clone();
    StreamGuard::new(&app.state, "test-stream").on_end(move |end, _state| async move {
        sqlx::query("SELECT 1")
            .execute(&pool)
            .await
            .expect("end work query");
        runs.fetch_add(1, Ordering::SeqCst);
        let _ = ends.send(end);
        Ok(())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_stream_runs_its_end_work_once_in_order() {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "chat", &[]);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let runs = Arc::new(AtomicUsize::new(0));
    let mut stream = guard(&app, tx, runs.clone());
    stream.finish(StreamEnd::Completed).await;
    // finish() awaited the end work: it has run by now.
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(rx.recv().await, Some(StreamEnd::Completed));
    // Dropping the finished guard ends the invocation, and runs nothing.
    drop(stream);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(rx.try_recv().is_err());
    assert_eq!(app.checked_out_after_settling().await, 0);
    assert_eq!(app.db().metrics().snapshot().leaks, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stream_still_runs_its_end_work_once_as_abandoned() {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "chat", &[]);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let runs = Arc::new(AtomicUsize::new(0));
    // The client goes away: the body, and the guard in it, are dropped.
    drop(guard(&app, tx, runs.clone()));
    let end = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("end work ran");
    assert_eq!(end, Some(StreamEnd::Abandoned));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(app.checked_out_after_settling().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_stream_counts_as_in_flight_so_its_connection_is_no_leak() {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "chat", &[]);
    let mut guard = StreamGuard::new(&app.state, "long-stream");
    // Work of the stream holds a connection while an unrelated, finished
    // invocation's leak check runs.
    let held = app.db().pool().acquire().await.expect("connection");
    let (tx, mut rx) = mpsc::unbounded_channel();
    drop(self::guard(&app, tx, Arc::new(AtomicUsize::new(0))));
    // The dropped stream's end work runs, then its invocation ends. A leak
    // check started then would count the held connection once returns had
    // LEAK_SETTLE to settle: wait for the end work, then past that.
    let _ = tokio::time::timeout(LEAK_SETTLE, rx.recv()).await;
    app.wait_for_leaks(LEAK_SETTLE + Duration::from_millis(500))
        .await;
    assert_eq!(
        app.db().metrics().snapshot().leaks,
        0,
        "the open stream's connection is no leak"
    );
    drop(held);
    guard.finish(StreamEnd::Failed).await;
    drop(guard);
    let start = Instant::now();
    while app.db().checked_out() > 0 && start.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(app.db().checked_out(), 0);
    assert_eq!(app.db().metrics().snapshot().leaks, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_pool_first_lets_a_running_stream_end_in_order_and_save() {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "chat", &[]);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let runs = Arc::new(AtomicUsize::new(0));
    let mut stream = guard(&app, tx, runs.clone());
    // A stream that would run for a minute, unless told to stop.
    let shutting_down = app.db().shutting_down();
    let task = tokio::spawn(async move {
        tokio::select! {
            () = shutting_down => stream.finish(StreamEnd::Failed).await,
            () = tokio::time::sleep(Duration::from_secs(60)) => stream.finish(StreamEnd::Completed).await,
        }
        drop(stream);
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    app.db().close_within(Duration::from_secs(5)).await;
    let took = started.elapsed();
    // The end work's query ran on the pool before it closed.
    assert_eq!(rx.try_recv().ok(), Some(StreamEnd::Failed));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(took < Duration::from_secs(1), "{took:?}");
    task.await.expect("stream task");
    assert!(app.db().pool().is_closed());
    assert_eq!(app.db().size(), 0);
    // Late work learns of the shutdown at once.
    tokio::time::timeout(Duration::from_millis(100), app.db().shutting_down())
        .await
        .expect("already shutting down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_ignores_the_shutdown_delays_closing_by_the_wind_down_only() {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "chat", &[]);
    let stream = StreamGuard::new(&app.state, "deaf-stream");
    let started = Instant::now();
    app.db().close_within(Duration::from_secs(5)).await;
    let took = started.elapsed();
    assert!(
        took >= shared::db::WIND_DOWN && took < shared::db::WIND_DOWN + Duration::from_secs(1),
        "{took:?}"
    );
    assert!(app.db().pool().is_closed());
    drop(stream);
}
