//! `weir log dump` and `weir log verify`, run as the real binary.

use std::path::Path;

use weir::log::{AppendOptions, Log, LogConfig, OpenState, TopicPartition};

use crate::util::{numbered_batch, run_weir};

fn write_log(data: &Path) -> std::path::PathBuf {
    let config = LogConfig { index_interval_bytes: 100, ..LogConfig::default() };
    let mut log = Log::open(data, TopicPartition::new("cli", 0), config.into(), OpenState::UNKNOWN, 0).expect("open");
    for seed in 0..10 {
        let b = numbered_batch(seed, 3, 40, 1_000 + seed as i64);
        log.append(&b, AppendOptions { leader_epoch: Some(2), now_ms: 0 }).expect("append");
    }
    let dir = log.dir().to_owned();
    log.close().expect("close");
    dir
}

fn stdout(args: &[&str]) -> (i32, String) {
    let out = run_weir(args);
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn dump_prints_every_batch_in_text_and_json() {
    let data = tempfile::tempdir().expect("tempdir");
    let dir = write_log(data.path());
    let log = dir.join("00000000000000000000.log");
    let (code, text) = stdout(&["log", "dump", log.to_str().expect("utf-8")]);
    assert_eq!(code, 0);
    assert_eq!(text.lines().filter(|l| l.starts_with("baseOffset:")).count(), 10);
    assert!(text.contains("baseOffset: 3 lastOffset: 5 count: 3"), "{text}");
    assert!(text.contains("partitionLeaderEpoch: 2") && text.contains("isvalid: true"));

    let index = dir.join("00000000000000000000.index");
    let (code, json) =
        stdout(&["log", "dump", "--format", "json", log.to_str().expect("utf-8"), index.to_str().expect("utf-8")]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    let batches = v["files"][0]["batches"].as_array().expect("batches");
    assert_eq!(batches.len(), 10);
    assert_eq!(batches[1]["base_offset"], 3);
    assert_eq!(batches[1]["compression"], "none");
    assert_eq!(batches[1]["crc_valid"], true);
    assert_eq!(batches[1]["create_time"], 1_001);
    assert_eq!(v["files"][1]["kind"], "index");
    assert!(!v["files"][1]["entries"].as_array().expect("entries").is_empty());
}

#[test]
fn verify_passes_a_healthy_log_and_exits_nonzero_on_damage() {
    let data = tempfile::tempdir().expect("tempdir");
    let dir = write_log(data.path());
    let (code, text) = stdout(&["log", "verify", data.path().to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{text}");
    assert!(text.starts_with("OK: 1 segments, 10 batches"), "{text}");

    let log = dir.join("00000000000000000000.log");
    let mut bytes = std::fs::read(&log).expect("read");
    bytes[200] ^= 0xff;
    std::fs::write(&log, bytes).expect("write");
    let (code, text) = stdout(&["log", "verify", dir.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("DAMAGED") && text.contains("CRC32C mismatch"), "{text}");
    let (code, json) = stdout(&["log", "verify", "--format", "json", dir.to_str().expect("utf-8")]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert!(!v["problems"].as_array().expect("problems").is_empty());
}

#[test]
fn dump_of_a_missing_or_misnamed_file_is_a_clear_error() {
    let out = run_weir(&["log", "dump", "/nonexistent/00000000000000000000.log"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run_weir(&["log", "dump", "Cargo.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a segment file"));
}
