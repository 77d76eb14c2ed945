//! Opening a data directory of 1,000 partitions after a clean shutdown (no scans).
//!
//! `cargo bench --bench open_partitions`

use std::collections::BTreeMap;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use weir::log::batch::BatchBuilder;
use weir::log::manager::LogManager;
use weir::log::{AppendOptions, LogConfig, TopicPartition};

fn open_1000(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    {
        let mut m = LogManager::open(dir.path(), LogConfig::default(), 0).expect("open");
        for t in 0..100 {
            m.create_topic(&format!("topic-{t}"), 10, BTreeMap::new(), 0).expect("create");
        }
        let mut b = BatchBuilder::new();
        b.record(0, None, Some(&[0u8; 100]), &[]);
        let batch = b.build();
        for t in 0..100 {
            for p in 0..10 {
                let log = m.log(&TopicPartition::new(format!("topic-{t}"), p)).expect("log").clone();
                let mut l = log.log.lock().expect("lock");
                for _ in 0..100 {
                    l.append(&batch, AppendOptions { leader_epoch: None, now_ms: 0 }).expect("append");
                }
            }
        }
        m.shutdown().expect("shutdown");
    }
    let mut group = c.benchmark_group("open");
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    group.bench_function("1000_partitions_after_clean_shutdown", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = std::time::Instant::now();
                let m = LogManager::open(dir.path(), LogConfig::default(), 0).expect("open");
                total += start.elapsed();
                assert!(m.had_clean_shutdown());
                m.shutdown().expect("shutdown"); // not timed: the next open must be clean again
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, open_1000);
criterion_main!(benches);
