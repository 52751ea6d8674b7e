//! The whole suite: what runs, in which order, with how much effort, and
//! the report it makes (tables, the targets of the performance brief, and
//! in `--check` mode the generous ratio checks CI holds).

use anyhow::Result;

use crate::cold::{self, Cold};
use crate::fixtures::Fixture;
use crate::latency::{self, LatencyResults};
use crate::node::{self, Comparison};
use crate::process::{self, FUNCTIONS, Program};
use crate::report::{Check, Report, Table, Target};
use crate::sizes::{self, Sizes};
use crate::stats::{Samples, percent, ratio, size, time};
use crate::streaming::{self, ManyStreams, StreamResults};
use crate::warm::{self, WarmResults};

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// CI mode: less effort, no streaming, and the checks decide the exit
    /// status.
    pub check: bool,
    /// Build the arm64 zips and measure them (slow).
    pub sizes: bool,
}

/// Concurrent streams for the memory figure.
const STREAMS: usize = 50;

/// Runs the suite and makes its report.
pub async fn run(options: Options) -> Result<Report> {
    let quick = options.check;
    let mut functions: Vec<&str> = FUNCTIONS.to_vec();
    functions.sort_unstable();
    eprintln!("building the functions' release binaries");
    process::build_release(&functions)?;
    process::node_ready()?;
    let sizes = if options.sizes {
        eprintln!("building the arm64 zips (cargo lambda build)");
        Some(sizes::build_and_measure()?)
    } else {
        sizes::last_measured()
    };

    eprintln!("creating the database");
    let fixture = Fixture::create().await?;
    let effort = if quick {
        warm::Effort {
            rounds: 5,
            per_round: 100,
            connect_rounds: 3,
            connect_per_round: 30,
        }
    } else {
        warm::Effort {
            rounds: 10,
            per_round: 200,
            connect_rounds: 6,
            connect_per_round: 50,
        }
    };
    eprintln!("warm invocations in-process");
    let warm = warm::run(&fixture, effort, quick).await?;
    eprintln!("the Node.js original against ours");
    let node_effort = if quick {
        node::Effort {
            warm: 300,
            per_caller: 40,
        }
    } else {
        node::Effort {
            warm: 1000,
            per_caller: 150,
        }
    };
    let comparison = node::run(&fixture, node_effort).await?;
    eprintln!("with a network between (0.5 ms a round trip)");
    let latency_effort = if quick {
        latency::Effort {
            rounds: 3,
            per_round: 100,
            processes: 200,
        }
    } else {
        latency::Effort {
            rounds: 8,
            per_round: 200,
            processes: 600,
        }
    };
    let latency = latency::run(&fixture, latency_effort).await?;
    eprintln!("cold starts");
    let colds = cold::run(&fixture, if quick { 3 } else { 10 }).await?;
    let (stream, many) = if quick {
        (None, None)
    } else {
        eprintln!("streaming");
        let mut stream = streaming::run(300).await?;
        stream.through_runtime_api = streaming::through_runtime_api(&fixture, 100).await?;
        let many = streaming::many_at_once(&fixture, STREAMS).await?;
        (Some(stream), Some(many))
    };

    let mut report = Report::default();
    targets(
        &mut report,
        &warm,
        &comparison,
        &latency,
        &colds,
        sizes.as_ref(),
    );
    if options.check {
        checks(&mut report, &warm, &comparison, &latency, &colds);
    }
    tables(
        &mut report,
        &warm,
        &comparison,
        &colds,
        stream.as_ref(),
        many.as_ref(),
        sizes.as_ref(),
    );
    latency_table(&mut report, &latency);
    Ok(report)
}

/// Only the warm overhead comparison, printed: a short run to profile
/// (`perf record`, `valgrind --tool=callgrind`) or to try a change on.
pub async fn warm_only() -> Result<()> {
    let fixture = Fixture::create().await?;
    let effort = warm::Effort {
        rounds: 5,
        per_round: 400,
        connect_rounds: 1,
        connect_per_round: 5,
    };
    let warm = warm::run(&fixture, effort, true).await?;
    for (name, overhead) in [("history", &warm.history), ("vote", &warm.vote)] {
        println!(
            "warm {name}: full {} / bare sqlx {} / database alone {}: overhead {}",
            time(overhead.full.median()),
            time(overhead.bare.median()),
            time(overhead.held.median()),
            ratio(overhead.ratio()),
        );
    }
    Ok(())
}

