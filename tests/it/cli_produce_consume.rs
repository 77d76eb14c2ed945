//! `weir produce` and `weir consume`, run as the real binary against a real broker, cross-
//! checked with librdkafka: records one side writes, the other reads, with the same keys,
//! headers and partitions.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::{json, Value};
use weir::kv::views::partition_for_key;

use crate::util::{now_ms, weir, TestBroker};

const DEADLINE: Duration = Duration::from_secs(60);
/// How often a waiting test looks again.
const POLL: Duration = Duration::from_millis(50);

/// A running `weir` process. Its stdout and stderr are collected by threads (so a full pipe
/// never blocks it) and can be read while it runs; dropping it kills the process, so no test
/// path leaves one behind.
struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// How a finished process ended.
#[derive(Debug)]
struct Outcome {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Outcome {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn lines(&self) -> Vec<String> {
        self.text().lines().map(str::to_owned).collect()
    }

    /// stdout as JSON lines.
    fn json_lines(&self) -> Vec<Value> {
        self.text().lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
    }
}

fn collect(mut from: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                return;
            }
            into.lock().expect("output lock").extend_from_slice(&buf[..n]);
        }
    })
}

impl Running {
    /// Starts `weir <args> --bootstrap <bootstrap>` with a stdin pipe.
    fn start(bootstrap: &str, args: &[&str]) -> Running {
        let mut child = weir()
            .args(args)
            .args(["--bootstrap", bootstrap])
            .env("WEIR_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn weir");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().expect("stdout pipe"), stdout.clone()),
            collect(child.stderr.take().expect("stderr pipe"), stderr.clone()),
        ];
        let stdin = child.stdin.take();
        Running { child, stdin, stdout, stderr, readers }
    }

    fn write(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(bytes).expect("write to weir's stdin");
        stdin.flush().expect("flush weir's stdin");
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().expect("output lock")).into_owned()
    }

    #[allow(unsafe_code)] // kill(2): std offers only SIGKILL
    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid, which has not been reaped (we own `child`).
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Waits for the process to exit (polling, with [`DEADLINE`]); panics if it does not.
    fn wait(mut self) -> Outcome {
        self.close_stdin();
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "weir did not exit in time; stderr: {}", self.stderr_text());
            std::thread::sleep(POLL);
        };
        for reader in self.readers.drain(..) {
            reader.join().expect("output reader");
        }
        Outcome {
            code: status.code().unwrap_or(-1),
            stdout: std::mem::take(&mut *self.stdout.lock().expect("output lock")),
            stderr: self.stderr_text(),
        }
    }

    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("output lock")).into_owned()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `weir <args>` with `input` on stdin to the end.
fn run(broker: &TestBroker, args: &[&str], input: &[u8]) -> Outcome {
    let mut running = Running::start(&broker.bootstrap(), args);
    let mut stdin = running.stdin.take().expect("stdin pipe");
    let input = input.to_vec();
    // A separate writer, so a process that stops reading cannot block the test.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let outcome = running.wait();
    writer.join().expect("stdin writer");
    outcome
}

/// `weir produce <args>` with `input`; asserts it succeeded.
fn produce(broker: &TestBroker, args: &[&str], input: &[u8]) -> Outcome {
    let mut all = vec!["produce"];
    all.extend_from_slice(args);
    let outcome = run(broker, &all, input);
    assert_eq!(outcome.code, 0, "weir produce {args:?} failed: {}", outcome.stderr);
    outcome
}

/// `weir consume <args>`; asserts it succeeded.
fn consume(broker: &TestBroker, args: &[&str]) -> Outcome {
    let mut all = vec!["consume"];
    all.extend_from_slice(args);
    let outcome = run(broker, &all, b"");
    assert_eq!(outcome.code, 0, "weir consume {args:?} failed: {}", outcome.stderr);
    outcome
}

async fn create_topic(broker: &TestBroker, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", broker.bootstrap()).create().expect("admin client");
    let options = AdminOptions::new().operation_timeout(Some(DEADLINE));
    let created = admin.create_topics([&NewTopic::new(name, partitions, TopicReplication::Fixed(1))], &options).await;
    assert!(created.expect("create topics")[0].is_ok(), "topic {name} not created");
}

