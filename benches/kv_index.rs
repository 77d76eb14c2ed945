//! The key-value view of a compacted topic: rebuilding it from the log (what a restart does),
//! its memory per key, GET latency, tailing updates and a full SCAN.
//!
//! `cargo bench --bench kv_index` (keys: `WEIR_KV_KEYS`, default 1,000,000). The log holds one
//! record per key, uncompressed batches of 100 records, 100-byte values, 13-byte keys.
//!
//! Memory is counted by a global allocator that wraps the system allocator and keeps a running
//! total of the bytes requested: the index's bytes are the growth of that total across a
//! rebuild (the log's bytes live in page-cache maps, not the heap). "Overhead" is everything
//! the index allocated beyond the key bytes themselves.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use weir::kv::KvIndex;
use weir::log::batch::BatchBuilder;
use weir::log::config::CleanupPolicy;
use weir::log::{AppendOptions, Log, LogConfig, OpenState, TopicPartition};

/// Bytes currently allocated through the global allocator.
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

struct Counting;

// SAFETY: every call is forwarded to `System` with the caller's arguments and guarantees
// unchanged; the only addition is a relaxed counter update, which cannot affect the memory
// returned.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// xorshift: deterministic pseudo-random picks without a dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Anonymous resident memory of this process (Linux `RssAnon`), in bytes: a cross-check of
/// the allocator's count that includes the allocator's own headers and rounding.
fn rss_anon() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn key(i: usize) -> String {
    format!("user:{i:08}")
}

