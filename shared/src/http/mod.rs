//! The HTTP surface shared by every function: the upstream error format,
//! who is calling, reading requests, and writing responses. It stands on
//! `db` (a handler's state holds the pool and its unit of work) and knows
//! nothing of the Lambda runtime that calls the handlers.
//!
//! ```text
//! error     ApiError: the upstream error codes and bodies, one place; DbContext names failed steps
//! identity  who the request says it is: session tokens and authorizer claims (no database)
//! caller    that identity checked against the database, on the invocation's connection, alone or in the route's statement
//! state     AppState: what a handler is given (pool, configuration, unit of work)
//! extract   reading requests without trusting them: query parameters, JSON bodies, ids
//! response  writing JSON and text responses
//! ```

pub mod caller;
pub mod error;
pub mod extract;
pub mod identity;
pub mod response;
mod state;

pub use caller::{Unconfirmed, connect_as_caller, connect_unconfirmed};
pub use error::{ApiError, ApiResult, DbContext, ErrorType, Surface};
pub use identity::{Identity, UserType};
pub use state::AppState;
