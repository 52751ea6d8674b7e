//! The pool's metrics as CloudWatch embedded metric format (EMF) log lines.
//!
//! Lambda sends a function's standard output to CloudWatch Logs, and
//! CloudWatch turns every line that is an EMF document into metrics: no
//! agent, no SDK, no API call on the request path. So every `every`-th
//! invocation (`DB_METRICS_EVERY`, default 1) prints one line with the
//! pool's state at its end and what happened since the previous line. The
//! line is written with one `write` on a locked stdout, so lines of
//! concurrent invocations never interleave.
//!
//! The metrics, by name (dimension `FunctionName`):
//! - `PoolMaxConnections`, `PoolSize`, `PoolIdle` (Count): the configured
//!   maximum, connections open, and of those idle, at the line's time;
//! - `Invocations`, `Acquisitions` (Count): since the previous line;
//! - `AcquireTime` (Milliseconds): the mean time an invocation waited for
//!   its connection since the previous line (0 with no acquisition);
//! - `ConnectionsOpened` (Count): new server connections since the
//!   previous line (a warm, healthy function shows 0);
//! - `ConnectionsDiscarded` (Count): idle connections thrown away since the
//!   previous line, stale past the idle timeout or failing their check;
//! - `HandlerTimeouts`, `LeaksDetected` (Count): since the previous line
//!   (a leak check finishes after its invocation's line, so a leak shows
//!   on the next one).

use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::MetricsSnapshot;
use crate::config::EmfConfig;

/// The pool's state at the moment of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolState {
    /// Configured maximum.
    pub max: u32,
    /// Connections open.
    pub size: u32,
    /// Of those, idle.
    pub idle: u32,
}

/// Prints the lines (see the module docs).
#[derive(Debug)]
pub(crate) struct EmfReporter {
    config: EmfConfig,
    /// The totals at the previous line.
    previous: Mutex<MetricsSnapshot>,
}

impl EmfReporter {
    pub(crate) fn new(config: EmfConfig) -> Self {
        Self {
            config,
            previous: Mutex::new(MetricsSnapshot::default()),
        }
    }

    /// Called at the end of every invocation with the running totals;
    /// prints a line when one is due.
    pub(crate) fn invocation_ended(&self, now: MetricsSnapshot, pool: PoolState) {
        if self.config.every == 0 || !now.invocations.is_multiple_of(self.config.every) {
            return;
        }
        let line = {
            let mut previous = self.previous.lock().unwrap_or_else(|e| e.into_inner());
            let line = document(&self.config, &since(*previous, now), pool, unix_millis());
            *previous = now;
            line
        };
        let mut text = line.to_string();
        text.push('\n');
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
    }
}

/// What happened between two snapshots.
fn since(before: MetricsSnapshot, now: MetricsSnapshot) -> MetricsSnapshot {
    MetricsSnapshot {
        opened: now.opened.saturating_sub(before.opened),
        discarded_stale: now.discarded_stale.saturating_sub(before.discarded_stale),
        failed_checks: now.failed_checks.saturating_sub(before.failed_checks),
        retried: now.retried.saturating_sub(before.retried),
        timed_out: now.timed_out.saturating_sub(before.timed_out),
        leaks: now.leaks.saturating_sub(before.leaks),
        unfinished: now.unfinished.saturating_sub(before.unfinished),
        invocations: now.invocations.saturating_sub(before.invocations),
        acquisitions: now.acquisitions.saturating_sub(before.acquisitions),
        acquire_micros: now.acquire_micros.saturating_sub(before.acquire_micros),
    }
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// One EMF document: the `_aws` metadata naming the metrics, and their
/// values as top-level members beside the dimension.
pub fn document(config: &EmfConfig, delta: &MetricsSnapshot, pool: PoolState, at_ms: u64) -> Value {
    let acquire_ms = if delta.acquisitions == 0 {
        0.0
    } else {
        delta.acquire_micros as f64 / delta.acquisitions as f64 / 1000.0
    };
    let metrics: [(&str, &str, Value); 10] = [
        ("PoolMaxConnections", "Count", json!(pool.max)),
        ("PoolSize", "Count", json!(pool.size)),
        ("PoolIdle", "Count", json!(pool.idle)),
        ("Invocations", "Count", json!(delta.invocations)),
        ("Acquisitions", "Count", json!(delta.acquisitions)),
        ("AcquireTime", "Milliseconds", json!(acquire_ms)),
        ("ConnectionsOpened", "Count", json!(delta.opened)),
        (
            "ConnectionsDiscarded",
            "Count",
            // A rerun first statement found its connection dead: discarded too.
            json!(delta.discarded_stale + delta.failed_checks + delta.retried),
        ),
        ("HandlerTimeouts", "Count", json!(delta.timed_out)),
        ("LeaksDetected", "Count", json!(delta.leaks)),
    ];
    let mut doc = serde_json::Map::new();
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|(name, unit, _)| json!({ "Name": name, "Unit": unit }))
        .collect();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": at_ms,
            "CloudWatchMetrics": [{
                "Namespace": config.namespace,
                "Dimensions": [["FunctionName"]],
                "Metrics": definitions,
            }],
        }),
    );
    doc.insert("FunctionName".into(), json!(config.function_name));
    for (name, _, value) in metrics {
        doc.insert(name.into(), value);
    }
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> EmfConfig {
        EmfConfig {
            namespace: "ChatBackend".into(),
            function_name: "history".into(),
            every: 1,
        }
    }

    #[test]
    fn a_line_reports_what_happened_since_the_previous_one() {
        let before = MetricsSnapshot {
            opened: 1,
            invocations: 10,
            acquisitions: 10,
            acquire_micros: 5_000,
            ..MetricsSnapshot::default()
        };
        let now = MetricsSnapshot {
            opened: 2,
            invocations: 12,
            acquisitions: 12,
            acquire_micros: 8_000,
            leaks: 1,
            failed_checks: 1,
            ..MetricsSnapshot::default()
        };
        let pool = PoolState {
            max: 1,
            size: 1,
            idle: 0,
        };
        let doc = document(&config(), &since(before, now), pool, 1_700_000_000_000);
        assert_eq!(doc["ConnectionsOpened"], 1);
        assert_eq!(doc["Invocations"], 2);
        assert_eq!(doc["AcquireTime"], 1.5);
        assert_eq!(doc["LeaksDetected"], 1);
        assert_eq!(doc["ConnectionsDiscarded"], 1);
        assert_eq!(doc["PoolMaxConnections"], 1);
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000u64);
    }

    #[test]
    fn every_declared_metric_has_a_numeric_value_and_the_dimension_a_string() {
        let doc = document(
            &config(),
            &MetricsSnapshot::default(),
            PoolState {
                max: 4,
                size: 0,
                idle: 0,
            },
            1,
        );
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "ChatBackend");
        for dimension in directive["Dimensions"][0]
            .as_array()
            .expect("a dimension set")
        {
            let key = dimension.as_str().expect("a dimension name");
            assert!(doc[key].is_string(), "{key}");
        }
        let metrics = directive["Metrics"].as_array().expect("metrics");
        assert_eq!(metrics.len(), 10);
        for metric in metrics {
            let name = metric["Name"].as_str().expect("a name");
            assert!(doc[name].is_number(), "{name}");
        }
        // No acquisition: a mean of zero, not NaN (which is not JSON).
        assert_eq!(doc["AcquireTime"], 0.0);
    }
}
