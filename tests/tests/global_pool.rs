//! The process-wide pool, as `main` uses it: built once, shared by every
//! invocation through `with_db_cleanup`, and closed by the Node.js design's
//! `close_all_connections()`. One test in this file: the global is per
//! process.

use std::time::{Duration, Instant};

use integration_tests::{ApiRequest, Shape, TestApp, TestDb, read};
use lambda_http::tower::ServiceExt;
use shared::AppState;
use shared::db::{close_all_connections, close_db_connection, global, release_connection};
use shared::http::identity::UserType;
use shared::runtime::with_db_cleanup;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_pool_serves_every_invocation_and_close_all_connections_empties_it_once_and_for_all()
 {
    let db = TestDb::migrated().await;
    // Sized as on classic Lambda: one invocation at a time, one connection.
    let helper = TestApp::new(&db, "history", &[("DB_POOL_MAX", "1")]);
    let ada = helper.user("ada@example.com", UserType::Regular).await;
    let config = helper.state.config.as_ref().clone();

    // Before init there is nothing to get, and nothing to close.
    assert!(matches!(
        global::get(),
        Err(global::GlobalPoolError::NotInitialised)
    ));
    close_all_connections().await;
    // Outside a Tokio runtime it refuses, rather than panicking in sqlx.
    let db_config = config.db.clone();
    let outside = std::thread::spawn(move || global::init(&db_config).map(|_| ())).join();
    assert!(matches!(
        outside,
        Ok(Err(global::GlobalPoolError::NoRuntime))
    ));

    let pool = global::init(&config.db).expect("init");
    let again = global::init(&config.db).expect("init again");
    assert!(std::ptr::eq(pool, again), "one pool per process");
    assert!(std::ptr::eq(pool, global::get().expect("get")));

    let state = AppState::new(pool.clone(), config);
    let service = with_db_cleanup(state, history::handle);
    for _ in 0..20 {
        let request = ApiRequest::get("/api/history")
            .bearer(&ada.token)
            .build(Shape::HttpV2);
        let response = read(service.clone().oneshot(request).await.expect("infallible"));
        assert_eq!(response.status, 200, "{}", response.text);
    }
    assert_eq!(db.backends("chat-backend:history").await, 1);

    // The Node.js design's helpers exist under both names and change nothing.
    release_connection().await;
    close_db_connection().await;
    assert_eq!(db.backends("chat-backend:history").await, 1);

    let started = Instant::now();
    close_all_connections().await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        db.wait_for_backends("chat-backend:history", 0, Duration::from_secs(2))
            .await,
        0
    );

    // Twice is harmless.
    close_all_connections().await;

    // A request after it gets a clean 503, and opens nothing.
    let request = ApiRequest::get("/api/history")
        .bearer(&ada.token)
        .build(Shape::HttpV2);
    let response = read(service.oneshot(request).await.expect("infallible"));
    assert_eq!(response.status, 503);
    assert_eq!(response.json["code"], "");
    assert_eq!(db.backends("chat-backend:history").await, 0);
}
