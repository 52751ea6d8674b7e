//! An OpenAI-compatible chat-completions provider.
//!
//! It speaks `POST {base_url}chat/completions` with `"stream": true` and
//! reads the answer as server-sent events of `chat.completion.chunk`s
//! ([`stream`]), as OpenAI sends them. It was written for OpenAI, Amazon
//! Bedrock's OpenAI-compatible endpoint, the Vercel AI Gateway, Ollama and
//! vLLM, so the request holds only what all of them accept (`model`,
//! `messages` of plain text, `stream`) and the reading tolerates what each
//! of them leaves out or adds (see [`stream`]). Titles are one
//! non-streamed completion with the title model.
//!
//! Errors map to the two kinds the route tells apart:
//!
//! - [`ModelError::Unavailable`], the reply never started: the connection
//!   failed, no response headers came within the first-token timeout, or
//!   the status was not 2xx (the status and the provider's message, cut
//!   short, go into the error for the logs). Every title failure is this.
//! - [`ModelError::Interrupted`], inside the stream: an error object, a
//!   chunk that is not JSON, the body ending or failing before the reply
//!   was complete, or silence for the idle timeout.
//!
//! The API key is sent only as `Authorization: Bearer`, only when one is
//! configured, and is scrubbed from every message a provider sends back
//! before it reaches an error or a log. Logs hold status codes, model
//! names, timings and sizes, never what was said.

mod sse;
mod stream;

use std::fmt;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::config::OpenAiConfig;
use tokio::time::Instant;

use super::{ChatModel, ModelError, Prompt, PromptMessage, Reply, Role};

/// The most a connection may take to open (less when the first-token
/// timeout is shorter): a provider that cannot be reached fails fast.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Idle pooled connections are dropped after this: less than providers'
/// own keep-alive (about a minute), so that a warm Lambda does not reuse a
/// connection the provider already closed. The pool checks it on use, so
/// time frozen between invocations counts.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(50);

/// The most of a provider's message kept in an error.
const MESSAGE_CHARS: usize = 300;

/// The most of an error body read (the message is near its start).
const ERROR_BODY_BYTES: usize = 16 * 1024;

/// The most of a whole (non-streamed) completion read.
const COMPLETION_BYTES: usize = 1024 * 1024;

/// The title instructions (upstream's `titlePrompt`, in spirit).
const TITLE_PROMPT: &str = "Generate a short title (at most 80 characters) for a chat that \
     starts with the user's message. Summarise the message; do not use quotes or colons. \
     Answer with the title only.";

/// A provider that speaks OpenAI's `/chat/completions` with `stream: true`.
pub struct OpenAiModel {
    /// One client for the process: its pool keeps connections (and their
    /// TLS sessions) from one warm invocation to the next.
    client: reqwest::Client,
    /// `{base_url}chat/completions`.
    url: url::Url,
    /// `Bearer <key>`, marked sensitive so that no `Debug` shows it.
    authorization: Option<HeaderValue>,
    redactor: Redactor,
    config: OpenAiConfig,
    first_token_timeout: Duration,
    idle_timeout: Duration,
}

