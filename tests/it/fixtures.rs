//! Checked-in files guard `storage-format.md`: if the code's format drifts from what earlier
//! builds (and other Kafka implementations) wrote, these fail.
//!
//! - `tests/fixtures/kafka-python/`: batches encoded by kafka-python's record builder.
//! - `tests/fixtures/weir-v1/`: a whole data directory written by weir (format version 1),
//!   after a clean shutdown. Regenerate only on a deliberate format change:
//!   `WEIR_WRITE_FIXTURES=1 cargo test --test it -- --ignored write_weir_v1_fixture`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use weir::log::batch::{BatchBuilder, Compression, HeaderIter};
use weir::log::manager::LogManager;
use weir::log::{offset_index, time_index, AppendOptions, LogConfig, OpenState, TopicPartition};

use crate::util::copy_dir;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

#[test]
fn batches_encoded_by_kafka_python_are_read_and_indexed() {
    let bytes = std::fs::read(fixture("kafka-python/00000000000000000000.log")).expect("fixture");
    let (batches, trailing) = weir::log::verify::dump_log(&bytes);
    assert_eq!(trailing, None);
    let summary: Vec<_> =
        batches.iter().map(|b| (b.base_offset, b.last_offset, b.compression.as_str(), b.crc_valid)).collect();
    assert_eq!(summary, vec![(0, 1, "none", true), (2, 6, "gzip", true), (7, 7, "none", true)]);
    assert_eq!(batches[1].producer_id, 7);
    // As a partition directory with no indexes: the log rebuilds them and serves reads.
    let data = tempfile::tempdir().expect("tempdir");
    let pdir = data.path().join("py-0");
    std::fs::create_dir_all(&pdir).expect("mkdir");
    std::fs::write(pdir.join("00000000000000000000.log"), &bytes).expect("copy");
    let log =
        weir::log::Log::open(data.path(), TopicPartition::new("py", 0), Default::default(), OpenState::UNKNOWN, 0)
            .expect("open");
    let r = log.reader().read(3, 1 << 20, i64::MAX, true).expect("read");
    let h = HeaderIter::new(&r.records, 0).next().expect("a batch").header;
    assert_eq!((h.base_offset, h.compression(), h.records_count), (2, Ok(Compression::Gzip), 5));
    assert_eq!(log.reader().offset_for_timestamp(1_700_000_000_001), Some((1, 1_700_000_000_001)));
    assert_eq!(log.log_end_offset(), 8);
}

/// What the weir-v1 fixture holds, as (base offset, last offset, crc) per batch.
fn expected_v1() -> Vec<(i64, i64, u32)> {
    let text = std::fs::read_to_string(fixture("weir-v1/expected-batches.txt")).expect("expected batches");
    text.lines()
        .map(|l| {
            let v: Vec<&str> = l.split_whitespace().collect();
            (v[0].parse().expect("base"), v[1].parse().expect("last"), v[2].parse().expect("crc"))
        })
        .collect()
}

#[test]
fn a_data_directory_written_by_weir_v1_opens_cleanly_and_reads_back() {
    let data = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixture("weir-v1/data"), data.path());
    let manager = LogManager::open(data.path(), LogConfig::default(), 0).expect("open fixture");
    assert!(manager.had_clean_shutdown());
    let topic = manager.topic("orders").expect("topic metadata");
    assert_eq!(topic.partitions, 1);
    assert_eq!(topic.configs.get("segment.bytes").map(String::as_str), Some("4096"));
    let reader = manager.log(&TopicPartition::new("orders", 0)).expect("partition").reader.clone();
    let mut seen = Vec::new();
    let mut offset = reader.log_start_offset();
    while offset < reader.log_end_offset() {
        let r = reader.read(offset, 1 << 20, i64::MAX, true).expect("read");
        seen.extend(
            HeaderIter::new(&r.records, 0).map(|b| (b.header.base_offset, b.header.last_offset(), b.header.crc)),
        );
        offset = r.next_offset;
    }
    assert_eq!(seen, expected_v1());
    assert!(reader.segment_count() >= 3, "the fixture spans several segments");
}

