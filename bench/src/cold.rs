//! Cold starts: every function, and the Node.js original, started as a new
//! Lambda environment starts it.
//!
//! Init is from the process's start until it first asks the Runtime API
//! for work (what Lambda bills as init); the first invocation is from
//! queueing the first event to its answer, and includes opening the first
//! database connection. Each round starts every program once, in a
//! rotating order, so that the machine's noise weighs on all alike; the
//! figures are medians over the rounds.

use std::time::Duration;

use anyhow::{Result, bail};

use crate::fixtures::Fixture;
use crate::process::{FUNCTIONS, FunctionProcess, Program};
use crate::stats::Samples;

/// One program's cold starts.
#[derive(Debug)]
pub struct Cold {
    /// What was started.
    pub program: Program,
    /// Start to first poll.
    pub init: Samples,
    /// The first invocation.
    pub first: Samples,
    /// Peak RSS after the first invocation, bytes.
    pub peak_rss: Samples,
}

/// Every program's cold starts, ours first, the Node.js original last.
pub async fn run(f: &Fixture, rounds: usize) -> Result<Vec<Cold>> {
    let mut programs: Vec<Program> = FUNCTIONS.iter().map(|n| Program::Rust(n)).collect();
    programs.push(Program::Node);
    let mut results: Vec<Cold> = programs
        .iter()
        .map(|&program| Cold {
            program,
            init: Samples::new(),
            first: Samples::new(),
            peak_rss: Samples::new(),
        })
        .collect();
    let url = f.db.url();
    // The chat function replies at once: the first invocation measures
    // us, not the offline model's typing.
    let extra = [("OFFLINE_MODEL_DELAY_MS", "0")];
    for round in 0..rounds {
        for k in 0..results.len() {
            let cold = &mut results[(round + k) % programs.len()];
            let name = cold.program.name();
            let event = f.cold_event(
                match cold.program {
                    Program::Rust(name) => name,
                    Program::Node => "history",
                },
                round,
            )?;
            let process = FunctionProcess::spawn(cold.program, &url, f.secret, &extra).await?;
            cold.init.push(process.init_time().await?);
            let (first, status, body) = process.invoke(&event).await?;
            if status != 200 {
                bail!("{name} answered {status} to its first invocation: {body}");
            }
            cold.first.push(first);
            cold.peak_rss.push_value(process.peak_memory()? as f64);
            process.stop().await;
            // Let the server reap the backend the process left behind.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(results)
}
