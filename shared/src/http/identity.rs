//! Who is calling: API Gateway authorizer claims, or our session token.
//!
//! When API Gateway has run an authorizer (a Cognito or JWT authorizer, or a
//! Lambda authorizer), it has verified the caller and put the claims in the
//! request context, where a client cannot forge them; those win. Otherwise
//! the caller must present a session token issued by the auth function:
//! `Authorization: Bearer <JWT>`, HS256 with `AUTH_SECRET`, with an expiry.
//! Unsigned (`alg: none`), wrongly signed, expired and malformed tokens are
//! all refused the same way, and a token whose user no longer exists is
//! refused too (`http::caller` checks the database). Nothing here touches
//! the database: this is who the request says it is, checked.
//!
//! Claims read from an authorizer: `sub` (or a Lambda authorizer's
//! `principalId`), which must be a UUID, the user's id; `user_type`,
//! `custom:user_type` or `type`, `guest` or `regular` (by default `guest`
//! for an upstream guest address, `guest-<digits>`, else `regular`); and
//! `email`. Claims without a UUID user id (an authorizer that checked an
//! API key, say) identify no user, and the session token decides.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::AuthConfig;

/// Upstream's `UserType`: it decides the daily message allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UserType {
    /// Signed in as a guest (no account).
    Guest,
    /// Signed in with an account.
    Regular,
}

impl UserType {
    /// The type upstream gives an address: `guest-<digits>` is a guest
    /// (upstream's `guestRegex`), anything else a regular user.
    pub fn for_email(email: &str) -> Self {
        match email.strip_prefix("guest-") {
            Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                Self::Guest
            }
            _ => Self::Regular,
        }
    }

    fn parse(value: &str) -> Option<Self> {
        match value {
            "guest" => Some(Self::Guest),
            "regular" => Some(Self::Regular),
            _ => None,
        }
    }
}

/// Where an identity came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentitySource {
    /// Claims that API Gateway's authorizer verified.
    Authorizer,
    /// A session token we issued and verified.
    SessionToken,
}

/// The caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The caller's `"User".id`.
    pub user_id: Uuid,
    /// Guest or regular.
    pub user_type: UserType,
    /// The e-mail address, when the identity carries one.
    pub email: Option<String>,
    /// How the caller was identified.
    pub source: IdentitySource,
    /// When a session token expires (seconds since the Unix epoch); `None`
    /// for authorizer claims, whose lifetime API Gateway owns.
    pub expires_at: Option<u64>,
}

/// The issuer our tokens carry, and require.
const ISSUER: &str = "chat-backend";

/// Tokens longer than this are refused unread.
const MAX_TOKEN_LEN: usize = 4096;

/// The claims of a session token.
#[derive(Debug, Serialize, Deserialize)]
struct SessionClaims {
    sub: Uuid,
    #[serde(rename = "type")]
    user_type: UserType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    iss: String,
    iat: u64,
    exp: u64,
}

/// Why a session token was refused (for logs; clients only ever see 401).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// No `AUTH_SECRET` is configured, so no token can be checked or issued.
    #[error("AUTH_SECRET is not set: session tokens are disabled")]
    NoSecret,
    /// Longer than any token we issue.
    #[error("token too long")]
    TooLong,
    /// Bad signature, wrong algorithm, expired, malformed...
    #[error("invalid token: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
}

/// Issues a session token for a user, valid for the configured lifetime.
pub fn issue_token(
    auth: &AuthConfig,
    user_id: Uuid,
    user_type: UserType,
    email: Option<&str>,
) -> Result<String, TokenError> {
    let secret = auth.secret_bytes().ok_or(TokenError::NoSecret)?;
    let now = unix_now();
    let claims = SessionClaims {
        sub: user_id,
        user_type,
        email: email.map(str::to_owned),
        iss: ISSUER.to_owned(),
        iat: now,
        exp: now + auth.token_ttl.as_secs(),
    };
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )?)
}

