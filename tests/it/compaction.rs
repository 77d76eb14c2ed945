//! Log compaction through the real broker: many versions of keys produced by librdkafka
//! (compressed), the cleaner running in the background, consumers seeing the latest value
//! of every key at its original offset; `__consumer_offsets` compacted the same way; SIGKILLs
//! in the middle of cleaning lose nothing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::observability::{http_get, sample};
use crate::util::TestBroker;

const DEADLINE: Duration = Duration::from_secs(60);
const SETTINGS: &[&str] = &["log.cleaner.backoff.ms=100", "log.cleaner.min.cleanable.ratio=0.1"];

async fn create_compacted(broker: &TestBroker, topic: &str, extra: &[(&str, &str)]) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", broker.bootstrap()).create().expect("admin");
    let mut t = NewTopic::new(topic, 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("segment.bytes", "4096");
    for (k, v) in extra {
        t = t.set(k, v);
    }
    for r in admin.create_topics(&[t], &AdminOptions::new()).await.expect("create") {
        r.expect("created");
    }
}

/// Produces `rounds` versions of `keys` keys (value "r<round>-k<key>"), the last round
/// deleting every fifth key; returns key → (latest value, or None for a tombstone).
async fn produce_versions(
    broker: &TestBroker,
    topic: &str,
    rounds: usize,
    keys: usize,
) -> BTreeMap<String, Option<String>> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("compression.type", "zstd")
        .set("linger.ms", "2")
        .set("batch.size", "1500")
        .create()
        .expect("producer");
    let mut latest = BTreeMap::new();
    let mut pending = Vec::new();
    for round in 0..rounds {
        for k in 0..keys {
            let key = format!("key-{k:04}");
            let tombstone = round + 1 == rounds && k % 5 == 0;
            let value = (!tombstone).then(|| format!("r{round}-k{k}"));
            let mut record = FutureRecord::<String, String>::to(topic).key(&key);
            if let Some(v) = &value {
                record = record.payload(v);
            }
            pending.push(producer.send_result(record).map_err(|(e, _)| e).expect("queued"));
            latest.insert(key, value);
        }
    }
    for p in pending {
        p.await.expect("not cancelled").map_err(|(e, _)| e).expect("delivered");
    }
    latest
}

/// Reads the whole topic: (offset, key, value) in order.
fn read_all(broker: &TestBroker, topic: &str) -> Vec<(i64, String, Option<String>)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "compaction-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).expect("tpl");
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    loop {
        assert!(Instant::now() < deadline, "read {} records, no end of partition", out.len());
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let s = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
                out.push((m.offset(), s(m.key()).expect("key"), s(m.payload())));
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return out,
            Some(Err(e)) => panic!("consume: {e}"),
            None => {}
        }
    }
}

fn cleaner_passes(broker: &TestBroker, topic: &str) -> f64 {
    let (_, metrics) = http_get(broker, "/metrics");
    sample(&metrics, &format!("weir_cleaner_passes_total{{topic=\"{topic}\"}}")).unwrap_or(0.0)
}

