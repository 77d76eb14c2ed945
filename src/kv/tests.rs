//! The key-value view over real logs: appends of every codec, tombstones, incremental
//! catch-up, compaction, retention, truncation, and SCAN against a model.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;

use super::index::read_record;
use super::key_map::{Location, MAX_POSITION};
use super::KvIndex;
use crate::log::batch::tests::compress_batch;
use crate::log::batch::{self, BatchBuilder, Compression, TimestampType};
use crate::log::config::CleanupPolicy;
use crate::log::{cleaner, AppendInfo, AppendOptions, Log, LogConfig, LogReader, OpenState, TopicPartition};

const NOW: i64 = 1_700_000_000_000;

const CODECS: [Compression; 5] =
    [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

/// Property-test case count: `default`, or `PROPTEST_CASES` for a longer soak.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 200,
        cleanup_policy: CleanupPolicy { delete: false, compact: true },
        min_cleanable_dirty_ratio: 0.0,
        delete_retention_ms: 3_600_000,
        ..LogConfig::default()
    }
}

fn open(dir: &Path, config: LogConfig) -> Log {
    Log::open(dir, TopicPartition::new("kv", 0), Arc::new(config), OpenState::UNKNOWN, NOW).expect("open")
}

/// A batch of (key, value) records (`None` = tombstone) at `ts`, compressed with `codec`.
fn keyed(records: &[(&str, Option<&str>)], ts: i64, codec: Compression) -> Vec<u8> {
    let mut b = BatchBuilder::new();
    for (k, v) in records {
        b.record(ts, Some(k.as_bytes()), v.map(str::as_bytes), &[("h", b"x")]);
    }
    let plain = b.build();
    if codec == Compression::None {
        plain
    } else {
        compress_batch(&plain, codec)
    }
}

fn append(log: &mut Log, records: &[(&str, Option<&str>)], codec: Compression) -> AppendInfo {
    let batch = keyed(records, NOW, codec);
    log.append(&batch, AppendOptions { leader_epoch: Some(1), now_ms: NOW }).expect("append")
}

fn value(index: &KvIndex, reader: &LogReader, key: &str) -> Option<String> {
    index.get(reader, key.as_bytes()).map(|(v, _)| String::from_utf8(v.to_vec()).expect("utf-8"))
}

/// One compaction pass, if the log is dirty enough.
fn compact(log: &mut Log, now: i64) -> bool {
    log.roll(now).expect("roll");
    let Some(plan) = log.plan_cleaning(now) else { return false };
    let cleaned = cleaner::clean(&plan, now).expect("clean");
    log.install_cleaned(cleaned).expect("install");
    true
}

#[test]
fn later_values_win_tombstones_delete_and_keyless_records_are_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), config());
    append(&mut log, &[("a", Some("a1")), ("b", Some("b1")), ("c", Some("c1"))], Compression::None);
    append(&mut log, &[("a", Some("a2")), ("b", None), ("d", Some(""))], Compression::None);
    let mut keyless = BatchBuilder::new();
    keyless.record(NOW, None, Some(b"no key"), &[]);
    log.append(&keyless.build(), AppendOptions { leader_epoch: None, now_ms: NOW }).expect("append");
    let reader = log.reader();
    let mut index = KvIndex::new();
    assert_eq!(index.catch_up(&reader, log.log_end_offset()).expect("catch up"), 6);
    assert_eq!(index.next_offset(), Some(log.log_end_offset()));
    assert_eq!(index.len(), 3);
    assert_eq!(value(&index, &reader, "a").as_deref(), Some("a2"));
    assert_eq!(value(&index, &reader, "b"), None);
    assert!(!index.contains(b"b"));
    assert_eq!(value(&index, &reader, "c").as_deref(), Some("c1"));
    assert_eq!(value(&index, &reader, "d").as_deref(), Some(""), "an empty value is a value");
    assert!(index.contains(b"d"));
    assert_eq!(index.offset_of(b"a"), Some(3));
    let mut keys: Vec<&[u8]> = index.keys().collect();
    keys.sort_unstable();
    assert_eq!(keys, [&b"a"[..], b"c", b"d"]);
    // Caught up: nothing more to apply.
    assert_eq!(index.catch_up(&reader, log.log_end_offset()).expect("catch up"), 0);
}

