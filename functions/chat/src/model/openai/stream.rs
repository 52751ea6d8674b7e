//! A streamed chat completion, from body bytes to text deltas.
//!
//! The body is cut into server-sent events ([`super::sse`]); each event's
//! data is `[DONE]` or one JSON chunk. Providers differ in what a chunk
//! holds, so everything is optional here: `choices` may be missing, `null`
//! or empty (usage chunks); `delta` and `content` may be missing or
//! `null` (the first chunk may carry only the role, the last only the
//! `finish_reason`). Only the text of choice 0 is kept; reasoning, tool
//! calls and refusals are not part of a text reply.
//!
//! How it ends: `[DONE]` ends it; so does the end of the body, or a silence,
//! after a `finish_reason` (the text is complete; some servers send no
//! `[DONE]`, or keep the connection open). Anything else is
//! [`ModelError::Interrupted`]: an error object, a chunk that is not JSON,
//! the body ending or failing before a `finish_reason` (a cut connection),
//! or no bytes at all for the idle timeout.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;

use super::sse::{self, Event};
use super::{Redactor, json_error, provider_message};
use crate::model::{ModelError, Reply};

/// How long to wait, after `[DONE]`, for the body's own end: a body read
/// to its end leaves the connection in the client's pool for the next
/// reply (a TLS handshake saved); a server that holds it open costs no
/// more than this.
const DRAIN_AFTER_DONE: Duration = Duration::from_millis(200);

/// How long to wait, after a `finish_reason`, for the rest (a usage chunk,
/// `[DONE]`, the body's end): they follow at once, and the text is whole,
/// so a server that sends neither and keeps the connection open must not
/// hold the client's `finish` back for the whole idle timeout.
const WAIT_AFTER_FINISH: Duration = Duration::from_secs(1);

/// What a streamed reply is read with.
pub(super) struct ReplyContext {
    /// The provider's model name, for logs.
    pub model: String,
    /// The longest silence accepted between two reads of the body.
    pub idle_timeout: Duration,
    /// When the request was sent, for logs.
    pub started: Instant,
    /// Scrubs the key from provider messages.
    pub redactor: Redactor,
}

/// The reply's deltas, read from `body` (whose errors are already
/// described, without the key).
pub(super) fn reply(
    body: impl Stream<Item = Result<Bytes, String>> + Send + 'static,
    context: ReplyContext,
) -> Reply {
    let state = ReplyState {
        body: body.boxed(),
        parser: sse::Parser::new(),
        events: Vec::new(),
        queue: VecDeque::new(),
        ended: false,
        finish_reason: None,
        usage: None,
        deltas: 0,
        chars: 0,
        context,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        let item = state.next_item().await?;
        Some((item, state))
    })
    .boxed()
}

struct ReplyState {
    body: BoxStream<'static, Result<Bytes, String>>,
    parser: sse::Parser,
    /// Scratch space for the events of one read.
    events: Vec<Event>,
    /// Items ready for the caller: deltas, then at most one error.
    queue: VecDeque<Result<String, ModelError>>,
    /// Nothing more is read once the reply ended, well or not.
    ended: bool,
    finish_reason: Option<String>,
    usage: Option<Value>,
    deltas: usize,
    chars: usize,
    context: ReplyContext,
}

