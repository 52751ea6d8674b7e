//! Typed configuration, read once from the environment.
//!
//! Every variable the functions read is listed here, with its default, and
//! nowhere else (the README and `template.yaml` mirror this list). A missing
//! or malformed value is a [`ConfigError`] that names the variable; nothing
//! here panics. Secrets (the database password, the token secret) are kept
//! in [`SecretString`]s or redacted before anything can print them.
//!
//! Parsing works on a lookup function rather than on `std::env` directly, so
//! that tests can feed it a map instead of mutating the process environment.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::PgConnectOptions;

use crate::db::emf::EmfConfig;
pub use credentials::CredentialSource;

mod chat;
pub mod credentials;
pub mod tls;

pub use chat::{ChatConfig, ModelConfig, OpenAiConfig};

/// Why a configuration could not be read. Always names the variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("{var} is not set: {hint}")]
    Missing {
        /// The variable's name.
        var: &'static str,
        /// What to set it to.
        hint: &'static str,
    },
    /// A variable is set to something unusable.
    #[error("{var} is invalid: {reason}")]
    Invalid {
        /// The variable's name.
        var: &'static str,
        /// What is wrong with it (never the value itself, which may be secret).
        reason: String,
    },
}

/// The configuration of one function process.
#[derive(Debug, Clone)]
pub struct Config {
    /// The function's short name (`history`, `chat`, ...); it names the
    /// process's connections on the server (`application_name`).
    pub function: &'static str,
    /// How to reach the database and how to pool connections to it.
    pub db: DbConfig,
    /// How request identities are verified.
    pub auth: AuthConfig,
    /// The longest a handler may run before it is cut off with a 503
    /// (`HANDLER_TIMEOUT_SECS`, default 25 s: under API Gateway's 29 s
    /// integration timeout, so the client gets our error, not the gateway's).
    pub handler_timeout: Duration,
}

impl Config {
    /// Reads the configuration of `function` from the process environment.
    pub fn from_env(function: &'static str) -> Result<Self, ConfigError> {
        Self::from_lookup(function, |name| std::env::var(name).ok())
    }

    /// Reads the configuration of `function` through `lookup` (a stand-in for
    /// the environment in tests).
    pub fn from_lookup(
        function: &'static str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        Ok(Self {
            function,
            db: DbConfig::read(function, &env)?,
            auth: AuthConfig::read(&env)?,
            handler_timeout: env.secs_nonzero("HANDLER_TIMEOUT_SECS", 25)?,
        })
    }
}

/// Where the database is and how the pool treats its connections: the Node.js design's
/// `postgres(url, { max, idle_timeout, connect_timeout })`, plus the bounds
/// that a Lambda environment needs.
#[derive(Clone)]
pub struct DbConfig {
    /// Parsed `POSTGRES_URL` (or `DATABASE_URL`), with `application_name`
    /// set. Holds the password: never printed (see the `Debug` impl).
    connect_options: PgConnectOptions,
    /// The URL with its password replaced, for logs.
    redacted_url: String,
    /// Most connections the pool opens (`DB_POOL_MAX`), and why.
    pub pool_max: PoolSize,
    /// Idle connections are closed after this (`DB_IDLE_TIMEOUT_SECS`, 20).
    /// It also bounds reuse after a frozen Lambda environment thaws: a
    /// connection idle for longer is never handed out.
    pub idle_timeout: Duration,
    /// Bound on getting a connection, including opening one
    /// (`DB_CONNECT_TIMEOUT_SECS`, 10).
    pub connect_timeout: Duration,
    /// Server-side bound on every statement (`DB_STATEMENT_TIMEOUT_SECS`,
    /// 10; 0 turns it off). sqlx cannot cancel a query whose future was
    /// dropped, so this is what stops abandoned work on the server.
    pub statement_timeout: Option<Duration>,
    /// Connections are replaced after this age (`DB_MAX_LIFETIME_SECS`,
    /// 1800), so that rotated credentials and moved proxies are picked up.
    pub max_lifetime: Duration,
    /// `chat-backend:<function>`: how the server tells our connections apart.
    pub application_name: String,
    /// What stands between us and PostgreSQL (`DB_POOLER`): nothing, or a
    /// transaction-mode pooler such as PgBouncer or RDS Proxy.
    pub pooler: Pooler,
    /// The pool's metrics as CloudWatch EMF lines (`DB_METRICS`), or none.
    pub metrics: Option<EmfConfig>,
    /// Where the password comes from: the URL, Secrets Manager or IAM.
    pub credentials: CredentialSource,
    /// An idle connection is pinged before it is handed out only once it
    /// has sat idle this long (`DB_CHECK_AFTER_IDLE_MS`, default 0: every
    /// time). Under load a connection goes straight from one invocation to
    /// the next, and 100 saves a round trip on each, at a price: a path that
    /// dies within those 100 ms hangs the request that finds it until the
    /// handler's deadline instead of costing a bounded ping.
    pub check_after_idle: Duration,
}