#[test]
fn an_uncompressed_value_is_a_slice_of_the_segment_map_with_its_timestamp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), config());
    let mut b = BatchBuilder::new();
    b.record(NOW - 5, Some(b"k"), Some(b"first"), &[]);
    b.record(NOW + 7, Some(b"j"), Some(b"second"), &[]);
    log.append(&b.build(), AppendOptions { leader_epoch: None, now_ms: NOW }).expect("append");
    let reader = log.reader();
    let mut index = KvIndex::new();
    index.catch_up(&reader, log.log_end_offset()).expect("catch up");
    let segments = reader.segments_now();
    let (v, ts) = index.get_in(&segments, b"j").expect("j");
    assert!(matches!(v, super::index::Value::Mapped(_)));
    assert_eq!((&v[..], ts), (&b"second"[..], NOW + 7));
    let batch = reader.read(0, 1, i64::MAX, true).expect("read").records;
    let range = batch.as_ptr() as usize..batch.as_ptr() as usize + batch.len();
    assert!(range.contains(&(v.as_ptr() as usize)), "the value points into the mapped segment: not copied");
}

#[test]
fn log_append_time_batches_report_the_append_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig { message_timestamp_type: TimestampType::LogAppendTime, ..config() });
    let batch = keyed(&[("k", Some("v"))], NOW - 1_000, Compression::Lz4);
    log.append(&batch, AppendOptions { leader_epoch: None, now_ms: NOW }).expect("append");
    let mut index = KvIndex::new();
    index.catch_up(&log.reader(), log.log_end_offset()).expect("catch up");
    assert_eq!(index.get(&log.reader(), b"k").map(|(_, ts)| ts), Some(NOW));
}

#[test]
fn every_codec_is_indexed_and_read_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), config());
    for (round, codec) in CODECS.iter().enumerate() {
        let records: Vec<(String, Option<String>)> =
            (0..20).map(|k| (format!("k{k}"), (k != round).then(|| format!("{codec:?}-{k}")))).collect();
        let refs: Vec<(&str, Option<&str>)> = records.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect();
        append(&mut log, &refs, *codec);
    }
    let reader = log.reader();
    let mut index = KvIndex::new();
    assert_eq!(index.catch_up(&reader, log.log_end_offset()).expect("catch up"), 100);
    // The last round (zstd) wrote every key but k4, which it deleted.
    assert_eq!(index.len(), 19);
    for k in (0..20).filter(|&k| k != 4) {
        assert_eq!(value(&index, &reader, &format!("k{k}")), Some(format!("Zstd-{k}")), "k{k}");
    }
    assert_eq!(value(&index, &reader, "k4"), None);
}

#[test]
fn catch_up_is_incremental_and_never_passes_up_to() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), config());
    append(&mut log, &[("a", Some("1")), ("b", Some("1"))], Compression::None);
    let reader = log.reader();
    let mut index = KvIndex::new();
    assert_eq!(index.catch_up(&reader, 2).expect("catch up"), 2);
    append(&mut log, &[("a", Some("2")), ("b", None), ("c", Some("1"))], Compression::Gzip);
    // The high watermark is inside the new batch (offsets 2..=4): only offset 2 is visible.
    assert_eq!(index.catch_up(&reader, 3).expect("catch up"), 1);
    assert_eq!(index.next_offset(), Some(3));
    assert_eq!(value(&index, &reader, "a").as_deref(), Some("2"));
    assert_eq!(value(&index, &reader, "b").as_deref(), Some("1"));
    assert!(!index.contains(b"c"));
    // The rest of that batch, and not a record twice.
    assert_eq!(index.catch_up(&reader, i64::MAX).expect("catch up"), 2);
    assert_eq!(index.next_offset(), Some(5));
    assert!(!index.contains(b"b"));
    assert_eq!(value(&index, &reader, "c").as_deref(), Some("1"));
    assert_eq!(index.len(), 2);
}