impl fmt::Debug for OpenAiModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiModel")
            .field("url", &self.url.as_str())
            .field(
                "api_key",
                &self.authorization.as_ref().map(|_| "[redacted]"),
            )
            .field("default_model", &self.config.default_model)
            .field("title_model", &self.config.title_model)
            .field("first_token_timeout", &self.first_token_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

impl OpenAiModel {
    /// A provider for `config`, giving up on a reply that has not started
    /// after `first_token_timeout` and on silence after `idle_timeout`.
    pub fn new(
        config: OpenAiConfig,
        first_token_timeout: Duration,
        idle_timeout: Duration,
    ) -> Result<Self, ModelError> {
        // reqwest is built without a default crypto provider; installing
        // one twice is harmless (the second attempt is refused).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(first_token_timeout))
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .user_agent(concat!("chat-backend/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                ModelError::Unavailable(format!("the HTTP client could not be built: {e}"))
            })?;
        let url = config.base_url.join("chat/completions").map_err(|e| {
            ModelError::Unavailable(format!("OPENAI_BASE_URL cannot take a path: {e}"))
        })?;
        // A key pasted with its line break would make no valid header.
        let key = config
            .api_key
            .as_ref()
            .map(|k| k.expose_secret().trim())
            .filter(|k| !k.is_empty());
        let authorization = key
            .map(|key| {
                let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                    // Not the value: it is the key.
                    ModelError::Unavailable("OPENAI_API_KEY is not a valid header value".into())
                })?;
                value.set_sensitive(true);
                Ok(value)
            })
            .transpose()?;
        Ok(Self {
            client,
            url,
            authorization,
            redactor: Redactor::new(key),
            config,
            first_token_timeout,
            idle_timeout,
        })
    }

    /// A request with `body` to `chat/completions`, accepting `accept`.
    fn post(&self, accept: &'static str, body: &CompletionRequest<'_>) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .post(self.url.clone())
            .header(ACCEPT, accept)
            .json(body);
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        request
    }

    /// Sends `request` and waits for the response's head until `deadline`;
    /// anything but a 2xx answer is [`ModelError::Unavailable`].
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        model: &str,
        deadline: Instant,
    ) -> Result<reqwest::Response, ModelError> {
        let started = Instant::now();
        let response = match tokio::time::timeout_at(deadline, request.send()).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                let error = self.redactor.scrub(&describe(error));
                tracing::warn!(
                    model,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    %error,
                    "the provider could not be reached"
                );
                return Err(ModelError::Unavailable(format!(
                    "{model}: the request failed: {error}"
                )));
            }
            Err(_) => {
                let bound = self.first_token_timeout.as_millis() as u64;
                tracing::warn!(
                    model,
                    timeout_ms = bound,
                    "the provider did not answer in time"
                );
                return Err(ModelError::Unavailable(format!(
                    "{model}: no response within {bound} ms"
                )));
            }
        };
        let status = response.status();
        if status.is_success() {
            tracing::info!(
                model,
                status = status.as_u16(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "the provider accepted the request"
            );
            return Ok(response);
        }
        tracing::warn!(
            model,
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "the provider refused the request"
        );
        Err(self.refusal(response, model, deadline).await)
    }

    /// Why the provider refused: its message (a bad key, a rate limit, an
    /// unknown model), read within what is left of the same bound.
    async fn refusal(
        &self,
        response: reqwest::Response,
        model: &str,
        deadline: Instant,
    ) -> ModelError {
        let status = response.status();
        let body = tokio::time::timeout_at(deadline, read_capped(response, ERROR_BODY_BYTES))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let message = match serde_json::from_slice::<Value>(&body) {
            Ok(value) => provider_message(&value),
            Err(_) => truncate(&String::from_utf8_lossy(&body)),
        };
        let message = self.redactor.scrub(&message);
        ModelError::Unavailable(format!("{model}: HTTP {status}: {message}"))
    }

    /// Reads a whole completion (the answer to `stream: false`, or from a
    /// provider that ignored `stream: true`) and returns its text.
    async fn completion_text(
        &self,
        response: reqwest::Response,
        model: &str,
        deadline: Instant,
    ) -> Result<String, ModelError> {
        let body = match tokio::time::timeout_at(deadline, read_capped(response, COMPLETION_BYTES))
            .await
        {
            Ok(Ok(body)) => body,
            Ok(Err(error)) => {
                let error = self.redactor.scrub(&describe(error));
                return Err(ModelError::Unavailable(format!(
                    "{model}: the completion could not be read: {error}"
                )));
            }
            Err(_) => {
                return Err(ModelError::Unavailable(format!(
                    "{model}: the completion did not arrive in time"
                )));
            }
        };
        let completion: Completion = serde_json::from_slice(&body).map_err(|e| {
            ModelError::Unavailable(format!(
                "{model}: a malformed completion ({})",
                json_error(&e)
            ))
        })?;
        if let Some(error) = completion.error.filter(|e| !e.is_null()) {
            let message = self.redactor.scrub(&provider_message(&error));
            return Err(ModelError::Unavailable(format!(
                "{model}: the provider reported an error: {message}"
            )));
        }
        completion
            .choices
            .unwrap_or_default()
            .into_iter()
            .next()
            .and_then(|c| c.message)
            .and_then(|m| m.content)
            .ok_or_else(|| ModelError::Unavailable(format!("{model}: the completion has no text")))
    }
}

impl ChatModel for OpenAiModel {
    fn reply(&self, prompt: Prompt) -> BoxFuture<'_, Result<Reply, ModelError>> {
        Box::pin(async move {
            let model = self.config.model_for(&prompt.selected_model).to_owned();
            let body = CompletionRequest {
                model: &model,
                messages: prompt.messages.iter().map(WireMessage::from).collect(),
                stream: true,
            };
            let started = Instant::now();
            let deadline = started + self.first_token_timeout;
            let response = self
                .send(self.post("text/event-stream", &body), &model, deadline)
                .await?;
            let context = stream::ReplyContext {
                model: model.clone(),
                idle_timeout: self.idle_timeout,
                started,
                redactor: self.redactor.clone(),
            };
            if is_json(&response) {
                // Not a stream: some servers ignore `stream: true`, and
                // some gateways answer errors as JSON with a 2xx status.
                let text = self.completion_text(response, &model, deadline).await?;
                return Ok(futures_util::stream::once(async move { Ok(text) }).boxed());
            }
            let redactor = self.redactor.clone();
            let body = response
                .bytes_stream()
                .map(move |piece| piece.map_err(|e| redactor.scrub(&describe(e))));
            Ok(stream::reply(body, context))
        })
    }

    fn title(&self, first_message: &str) -> BoxFuture<'_, Result<String, ModelError>> {
        let first_message = first_message.to_owned();
        Box::pin(async move {
            let model = self.config.title_model.as_str();
            let body = CompletionRequest {
                model,
                messages: vec![
                    WireMessage {
                        role: Role::System.as_str(),
                        content: TITLE_PROMPT,
                    },
                    WireMessage {
                        role: Role::User.as_str(),
                        content: &first_message,
                    },
                ],
                stream: false,
            };
            let started = Instant::now();
            let deadline = started + self.first_token_timeout;
            let response = self
                .send(self.post("application/json", &body), model, deadline)
                .await?;
            let title = self.completion_text(response, model, deadline).await;
            match &title {
                Ok(title) => tracing::info!(
                    model,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    chars = title.chars().count(),
                    "the provider wrote a title"
                ),
                Err(error) => tracing::warn!(%error, "no title from the provider"),
            }
            title
        })
    }
}

