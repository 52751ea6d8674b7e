//! Our history function against the Node.js original, each run as Lambda
//! runs a function: a process of its own, driven through a local Runtime
//! API (the same one for both), on the same database, in the same run.
//!
//! The original (`bench/node/`) is the design document's `lib/db/queries.ts`
//! (the `postgres` package with `max: 10`, `idle_timeout: 20`,
//! `connect_timeout: 10`, and `withDbCleanup`) serving upstream's history
//! route with the same SQL and the same JSON, behind a minimal runtime loop.
//! Both answer the same request; the suite checks that the bodies agree
//! before it times anything.
//!
//! Measured here: warm latency one invocation at a time (the two processes take turns, so that the machine's noise weighs
//! on both alike), peak resident memory, and, with
//! `AWS_LAMBDA_MAX_CONCURRENCY=16` (Lambda Managed Instances: one process
//! serving 16 invocations at once), the throughput of 16 callers. Init
//! and the first invocation come from [`crate::cold`], where each process
//! starts alone.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, bail};
use futures_util::future::try_join_all;
use serde_json::Value;

use crate::fixtures::Fixture;
use crate::process::{FunctionProcess, Program};
use crate::stats::Samples;

/// How much to run.
#[derive(Debug, Clone, Copy)]
pub struct Effort {
    /// Warm invocations of each, one at a time.
    pub warm: usize,
    /// Invocations per caller in the concurrent mode.
    pub per_caller: usize,
}

/// Callers at once in the Managed Instances mode.
pub const CONCURRENCY: usize = 16;

/// One side's figures.
#[derive(Debug, Default)]
pub struct Side {
    /// Warm invocations, one at a time.
    pub warm: Samples,
    /// Peak RSS after the warm invocations, bytes.
    pub peak_rss: u64,
    /// Invocations per second with [`CONCURRENCY`] callers.
    pub throughput: f64,
    /// Peak RSS of the concurrent process, bytes.
    pub concurrent_peak_rss: u64,
}

/// Both sides.
#[derive(Debug, Default)]
pub struct Comparison {
    /// Our history function.
    pub ours: Side,
    /// The Node.js original.
    pub node: Side,
}

/// Warm history invocations, one at a time, of ours and the original
/// taking turns, both on the database at `url` (after checking that they
/// answer alike): each side's samples and peak RSS.
pub async fn taking_turns(f: &Fixture, url: &str, n: usize) -> Result<[(Samples, u64); 2]> {
    let event = f.history_request().event(integration_tests::Shape::HttpV2);
    let mut processes = Vec::new();
    for program in [Program::Rust("history"), Program::Node] {
        processes.push(FunctionProcess::spawn(program, url, f.secret, &[]).await?);
    }
    let mut bodies = Vec::new();
    for process in &processes {
        process.init_time().await?;
        let (_, status, body) = process.invoke(&event).await?;
        if status != 200 {
            bail!("{:?} answered {status}: {body}", process.api.runtime_api());
        }
        bodies.push(serde_json::from_str::<Value>(&body)?);
    }
    if bodies[0] != bodies[1] {
        bail!(
            "the two answer differently:\nours: {}\nnode: {}",
            bodies[0],
            bodies[1]
        );
    }
    // Warm up (Node's JIT, both sides' statement caches), then measure.
    for _ in 0..200 {
        for process in &processes {
            process.invoke(&event).await?;
        }
    }
    let mut warm = [Samples::new(), Samples::new()];
    for i in 0..n {
        for k in 0..2 {
            // Alternate who goes first.
            let which = (i + k) % 2;
            let (elapsed, status, _) = processes[which].invoke(&event).await?;
            if status != 200 {
                bail!("a warm invocation answered {status}");
            }
            warm[which].push(elapsed);
        }
    }
    let mut peaks = [0u64; 2];
    for (process, peak) in processes.iter().zip(peaks.iter_mut()) {
        *peak = process.peak_memory()?;
    }
    for process in processes {
        process.stop().await;
    }
    let [ours, node] = warm;
    Ok([(ours, peaks[0]), (node, peaks[1])])
}

/// Runs the comparison.
pub async fn run(f: &Fixture, effort: Effort) -> Result<Comparison> {
    let event = f.history_request().event(integration_tests::Shape::HttpV2);
    let url = f.db.url();
    let programs = [Program::Rust("history"), Program::Node];
    let mut sides = [Side::default(), Side::default()];
    let turns = taking_turns(f, &url, effort.warm).await?;
    for (side, (warm, peak_rss)) in sides.iter_mut().zip(turns) {
        side.warm = warm;
        side.peak_rss = peak_rss;
    }

    // Sixteen at once, one side after the other (each has the machine).
    let concurrency = CONCURRENCY.to_string();
    let extra = [("AWS_LAMBDA_MAX_CONCURRENCY", concurrency.as_str())];
    for (program, side) in programs.into_iter().zip(sides.iter_mut()) {
        let process = Arc::new(FunctionProcess::spawn(program, &url, f.secret, &extra).await?);
        process.init_time().await?;
        let burst = |per_caller: usize| {
            let process = process.clone();
            let event = event.clone();
            async move {
                let callers = (0..CONCURRENCY).map(|_| {
                    let process = process.clone();
                    let event = event.clone();
                    async move {
                        for _ in 0..per_caller {
                            let (_, status, _) = process.invoke(&event).await?;
                            if status != 200 {
                                bail!("a concurrent invocation answered {status}");
                            }
                        }
                        anyhow::Ok(())
                    }
                });
                try_join_all(callers).await
            }
        };
        burst(50).await?;
        let start = Instant::now();
        burst(effort.per_caller).await?;
        let elapsed = start.elapsed().as_secs_f64();
        side.throughput = (CONCURRENCY * effort.per_caller) as f64 / elapsed;
        side.concurrent_peak_rss = process.peak_memory()?;
        if let Ok(process) = Arc::try_unwrap(process) {
            process.stop().await;
        }
    }
    let [ours, node] = sides;
    Ok(Comparison { ours, node })
}
