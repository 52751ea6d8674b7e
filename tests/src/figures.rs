//! What a reliability test did, checked and measured, for the report.
//!
//! A test opens a [`Scenario`] with what it does and what it checks, adds
//! figures as it measures them, and calls [`Scenario::passed`] at its end.
//! The record is printed, and written as JSON to
//! `$RELIABILITY_FIGURES_DIR/<id>.json` when that variable is set (the
//! report command sets it: `cargo xtask reliability`). A test
//! that panics still leaves its record, marked failed, with the figures it
//! had so far: a failure is a result too.

use std::fmt::Display;
use std::time::Duration;

use serde_json::{Value, json};

/// The variable naming the directory records are written to.
pub const DIR_VAR: &str = "RELIABILITY_FIGURES_DIR";

/// One scenario's record (see the module docs).
pub struct Scenario {
    id: String,
    group: String,
    title: String,
    did: String,
    checked: String,
    figures: Vec<(String, String)>,
    passed: bool,
}

impl Scenario {
    /// A record for the test `id` (its function name), in `group` (the
    /// report's section), titled `title`.
    pub fn new(group: &str, id: &str, title: &str) -> Scenario {
        Scenario {
            id: id.to_owned(),
            group: group.to_owned(),
            title: title.to_owned(),
            did: String::new(),
            checked: String::new(),
            figures: Vec::new(),
            passed: false,
        }
    }

    /// What the test does to the system.
    pub fn did(mut self, what: &str) -> Scenario {
        self.did = what.to_owned();
        self
    }

    /// What it checks afterwards.
    pub fn checked(mut self, what: &str) -> Scenario {
        self.checked = what.to_owned();
        self
    }

    /// Adds (or replaces) a figure.
    pub fn figure(&mut self, name: &str, value: impl Display) {
        let value = value.to_string();
        match self.figures.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.figures.push((name.to_owned(), value)),
        }
    }

    /// Adds a duration, in milliseconds.
    pub fn millis(&mut self, name: &str, value: Duration) {
        self.figure(name, format!("{} ms", value.as_millis()));
    }

    /// Marks the scenario passed (its last line).
    pub fn passed(mut self) {
        self.passed = true;
    }

    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "group": self.group,
            "title": self.title,
            "did": self.did,
            "checked": self.checked,
            "figures": self.figures.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
            "result": if self.passed { "passed" } else { "failed" },
        })
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        let record = self.to_json();
        eprintln!("reliability record: {record}");
        let Some(dir) = std::env::var_os(DIR_VAR) else {
            return;
        };
        let dir = std::path::PathBuf::from(dir);
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("{}.json", self.id));
        if let Err(error) = std::fs::write(&path, record.to_string()) {
            eprintln!("could not write {}: {error}", path.display());
        }
    }
}

/// Percentiles of `samples` (sorted in place): `(p50, p90, p99, max)`.
pub fn percentiles(samples: &mut [Duration]) -> (Duration, Duration, Duration, Duration) {
    if samples.is_empty() {
        return Default::default();
    }
    samples.sort();
    let at = |p: f64| {
        let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
        samples[index.min(samples.len() - 1)]
    };
    (at(0.50), at(0.90), at(0.99), samples[samples.len() - 1])
}

/// The report's sections, in order; records of other groups follow.
const GROUPS: [&str; 4] = ["Faults", "Load", "Security", "Hostile input"];

/// Reads every record in `dir` and renders the report: one table per
/// group, one row per scenario. `command` is how it was produced, and
/// `context` a line on where (machine, server).
pub fn render_report(
    dir: &std::path::Path,
    command: &str,
    context: &str,
) -> anyhow::Result<String> {
    use anyhow::Context;
    let mut records: Vec<Value> = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path)?;
            records.push(
                serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))?,
            );
        }
    }
    anyhow::ensure!(!records.is_empty(), "no records in {}", dir.display());
    let group_rank = |group: &str| {
        GROUPS
            .iter()
            .position(|g| *g == group)
            .unwrap_or(GROUPS.len())
    };
    records.sort_by(|a, b| {
        let key = |r: &Value| {
            (
                group_rank(r["group"].as_str().unwrap_or("")),
                r["id"].as_str().unwrap_or("").to_owned(),
            )
        };
        key(a).cmp(&key(b))
    });
    let passed = records.iter().filter(|r| r["result"] == "passed").count();
    let mut out = format!(
        "# Reliability and security report\n\n\
         Generated by `{command}`: every scenario below is an automated test in \
         `tests/tests/` (`faults.rs`, `load.rs`, `security.rs`) run against a real \
         PostgreSQL server and the real functions; the figures are what that run \
         measured. {context}\n\n\
         **{passed} of {} scenarios passed.**\n",
        records.len()
    );
    let mut group = String::new();
    for record in &records {
        let this = record["group"].as_str().unwrap_or("Other");
        if this != group {
            group = this.to_owned();
            out.push_str(&format!(
                "\n## {group}\n\n| scenario | what was done | what was checked | result | figures |\n|---|---|---|---|---|\n"
            ));
        }
        let figures: Vec<String> = record["figures"]
            .as_array()
            .map(|all| {
                all.iter()
                    .map(|f| format!("{}: {}", text(&f[0]), text(&f[1])))
                    .collect()
            })
            .unwrap_or_default();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            cell(&text(&record["title"])),
            cell(&text(&record["did"])),
            cell(&text(&record["checked"])),
            if record["result"] == "passed" {
                "passed"
            } else {
                "**failed**"
            },
            cell(&figures.join("; ")),
        ));
    }
    Ok(out)
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| value.to_string())
}

/// A table cell: no line breaks, no column separators.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