/// What stands between the functions and PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooler {
    /// Nothing, or a pooler in session mode (`DB_POOLER` unset, `none` or
    /// `session`): connections are PostgreSQL sessions.
    Direct,
    /// A transaction-mode pooler (`DB_POOLER=transaction`: PgBouncer in
    /// transaction mode, RDS Proxy): a client connection has a server
    /// connection only during a transaction, so no session state may be
    /// set, statements are prepared unnamed, and each invocation's work is
    /// one transaction (see `db::sql` and `db::Session`).
    Transaction,
}

/// The pool's maximum size and where that number came from, so that the
/// choice can be logged once at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSize {
    /// The maximum number of connections.
    pub max: u32,
    /// Why this number.
    pub reason: &'static str,
}

/// The Node.js design's `max: 10`, used where the process may serve many requests at
/// once (outside Lambda).
pub const DEFAULT_POOL_MAX: u32 = 10;

impl DbConfig {
    fn read(function: &'static str, env: &Env<'_>) -> Result<Self, ConfigError> {
        let (var, raw) = match (env.get("POSTGRES_URL"), env.get("DATABASE_URL")) {
            (Some(url), _) => ("POSTGRES_URL", url),
            (None, Some(url)) => ("DATABASE_URL", url),
            (None, None) => {
                return Err(ConfigError::Missing {
                    var: "POSTGRES_URL",
                    hint: "set it (or DATABASE_URL) to postgres://user:password@host:5432/database",
                });
            }
        };
        let application_name = format!("chat-backend:{function}");
        let (connect_options, redacted_url) = parse_database_url(var, &raw)?;
        let connect_options = tls::configure(var, connect_options, env)?;
        let pooler = match env.get("DB_POOLER").as_deref().map(str::trim) {
            None | Some("none" | "session") => Pooler::Direct,
            Some("transaction") => Pooler::Transaction,
            Some(_) => {
                return Err(ConfigError::Invalid {
                    var: "DB_POOLER",
                    reason: "it must be `none`, `session` or `transaction`".into(),
                });
            }
        };
        let mut connect_options = connect_options.application_name(&application_name);
        let statement_timeout = match pooler {
            Pooler::Direct => env.secs("DB_STATEMENT_TIMEOUT_SECS", 10)?,
            // A pooler would hand a session setting to whichever client
            // comes next (PgBouncer refuses the startup `options` outright),
            // and any SET, even SET LOCAL or set_config, pins an RDS Proxy
            // session. Behind one, set statement_timeout on the role or the
            // database instead (see the README).
            Pooler::Transaction => None,
        };
        if let Some(timeout) = statement_timeout {
            // Sent in the startup packet, so it costs no round trip and no
            // session state is set after connecting.
            connect_options = connect_options
                .options([("statement_timeout", format!("{}ms", timeout.as_millis()))]);
        }
        if pooler == Pooler::Transaction {
            // A startup parameter PgBouncer does not know makes it refuse
            // the connection; PostgreSQL's default suits us.
            connect_options = connect_options.extra_float_digits(None);
        }
        Ok(Self {
            connect_options,
            redacted_url,
            pool_max: pool_size(env)?,
            idle_timeout: env.secs_nonzero("DB_IDLE_TIMEOUT_SECS", 20)?,
            connect_timeout: env.secs_nonzero("DB_CONNECT_TIMEOUT_SECS", 10)?,
            statement_timeout,
            max_lifetime: env.secs_nonzero("DB_MAX_LIFETIME_SECS", 1800)?,
            metrics: read_metrics(function, env)?,
            credentials: CredentialSource::read(env)?,
            check_after_idle: Duration::from_millis(
                env.parse::<u64>("DB_CHECK_AFTER_IDLE_MS")?.unwrap_or(0),
            ),
            application_name,
            pooler,
        })
    }