/// 30 rounds over 10 keys with every codec; k3 deleted in the last round. Returns the
/// expected value of each key.
fn fill(log: &mut Log, rounds: usize) -> BTreeMap<String, String> {
    let mut expected = BTreeMap::new();
    for round in 0..rounds {
        let records: Vec<(String, Option<String>)> = (0..10)
            .map(|k| (format!("k{k}"), (round + 1 != rounds || k != 3).then(|| format!("v{round}-{k}"))))
            .collect();
        let refs: Vec<(&str, Option<&str>)> = records.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect();
        append(log, &refs, CODECS[round % CODECS.len()]);
        for (k, v) in records {
            match v {
                Some(v) => expected.insert(k, v),
                None => expected.remove(&k),
            };
        }
    }
    expected
}

fn assert_view(index: &KvIndex, reader: &LogReader, expected: &BTreeMap<String, String>) {
    assert_eq!(index.len(), expected.len());
    for (k, v) in expected {
        assert_eq!(value(index, reader, k).as_ref(), Some(v), "{k}");
    }
    let mut keys: Vec<String> = index.keys().map(|k| String::from_utf8(k.to_vec()).expect("utf-8")).collect();
    keys.sort();
    assert_eq!(keys, expected.keys().cloned().collect::<Vec<_>>());
}

#[test]
fn get_stays_right_after_compaction_and_a_rebuild_sees_the_same_view() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), config());
    let expected = fill(&mut log, 30);
    let reader = log.reader();
    let mut index = KvIndex::new();
    index.catch_up(&reader, log.log_end_offset()).expect("catch up");
    assert_view(&index, &reader, &expected);
    let size = reader.size();
    assert!(compact(&mut log, NOW), "dirty enough");
    assert!(reader.size() < size / 2, "the pass removed records: {size} -> {}", reader.size());
    assert_view(&index, &reader, &expected);
    let mut rebuilt = KvIndex::new();
    rebuilt.catch_up(&reader, log.log_end_offset()).expect("rebuild");
    assert_view(&rebuilt, &reader, &expected);
}

#[test]
fn a_view_behind_a_compaction_pass_catches_up_to_the_right_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig { delete_retention_ms: 0, ..config() });
    let first = fill(&mut log, 10);
    let reader = log.reader();
    let mut index = KvIndex::new();
    index.catch_up(&reader, log.log_end_offset()).expect("catch up");
    assert_view(&index, &reader, &first);
    // 20 more rounds the view has not seen; compaction removes most of them (and the
    // tombstone of k3 at once: delete.retention.ms = 0) before the view gets there.
    let expected = fill(&mut log, 20);
    assert!(compact(&mut log, NOW + 1));
    index.catch_up(&reader, log.log_end_offset()).expect("catch up");
    assert_view(&index, &reader, &expected);
}

#[test]
fn keys_below_a_moved_log_start_are_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), config());
    append(&mut log, &[("old", Some("1")), ("kept", Some("1"))], Compression::None);
    append(&mut log, &[("kept", Some("2")), ("new", Some("2"))], Compression::Snappy);
    let reader = log.reader();
    let mut index = KvIndex::new();
    index.catch_up(&reader, 2).expect("catch up");
    log.delete_records(2).expect("delete records");
    index.catch_up(&reader, log.log_end_offset()).expect("catch up");
    assert!(!index.contains(b"old"));
    assert_eq!(value(&index, &reader, "kept").as_deref(), Some("2"));
    assert_eq!(index.len(), 2);
    // A fresh view starts at the log start.
    let mut fresh = KvIndex::new();
    assert_eq!(fresh.catch_up(&reader, log.log_end_offset()).expect("catch up"), 2);
    assert!(!fresh.contains(b"old"));
}

