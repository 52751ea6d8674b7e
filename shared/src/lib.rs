//! The library every function of the chat backend stands on.
//!
//! The backend serves the API of the open-source Vercel AI chatbot as AWS
//! Lambda functions over PostgreSQL. Each function (`functions/<name>`) is a
//! thin binary; everything they share lives here, so that the connection
//! rules of the design document hold in one place.
//!
//! The modules are layers, and each imports only from the layers below it
//! (a test, `tests/tests/architecture.rs`, fails if an upward import comes
//! back):
//!
//! ```text
//! runtime   what every `main` calls: the cleanup wrapper, the stream guard,
//!   │       units of work outside handlers, shutdown, SnapStart, deadlines;
//!   │       the only layer that knows all the others and the Lambda runtime
//! http      the upstream error format, request identity, the caller checked
//!   │       against the database, extractors, responses, AppState
//! db        the one pool, units of work and their connections, the leak
//!   │       check, the pool's metrics, the rows (models) and the SQL (queries)
//! config    typed configuration, read once from the environment: plain data
//! ```
//!
//! Handlers never reach for globals: they receive an [`AppState`] (the pool,
//! the configuration and the invocation's unit of work) from the wrapper,
//! take their connection from it, and pass that on to the query functions.
//! Only [`runtime`] and [`db::global`] know that a global pool exists.

pub mod config;
pub mod db;
pub mod http;
pub mod runtime;

pub use http::AppState;
