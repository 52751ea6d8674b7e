//! Where the database password comes from.
//!
//! - The URL (the default): `postgres://user:password@host/db`, fixed for
//!   the life of the process.
//! - AWS Secrets Manager (`DB_SECRET_ID`): the secret's JSON (`password`,
//!   and `username` if present, as RDS-managed and rotated secrets hold
//!   them) is read through the AWS Parameters and Secrets Lambda
//!   Extension's local HTTP endpoint, which needs no SDK and caches the
//!   secret for the whole environment. Host, port and database stay the
//!   URL's.
//! - RDS IAM authentication (`DB_IAM_AUTH=true`): the password is a token
//!   signed with the function's own AWS credentials, valid 15 minutes.
//!
//! Either way the password changes over the life of a warm environment, so
//! the pool applies fresh credentials before they are due
//! (`DB_CREDENTIALS_REFRESH_SECS`) and, when the server refuses a login,
//! fetches them again once and retries (see `db::credentials`).

use std::time::Duration;

use super::{ConfigError, Env};

/// The Parameters and Secrets extension's default port.
const EXTENSION_PORT: u16 = 2773;

/// An IAM token is valid 15 minutes; a fresh one is made after 10, so
/// that a connection opened near the end never carries an expired one.
const IAM_REFRESH: Duration = Duration::from_secs(600);

/// Secrets Manager: re-read after 5 minutes (the extension's own cache
/// TTL), and at once when the server refuses the password.
const SECRET_REFRESH: Duration = Duration::from_secs(300);

/// Where the password comes from (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// The URL's password, fixed.
    Url,
    /// A Secrets Manager secret, through the Lambda extension.
    SecretsManager {
        /// `DB_SECRET_ID`: the secret's name or ARN.
        secret_id: String,
        /// `http://localhost:<PARAMETERS_SECRETS_EXTENSION_HTTP_PORT>`.
        endpoint: String,
        /// How long a fetched secret is used before it is read again.
        refresh: Duration,
    },
    /// An RDS IAM authentication token, signed here.
    RdsIam {
        /// `AWS_REGION`: the region of the database.
        region: String,
        /// How long a token is used before a new one is made.
        refresh: Duration,
    },
}

impl CredentialSource {
    /// How often fresh credentials are applied, if they change at all.
    pub fn refresh(&self) -> Option<Duration> {
        match self {
            CredentialSource::Url => None,
            CredentialSource::SecretsManager { refresh, .. }
            | CredentialSource::RdsIam { refresh, .. } => Some(*refresh),
        }
    }

    pub(super) fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        let iam = match env.get("DB_IAM_AUTH").as_deref().map(str::trim) {
            None | Some("false" | "0") => false,
            Some("true" | "1") => true,
            Some(_) => {
                return Err(ConfigError::Invalid {
                    var: "DB_IAM_AUTH",
                    reason: "it must be `true` or `false`".into(),
                });
            }
        };
        let secret_id = env.get("DB_SECRET_ID").map(|id| id.trim().to_owned());
        let refresh = env.secs("DB_CREDENTIALS_REFRESH_SECS", 0)?;
        match (iam, secret_id) {
            (true, Some(_)) => Err(ConfigError::Invalid {
                var: "DB_SECRET_ID",
                reason: "set it or DB_IAM_AUTH=true, not both".into(),
            }),
            (true, None) => {
                let region = env.get("AWS_REGION").ok_or(ConfigError::Missing {
                    var: "AWS_REGION",
                    hint: "DB_IAM_AUTH=true signs tokens for the database's region (Lambda sets it)",
                })?;
                let refresh = refresh.unwrap_or(IAM_REFRESH);
                if refresh >= Duration::from_secs(900) {
                    return Err(ConfigError::Invalid {
                        var: "DB_CREDENTIALS_REFRESH_SECS",
                        reason: "an IAM token is valid 15 minutes: refresh sooner".into(),
                    });
                }
                Ok(CredentialSource::RdsIam { region, refresh })
            }
            (false, Some(secret_id)) => {
                let port = env
                    .parse::<u16>("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT")?
                    .unwrap_or(EXTENSION_PORT);
                Ok(CredentialSource::SecretsManager {
                    secret_id,
                    endpoint: format!("http://localhost:{port}"),
                    refresh: refresh.unwrap_or(SECRET_REFRESH),
                })
            }
            (false, None) => Ok(CredentialSource::Url),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<CredentialSource, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |k: &str| map.get(k).cloned();
        CredentialSource::read(&Env(&lookup))
    }

    #[test]
    fn the_url_is_the_default_source() {
        assert_eq!(read(&[]).expect("valid"), CredentialSource::Url);
        assert_eq!(CredentialSource::Url.refresh(), None);
    }

    #[test]
    fn a_secret_id_reads_through_the_extension_on_its_port() {
        let source = read(&[
            (
                "DB_SECRET_ID",
                "arn:aws:secretsmanager:eu-west-1:1:secret:db",
            ),
            ("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", "2999"),
        ])
        .expect("valid");
        assert_eq!(
            source,
            CredentialSource::SecretsManager {
                secret_id: "arn:aws:secretsmanager:eu-west-1:1:secret:db".into(),
                endpoint: "http://localhost:2999".into(),
                refresh: SECRET_REFRESH,
            }
        );
    }

    #[test]
    fn iam_tokens_need_a_region_and_a_refresh_inside_their_15_minutes() {
        let source = read(&[("DB_IAM_AUTH", "true"), ("AWS_REGION", "eu-west-1")]).expect("valid");
        assert_eq!(source.refresh(), Some(IAM_REFRESH));
        let error = read(&[("DB_IAM_AUTH", "true")]).expect_err("no region");
        assert!(error.to_string().contains("AWS_REGION"));
        let error = read(&[
            ("DB_IAM_AUTH", "true"),
            ("AWS_REGION", "eu-west-1"),
            ("DB_CREDENTIALS_REFRESH_SECS", "900"),
        ])
        .expect_err("too late");
        assert!(error.to_string().contains("DB_CREDENTIALS_REFRESH_SECS"));
        let error = read(&[
            ("DB_IAM_AUTH", "true"),
            ("AWS_REGION", "eu-west-1"),
            ("DB_SECRET_ID", "x"),
        ])
        .expect_err("both");
        assert!(error.to_string().contains("not both"));
        let error = read(&[("DB_IAM_AUTH", "yes please")]).expect_err("not a flag");
        assert!(error.to_string().contains("DB_IAM_AUTH"));
    }
}
