//! The library every function of the chat backend stands on.
//!
//! The backend serves the API of the open-source Vercel AI chatbot as AWS
//! Lambda functions over PostgreSQL. Each function (`functions/<name>`) is a
//! thin binary; everything they share lives here, so that the connection
//! rules of the design document hold in one place:
//!
//! ```text
//! config        typed configuration, read once from the environment
//! db            the one pool, and the cleanup that runs around every handler
//!   pool          building the pool (sizing, timeouts, freshness checks)
//!   global        the process-wide pool in a `once_cell`, touched only at the edge
//!   lifecycle     release_connection / close_db_connection / close_all_connections
//!   cleanup       with_db_cleanup: the wrapper every HTTP handler goes through
//!   stream_guard  the same cleanup for streamed responses
//!   metrics       counters the pool keeps about itself (opened, leaks, ...)
//!   queries       the SQL, one module per table, each function taking an executor
//! models        the rows, serialised as the upstream chatbot serialises them
//! http          the upstream error format, request identity, extractors, responses
//! runtime       what every `main` calls: tracing, shutdown hook, the Lambda runtime
//! ```
//!
//! Handlers never reach for globals: they receive an [`AppState`] (the pool
//! and the configuration) from the wrapper, and pass the pool on to the
//! query functions. Only [`runtime`] and [`db::global`] know that a global
//! pool exists.

pub mod config;
pub mod db;
pub mod http;
pub mod models;
pub mod runtime;

mod state;

pub use state::AppState;
