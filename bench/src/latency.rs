//! The warm history route with a network between it and the database:
//! what a user on RDS sees, where each round trip costs more than all of
//! our own code.
//!
//! Everything here reaches PostgreSQL through [`DelayProxy`], which adds
//! [`ONE_WAY`] to each direction (half a millisecond a round trip). The
//! round trip it actually added is measured (a ping through it against a
//! ping straight to the server), since a thread's sleep overshoots a
//! little. Two comparisons, each interleaved:
//!
//! - in-process, the full path against the true floor (the route's one
//!   statement on a connection held open, no pool): our overhead where it
//!   matters;
//! - ours against the Node.js original, each a process behind the local
//!   Runtime API, taking turns ([`crate::node::taking_turns`]).

use std::time::{Duration, Instant};

use anyhow::Result;
use integration_tests::Shape;
use shared::AppState;
use shared::db::Db;
use sqlx::{Connection, PgConnection};

use crate::delay::DelayProxy;
use crate::fixtures::Fixture;
use crate::node;
use crate::stats::Samples;
use crate::warm::{call_full, config, history_queries, history_service};

/// Added to each direction (so twice this a round trip).
pub const ONE_WAY: Duration = Duration::from_micros(250);

/// How much to run.
#[derive(Debug, Clone, Copy)]
pub struct Effort {
    /// Rounds of the in-process comparison.
    pub rounds: usize,
    /// Invocations of each variant per round.
    pub per_round: usize,
    /// Warm invocations of each process, taking turns.
    pub processes: usize,
}

/// What this module measures.
#[derive(Debug, Default)]
pub struct LatencyResults {
    /// The round trip the proxy added, median of pings (seconds).
    pub added_round_trip: f64,
    /// The full path, in-process.
    pub full: Samples,
    /// The route's statement on a held connection.
    pub floor: Samples,
    /// Per round: median full / median floor.
    pub floor_rounds: Samples,
    /// Our history process through the Runtime API.
    pub ours: Samples,
    /// The Node.js original's.
    pub node: Samples,
}

impl LatencyResults {
    /// Our overhead above the floor (median of rounds).
    pub fn above_floor(&self) -> f64 {
        self.floor_rounds.median()
    }
}

/// Runs both comparisons through a proxy of their own.
pub async fn run(f: &Fixture, effort: Effort) -> Result<LatencyResults> {
    let proxy = DelayProxy::start(&f.db.url(), ONE_WAY)?;
    let url = proxy.url(&f.db.url())?;
    let mut results = LatencyResults {
        added_round_trip: added_round_trip(f, &url).await?,
        ..LatencyResults::default()
    };
    in_process(f, &url, effort, &mut results).await?;
    let [(ours, _), (node, _)] = node::taking_turns(f, &url, effort.processes).await?;
    results.ours = ours;
    results.node = node;
    Ok(results)
}

/// The median ping through the proxy less the median ping without it.
async fn added_round_trip(f: &Fixture, delayed_url: &str) -> Result<f64> {
    let options = |url: &str| config("history", url, f.secret, &[]).map(|c| c.db.connect_options());
    let mut direct = PgConnection::connect_with(&options(&f.db.url())?).await?;
    let mut delayed = PgConnection::connect_with(&options(delayed_url)?).await?;
    let (mut near, mut far) = (Samples::new(), Samples::new());
    for _ in 0..200 {
        let t = Instant::now();
        direct.ping().await?;
        near.push(t.elapsed());
        let t = Instant::now();
        delayed.ping().await?;
        far.push(t.elapsed());
    }
    let _ = direct.close().await;
    let _ = delayed.close().await;
    Ok(far.median() - near.median())
}

/// The full path against the floor, interleaved in rounds.
async fn in_process(
    f: &Fixture,
    url: &str,
    effort: Effort,
    results: &mut LatencyResults,
) -> Result<()> {
    let cfg = config("history", url, f.secret, &[])?;
    let state = AppState::new(Db::connect_lazy(&cfg.db), cfg.clone());
    let mut svc = history_service(state.clone());
    let mut held = PgConnection::connect_with(&cfg.db.connect_options()).await?;
    let event = f.history_request().event(Shape::HttpV2).to_string();
    for _ in 0..50 {
        anyhow::ensure!(call_full(&mut svc, &event).await? == 200, "history failed");
        history_queries(&mut held, f.reader.id).await?;
    }
    for round in 0..effort.rounds {
        let (mut full, mut floor) = (Samples::new(), Samples::new());
        for k in 0..2 {
            for _ in 0..effort.per_round {
                let t = Instant::now();
                if (round + k) % 2 == 0 {
                    call_full(&mut svc, &event).await?;
                    full.push(t.elapsed());
                } else {
                    history_queries(&mut held, f.reader.id).await?;
                    floor.push(t.elapsed());
                }
            }
        }
        results
            .floor_rounds
            .push_value(full.median() / floor.median());
        results.full.extend(&full);
        results.floor.extend(&floor);
    }
    let _ = held.close().await;
    state.db.close_within(Duration::from_secs(5)).await;
    Ok(())
}