#[test]
fn weir_v1_index_files_have_the_documented_layout() {
    let pdir = fixture("weir-v1/data/orders-0");
    // storage-format.md: .index = 8-byte big-endian (relative offset u32, position u32) entries.
    let index = std::fs::read(pdir.join("00000000000000000000.index")).expect("index");
    assert_eq!(index.len() % 8, 0);
    assert!(!index.is_empty(), "the first segment has index entries");
    let first = offset_index::decode_all(&index)[0];
    assert_eq!(&index[..4], &first.relative_offset.to_be_bytes());
    assert_eq!(&index[4..8], &first.position.to_be_bytes());
    // .timeindex = 12-byte big-endian (timestamp i64, relative offset u32) entries.
    let times = std::fs::read(pdir.join("00000000000000000000.timeindex")).expect("time index");
    assert_eq!(times.len() % 12, 0);
    let last = time_index::decode_all(&times).last().copied().expect("entries");
    assert_eq!(&times[times.len() - 12..times.len() - 4], &last.timestamp.to_be_bytes());
    // The checkpoint files use Kafka's text format.
    let rp = std::fs::read_to_string(fixture("weir-v1/data/recovery-point-offset-checkpoint")).expect("checkpoint");
    let n = expected_v1().last().map(|b| b.1 + 1).expect("batches");
    assert_eq!(rp, format!("0\n1\norders 0 {n}\n"));
    assert!(fixture("weir-v1/data/.weir_cleanshutdown").exists());
    assert!(crate::util::run_weir(&["log", "verify", pdir.to_str().expect("utf-8")]).status.success());
}

/// Writes `tests/fixtures/weir-v1`. Deterministic (fixed timestamps and contents).
#[test]
#[ignore = "regenerates a checked-in fixture; run only on a deliberate format change"]
fn write_weir_v1_fixture() {
    if std::env::var_os("WEIR_WRITE_FIXTURES").is_none() {
        return;
    }
    let root = fixture("weir-v1");
    let _ = std::fs::remove_dir_all(&root);
    let data = root.join("data");
    let mut manager = LogManager::open(&data, LogConfig::default(), 0).expect("open");
    let configs: BTreeMap<String, String> =
        [("segment.bytes".to_owned(), "4096".to_owned()), ("index.interval.bytes".to_owned(), "256".to_owned())].into();
    manager.create_topic("orders", 1, configs, 0).expect("create");
    let partition = manager.log(&TopicPartition::new("orders", 0)).expect("partition").clone();
    let mut expected = String::new();
    for i in 0..60i64 {
        let mut b = BatchBuilder::new();
        for r in 0..(1 + i % 4) {
            let key = format!("order-{}", (i + r) % 9);
            let value = format!("{{\"id\":{i},\"line\":{r},\"qty\":{}}}", (i * 7 + r) % 13);
            b.record(
                1_700_000_000_000 + i * 1_000 + r,
                Some(key.as_bytes()),
                Some(value.as_bytes()),
                &[("src", b"fixture")],
            );
        }
        let bytes = b.build();
        let info = partition
            .log
            .lock()
            .expect("lock")
            .append(&bytes, AppendOptions { leader_epoch: Some(1), now_ms: 1_700_000_000_000 + i * 1_000 })
            .expect("append");
        let crc = weir::log::batch::BatchHeader::parse(&bytes).expect("header").crc;
        expected.push_str(&format!("{} {} {crc}\n", info.base_offset, info.last_offset));
    }
    drop(partition);
    manager.shutdown().expect("clean shutdown");
    std::fs::remove_file(data.join(".lock")).expect("lock file is not part of the fixture");
    std::fs::write(root.join("expected-batches.txt"), expected).expect("write expected");
}
