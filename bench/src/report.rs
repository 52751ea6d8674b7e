//! The results: tables, targets and CI checks, printed and written as
//! Markdown.

use std::fmt::Write as _;

/// One table of results.
#[derive(Debug, Clone)]
pub struct Table {
    /// Its heading.
    pub title: String,
    /// How it was measured, in a sentence or two.
    pub method: String,
    /// Column headings.
    pub columns: Vec<String>,
    /// Rows of cells.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table.
    pub fn new(title: &str, method: &str, columns: &[&str]) -> Self {
        Self {
            title: title.to_owned(),
            method: method.to_owned(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }
}

/// A target of the performance brief, and whether this run met it.
#[derive(Debug, Clone)]
pub struct Target {
    /// What is compared.
    pub what: String,
    /// The goal, in words.
    pub goal: String,
    /// What was measured.
    pub measured: String,
    /// Met or not; `None` when it could not be measured in this run.
    pub met: Option<bool>,
}

/// A CI check: a generous threshold on a ratio, so that only a real
/// regression fails it.
#[derive(Debug, Clone)]
pub struct Check {
    /// What is checked.
    pub what: String,
    /// The threshold, in words.
    pub threshold: String,
    /// What was measured.
    pub measured: String,
    /// Whether it passed.
    pub passed: bool,
}

/// Everything one run produced.
#[derive(Debug, Default)]
pub struct Report {
    /// The tables, in order.
    pub tables: Vec<Table>,
    /// The brief's targets.
    pub targets: Vec<Target>,
    /// The CI checks (in `--check` mode).
    pub checks: Vec<Check>,
    /// What was not measured, and why; caveats.
    pub notes: Vec<String>,
}

impl Report {
    /// The tables, targets and checks as Markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        if !self.targets.is_empty() {
            let _ = writeln!(out, "### Targets\n");
            let _ = writeln!(out, "| target | goal | measured | met |");
            let _ = writeln!(out, "|---|---|---|---|");
            for t in &self.targets {
                let met = match t.met {
                    Some(true) => "met",
                    Some(false) => "**not met**",
                    None => "not measured",
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    t.what, t.goal, t.measured, met
                );
            }
            out.push('\n');
        }
        if !self.checks.is_empty() {
            let _ = writeln!(out, "### CI checks\n");
            let _ = writeln!(out, "| check | threshold | measured | result |");
            let _ = writeln!(out, "|---|---|---|---|");
            for c in &self.checks {
                let result = if c.passed { "pass" } else { "**FAIL**" };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    c.what, c.threshold, c.measured, result
                );
            }
            out.push('\n');
        }
        for table in &self.tables {
            let _ = writeln!(out, "### {}\n", table.title);
            if !table.method.is_empty() {
                let _ = writeln!(out, "{}\n", table.method);
            }
            let _ = writeln!(out, "| {} |", table.columns.join(" | "));
            let _ = writeln!(out, "|{}", "---|".repeat(table.columns.len()));
            for row in &table.rows {
                let _ = writeln!(out, "| {} |", row.join(" | "));
            }
            out.push('\n');
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out, "### Notes\n");
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
            out.push('\n');
        }
        out
    }

    /// Whether every check passed.
    pub fn checks_pass(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
}

/// The report as a document: how it was made, then [`Report::markdown`].
pub fn document(report: &Report, options: crate::suite::Options) -> String {
    let mut out = String::new();
    let command = match (options.check, options.sizes) {
        (true, _) => "cargo run --release -p bench -- --check",
        (false, true) => "cargo run --release -p bench -- --sizes",
        (false, false) => "cargo run --release -p bench",
    };
    let _ = writeln!(out, "## Results\n");
    let _ = writeln!(out, "Made by `{command}` on {}.\n", machine());
    out.push_str(&report.markdown());
    out
}

/// The machine, the tools and the commit, in a line.
fn machine() -> String {
    let run = |program: &str, args: &[&str]| {
        std::process::Command::new(program)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|| "?".to_owned())
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{cores} cores, {}, Node.js {}, commit `{}`",
        run("rustc", &["--version"]),
        run("node", &["--version"]),
        run("git", &["describe", "--always", "--dirty"]),
    )
}

/// Where the results begin and end in a document that has prose around
/// them.
const MARKERS: (&str, &str) = ("<!-- results: begin -->", "<!-- results: end -->");

/// Writes `markdown` to `path`: between the results markers if the file
/// has them, as the whole file otherwise.
pub fn save(path: &std::path::Path, markdown: &str) -> std::io::Result<()> {
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let (begin, end) = MARKERS;
    let text = match (existing.find(begin), existing.find(end)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{begin}\n\n{markdown}{}", &existing[..b], &existing[e..])
        }
        _ => markdown.to_owned(),
    };
    std::fs::write(path, text)
}
