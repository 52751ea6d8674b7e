//! Where the pool's metrics go: CloudWatch embedded metric format (EMF)
//! lines, or nowhere (`DB_METRICS`, `DB_METRICS_EVERY`,
//! `DB_METRICS_NAMESPACE`).

use super::{ConfigError, Env};

/// Where the EMF lines go, and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmfConfig {
    /// CloudWatch namespace (`DB_METRICS_NAMESPACE`, default `ChatBackend`).
    pub namespace: String,
    /// The `FunctionName` dimension (`AWS_LAMBDA_FUNCTION_NAME`, else the
    /// function's own name).
    pub function_name: String,
    /// A line every this many invocations (`DB_METRICS_EVERY`, default 1).
    pub every: u64,
}

/// `DB_METRICS`: `emf` prints the pool's metrics as CloudWatch embedded
/// metric format lines, `off` does not; unset, it is on in Lambda (where
/// `AWS_LAMBDA_FUNCTION_NAME` is set) and off elsewhere.
pub(super) fn read_metrics(
    function: &str,
    env: &Env<'_>,
) -> Result<Option<EmfConfig>, ConfigError> {
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