#[test]
fn a_log_truncated_below_the_view_is_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), config());
    append(&mut log, &[("a", Some("1"))], Compression::None);
    append(&mut log, &[("a", Some("2")), ("b", Some("2"))], Compression::None);
    let reader = log.reader();
    let mut index = KvIndex::new();
    index.catch_up(&reader, log.log_end_offset()).expect("catch up");
    log.truncate_to(1, NOW).expect("truncate");
    index.catch_up(&reader, log.log_end_offset()).expect("catch up");
    assert_eq!(value(&index, &reader, "a").as_deref(), Some("1"));
    assert!(!index.contains(b"b"));
    assert_eq!(index.next_offset(), Some(1));
}

/// Keys returned by, or present throughout, a scan in progress.
type KeySet = BTreeSet<Vec<u8>>;

#[derive(Debug, Clone)]
enum Op {
    /// One batch of (key, value or tombstone), with a codec.
    Append(Vec<(u8, Option<u8>)>, usize),
    /// A compaction pass (tombstones expire at once).
    Compact,
    /// One SCAN call with this COUNT, after catching up.
    Scan(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let record = (0u8..24, proptest::option::weighted(0.8, any::<u8>()));
    prop_oneof![
        6 => (proptest::collection::vec(record, 1..8), 0..CODECS.len()).prop_map(|(r, c)| Op::Append(r, c)),
        1 => Just(Op::Compact),
        3 => (1usize..6).prop_map(Op::Scan),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(32)))]

    /// The view against a map, through appends of every codec, compaction passes and SCANs
    /// interleaved with writes: every key present throughout a scan is returned exactly once.
    #[test]
    fn the_view_matches_a_model_and_scan_keeps_its_guarantee(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), LogConfig { delete_retention_ms: 0, ..config() });
        let reader = log.reader();
        let mut index = KvIndex::new();
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut scan: Option<(u64, KeySet, KeySet)> = None;
        let mut now = NOW;
        for op in ops {
            match op {
                Op::Append(records, codec) => {
                    let mut b = BatchBuilder::new();
                    for (k, v) in &records {
                        let key = format!("key-{k}").into_bytes();
                        let value = v.map(|v| vec![v; usize::from(v % 50)]);
                        b.record(now, Some(&key), value.as_deref(), &[]);
                        match value {
                            Some(value) => { model.insert(key, value); }
                            None => {
                                model.remove(&key);
                                if let Some((_, _, throughout)) = &mut scan {
                                    throughout.remove(&key);
                                }
                            }
                        }
                    }
                    let batch = match CODECS[codec] {
                        Compression::None => b.build(),
                        codec => compress_batch(&b.build(), codec),
                    };
                    log.append(&batch, AppendOptions { leader_epoch: Some(1), now_ms: now }).expect("append");
                }
                Op::Compact => {
                    now += 1;
                    compact(&mut log, now);
                }
                Op::Scan(count) => {
                    index.catch_up(&reader, log.log_end_offset()).expect("catch up");
                    let (cursor, mut returned, throughout) = scan.take().unwrap_or_else(|| {
                        (0, BTreeSet::new(), model.keys().cloned().collect())
                    });
                    let (next, keys) = index.scan(cursor, count, |_| true);
                    for k in keys {
                        prop_assert!(returned.insert(k.to_vec()), "returned twice");
                    }
                    if next == 0 {
                        let missed: Vec<_> = throughout.difference(&returned).collect();
                        prop_assert!(missed.is_empty(), "present throughout, not returned: {:?}", missed);
                    } else {
                        scan = Some((next, returned, throughout));
                    }
                }
            }
            index.catch_up(&reader, log.log_end_offset()).expect("catch up");
            prop_assert_eq!(index.len(), model.len());
        }
        for (k, v) in &model {
            let got = index.get(&reader, k).map(|(v, _)| v.to_vec());
            prop_assert_eq!(got.as_ref(), Some(v));
        }
        let mut rebuilt = KvIndex::new();
        rebuilt.catch_up(&reader, log.log_end_offset()).expect("rebuild");
        prop_assert_eq!(rebuilt.len(), model.len());
    }
}

