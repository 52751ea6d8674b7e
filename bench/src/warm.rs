//! Warm invocations in-process: our overhead above the database, and the
//! pool against a connection per request.
//!
//! **The full path** is what a warm Lambda invocation runs, minus the HTTP
//! to the Runtime API: the API Gateway event as the bytes Lambda delivers
//! (rendered once by `integration_tests::ApiRequest`), deserialised by
//! lambda_http, made a `Request` and given a Lambda context by lambda_http's
//! own adapter, served by the function's handler through
//! `shared::db::with_db_cleanup` (the cleanup wrapper as a tower service),
//! and the answer turned into the API Gateway response and serialised.
//!
//! **Bare sqlx** is the database work alone: the handler's queries (the
//! `shared::db::queries` functions, thin sqlx calls) on a connection taken
//! from the same pool, with no request, no identity, no JSON, no wrapper.
//! **The database alone** is the same queries on a connection held open
//! (no pool at all): what is left is PostgreSQL and the wire.
//!
//! **A connection per request** is the design the Node.js original
//! replaced: the same handler and wrapper, given a pool of one that is
//! opened for the request and closed after it, so that every invocation
//! connects (a new server backend) and disconnects.
//!
//! Variants run interleaved, in rounds (their order rotating), and each
//! ratio is the median of the rounds' ratios of medians.

use std::convert::Infallible;
use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use integration_tests::Shape;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, LambdaEvent, Service};
use shared::AppState;
use shared::config::Config;
use shared::db::Db;
use shared::db::queries::chat::{self, Cursor};
use shared::db::queries::vote::{self, VoteType};
use shared::runtime::with_db_cleanup;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::anatomy::{self, Breakdown, RoundTrips};
use crate::fixtures::{Fixture, READER_CHATS};
use crate::stats::Samples;

/// How many invocations to run.
#[derive(Debug, Clone, Copy)]
pub struct Effort {
    /// Rounds of the overhead comparison.
    pub rounds: usize,
    /// Invocations of each variant per round.
    pub per_round: usize,
    /// Rounds of the pooled against per-request comparison.
    pub connect_rounds: usize,
    /// Invocations of each of those per round.
    pub connect_per_round: usize,
}

/// A function's configuration as its process would read it, with
/// `POSTGRES_URL` = `url` and `extra` variables.
pub fn config(
    function: &'static str,
    url: &str,
    secret: &str,
    extra: &[(&str, &str)],
) -> Result<Config> {
    let lookup = |name: &str| match name {
        "POSTGRES_URL" => Some(url.to_owned()),
        "AUTH_SECRET" => Some(secret.to_owned()),
        _ => extra
            .iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned()),
    };
    Config::from_lookup(function, lookup).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Invokes `service` as the Lambda runtime would, with `event` as the bytes
/// Lambda delivers; returns the status code.
pub async fn call_full<S>(service: &mut S, event: &str) -> Result<u16>
where
    S: Service<LambdaEvent<LambdaRequest>, Error = Infallible>,
    S::Response: serde::Serialize,
{
    let payload: LambdaRequest = serde_json::from_str(event).context("the event")?;
    let mut context = lambda_http::Context::default();
    context.request_id = "bench".to_owned();
    std::future::poll_fn(|cx| service.poll_ready(cx))
        .await
        .map_err(|e| match e {})?;
    let response = service
        .call(LambdaEvent::new(payload, context))
        .await
        .map_err(|e| match e {})?;
    let bytes = serde_json::to_vec(&response)?;
    // The proxy response begins `{"statusCode":NNN`.
    let status = serde_json::from_slice::<serde_json::Value>(&bytes)?["statusCode"]
        .as_u64()
        .unwrap_or(0) as u16;
    black_box(bytes);
    Ok(status)
}

/// The history handler as a Lambda service on `state`.
pub(crate) fn history_service(
    state: AppState,
) -> impl Service<LambdaEvent<LambdaRequest>, Error = Infallible, Response: serde::Serialize> {
    Adapter::from(with_db_cleanup(state, history::handle))
}

/// The vote handler as a Lambda service on `state`.
pub(crate) fn vote_service(
    state: AppState,
) -> impl Service<LambdaEvent<LambdaRequest>, Error = Infallible, Response: serde::Serialize> {
    Adapter::from(with_db_cleanup(state, ::vote::handle))
}

/// The history route's database work, on `conn`: its one statement (the
/// caller's check and the page together).
pub(crate) async fn history_queries(conn: &mut PgConnection, reader: Uuid) -> Result<()> {
    let found = chat::page_for_caller(&mut *conn, reader, READER_CHATS, Cursor::Newest).await?;
    if !found.caller_found {
        bail!("the reader is missing");
    }
    black_box(found.answer.context("a page")?);
    Ok(())
}

