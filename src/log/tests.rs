//! Tests of the whole log: append/read, roll, truncation, retention, reopen, and the log
//! against an in-memory model.

use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;

use super::batch::tests::make_batch;
use super::batch::BatchHeader;
use super::recovery::scan_segment;
use super::segment::{segment_path, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use super::*;

/// Property-test case count: `default`, or `PROPTEST_CASES` for a longer soak.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

fn small_config() -> LogConfig {
    LogConfig { segment_bytes: 1024, index_interval_bytes: 100, ..LogConfig::default() }
}

fn open(dir: &Path, config: LogConfig, state: OpenState) -> Log {
    Log::open(dir, tp(), Arc::new(config), state, 1_000).expect("open log")
}

fn opts(now_ms: i64) -> AppendOptions {
    AppendOptions { leader_epoch: Some(3), now_ms }
}

/// Appends a batch of `n` records of `size` bytes each with timestamps from `ts`.
fn append(log: &mut Log, n: usize, size: usize, ts: i64) -> AppendInfo {
    let value = vec![b'v'; size];
    let values: Vec<&[u8]> = (0..n).map(|_| value.as_slice()).collect();
    let b = make_batch(&values, ts);
    log.append(&b, opts(ts)).expect("append")
}

/// The bytes the log stores for `batch` appended with [`opts`]: the header patched with the
/// assigned base offset and the leader epoch.
fn as_stored(batch: &[u8], info: &AppendInfo) -> Vec<u8> {
    let patch =
        batch::HeaderPatch { base_offset: info.base_offset, partition_leader_epoch: Some(3), log_append_time: None };
    [&batch::patched_header(batch, patch)[..], &batch[batch::HEADER_SIZE..]].concat()
}

fn batches(records: &[u8]) -> Vec<BatchHeader> {
    batch::HeaderIter::new(records, 0).map(|b| b.header).collect()
}

fn read_all(reader: &LogReader) -> Vec<BatchHeader> {
    let mut out = Vec::new();
    let mut offset = reader.log_start_offset();
    loop {
        let r = reader.read(offset, usize::MAX, i64::MAX, true).expect("read");
        if r.records.is_empty() {
            if offset >= reader.log_end_offset() {
                return out;
            }
            panic!("no data at {offset} below the log end offset {}", reader.log_end_offset());
        }
        let hs = batches(&r.records);
        offset = r.next_offset;
        out.extend(hs);
    }
}

#[test]
fn appends_assign_contiguous_offsets_and_stamp_the_leader_epoch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default(), OpenState::UNKNOWN);
    assert_eq!(append(&mut log, 3, 10, 100).base_offset, 0);
    let info = append(&mut log, 2, 10, 200);
    assert_eq!((info.base_offset, info.last_offset, info.log_end_offset), (3, 4, 5));
    let all = read_all(&log.reader());
    assert_eq!(all.iter().map(|h| (h.base_offset, h.records_count)).collect::<Vec<_>>(), vec![(0, 3), (3, 2)]);
    assert!(all.iter().all(|h| h.partition_leader_epoch == 3));
}

#[test]
fn a_read_inside_a_batch_returns_the_whole_containing_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default(), OpenState::UNKNOWN);
    append(&mut log, 5, 10, 100);
    append(&mut log, 5, 10, 100);
    let r = log.reader().read(7, usize::MAX, i64::MAX, true).expect("read");
    assert_eq!(batches(&r.records)[0].base_offset, 5);
    assert_eq!(r.next_offset, 10);
}

