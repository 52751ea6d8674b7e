//! The chat function's configuration: which model answers, how fast the
//! offline one types, how long a provider may keep us waiting, and how many
//! messages a user may send a day.

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;

use super::{ConfigError, Env};

/// Everything the chat function reads beyond the common [`super::Config`].
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// Who writes the replies (`CHAT_MODEL_PROVIDER`: `offline`, the
    /// default, or `openai`).
    pub model: ModelConfig,
    /// Messages a guest may send in 24 hours
    /// (`CHAT_MAX_MESSAGES_PER_DAY_GUEST`, 20 as upstream).
    pub guest_messages_per_day: u32,
    /// Messages a signed-up user may send in 24 hours
    /// (`CHAT_MAX_MESSAGES_PER_DAY_REGULAR`, 50 as upstream now).
    pub regular_messages_per_day: u32,
    /// Bound on waiting for a provider's first token
    /// (`MODEL_FIRST_TOKEN_TIMEOUT_SECS`, 30).
    pub first_token_timeout: Duration,
    /// Bound on a provider's silence between two tokens
    /// (`MODEL_IDLE_TIMEOUT_SECS`, 30).
    pub idle_timeout: Duration,
    /// Bound on a whole streamed reply (`CHAT_STREAM_TIMEOUT_SECS`, 300);
    /// Lambda's own deadline bounds it too.
    pub stream_timeout: Duration,
}

/// Which model answers.
#[derive(Debug, Clone)]
pub enum ModelConfig {
    /// The built-in model: a deterministic reply, word by word, with no
    /// network and no key, so that everything runs and is tested offline.
    Offline {
        /// Pause before each word (`OFFLINE_MODEL_DELAY_MS`, 25), so that
        /// streaming is visible; 0 for benchmarks.
        token_delay: Duration,
    },
    /// An OpenAI-compatible chat-completions API: OpenAI, Amazon Bedrock's
    /// OpenAI-compatible endpoint, the Vercel AI Gateway, Ollama, vLLM.
    OpenAi(OpenAiConfig),
}

/// Where an OpenAI-compatible provider is, and which models to ask for.
#[derive(Clone)]
pub struct OpenAiConfig {
    /// The API's base URL, up to and including `/v1`
    /// (`OPENAI_BASE_URL`, `https://api.openai.com/v1`).
    pub base_url: url::Url,
    /// Sent as `Authorization: Bearer` (`OPENAI_API_KEY`; local servers
    /// such as Ollama need none). Never printed.
    pub api_key: Option<SecretString>,
    /// The model asked for when the client's `selectedChatModel` is not
    /// in the map (`OPENAI_MODEL`, required).
    pub default_model: String,
    /// The client's model ids and the provider's names for them
    /// (`OPENAI_MODEL_MAP`: `id=name,id=name`). Clients choose among
    /// these; anything else gets the default, so that no client can pick
    /// an arbitrary (and arbitrarily expensive) model.
    pub models: Vec<(String, String)>,
    /// The model that writes chat titles (`OPENAI_TITLE_MODEL`, the
    /// default model).
    pub title_model: String,
}

impl fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url.as_str())
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("default_model", &self.default_model)
            .field("models", &self.models)
            .field("title_model", &self.title_model)
            .finish()
    }
}

impl OpenAiConfig {
    /// The provider's model name for the client's `selectedChatModel`.
    pub fn model_for(&self, selected: &str) -> &str {
        self.models
            .iter()
            .find(|(id, _)| id == selected)
            .map_or(self.default_model.as_str(), |(_, name)| name.as_str())
    }
}

impl ChatConfig {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (a stand-in for the
    /// environment in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let model = match env.get("CHAT_MODEL_PROVIDER").as_deref().map(str::trim) {
            None | Some("offline") => ModelConfig::Offline {
                token_delay: Duration::from_millis(
                    env.parse::<u64>("OFFLINE_MODEL_DELAY_MS")?.unwrap_or(25),
                ),
            },
            Some("openai") => ModelConfig::OpenAi(OpenAiConfig::read(&env)?),
            Some(_) => {
                return Err(ConfigError::Invalid {
                    var: "CHAT_MODEL_PROVIDER",
                    reason: "it must be `offline` or `openai`".into(),
                });
            }
        };
        Ok(Self {
            model,
            guest_messages_per_day: env.parse("CHAT_MAX_MESSAGES_PER_DAY_GUEST")?.unwrap_or(20),
            regular_messages_per_day: env
                .parse("CHAT_MAX_MESSAGES_PER_DAY_REGULAR")?
                .unwrap_or(50),
            first_token_timeout: env.secs_nonzero("MODEL_FIRST_TOKEN_TIMEOUT_SECS", 30)?,
            idle_timeout: env.secs_nonzero("MODEL_IDLE_TIMEOUT_SECS", 30)?,
            stream_timeout: env.secs_nonzero("CHAT_STREAM_TIMEOUT_SECS", 300)?,
        })
    }
}

