//! Random lookups in a full offset index (segment.index.bytes = 10 MiB: 1,310,720 entries)
//! and time index, and offset translation in a real segment (index lookup + header scan).
//!
//! `cargo bench --bench index_lookup`

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use weir::log::batch::BatchBuilder;
use weir::log::{offset_index, time_index, AppendOptions, Log, LogConfig, OpenState, TopicPartition};

/// xorshift: deterministic pseudo-random targets without a dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn lookups(c: &mut Criterion) {
    let entries = 10 * 1024 * 1024 / 8;
    let mut index = vec![0u8; entries * 8];
    for i in 0..entries {
        index[i * 8..i * 8 + 4].copy_from_slice(&((i * 4) as u32).to_be_bytes());
        index[i * 8 + 4..i * 8 + 8].copy_from_slice(&((i * 4096) as u32).to_be_bytes());
    }
    let time_entries = 10 * 1024 * 1024 / 12;
    let mut times = vec![0u8; time_entries * 12];
    for i in 0..time_entries {
        times[i * 12..i * 12 + 8].copy_from_slice(&(1_700_000_000_000i64 + i as i64 * 10).to_be_bytes());
        times[i * 12 + 8..i * 12 + 12].copy_from_slice(&((i * 4) as u32).to_be_bytes());
    }
    let mut group = c.benchmark_group("index_lookup");
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    group.bench_function("offset_index_random_full_10MiB", |b| {
        b.iter(|| offset_index::lookup(&index, (next(&mut state) % (entries as u64 * 4)) as u32))
    });
    group.bench_function("time_index_random_full_10MiB", |b| {
        b.iter(|| {
            time_index::lookup(&times, 1_700_000_000_000 + (next(&mut state) % (time_entries as u64 * 10)) as i64)
        })
    });

    // A real 64 MiB segment of 1 KiB batches, translating random offsets to batch positions.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let mut log =
        Log::open(dir.path(), TopicPartition::new("idx", 0), Arc::new(LogConfig::default()), OpenState::UNKNOWN, 0)
            .expect("open");
    let mut b = BatchBuilder::new();
    b.record(0, None, Some(&[1u8; 950]), &[]);
    let batch = b.build();
    for _ in 0..65_536 {
        log.append(&batch, AppendOptions { leader_epoch: None, now_ms: 0 }).expect("append");
    }
    let reader = log.reader();
    let end = log.log_end_offset() as u64;
    group.bench_function("read_first_batch_at_random_offset", |b| {
        b.iter(|| reader.read((next(&mut state) % end) as i64, 1, i64::MAX, true).expect("read").next_offset)
    });
    group.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);