/// A consumer at the tail is served from the segment's tail hint; every offset of the last
/// batch, and of earlier batches, still finds its containing batch, also after truncation.
#[test]
fn reads_at_the_tail_find_the_batch_containing_each_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config(), OpenState::UNKNOWN);
    let base_of = |log: &Log, offset: i64| {
        let r = log.reader().read(offset, usize::MAX, i64::MAX, false).expect("read");
        batches(&r.records).first().map(|h| h.base_offset)
    };
    for round in 0..12 {
        let info = append(&mut log, 3, 20, 100 + round);
        for offset in info.base_offset..=info.last_offset {
            assert_eq!(base_of(&log, offset), Some(info.base_offset), "offset {offset}");
        }
        assert_eq!(base_of(&log, info.log_end_offset), None);
    }
    for offset in 0..36 {
        assert_eq!(base_of(&log, offset), Some(offset / 3 * 3), "offset {offset}");
    }
    log.truncate_to(31, 1).expect("truncate inside a batch");
    assert_eq!(log.log_end_offset(), 30);
    assert_eq!(base_of(&log, 29), Some(27));
    let info = append(&mut log, 2, 20, 200);
    assert_eq!((info.base_offset, base_of(&log, 31)), (30, Some(30)));
}

#[test]
fn max_bytes_limits_whole_batches_but_min_one_returns_an_oversized_first_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default(), OpenState::UNKNOWN);
    for _ in 0..4 {
        append(&mut log, 1, 100, 100);
    }
    let size = batches(&log.reader().read(0, usize::MAX, i64::MAX, true).expect("read").records)[0].size();
    let r = log.reader().read(0, size * 2 + 10, i64::MAX, false).expect("read");
    assert_eq!(batches(&r.records).len(), 2);
    assert!(log.reader().read(0, 10, i64::MAX, false).expect("read").records.is_empty());
    assert_eq!(batches(&log.reader().read(0, 10, i64::MAX, true).expect("read").records).len(), 1);
    let r = log.reader().read(0, usize::MAX, 2, true).expect("read up to a high watermark");
    assert_eq!(batches(&r.records).len(), 2);
}

#[test]
fn reads_outside_the_log_are_out_of_range_and_at_the_end_are_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default(), OpenState::UNKNOWN);
    append(&mut log, 2, 10, 100);
    assert!(matches!(log.reader().read(3, 100, i64::MAX, true), Err(Error::OffsetOutOfRange { .. })));
    assert!(log.reader().read(2, 100, i64::MAX, true).expect("at end").records.is_empty());
    log.delete_records(1).expect("delete records");
    assert!(matches!(log.reader().read(0, 100, i64::MAX, true), Err(Error::OffsetOutOfRange { .. })));
}

#[test]
fn the_log_rolls_at_segment_bytes_and_reads_across_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config(), OpenState::UNKNOWN);
    for i in 0..30 {
        append(&mut log, 2, 50, 100 + i);
    }
    assert!(log.reader().segment_count() > 3, "{} segments", log.reader().segment_count());
    let all = read_all(&log.reader());
    assert_eq!(all.len(), 30);
    assert!(all.windows(2).all(|w| w[1].base_offset == w[0].next_offset()));
    for s in log.segment_facts() {
        assert!(s.size <= 1024);
    }
}

#[test]
fn the_log_rolls_when_segment_ms_has_passed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig { segment_ms: 1_000, ..LogConfig::default() }, OpenState::UNKNOWN);
    append(&mut log, 1, 10, 5_000);
    append(&mut log, 1, 10, 5_500);
    assert_eq!(log.reader().segment_count(), 1);
    append(&mut log, 1, 10, 6_001);
    assert_eq!(log.reader().segment_count(), 2);
}

#[test]
fn oversized_and_corrupt_batches_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig { max_message_bytes: 200, ..small_config() }, OpenState::UNKNOWN);
    let big = make_batch(&[&[0u8; 300]], 1);
    assert!(matches!(log.append(&big, opts(1)), Err(Error::BatchTooLarge { setting: "max.message.bytes", .. })));
    let mut bad = make_batch(&[b"x"], 1);
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(log.append(&bad, opts(1)), Err(Error::InvalidBatch(InvalidBatch::CrcMismatch { .. }))));
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn log_append_time_is_stamped_when_configured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig { message_timestamp_type: TimestampType::LogAppendTime, ..LogConfig::default() };
    let mut log = open(dir.path(), config, OpenState::UNKNOWN);
    let info = append(&mut log, 2, 10, 123);
    assert_eq!(info.log_append_time, Some(123));
    let h = read_all(&log.reader())[0];
    assert_eq!((h.timestamp_type(), h.max_timestamp), (TimestampType::LogAppendTime, 123));
}