/// Verifies a session token: HS256 only, signed with our secret, issued by
/// us, not expired.
pub fn verify_token(auth: &AuthConfig, token: &str) -> Result<Identity, TokenError> {
    let secret = auth.secret_bytes().ok_or(TokenError::NoSecret)?;
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLong);
    }
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "sub", "iss"]);
    validation.leeway = 5;
    let data = jsonwebtoken::decode::<SessionClaims>(
        token,
        &DecodingKey::from_secret(secret),
        &validation,
    )?;
    Ok(Identity {
        user_id: data.claims.sub,
        user_type: data.claims.user_type,
        email: data.claims.email,
        source: IdentitySource::SessionToken,
        expires_at: Some(data.claims.exp),
    })
}

/// The caller of `request`, if it can be identified (no database access).
///
/// Authorizer claims win when they name a user. An authorizer that vouches
/// for something else (an API key, a network) leaves no user id; then the
/// session token decides.
pub fn identify(request: &Request, auth: &AuthConfig) -> Option<Identity> {
    if let Some(claims) = authorizer_claims(request) {
        match identity_from_claims(&claims) {
            Some(identity) => return Some(identity),
            None => tracing::debug!("authorizer claims name no user (no UUID `sub`)"),
        }
    }
    let token = bearer_token(request)?;
    match verify_token(auth, token) {
        Ok(identity) => Some(identity),
        Err(error) => {
            tracing::debug!(%error, "session token refused");
            None
        }
    }
}

fn bearer_token(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The claims an API Gateway authorizer left in the request context.
fn authorizer_claims(request: &Request) -> Option<HashMap<String, String>> {
    let context = request.request_context_ref()?;
    let (jwt_claims, fields) = match context {
        RequestContext::ApiGatewayV1(ctx) => (None, Some(&ctx.authorizer.fields)),
        RequestContext::ApiGatewayV2(ctx) => match &ctx.authorizer {
            Some(authorizer) => (
                authorizer.jwt.as_ref().map(|jwt| &jwt.claims),
                Some(&authorizer.fields),
            ),
            None => (None, None),
        },
        #[allow(unreachable_patterns)]
        _ => (None, None),
    };
    if let Some(claims) = jwt_claims.filter(|c| !c.is_empty()) {
        return Some(claims.clone());
    }
    let fields = fields.filter(|f| !f.is_empty())?;
    // A Cognito user-pool authorizer on a REST API nests them under
    // "claims"; a Lambda authorizer's context is flat.
    let map = match fields.get("claims") {
        Some(serde_json::Value::Object(nested)) => nested
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<HashMap<_, _>>(),
        _ => fields.clone(),
    };
    let claims: HashMap<String, String> = map
        .into_iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(s) => Some((k, s)),
            serde_json::Value::Null => None,
            other => Some((k, other.to_string())),
        })
        .collect();
    (!claims.is_empty()).then_some(claims)
}

