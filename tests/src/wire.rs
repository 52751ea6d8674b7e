//! Round trips on the wire, read off the client's side of the PostgreSQL
//! protocol as it passes through the test proxy ([`crate::proxy`]).
//!
//! A client waits for the server after two messages only: `Sync` (`S`),
//! which ends an extended-protocol exchange (a prepared statement's
//! parse, bind and execute, or sqlx's ping, which is a lone `Sync`), and
//! `Query` (`Q`), a simple-protocol statement. Everything else it sends
//! is pipelined ahead of one of those. So counting them counts the round
//! trips, whatever the statement log would say.

/// The protocol code of `SSLRequest`, `GSSENCRequest` and `CancelRequest`:
/// untagged messages sent before (or instead of) the startup message.
const PRE_STARTUP_CODES: [u32; 3] = [80_877_103, 80_877_104, 80_877_102];

/// One connection's client-to-server bytes, read as messages.
#[derive(Debug, Default)]
pub struct ClientMessages {
    buffer: Vec<u8>,
    /// The startup message has passed: messages are tagged from here on.
    started: bool,
}

impl ClientMessages {
    /// Reads `bytes` (the next ones the client sent) and returns how many
    /// round trips they end.
    pub fn feed(&mut self, bytes: &[u8]) -> usize {
        self.buffer.extend_from_slice(bytes);
        let mut round_trips = 0;
        let mut at = 0;
        while let Some((length, ends_round_trip)) =
            next_message(&mut self.started, &self.buffer[at..])
        {
            at += length;
            round_trips += usize::from(ends_round_trip);
        }
        self.buffer.drain(..at);
        round_trips
    }
}

/// The length of the complete message at the start of `bytes`, and whether
/// it ends a round trip; `None` until it has all arrived. `started`: see
/// [`ClientMessages`].
fn next_message(started: &mut bool, bytes: &[u8]) -> Option<(usize, bool)> {
    if *started {
        let tag = *bytes.first()?;
        let length = read_u32(bytes.get(1..5)?) as usize;
        return (bytes.len() > length).then_some((length + 1, matches!(tag, b'S' | b'Q')));
    }
    let length = read_u32(bytes.get(0..4)?) as usize;
    let code = read_u32(bytes.get(4..8)?);
    if bytes.len() < length {
        return None;
    }
    *started = !PRE_STARTUP_CODES.contains(&code);
    Some((length.max(8), false))
}

fn read_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes(bytes.try_into().expect("four bytes"))
}

#[cfg(test)]
mod tests {
    use super::ClientMessages;

    fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn startup(code: u32) -> Vec<u8> {
        let mut out = 8_u32.to_be_bytes().to_vec();
        out.extend_from_slice(&code.to_be_bytes());
        out
    }

    #[test]
    fn syncs_and_queries_count_and_nothing_else_does() {
        let mut wire = ClientMessages::default();
        // An SSL request the server declines, then the startup message.
        assert_eq!(wire.feed(&startup(80_877_103)), 0);
        assert_eq!(wire.feed(&startup(196_608)), 0);
        let mut exchange = Vec::new();
        for (tag, body) in [
            (b'P', &b"\0SELECT 1\0\0\0"[..]),
            (b'B', b"\0\0"),
            (b'E', b"\0"),
            (b'S', b""),
        ] {
            exchange.extend(message(tag, body));
        }
        exchange.extend(message(b'Q', b"SELECT 1\0"));
        exchange.extend(message(b'X', b""));
        assert_eq!(wire.feed(&exchange), 2);
    }

    #[test]
    fn a_message_split_across_reads_counts_once_it_is_whole() {
        let mut wire = ClientMessages::default();
        wire.feed(&startup(196_608));
        let mut bytes = message(b'Q', b"SELECT 1\0");
        bytes.extend(message(b'S', b""));
        let counted: usize = bytes.chunks(3).map(|chunk| wire.feed(chunk)).sum();
        assert_eq!(counted, 2);
    }
}