/// The request body: only what every compatible provider accepts.
#[derive(Debug, Serialize)]
struct CompletionRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    stream: bool,
}

#[derive(Debug, Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: &'a str,
}

impl<'a> From<&'a PromptMessage> for WireMessage<'a> {
    fn from(message: &'a PromptMessage) -> Self {
        Self {
            role: message.role.as_str(),
            content: &message.text,
        }
    }
}

/// A whole `chat.completion`, as loosely as it is read.
#[derive(Debug, Deserialize)]
struct Completion {
    choices: Option<Vec<CompletionChoice>>,
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct CompletionChoice {
    message: Option<CompletionMessage>,
}

#[derive(Debug, Deserialize)]
struct CompletionMessage {
    content: Option<String>,
}

/// Removes the API key from text a provider sent back (OpenAI quotes part
/// of a wrong key in its 401; a proxy might echo the header whole).
#[derive(Clone, Default)]
struct Redactor {
    key: Option<secrecy::SecretString>,
}

impl Redactor {
    fn new(key: Option<&str>) -> Self {
        Self {
            key: key
                .filter(|k| !k.is_empty())
                .map(|k| secrecy::SecretString::from(k.to_owned())),
        }
    }

    fn scrub(&self, text: &str) -> String {
        match &self.key {
            Some(key) => text.replace(key.expose_secret(), "[redacted]"),
            None => text.to_owned(),
        }
    }
}

/// The message in a provider's error JSON, whichever shape it has:
/// OpenAI's `{"error": {"message", "type", "code"}}`, Ollama's
/// `{"error": "..."}`, or a bare `{"message": "..."}` (vLLM's older errors,
/// AWS gateways), cut short; else the JSON itself, cut short.
fn provider_message(value: &Value) -> String {
    let error = value.get("error").filter(|e| !e.is_null()).unwrap_or(value);
    let message = match error {
        Value::String(text) => Some(text.clone()),
        Value::Object(fields) => fields
            .get("message")
            .and_then(Value::as_str)
            .map(|message| {
                let kind = ["code", "type"]
                    .iter()
                    .find_map(|k| fields.get(*k).and_then(Value::as_str));
                match kind {
                    Some(kind) => format!("{kind}: {message}"),
                    None => message.to_owned(),
                }
            }),
        _ => None,
    };
    truncate(&message.unwrap_or_else(|| value.to_string()))
}

/// `text` on one line, at most [`MESSAGE_CHARS`] characters.
fn truncate(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= MESSAGE_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(MESSAGE_CHARS).collect();
    cut.push('…');
    cut
}

/// A transport error with its causes ("connection refused" is a cause),
/// without the URL.
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What is wrong with some JSON, and where; never the value (serde quotes
/// a string of the wrong type, and it could be what was said).
fn json_error(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match error.classify() {
        Category::Syntax => "not JSON",
        Category::Data => "an unexpected shape",
        Category::Eof => "JSON cut short",
        Category::Io => "unreadable",
    };
    format!("{what} at column {}", error.column())
}

fn is_json(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"))
}

/// Up to `cap` bytes of `response`'s body.
async fn read_capped(mut response: reqwest::Response, cap: usize) -> reqwest::Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() >= cap {
            body.truncate(cap);
            break;
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn provider_messages_of_every_shape_are_found_and_cut_short() {
        assert_eq!(
            provider_message(
                &json!({"error": {"message": "Rate limit reached", "type": "requests", "param": null, "code": "rate_limit_exceeded"}})
            ),
            "rate_limit_exceeded: Rate limit reached"
        );
        assert_eq!(
            provider_message(
                &json!({"error": {"message": "Oops", "type": "server_error", "code": null}})
            ),
            "server_error: Oops"
        );
        assert_eq!(
            provider_message(&json!({"error": "model \"x\" not found"})),
            "model \"x\" not found"
        );
        assert_eq!(
            provider_message(&json!({"object": "error", "message": "bad\n request"})),
            "bad request"
        );
        assert_eq!(provider_message(&json!({"detail": 1})), "{\"detail\":1}");
        let long = provider_message(&json!({"error": "é".repeat(1000)}));
        assert_eq!(long.chars().count(), MESSAGE_CHARS + 1);
    }

    #[test]
    fn the_key_is_scrubbed_and_never_shown() {
        let redactor = Redactor::new(Some("sk-proj-abc123"));
        assert_eq!(
            redactor.scrub("Incorrect API key provided: sk-proj-abc123."),
            "Incorrect API key provided: [redacted]."
        );
        assert_eq!(Redactor::new(Some("")).scrub("text"), "text");
        assert_eq!(Redactor::new(None).scrub("text"), "text");
    }
}