fn identity_from_claims(claims: &HashMap<String, String>) -> Option<Identity> {
    let id = claims.get("sub").or_else(|| claims.get("principalId"))?;
    let user_id = Uuid::parse_str(id.trim()).ok()?;
    let email = claims.get("email");
    let user_type = ["user_type", "custom:user_type", "type"]
        .iter()
        .find_map(|key| claims.get(*key).and_then(|v| UserType::parse(v)))
        .unwrap_or_else(|| UserType::for_email(email.map_or("", String::as_str)));
    Some(Identity {
        user_id,
        user_type,
        email: email.cloned(),
        source: IdentitySource::Authorizer,
        expires_at: None,
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn auth() -> AuthConfig {
        AuthConfig::with_secret(SECRET)
    }

    fn forge(header: &serde_json::Value, claims: &serde_json::Value, signature: &str) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            signature
        )
    }

    fn claims(exp_offset: i64) -> serde_json::Value {
        let now = unix_now() as i64;
        serde_json::json!({
            "sub": "6b0fb9a5-76f1-4b0e-9a51-7c37a3b0d6a1",
            "type": "regular",
            "iss": ISSUER,
            "iat": now,
            "exp": now + exp_offset,
        })
    }

    #[test]
    fn an_issued_token_verifies() {
        let id = Uuid::new_v4();
        let token = issue_token(&auth(), id, UserType::Guest, Some("guest-1")).expect("issued");
        let identity = verify_token(&auth(), &token).expect("valid");
        assert_eq!(identity.user_id, id);
        assert_eq!(identity.user_type, UserType::Guest);
        assert_eq!(identity.email.as_deref(), Some("guest-1"));
        assert_eq!(identity.source, IdentitySource::SessionToken);
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let other = AuthConfig::with_secret("another-secret-another-secret-xx");
        let token = issue_token(&other, Uuid::new_v4(), UserType::Regular, None).expect("issued");
        assert!(verify_token(&auth(), &token).is_err());
    }

    #[test]
    fn an_expired_token_is_refused() {
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(-60),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("encoded");
        assert!(verify_token(&auth(), &token).is_err());
    }

    #[test]
    fn an_unsigned_alg_none_token_is_refused() {
        let token = forge(
            &serde_json::json!({"alg": "none", "typ": "JWT"}),
            &claims(3600),
            "",
        );
        assert!(verify_token(&auth(), &token).is_err());
    }

    #[test]
    fn another_algorithm_is_refused() {
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims(3600),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("encoded");
        assert!(verify_token(&auth(), &token).is_err());
    }

    #[test]
    fn a_token_of_another_issuer_is_refused() {
        let mut c = claims(3600);
        c["iss"] = "someone-else".into();
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &c,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("encoded");
        assert!(verify_token(&auth(), &token).is_err());
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for token in ["", "abc", "a.b.c", "....", &"a".repeat(MAX_TOKEN_LEN + 1)] {
            assert!(verify_token(&auth(), token).is_err(), "{token}");
        }
    }

    #[test]
    fn without_a_secret_no_token_is_accepted_or_issued() {
        let none = AuthConfig {
            secret: None,
            token_ttl: Duration::from_secs(60),
        };
        let token = issue_token(&auth(), Uuid::new_v4(), UserType::Regular, None).expect("issued");
        assert!(matches!(
            verify_token(&none, &token),
            Err(TokenError::NoSecret)
        ));
        assert!(issue_token(&none, Uuid::new_v4(), UserType::Regular, None).is_err());
    }

    #[test]
    fn authorizer_claims_need_a_uuid_sub() {
        let mut claims = HashMap::new();
        claims.insert("sub".to_owned(), "not-a-uuid".to_owned());
        assert!(identity_from_claims(&claims).is_none());
        let id = Uuid::new_v4();
        claims.insert("sub".to_owned(), id.to_string());
        claims.insert("custom:user_type".to_owned(), "guest".to_owned());
        let identity = identity_from_claims(&claims).expect("identified");
        assert_eq!(identity.user_id, id);
        assert_eq!(identity.user_type, UserType::Guest);
        assert_eq!(identity.source, IdentitySource::Authorizer);
    }

    #[test]
    fn without_a_type_claim_an_upstream_guest_address_is_a_guest() {
        let mut claims = HashMap::new();
        claims.insert("sub".to_owned(), Uuid::new_v4().to_string());
        claims.insert("email".to_owned(), "guest-1732700000000".to_owned());
        let guest = identity_from_claims(&claims).expect("identified");
        assert_eq!(guest.user_type, UserType::Guest);
        claims.insert("email".to_owned(), "ada@example.com".to_owned());
        let ada = identity_from_claims(&claims).expect("identified");
        assert_eq!(ada.user_type, UserType::Regular);
        for email in ["guest-", "guest-12a", "guest-1 ", "guests-1"] {
            assert_eq!(UserType::for_email(email), UserType::Regular, "{email}");
        }
    }
}