impl ReplyState {
    async fn next_item(&mut self) -> Option<Result<String, ModelError>> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Some(item);
            }
            if self.ended {
                return None;
            }
            self.read().await;
        }
    }

    /// Reads the body once, and queues what it brought.
    async fn read(&mut self) {
        let idle = match self.finish_reason {
            Some(_) => self.context.idle_timeout.min(WAIT_AFTER_FINISH),
            None => self.context.idle_timeout,
        };
        match tokio::time::timeout(idle, self.body.next()).await {
            Ok(Some(Ok(bytes))) => {
                let mut events = std::mem::take(&mut self.events);
                if self.parser.push(&bytes, &mut events).is_err() {
                    self.fail(format!(
                        "an event-stream line longer than {} bytes",
                        sse::MAX_LINE
                    ));
                }
                for event in events.drain(..) {
                    if self.ended {
                        break;
                    }
                    self.event(event).await;
                }
                self.events = events;
            }
            // After a finish_reason the text is whole: how the body ends
            // does not change it.
            _ if self.finish_reason.is_some() => self.complete("after the finish reason"),
            Ok(Some(Err(error))) => {
                self.fail(format!("the connection to the provider failed: {error}"));
            }
            Ok(None) => self.fail(
                "the provider's stream ended before the reply was complete \
                 (no finish reason, no [DONE])"
                    .to_owned(),
            ),
            Err(_) => self.fail(format!(
                "no data from the provider for {} ms",
                idle.as_millis()
            )),
        }
    }

    async fn event(&mut self, event: Event) {
        if event.event.as_deref() == Some("error") {
            let message = serde_json::from_str::<Value>(&event.data)
                .map(|value| provider_message(&value))
                .unwrap_or_else(|_| super::truncate(&event.data));
            let message = self.context.redactor.scrub(&message);
            return self.fail(format!("the provider reported an error: {message}"));
        }
        let data = event.data.trim();
        if data == "[DONE]" {
            self.drain().await;
            return self.complete("at [DONE]");
        }
        if data.is_empty() {
            return;
        }
        let chunk: Chunk = match serde_json::from_str(data) {
            Ok(chunk) => chunk,
            Err(error) => return self.fail(format!("a malformed chunk ({})", json_error(&error))),
        };
        if chunk.error.as_ref().is_some_and(|e| !e.is_null())
            || chunk.object.as_deref() == Some("error")
        {
            let value: Value = serde_json::from_str(data).unwrap_or(Value::Null);
            let message = self.context.redactor.scrub(&provider_message(&value));
            return self.fail(format!("the provider reported an error: {message}"));
        }
        if let Some(usage) = chunk.usage.filter(|u| !u.is_null()) {
            self.usage = Some(usage);
        }
        let Some(choice) = chunk
            .choices
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.index.as_ref().and_then(Value::as_u64).unwrap_or(0) == 0)
        else {
            return;
        };
        if let Some(content) = choice.delta.and_then(|d| d.content) {
            // The first chunk's `""` would be an empty text-delta for the
            // client: nothing to send.
            if !content.is_empty() {
                self.deltas += 1;
                self.chars += content.chars().count();
                self.queue.push_back(Ok(content));
            }
        }
        match choice.finish_reason {
            None | Some(Value::Null) => {}
            Some(Value::String(reason)) => self.finish_reason = Some(reason),
            Some(other) => self.finish_reason = Some(other.to_string()),
        }
    }

    /// Reads the body to its end, briefly (see [`DRAIN_AFTER_DONE`]).
    async fn drain(&mut self) {
        let body = &mut self.body;
        let _ = tokio::time::timeout(DRAIN_AFTER_DONE, async {
            while let Some(Ok(_)) = body.next().await {}
        })
        .await;
    }

    fn complete(&mut self, how: &'static str) {
        self.ended = true;
        let reason = self.finish_reason.as_deref().unwrap_or("none");
        if !matches!(reason, "stop" | "none") {
            // `length` or `content_filter`: the text is cut short, by the
            // provider's choice; it is still the reply.
            tracing::warn!(
                model = %self.context.model,
                finish_reason = reason,
                "the provider cut the reply short"
            );
        }
        tracing::info!(
            model = %self.context.model,
            elapsed_ms = self.context.started.elapsed().as_millis() as u64,
            deltas = self.deltas,
            chars = self.chars,
            finish_reason = reason,
            prompt_tokens = self.tokens("prompt_tokens"),
            completion_tokens = self.tokens("completion_tokens"),
            ended = how,
            "the provider's reply ended"
        );
    }

    fn fail(&mut self, reason: String) {
        self.ended = true;
        tracing::warn!(
            model = %self.context.model,
            elapsed_ms = self.context.started.elapsed().as_millis() as u64,
            deltas = self.deltas,
            chars = self.chars,
            error = %reason,
            "the provider's reply broke off"
        );
        self.queue.push_back(Err(ModelError::Interrupted(reason)));
    }

    fn tokens(&self, field: &str) -> Option<u64> {
        self.usage.as_ref()?.get(field)?.as_u64()
    }
}

impl Drop for ReplyState {
    fn drop(&mut self) {
        if !self.ended {
            // The caller stopped reading (the client went away, or the
            // reply ran out of time): dropping the body closes the
            // connection, which stops the generation the provider bills.
            tracing::info!(
                model = %self.context.model,
                elapsed_ms = self.context.started.elapsed().as_millis() as u64,
                deltas = self.deltas,
                chars = self.chars,
                "the provider's reply was stopped before it ended"
            );
        }
    }
}

