//! `weir bench produce` and `weir bench consume`, run as the real binary against a real
//! broker: what the produce bench reports is what landed in the topic, the consume bench
//! reads it back to the record and byte, and both stop when told.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use weir::kv::views::partition_for_key;

use crate::util::{weir, TestBroker};

/// Longest any bench in these tests may run (they take a second or two).
const DEADLINE: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(20);

/// How a `weir bench` run ended.
#[derive(Debug)]
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `weir bench --bootstrap <bootstrap> <args>` with stdout and stderr in files (never a
/// terminal), polling for its exit; kills it and panics after [`DEADLINE`].
fn bench_at(bootstrap: &str, args: &[&str]) -> Outcome {
    let dir = tempfile::tempdir().expect("tempdir");
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = weir()
        .args(["bench", "--bootstrap", bootstrap])
        .args(args)
        .env("WEIR_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("spawn weir bench");
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("weir bench {args:?} did not exit within {DEADLINE:?}");
        }
        std::thread::sleep(POLL);
    };
    let read = |path| String::from_utf8(std::fs::read(path).expect("output file")).expect("utf-8 output");
    let outcome = Outcome { code: status.code().unwrap_or(-1), stdout: read(&out_path), stderr: read(&err_path) };
    // Not a terminal: no progress bar, not even a carriage return or an escape sequence.
    assert!(
        !outcome.stderr.contains('\r') && !outcome.stderr.contains('\x1b'),
        "progress bar drawn without a terminal: {:?}",
        outcome.stderr
    );
    outcome
}

fn bench(broker: &TestBroker, args: &[&str]) -> Outcome {
    bench_at(&broker.bootstrap(), args)
}

/// `weir bench <args> --format json`, which must succeed: its one line of JSON.
fn bench_json(broker: &TestBroker, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let out = bench(broker, &all);
    assert_eq!(out.code, 0, "weir bench {args:?}: {}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 1, "one JSON line: {}", out.stdout);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.stdout))
}

/// Asserts a JSON latency object has ordered percentiles, and returns them.
fn ordered_percentiles(latency: &Value) -> [f64; 5] {
    let values = ["p50", "p95", "p99", "p999", "max"]
        .map(|k| latency[k].as_f64().unwrap_or_else(|| panic!("{k} missing in {latency}")));
    assert!(values.windows(2).all(|w| w[0] <= w[1]), "percentiles out of order: {latency}");
    assert!(values[0] >= 0.0, "{latency}");
    values
}

/// The `KEY  value` lines of a text summary.
fn text_fields(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .take_while(|l| !l.is_empty())
        .map(|l| {
            let (key, value) = l.split_once("  ").unwrap_or_else(|| panic!("not `KEY  value`: {l:?}"));
            (key.to_owned(), value.trim().to_owned())
        })
        .collect()
}

/// The numbers of a text latency row (`name  MEAN P50 P95 P99 P99.9 MAX`), after checking the
/// table's header.
fn text_latency_row(text: &str, name: &str) -> Vec<f64> {
    let header = text.lines().find(|l| l.starts_with("LATENCY-MS")).unwrap_or_else(|| panic!("no table: {text}"));
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["LATENCY-MS", "MEAN", "P50", "P95", "P99", "P99.9", "MAX"]
    );
    let row = text.lines().find(|l| l.split_whitespace().next() == Some(name)).unwrap_or_else(|| panic!("{text}"));
    row.split_whitespace().skip(1).map(|v| v.parse().unwrap_or_else(|_| panic!("not a number in {row:?}"))).collect()
}

/// The log end offsets of `topic` per partition, as `weir offsets` prints them.
fn end_offsets(broker: &TestBroker, topic: &str) -> BTreeMap<i32, i64> {
    let out = weir().args(["offsets", topic, "--bootstrap", &broker.bootstrap()]).output().expect("weir offsets");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| {
            let mut parts = l.rsplitn(3, ':');
            let offset = parts.next().and_then(|o| o.parse().ok()).unwrap_or_else(|| panic!("{l}"));
            let partition = parts.next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("{l}"));
            (partition, offset)
        })
        .collect()
}