/// The vote route's database work, on `conn`: the caller's check with the
/// chat's owner, then the vote.
pub(crate) async fn vote_queries(conn: &mut PgConnection, f: &Fixture, up: bool) -> Result<()> {
    let found = chat::owner_for_caller(&mut *conn, f.reader.id, f.chat).await?;
    if !found.caller_found || found.answer != Some(f.reader.id) {
        bail!("the reader or their chat is missing");
    }
    let vote_type = if up { VoteType::Up } else { VoteType::Down };
    let done = vote::vote_in_chat(&mut *conn, f.chat, f.message, vote_type).await?;
    black_box(done.context("the vote")?);
    Ok(())
}

/// One route's three variants, measured.
#[derive(Debug, Default)]
pub struct Overhead {
    /// The full path, each invocation.
    pub full: Samples,
    /// Bare sqlx on the same pool.
    pub bare: Samples,
    /// The queries on a held connection.
    pub held: Samples,
    /// Per round: median full / median bare.
    pub ratio_rounds: Samples,
    /// Per round: median full / median held (the true floor).
    pub floor_rounds: Samples,
}

impl Overhead {
    /// Our overhead above bare sqlx (full / bare, median of rounds).
    pub fn ratio(&self) -> f64 {
        self.ratio_rounds.median()
    }

    /// Our overhead above the true floor (full / held, median of rounds).
    pub fn above_floor(&self) -> f64 {
        self.floor_rounds.median()
    }
}

/// The pooled against per-request comparison.
#[derive(Debug, Default)]
pub struct Connecting {
    /// Pooled, full path.
    pub pooled: Samples,
    /// A connection per request, full path.
    pub per_request: Samples,
    /// Per round: median per-request / median pooled.
    pub ratio_rounds: Samples,
    /// Backends the pooled runs opened, per 1,000 invocations.
    pub pooled_backends: f64,
    /// Backends the per-request runs opened, per 1,000 invocations.
    pub per_request_backends: f64,
    /// Sessions the server counted (pg_stat_database), per 1,000, pooled.
    pub pooled_sessions: f64,
    /// The same, per request.
    pub per_request_sessions: f64,
}

/// Everything this module measures.
pub struct WarmResults {
    /// `GET /api/history?limit=20`.
    pub history: Overhead,
    /// `PATCH /api/vote`.
    pub vote: Overhead,
    /// Pooled against a connection per request (history).
    pub connecting: Connecting,
    /// Where a warm history invocation's time goes.
    pub breakdown: Breakdown,
    /// Round trips per invocation.
    pub round_trips: RoundTrips,
}

/// Times each of `$n` runs of `$body` (with `$i` the run's number),
/// adding the times to `$samples`.
macro_rules! time_each {
    ($n:expr, $samples:expr, |$i:ident| $body:expr) => {
        for $i in 0..$n {
            let start = Instant::now();
            $body;
            $samples.push(start.elapsed());
        }
    };
}

/// Runs sections 1 and 2 (and the breakdown and round trips).
pub async fn run(f: &Fixture, effort: Effort, quick: bool) -> Result<WarmResults> {
    let url = f.db.url();
    let cfg = config("history", &url, f.secret, &[])?;
    let state = AppState::new(Db::connect_lazy(&cfg.db), cfg.clone());
    let history_event = f.history_request().event(Shape::HttpV2).to_string();
    let vote_events = [
        f.vote_request(true).event(Shape::HttpV2).to_string(),
        f.vote_request(false).event(Shape::HttpV2).to_string(),
    ];
    let mut held = PgConnection::connect_with(&cfg.db.connect_options()).await?;

    let mut history_svc = history_service(state.clone());
    let mut vote_svc = vote_service(state.clone());

    // Warm everything up: connections open, statements prepared, caches
    // filled, the answers checked.
    for i in 0..200 {
        let status = call_full(&mut history_svc, &history_event).await?;
        if status != 200 {
            bail!("history answered {status}");
        }
        let status = call_full(&mut vote_svc, &vote_events[i % 2]).await?;
        if status != 200 {
            bail!("vote answered {status}");
        }
        let mut conn = state.db.pool().acquire().await?;
        history_queries(&mut conn, f.reader.id).await?;
        vote_queries(&mut conn, f, i % 2 == 0).await?;
        drop(conn);
        history_queries(&mut held, f.reader.id).await?;
        vote_queries(&mut held, f, i % 2 == 0).await?;
    }

    let mut history = Overhead::default();
    let mut vote = Overhead::default();
    for round in 0..effort.rounds {
        let n = effort.per_round;
        let mut h = [Samples::new(), Samples::new(), Samples::new()];
        let mut v = [Samples::new(), Samples::new(), Samples::new()];
        for k in 0..3 {
            match (round + k) % 3 {
                0 => {
                    time_each!(n, h[0], |_i| call_full(&mut history_svc, &history_event)
                        .await?);
                    time_each!(n, v[0], |i| call_full(&mut vote_svc, &vote_events[i % 2])
                        .await?);
                }
                1 => {
                    time_each!(n, h[1], |_i| {
                        let mut conn = state.db.pool().acquire().await?;
                        history_queries(&mut conn, f.reader.id).await?
                    });
                    time_each!(n, v[1], |i| {
                        let mut conn = state.db.pool().acquire().await?;
                        vote_queries(&mut conn, f, i % 2 == 0).await?
                    });
                }
                _ => {
                    time_each!(n, h[2], |_i| history_queries(&mut held, f.reader.id)
                        .await?);
                    time_each!(n, v[2], |i| vote_queries(&mut held, f, i % 2 == 0).await?);
                }
            }
        }
        history
            .ratio_rounds
            .push_value(h[0].median() / h[1].median());
        vote.ratio_rounds.push_value(v[0].median() / v[1].median());
        history
            .floor_rounds
            .push_value(h[0].median() / h[2].median());
        vote.floor_rounds.push_value(v[0].median() / v[2].median());
        history.full.extend(&h[0]);
        history.bare.extend(&h[1]);
        history.held.extend(&h[2]);
        vote.full.extend(&v[0]);
        vote.bare.extend(&v[1]);
        vote.held.extend(&v[2]);
    }

    let connecting = per_request(f, &state, &history_event, effort).await?;
    let breakdown = if quick {
        Breakdown::default()
    } else {
        anatomy::breakdown(f, &state, &mut held, &history_event).await?
    };
    let round_trips = if quick {
        RoundTrips::default()
    } else {
        anatomy::round_trips(f, &history_event, &vote_events).await?
    };
    let _ = held.close().await;
    state.db.close_within(Duration::from_secs(5)).await;
    Ok(WarmResults {
        history,
        vote,
        connecting,
        breakdown,
        round_trips,
    })
}

