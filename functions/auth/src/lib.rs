//! Sign-in, as the upstream chatbot has it (`app/(auth)/auth.ts`,
//! `actions.ts`, `lib/db/queries.ts`), as JSON endpoints that answer the
//! session tokens every other function accepts (`shared::http::identity`).
//!
//! | route | body | answer |
//! |---|---|---|
//! | `POST /api/auth/guest` | none | `{token, user: {id, email: "guest-<digits>", type: "guest"}}` |
//! | `POST /api/auth/register` | `{email, password}` | `{token, user: {id, email, type: "regular"}}` |
//! | `POST /api/auth/login` | `{email, password}` | the same as register |
//! | `GET /api/auth/session` | none | `{user: {id, email, type}, expires}` |
//!
//! Routes are told apart by the last segment of the path, so that a REST
//! API's stage prefix (`/prod/api/auth/login`) or a custom domain's base
//! path changes nothing; any other path is 404 `not_found:auth`, and a
//! wrong method 405 with `Allow`. Bodies over 16 KiB are 413; fields the
//! routes do not know are ignored.
//!
//! - **guest**: upstream's `createGuestUser`. The e-mail is
//!   `guest-<milliseconds><9 random digits>`, still `^guest-\d+$`, so that
//!   two guests of the same millisecond differ.
//! - **register**: upstream's `register` action. The address must be an
//!   e-mail address of at most 64 characters, the password at least 6
//!   characters and at most 72 bytes; otherwise 400 `bad_request:api` with a
//!   cause naming the field. A taken address is 400 `bad_request:auth`,
//!   "An account with this email already exists." The password is hashed
//!   with bcrypt at cost 10, as upstream does, so that upstream can read
//!   the rows we write.
//! - **login**: upstream's credentials `authorize`. An unknown address, a
//!   user without a password (a guest) and a wrong password all get the
//!   same 401 `unauthorized:auth`, and take the same time: with no hash to
//!   check, the password is checked against a dummy hash of the same cost.
//! - **session**: the caller ([`connect_as_caller`]: a session token whose user
//!   still exists, or API Gateway authorizer claims) with their e-mail
//!   address as the database has it now, and when the token expires
//!   (`null` for authorizer claims, whose lifetime API Gateway owns).
//!
//! Without `AUTH_SECRET` no token can be issued: guest, register and login
//! answer 503 `offline:auth` (and log why) before touching anything.
//! Passwords, hashes and the token secret never reach a log or a response:
//! the password is held in a `SecretString`, the `User` row never
//! serialises its hash, and nothing logs a body or an e-mail address.
//!
//! Where we differ from upstream, and why:
//! - JSON endpoints answering a bearer token, not NextAuth's cookie and
//!   redirects (the guest route is a `POST`, not a `GET` that redirects):
//!   the clients of a Lambda API are not necessarily browsers.
//! - A guest has no password (`NULL`), where upstream stores the bcrypt hash
//!   of a random UUID. Nobody can use either; `NULL` says so plainly, and
//!   spares an unauthenticated route tens of milliseconds of CPU per call
//!   (a cheap way to load the function). Upstream's own login treats `NULL`
//!   as "cannot sign in with a password".
//! - Registrations of one address are serialised (a transaction-scoped
//!   advisory lock), so two at once cannot both succeed; upstream can
//!   create the same user twice.
//! - Passwords over 72 bytes are refused at registration (bcrypt would
//!   ignore the rest); login still accepts them, so that a user upstream
//!   registered with one (bcrypt-ts truncates) signs in as before.
//! - Login does not apply the registration rules to what it is given: a
//!   pair that is not an account's is a 401, never a 400 that would say
//!   more.
//! - The session of an unsigned caller is 401 `unauthorized:auth`, where
//!   NextAuth answers `null`.

mod password;
mod sign_in_form;

use std::time::{SystemTime, UNIX_EPOCH};

use http::{Method, Response};
use lambda_http::{Body, Request};
use serde::Serialize;
use shared::AppState;
use shared::db::queries::user;
use shared::http::extract::require_method;
use shared::http::identity::{TokenError, issue_token};
use shared::http::{
    ApiError, ApiResult, DbContext, ErrorType, Surface, UserType, connect_as_caller, response,
};
use uuid::Uuid;