    /// A configuration for `url` with the given `function` name and the
    /// defaults, for tools and tests that are handed a URL rather than an
    /// environment.
    pub fn for_url(function: &'static str, url: &str) -> Result<Self, ConfigError> {
        let env_url = url.to_owned();
        let lookup = move |name: &str| (name == "POSTGRES_URL").then(|| env_url.clone());
        Self::read(function, &Env(&lookup))
    }

    /// The options to open a connection with (password included).
    pub fn connect_options(&self) -> PgConnectOptions {
        self.connect_options.clone()
    }

    /// The database URL with its password masked, safe to log.
    pub fn redacted_url(&self) -> &str {
        &self.redacted_url
    }

    /// A copy with a different application name (tests use it to tell their
    /// pools apart on one server).
    pub fn with_application_name(mut self, name: &str) -> Self {
        self.connect_options = self.connect_options.application_name(name);
        self.application_name = name.to_owned();
        self
    }

    /// A copy pointed at another database on the same server.
    pub fn with_database(mut self, database: &str) -> Self {
        self.connect_options = self.connect_options.database(database);
        self.redacted_url = replace_path(&self.redacted_url, database);
        self
    }
}

impl fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbConfig")
            .field("url", &self.redacted_url)
            .field("pool_max", &self.pool_max)
            .field("idle_timeout", &self.idle_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("max_lifetime", &self.max_lifetime)
            .field("application_name", &self.application_name)
            .field("pooler", &self.pooler)
            .field("metrics", &self.metrics)
            .field("credentials", &self.credentials)
            .field("check_after_idle", &self.check_after_idle)
            .finish()
    }
}

/// The migrate function's configuration: its own connection (never the
/// pool) and the bounds it sets on it.
#[derive(Debug, Clone)]
pub struct MigrateConfig {
    /// Where the database is. Its `application_name` is
    /// `chat-backend:migrate`; pool settings do not apply.
    pub db: DbConfig,
    /// Bound on each migration statement, and on waiting for another
    /// migration run to finish (`MIGRATE_STATEMENT_TIMEOUT_SECS`, 600:
    /// index builds on a large database take a while, and Lambda allows 900).
    pub statement_timeout: Duration,
    /// Bound on waiting for a table lock held by the running application
    /// (`MIGRATE_LOCK_TIMEOUT_SECS`, 10), so that a migration never queues
    /// every request behind it for long.
    pub lock_timeout: Duration,
}

impl MigrateConfig {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (a stand-in for the
    /// environment in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        Ok(Self {
            db: DbConfig::read("migrate", &env)?,
            statement_timeout: env.secs_nonzero("MIGRATE_STATEMENT_TIMEOUT_SECS", 600)?,
            lock_timeout: env.secs_nonzero("MIGRATE_LOCK_TIMEOUT_SECS", 10)?,
        })
    }
}

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
    fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
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