fn rdkafka_producer(broker: &TestBroker) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("partitioner", "murmur2_random") // Kafka's Java default partitioner
        .set("message.timeout.ms", "20000")
        .create()
        .expect("rdkafka producer")
}

/// A record as librdkafka read it: partition, offset, key, value, headers.
type ReadRecord = (i32, i64, Option<Vec<u8>>, Option<Vec<u8>>, Vec<(String, Option<Vec<u8>>)>);

/// A JSON key or value as bytes: a string, or `{"base64": ...}`.
fn json_bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.as_bytes().to_vec()),
        other => Some(base64_decode(other["base64"].as_str().expect("a string or {\"base64\": ...}"))),
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let digits: Vec<u32> = text
        .bytes()
        .filter(|&b| b != b'=')
        .map(|b| ALPHABET.iter().position(|&a| a == b).expect("base64 digit") as u32)
        .collect();
    let mut out = Vec::new();
    for chunk in digits.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, d)| n | d << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_lines_land_where_java_and_librdkafka_put_them_with_their_headers() {
    let broker = TestBroker::start(&[]);
    create_topic(&broker, "pc-keys", 3).await;
    create_topic(&broker, "pc-keys-rdkafka", 3).await;
    let keys: [&[u8]; 7] = [b"alpha", b"beta", b"gamma", b"delta", b"epsilon", b"", b"\xff\xfe"];
    let mut input = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        input.extend_from_slice(key);
        input.extend_from_slice(format!("=value {i}\n").as_bytes());
    }
    input.extend_from_slice(b"a line without a key\n\nlast line without a newline");
    let out =
        produce(&broker, &["pc-keys", "-k", "=", "-H", "source=test", "-H", "trace=a=b", "--format", "json"], &input);
    let summary: Value = serde_json::from_str(out.text().trim()).expect("a JSON summary");
    assert_eq!((summary["acknowledged"].as_u64(), summary["refused"].as_u64()), (Some(10), Some(0)), "{summary}");
    assert!(out.stderr.contains("produced 10 records to pc-keys"), "{}", out.stderr);

    let records = consume(&broker, &["pc-keys", "-o", "start", "-e"]).json_lines();
    assert_eq!(records.len(), 10, "{records:#?}");
    let headers = json!([{"key": "source", "value": "test"}, {"key": "trace", "value": "a=b"}]);
    for r in &records {
        assert_eq!(r["topic"], "pc-keys");
        assert_eq!(r["headers"], headers, "{r}");
        assert!(r["timestamp"].as_i64().is_some_and(|t| (t - now_ms()).abs() < 60_000), "{r}");
    }
    // Keyed records: Kafka's murmur2 partition.
    for (i, key) in keys.iter().enumerate() {
        let value = format!("value {i}");
        let r = records.iter().find(|r| r["value"] == value.as_str()).unwrap_or_else(|| panic!("{value} missing"));
        assert_eq!(json_bytes(&r["key"]).as_deref(), Some(*key), "{r}");
        assert_eq!(r["partition"], partition_for_key(key, 3), "{r}");
    }
    let binary = records.iter().find(|r| r["value"] == "value 6").expect("binary key");
    assert_eq!(binary["key"], json!({"base64": "//4="}));
    // Keyless lines, the empty one, and the unterminated last one.
    for value in ["a line without a key", "", "last line without a newline"] {
        let r = records.iter().find(|r| r["value"] == value).unwrap_or_else(|| panic!("{value:?} missing"));
        assert_eq!(r["key"], Value::Null);
    }

    // librdkafka's murmur2_random partitioner puts the same keys in the same partitions.
    let producer = rdkafka_producer(&broker);
    for key in keys {
        let record = FutureRecord::to("pc-keys-rdkafka").key(key).payload("x");
        let delivery = producer.send(record, DEADLINE).await.map_err(|(e, _)| e).expect("delivered");
        assert_eq!(delivery.partition, partition_for_key(key, 3), "key {key:?}");
    }

    // And librdkafka reads weir's records with their keys, values, headers and partitions.
    let read = tokio::task::spawn_blocking({
        let bootstrap = broker.bootstrap();
        move || rdkafka_read(&bootstrap, "pc-keys", &[0, 1, 2], 10)
    })
    .await
    .expect("reader");
    for (partition, offset, key, value, headers) in read {
        let json = records
            .iter()
            .find(|r| r["partition"] == partition && r["offset"] == offset)
            .unwrap_or_else(|| panic!("weir did not print {partition}/{offset}"));
        assert_eq!(key, json_bytes(&json["key"]));
        assert_eq!(value, json_bytes(&json["value"]));
        assert_eq!(
            headers,
            [("source".to_owned(), Some(b"test".to_vec())), ("trace".to_owned(), Some(b"a=b".to_vec()))]
        );
    }
}

