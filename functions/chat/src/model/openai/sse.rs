//! Server-sent events, as far as a chat-completions stream needs them.
//!
//! The WHATWG event-stream format: lines end with CRLF, LF or CR; a line
//! that starts with `:` is a comment (proxies send `: keep-alive`); other
//! lines are `field: value` (one space after the colon is dropped); `data`
//! lines add up, joined by `\n`; a blank line dispatches the event. Only
//! `event` and `data` matter here: `id` and `retry` are for reconnecting,
//! and a chat completion cannot be resumed by reconnecting.
//!
//! Written by hand rather than taken from a crate because the stream needs
//! exact control of the end: an event not yet closed by its blank line
//! when the body ends is dropped (as the standard says), and the caller
//! decides from what came before whether that end was a cut.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field, if any (OpenAI sends none; some servers name
    /// errors `event: error`).
    pub event: Option<String>,
    /// The `data:` lines, joined by `\n`.
    pub data: String,
}

/// The longest line (and event) accepted: a server that never ends a line
/// must not grow our memory without bound. Chunks are a few hundred bytes.
pub const MAX_LINE: usize = 1024 * 1024;

/// The stream broke the format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an event-stream line or event longer than {MAX_LINE} bytes")]
pub struct TooLong;

/// Cuts bytes, as they arrive in any pieces, into events.
#[derive(Debug, Default)]
pub struct Parser {
    /// The bytes of a line not yet ended.
    line: Vec<u8>,
    /// The last line ended with CR: an LF right after it ends nothing.
    after_cr: bool,
    /// Whether the first line was seen (the standard drops a BOM there).
    started: bool,
    event: Option<String>,
    /// `None` until a `data` field: an event without one is not dispatched.
    data: Option<String>,
}

impl Parser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `bytes`; the events they complete are appended to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Event>) -> Result<(), TooLong> {
        for &byte in bytes {
            match byte {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    // Taken and put back, to keep its allocation.
                    let mut line = std::mem::take(&mut self.line);
                    let ended = self.end_line(&line, out);
                    line.clear();
                    self.line = line;
                    ended?;
                }
                _ => {
                    self.after_cr = false;
                    if self.line.len() >= MAX_LINE {
                        return Err(TooLong);
                    }
                    self.line.push(byte);
                }
            }
        }
        Ok(())
    }

    fn end_line(&mut self, mut line: &[u8], out: &mut Vec<Event>) -> Result<(), TooLong> {
        if !self.started {
            self.started = true;
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        if line.is_empty() {
            if let Some(mut data) = self.data.take() {
                data.pop();
                out.push(Event {
                    event: self.event.take(),
                    data,
                });
            }
            self.event = None;
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        // Lines are cut at ASCII bytes only, so a multi-byte character
        // split across two reads is whole again here.
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => {
                // As the standard has it: each line and an LF, the last LF
                // dropped when the event is dispatched.
                let data = self.data.get_or_insert_with(String::new);
                if data.len() + value.len() >= MAX_LINE {
                    return Err(TooLong);
                }
                data.push_str(value);
                data.push('\n');
            }
            "event" => self.event = Some(value.to_owned()),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(pieces: &[&[u8]]) -> Vec<Event> {
        let mut parser = Parser::new();
        let mut out = Vec::new();
        for piece in pieces {
            parser.push(piece, &mut out).expect("short lines");
        }
        out
    }

    fn data(data: &str) -> Event {
        Event {
            event: None,
            data: data.to_owned(),
        }
    }

    #[test]
    fn events_end_at_blank_lines_whatever_the_line_endings() {
        let expected = vec![data("{\"a\":1}"), data("[DONE]")];
        assert_eq!(events(&[b"data: {\"a\":1}\n\ndata: [DONE]\n\n"]), expected);
        assert_eq!(
            events(&[b"data: {\"a\":1}\r\n\r\ndata: [DONE]\r\n\r\n"]),
            expected
        );
        assert_eq!(events(&[b"data: {\"a\":1}\r\rdata: [DONE]\r\r"]), expected);
    }

    #[test]
    fn any_split_of_the_bytes_gives_the_same_events() {
        let stream = "\u{feff}: keep-alive\r\n\r\nevent: message\r\nid: 7\r\ndata: {\"t\":\"h\u{e9}llo \u{1f980}\"}\r\n\r\ndata: [DONE]\r\n\r\n";
        let whole = events(&[stream.as_bytes()]);
        assert_eq!(
            whole,
            vec![
                Event {
                    event: Some("message".into()),
                    data: "{\"t\":\"h\u{e9}llo \u{1f980}\"}".into()
                },
                data("[DONE]")
            ]
        );
        let bytes = stream.as_bytes();
        for cut in 1..bytes.len() {
            assert_eq!(
                events(&[&bytes[..cut], &bytes[cut..]]),
                whole,
                "cut at {cut}"
            );
        }
        let one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(events(&one_by_one), whole);
    }

    #[test]
    fn comments_unknown_fields_and_dataless_events_dispatch_nothing() {
        assert!(events(&[b": keep-alive\n\nid: 1\nretry: 10\n\nevent: ping\n\n"]).is_empty());
        // `data` without a colon is an empty data line, and is dispatched.
        assert_eq!(events(&[b"data\n\n"]), vec![data("")]);
    }

    #[test]
    fn data_lines_join_with_line_feeds_and_lose_one_leading_space() {
        assert_eq!(
            events(&[b"data:{\"a\":\ndata:  1}\n\n"]),
            vec![data("{\"a\":\n 1}")]
        );
    }

    #[test]
    fn an_event_the_body_never_closes_is_not_dispatched() {
        assert!(events(&[b"data: {\"choices\":[]}\n"]).is_empty());
        assert!(events(&[b"data: {\"choi"]).is_empty());
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut parser = Parser::new();
        let mut out = Vec::new();
        let chunk = vec![b'x'; 64 * 1024];
        let mut result = Ok(());
        for _ in 0..=MAX_LINE / chunk.len() {
            result = parser.push(&chunk, &mut out);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(TooLong));
    }
}
