//! The caller of a request, checked against the database, on the
//! invocation's connection.
//!
//! A token outlives nothing: if its user has been deleted, it is refused.
//! So a session token's user is looked up on every request. A route that
//! can, does it in the statement that does its work
//! ([`connect_unconfirmed`], then [`Unconfirmed::confirm`] with what that
//! statement found: `db::queries::caller`); the others pay a round trip of
//! its own ([`connect_as_caller`]).

use lambda_http::Request;
use uuid::Uuid;

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
pub async fn connect_as_caller(
    request: &Request,
    state: &AppState,
    surface: Surface,
) -> ApiResult<(Identity, Conn)> {
    let (caller, mut conn) = connect_unconfirmed(request, state, surface).await?;
    let found = match caller.identity.source {
        IdentitySource::SessionToken => user::exists(&mut conn, caller.user_id())
            .await
            .context("check that the caller exists")?,
        // Recorded by `connect_unconfirmed`.
        IdentitySource::Authorizer => true,
    };
    Ok((caller.confirm(found)?, conn))
}

/// A caller whose identity checked out, not yet confirmed by the database.
/// The route's first statement looks for their `"User"` row as it does its
/// work, and [`Unconfirmed::confirm`] reads what it found.
#[must_use = "a caller is known only once the database has confirmed them"]
#[derive(Debug)]
pub struct Unconfirmed {
    identity: Identity,
    surface: Surface,
}

impl Unconfirmed {
    /// Their id, to bind into the statement that confirms them.
    pub fn user_id(&self) -> Uuid {
        self.identity.user_id
    }

    /// The caller, if the statement found their row (`found`); else
    /// `unauthorized:<surface>`.
    pub fn confirm(self, found: bool) -> ApiResult<Identity> {
        if found {
            Ok(self.identity)
        } else {
            tracing::debug!("the caller's user no longer exists");
            Err(ApiError::new(ErrorType::Unauthorized, self.surface))
        }
    }
}

/// Identifies the caller and takes the invocation's connection, leaving
/// the check that the caller exists to the route's first statement; or
/// answers `unauthorized:<surface>` for a request with no valid identity
/// (and then takes no connection).
///
/// A caller vouched for by API Gateway's authorizer may be new to us: this
/// records them as a `"User"` row, so that what they create can reference
/// it (a write, so a round trip of its own).
pub async fn connect_unconfirmed(
    request: &Request,
    state: &AppState,
    surface: Surface,
) -> ApiResult<(Unconfirmed, Conn)> {
    let identity = identify(request, &state.config.auth)
        .ok_or_else(|| ApiError::new(ErrorType::Unauthorized, surface))?;
    let mut conn = state.connection().await?;
    if identity.source == IdentitySource::Authorizer {
        let email = identity
            .email
            .clone()
            .unwrap_or_else(|| identity.user_id.to_string());
        user::ensure_exists(&mut conn, identity.user_id, &email)
            .await
            .context("record the authorizer's caller")?;
    }
    Ok((Unconfirmed { identity, surface }, conn))
}