#[test]
fn offsets_are_found_by_timestamp_across_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config(), OpenState::UNKNOWN);
    for i in 0..40 {
        append(&mut log, 2, 50, 1_000 + i * 10); // records at ts, ts+1
    }
    let r = log.reader();
    assert_eq!(r.offset_for_timestamp(0), Some((0, 1_000)));
    assert_eq!(r.offset_for_timestamp(1_001), Some((1, 1_001)));
    assert_eq!(r.offset_for_timestamp(1_002), Some((2, 1_010)));
    assert_eq!(r.offset_for_timestamp(1_255), Some((52, 1_260)));
    assert_eq!(r.offset_for_timestamp(1_391), Some((79, 1_391)));
    assert_eq!(r.offset_for_timestamp(1_392), None);
    assert_eq!(r.max_timestamp_offset(), Some((1_391, 79)));
}

#[test]
fn truncating_past_the_end_does_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config(), OpenState::UNKNOWN);
    append(&mut log, 2, 10, 1);
    log.truncate_to(2, 1).expect("truncate");
    log.truncate_to(10, 1).expect("truncate");
    assert_eq!(log.log_end_offset(), 2);
}

#[test]
fn truncating_inside_the_active_segment_drops_the_suffix_and_appends_continue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default(), OpenState::UNKNOWN);
    for _ in 0..5 {
        append(&mut log, 2, 10, 1);
    }
    log.truncate_to(6, 1).expect("truncate at a batch boundary");
    assert_eq!(log.log_end_offset(), 6);
    log.truncate_to(3, 1).expect("truncate inside a batch removes the whole batch");
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(append(&mut log, 1, 10, 1).base_offset, 2);
    assert_eq!(read_all(&log.reader()).len(), 2);
}

#[test]
fn truncating_into_a_sealed_segment_deletes_later_segments_and_reactivates_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config(), OpenState::UNKNOWN);
    for i in 0..30 {
        append(&mut log, 2, 50, 10 + i);
    }
    let facts = log.segment_facts();
    let target = facts[1].base_offset + 2;
    log.truncate_to(target, 1).expect("truncate");
    assert_eq!(log.log_end_offset(), target);
    assert_eq!(log.reader().segment_count(), 2);
    assert!(!segment_path(log.dir(), facts[2].base_offset, LOG_SUFFIX).exists());
    for i in 0..10 {
        append(&mut log, 2, 50, 100 + i);
    }
    let all = read_all(&log.reader());
    assert!(all.windows(2).all(|w| w[1].base_offset == w[0].next_offset()));
    assert_eq!(all.last().map(|h| h.next_offset()), Some(log.log_end_offset()));
}

#[test]
fn truncating_to_a_segment_base_empties_that_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config(), OpenState::UNKNOWN);
    for i in 0..30 {
        append(&mut log, 2, 50, 10 + i);
    }
    let base = log.segment_facts()[2].base_offset;
    log.truncate_to(base, 1).expect("truncate");
    assert_eq!(log.log_end_offset(), base);
    assert_eq!(append(&mut log, 1, 1, 1).base_offset, base);
}

#[test]
fn truncating_below_the_log_start_empties_the_log_and_restarts_it_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config(), OpenState::UNKNOWN);
    for i in 0..30 {
        append(&mut log, 2, 50, 10 + i);
    }
    log.delete_records(20).expect("delete records");
    log.truncate_to(10, 1).expect("truncate");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (10, 10));
    assert_eq!(log.reader().segment_count(), 1);
    assert_eq!(append(&mut log, 1, 1, 1).base_offset, 10);
}

