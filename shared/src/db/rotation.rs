//! Credentials that change while the process lives: a Secrets Manager
//! secret that rotates, an RDS IAM token that expires (see
//! `config::credentials` for the sources).
//!
//! sqlx opens connections with the options the pool holds, so new
//! credentials are applied by replacing them
//! (`PgPool::set_connect_options`); connections already open stay open,
//! as PostgreSQL checks a password only at login. They are applied:
//!
//! - before the first connection, and again once they are older than the
//!   refresh interval. The check runs when an invocation asks for its
//!   connection, not on a timer: a frozen environment runs no timers, and
//!   a thawed one must not open a connection with an expired token;
//! - at once when the server refuses a login (`28P01`, `28000`): the
//!   secret was rotated since it was read. `Db::session` then fetches
//!   again and retries once.
//!
//! Fetches are serialised: concurrent invocations that find the
//! credentials due wait for one fetch rather than each making their own.

use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials as AwsCredentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use serde::Deserialize;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use tokio::sync::Mutex;

use crate::config::CredentialSource;

/// How long an IAM token is valid: 15 minutes, RDS's fixed limit.
const IAM_TOKEN_VALIDITY: Duration = Duration::from_secs(900);

/// The credentials of a pool whose password changes.
#[derive(Debug)]
pub(crate) struct RotatingCredentials {
    source: CredentialSource,
    refresh: Duration,
    /// The URL's options, to which each fresh user and password is added.
    base: PgConnectOptions,
    /// When credentials were last applied (`None`: never).
    applied_at: Mutex<Option<Instant>>,
    http: reqwest::Client,
}

/// A failure to obtain credentials; the request it happened under is
/// answered 503, like any database that cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The extension could not be reached or answered with an error.
    #[error("the secret could not be read through the Parameters and Secrets extension: {0}")]
    Extension(String),
    /// The secret is not the JSON an RDS secret holds.
    #[error("the secret holds no usable password: {0}")]
    Secret(&'static str),
    /// An IAM token could not be signed.
    #[error("an RDS IAM token could not be signed: {0}")]
    Signing(String),
}

impl From<CredentialError> for sqlx::Error {
    fn from(error: CredentialError) -> Self {
        sqlx::Error::Io(std::io::Error::other(error))
    }
}

/// What a secret's `SecretString` holds (RDS's layout; other fields are
/// ignored).
#[derive(Deserialize)]
struct SecretFields {
    username: Option<String>,
    password: Option<String>,
}

impl RotatingCredentials {
    /// Credentials from `source`, applied over `base`; `None` for the URL's
    /// fixed password.
    pub(crate) fn new(source: &CredentialSource, base: PgConnectOptions) -> Option<Self> {
        let refresh = source.refresh()?;
        // reqwest is built without a TLS crypto provider of its own (the
        // extension is plain HTTP on localhost, but the client wants one).
        let _ = rustls::crypto::ring::default_provider().install_default();
        Some(Self {
            source: source.clone(),
            refresh,
            base,
            applied_at: Mutex::new(None),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .ok()?,
        })
    }

    /// Applies fresh credentials to `pool` if they are due, or `force`d
    /// (after a refused login).
    pub(crate) async fn refresh(&self, pool: &PgPool, force: bool) -> Result<(), CredentialError> {
        let mut applied_at = self.applied_at.lock().await;
        let due = match *applied_at {
            None => true,
            Some(at) => force || at.elapsed() >= self.refresh,
        };
        if !due {
            return Ok(());
        }
        pool.set_connect_options(self.current_options().await?);
        *applied_at = Some(Instant::now());
        tracing::info!(
            source = self.kind(),
            forced = force,
            "database credentials applied"
        );
        Ok(())
    }

    /// The options to open a connection with now, fresh credentials
    /// included (for a one-off connection, such as the migrate function's).
    pub(crate) async fn current_options(&self) -> Result<PgConnectOptions, CredentialError> {
        let (username, password) = self.fetch().await?;
        let options = self.base.clone().password(&password);
        Ok(match username {
            Some(username) => options.username(&username),
            None => options,
        })
    }

    fn kind(&self) -> &'static str {
        match self.source {
            CredentialSource::Url => "url",
            CredentialSource::SecretsManager { .. } => "secrets-manager",
            CredentialSource::RdsIam { .. } => "rds-iam",
        }
    }

    /// The user (if the source names one) and the password.
    async fn fetch(&self) -> Result<(Option<String>, String), CredentialError> {
        match &self.source {
            CredentialSource::Url => Err(CredentialError::Secret("the URL's password is fixed")),
            CredentialSource::SecretsManager {
                secret_id,
                endpoint,
                ..
            } => self.read_secret(endpoint, secret_id).await,
            CredentialSource::RdsIam { region, .. } => {
                let token = iam_token(
                    self.base.get_host(),
                    self.base.get_port(),
                    self.base.get_username(),
                    region,
                    &aws_credentials_from_env()?,
                    SystemTime::now(),
                )?;
                Ok((None, token))
            }
        }
    }

    /// `GET /secretsmanager/get?secretId=...` on the extension, with the
    /// session token it requires as proof that the caller is the function.
    async fn read_secret(
        &self,
        endpoint: &str,
        secret_id: &str,
    ) -> Result<(Option<String>, String), CredentialError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(rename = "SecretString")]
            secret_string: Option<String>,
        }
        let token = std::env::var("AWS_SESSION_TOKEN").unwrap_or_default();
        let url = url::Url::parse_with_params(
            &format!("{endpoint}/secretsmanager/get"),
            [("secretId", secret_id)],
        )
        .map_err(|e| CredentialError::Extension(e.to_string()))?;
        let response = self
            .http
            .get(url)
            .header("X-Aws-Parameters-Secrets-Token", token)
            .send()
            .await
            .map_err(|e| CredentialError::Extension(e.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(CredentialError::Extension(format!("status {status}")));
        }
        let answer: Answer = response
            .json()
            .await
            .map_err(|_| CredentialError::Secret("the extension's answer is not JSON"))?;
        let text = answer.secret_string.ok_or(CredentialError::Secret(
            "no SecretString (a binary secret?)",
        ))?;
        let fields: SecretFields = serde_json::from_str(&text)
            .map_err(|_| CredentialError::Secret("SecretString is not a JSON object"))?;
        let password = fields
            .password
            .filter(|p| !p.is_empty())
            .ok_or(CredentialError::Secret("no `password` field"))?;
        Ok((fields.username.filter(|u| !u.is_empty()), password))
    }
}

