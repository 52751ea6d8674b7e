//! The AI SDK's UI message stream, over server-sent events: what the
//! chatbot's `useChat` reads.
//!
//! Each chunk is one event, `data: <json>\n\n`; the stream ends with
//! `data: [DONE]\n\n`. A text reply is `start`, `start-step`, `text-start`,
//! `text-delta`s, `text-end`, `finish-step`, `finish`; data parts
//! (`data-<name>`) may come between; an `error` chunk reports a failure
//! after the stream began (the status code is long gone by then).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use serde::Serialize;
use tokio::sync::mpsc;

/// The headers of a UI message stream (the `ai` package's
/// `UI_MESSAGE_STREAM_HEADERS`, less the hop-by-hop `connection`).
pub const HEADERS: [(&str, &str); 4] = [
    ("content-type", "text/event-stream"),
    ("cache-control", "no-cache"),
    ("x-vercel-ai-ui-message-stream", "v1"),
    ("x-accel-buffering", "no"),
];

/// One chunk of the stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Chunk<'a> {
    /// The assistant message begins.
    Start {
        /// Its id, under which it is saved.
        #[serde(rename = "messageId")]
        message_id: &'a str,
    },
    /// A step (one model call) begins.
    StartStep,
    /// A text part begins.
    TextStart {
        /// The part's id within the message.
        id: &'a str,
    },
    /// More text.
    TextDelta {
        /// The part's id.
        id: &'a str,
        /// The text.
        delta: &'a str,
    },
    /// The text part is complete.
    TextEnd {
        /// The part's id.
        id: &'a str,
    },
    /// The step is complete.
    FinishStep,
    /// The message is complete.
    Finish,
    /// Something failed after the stream began.
    Error {
        /// What the client shows.
        #[serde(rename = "errorText")]
        error_text: &'a str,
    },
    /// The new chat's title (the chatbot's `data-chat-title` part).
    #[serde(rename = "data-chat-title")]
    ChatTitle {
        /// The title.
        data: &'a str,
    },
    /// A message to append, when a stream is resumed after it ended
    /// (the chatbot's `data-appendMessage` part).
    #[serde(rename = "data-appendMessage")]
    AppendMessage {
        /// The message, as JSON text.
        data: String,
        /// Not kept in the message's parts.
        transient: bool,
    },
}

impl Chunk<'_> {
    /// The chunk as one server-sent event.
    pub fn to_sse(&self) -> Bytes {
        // Serialising these plain structs cannot fail.
        let json = serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"));
        Bytes::from(format!("data: {json}\n\n"))
    }
}

/// The event that ends every stream.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// A response body: either whole (errors, JSON answers) or streamed from a
/// channel that the producing task fills. Dropping it (the client went
/// away) closes the channel, which the producer notices on its next send.
pub enum ChatBody {
    /// A complete body, sent at once.
    Full(Option<Bytes>),
    /// Chunks as they come.
    Streaming(mpsc::Receiver<Bytes>),
}

impl From<String> for ChatBody {
    fn from(text: String) -> Self {
        Self::Full(Some(Bytes::from(text)))
    }
}

impl Body for ChatBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Self::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Self::Streaming(receiver) => receiver
                .poll_recv(cx)
                .map(|chunk| chunk.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Self::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Self::Full(None) => SizeHint::with_exact(0),
            Self::Streaming(_) => SizeHint::default(),
        }
    }
}

/// A `200 OK` UI message stream response reading from `receiver`.
pub fn response(receiver: mpsc::Receiver<Bytes>) -> Response<ChatBody> {
    let mut response = Response::new(ChatBody::Streaming(receiver));
    *response.status_mut() = StatusCode::OK;
    for (name, value) in HEADERS {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A complete UI message stream of `chunks` (for streams that are known
/// in full when the response starts, such as a resume).
pub fn complete(chunks: &[Chunk<'_>]) -> Response<ChatBody> {
    let mut bytes: Vec<u8> = chunks.iter().flat_map(|c| c.to_sse().to_vec()).collect();
    bytes.extend_from_slice(DONE);
    let mut response = Response::new(ChatBody::Full(Some(Bytes::from(bytes))));
    for (name, value) in HEADERS {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A JSON response on the streaming body type.
pub fn json<T: Serialize>(value: &T) -> Result<Response<ChatBody>, serde_json::Error> {
    let mut response = Response::new(ChatBody::from(serde_json::to_string(value)?));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_serialise_as_the_ai_sdk_names_them() {
        let cases = [
            (
                Chunk::Start { message_id: "m1" },
                r#"{"type":"start","messageId":"m1"}"#,
            ),
            (Chunk::StartStep, r#"{"type":"start-step"}"#),
            (
                Chunk::TextStart { id: "t" },
                r#"{"type":"text-start","id":"t"}"#,
            ),
            (
                Chunk::TextDelta {
                    id: "t",
                    delta: "Hi \"there\"\n",
                },
                r#"{"type":"text-delta","id":"t","delta":"Hi \"there\"\n"}"#,
            ),
            (
                Chunk::TextEnd { id: "t" },
                r#"{"type":"text-end","id":"t"}"#,
            ),
            (Chunk::FinishStep, r#"{"type":"finish-step"}"#),
            (Chunk::Finish, r#"{"type":"finish"}"#),
            (
                Chunk::Error { error_text: "Oops" },
                r#"{"type":"error","errorText":"Oops"}"#,
            ),
            (
                Chunk::ChatTitle { data: "Hello" },
                r#"{"type":"data-chat-title","data":"Hello"}"#,
            ),
            (
                Chunk::AppendMessage {
                    data: "{}".into(),
                    transient: true,
                },
                r#"{"type":"data-appendMessage","data":"{}","transient":true}"#,
            ),
        ];
        for (chunk, json) in cases {
            assert_eq!(chunk.to_sse(), Bytes::from(format!("data: {json}\n\n")));
        }
    }
}