/// The median of one program's cold-start samples (NaN if it was not
/// started).
fn cold_median(colds: &[Cold], program: Program, samples: fn(&Cold) -> &Samples) -> f64 {
    colds
        .iter()
        .find(|c| c.program == program)
        .map_or(f64::NAN, |c| samples(c).median())
}

/// Whether `measured` meets a goal of at least `goal`.
fn at_least(measured: f64, goal: f64) -> Option<bool> {
    measured.is_finite().then_some(measured >= goal)
}

fn targets(
    report: &mut Report,
    warm: &WarmResults,
    c: &Comparison,
    latency: &LatencyResults,
    colds: &[Cold],
    sizes: Option<&Sizes>,
) {
    let mut target = |what: &str, goal: &str, measured: String, met: Option<bool>| {
        report.targets.push(Target {
            what: what.to_owned(),
            goal: goal.to_owned(),
            measured,
            met,
        });
    };
    let r = warm.history.above_floor();
    target(
        "warm history: overhead above the true floor",
        "at most +10%",
        percent(r - 1.0),
        at_least(1.10, r),
    );
    let r = latency.above_floor();
    target(
        "the same, with 0.5 ms a round trip",
        "at most +10%",
        percent(r - 1.0),
        at_least(1.10, r),
    );
    let speedup = warm.connecting.ratio_rounds.median();
    target(
        "pooled against a connection per request",
        "at least 5x faster",
        ratio(speedup),
        at_least(speedup, 5.0),
    );
    let (o, n) = (&c.ours, &c.node);
    let init = cold_median(colds, Program::Node, |c| &c.init)
        / cold_median(colds, Program::Rust("history"), |c| &c.init);
    target(
        "init against the Node.js original",
        "at least 40x faster",
        format!("{} faster", ratio(init)),
        at_least(init, 40.0),
    );
    let memory = n.peak_rss as f64 / o.peak_rss as f64;
    target(
        "peak memory against the Node.js original",
        "at most a tenth",
        format!("{} less", ratio(memory)),
        at_least(memory, 10.0),
    );
    let p50 = o.warm.median() / n.warm.median();
    target(
        "warm p50 against the Node.js original",
        "at most 0.8x",
        format!("{} of it", ratio(p50)),
        at_least(0.8, p50),
    );
    let p99 = o.warm.p99() / n.warm.p99();
    target(
        "warm p99 against the Node.js original",
        "at most half",
        format!("{} of it", ratio(p99)),
        at_least(0.5, p99),
    );
    let far = latency.ours.median() / latency.node.median();
    target(
        "the same, with 0.5 ms a round trip",
        "at most 0.5x",
        format!("{} of it", ratio(far)),
        at_least(0.5, far),
    );
    let throughput = o.throughput / n.throughput;
    target(
        "throughput, 16 at once, against the Node.js original",
        "at least 2x",
        ratio(throughput),
        at_least(throughput, 2.0),
    );
    let slowest = colds
        .iter()
        .filter(|cold| matches!(cold.program, Program::Rust(_)))
        .map(|cold| (cold.init.median(), cold.program.name()))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((init, name)) = slowest {
        target(
            "init, every function (median)",
            "under 3 ms",
            format!("{} at most ({name})", time(init)),
            at_least(0.003, init),
        );
    }
    match sizes.and_then(|s| s.functions.iter().map(|f| f.zip).max()) {
        Some(largest) => target(
            "zip, every function",
            "under 5 MB",
            format!("{} at most", size(largest as f64)),
            Some(largest < 5_000_000),
        ),
        None => target(
            "zip, every function",
            "under 5 MB",
            "not built (run with --sizes)".to_owned(),
            None,
        ),
    }
}