pub use password::{COST as BCRYPT_COST, MAX_PASSWORD_BYTES};
pub use sign_in_form::{BODY_LIMIT, MAX_EMAIL_CHARS, MIN_PASSWORD_CHARS};

use sign_in_form::SignInForm;

/// A guest's number is the time in milliseconds times this, plus a random
/// number below it: nine random digits after the time.
const GUEST_RANDOM_SPAN: u128 = 1_000_000_000;

/// Serves one request to `/api/auth/*`.
pub async fn handle(request: Request, state: AppState) -> ApiResult<Response<Body>> {
    let Some(route) = Route::of(request.uri().path()) else {
        return Err(ApiError::new(ErrorType::NotFound, Surface::Auth));
    };
    match route {
        Route::Guest => {
            require_method(&request, &[Method::POST], "POST")?;
            guest(&request, &state).await
        }
        Route::Register => {
            require_method(&request, &[Method::POST], "POST")?;
            register(&request, &state).await
        }
        Route::Login => {
            require_method(&request, &[Method::POST], "POST")?;
            login(&request, &state).await
        }
        Route::Session => {
            require_method(&request, &[Method::GET], "GET")?;
            session(&request, &state).await
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Guest,
    Register,
    Login,
    Session,
}

impl Route {
    /// The route of `path`, by its last segment (see the crate docs).
    fn of(path: &str) -> Option<Self> {
        match path.trim_end_matches('/').rsplit('/').next()? {
            "guest" => Some(Self::Guest),
            "register" => Some(Self::Register),
            "login" => Some(Self::Login),
            "session" => Some(Self::Session),
            _ => None,
        }
    }
}

async fn guest(request: &Request, state: &AppState) -> ApiResult<Response<Body>> {
    require_secret(state)?;
    // Upstream's guest sign-in reads no body; a huge one is still refused.
    refuse_large_body(request)?;
    let mut conn = state.connection().await?;
    // No password (see the crate docs on why `NULL`).
    let guest = user::create_guest(&mut conn, guest_number())
        .await
        .context("create the guest")?;
    tracing::info!(user_id = %guest.id, "guest signed in");
    signed_in(state, guest.id, &guest.email, UserType::Guest)
}

async fn register(request: &Request, state: &AppState) -> ApiResult<Response<Body>> {
    require_secret(state)?;
    let form = SignInForm::for_registration(request)?;
    // Hashed before the connection is taken: tens of milliseconds of CPU
    // during which the connection and the address's lock would otherwise
    // be held for nothing.
    let hash = password::hash(&form.password).await?;

    let mut conn = state.connection().await?;
    // Its own transaction (a savepoint, when the connection already is one).
    let mut tx = conn.begin().await.context("begin the registration")?;
    user::lock_email(&mut tx, &form.email)
        .await
        .context("lock the address")?;
    if !user::get_by_email(&mut tx, &form.email)
        .await
        .context("look the address up")?
        .is_empty()
    {
        tx.rollback().await.context("roll the registration back")?;
        tracing::info!("registration refused: the address is taken");
        return Err(ApiError::new(ErrorType::BadRequest, Surface::Auth)
            .with_cause("An account with this email already exists."));
    }
    let user = user::create(&mut tx, &form.email, &hash)
        .await
        .context("create the user")?;
    // The token is made before the commit: if it cannot be, no account is
    // left behind that the caller was never told about.
    let response = signed_in(state, user.id, &user.email, UserType::Regular)?;
    tx.commit().await.context("commit the registration")?;
    tracing::info!(user_id = %user.id, "user registered");
    Ok(response)
}

async fn login(request: &Request, state: &AppState) -> ApiResult<Response<Body>> {
    require_secret(state)?;
    let form = SignInForm::for_login(request)?;
    let mut conn = state.connection().await?;
    let users = user::get_by_email(&mut conn, &form.email)
        .await
        .context("look the address up")?;
    // Given back before bcrypt's tens of milliseconds: nothing more to read.
    conn.commit().await.context("end the lookup")?;
    // Upstream's `const [user] = users`: the first of any duplicates.
    let user = users.into_iter().next();
    let stored = user.as_ref().map(|u| u.password.clone());
    let verdict = password::verify(&form.password, stored).await?;
    match user {
        Some(user) if verdict.is_match() => {
            tracing::info!(user_id = %user.id, "user signed in");
            signed_in(state, user.id, &user.email, UserType::Regular)
        }
        user => {
            tracing::info!(
                reason = verdict.as_str(),
                user_id = user.map(|u| u.id.to_string()),
                "sign-in refused"
            );
            Err(unauthorized())
        }
    }
}

async fn session(request: &Request, state: &AppState) -> ApiResult<Response<Body>> {
    let (identity, mut conn) = connect_as_caller(request, state, Surface::Auth).await?;
    // The address as it is now, not as the token or the claims carry it.
    let user = user::get_by_id(&mut conn, identity.user_id)
        .await
        .context("load the caller")?
        .ok_or_else(unauthorized)?;
    let expires = identity
        .expires_at
        .and_then(|exp| chrono::DateTime::from_timestamp(i64::try_from(exp).ok()?, 0))
        .map(|at| shared::db::models::timestamp::format(&at.naive_utc()));
    response::ok(&Session {
        user: SessionUser {
            id: user.id,
            email: &user.email,
            user_type: identity.user_type,
        },
        expires,
    })
}

/// `{token, user}`: what a successful sign-in answers.
#[derive(Serialize)]
struct SignedIn<'a> {
    token: String,
    user: SessionUser<'a>,
}

/// NextAuth's session user, as upstream extends it with `type`.
#[derive(Serialize)]
struct SessionUser<'a> {
    id: Uuid,
    email: &'a str,
    #[serde(rename = "type")]
    user_type: UserType,
}

