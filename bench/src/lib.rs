//! The performance suite of the chat backend: what the functions cost
//! against what a user would pick instead, measured side by side in one
//! run, and the checks CI holds them to.
//!
//! ```text
//! suite      what runs, in which order, the targets and the CI checks
//! fixtures   the database every measurement shares, and the requests
//! warm       in-process: the full path against bare sqlx, pooled against
//!            a connection per request
//! anatomy    where a warm invocation's time goes; round trips on the wire
//! node       our history function against the Node.js original (bench/node)
//! latency    the same with 0.5 ms a round trip to the database
//! cold       cold starts of every function
//! streaming  the chat stream: first byte, per word, many streams at once
//! sizes      arm64 binaries and zips, as `sam build` makes them
//! process    function processes behind a local Lambda Runtime API
//! wire       a TCP proxy that counts round trips
//! delay      a TCP proxy that delays each direction
//! stats      medians, percentiles, units
//! report     tables, targets and checks as Markdown
//! ```
//!
//! The machine the suite runs on is shared and noisy: it reports medians
//! and ratios of things measured in the same run, interleaved, never a
//! single absolute time. `docs/performance.md` has the figures.

pub mod anatomy;
pub mod cold;
pub mod delay;
pub mod fixtures;
pub mod latency;
pub mod node;
pub mod process;
pub mod report;
pub mod sizes;
pub mod stats;
pub mod streaming;
pub mod suite;
pub mod warm;
pub mod wire;
