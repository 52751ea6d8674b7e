//! How long an invocation may still run: one helper, one margin, for every
//! place that bounds its work by Lambda's deadline (the cleanup wrapper's
//! handler budget, the chat stream's end, the migrate function's run).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time kept back from Lambda's deadline, so that work cut off by it still
/// ends in order before Lambda kills the invocation: a handler's 503 goes
/// out, a stream saves its reply and sends its last chunk.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

/// What Lambda leaves of an invocation whose deadline is `deadline_ms`
/// (milliseconds since the Unix epoch, as the Runtime API gives it), less
/// [`DEADLINE_MARGIN`]; `None` when there is no deadline to keep.
///
/// A deadline already past is none at all: some local emulators (`cargo
/// lambda watch`) send a duration there instead, and Lambda itself would
/// have ended the invocation.
pub fn time_left(deadline_ms: u64) -> Option<Duration> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    (deadline_ms > now_ms)
        .then(|| Duration::from_millis(deadline_ms - now_ms).saturating_sub(DEADLINE_MARGIN))
}

/// `bound`, or what Lambda leaves of the invocation (see [`time_left`]),
/// whichever is shorter.
pub fn budget(deadline_ms: u64, bound: Duration) -> Duration {
    time_left(deadline_ms).map_or(bound, |left| left.min(bound))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now_ms() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    const CONFIGURED: Duration = Duration::from_secs(25);

    #[test]
    fn without_a_deadline_the_configured_bound_applies() {
        assert_eq!(budget(0, CONFIGURED), CONFIGURED);
    }

    #[test]
    fn a_near_lambda_deadline_shortens_the_budget_and_keeps_the_margin() {
        let budget = budget(now_ms() + 5_000, CONFIGURED);
        let most = Duration::from_secs(5) - DEADLINE_MARGIN;
        assert!(
            budget <= most && budget > most - Duration::from_millis(500),
            "{budget:?}"
        );
        let far = super::budget(now_ms() + 900_000, CONFIGURED);
        assert_eq!(far, CONFIGURED);
    }

    #[test]
    fn a_deadline_in_the_past_is_ignored_as_cargo_lambda_watch_sends_one() {
        // cargo lambda watch sends `lambda-runtime-deadline-ms: 600000`.
        assert_eq!(budget(600_000, CONFIGURED), CONFIGURED);
        assert_eq!(time_left(600_000), None);
    }

    #[test]
    fn a_deadline_closer_than_the_margin_leaves_nothing() {
        assert_eq!(time_left(now_ms() + 1_000), Some(Duration::ZERO));
    }
}