/// The CI checks: the same comparisons as the targets, each a ratio of two
/// things measured in this run, with thresholds loose enough that a noisy
/// shared machine does not fail them, and tight enough that losing what the
/// targets hold (a pool that reconnects, an extra round trip per query, a
/// binary that starts like Node.js) does.
fn checks(
    report: &mut Report,
    warm: &WarmResults,
    c: &Comparison,
    latency: &LatencyResults,
    colds: &[Cold],
) {
    let mut check = |what: &str, threshold: &str, measured: String, passed: bool| {
        report.checks.push(Check {
            what: what.to_owned(),
            threshold: threshold.to_owned(),
            measured,
            passed,
        });
    };
    // A loose guard: on loopback one extra round trip (a ping, ~70 us) is
    // about +50% on a 150 us route, so 2.5x leaves room for the machine's
    // noise and fails by the third. The round trips themselves are held
    // exactly by tests/tests/round_trips.rs.
    for (name, overhead) in [("history", &warm.history), ("vote", &warm.vote)] {
        let r = overhead.ratio();
        check(
            &format!("warm {name} / bare sqlx"),
            "at most 2.5x",
            ratio(r),
            r <= 2.5,
        );
    }
    let speedup = warm.connecting.ratio_rounds.median();
    check(
        "a connection per request / pooled",
        "at least 2.5x",
        ratio(speedup),
        speedup >= 2.5,
    );
    // A pool that connected per invocation would show 1,000. The check runs
    // 90 pooled invocations, so one connection opened is 11.1: back to
    // back, the next invocation can find the last connection still on its
    // way back and open a second one, which the pool (10 at most) keeps.
    let backends = warm.connecting.pooled_backends;
    check(
        "backends opened per 1,000 pooled invocations",
        "at most 50",
        format!("{backends:.1}"),
        backends <= 50.0,
    );
    let (o, n) = (&c.ours, &c.node);
    let memory = n.peak_rss as f64 / o.peak_rss as f64;
    check(
        "Node.js peak memory / ours",
        "at least 4x",
        ratio(memory),
        memory >= 4.0,
    );
    let p50 = o.warm.median() / n.warm.median();
    check(
        "warm p50, ours / Node.js",
        "at most 1.5x",
        ratio(p50),
        p50 <= 1.5,
    );
    // Across a network the round trips show: ours makes one, the original
    // two, and today's ratio is 0.43-0.46x. One more round trip of ours
    // (~0.53 ms) would put it near 0.62x.
    let far = latency.ours.median() / latency.node.median();
    check(
        "warm p50 with 0.5 ms a round trip, ours / Node.js",
        "at most 0.6x",
        ratio(far),
        far <= 0.6,
    );
    let added = latency.added_round_trip;
    check(
        "the round trip the delaying proxy added",
        "at least 0.45 ms",
        time(added),
        added >= 0.000_45,
    );
    let throughput = o.throughput / n.throughput;
    check(
        "throughput with 16 at once, ours / Node.js",
        "at least 1x",
        ratio(throughput),
        throughput >= 1.0,
    );
    let node_init = cold_median(colds, Program::Node, |c| &c.init);
    for cold in colds.iter().filter(|c| c.program != Program::Node) {
        let r = node_init / cold.init.median();
        check(
            &format!("init: Node.js original / {}", cold.program.name()),
            "at least 8x",
            ratio(r),
            r >= 8.0,
        );
    }
}

fn latency_table(report: &mut Report, l: &LatencyResults) {
    let mut t = Table::new(
        "With a network between (`GET /api/history`, 20 chats)",
        &format!(
            "Everything reaches PostgreSQL through a proxy that delays each \
             direction by {} (the round trip it added, measured by pings: {}), \
             as a database across a VPC. In-process: the full path against the \
             true floor. Processes: ours and the Node.js original behind the \
             local Runtime API, taking turns.",
            time(latency::ONE_WAY.as_secs_f64()),
            time(l.added_round_trip)
        ),
        &["", "p50", "p99", "against"],
    );
    t.row(vec![
        "in-process, full path".to_owned(),
        time(l.full.median()),
        time(l.full.p99()),
        format!("{} above the floor", percent(l.above_floor() - 1.0)),
    ]);
    t.row(vec![
        "in-process, the true floor".to_owned(),
        time(l.floor.median()),
        time(l.floor.p99()),
        String::new(),
    ]);
    t.row(vec![
        "ours, through the Runtime API".to_owned(),
        time(l.ours.median()),
        time(l.ours.p99()),
        format!(
            "{} of the original's p50",
            ratio(l.ours.median() / l.node.median())
        ),
    ]);
    t.row(vec![
        "the Node.js original".to_owned(),
        time(l.node.median()),
        time(l.node.p99()),
        String::new(),
    ]);
    report.tables.push(t);
}

