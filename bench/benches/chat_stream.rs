//! Criterion's view of the chat stream (see `bench::streaming`): the time
//! to the first byte, to the first word, and the whole reply, in-process,
//! with the offline model typing without pause.
//!
//! `cargo bench -p bench --bench chat_stream`

use std::time::Duration;

use bench::streaming::{Reply, StreamBench};
use criterion::{Criterion, criterion_group, criterion_main};

fn streaming(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let bench = runtime
        .block_on(StreamBench::new(200))
        .expect("the chat function on a database");
    let words = bench.words();
    let mut group = c.benchmark_group("chat_stream");
    group.measurement_time(Duration::from_secs(8));
    type Part = (&'static str, fn(&Reply) -> Duration);
    let parts: [Part; 3] = [
        ("time_to_first_byte", |r| r.first_byte),
        ("time_to_first_word", |r| r.first_word),
        ("whole_reply", |r| r.end),
    ];
    for (name, part) in parts {
        group.bench_function(format!("{name} ({words} words)"), |b| {
            b.to_async(&runtime).iter_custom(|iters| {
                let bench = &bench;
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += part(&bench.reply().await.expect("a reply"));
                    }
                    total
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, streaming);
criterion_main!(benches);
