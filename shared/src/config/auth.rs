//! How request identities are verified: the secret that signs session
//! tokens, and how long they last.

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::{ConfigError, Env};

/// How request identities are verified (see `http::identity`).
#[derive(Clone)]
pub struct AuthConfig {
    /// Signs and verifies session tokens (`AUTH_SECRET`, at least 32
    /// characters). Without it, only API Gateway authorizer claims identify
    /// a caller and every bearer token is refused.
    pub secret: Option<SecretString>,
    /// How long an issued session token is valid (`AUTH_TOKEN_TTL_SECS`,
    /// default 30 days, as NextAuth's sessions upstream).
    pub token_ttl: Duration,
}

/// The shortest `AUTH_SECRET` accepted: 256 bits of HMAC key, as
/// `openssl rand -base64 32` gives.
pub const MIN_AUTH_SECRET_LEN: usize = 32;

impl AuthConfig {
    pub(super) fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        let secret = match env.get("AUTH_SECRET") {
            None => None,
            Some(secret) if secret.len() < MIN_AUTH_SECRET_LEN => {
                return Err(ConfigError::Invalid {
                    var: "AUTH_SECRET",
                    reason: format!(
                        "it must be at least {MIN_AUTH_SECRET_LEN} characters long \
                         (try `openssl rand -base64 32`)"
                    ),
                });
            }
            Some(secret) => Some(SecretString::from(secret)),
        };
        Ok(Self {
            secret,
            token_ttl: env.secs_nonzero("AUTH_TOKEN_TTL_SECS", 30 * 24 * 3600)?,
        })
    }

    /// A configuration with the given secret and the default token lifetime.
    pub fn with_secret(secret: &str) -> Self {
        Self {
            secret: Some(SecretString::from(secret.to_owned())),
            token_ttl: Duration::from_secs(30 * 24 * 3600),
        }
    }

    /// The secret's bytes, if one is configured.
    pub(crate) fn secret_bytes(&self) -> Option<&[u8]> {
        self.secret.as_ref().map(|s| s.expose_secret().as_bytes())
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("token_ttl", &self.token_ttl)
            .finish()
    }
}
