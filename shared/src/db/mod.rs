//! The database layer: one pool per process, and cleanup that cannot be
//! forgotten.
//!
//! This is the design document's connection management, in Rust:
//!
//! | Node.js design                      | here                                      |
//! |-------------------------------------|-------------------------------------------|
//! | one `postgres()` client             | [`global`]: one [`Db`] in a `once_cell`   |
//! | `max`, `idle_timeout`, `connect_timeout` | [`crate::config::DbConfig`], [`pool`] |
//! | `releaseConnection()`               | [`release_connection`]                    |
//! | `closeDbConnection`                 | [`close_db_connection`] (the same)        |
//! | `closeAllConnections()`             | [`close_all_connections`]                 |
//! | `withDbCleanup(handler)`            | [`with_db_cleanup`]                       |
//! | try/finally around streams          | [`StreamGuard`]                           |
//! | "don't create new clients"          | only this module builds a pool            |
//!
//! Connections go back to the pool when dropped, so "release" needs no call;
//! what the wrapper adds is a bound on every handler, a clean error when
//! the database cannot be reached, and a leak check after every invocation.

mod cleanup;
pub mod credentials;
pub mod emf;
pub mod global;
mod lifecycle;
mod metrics;
pub mod pool;
pub mod queries;
mod session;
pub mod sql;
mod stream_guard;

pub use cleanup::{run_with_cleanup, with_db_cleanup};
pub use lifecycle::{
    CLOSE_TIMEOUT, WIND_DOWN, close_all_connections, close_db_connection, release_connection,
};
pub use metrics::{MetricsSnapshot, PoolMetrics};
pub use pool::Db;
pub use session::Session;
pub use stream_guard::{StreamEnd, StreamGuard};
