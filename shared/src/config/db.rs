//! Where the database is and how the pool treats its connections.
//!
//! The Node.js design's `postgres(url, { max, idle_timeout, connect_timeout })`,
//! plus the bounds a Lambda environment needs, read from `POSTGRES_URL` and
//! the `DB_*` variables. The URL carries the password: it is parsed without
//! ever being echoed, and only its redacted form is kept for logs.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;

use super::metrics::{EmfConfig, read_metrics};
use super::{ConfigError, CredentialSource, Env, tls};

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
    /// A connection is pinged before it is handed out only once it has sat
    /// idle this long (`DB_CHECK_AFTER_IDLE_MS`, default 1000; 0: every
    /// time). One used more recently is handed out as it is, and its first
    /// statement is guarded instead (`db::first`): a read runs with the
    /// ping's bound and is rerun once on a fresh connection if the
    /// connection turns out to be dead; a write is pinged first. A gap
    /// between invocations longer than this is how a freeze shows itself.
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
    /// one transaction (see `db::Conn`).
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
    pub(super) fn read(function: &'static str, env: &Env<'_>) -> Result<Self, ConfigError> {
        let (var, raw) = database_url(env)?;
        let application_name = format!("chat-backend:{function}");
        let (connect_options, redacted_url) = parse_database_url(var, &raw)?;
        let connect_options = tls::configure(var, connect_options, env)?;
        let pooler = Pooler::read(env)?;
        let statement_timeout = match pooler {
            Pooler::Direct => env.secs("DB_STATEMENT_TIMEOUT_SECS", 10)?,
            // A pooler would hand a session setting to whichever client
            // comes next (PgBouncer refuses the startup `options` outright),
            // and any SET, even SET LOCAL or set_config, pins an RDS Proxy
            // session. Behind one, set statement_timeout on the role or the
            // database instead (see the README).
            Pooler::Transaction => None,
        };
        let connect_options = startup_parameters(
            connect_options.application_name(&application_name),
            pooler,
            statement_timeout,
        );
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
                env.parse::<u64>("DB_CHECK_AFTER_IDLE_MS")?.unwrap_or(1000),
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

/// `POSTGRES_URL`, or else `DATABASE_URL`, with the variable it came from.
fn database_url(env: &Env<'_>) -> Result<(&'static str, String), ConfigError> {
    match (env.get("POSTGRES_URL"), env.get("DATABASE_URL")) {
        (Some(url), _) => Ok(("POSTGRES_URL", url)),
        (None, Some(url)) => Ok(("DATABASE_URL", url)),
        (None, None) => Err(ConfigError::Missing {
            var: "POSTGRES_URL",
            hint: "set it (or DATABASE_URL) to postgres://user:password@host:5432/database",
        }),
    }
}

impl Pooler {
    fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        match env.get("DB_POOLER").as_deref().map(str::trim) {
            None | Some("none" | "session") => Ok(Pooler::Direct),
            Some("transaction") => Ok(Pooler::Transaction),
            Some(_) => Err(ConfigError::Invalid {
                var: "DB_POOLER",
                reason: "it must be `none`, `session` or `transaction`".into(),
            }),
        }
    }
}

/// The parameters sent when a connection starts, so that they cost no
/// round trip and set no session state after connecting.
fn startup_parameters(
    options: PgConnectOptions,
    pooler: Pooler,
    statement_timeout: Option<Duration>,
) -> PgConnectOptions {
    let options = match statement_timeout {
        Some(timeout) => {
            options.options([("statement_timeout", format!("{}ms", timeout.as_millis()))])
        }
        None => options,
    };
    match pooler {
        // A startup parameter PgBouncer does not know makes it refuse the
        // connection; PostgreSQL's default suits us.
        Pooler::Transaction => options.extra_float_digits(None),
        Pooler::Direct => options,
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
