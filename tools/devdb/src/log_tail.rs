//! The end of a log file, for error messages: of `server.log` (PostgreSQL
//! says why it would not start only there, not on pg_ctl's output), or of
//! another program's log that a test quotes.

use std::path::Path;

const TAIL_LINES: usize = 30;

/// The last lines written to `path` since byte `since`, or the last lines of
/// the whole file when nothing new was written (or the file was replaced).
pub fn log_tail(path: &Path, since: u64) -> String {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => return format!("(could not read {}: {e})", path.display()),
    };
    let start = usize::try_from(since).unwrap_or(usize::MAX);
    let fresh = bytes.get(start..).filter(|b| !b.trim_ascii().is_empty());
    last_lines(
        &String::from_utf8_lossy(fresh.unwrap_or(&bytes)),
        TAIL_LINES,
    )
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed step should fail the test")]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_last_lines() {
        let text: String = (1..=40).map(|i| format!("line {i}\n")).collect();
        let tail = last_lines(&text, 30);
        assert!(tail.starts_with("line 11\n"));
        assert!(tail.ends_with("line 40"));
        assert_eq!(last_lines("a\nb", 30), "a\nb");
    }

    #[test]
    fn prefers_what_was_written_since_the_offset() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("server.log");
        std::fs::write(&log, "old run\nnew run\n").unwrap();
        assert_eq!(log_tail(&log, 8), "new run");
        assert_eq!(log_tail(&log, 100), "old run\nnew run");
        assert!(log_tail(&tmp.path().join("missing"), 0).contains("could not read"));
    }
}
