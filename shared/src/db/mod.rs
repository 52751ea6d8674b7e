//! The database layer: one pool per process, units of work that end
//! themselves, and the SQL. It stands on `config` and knows nothing of
//! HTTP or of the Lambda runtime.
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
//! | "don't create new clients"          | only this module builds a pool            |
//!
//! The wrapper around every handler and the guard around every stream
//! (`withDbCleanup` and the try/finally of the design) are the runtime's,
//! one layer up; they use what is here: [`Work`] (a unit of work, ended by
//! its outcome), the invocation count and leak check ([`invocation`]), and
//! the metrics.
//!
//! ```text
//! pool        building the pool (sizing, timeouts, freshness checks) and its handle, Db
//! global      the process-wide pool in a `once_cell`, touched only at the edge
//! work        a unit of work: one connection at a time, committed or rolled back at its end
//! conn        the unit of work's connection, and transactions on it; statement naming
//! warm        the connection one invocation leaves for the next, unreturned and unpinged
//! first       the guarded first statement on such a connection: bounded, rerun if it was dead
//! invocation  invocations in flight, and the leak check after the last one
//! lifecycle   release_connection / close_db_connection / close_all_connections
//! rotation    credentials that change: Secrets Manager secrets, RDS IAM tokens
//! metrics     counters the pool keeps about itself (opened, leaks, ...)
//! emf         those counters as CloudWatch embedded metric format lines
//! models      the rows, serialised as the upstream chatbot serialises them
//! queries     the SQL, one module per table, each function taking any executor
//! ```

mod conn;
pub mod emf;
mod first;
pub mod global;
mod invocation;
mod lifecycle;
mod metrics;
pub mod models;
pub mod pool;
pub mod queries;
pub mod rotation;
mod warm;
mod work;

pub use conn::{Conn, Tx};
pub(crate) use invocation::Invocation;
pub use invocation::LEAK_SETTLE;
pub use lifecycle::{
    CLOSE_TIMEOUT, WIND_DOWN, close_all_connections, close_db_connection, release_connection,
};
pub use metrics::{MetricsSnapshot, PoolMetrics};
pub use pool::Db;
pub use work::{Outcome, Work};