/// NextAuth's session: the user and when the session ends.
#[derive(Serialize)]
struct Session<'a> {
    user: SessionUser<'a>,
    expires: Option<String>,
}

fn signed_in(
    state: &AppState,
    id: Uuid,
    email: &str,
    user_type: UserType,
) -> ApiResult<Response<Body>> {
    let token =
        issue_token(&state.config.auth, id, user_type, Some(email)).map_err(
            |error| match error {
                TokenError::NoSecret => offline(),
                other => ApiError::internal(other),
            },
        )?;
    response::ok(&SignedIn {
        token,
        user: SessionUser {
            id,
            email,
            user_type,
        },
    })
}

/// Token-issuing routes cannot work without `AUTH_SECRET`: say so in the
/// log, and answer 503 before anything is read or written.
fn require_secret(state: &AppState) -> ApiResult<()> {
    if state.config.auth.secret.is_some() {
        return Ok(());
    }
    tracing::error!(
        "AUTH_SECRET is not set: the auth function cannot issue session tokens \
         (set it to at least 32 random characters, e.g. `openssl rand -base64 32`)"
    );
    Err(offline())
}

fn offline() -> ApiError {
    ApiError::new(ErrorType::Offline, Surface::Auth)
}

fn unauthorized() -> ApiError {
    ApiError::new(ErrorType::Unauthorized, Surface::Auth)
}

fn refuse_large_body(request: &Request) -> ApiResult<()> {
    let len = match request.body() {
        Body::Text(text) => text.len(),
        Body::Binary(bytes) => bytes.len(),
        _ => 0,
    };
    if len > BODY_LIMIT {
        return Err(ApiError::payload_too_large(BODY_LIMIT));
    }
    Ok(())
}

/// Upstream's `guest-${Date.now()}` number, with nine random digits after
/// the milliseconds so that guests of the same millisecond differ (the
/// chance that two of them draw the same nine digits is one in 10^9).
fn guest_number() -> u128 {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis())
        .unwrap_or_default();
    millis * GUEST_RANDOM_SPAN + Uuid::new_v4().as_u128() % GUEST_RANDOM_SPAN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_told_apart_by_the_last_path_segment() {
        for (path, route) in [
            ("/api/auth/guest", Some(Route::Guest)),
            ("/prod/api/auth/register", Some(Route::Register)),
            ("/api/auth/login/", Some(Route::Login)),
            ("/auth/session", Some(Route::Session)),
            ("/api/auth", None),
            ("/api/auth/logout", None),
            ("/api/auth/guests", None),
            ("/", None),
            ("", None),
        ] {
            assert_eq!(Route::of(path), route, "{path:?}");
        }
    }

    #[test]
    fn guest_numbers_are_the_milliseconds_followed_by_nine_digits() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis();
        let number = guest_number();
        assert!(number / GUEST_RANDOM_SPAN >= before);
        assert!(number.to_string().len() >= 13 + 9);
        assert!(format!("guest-{number}").len() <= MAX_EMAIL_CHARS);
    }
}