fn main() {
    let keys: usize = std::env::var("WEIR_KV_KEYS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let config = LogConfig {
        segment_bytes: 64 << 20,
        cleanup_policy: CleanupPolicy { delete: false, compact: true },
        ..LogConfig::default()
    };
    let now = 1_700_000_000_000;
    let mut log =
        Log::open(dir.path(), TopicPartition::new("kv", 0), Arc::new(config), OpenState::UNKNOWN, now).expect("open");
    let value = [b'v'; 100];
    for first in (0..keys).step_by(100) {
        let mut b = BatchBuilder::new();
        for i in first..(first + 100).min(keys) {
            b.record(now, Some(key(i).as_bytes()), Some(&value), &[]);
        }
        log.append(&b.build(), AppendOptions { leader_epoch: Some(0), now_ms: now }).expect("append");
    }
    let reader = log.reader();
    let end = log.log_end_offset();
    let key_bytes: usize = (0..keys).map(|i| key(i).len()).sum();
    println!(
        "kv_index  log: {keys} keys in {} batches of 100, {:.1} MB in {} segments",
        keys.div_ceil(100),
        reader.size() as f64 / 1e6,
        reader.segment_count()
    );

    // Rebuild: the first run reads maps not yet touched by this process (page faults on
    // page-cache pages, as after a restart with a warm cache); later runs are warm.
    let mut index = KvIndex::new();
    for run in 1..=3 {
        drop(index);
        let before = ALLOCATED.load(Ordering::Relaxed);
        let rss_before = rss_anon();
        let start = Instant::now();
        index = KvIndex::new();
        let applied = index.catch_up(&reader, end).expect("catch up");
        let secs = start.elapsed().as_secs_f64();
        let bytes = ALLOCATED.load(Ordering::Relaxed) - before;
        assert_eq!((applied, index.len()), (keys, keys));
        if let (1, Some(b), Some(a)) = (run, rss_before, rss_anon()) {
            let grown = a.saturating_sub(b);
            println!(
                "kv_index  rebuild run 1: RssAnon grew {:.1} MB = {:.1} bytes/key",
                grown as f64 / 1e6,
                grown as f64 / keys as f64
            );
        }
        println!(
            "kv_index  rebuild run {run}: {:.3} s, {:.2} M keys/s; index {:.1} MB = {:.1} bytes/key \
             ({:.1} key bytes + {:.1} overhead)",
            secs,
            keys as f64 / secs / 1e6,
            bytes as f64 / 1e6,
            bytes as f64 / keys as f64,
            key_bytes as f64 / keys as f64,
            (bytes - key_bytes) as f64 / keys as f64,
        );
    }

    // GET of random present keys: index lookup, log read, value slice (zero-copy).
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let picks: Vec<Vec<u8>> = (0..100_000).map(|_| key(next(&mut state) as usize % keys).into_bytes()).collect();
    let rounds = 10;
    let start = Instant::now();
    let mut total = 0usize;
    for _ in 0..rounds {
        for k in &picks {
            total += index.get(&reader, k).expect("present").0.len();
        }
    }
    let get_ns = start.elapsed().as_nanos() as f64 / (rounds * picks.len()) as f64;
    assert_eq!(total, rounds * picks.len() * value.len());
    // As the RESP port's pipelined GETs read: one segments snapshot for many lookups, the
    // value borrowed from the map.
    let segments = reader.segments_now();
    let start = Instant::now();
    let mut total = 0usize;
    for _ in 0..rounds {
        for k in &picks {
            total += index.get_in(&segments, k).expect("present").0.len();
        }
    }
    let get_in_ns = start.elapsed().as_nanos() as f64 / (rounds * picks.len()) as f64;
    assert_eq!(total, rounds * picks.len() * value.len());
    let start = Instant::now();
    let mut found = 0usize;
    for _ in 0..rounds {
        for k in &picks {
            found += usize::from(index.contains(k));
        }
    }
    let contains_ns = start.elapsed().as_nanos() as f64 / (rounds * picks.len()) as f64;
    assert_eq!(found, rounds * picks.len());
    // For reference: the log read alone (segment lookup, offset index, one batch slice).
    let offsets: Vec<i64> = picks.iter().map(|k| index.offset_of(k).expect("present")).collect();
    let start = Instant::now();
    for _ in 0..rounds {
        for &o in &offsets {
            assert!(!reader.read(o, 1, i64::MAX, true).expect("read").records.is_empty());
        }
    }
    let read_ns = start.elapsed().as_nanos() as f64 / (rounds * picks.len()) as f64;
    let misses: Vec<Vec<u8>> = (0..100_000).map(|i| format!("nobody:{i:08}").into_bytes()).collect();
    let start = Instant::now();
    for k in &misses {
        assert!(index.get(&reader, k).is_none());
    }
    let miss_ns = start.elapsed().as_nanos() as f64 / misses.len() as f64;
    println!(
        "kv_index  GET hit {get_ns:.0} ns (value copied out; {get_in_ns:.0} ns borrowed from one segments \
         snapshot; the log read alone {read_ns:.0} ns), EXISTS {contains_ns:.0} ns, GET miss {miss_ns:.0} ns"
    );

    // Tailing: 100,000 updates of random existing keys, applied by one catch_up.
    for _ in 0..1_000 {
        let mut b = BatchBuilder::new();
        for _ in 0..100 {
            b.record(now, Some(key(next(&mut state) as usize % keys).as_bytes()), Some(&value), &[]);
        }
        log.append(&b.build(), AppendOptions { leader_epoch: Some(0), now_ms: now }).expect("append");
    }
    let start = Instant::now();
    let applied = index.catch_up(&reader, log.log_end_offset()).expect("catch up");
    let secs = start.elapsed().as_secs_f64();
    println!(
        "kv_index  tailing: {applied} updates applied in {:.3} s, {:.2} M records/s",
        secs,
        applied as f64 / secs / 1e6
    );

    // A full SCAN with COUNT 100.
    let start = Instant::now();
    let (mut cursor, mut seen, mut calls) = (0, 0usize, 0usize);
    loop {
        let (next_cursor, keys) = index.scan(cursor, 100, |_| true);
        seen += keys.len();
        calls += 1;
        cursor = next_cursor;
        if cursor == 0 {
            break;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(seen, keys);
    println!(
        "kv_index  SCAN COUNT 100: {seen} keys in {calls} calls, {:.3} s ({:.0} ns/key)",
        secs,
        secs * 1e9 / seen as f64
    );
}
