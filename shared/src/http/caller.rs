//! The caller of a request, checked against the database, on the
//! invocation's connection.

use lambda_http::Request;

use super::identity::{Identity, IdentitySource, identify};
use super::{ApiError, ApiResult, AppState, DbContext, ErrorType, Surface};
use crate::db::Conn;
use crate::db::queries::user;

/// Identifies the caller, takes the invocation's connection, and checks on
/// it that the database agrees; or answers `unauthorized:<surface>`.
///
/// The connection is handed back for the rest of the handler's work: one
/// invocation, one connection. None is taken for a request that carries
/// no valid identity.
///
/// A token outlives nothing: if its user has been deleted, it is refused.
/// A caller vouched for by API Gateway's authorizer may be new to us: this
/// records them as a `"User"` row, so that what they create can reference
/// it.
pub async fn connect_as_caller(
    request: &Request,
    state: &AppState,
    surface: Surface,
) -> ApiResult<(Identity, Conn)> {
    let unauthorized = || ApiError::new(ErrorType::Unauthorized, surface);
    let identity = identify(request, &state.config.auth).ok_or_else(unauthorized)?;
    let mut conn = state.connection().await?;
    match identity.source {
        IdentitySource::SessionToken => {
            let exists = user::exists(&mut conn, identity.user_id)
                .await
                .context("check that the caller exists")?;
            if !exists {
                tracing::debug!("session token of a user that no longer exists");
                return Err(unauthorized());
            }
        }
        IdentitySource::Authorizer => {
            let email = identity
                .email
                .clone()
                .unwrap_or_else(|| identity.user_id.to_string());
            user::ensure_exists(&mut conn, identity.user_id, &email)
                .await
                .context("record the authorizer's caller")?;
        }
    }
    Ok((identity, conn))
}