#[test]
fn retention_deletes_expired_segments_and_advances_the_log_start_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig { retention_ms: Some(1_000), ..small_config() }, OpenState::UNKNOWN);
    for i in 0..30 {
        append(&mut log, 2, 50, 10_000 + i * 100);
    }
    let before = log.reader().segment_count();
    let retired = log.apply_retention(12_000, log.log_end_offset()).expect("retention");
    let reason = retired.reason;
    let n = retired.delete().expect("delete retired segments");
    assert_eq!(reason, Some(retention::RetentionReason::Time));
    assert!(n > 0 && n < before);
    let first = log.segment_facts()[0].base_offset;
    assert_eq!(log.log_start_offset(), first);
    assert!(read_all(&log.reader()).iter().all(|h| h.max_timestamp >= 11_000 - 200));
    // Everything expired: the active segment goes too and the log stays appendable.
    log.apply_retention(100_000, log.log_end_offset()).expect("retention").delete().expect("delete");
    assert_eq!(log.log_start_offset(), log.log_end_offset());
    assert_eq!(append(&mut log, 1, 1, 100_000).base_offset, 60);
}

#[test]
fn retention_leaves_a_single_unexpired_segment_alone() {
    // Regression: with no sealed segments, the active segment's end was taken as its base
    // offset, so every retention pass deleted the whole log "below the log start offset".
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default(), OpenState::UNKNOWN);
    append(&mut log, 3, 10, 1_000);
    let facts = log.segment_facts();
    assert_eq!((facts.len(), facts[0].end_offset), (1, 3));
    let retired = log.apply_retention(2_000, log.log_end_offset()).expect("retention");
    assert_eq!(retired.count(), 0);
    assert_eq!(log.log_start_offset(), 0);
}

#[test]
fn retired_segments_not_yet_deleted_when_the_process_dies_are_deleted_on_the_next_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig { retention_ms: None, ..small_config() }, OpenState::UNKNOWN);
    for i in 0..30 {
        append(&mut log, 2, 50, 10 + i);
    }
    let second = log.segment_facts()[1].base_offset;
    log.delete_records(second).expect("delete records");
    let retired = log.apply_retention(0, log.log_end_offset()).expect("retention");
    assert_eq!(retired.count(), 1);
    assert_eq!(log.log_start_offset(), second);
    let first_file = segment_path(log.dir(), 0, LOG_SUFFIX);
    assert!(first_file.exists(), "files go only when Retired::delete runs");
    drop(retired);
    drop(log); // crash: no delete, no clean shutdown
    let state = OpenState { clean_shutdown: false, recovery_point: 0, log_start_offset: second, cleaner_offset: 0 };
    let log = open(dir.path(), small_config(), state);
    assert!(!first_file.exists());
    assert_eq!(log.log_start_offset(), second);
    assert_eq!(log.reader().read(second, 1, i64::MAX, true).expect("read").next_offset, second + 2);
}

#[test]
fn delete_records_then_retention_removes_whole_segments_below_the_new_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig { retention_ms: None, ..small_config() }, OpenState::UNKNOWN);
    for i in 0..30 {
        append(&mut log, 2, 50, 10 + i);
    }
    let third = log.segment_facts()[2].base_offset;
    assert_eq!(log.delete_records(third + 1).expect("delete"), third + 1);
    assert_eq!(log.delete_records(1).expect("never moves back"), third + 1);
    assert!(log.delete_records(1_000).is_err());
    let n = log.apply_retention(0, log.log_end_offset()).expect("retention").delete().expect("delete");
    assert_eq!(n, 2);
    let r = log.reader().read(third + 1, usize::MAX, i64::MAX, true).expect("read");
    assert_eq!(batches(&r.records)[0].base_offset, third);
}

#[test]
fn a_clean_reopen_restores_everything_without_a_rebuild() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config(), OpenState::UNKNOWN);
    for i in 0..30 {
        append(&mut log, 2, 50, 10 + i);
    }
    let before = read_all(&log.reader());
    let index_before = std::fs::read(segment_path(log.dir(), 0, INDEX_SUFFIX)).expect("index");
    let leo = log.log_end_offset();
    log.close().expect("close");
    let state = OpenState { clean_shutdown: true, recovery_point: leo, log_start_offset: 0, cleaner_offset: 0 };
    let mut log = open(dir.path(), small_config(), state);
    assert_eq!(read_all(&log.reader()), before);
    assert_eq!(std::fs::read(segment_path(log.dir(), 0, INDEX_SUFFIX)).expect("index"), index_before);
    assert_eq!(append(&mut log, 1, 1, 1).base_offset, leo);
}

