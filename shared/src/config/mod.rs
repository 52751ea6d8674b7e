//! Typed configuration, read once from the environment: the bottom layer
//! of `shared`, plain data that imports nothing else of the crate.
//!
//! Every variable the functions read is listed in these modules, with its
//! default, and nowhere else (the README and `template.yaml` mirror the
//! list). A missing or malformed value is a [`ConfigError`] that names the
//! variable; nothing here panics. Secrets (the database password, the token
//! secret, the model key) are kept in `SecretString`s or redacted before
//! anything can print them.
//!
//! ```text
//! mod.rs          Config (what every function reads), ConfigError, the Env reader
//! db.rs           DbConfig: the database URL, the pool's size and bounds, the pooler
//! db_credentials  where the database password comes from (URL, Secrets Manager, IAM)
//! tls.rs          which certificate authorities the database connections trust
//! metrics.rs      EmfConfig: where the pool's metrics lines go
//! auth.rs         AuthConfig: the session tokens' secret and lifetime
//! migrate.rs      MigrateConfig: the migrate function's own connection
//! chat.rs         ChatConfig: the chat function's model, limits and bounds
//! ```
//!
//! Parsing works on a lookup function rather than on `std::env` directly, so
//! that tests can feed it a map instead of mutating the process environment.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

mod auth;
mod chat;
mod db;
pub mod db_credentials;
mod metrics;
mod migrate;
pub mod tls;

pub use auth::{AuthConfig, MIN_AUTH_SECRET_LEN};
pub use chat::{ChatConfig, ModelConfig, OpenAiConfig};
pub use db::{DEFAULT_POOL_MAX, DbConfig, PoolSize, Pooler};
pub use db_credentials::CredentialSource;
pub use metrics::EmfConfig;
pub use migrate::MigrateConfig;

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
