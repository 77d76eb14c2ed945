//! Sequential read of a sealed segment as zero-copy map slices, touching every byte (as a
//! socket write would), 1 MiB per read like a fetch.
//!
//! `cargo bench --bench fetch_read`

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use weir::log::batch::BatchBuilder;
use weir::log::{AppendOptions, Log, LogConfig, OpenState, TopicPartition};

fn touch(bytes: &[u8]) -> u64 {
    // Sum 8-byte words: reads every byte, cheap enough not to be the bottleneck.
    let (chunks, rest) = bytes.as_chunks::<8>();
    let mut sum = chunks.iter().fold(0u64, |acc, c| acc.wrapping_add(u64::from_ne_bytes(*c)));
    for &b in rest {
        sum = sum.wrapping_add(u64::from(b));
    }
    sum
}

fn read_sealed(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let config = LogConfig { segment_bytes: 256 << 20, ..LogConfig::default() };
    let mut log =
        Log::open(dir.path(), TopicPartition::new("read", 0), Arc::new(config), OpenState::UNKNOWN, 0).expect("open");
    let mut b = BatchBuilder::new();
    let value = vec![7u8; 1000];
    for i in 0..64 {
        b.record(i, None, Some(&value), &[]);
    }
    let batch = b.build();
    let opts = AppendOptions { leader_epoch: None, now_ms: 0 };
    while log.reader().segment_count() < 2 {
        log.append(&batch, opts).expect("append");
    }
    let reader = log.reader();
    let sealed_end = log.segment_facts()[1].base_offset;
    let sealed_bytes = log.segment_facts()[0].size;
    let mut group = c.benchmark_group("fetch_read");
    group.throughput(Throughput::Bytes(sealed_bytes));
    group.sample_size(20);
    group.bench_function("sealed_segment_1MiB_reads", |bench| {
        bench.iter(|| {
            let mut offset = 0;
            let mut sum = 0u64;
            while offset < sealed_end {
                let r = reader.read(offset, 1 << 20, sealed_end, true).expect("read");
                sum = sum.wrapping_add(touch(&r.records));
                offset = r.next_offset;
            }
            sum
        })
    });
    group.finish();
}

criterion_group!(benches, read_sealed);
criterion_main!(benches);
