//! Where a warm invocation's time goes: each part of a history invocation
//! timed alone, interleaved with the whole, and the round trips to the
//! database each variant of [`crate::warm`] makes, counted on the wire.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lambda_http::Request;
use shared::AppState;
use shared::db::Db;
use shared::db::queries::chat::{self, Cursor};
use sqlx::{Connection, PgConnection};

use crate::fixtures::{Fixture, READER_CHATS};
use crate::stats::Samples;
use crate::warm::{
    call_full, config, history_queries, history_service, vote_queries, vote_service,
};
use crate::wire::CountingProxy;

/// The cost of each part of a warm history invocation, measured alone.
#[derive(Debug, Default)]
pub struct Breakdown {
    /// (part, samples)
    pub parts: Vec<(&'static str, Samples)>,
}

/// Round trips to the database per invocation.
#[derive(Debug, Default, Clone)]
pub struct RoundTrips {
    /// (variant, round trips per invocation)
    pub counts: Vec<(&'static str, f64)>,
}

/// Where a warm history invocation's time goes: each part alone, many
/// times, interleaved with the whole.
pub async fn breakdown(
    f: &Fixture,
    state: &AppState,
    held: &mut PgConnection,
    event: &str,
) -> Result<Breakdown> {
    let mut svc = history_service(state.clone());
    let request: Request = lambda_http::request::from_str(event)?;
    let auth = &state.config.auth;
    let page = chat::page_for_caller(&mut *held, f.reader.id, READER_CHATS, Cursor::Newest)
        .await?
        .answer
        .context("a page")?;
    let names = [
        "the whole invocation (full path)",
        "event JSON to `Request` (lambda_http)",
        "identify the caller (HS256 session token)",
        "take a connection from the pool (`acquire`)",
        "a ping round trip (`ping`)",
        "`chat::page_for_caller` (the route's one statement)",
        "the page to JSON (`response::ok`)",
    ];
    let mut parts: Vec<(&'static str, Samples)> =
        names.iter().map(|n| (*n, Samples::new())).collect();
    for _ in 0..20 {
        for _ in 0..50 {
            let t = Instant::now();
            call_full(&mut svc, event).await?;
            parts[0].1.push(t.elapsed());

            let t = Instant::now();
            black_box(lambda_http::request::from_str(event)?);
            parts[1].1.push(t.elapsed());

            let t = Instant::now();
            black_box(shared::http::identity::identify(&request, auth));
            parts[2].1.push(t.elapsed());

            // Wait for the last connection's return, so that acquire
            // finds it idle.
            state.db.wait_until_settled(Duration::from_secs(1)).await;
            let t = Instant::now();
            let conn = state.db.pool().acquire().await?;
            parts[3].1.push(t.elapsed());
            drop(conn);

            let t = Instant::now();
            held.ping().await?;
            parts[4].1.push(t.elapsed());

            let t = Instant::now();
            black_box(
                chat::page_for_caller(&mut *held, f.reader.id, READER_CHATS, Cursor::Newest)
                    .await?,
            );
            parts[5].1.push(t.elapsed());

            let t = Instant::now();
            black_box(shared::http::response::ok(&page).map_err(|e| anyhow::anyhow!("{e:?}"))?);
            parts[6].1.push(t.elapsed());
        }
        state.db.wait_until_settled(Duration::from_secs(1)).await;
    }
    Ok(Breakdown { parts })
}

/// Round trips to the database per invocation, through a counting proxy.
pub async fn round_trips(
    f: &Fixture,
    history_event: &str,
    vote_events: &[String; 2],
) -> Result<RoundTrips> {
    let proxy = CountingProxy::start(&f.db.url()).await?;
    let url = proxy.url(&f.db.url())?;
    let cfg = config("history", &url, f.secret, &[])?;
    let state = AppState::new(Db::connect_lazy(&cfg.db), cfg.clone());
    let mut history_svc = history_service(state.clone());
    let mut vote_svc = vote_service(state.clone());
    const N: usize = 200;
    let mut counts = Vec::new();

    // Each variant is warmed (statements prepared) before it is counted,
    // and counted after every connection has come back.
    let settle = |db: Db| async move {
        db.wait_until_settled(Duration::from_secs(2)).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for i in 0..20 {
        call_full(&mut history_svc, history_event).await?;
        call_full(&mut vote_svc, &vote_events[i % 2]).await?;
        let mut conn = state.db.pool().acquire().await?;
        history_queries(&mut conn, f.reader.id).await?;
        vote_queries(&mut conn, f, i % 2 == 0).await?;
    }
    settle(state.db.clone()).await;

    // Runs `$body` N times (with `$i` the run's number) and counts the
    // round trips per run, once every connection has come back.
    macro_rules! count {
        ($label:expr, |$i:ident| $body:expr) => {
            let before = proxy.turns();
            for $i in 0..N {
                $body;
            }
            settle(state.db.clone()).await;
            counts.push(($label, (proxy.turns() - before) as f64 / N as f64));
        };
    }
    count!("history, full path", |_i| call_full(
        &mut history_svc,
        history_event
    )
    .await?);
    count!("history, bare sqlx on the pool", |_i| {
        let mut conn = state.db.pool().acquire().await?;
        history_queries(&mut conn, f.reader.id).await?
    });
    count!("vote, full path", |i| call_full(
        &mut vote_svc,
        &vote_events[i % 2]
    )
    .await?);
    count!("vote, bare sqlx on the pool", |i| {
        let mut conn = state.db.pool().acquire().await?;
        vote_queries(&mut conn, f, i % 2 == 0).await?
    });

    let one = config("history", &url, f.secret, &[("DB_POOL_MAX", "1")])?;
    let before = proxy.turns();
    const M: usize = 20;
    for _ in 0..M {
        let db = Db::connect_lazy(&one.db);
        let mut svc = history_service(AppState::new(db.clone(), one.clone()));
        call_full(&mut svc, history_event).await?;
        db.close_within(Duration::from_secs(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    counts.push((
        "history, a connection per request",
        (proxy.turns() - before) as f64 / M as f64,
    ));
    state.db.close_within(Duration::from_secs(5)).await;
    Ok(RoundTrips { counts })
}
