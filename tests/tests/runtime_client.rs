//! The functions' connections to the Lambda Runtime API send each write at
//! once (`TCP_NODELAY`), so that a streamed reply never waits for the Runtime
//! API's delayed ACK (vendor/lambda_runtime_api_client/PATCHED.md).
//!
//! The first test reads the option off the real processes' own sockets
//! (`pidfd_getfd`, the way a debugger borrows a descriptor); the second shows
//! what it is for: warm streamed replies whose first word comes in a few
//! milliseconds, where with Nagle's algorithm half of them waited 40 ms.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use integration_tests::captured::Captured;
use integration_tests::fault_kit::{chat_body, chat_post};
use integration_tests::lambda_api::FakeLambda;
use integration_tests::lambda_stream::StreamingLambda;
use integration_tests::{ApiRequest, Shape, TestApp, TestDb, TestUser};
use rustix::net::{SocketAddrAny, getpeername, sockopt};
use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags, pidfd_getfd, pidfd_open};
use shared::http::identity::UserType;
use uuid::Uuid;

/// The offline model replies without a pause between words.
const NO_PAUSE: &[(&str, &str)] = &[("OFFLINE_MODEL_DELAY_MS", "0")];

/// The TCP sockets of process `pid` connected to `peer`, borrowed into this
/// process.
fn sockets_to(pid: i32, peer: std::net::SocketAddr) -> Vec<OwnedFd> {
    let pidfd =
        pidfd_open(Pid::from_raw(pid).expect("a pid"), PidfdFlags::empty()).expect("pidfd_open");
    let entries = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("list the descriptors");
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(
            |target| match pidfd_getfd(&pidfd, target, PidfdGetfdFlags::empty()) {
                Ok(fd) => Some(fd),
                // Borrowing a child's descriptor needs what ptrace needs.
                Err(rustix::io::Errno::PERM) => {
                    panic!("pidfd_getfd is not permitted here (kernel.yama.ptrace_scope)")
                }
                // Closed since it was listed.
                Err(_) => None,
            },
        )
        .filter(|fd| {
            getpeername(fd)
                .ok()
                .flatten()
                .and_then(|addr: SocketAddrAny| std::net::SocketAddr::try_from(addr).ok())
                == Some(peer)
        })
        .collect()
}

/// Asserts that `process` has a connection to the Runtime API at `api`
/// (at least the one it polls for the next invocation on), and that each
/// has `TCP_NODELAY`.
fn assert_all_nodelay(process: &Captured, api: std::net::SocketAddr) {
    let sockets = sockets_to(process.pid().as_raw(), api);
    assert!(
        !sockets.is_empty(),
        "no connection to {api}:\n{}",
        process.logs()
    );
    for fd in &sockets {
        // A connection that has just been established may not have had
        // the option set yet: the client sets it once its task sees the
        // connect complete. One that never gets it is the failure.
        let deadline = Instant::now() + Duration::from_secs(1);
        while !sockopt::tcp_nodelay(fd).expect("getsockopt") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            sockopt::tcp_nodelay(fd).expect("getsockopt"),
            "a connection to the Runtime API with Nagle's algorithm on"
        );
    }
}

/// Streams one reply to `user` through `lambda`; how long the first word
/// took to arrive, and whether the reply ended.
async fn stream_one(lambda: &StreamingLambda, user: &TestUser) -> (Option<Duration>, bool) {
    let body = chat_body(Uuid::new_v4(), Uuid::new_v4(), "Hello", "private");
    let started = Instant::now();
    let mut invocation = lambda
        .invoke(
            chat_post(&user.token, &body).event(Shape::RestV1),
            Duration::from_secs(60),
        )
        .await;
    let first_word = invocation
        .until_contains("text-delta", Duration::from_secs(20))
        .await
        .then(|| started.elapsed());
    (
        first_word,
        invocation.until_end(Duration::from_secs(20)).await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_runtime_api_connection_of_a_streaming_and_a_buffered_function_has_tcp_nodelay() {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "chat", &[]);
    let ada = app.user("ada@example.com", UserType::Regular).await;

    let streaming = StreamingLambda::start().await;
    let chat = Captured::spawn("chat", &streaming.function_env_on("chat", &db, NO_PAUSE));
    let (first_word, ended) = stream_one(&streaming, &ada).await;
    assert!(first_word.is_some() && ended, "{}", chat.logs());
    assert_all_nodelay(&chat, streaming.addr());

    let buffered = FakeLambda::start().await;
    let history = Captured::spawn("history", &buffered.function_env_on("history", &db, &[]));
    let request = ApiRequest::get("/api/history").bearer(&ada.token);
    let answer = buffered
        .invoke(request.event(Shape::HttpV2), Duration::from_secs(30))
        .await;
    assert_eq!(answer.json()["statusCode"], 200, "{}", history.logs());
    assert_all_nodelay(
        &history,
        buffered.runtime_api().parse().expect("an address"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_streamed_replies_start_without_waiting_for_a_delayed_ack() {
    let db = TestDb::migrated().await;
    let app = TestApp::new(&db, "chat", &[]);
    let lambda = StreamingLambda::start().await;
    let chat = Captured::spawn("chat", &lambda.function_env_on("chat", &db, NO_PAUSE));
    const REPLIES: usize = 20;
    let mut first_words = Vec::new();
    // One new user per reply keeps within the daily message limit; the
    // first two replies warm the process up.
    for i in 0..REPLIES + 2 {
        let user = app
            .user(&format!("user{i}@example.com"), UserType::Regular)
            .await;
        let (first_word, ended) = stream_one(&lambda, &user).await;
        let first_word = first_word.unwrap_or_else(|| panic!("no word:\n{}", chat.logs()));
        assert!(ended, "{}", chat.logs());
        if i >= 2 {
            first_words.push(first_word);
        }
    }
    // With Nagle's algorithm on, about half of them waited for the delayed
    // ACK (40 ms on Linux) and took 46-53 ms; without it, 4-8 ms here (a
    // debug build). Two slow ones are allowed for a busy machine.
    let stalled = first_words
        .iter()
        .filter(|t| **t >= Duration::from_millis(40))
        .count();
    assert!(
        stalled <= 2,
        "{stalled} of {REPLIES} waited 40 ms or more: {first_words:?}"
    );
}