#[test]
fn flush_advances_the_recovery_point_and_flush_due_follows_flush_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig { flush_messages: Some(3), ..LogConfig::default() }, OpenState::UNKNOWN);
    append(&mut log, 2, 10, 1);
    assert!(!log.flush_due(1));
    append(&mut log, 1, 10, 1);
    assert!(log.flush_due(1));
    let flusher = log.flusher();
    assert_eq!(flusher.flush().expect("flush without the writer"), 3);
    assert!(!log.flush_due(1));
    append(&mut log, 1, 10, 1);
    assert_eq!(log.recovery_point(), 3);
    assert_eq!(log.flush().expect("flush"), 4);
}

#[test]
fn flushes_run_concurrently_with_appends_and_never_pass_the_end_after_truncation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = std::sync::Mutex::new(open(dir.path(), small_config(), OpenState::UNKNOWN));
    let flusher = log.lock().expect("lock").flusher();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                flusher.flush().expect("flush");
            }
        });
        for i in 0..2_000 {
            let mut l = log.lock().expect("lock");
            append(&mut l, 1, 30, i);
            if i % 300 == 299 {
                let end = l.log_end_offset();
                l.truncate_to(end - 50, i).expect("truncate");
            }
            let (point, end) = (l.recovery_point(), l.log_end_offset());
            assert!(point <= end, "recovery point {point} past the end {end}");
        }
        done.store(true, std::sync::atomic::Ordering::Release);
    });
    let mut l = log.into_inner().expect("lock");
    assert!(l.recovery_point() <= l.log_end_offset());
    assert_eq!(l.flush().expect("flush"), l.log_end_offset());
}

#[test]
fn a_failed_fsync_takes_the_log_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default(), OpenState::UNKNOWN);
    append(&mut log, 1, 10, 1);
    // The path a failed fdatasync takes in LogFlusher::flush.
    let failure = Error::io("fsync segment", "/x", std::io::Error::from_raw_os_error(libc::EIO));
    assert!(log.poison(failure).is_storage_error());
    assert!(log.offline_cause().is_some_and(|c| c.contains("fsync segment")));
    let b = make_batch(&[b"x"], 1);
    assert!(matches!(log.append(&b, opts(1)), Err(Error::Offline { .. })));
    assert!(matches!(log.flush(), Err(Error::Offline { .. })));
    assert_eq!(log.reader().read(0, 100, i64::MAX, true).expect("reads still work").next_offset, 1);
}

// ---- The log against an in-memory model ----

#[derive(Debug, Clone)]
enum Op {
    Append { records: usize, size: usize },
    Read { at: usize },
    Truncate { at: usize },
    Reopen { clean: bool },
    Roll,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..5, 0usize..200).prop_map(|(records, size)| Op::Append { records, size }),
        2 => (0usize..1000).prop_map(|at| Op::Read { at }),
        1 => (0usize..1000).prop_map(|at| Op::Truncate { at }),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
        1 => Just(Op::Roll),
    ]
}