/// Reads `count` records of `topic`'s `partitions` from the beginning with librdkafka
/// (blocking: run it in `spawn_blocking`).
fn rdkafka_read(bootstrap: &str, topic: &str, partitions: &[i32], count: usize) -> Vec<ReadRecord> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "rdkafka-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("rdkafka consumer");
    let mut assignment = TopicPartitionList::new();
    for &p in partitions {
        assignment.add_partition_offset(topic, p, Offset::Beginning).expect("assignment");
    }
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + DEADLINE;
    let mut out = Vec::new();
    while out.len() < count {
        assert!(Instant::now() < deadline, "librdkafka read {} of {count} records", out.len());
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let headers = m
                    .headers()
                    .map(|h| h.iter().map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec))).collect())
                    .unwrap_or_default();
                let (key, value) = (m.key().map(<[u8]>::to_vec), m.payload().map(<[u8]>::to_vec));
                out.push((m.partition(), m.offset(), key, value, headers));
            }
            Some(Err(e)) => panic!("librdkafka consume error: {e}"),
            None => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_round_trips_through_a_fixed_partition() {
    let broker = TestBroker::start(&[]);
    create_topic(&broker, "pc-codecs", 2).await;
    let codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
    let mut expected = Vec::new();
    for codec in codecs {
        let lines: Vec<String> = (0..50).map(|i| format!("{codec} record {i} {}", "x".repeat(i))).collect();
        let input = lines.join("\n") + "\n";
        let out = produce(&broker, &["pc-codecs", "-p", "1", "-z", codec, "--batch-records", "20"], input.as_bytes());
        assert!(out.stderr.contains(&format!("in 3 batches (0.0 MB, {codec})")), "{}", out.stderr);
        expected.extend(lines);
    }
    let values = consume(&broker, &["pc-codecs", "-p", "1", "-o", "start", "-e", "-f", "%v\\n"]).lines();
    assert_eq!(values, expected);
    assert!(consume(&broker, &["pc-codecs", "-p", "0", "-e"]).stdout.is_empty());

    // librdkafka decompresses every codec weir wrote.
    let bootstrap = broker.bootstrap();
    let read =
        tokio::task::spawn_blocking(move || rdkafka_read(&bootstrap, "pc-codecs", &[1], 250)).await.expect("reader");
    let read: Vec<String> =
        read.into_iter().map(|(_, _, _, v, _)| String::from_utf8(v.expect("value")).expect("utf-8")).collect();
    assert_eq!(read, expected);

    // --acks 1 and --acks 0 (no response at all) both deliver.
    produce(&broker, &["pc-codecs", "-p", "0", "--acks", "1"], b"one\n");
    let out = produce(&broker, &["pc-codecs", "-p", "0", "--acks", "0", "-z", "lz4"], b"zero-a\nzero-b\n");
    assert!(out.stderr.contains("sent 2 records (acks=0"), "{}", out.stderr);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let values = consume(&broker, &["pc-codecs", "-p", "0", "-e", "-f", "%v\\n"]).lines();
        if values == ["one", "zero-a", "zero-b"] {
            break;
        }
        assert!(Instant::now() < deadline, "acks=0 records never arrived: {values:?}");
        std::thread::sleep(POLL);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_starts_where_o_says_and_stops_after_n_records() {
    let broker = TestBroker::start(&[]);
    create_topic(&broker, "pc-offsets", 1).await;
    let base = now_ms() - 60_000;
    let producer = rdkafka_producer(&broker);
    for i in 0..10 {
        let headers = OwnedHeaders::new().insert(Header { key: "n", value: Some(&i.to_string()) });
        let (key, value) = (format!("k{i}"), format!("v{i}"));
        let record = FutureRecord::to("pc-offsets")
            .partition(0)
            .key(&key)
            .payload(&value)
            .headers(headers)
            .timestamp(base + i * 1000);
        producer.send(record, DEADLINE).await.map_err(|(e, _)| e).expect("delivered");
    }
    let offsets = |args: &[&str]| -> Vec<i64> {
        let mut all = vec!["pc-offsets"];
        all.extend_from_slice(args);
        consume(&broker, &all).json_lines().iter().map(|r| r["offset"].as_i64().expect("offset")).collect()
    };
    let records = consume(&broker, &["pc-offsets", "-e"]).json_lines();
    assert_eq!(records.len(), 10);
    assert_eq!(
        records[3],
        json!({"topic": "pc-offsets", "partition": 0, "offset": 3, "timestamp": base + 3000, "key": "k3",
            "value": "v3", "headers": [{"key": "n", "value": "3"}]})
    );
    assert_eq!(offsets(&["-o", "7", "-e"]), [7, 8, 9]);
    assert_eq!(offsets(&["-o", "-3", "-e"]), [7, 8, 9]);
    assert_eq!(offsets(&["-o", "-30", "-e"]).len(), 10);
    let at = format!("@{}", base + 3500);
    assert_eq!(offsets(&["-o", &at, "-e"]), [4, 5, 6, 7, 8, 9]);
    let after_all = format!("@{}", base + 100_000);
    assert!(offsets(&["-o", &after_all, "-e"]).is_empty());
    assert!(offsets(&["-o", "end", "-e"]).is_empty());
    // -n stops without -e, also in the middle of a batch.
    assert_eq!(offsets(&["-o", "start", "-n", "4"]), [0, 1, 2, 3]);
    assert_eq!(offsets(&["-o", "5", "-n", "2"]), [5, 6]);
    // Past the end: out of range, so it continues at the end.
    let out = consume(&broker, &["pc-offsets", "-o", "100", "-e"]);
    assert!(out.stdout.is_empty());
    assert!(out.stderr.contains("out of range; continuing at 10"), "{}", out.stderr);

    let formatted = consume(&broker, &["pc-offsets", "-o", "2", "-n", "1", "-f", "%t|%p|%o|%k|%v|%h|%T|100%%\\t.\\n"]);
    assert_eq!(formatted.text(), format!("pc-offsets|0|2|k2|v2|n=2|{}|100%\t.\n", base + 2000));
    assert!(formatted.stderr.contains("consumed 1 record from pc-offsets"), "{}", formatted.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_in_stdin_sends_what_was_typed_so_far() {
    let broker = TestBroker::start(&[]);
    create_topic(&broker, "pc-pause", 1).await;
    let mut producer = Running::start(&broker.bootstrap(), &["produce", "pc-pause"]);
    producer.write(b"first\n");
    let deadline = Instant::now() + DEADLINE;
    while consume(&broker, &["pc-pause", "-e", "-f", "%v\\n"]).lines() != ["first"] {
        assert!(Instant::now() < deadline, "a typed line was not sent while stdin stayed open");
        std::thread::sleep(POLL);
    }
    producer.write(b"second\n");
    let out = producer.wait();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(consume(&broker, &["pc-pause", "-e", "-f", "%v\\n"]).lines(), ["first", "second"]);
}

/// (partition, offset) of each `%p %o` line.
fn positions(text: &str) -> Vec<(i64, i64)> {
    text.lines()
        .map(|l| {
            let (p, o) = l.split_once(' ').expect("`%p %o` lines");
            (p.parse().expect("partition"), o.parse().expect("offset"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_members_share_partitions_commit_on_exit_and_resume() {
    // Heartbeats every 500 ms so that the rebalance takes a second, not ten.
    let broker = TestBroker::start(&["group.consumer.heartbeat.interval.ms=500"]);
    create_topic(&broker, "pc-group", 2).await;
    let bootstrap = broker.bootstrap();
    let member = || Running::start(&bootstrap, &["consume", "pc-group", "-g", "G", "-f", "%p %o\\n"]);
    let (a, b) = (member(), member());
    // Keep writing to both partitions until each member has printed something: the first
    // member owns both partitions until the second one is given its share.
    let producer = rdkafka_producer(&broker);
    let mut sent = [0i64; 2];
    let deadline = Instant::now() + DEADLINE;
    while a.stdout_text().is_empty() || b.stdout_text().is_empty() {
        assert!(
            Instant::now() < deadline,
            "both members should get records; a: {:?} b: {:?}",
            a.stdout_text(),
            b.stdout_text()
        );
        for (p, count) in sent.iter_mut().enumerate() {
            let record = FutureRecord::to("pc-group").partition(p as i32).key("k").payload("v");
            producer.send(record, DEADLINE).await.map_err(|(e, _)| e).expect("delivered");
            *count += 1;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Wait until everything sent was printed by one of them, then stop both with SIGTERM.
    let all: BTreeSet<(i64, i64)> = (0..2).flat_map(|p| (0..sent[p as usize]).map(move |o| (p, o))).collect();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let printed: BTreeSet<_> = positions(&(a.stdout_text() + &b.stdout_text())).into_iter().collect();
        if printed == all {
            break;
        }
        assert!(Instant::now() < deadline, "printed {printed:?}, sent {all:?}");
        std::thread::sleep(POLL);
    }
    a.signal(libc::SIGTERM);
    b.signal(libc::SIGTERM);
    let (a, b) = (a.wait(), b.wait());
    assert_eq!((a.code, b.code), (0, 0), "a: {} b: {}", a.stderr, b.stderr);
    let mut printed = positions(&a.text());
    printed.extend(positions(&b.text()));
    printed.sort_unstable();
    assert_eq!(printed, all.iter().copied().collect::<Vec<_>>(), "every record once");

    // Their commits are the group's offsets.
    let describe = run(&broker, &["group", "describe", "G", "--format", "json"], b"");
    assert_eq!(describe.code, 0, "{}", describe.stderr);
    let d: Value = serde_json::from_str(&describe.text()).expect("JSON");
    for p in 0..2 {
        let row = d["partitions"].as_array().expect("partitions").iter().find(|r| r["partition"] == p).cloned();
        let row = row.unwrap_or_else(|| panic!("no row for partition {p}: {d:#}"));
        assert_eq!(row["current_offset"], sent[p as usize], "{d:#}");
        assert_eq!(row["lag"], 0, "{d:#}");
    }

    // A restarted member resumes at the committed offsets.
    for p in 0..2 {
        produce(&broker, &["pc-group", "-p", &p.to_string()], b"new-1\nnew-2\n");
    }
    let resumed = consume(&broker, &["pc-group", "-g", "G", "-e", "-f", "%p %o %v\\n"]);
    let mut lines = resumed.lines();
    lines.sort();
    let expected: Vec<String> =
        (0..2).flat_map(|p| [1, 2].map(|i| format!("{p} {} new-{i}", sent[p] + i - 1))).collect();
    assert_eq!(lines, expected, "{}", resumed.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_exit_1_and_an_unreachable_broker_exits_2() {
    let broker = TestBroker::start(&[]);
    create_topic(&broker, "pc-errors", 1).await;
    let out = run(&broker, &["produce", "no-such-topic"], b"x\n");
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("UNKNOWN_TOPIC_OR_PARTITION") && out.stderr.contains("weir topic create"),
        "{}",
        out.stderr
    );
    let out = run(&broker, &["consume", "no-such-topic", "-e"], b"");
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{}", out.stderr);
    let out = run(&broker, &["produce", "pc-errors", "-p", "3"], b"x\n");
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("no partition 3"), "{}", out.stderr);

    // A record above max.message.bytes (1 MiB) is refused; the others are written.
    let mut input = b"small-1\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 2 * 1024 * 1024));
    input.extend_from_slice(b"\nsmall-2\n");
    let out = run(&broker, &["produce", "pc-errors", "--format", "json"], &input);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("MESSAGE_TOO_LARGE"), "{}", out.stderr);
    let summary: Value = serde_json::from_str(out.text().trim()).expect("JSON summary");
    assert_eq!((summary["acknowledged"].as_u64(), summary["refused"].as_u64()), (Some(2), Some(1)), "{summary}");
    assert_eq!(summary["partitions"][0]["errors"][0]["error"], "MESSAGE_TOO_LARGE");
    assert_eq!(consume(&broker, &["pc-errors", "-e", "-f", "%v\\n"]).lines(), ["small-1", "small-2"]);

    // Nothing listens on a port that was just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let nowhere = format!("127.0.0.1:{port}");
    for args in [&["produce", "pc-errors"][..], &["consume", "pc-errors", "-e"][..]] {
        let out = Running::start(&nowhere, args).wait();
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("cannot reach"), "{args:?}: {}", out.stderr);
    }
}
