//! Crash safety under SIGKILL: a child process appends in a loop and reports each append
//! that returned; the parent kills it mid-stream, reopens the data directory (no clean
//! shutdown marker) and checks that every reported append is readable, byte for byte, and
//! that offsets are contiguous. Repeated, so recovery also runs on an already-recovered log.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use weir::log::batch::{BatchHeader, HeaderIter};
use weir::log::manager::LogManager;
use weir::log::{AppendOptions, LogConfig, TopicPartition};

use crate::util::{now_ms, numbered_batch};

const TOPIC: &str = "crash";
const CHILD_ENV: &str = "WEIR_CRASH_CHILD_DIR";

/// The child side: appends until killed, printing `<base> <last> <crc>` for each append that
/// returned. Runs only when the parent starts it with `CHILD_ENV` set.
#[test]
#[ignore = "child process of appended_data_survives_sigkill"]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let mut manager = LogManager::open(Path::new(&dir), LogConfig::default(), now_ms()).expect("open data dir");
    if manager.topic(TOPIC).is_none() {
        let configs: BTreeMap<String, String> =
            [("segment.bytes".to_owned(), "65536".to_owned()), ("index.interval.bytes".to_owned(), "1024".to_owned())]
                .into();
        manager.create_topic(TOPIC, 1, configs, now_ms()).expect("create topic");
    }
    let partition = manager.log(&TopicPartition::new(TOPIC, 0)).expect("partition").clone();
    let mut out = std::io::stdout().lock();
    for seed in 0u64.. {
        let batch = numbered_batch(seed, 1 + (seed % 7) as usize, 50 + (seed % 300) as usize, now_ms());
        let info = partition
            .log
            .lock()
            .expect("lock")
            .append(&batch, AppendOptions { leader_epoch: Some(0), now_ms: now_ms() })
            .expect("append");
        let crc = BatchHeader::parse(&batch).expect("header").crc;
        writeln!(out, "{} {} {crc}", info.base_offset, info.last_offset).expect("stdout");
        out.flush().expect("flush stdout");
    }
}

fn run_child_until_killed(dir: &Path, acks_wanted: usize) -> Vec<(i64, i64, u32)> {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "crash::crash_child", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let mut acks = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read child output");
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let [base, last, crc] = parts[..] {
            if let (Ok(b), Ok(l), Ok(c)) = (base.parse(), last.parse(), crc.parse()) {
                acks.push((b, l, c));
            }
        }
        if acks.len() >= acks_wanted || Instant::now() > deadline {
            break;
        }
    }
    child.kill().expect("SIGKILL the child"); // std's kill is SIGKILL on Unix
    child.wait().expect("reap child");
    assert!(acks.len() >= acks_wanted, "child acknowledged only {} appends before the deadline", acks.len());
    acks
}

#[test]
fn appended_data_survives_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut all_acks: BTreeMap<i64, (i64, u32)> = BTreeMap::new();
    for round in 0..3 {
        for (base, last, crc) in run_child_until_killed(dir.path(), 1_500) {
            all_acks.insert(base, (last, crc));
        }
        // Reopen as the broker would after the crash: no clean-shutdown marker.
        let manager = LogManager::open(dir.path(), LogConfig::default(), now_ms()).expect("reopen");
        assert!(!manager.had_clean_shutdown(), "round {round}: a SIGKILL is not a clean shutdown");
        let reader = manager.log(&TopicPartition::new(TOPIC, 0)).expect("partition").reader.clone();
        let acked_end = all_acks.values().map(|(last, _)| last + 1).max().expect("acks");
        assert!(reader.log_end_offset() >= acked_end, "round {round}: acknowledged data lost");
        let mut expected_next = 0;
        let mut offset = 0;
        while offset < reader.log_end_offset() {
            let r = reader.read(offset, 1 << 20, i64::MAX, true).expect("read");
            for b in HeaderIter::new(&r.records, 0) {
                assert_eq!(b.header.base_offset, expected_next, "round {round}: offsets are not contiguous");
                if let Some(&(last, crc)) = all_acks.get(&b.header.base_offset) {
                    assert_eq!((b.header.last_offset(), b.header.crc), (last, crc), "round {round}: batch differs");
                }
                expected_next = b.header.next_offset();
            }
            offset = r.next_offset;
        }
        assert!(all_acks.keys().all(|&base| base < expected_next));
        drop(manager); // unclean again: the next round's child recovers it
    }
    let out = crate::util::run_weir(&["log", "verify", dir.path().to_str().expect("utf-8 path")]);
    assert!(out.status.success(), "verify after crashes: {}", String::from_utf8_lossy(&out.stdout));
}