fn tables(
    report: &mut Report,
    warm: &WarmResults,
    c: &Comparison,
    colds: &[Cold],
    stream: Option<&StreamResults>,
    many: Option<&ManyStreams>,
    sizes: Option<&Sizes>,
) {
    let mut t = Table::new(
        "Warm invocations, in-process",
        "The full path: the API Gateway event's bytes through lambda_http, the \
         cleanup wrapper, the handler and its queries, the response serialised. \
         Bare sqlx: the same statements on a connection from the same pool. \
         The true floor: the same statements on a connection held open, no \
         pool (PostgreSQL and the wire alone). Medians; each overhead is the \
         median over rounds of the ratio of medians.",
        &[
            "route",
            "full path p50",
            "p99",
            "bare sqlx p50",
            "true floor p50",
            "above bare sqlx",
            "above the floor",
        ],
    );
    for (name, o) in [
        ("`GET /api/history` (20 chats)", &warm.history),
        ("`PATCH /api/vote`", &warm.vote),
    ] {
        t.row(vec![
            name.to_owned(),
            time(o.full.median()),
            time(o.full.p99()),
            time(o.bare.median()),
            time(o.held.median()),
            percent(o.ratio() - 1.0),
            percent(o.above_floor() - 1.0),
        ]);
    }
    report.tables.push(t);

    let w = &warm.connecting;
    let mut t = Table::new(
        "Pooled against a connection per request",
        "The history handler through the full path, on the process's pool, and \
         on a pool of one opened for the invocation and closed after it (the \
         design the Node.js original replaced). Backends: connections the pool \
         opened; sessions: what PostgreSQL counted (`pg_stat_database`).",
        &[
            "variant",
            "p50",
            "p99",
            "backends per 1,000",
            "server sessions per 1,000",
        ],
    );
    t.row(vec![
        "pooled".to_owned(),
        time(w.pooled.median()),
        time(w.pooled.p99()),
        format!("{:.1}", w.pooled_backends),
        format!("{:.1}", w.pooled_sessions),
    ]);
    t.row(vec![
        "a connection per request".to_owned(),
        time(w.per_request.median()),
        time(w.per_request.p99()),
        format!("{:.0}", w.per_request_backends),
        format!("{:.0}", w.per_request_sessions),
    ]);
    t.row(vec![
        "ratio".to_owned(),
        format!("{} faster pooled", ratio(w.ratio_rounds.median())),
        String::new(),
        String::new(),
        String::new(),
    ]);
    report.tables.push(t);

    if !warm.breakdown.parts.is_empty() {
        let mut t = Table::new(
            "Where a warm history invocation's time goes",
            "Each part alone, many times, interleaved with the whole.",
            &["part", "median"],
        );
        for (name, samples) in &warm.breakdown.parts {
            t.row(vec![(*name).to_owned(), time(samples.median())]);
        }
        report.tables.push(t);
    }
    if !warm.round_trips.counts.is_empty() {
        let mut t = Table::new(
            "Round trips to the database per invocation",
            "Counted by a TCP proxy in front of PostgreSQL: each time the client \
             speaks after the server has is one round trip.",
            &["variant", "round trips"],
        );
        for (name, count) in &warm.round_trips.counts {
            t.row(vec![(*name).to_owned(), format!("{count:.2}")]);
        }
        report.tables.push(t);
    }

    let (o, n) = (&c.ours, &c.node);
    let mut t = Table::new(
        "Against the Node.js original (`GET /api/history`, 20 chats)",
        "Each a process behind the same local Lambda Runtime API, on the same \
         database, answering the same JSON. Warm: one invocation at a time, the \
         two taking turns. 16 at once: `AWS_LAMBDA_MAX_CONCURRENCY=16` (Lambda \
         Managed Instances), 16 callers; each side's pool as its design sizes it \
         (ours 16, the original's `max: 10`).",
        &["", "ours", "Node.js original", "Node.js / ours"],
    );
    let row = |what: &str, ours: f64, node: f64, fmt: fn(f64) -> String| {
        vec![what.to_owned(), fmt(ours), fmt(node), ratio(node / ours)]
    };
    let ours = Program::Rust("history");
    t.row(row(
        "init (cold starts, median)",
        cold_median(colds, ours, |c| &c.init),
        cold_median(colds, Program::Node, |c| &c.init),
        time,
    ));
    t.row(row(
        "first invocation (cold starts, median)",
        cold_median(colds, ours, |c| &c.first),
        cold_median(colds, Program::Node, |c| &c.first),
        time,
    ));
    t.row(row("warm p50", o.warm.median(), n.warm.median(), time));
    t.row(row("warm p99", o.warm.p99(), n.warm.p99(), time));
    t.row(row(
        "peak memory (RSS)",
        o.peak_rss as f64,
        n.peak_rss as f64,
        size,
    ));
    let per_second = |v: f64| format!("{v:.0}/s");
    t.row(vec![
        "throughput, 16 at once".to_owned(),
        per_second(o.throughput),
        per_second(n.throughput),
        format!("ours {}", ratio(o.throughput / n.throughput)),
    ]);
    t.row(row(
        "peak memory, 16 at once",
        o.concurrent_peak_rss as f64,
        n.concurrent_peak_rss as f64,
        size,
    ));
    report.tables.push(t);

    let mut t = Table::new(
        "Cold starts",
        "A new process each time, behind a local Runtime API. Init: from the \
         process's start to its first poll for work. First invocation: from \
         queueing the event to the answer, including the first connection. \
         Medians over the rounds.",
        &["function", "init", "first invocation", "peak memory (RSS)"],
    );
    for cold in colds {
        t.row(vec![
            cold.program.name(),
            time(cold.init.median()),
            time(cold.first.median()),
            size(cold.peak_rss.median()),
        ]);
    }
    report.tables.push(t);

    if let Some(s) = stream {
        let mut t = Table::new(
            "Streaming (`POST /api/chat`, offline model at zero delay)",
            "In-process, through the cleanup wrapper, one reply at a time; the last \
             row: the chat function's release binary behind a local Runtime API, warm.",
            &["", "median", "p99"],
        );
        t.row(vec![
            "time to first byte".to_owned(),
            time(s.first_byte.median()),
            time(s.first_byte.p99()),
        ]);
        t.row(vec![
            "time to first word".to_owned(),
            time(s.first_word.median()),
            time(s.first_word.p99()),
        ]);
        t.row(vec![
            format!("each word after the first ({} words a reply)", s.words),
            time(s.per_word.median()),
            time(s.per_word.p99()),
        ]);
        t.row(vec![
            "a whole reply through the Runtime API".to_owned(),
            time(s.through_runtime_api.median()),
            time(s.through_runtime_api.p99()),
        ]);
        report.tables.push(t);
    }
    if let Some(m) = many {
        let mut t = Table::new(
            "Many streams in one process",
            "The chat function's release binary with `AWS_LAMBDA_MAX_CONCURRENCY` \
             set to the number of streams, the offline model's default pause \
             between words (so that the streams overlap), behind a local Runtime API.",
            &["", "value"],
        );
        t.row(vec![
            "peak memory after one reply".to_owned(),
            size(m.peak_after_one as f64),
        ]);
        t.row(vec![
            format!("peak memory with {} streams at once", m.streams),
            size(m.peak as f64),
        ]);
        t.row(vec![
            format!("one reply / all {} together", m.streams),
            format!(
                "{} / {}",
                time(m.one.as_secs_f64()),
                time(m.all.as_secs_f64())
            ),
        ]);
        report.tables.push(t);
    }
    if let Some(sizes) = sizes {
        let mut t = Table::new(
            "Sizes (arm64)",
            &format!(
                "`cargo lambda build --release --arm64 --output-format zip`, built from `{}`.",
                sizes.commit
            ),
            &["function", "binary", "zip"],
        );
        for f in &sizes.functions {
            t.row(vec![
                f.function.clone(),
                size(f.binary as f64),
                size(f.zip as f64),
            ]);
        }
        report.tables.push(t);
    }
}