impl OpenAiConfig {
    fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        let raw = env
            .get("OPENAI_BASE_URL")
            .unwrap_or_else(|| "https://api.openai.com/v1".to_owned());
        let mut base_url = url::Url::parse(raw.trim()).map_err(|e| ConfigError::Invalid {
            var: "OPENAI_BASE_URL",
            reason: format!("not a URL ({e})"),
        })?;
        if !matches!(base_url.scheme(), "http" | "https") {
            return Err(ConfigError::Invalid {
                var: "OPENAI_BASE_URL",
                reason: "the scheme must be http:// or https://".into(),
            });
        }
        // So that joining "chat/completions" keeps the `/v1`.
        if !base_url.path().ends_with('/') {
            let path = format!("{}/", base_url.path());
            base_url.set_path(&path);
        }
        let default_model = env.get("OPENAI_MODEL").ok_or(ConfigError::Missing {
            var: "OPENAI_MODEL",
            hint: "name the provider's model to use, e.g. gpt-4.1-mini (CHAT_MODEL_PROVIDER=openai)",
        })?;
        let models = match env.get("OPENAI_MODEL_MAP") {
            None => Vec::new(),
            Some(map) => parse_model_map(&map)?,
        };
        Ok(Self {
            base_url,
            // A key pasted with its line break still works.
            api_key: env
                .get("OPENAI_API_KEY")
                .map(|key| SecretString::from(key.trim().to_owned())),
            title_model: env
                .get("OPENAI_TITLE_MODEL")
                .unwrap_or_else(|| default_model.clone()),
            default_model,
            models,
        })
    }
}

fn parse_model_map(map: &str) -> Result<Vec<(String, String)>, ConfigError> {
    map.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| match entry.split_once('=') {
            Some((id, name)) if !id.trim().is_empty() && !name.trim().is_empty() => {
                Ok((id.trim().to_owned(), name.trim().to_owned()))
            }
            _ => Err(ConfigError::Invalid {
                var: "OPENAI_MODEL_MAP",
                reason: "expected id=model pairs separated by commas".into(),
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn chat(vars: &[(&str, &str)]) -> Result<ChatConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ChatConfig::from_lookup(move |k| map.get(k).cloned())
    }

    #[test]
    fn the_offline_model_and_upstreams_limits_are_the_defaults() {
        let c = chat(&[]).expect("valid");
        assert!(
            matches!(c.model, ModelConfig::Offline { token_delay } if token_delay == Duration::from_millis(25))
        );
        assert_eq!(
            (c.guest_messages_per_day, c.regular_messages_per_day),
            (20, 50)
        );
        assert_eq!(c.stream_timeout, Duration::from_secs(300));
    }

    #[test]
    fn the_openai_provider_needs_a_model_and_maps_client_ids() {
        let err = chat(&[("CHAT_MODEL_PROVIDER", "openai")])
            .expect_err("no model")
            .to_string();
        assert!(err.starts_with("OPENAI_MODEL is not set"), "{err}");
        let c = chat(&[
            ("CHAT_MODEL_PROVIDER", "openai"),
            ("OPENAI_BASE_URL", "http://localhost:11434/v1"),
            ("OPENAI_MODEL", "llama3.2"),
            (
                "OPENAI_MODEL_MAP",
                "chat-model=llama3.2, chat-model-reasoning = deepseek-r1",
            ),
            ("OPENAI_API_KEY", "sk-secret-value"),
        ])
        .expect("valid");
        let ModelConfig::OpenAi(openai) = c.model else {
            panic!("openai")
        };
        assert_eq!(openai.base_url.as_str(), "http://localhost:11434/v1/");
        assert_eq!(openai.model_for("chat-model-reasoning"), "deepseek-r1");
        assert_eq!(openai.model_for("anything/else"), "llama3.2");
        assert_eq!(openai.title_model, "llama3.2");
        assert!(!format!("{openai:?}").contains("sk-secret-value"));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("CHAT_MODEL_PROVIDER", "gpt"),
            ("OFFLINE_MODEL_DELAY_MS", "fast"),
            ("CHAT_MAX_MESSAGES_PER_DAY_GUEST", "-1"),
            ("MODEL_IDLE_TIMEOUT_SECS", "0"),
        ] {
            let err = chat(&[(var, value)]).expect_err(var).to_string();
            assert!(err.starts_with(&format!("{var} is invalid")), "{err}");
        }
        for (var, value) in [
            ("OPENAI_BASE_URL", "ftp://x"),
            ("OPENAI_MODEL_MAP", "nonsense"),
        ] {
            let err = chat(&[
                ("CHAT_MODEL_PROVIDER", "openai"),
                ("OPENAI_MODEL", "m"),
                (var, value),
            ])
            .expect_err(var)
            .to_string();
            assert!(err.starts_with(&format!("{var} is invalid")), "{err}");
        }
    }
}