/// The model: every batch's bytes (with base offset assigned), in order.
fn check_against_model(reader: &LogReader, model: &[(i64, Vec<u8>)]) {
    let next =
        model.last().map_or(0, |(o, b)| o + i64::from(BatchHeader::parse(b).expect("hdr").last_offset_delta) + 1);
    assert_eq!(reader.log_end_offset(), next);
    let mut stored = Vec::new();
    let mut offset = 0;
    while offset < next {
        let r = reader.read(offset, usize::MAX, i64::MAX, true).expect("read");
        assert!(!r.records.is_empty(), "gap at {offset}");
        stored.extend_from_slice(&r.records);
        offset = r.next_offset;
    }
    let expected: Vec<u8> = model.iter().flat_map(|(_, b)| b.iter().copied()).collect();
    assert!(stored == expected, "log bytes differ from the model");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(64), ..ProptestConfig::default() })]
    #[test]
    fn the_log_behaves_like_a_vector_of_batches(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig { segment_bytes: 2000, index_interval_bytes: 150, segment_index_bytes: 48, ..LogConfig::default() };
        let mut log = Some(open(dir.path(), config.clone(), OpenState::UNKNOWN));
        let mut model: Vec<(i64, Vec<u8>)> = Vec::new();
        for op in ops {
            let l = log.as_mut().expect("open");
            match op {
                Op::Append { records, size } => {
                    let value = vec![b'x'; size];
                    let values: Vec<&[u8]> = (0..records).map(|_| value.as_slice()).collect();
                    let b = make_batch(&values, 1_000);
                    let info = l.append(&b, opts(1_000)).expect("append");
                    model.push((info.base_offset, as_stored(&b, &info)));
                }
                Op::Read { at } => {
                    let end = l.log_end_offset();
                    if end > 0 {
                        let offset = at as i64 % (end + 1);
                        let r = l.reader().read(offset, usize::MAX, i64::MAX, false).expect("read");
                        if offset < end {
                            let first = BatchHeader::parse(&r.records).expect("a batch");
                            let expected = model.iter().find(|(_, b)| {
                                let h = BatchHeader::parse(b).expect("hdr");
                                h.last_offset() >= offset
                            }).expect("model has it");
                            prop_assert_eq!(first.base_offset, expected.0);
                        } else {
                            prop_assert!(r.records.is_empty());
                        }
                    }
                }
                Op::Truncate { at } => {
                    let end = l.log_end_offset();
                    let offset = at as i64 % (end + 1);
                    l.truncate_to(offset, 1_000).expect("truncate");
                    model.retain(|(base, _)| *base < offset);
                    // A batch straddling the offset goes too.
                    while let Some((_, b)) = model.last() {
                        if BatchHeader::parse(b).expect("hdr").last_offset() >= offset { model.pop(); } else { break; }
                    }
                }
                Op::Roll => l.roll(1_000).expect("roll"),
                Op::Reopen { clean } => {
                    let l = log.take().expect("open");
                    let end = l.log_end_offset();
                    if clean { l.close().expect("close") } else { drop(l) }
                    let state = OpenState { clean_shutdown: clean, recovery_point: if clean { end } else { 0 }, log_start_offset: 0, cleaner_offset: 0 };
                    log = Some(open(dir.path(), config.clone(), state));
                }
            }
            check_against_model(&log.as_ref().expect("open").reader(), &model);
        }
    }
}

// ---- Torn tails and damaged indexes ----

#[derive(Debug, Clone)]
enum Damage {
    TruncateTail(usize),
    ZeroTail(usize),
    FlipBit(usize),
    DeleteIndex,
    DeleteTimeIndex,
    GarbleIndex(usize),
    GarbleTimeIndex(usize),
    AppendGarbage(usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (1usize..5000).prop_map(Damage::TruncateTail),
        (1usize..5000).prop_map(Damage::ZeroTail),
        (0usize..100_000).prop_map(Damage::FlipBit),
        Just(Damage::DeleteIndex),
        Just(Damage::DeleteTimeIndex),
        (0usize..1000).prop_map(Damage::GarbleIndex),
        (0usize..1000).prop_map(Damage::GarbleTimeIndex),
        (1usize..100).prop_map(Damage::AppendGarbage),
    ]
}