#[test]
fn produce_bench_writes_every_record_and_reports_ordered_percentiles() {
    let broker = TestBroker::start(&[]);
    let text = bench(&broker, &["produce", "bench-p", "-n", "20000", "-p", "2"]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(text.stderr.contains("created topic bench-p with 2 partitions"), "{}", text.stderr);
    let fields = text_fields(&text.stdout);
    assert_eq!(fields["TOPIC"], "bench-p");
    assert_eq!(fields["RECORDS"], "20000");
    assert!(fields["BYTES"].starts_with("2000000 "), "{fields:?}");
    assert!(fields["RECORDS/S"].parse::<f64>().is_ok_and(|r| r > 0.0), "{fields:?}");
    assert!(fields["ELAPSED"].ends_with(" s"), "{fields:?}");
    let row = text_latency_row(&text.stdout, "produce");
    assert_eq!(row.len(), 6, "{row:?}");
    assert!(row[1..].windows(2).all(|w| w[0] <= w[1]), "p50 <= p95 <= p99 <= p99.9 <= max: {row:?}");

    let json = bench_json(&broker, &["produce", "bench-p", "-n", "20000", "-s", "250"]);
    assert_eq!((json["records"].as_u64(), json["bytes"].as_u64()), (Some(20_000), Some(5_000_000)), "{json}");
    assert_eq!((json["refused"].as_u64(), json["errors"].as_array().map(Vec::len)), (Some(0), Some(0)), "{json}");
    assert!(json["elapsed_ms"].as_u64().is_some() && json["mb_per_sec"].as_f64().is_some(), "{json}");
    assert!(json["records_per_sec"].as_f64().is_some_and(|r| r > 0.0), "{json}");
    ordered_percentiles(&json["latency_ms"]);
    let per_partition: u64 = json["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| p["records"].as_u64().expect("records"))
        .sum();
    assert_eq!(per_partition, 20_000, "{json}");

    // Every acknowledged record is in the topic.
    assert_eq!(end_offsets(&broker, "bench-p").values().sum::<i64>(), 40_000);
}

#[test]
fn consume_bench_reads_back_every_record_and_byte_of_keyed_records_spread_by_murmur2() {
    let broker = TestBroker::start(&[]);
    let produced = bench_json(&broker, &["produce", "bench-k", "-n", "20000", "-k", "50", "-p", "4", "-z", "lz4"]);
    assert_eq!(produced["records"], 20_000, "{produced}");
    // Keys key-0 .. key-49 in turn, each in its murmur2 partition, as Kafka's producer puts them.
    let mut expected = BTreeMap::<i64, u64>::new();
    for i in 0..20_000 {
        *expected.entry(i64::from(partition_for_key(format!("key-{}", i % 50).as_bytes(), 4))).or_default() += 1;
    }
    let got: BTreeMap<i64, u64> = produced["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| (p["partition"].as_i64().expect("partition"), p["records"].as_u64().expect("records")))
        .collect();
    assert_eq!(got, expected);
    assert!(got.len() > 1, "50 keys over 4 partitions land in more than one: {got:?}");
    let offsets = end_offsets(&broker, "bench-k");
    assert_eq!(offsets.iter().map(|(&p, &o)| (i64::from(p), o as u64)).collect::<BTreeMap<_, _>>(), expected);

    let consumed = bench_json(&broker, &["consume", "bench-k"]);
    assert_eq!(consumed["records"], 20_000, "{consumed}");
    assert_eq!(consumed["bytes"], produced["bytes"], "keys and values, byte for byte: {consumed}");
    assert!(consumed["fetches"].as_u64().is_some_and(|f| f >= 1), "{consumed}");
    assert!(consumed["fetched_bytes"].as_u64().is_some_and(|b| b > 0), "{consumed}");
    ordered_percentiles(&consumed["latency_ms"]);
    ordered_percentiles(&consumed["end_to_end_latency_ms"]);

    // -n stops mid-way, in the middle of a batch; text has both latency rows.
    let text = bench(&broker, &["consume", "bench-k", "-n", "5001"]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert_eq!(text_fields(&text.stdout)["RECORDS"], "5001");
    for name in ["fetch", "end-to-end"] {
        let row = text_latency_row(&text.stdout, name);
        assert!(row[1..].windows(2).all(|w| w[0] <= w[1]), "{name}: {row:?}");
    }
    // From the end there is nothing below the high watermark.
    let empty = bench_json(&broker, &["consume", "bench-k", "-o", "end"]);
    assert_eq!(empty["records"], 0, "{empty}");
    assert_eq!(empty["end_to_end_latency_ms"], Value::Null);
    // -o -N: the last N of each partition.
    let last = bench_json(&broker, &["consume", "bench-k", "-o", "-10"]);
    assert_eq!(last["records"], 40, "{last}");
}

#[test]
fn compressed_batches_are_smaller_than_the_records_but_not_empty() {
    let broker = TestBroker::start(&[]);
    let json = bench_json(&broker, &["produce", "bench-z", "-n", "20000", "-p", "1", "-z", "zstd"]);
    let (bytes, sent) = (json["bytes"].as_u64().expect("bytes"), json["batch_bytes"].as_u64().expect("batch bytes"));
    assert_eq!(json["compression"], "zstd");
    // Random letters: zstd saves a third or so, never almost everything.
    assert!(sent < bytes && sent > bytes / 3, "{bytes} bytes of records became {sent} bytes of batches");
    let consumed = bench_json(&broker, &["consume", "bench-z"]);
    assert_eq!((consumed["records"].as_u64(), consumed["bytes"].as_u64()), (Some(20_000), Some(bytes)));
}

#[test]
fn duration_stops_both_benches() {
    let broker = TestBroker::start(&[]);
    let produced = bench_json(&broker, &["produce", "bench-d", "-p", "1", "-d", "1", "-s", "10"]);
    let elapsed = produced["elapsed_ms"].as_u64().expect("elapsed_ms");
    assert!((1_000..60_000).contains(&elapsed), "ran {elapsed} ms for -d 1");
    let records = produced["records"].as_u64().expect("records");
    assert!(records > 0, "{produced}");
    assert_eq!(end_offsets(&broker, "bench-d")[&0], records as i64);

    // Waiting at the end of the log for records that never come: -d ends it.
    let consumed = bench_json(&broker, &["consume", "bench-d", "-o", "end", "-d", "1"]);
    assert_eq!(consumed["records"], 0, "{consumed}");
    let elapsed = consumed["elapsed_ms"].as_u64().expect("elapsed_ms");
    assert!((1_000..60_000).contains(&elapsed), "ran {elapsed} ms for -d 1");
    // -n larger than the topic: -d ends it too, with what was there.
    bench_json(&broker, &["produce", "bench-d100", "-p", "1", "-n", "100"]);
    let consumed = bench_json(&broker, &["consume", "bench-d100", "-n", "1000", "-d", "1"]);
    assert_eq!(consumed["records"], 100, "{consumed}");
}

#[test]
fn refusals_exit_1_with_the_error_name_and_connection_errors_exit_2() {
    let broker = TestBroker::start(&[]);
    let out = bench(&broker, &["consume", "no-such-topic"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    let out = bench(&broker, &["produce", "no-such-topic", "-n", "10"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{}", out.stderr);

    // Records above max.message.bytes (1 MiB) are refused; the summary still comes.
    let out = bench(&broker, &["produce", "bench-big", "-p", "1", "-n", "2", "-s", "2000000", "--format", "json"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("records refused: MESSAGE_TOO_LARGE (10)"), "{}", out.stderr);
    let json: Value = serde_json::from_str(&out.stdout).expect("a JSON summary");
    assert_eq!((json["records"].as_u64(), json["refused"].as_u64()), (Some(0), Some(2)), "{json}");
    assert_eq!(json["errors"][0]["error"], "MESSAGE_TOO_LARGE");

    // Usage errors and a broker that is not there.
    assert_eq!(bench(&broker, &["produce", "bench-big", "--acks", "2"]).code, 2);
    assert_eq!(bench(&broker, &["consume", "bench-big", "-d", "0"]).code, 2);
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let nowhere = format!("127.0.0.1:{port}");
    for args in [&["produce", "t", "-n", "1"][..], &["consume", "t"][..]] {
        let out = bench_at(&nowhere, args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("cannot reach"), "{args:?}: {}", out.stderr);
    }
}
