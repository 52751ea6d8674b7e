//! The HTTP surface shared by every function: the upstream error format,
//! who is calling, reading requests, and writing responses.

pub mod error;
pub mod extract;
pub mod identity;
pub mod response;

pub use error::{ApiError, ApiResult, ErrorType, Surface};
pub use identity::{Identity, UserType, authenticate};
