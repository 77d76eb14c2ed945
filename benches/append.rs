//! Append throughput into the page cache (no fsync), and with `flush.messages=1` where every
//! append waits for an fsync that covers it (group commit).
//!
//! `cargo bench --bench append`

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use weir::log::batch::BatchBuilder;
use weir::log::{AppendOptions, Log, LogConfig, OpenState, TopicPartition};

/// Builds one batch of `size` bytes of 1 KiB records.
fn batch_of(size: usize) -> Vec<u8> {
    let mut b = BatchBuilder::new();
    let value = vec![b'x'; 1000];
    let records = (size / 1024).max(1);
    for i in 0..records {
        b.record(1_700_000_000_000 + i as i64, Some(b"key"), Some(&value), &[]);
    }
    b.build()
}

/// A log under `target/` (a real disk filesystem, not tmpfs), with retention keeping the
/// disk footprint bounded during long runs.
fn bench_log(config: LogConfig) -> (tempfile::TempDir, Log) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let retention_gib: u64 = std::env::var("WEIR_BENCH_RETENTION_GIB").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let config = LogConfig { segment_bytes: 256 << 20, retention_bytes: Some(retention_gib << 30), ..config };
    let log =
        Log::open(dir.path(), TopicPartition::new("bench", 0), Arc::new(config), OpenState::UNKNOWN, 0).expect("open");
    (dir, log)
}

const OPTS: AppendOptions = AppendOptions { leader_epoch: Some(1), now_ms: 1_700_000_000_000 };

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    for (name, size) in [("1KiB", 1024), ("64KiB", 64 * 1024)] {
        let (_dir, mut log) = bench_log(LogConfig::default());
        let batch = batch_of(size);
        group.throughput(Throughput::Bytes(batch.len() as u64));
        let mut n = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                log.append(&batch, OPTS).expect("append");
                n += 1;
                if n.is_multiple_of(4096) {
                    log.apply_retention(OPTS.now_ms, log.log_end_offset())
                        .expect("retention")
                        .delete()
                        .expect("delete");
                }
            })
        });
    }
    group.finish();
}

/// Producers append and wait until an fsync covers their batch (flush.messages=1); one
/// flusher thread fsyncs whatever has been appended since its last fsync through a
/// `LogFlusher`, which takes no lock on the log. `window` appends may be in flight (like producers' in-flight
/// requests), so one fsync covers many appends.
fn group_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("append_group_commit");
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    let size = 64 * 1024;
    let window: usize = std::env::var("WEIR_BENCH_WINDOW").ok().and_then(|w| w.parse().ok()).unwrap_or(64);
    let (_dir, log) = bench_log(LogConfig { flush_messages: Some(1), ..LogConfig::default() });
    let log = Arc::new(Mutex::new(log));
    let durable = Arc::new((Mutex::new(0i64), Condvar::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let flusher = {
        let (handle, durable, stop) = (log.lock().expect("lock").flusher(), Arc::clone(&durable), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut fsyncs = 0u64;
            let mut fsync_time = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                let before = handle.recovery_point();
                let t = Instant::now();
                let point = handle.flush().expect("fsync"); // takes no lock on the log
                if point == before {
                    std::thread::yield_now();
                    continue;
                }
                fsync_time += t.elapsed();
                fsyncs += 1;
                *durable.0.lock().expect("lock") = point;
                durable.1.notify_all();
            }
            (fsyncs, fsync_time)
        })
    };
    let batch = batch_of(size);
    group.throughput(Throughput::Bytes(batch.len() as u64));
    group.bench_function("64KiB_flush_messages_1", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let mut appending = Duration::ZERO;
            let mut in_flight = std::collections::VecDeque::new();
            for i in 0..iters {
                let t = Instant::now();
                let info = log.lock().expect("lock").append(&batch, OPTS).expect("append");
                appending += t.elapsed();
                in_flight.push_back(info.log_end_offset);
                if i % 1024 == 0 {
                    let mut l = log.lock().expect("lock");
                    let end = l.log_end_offset();
                    let retired = l.apply_retention(OPTS.now_ms, end).expect("retention");
                    drop(l);
                    retired.delete().expect("delete"); // outside the lock, as LogManager::maintain does
                }
                while in_flight.len() >= window || (i + 1 == iters && !in_flight.is_empty()) {
                    let wanted = in_flight.pop_front().expect("non-empty");
                    let mut point = durable.0.lock().expect("lock");
                    while *point < wanted {
                        point = durable.1.wait(point).expect("wait");
                    }
                }
            }
            let elapsed = start.elapsed();
            if iters > 1000 {
                eprintln!(
                    "  {iters} appends: {:.0}% of the time appending, {:.1} µs per append",
                    100.0 * appending.as_secs_f64() / elapsed.as_secs_f64(),
                    appending.as_secs_f64() * 1e6 / iters as f64
                );
            }
            elapsed
        })
    });
    group.finish();
    stop.store(true, Ordering::Relaxed);
    let (fsyncs, fsync_time) = flusher.join().expect("flusher");
    let end = log.lock().expect("lock").log_end_offset();
    eprintln!(
        "group commit: {fsyncs} fsyncs, mean {:?} each, {:.1} batches per fsync",
        fsync_time / fsyncs.max(1) as u32,
        end as f64 / (batch.len() as f64 / 1024.0) / fsyncs.max(1) as f64
    );
}

criterion_group!(benches, append, group_commit);
criterion_main!(benches);