fn apply_damage(dir: &Path, base: i64, d: &Damage) {
    let log_path = segment_path(dir, base, LOG_SUFFIX);
    let mut log = std::fs::read(&log_path).expect("read log");
    let garble = |suffix: &str, at: usize| {
        let p = segment_path(dir, base, suffix);
        let mut b = std::fs::read(&p).expect("read index");
        if !b.is_empty() {
            let i = at % b.len();
            b[i] = b[i].wrapping_add(97);
            std::fs::write(&p, b).expect("write index");
        }
    };
    match *d {
        Damage::TruncateTail(n) => log.truncate(log.len().saturating_sub(n)),
        Damage::ZeroTail(n) => {
            let from = log.len().saturating_sub(n);
            log[from..].fill(0);
        }
        Damage::FlipBit(at) => {
            if !log.is_empty() {
                let i = at % log.len();
                log[i] ^= 1 << (at % 8);
            }
        }
        Damage::DeleteIndex => std::fs::remove_file(segment_path(dir, base, INDEX_SUFFIX)).expect("rm"),
        Damage::DeleteTimeIndex => std::fs::remove_file(segment_path(dir, base, TIME_INDEX_SUFFIX)).expect("rm"),
        Damage::GarbleIndex(at) => garble(INDEX_SUFFIX, at),
        Damage::GarbleTimeIndex(at) => garble(TIME_INDEX_SUFFIX, at),
        Damage::AppendGarbage(n) => log.extend((0..n).map(|i| (i * 31 + 7) as u8)),
    }
    std::fs::write(&log_path, log).expect("write log");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]
    /// After any damage to the active segment and an unclean reopen, the log equals the
    /// longest valid prefix of what was written, and its rebuilt indexes equal a fresh build.
    #[test]
    fn an_unclean_reopen_keeps_the_longest_valid_prefix_and_rebuilds_indexes(
        batches_n in 1usize..25,
        sizes in proptest::collection::vec(0usize..300, 25),
        d in damage(),
        clean_close in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig { index_interval_bytes: 200, ..LogConfig::default() };
        let mut log = open(dir.path(), config.clone(), OpenState::UNKNOWN);
        for (i, &size) in sizes.iter().take(batches_n).enumerate() {
            append(&mut log, 1 + i % 3, size, 1_000 + i as i64);
        }
        let pdir = log.dir().to_owned();
        if clean_close { log.close().expect("close") } else { drop(log) }
        apply_damage(&pdir, 0, &d);
        // Expected: the valid prefix of the damaged bytes.
        let damaged = std::fs::read(segment_path(&pdir, 0, LOG_SUFFIX)).expect("read");
        let expected = scan_segment(&damaged, 0, config.index_interval_bytes, false);
        // The clean-shutdown marker is gone (or never was): recover.
        let log = open(dir.path(), config.clone(), OpenState::UNKNOWN);
        prop_assert_eq!(log.log_end_offset(), expected.next_offset);
        let stored: Vec<u8> = {
            let r = log.reader();
            let mut v = Vec::new();
            let mut o = 0;
            while o < r.log_end_offset() {
                let x = r.read(o, usize::MAX, i64::MAX, true).expect("read");
                v.extend_from_slice(&x.records);
                o = x.next_offset;
            }
            v
        };
        prop_assert!(stored[..] == damaged[..expected.valid_bytes as usize]);
        // Close and compare index files with a fresh build of the surviving bytes.
        log.close().expect("close");
        let index = std::fs::read(segment_path(&pdir, 0, INDEX_SUFFIX)).expect("index");
        prop_assert_eq!(offset_index::decode_all(&index), expected.index);
        let times = std::fs::read(segment_path(&pdir, 0, TIME_INDEX_SUFFIX)).expect("time index");
        prop_assert_eq!(time_index::decode_all(&times), expected.time_index);
        let problems = verify::verify_dir(&pdir).expect("verify").problems;
        prop_assert!(problems.is_empty(), "{:?}", problems);
    }
}

