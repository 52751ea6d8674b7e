//! The SQL: one module per table, with the upstream chatbot's queries
//! (`lib/db/queries.ts`) as small named functions.
//!
//! Every function takes an executor (`&PgPool`, a `&mut PgConnection` or a
//! transaction), so callers decide whether work shares a transaction, and
//! tests run them on pools of their own. Rules kept throughout:
//!
//! - **One statement per operation.** Where upstream runs several
//!   statements (deleting a chat with its votes, messages and streams), we
//!   run one, with data-modifying CTEs: atomic without an explicit
//!   transaction, one round trip, and safe behind a transaction-mode pooler
//!   (PgBouncer, RDS Proxy), which may hand consecutive statements outside a
//!   transaction to different server connections.
//! - **Runtime-checked queries** (`query_as` with `FromRow`), so that builds
//!   need no database; every query has a test against a real server.
//! - **The caller is confirmed in the same statement.** A read route's
//!   statement also looks for its caller's `"User"` row ([`caller`]):
//!   one round trip, not two.
//! - **Timestamps come from [`crate::db::models::now`]**: UTC, to the
//!   millisecond, as upstream stores them.

pub mod caller;
pub mod chat;
pub mod document;
pub mod message;
pub mod stream;
pub mod suggestion;
pub mod turn;
pub mod user;
pub mod vote;