/// The pool size a process needs: an explicit `DB_POOL_MAX` wins; otherwise
/// as many connections as invocations the process serves at once.
fn pool_size(env: &Env<'_>) -> Result<PoolSize, ConfigError> {
    if let Some(max) = env.parse::<u32>("DB_POOL_MAX")? {
        if max == 0 {
            return Err(ConfigError::Invalid {
                var: "DB_POOL_MAX",
                reason: "it must be at least 1".into(),
            });
        }
        return Ok(PoolSize {
            max,
            reason: "set by DB_POOL_MAX",
        });
    }
    let in_lambda = env.get("AWS_LAMBDA_RUNTIME_API").is_some();
    if !in_lambda {
        return Ok(PoolSize {
            max: DEFAULT_POOL_MAX,
            reason: "outside Lambda, many requests may run at once: the Node.js design's default",
        });
    }
    // Lambda Managed Instances run AWS_LAMBDA_MAX_CONCURRENCY invocations
    // in one process; a value that does not parse is Lambda's business, so
    // it counts as unset, as lambda_runtime treats it.
    let concurrency = env
        .get("AWS_LAMBDA_MAX_CONCURRENCY")
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|&n| n > 1);
    Ok(match concurrency {
        Some(max) => PoolSize {
            max,
            reason: "Lambda Managed Instances: one connection per concurrent invocation \
                     (AWS_LAMBDA_MAX_CONCURRENCY)",
        },
        None => PoolSize {
            max: 1,
            reason: "classic Lambda: one invocation at a time per environment, so the fleet \
                     holds one connection per environment",
        },
    })
}

/// Parses a PostgreSQL URL without ever echoing it: the errors name the
/// variable and the problem, never the value, which carries the password.
fn parse_database_url(
    var: &'static str,
    raw: &str,
) -> Result<(PgConnectOptions, String), ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid { var, reason };
    let url = url::Url::parse(raw.trim()).map_err(|e| invalid(format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(invalid(
            "the scheme must be postgres:// or postgresql://".into(),
        ));
    }
    let options = PgConnectOptions::from_str(url.as_str())
        .map_err(|e| invalid(format!("not a usable PostgreSQL URL ({e})")))?;
    Ok((options, redact(&url)))
}