/// Whether `error` is the server refusing our login: wrong password
/// (`28P01`) or, for IAM tokens, failed authentication (`28000`).
pub(crate) fn is_login_refused(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().is_some_and(|c| c == "28P01" || c == "28000"))
}

/// The function's AWS credentials, as Lambda puts them in its environment.
fn aws_credentials_from_env() -> Result<AwsCredentials, CredentialError> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (Some(key), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) else {
        return Err(CredentialError::Signing(
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set".into(),
        ));
    };
    Ok(AwsCredentials::new(
        key,
        secret,
        var("AWS_SESSION_TOKEN"),
        None,
        "environment",
    ))
}

/// An RDS IAM authentication token: a SigV4 presigned
/// `https://host:port/?Action=connect&DBUser=user` for the `rds-db`
/// service, without its scheme, valid 15 minutes from `now`.
pub fn iam_token(
    host: &str,
    port: u16,
    user: &str,
    region: &str,
    credentials: &AwsCredentials,
    now: SystemTime,
) -> Result<String, CredentialError> {
    let url = url::Url::parse_with_params(
        &format!("https://{host}:{port}/"),
        [("Action", "connect"), ("DBUser", user)],
    )
    .map_err(|e| CredentialError::Signing(e.to_string()))?;
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(IAM_TOKEN_VALIDITY);
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("rds-db")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| CredentialError::Signing(e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        "GET",
        url.as_str(),
        std::iter::empty(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| CredentialError::Signing(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| CredentialError::Signing(e.to_string()))?
        .into_parts();
    let mut request = http::Request::builder()
        .uri(url.as_str())
        .body(())
        .map_err(|e| CredentialError::Signing(e.to_string()))?;
    instructions.apply_to_request_http1x(&mut request);
    let signed = request.uri().to_string();
    Ok(signed
        .strip_prefix("https://")
        .unwrap_or(&signed)
        .to_owned())
}

/// The options to open a one-off connection for `config` with: the URL's,
/// with current credentials when they come from elsewhere.
pub async fn connect_options_now(
    config: &crate::config::DbConfig,
) -> Result<PgConnectOptions, CredentialError> {
    match RotatingCredentials::new(&config.credentials, config.connect_options()) {
        Some(credentials) => credentials.current_options().await,
        None => Ok(config.connect_options()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    /// The query parameters of a token, by name.
    fn params(token: &str) -> (String, BTreeMap<String, String>) {
        let url = url::Url::parse(&format!("https://{token}")).expect("a token is a URL");
        let base = format!(
            "{}:{}{}",
            url.host_str().unwrap_or(""),
            url.port().unwrap_or(0),
            url.path()
        );
        (base, url.query_pairs().into_owned().collect())
    }

    #[test]
    fn an_iam_token_matches_the_one_the_aws_sdk_signs() {
        // Made with botocore's `generate_db_auth_token` for these inputs,
        // its clock fixed at 2026-11-27T10:00:00Z.
        let reference = "db.example.eu-west-1.rds.amazonaws.com:5432/?Action=connect\
            &DBUser=app_user&X-Amz-Algorithm=AWS4-HMAC-SHA256\
            &X-Amz-Credential=AKIDEXAMPLE%2F20261127%2Feu-west-1%2Frds-db%2Faws4_request\
            &X-Amz-Date=20261127T100000Z&X-Amz-SignedHeaders=host&X-Amz-Expires=900\
            &X-Amz-Security-Token=session-token-1\
            &X-Amz-Signature=6ef4e99c8821360985985614ecd158bd4e0970d8552cd365e37e34c62ad187c6";
        let credentials = AwsCredentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("session-token-1".into()),
            None,
            "test",
        );
        let at = UNIX_EPOCH + Duration::from_secs(1_795_773_600);
        let token = iam_token(
            "db.example.eu-west-1.rds.amazonaws.com",
            5432,
            "app_user",
            "eu-west-1",
            &credentials,
            at,
        )
        .expect("signed");
        // The same request and signature; the parameters' order is free.
        assert_eq!(params(&token), params(reference), "{token}");
        assert!(!token.starts_with("https://"));
    }
}