#[test]
fn readers_run_concurrently_with_appends_and_only_ever_see_whole_valid_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig { segment_bytes: 64 * 1024, index_interval_bytes: 512, ..LogConfig::default() };
    let log = std::sync::Mutex::new(open(dir.path(), config, OpenState::UNKNOWN));
    let reader = log.lock().expect("lock").reader();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let checker = s.spawn(|| {
            let mut reads = 0u64;
            while !done.load(std::sync::atomic::Ordering::Acquire) || reads == 0 {
                let end = reader.log_end_offset();
                let mut offset = reader.log_start_offset();
                while offset < end {
                    let r = match reader.read(offset, 8 * 1024, end, true) {
                        Ok(r) => r,
                        Err(Error::OffsetOutOfRange { log_start_offset, .. }) if offset < log_start_offset => {
                            offset = log_start_offset; // retention overtook this reader
                            continue;
                        }
                        Err(e) => panic!("read at {offset}: {e}"),
                    };
                    assert!(!r.records.is_empty(), "nothing at {offset} below the end {end} seen earlier");
                    let mut expected = None;
                    let mut pos = 0;
                    for b in batch::HeaderIter::new(&r.records, 0) {
                        let bytes = &r.records[b.position as usize..b.position as usize + b.header.size()];
                        assert!(batch::validate(bytes).is_ok(), "a torn or corrupt batch was visible");
                        if let Some(e) = expected {
                            assert_eq!(b.header.base_offset, e);
                        }
                        expected = Some(b.header.next_offset());
                        pos += b.header.size();
                    }
                    assert_eq!(pos, r.records.len(), "reads return whole batches only");
                    offset = r.next_offset;
                }
                reads += 1;
            }
            reads
        });
        for i in 0..3_000 {
            let mut l = log.lock().expect("lock");
            append(&mut l, 1 + i % 5, 20 + i % 200, i as i64);
            if i % 700 == 699 {
                // Move the start forward and delete segments while the reader is reading.
                let end = l.log_end_offset();
                l.delete_records(end / 2).expect("delete records");
                l.apply_retention(i as i64, end).expect("retention").delete().expect("delete");
            }
        }
        done.store(true, std::sync::atomic::Ordering::Release);
        assert!(checker.join().expect("reader thread") > 0);
    });
}

#[test]
fn a_clean_open_does_not_scan_sealed_data_but_an_unclean_one_does() {
    // Damage in the middle of a sealed segment is invisible to a clean open (which trusts the
    // files and scans only the active segment's tail) and cut off by an unclean one.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config(), OpenState::UNKNOWN);
    for i in 0..30 {
        append(&mut log, 2, 50, 10 + i);
    }
    let pdir = log.dir().to_owned();
    let leo = log.log_end_offset();
    log.close().expect("close");
    let path = segment_path(&pdir, 0, LOG_SUFFIX);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[300] ^= 0x40;
    std::fs::write(&path, bytes).expect("write");
    let clean = OpenState { clean_shutdown: true, recovery_point: leo, log_start_offset: 0, cleaner_offset: 0 };
    let log = open(dir.path(), small_config(), clean);
    assert_eq!(log.log_end_offset(), leo, "a clean open trusted the sealed segment");
    drop(log);
    let log = open(dir.path(), small_config(), OpenState::UNKNOWN);
    assert!(log.log_end_offset() < leo, "an unclean open scanned and cut the corrupt segment");
    assert_eq!(log.reader().segment_count(), 1, "segments after the corrupt one are deleted");
}

#[test]
fn maps_keyed_by_topic_partition_are_searched_with_a_borrowed_name() {
    use std::collections::HashMap;
    let mut map = HashMap::new();
    for (i, topic) in ["orders", "a", "", "orders-1", "ü-topic"].iter().enumerate() {
        for p in 0..3 {
            map.insert(TopicPartition::new(*topic, p), (i, p));
        }
    }
    for (i, topic) in ["orders", "a", "", "orders-1", "ü-topic"].iter().enumerate() {
        for p in 0..3 {
            let key = (*topic, p);
            assert_eq!(map.get(&key as &dyn PartitionKey), Some(&(i, p)), "{topic}-{p}");
        }
    }
    let missing = ("orders", 3);
    assert_eq!(map.get(&missing as &dyn PartitionKey), None);
    let missing = ("order", 0);
    assert_eq!(map.get(&missing as &dyn PartitionKey), None);
}