/// Sessions the server has counted on this database (`pg_stat_database`).
async fn server_sessions(f: &Fixture) -> Result<i64> {
    // Backends report their session at exit or within a second; a fresh
    // snapshot then reads what they reported.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let mut conn = f.db.observer().acquire().await?;
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(&mut *conn)
        .await?;
    let sessions: i64 =
        sqlx::query_scalar("SELECT sessions FROM pg_stat_database WHERE datname = $1")
            .bind(f.db.name())
            .fetch_one(&mut *conn)
            .await?;
    Ok(sessions)
}

/// Section 2: the same handler, pooled and with a connection per request.
async fn per_request(
    f: &Fixture,
    state: &AppState,
    event: &str,
    effort: Effort,
) -> Result<Connecting> {
    let mut pooled_svc = history_service(state.clone());
    // One connection at most, as a per-request client has.
    let one = config("history", &f.db.url(), f.secret, &[("DB_POOL_MAX", "1")])?;
    let once = |one: Config| async move {
        let db = Db::connect_lazy(&one.db);
        let state = AppState::new(db.clone(), one);
        let mut svc = history_service(state);
        let status = call_full(&mut svc, event).await?;
        let opened = db.metrics().snapshot().opened;
        db.close_within(Duration::from_secs(5)).await;
        if status != 200 {
            bail!("history answered {status} with a connection of its own");
        }
        anyhow::Ok(opened)
    };
    for _ in 0..5 {
        once(one.clone()).await?;
    }
    // The pooled connections may have sat idle through the comparisons
    // before this one, past the idle timeout: the first acquire would then
    // discard one and open another, by design (a connection idle that long
    // may have been cut). What is counted here is warm invocations, so the
    // pool is made warm first.
    for _ in 0..20 {
        call_full(&mut pooled_svc, event).await?;
    }

    let mut result = Connecting::default();
    let mut pooled_n = 0u64;
    let mut pooled_opened = 0u64;
    let mut per_request_n = 0u64;
    let mut per_request_opened = 0u64;
    let mut pooled_sessions = 0i64;
    let mut per_request_sessions = 0i64;
    for round in 0..effort.connect_rounds {
        let n = effort.connect_per_round;
        let mut pooled = Samples::new();
        let mut per = Samples::new();
        for k in 0..2 {
            let before = server_sessions(f).await?;
            if (round + k) % 2 == 0 {
                let opened = state.db.metrics().snapshot().opened;
                time_each!(n, pooled, |_i| call_full(&mut pooled_svc, event).await?);
                pooled_opened += state.db.metrics().snapshot().opened - opened;
                pooled_n += n as u64;
                pooled_sessions += server_sessions(f).await? - before;
            } else {
                for _ in 0..n {
                    let start = Instant::now();
                    per_request_opened += once(one.clone()).await?;
                    per.push(start.elapsed());
                }
                per_request_n += n as u64;
                per_request_sessions += server_sessions(f).await? - before;
            }
        }
        result
            .ratio_rounds
            .push_value(per.median() / pooled.median());
        result.pooled.extend(&pooled);
        result.per_request.extend(&per);
    }
    let per_1000 = |count: f64, n: u64| count * 1000.0 / n.max(1) as f64;
    result.pooled_backends = per_1000(pooled_opened as f64, pooled_n);
    result.per_request_backends = per_1000(per_request_opened as f64, per_request_n);
    result.pooled_sessions = per_1000(pooled_sessions as f64, pooled_n);
    result.per_request_sessions = per_1000(per_request_sessions as f64, per_request_n);
    Ok(result)
}
