//! bcrypt, as the upstream database stores it, kept off the async executor.
//!
//! Upstream hashes with `bcrypt-ts` at cost 10 (`$2a$` or `$2b$` hashes,
//! depending on its version); other tools that may have written the column
//! produce `$2b$` (Python, OpenBSD) or `$2y$` (PHP, htpasswd). All are the
//! same algorithm, and [`bcrypt::verify`] accepts every one of them.
//!
//! A hash costs tens of milliseconds of CPU. On the async executor that
//! would stall every other request of the process (Lambda Managed Instances
//! run many at once), so the work runs on Tokio's blocking pool.

use std::sync::LazyLock;

use secrecy::{ExposeSecret, SecretString};
use shared::http::{ApiError, ApiResult};
use uuid::Uuid;

/// Upstream's cost (`genSaltSync(10)`): new hashes cost what upstream's do,
/// and the dummy costs what a real user's hash costs.
pub const COST: u32 = 10;

/// The longest password bcrypt reads. Longer ones are truncated by bcrypt
/// (so "correct-horse…" plus anything would match); register refuses them.
pub const MAX_PASSWORD_BYTES: usize = 72;

/// What the credentials check decided, for the log (a client sees only
/// "yes" or one and the same 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The password matches the stored hash.
    Match,
    /// It does not.
    Mismatch,
    /// No user has this e-mail address.
    UnknownUser,
    /// The user has no password (a guest, or a user API Gateway's
    /// authorizer brought in): they cannot sign in with one.
    NoPassword,
    /// The stored value is not a bcrypt hash we can read.
    UnusableHash,
}

impl Verdict {
    /// Whether the caller may sign in.
    pub fn is_match(self) -> bool {
        self == Self::Match
    }

    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Match => "match",
            Self::Mismatch => "wrong_password",
            Self::UnknownUser => "unknown_user",
            Self::NoPassword => "no_password",
            Self::UnusableHash => "unusable_hash",
        }
    }
}

/// Upstream's `DUMMY_PASSWORD`: a cost-10 hash of a random password nobody
/// knows, made once per process. When there is no real hash to check, the
/// password is checked against this one, so that an unknown e-mail address
/// costs exactly what a wrong password costs and login timing does not tell
/// who has an account.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let password = Uuid::new_v4().to_string();
    bcrypt::hash_with_salt(password, COST, Uuid::new_v4().into_bytes())
        .map(|parts| parts.to_string())
        // Unreachable (the cost is a valid constant); a fixed cost-10 hash
        // keeps the timing right even then.
        .unwrap_or_else(|_| FALLBACK_DUMMY_HASH.to_owned())
});

/// A cost-10 hash of a random password that was thrown away (Python's
/// `bcrypt.hashpw(os.urandom(24).hex(), gensalt(10))`).
const FALLBACK_DUMMY_HASH: &str = "$2b$10$Lf3iAY3z8Mk.kLn0Bje69OBXMmEYBQ7FE2.4df5yW2/W.8aR1YYCq";

/// Hashes a new password at [`COST`], on the blocking pool.
pub async fn hash(password: &SecretString) -> ApiResult<String> {
    let password = password.clone();
    let hashed = tokio::task::spawn_blocking(move || {
        bcrypt::hash(password.expose_secret().as_bytes(), COST)
    })
    .await
    .map_err(ApiError::internal)?;
    hashed.map_err(ApiError::internal)
}

/// Checks `password` against the stored hash of the user (`Some(None)`: a
/// user without a password; `None`: no such user), on the blocking pool.
///
/// Every path runs exactly one cost-10 bcrypt computation, so that what
/// the caller learns from the time taken is nothing. The dummy hash is
/// forced on every path too: the first login of a process pays for making
/// it whether or not the e-mail address is known.
pub async fn verify(password: &SecretString, stored: Option<Option<String>>) -> ApiResult<Verdict> {
    let password = password.clone();
    tokio::task::spawn_blocking(move || {
        let dummy = DUMMY_HASH.as_str();
        let password = password.expose_secret().as_bytes();
        let against_dummy = |verdict: Verdict| {
            // The answer is known already; the work is for the clock.
            let _ = bcrypt::verify(password, dummy);
            verdict
        };
        match stored {
            None => against_dummy(Verdict::UnknownUser),
            Some(None) => against_dummy(Verdict::NoPassword),
            // bcrypt-ts truncates at 72 bytes, and so does `verify`: a user
            // whose upstream password is longer still signs in with it.
            Some(Some(hash)) => match bcrypt::verify(password, &hash) {
                Ok(true) => Verdict::Match,
                Ok(false) => Verdict::Mismatch,
                Err(_) => against_dummy(Verdict::UnusableHash),
            },
        }
    })
    .await
    .map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_hash_is_a_cost_10_bcrypt_hash() {
        assert!(DUMMY_HASH.starts_with("$2b$10$"), "{}", *DUMMY_HASH);
        assert_eq!(DUMMY_HASH.len(), 60);
        assert!(FALLBACK_DUMMY_HASH.starts_with("$2b$10$"));
        assert!(bcrypt::verify("anything", FALLBACK_DUMMY_HASH).is_ok());
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_no_other() {
        let password = SecretString::from("correct horse");
        let hashed = hash(&password).await.expect("hashed");
        assert!(hashed.starts_with("$2b$10$"));
        let verdict = verify(&password, Some(Some(hashed.clone()))).await;
        assert_eq!(verdict.expect("verified"), Verdict::Match);
        let wrong = SecretString::from("battery staple");
        let verdict = verify(&wrong, Some(Some(hashed))).await;
        assert_eq!(verdict.expect("verified"), Verdict::Mismatch);
    }

    #[tokio::test]
    async fn without_a_usable_hash_nothing_matches() {
        let password = SecretString::from("whatever");
        for (stored, expected) in [
            (None, Verdict::UnknownUser),
            (Some(None), Verdict::NoPassword),
            (Some(Some("not a hash".to_owned())), Verdict::UnusableHash),
        ] {
            let verdict = verify(&password, stored).await.expect("verified");
            assert_eq!(verdict, expected);
            assert!(!verdict.is_match());
        }
    }
}