fn wait_for_passes(broker: &TestBroker, topic: &str, passes: f64) {
    let deadline = Instant::now() + DEADLINE;
    while cleaner_passes(broker, topic) < passes {
        assert!(Instant::now() < deadline, "the cleaner did not run on {topic}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Checks a compacted read against the latest values: offsets increase; every key's last
/// record is its latest value; earlier records of a key can only be in the uncleaned tail.
fn check_latest(records: &[(i64, String, Option<String>)], latest: &BTreeMap<String, Option<String>>) {
    let offsets: Vec<i64> = records.iter().map(|r| r.0).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "offsets increase");
    let mut last: BTreeMap<&str, &Option<String>> = BTreeMap::new();
    for (_, k, v) in records {
        last.insert(k, v);
    }
    for (k, v) in latest {
        match last.get(k.as_str()) {
            Some(got) => assert_eq!(*got, v, "latest value of {k}"),
            None => assert!(v.is_none(), "{k} is missing but was not deleted"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_topic_keeps_the_latest_value_of_every_key() {
    let broker = TestBroker::start(SETTINGS);
    create_compacted(&broker, "profiles", &[("min.cleanable.dirty.ratio", "0.1")]).await;
    let latest = produce_versions(&broker, "profiles", 20, 200).await;
    wait_for_passes(&broker, "profiles", 1.0);
    // Passes may run while records still arrive; later passes take the rest. Every read is
    // correct; within the deadline most of the 4,000 records are gone.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let records = read_all(&broker, "profiles");
        check_latest(&records, &latest);
        if records.len() < 4_000 / 3 {
            break;
        }
        assert!(Instant::now() < deadline, "compaction left {} of the 4,000 records", records.len());
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, metrics) = http_get(&broker, "/metrics");
    let reclaimed = sample(&metrics, "weir_cleaner_bytes_reclaimed_total{topic=\"profiles\"}").unwrap_or(0.0);
    assert!(reclaimed > 0.0, "bytes reclaimed are reported");
    // The log checks out, batch by batch (CRCs of rewritten batches included).
    let mut broker = broker;
    broker.stop();
    let verify =
        crate::util::run_weir(&["log", "verify", broker.data_dir().join("profiles-0").to_str().expect("utf-8")]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_topic_refuses_records_without_a_key() {
    let broker = TestBroker::start(SETTINGS);
    create_compacted(&broker, "keyed-only", &[]).await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("compression.type", "lz4")
        .set("message.timeout.ms", "10000")
        .create()
        .expect("producer");
    let refused =
        producer.send(FutureRecord::<(), str>::to("keyed-only").payload("no key"), Duration::from_secs(10)).await;
    let e = refused.map(|_| ()).map_err(|(e, _)| e).expect_err("refused");
    assert!(e.to_string().contains("InvalidRecord") || e.to_string().contains("Invalid record"), "{e}");
    producer
        .send(FutureRecord::to("keyed-only").key("k").payload("v"), Duration::from_secs(10))
        .await
        .map_err(|(e, _)| e)
        .expect("a keyed record is accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_offsets_are_compacted_and_still_load() {
    let mut broker = TestBroker::start(&[
        "log.cleaner.backoff.ms=100",
        "log.cleaner.min.cleanable.ratio=0.1",
        "offsets.topic.segment.bytes=4096",
        "offsets.topic.num.partitions=1",
    ]);
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", broker.bootstrap()).create().expect("admin");
    admin
        .create_topics(&[NewTopic::new("events", 1, TopicReplication::Fixed(1))], &AdminOptions::new())
        .await
        .expect("create");
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "busy-committer")
        .create()
        .expect("consumer");
    for i in 0..600 {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("events", 0, Offset::Offset(i)).expect("tpl");
        c.commit(&tpl, CommitMode::Sync).expect("commit");
    }
    // Passes run while the commits arrive; wait (with a deadline) until one has run over all
    // of them but the active segment: the log shrinks to about one segment.
    let series = "weir_partition_log_size_bytes{topic=\"__consumer_offsets\",partition=\"0\"}";
    let deadline = Instant::now() + DEADLINE;
    let mut size = f64::MAX;
    while size > 8_192.0 {
        assert!(Instant::now() < deadline, "600 commits (~36 KB) were never compacted: {size} bytes");
        std::thread::sleep(Duration::from_millis(50));
        size = sample(&http_get(&broker, "/metrics").1, series).unwrap_or(f64::MAX);
    }
    assert!(cleaner_passes(&broker, "__consumer_offsets") >= 1.0);
    drop(c);
    broker.stop();
    broker.restart();
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "busy-committer")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("events", 0);
    let committed = c.committed_offsets(tpl, Duration::from_secs(20)).expect("committed");
    assert_eq!(committed.elements()[0].offset(), Offset::Offset(599), "the last commit survives compaction");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_compaction_loses_nothing() {
    let mut broker = TestBroker::start(&["log.cleaner.backoff.ms=20", "log.cleaner.min.cleanable.ratio=0.01"]);
    create_compacted(&broker, "ledger", &[("min.cleanable.dirty.ratio", "0.01"), ("segment.bytes", "3000")]).await;
    let mut latest = BTreeMap::new();
    // Rounds of writes, each followed by a kill at a different moment of the cleaner's work.
    for round in 0..6u64 {
        latest.extend(produce_versions(&broker, "ledger", 5, 300).await);
        // Kill at different moments: right away (often mid-pass: the cleaner runs every
        // 20 ms), after this process's first pass completed, or while the next one may run.
        match round % 3 {
            0 => {}
            1 => wait_for_passes(&broker, "ledger", 1.0),
            _ => {
                wait_for_passes(&broker, "ledger", 1.0);
                latest.extend(produce_versions(&broker, "ledger", 1, 300).await);
            }
        }
        broker.kill();
        broker.restart();
        let records = read_all(&broker, "ledger");
        check_latest(&records, &latest);
    }
    broker.stop();
    let verify = crate::util::run_weir(&["log", "verify", broker.data_dir().join("ledger-0").to_str().expect("utf-8")]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
    let leftovers: Vec<String> = std::fs::read_dir(broker.data_dir().join("ledger-0"))
        .expect("list")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".cleaned") || n.contains(".swap"))
        .collect();
    assert!(leftovers.is_empty(), "no cleaner files left behind: {leftovers:?}");
}