/// One `chat.completion.chunk`, as loosely as providers send it. Fields
/// read only for logs are kept as JSON values: a provider's odd types
/// there must not break a reply.
#[derive(Debug, Deserialize)]
struct Chunk {
    choices: Option<Vec<Choice>>,
    error: Option<Value>,
    /// vLLM's older error chunks say `"object": "error"`.
    object: Option<String>,
    usage: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    index: Option<Value>,
    delta: Option<Delta>,
    finish_reason: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Delta {
    content: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(idle: Duration) -> ReplyContext {
        ReplyContext {
            model: "m".into(),
            idle_timeout: idle,
            started: Instant::now(),
            redactor: Redactor::new(Some("sk-test-key")),
        }
    }

    /// The items of a reply whose body is `pieces`, then ends.
    async fn items(pieces: &[&str]) -> Vec<Result<String, String>> {
        let body: Vec<Result<Bytes, String>> = pieces
            .iter()
            .map(|p| Ok(Bytes::copy_from_slice(p.as_bytes())))
            .collect();
        collect(futures_util::stream::iter(body), Duration::from_secs(5)).await
    }

    async fn collect(
        body: impl Stream<Item = Result<Bytes, String>> + Send + 'static,
        idle: Duration,
    ) -> Vec<Result<String, String>> {
        reply(body, context(idle))
            .map(|item| {
                item.map_err(|e| match e {
                    ModelError::Interrupted(m) => m,
                    ModelError::Unavailable(m) => format!("UNAVAILABLE {m}"),
                })
            })
            .collect()
            .await
    }

    fn ok(texts: &[&str]) -> Vec<Result<String, String>> {
        texts.iter().map(|t| Ok((*t).to_owned())).collect()
    }

    #[tokio::test]
    async fn every_shape_of_chunk_providers_send_is_tolerated() {
        let stream = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":null}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":null}]}\n\n",
            "data: {\"choices\":[{\"index\":0}]}\n\n",
            "data: {\"choices\":[]}\n\n",
            "data: {\"choices\":null}\n\n",
            "data: {\"id\":\"x\"}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"other choice\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\",\"reasoning_content\":\"hm\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n",
            "data: [DONE]\n\n",
        );
        assert_eq!(items(&[stream]).await, ok(&["Hel", "lo"]));
    }

    #[tokio::test]
    async fn the_end_of_the_body_after_a_finish_reason_is_a_complete_reply() {
        let stream = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"stop\"}]}\n\n",
        );
        assert_eq!(items(&[stream]).await, ok(&["Hi"]));
    }

    #[tokio::test]
    async fn the_end_of_the_body_before_a_finish_reason_is_a_cut() {
        let first = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n";
        let got = items(&[first, "data: {\"choices\":[{\"ind"]).await;
        assert_eq!(got[0], Ok("Hi".to_owned()));
        assert!(
            got[1].as_ref().is_err_and(|e| e.contains("ended before")),
            "{got:?}"
        );
        assert_eq!(got.len(), 2);
    }

    #[tokio::test]
    async fn errors_come_after_the_deltas_before_them_and_end_the_reply() {
        let stream = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n",
            "data: {\"error\":{\"message\":\"overloaded, key sk-test-key\",\"type\":\"server_error\"}}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"never\"}}]}\n\n",
        );
        let got = items(&[stream]).await;
        assert_eq!(got.len(), 2, "{got:?}");
        let error = got[1].as_ref().expect_err("an error");
        assert!(error.contains("overloaded"), "{error}");
        assert!(!error.contains("sk-test-key"), "{error}");

        for bad in [
            "event: error\ndata: {\"message\":\"boom\"}\n\n",
            "data: {\"object\":\"error\",\"message\":\"boom\",\"code\":400}\n\n",
            "data: {\"error\":\"boom\"}\n\n",
        ] {
            let got = items(&[bad]).await;
            assert!(
                matches!(&got[..], [Err(e)] if e.contains("boom")),
                "{bad}: {got:?}"
            );
        }
        let got = items(&["data: not json\n\n"]).await;
        assert!(
            matches!(&got[..], [Err(e)] if e.contains("malformed chunk (not JSON")),
            "{got:?}"
        );
        // What does not fit is not quoted: it could be what was said.
        let got = items(&["data: {\"choices\":\"secret words\"}\n\n"]).await;
        assert!(
            matches!(&got[..], [Err(e)] if e.contains("unexpected shape") && !e.contains("secret")),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn a_failing_body_is_an_interruption() {
        let body = futures_util::stream::iter(vec![
            Ok(Bytes::from_static(
                b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n",
            )),
            Err("connection reset".to_owned()),
        ]);
        let got = collect(body, Duration::from_secs(5)).await;
        assert_eq!(got[0], Ok("Hi".to_owned()));
        assert!(
            got[1]
                .as_ref()
                .is_err_and(|e| e.contains("connection reset")),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn silence_is_an_interruption_unless_the_text_was_finished() {
        let first =
            Bytes::from_static(b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n");
        let body =
            futures_util::stream::iter(vec![Ok(first)]).chain(futures_util::stream::pending());
        let got = collect(body, Duration::from_millis(50)).await;
        assert_eq!(got[0], Ok("Hi".to_owned()));
        assert!(
            got[1].as_ref().is_err_and(|e| e.contains("no data")),
            "{got:?}"
        );

        let finished = Bytes::from_static(
            b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"},\"finish_reason\":\"stop\"}]}\n\n",
        );
        let body =
            futures_util::stream::iter(vec![Ok(finished)]).chain(futures_util::stream::pending());
        let started = Instant::now();
        assert_eq!(collect(body, Duration::from_secs(60)).await, ok(&["Hi"]));
        assert!(started.elapsed() < WAIT_AFTER_FINISH * 2);
    }
}