#[test]
fn a_wrong_or_missing_position_hint_falls_back_to_walking_the_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), config());
    append(&mut log, &[("a", Some("1")), ("b", Some("22")), ("c", Some("333"))], Compression::None);
    append(&mut log, &[("d", Some("4")), ("e", Some("55"))], Compression::Zstd);
    let reader = log.reader();
    let read = |key: &str, offset: i64, position: Option<u32>| {
        read_record(&reader.segments_now(), key.as_bytes(), Location { offset, position }).map(|(v, _)| v.to_vec())
    };
    for (key, offset, value) in [("b", 1, &b"22"[..]), ("c", 2, b"333"), ("e", 4, b"55")] {
        for position in [None, Some(0), Some(1), Some(7), Some(MAX_POSITION - 1)] {
            assert_eq!(read(key, offset, position).as_deref(), Some(value), "{key} at {position:?}");
        }
    }
    assert_eq!(read("b", 2, Some(0)), None, "the record at the offset has another key");
    assert_eq!(read("b", 9, None), None, "no such offset");
}

#[test]
fn a_stale_position_in_a_compacted_batch_is_not_trusted() {
    // Batch 1 holds x, t = "real", and y whose value carries the bytes of a record at t's
    // offset with key t and value "fake". Once compaction removes x, the records after it
    // move up, and the position remembered for t lands exactly on the fake record.
    let ts = NOW;
    let mut inner = BatchBuilder::new();
    inner.record(ts, Some(b"pad"), Some(b""), &[]).record(ts, Some(b"t"), Some(b"fake"), &[]);
    let inner = inner.build();
    let positions = |b: &[u8]| -> Vec<usize> {
        let header = batch::BatchHeader::parse(b).expect("header");
        let mut it = batch::records_in(&b[batch::HEADER_SIZE..], &header);
        let mut out = vec![it.position()];
        while it.next().is_some() {
            out.push(it.position());
        }
        out
    };
    let fake = &inner[batch::HEADER_SIZE + positions(&inner)[1]..];
    let armed = (0..400)
        .map(|pad| {
            let mut b = BatchBuilder::new();
            b.record(ts, Some(b"x"), Some(&vec![b'p'; pad]), &[]);
            b.record(ts, Some(b"t"), Some(b"real"), &[]);
            b.record(ts, Some(b"y"), Some(fake), &[]);
            b.build()
        })
        .find(|b| {
            let p = positions(b);
            let section = &b[batch::HEADER_SIZE..];
            let fake_at = section.windows(fake.len()).rposition(|w| w == fake).expect("fake inside y");
            // After x goes, t starts at 0 and y at p[2] - p[1]: the fake record then sits
            // at fake_at - p[1], which must equal t's old position p[1].
            fake_at - p[1] == p[1]
        })
        .expect("a padding that aims the stale position at the fake record");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), config());
    log.append(&armed, AppendOptions { leader_epoch: Some(1), now_ms: ts }).expect("append");
    append(&mut log, &[("x", Some("newer"))], Compression::None);
    let reader = log.reader();
    let mut index = KvIndex::new();
    index.catch_up(&reader, log.log_end_offset()).expect("catch up");
    assert_eq!(value(&index, &reader, "t").as_deref(), Some("real"));
    assert!(compact(&mut log, NOW));
    // The trap is set: at t's old position the compacted batch now holds the fake record.
    let compacted = reader.read(0, 1, i64::MAX, true).expect("read").records;
    let header = batch::BatchHeader::parse(&compacted).expect("header");
    assert_eq!(header.records_count, 2, "x was removed");
    let old_position = positions(&armed)[1];
    let section = &compacted[batch::HEADER_SIZE..header.size()];
    let trap = batch::records_in(&section[old_position..], &header).next().expect("a record parses there");
    assert_eq!((trap.offset, trap.key, trap.value), (1, Some(&b"t"[..]), Some(&b"fake"[..])));
    assert_eq!(value(&index, &reader, "t").as_deref(), Some("real"), "the stale position is not trusted");
}