/// The URL with the password (in the user part or in a `password` query
/// parameter) masked.
fn redact(url: &url::Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        // Cannot fail: a URL that has a password has a host.
        let _ = url.set_password(Some("***"));
    }
    if url.query_pairs().any(|(k, _)| k == "password") {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" {
                    "***".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

fn replace_path(redacted: &str, database: &str) -> String {
    match url::Url::parse(redacted) {
        Ok(mut url) => {
            url.set_path(database);
            url.to_string()
        }
        Err(_) => redacted.to_owned(),
    }
}

/// `DB_METRICS`: `emf` prints the pool's metrics as CloudWatch embedded
/// metric format lines, `off` does not; unset, it is on in Lambda (where
/// `AWS_LAMBDA_FUNCTION_NAME` is set) and off elsewhere.
fn read_metrics(function: &str, env: &Env<'_>) -> Result<Option<EmfConfig>, ConfigError> {
    let lambda_name = env.get("AWS_LAMBDA_FUNCTION_NAME");
    let on = match env.get("DB_METRICS").as_deref().map(str::trim) {
        None => lambda_name.is_some(),
        Some("emf") => true,
        Some("off") => false,
        Some(_) => {
            return Err(ConfigError::Invalid {
                var: "DB_METRICS",
                reason: "it must be `emf` or `off`".into(),
            });
        }
    };
    if !on {
        return Ok(None);
    }
    let every = env.parse::<u64>("DB_METRICS_EVERY")?.unwrap_or(1);
    if every == 0 {
        return Err(ConfigError::Invalid {
            var: "DB_METRICS_EVERY",
            reason: "it must be at least 1 (set DB_METRICS=off for no metrics)".into(),
        });
    }
    Ok(Some(EmfConfig {
        namespace: env
            .get("DB_METRICS_NAMESPACE")
            .unwrap_or_else(|| "ChatBackend".to_owned()),
        function_name: lambda_name.unwrap_or_else(|| function.to_owned()),
        every,
    }))
}

/// The environment seen through a lookup function, with typed getters.
struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    /// A set, non-blank variable.
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    fn parse<T: FromStr>(&self, name: &'static str) -> Result<Option<T>, ConfigError>
    where
        T::Err: fmt::Display,
    {
        self.get(name)
            .map(|v| {
                v.trim().parse::<T>().map_err(|e| ConfigError::Invalid {
                    var: name,
                    reason: format!("expected a whole number ({e})"),
                })
            })
            .transpose()
    }

    /// A duration in whole seconds; 0 means "off" (`None`).
    fn secs(&self, name: &'static str, default: u64) -> Result<Option<Duration>, ConfigError> {
        let secs = self.parse::<u64>(name)?.unwrap_or(default);
        Ok((secs > 0).then(|| Duration::from_secs(secs)))
    }

    /// A duration in whole seconds that must not be 0.
    fn secs_nonzero(&self, name: &'static str, default: u64) -> Result<Duration, ConfigError> {
        self.secs(name, default)?.ok_or(ConfigError::Invalid {
            var: name,
            reason: "it must be at least 1 second".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup("history", move |k| map.get(k).cloned())
    }

    const URL: &str = "postgres://app:s3cr3t-pw@db.example.com:5432/chat";

    #[test]
    fn defaults_follow_the_node_design_outside_lambda() {
        let c = config(&[("POSTGRES_URL", URL)]).expect("valid config");
        assert_eq!(c.db.pool_max.max, 10);
        assert_eq!(c.db.idle_timeout, Duration::from_secs(20));
        assert_eq!(c.db.connect_timeout, Duration::from_secs(10));
        assert_eq!(c.db.statement_timeout, Some(Duration::from_secs(10)));
        assert_eq!(c.db.application_name, "chat-backend:history");
        assert_eq!(c.handler_timeout, Duration::from_secs(25));
        assert!(c.auth.secret.is_none());
    }

    #[test]
    fn classic_lambda_gets_one_connection_per_environment() {
        let c = config(&[
            ("POSTGRES_URL", URL),
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
        ])
        .expect("valid config");
        assert_eq!(c.db.pool_max.max, 1);
        assert!(c.db.pool_max.reason.contains("classic Lambda"));
    }

    #[test]
    fn managed_instances_get_one_connection_per_concurrent_invocation() {
        let c = config(&[
            ("POSTGRES_URL", URL),
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
            ("AWS_LAMBDA_MAX_CONCURRENCY", "16"),
        ])
        .expect("valid config");
        assert_eq!(c.db.pool_max.max, 16);
    }

    #[test]
    fn an_explicit_pool_size_wins() {
        let c = config(&[
            ("POSTGRES_URL", URL),
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
            ("AWS_LAMBDA_MAX_CONCURRENCY", "16"),
            ("DB_POOL_MAX", "4"),
        ])
        .expect("valid config");
        assert_eq!(
            c.db.pool_max,
            PoolSize {
                max: 4,
                reason: "set by DB_POOL_MAX"
            }
        );
    }

    #[test]
    fn database_url_is_the_fallback_for_postgres_url() {
        let c = config(&[("DATABASE_URL", URL)]).expect("valid config");
        assert_eq!(c.db.connect_options().get_host(), "db.example.com");
    }

    #[test]
    fn a_missing_url_names_the_variable() {
        let err = config(&[]).expect_err("must fail").to_string();
        assert!(err.starts_with("POSTGRES_URL is not set"), "{err}");
    }

    #[test]
    fn malformed_values_name_the_variable() {
        for (var, value) in [
            ("DB_POOL_MAX", "ten"),
            ("DB_POOL_MAX", "0"),
            ("DB_IDLE_TIMEOUT_SECS", "-1"),
            ("DB_CONNECT_TIMEOUT_SECS", "0"),
            ("HANDLER_TIMEOUT_SECS", "1.5"),
            ("AUTH_TOKEN_TTL_SECS", "forever"),
        ] {
            let err = config(&[("POSTGRES_URL", URL), (var, value)])
                .expect_err("must fail")
                .to_string();
            assert!(
                err.starts_with(&format!("{var} is invalid")),
                "{var}={value}: {err}"
            );
        }
    }

    #[test]
    fn the_password_never_appears_in_errors_or_debug_output() {
        for bad in [
            "mysql://app:s3cr3t-pw@db:3306/chat",
            "postgres://app:s3cr3t-pw@db:notaport/chat",
            "postgres://app:s3cr3t-pw@db/chat?sslmode=sometimes",
            "s3cr3t-pw",
        ] {
            let err = config(&[("POSTGRES_URL", bad)]).expect_err(bad).to_string();
            assert!(err.starts_with("POSTGRES_URL is invalid"), "{err}");
            assert!(!err.contains("s3cr3t-pw"), "{err}");
        }
        let c = config(&[("POSTGRES_URL", URL)]).expect("valid config");
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t-pw"), "{shown}");
        assert!(
            shown.contains("postgres://app:***@db.example.com:5432/chat"),
            "{shown}"
        );

        let c = config(&[("POSTGRES_URL", "postgres://app@db/chat?password=s3cr3t-pw")])
            .expect("valid config");
        assert!(!c.db.redacted_url().contains("s3cr3t-pw"));
    }

    #[test]
    fn a_short_auth_secret_is_refused_without_echoing_it() {
        let err = config(&[("POSTGRES_URL", URL), ("AUTH_SECRET", "short-secret")])
            .expect_err("must fail")
            .to_string();
        assert!(err.starts_with("AUTH_SECRET is invalid"), "{err}");
        assert!(!err.contains("short-secret"));
        let c = config(&[("POSTGRES_URL", URL), ("AUTH_SECRET", &"x".repeat(32))])
            .expect("valid config");
        assert!(!format!("{c:?}").contains(&"x".repeat(32)));
    }

    #[test]
    fn statement_timeout_zero_turns_it_off() {
        let c = config(&[("POSTGRES_URL", URL), ("DB_STATEMENT_TIMEOUT_SECS", "0")])
            .expect("valid config");
        assert_eq!(c.db.statement_timeout, None);
        assert_eq!(c.db.connect_options().get_options(), None);
    }

    #[test]
    fn emf_metrics_are_on_in_lambda_and_off_elsewhere_unless_asked() {
        let outside = config(&[("POSTGRES_URL", URL)]).expect("valid");
        assert_eq!(outside.db.metrics, None);
        let lambda = config(&[
            ("POSTGRES_URL", URL),
            ("AWS_LAMBDA_FUNCTION_NAME", "chat-HistoryFunction-abc"),
        ])
        .expect("valid");
        let emf = lambda.db.metrics.expect("on in Lambda");
        assert_eq!(emf.function_name, "chat-HistoryFunction-abc");
        assert_eq!((emf.every, emf.namespace.as_str()), (1, "ChatBackend"));
        let off = config(&[
            ("POSTGRES_URL", URL),
            ("AWS_LAMBDA_FUNCTION_NAME", "f"),
            ("DB_METRICS", "off"),
        ])
        .expect("valid");
        assert_eq!(off.db.metrics, None);
        let every = config(&[
            ("POSTGRES_URL", URL),
            ("DB_METRICS", "emf"),
            ("DB_METRICS_EVERY", "50"),
            ("DB_METRICS_NAMESPACE", "Chat/Prod"),
        ])
        .expect("valid")
        .db
        .metrics
        .expect("asked for");
        assert_eq!((every.every, every.namespace.as_str()), (50, "Chat/Prod"));
        assert_eq!(every.function_name, "history");
        for (var, value) in [("DB_METRICS", "prometheus"), ("DB_METRICS_EVERY", "0")] {
            let error = config(&[("POSTGRES_URL", URL), ("DB_METRICS", "emf"), (var, value)])
                .expect_err("refused");
            assert!(error.to_string().contains(var), "{error}");
        }
    }
}
