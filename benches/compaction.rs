//! Compaction throughput: one cleaner pass over a dirty log on one core, reported as MB/s of
//! log read. `cargo bench --bench compaction` (size: `WEIR_COMPACTION_MB`, default 256;
//! uncompressed batches).

use std::sync::Arc;
use std::time::Instant;

use weir::log::batch::BatchBuilder;
use weir::log::config::CleanupPolicy;
use weir::log::{cleaner, AppendOptions, Log, LogConfig, OpenState, TopicPartition};

fn main() {
    let mb: usize = std::env::var("WEIR_COMPACTION_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let config = LogConfig {
        segment_bytes: 64 << 20,
        cleanup_policy: CleanupPolicy { delete: false, compact: true },
        ..LogConfig::default()
    };
    let now = 1_700_000_000_000;
    let mut log = Log::open(dir.path(), TopicPartition::new("bench", 0), Arc::new(config), OpenState::UNKNOWN, now)
        .expect("open");
    // 1 KiB values over 20,000 keys, 100 records per batch: most records are superseded.
    let value = vec![b'x'; 1000];
    let keys = 20_000;
    let batches = mb * 1024 * 1024 / (100 * 1024);
    let mut n = 0usize;
    for _ in 0..batches {
        let mut b = BatchBuilder::new();
        for _ in 0..100 {
            b.record(now, Some(format!("key-{:06}", n % keys).as_bytes()), Some(&value), &[]);
            n += 1;
        }
        log.append(&b.build(), AppendOptions { leader_epoch: Some(0), now_ms: now }).expect("append");
    }
    log.roll(now).expect("roll");
    let size = log.reader().size();
    let plan = log.plan_cleaning(now).expect("dirty");
    let start = Instant::now();
    let cleaned = cleaner::clean(&plan, now).expect("clean");
    let stats = log.install_cleaned(cleaned).expect("install");
    let secs = start.elapsed().as_secs_f64();
    println!(
        "compaction  {:.0} MB read in {secs:.2} s: {:.0} MB/s on one thread; {} records removed, {:.1} MB written ({} -> {} bytes of log)",
        stats.bytes_read as f64 / 1e6,
        stats.bytes_read as f64 / 1e6 / secs,
        stats.records_removed,
        stats.bytes_written as f64 / 1e6,
        size,
        log.reader().size()
    );
}
