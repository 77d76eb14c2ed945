//! Produce and fetch through the real broker with librdkafka (the `rdkafka` crate).

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::util::TestBroker;

const DEADLINE: Duration = Duration::from_secs(30);

fn producer(broker: &TestBroker, extra: &[(&str, &str)]) -> FutureProducer {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", broker.bootstrap()).set("message.timeout.ms", "20000");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("producer")
}

fn consumer(broker: &TestBroker) -> BaseConsumer {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "weir-test-unused")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    // WEIR_TEST_RDKAFKA_DEBUG=fetch,protocol prints librdkafka's view when a test fails.
    if let Ok(debug) = std::env::var("WEIR_TEST_RDKAFKA_DEBUG") {
        c.set("debug", debug);
    }
    c.create().expect("consumer")
}

fn admin(broker: &TestBroker) -> AdminClient<DefaultClientContext> {
    ClientConfig::new().set("bootstrap.servers", broker.bootstrap()).create().expect("admin")
}

/// Reads `n` messages from `topic`/`partition` starting at `offset`, with a deadline.
fn consume(
    broker: &TestBroker,
    topic: &str,
    partition: i32,
    offset: Offset,
    n: usize,
) -> Vec<rdkafka::message::OwnedMessage> {
    let c = consumer(broker);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, offset).expect("tpl");
    c.assign(&tpl).expect("assign");
    let deadline = Instant::now() + DEADLINE;
    let mut out = Vec::new();
    while out.len() < n {
        assert!(Instant::now() < deadline, "consumed only {} of {n} messages", out.len());
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                if std::env::var_os("WEIR_TEST_TRACE_OFFSETS").is_some() {
                    eprintln!("consumed offset {}", m.offset());
                }
                out.push(m.detach())
            }
            Some(Err(e)) => panic!("consume error: {e}"),
            None => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_keeps_keys_headers_timestamps_and_null_values() {
    // Retention by time is live in the broker (7 days by default), so timestamps are recent.
    let broker = TestBroker::start(&[]);
    let p = producer(&broker, &[]);
    let n = 200;
    let base_ts = crate::util::now_ms() - 60_000;
    for i in 0..n {
        let key = format!("key-{i}");
        let value = format!("value-{i}");
        let headers = OwnedHeaders::new().insert(Header { key: "h", value: Some(format!("hv-{i}").as_bytes()) });
        let mut record = FutureRecord::to("round-trip").key(&key).headers(headers).timestamp(base_ts + i);
        if i % 10 != 0 {
            record = record.payload(&value);
        }
        p.send(record, DEADLINE).await.map_err(|(e, _)| e).expect("delivered");
    }
    let got = consume(&broker, "round-trip", 0, Offset::Beginning, n as usize);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m.offset(), i as i64);
        assert_eq!(m.key(), Some(format!("key-{i}").as_bytes()));
        if i % 10 == 0 {
            assert_eq!(m.payload(), None, "null value at {i}");
        } else {
            assert_eq!(m.payload(), Some(format!("value-{i}").as_bytes()));
        }
        assert_eq!(m.timestamp().to_millis(), Some(base_ts + i as i64));
        let h = m.headers().expect("headers").get(0);
        assert_eq!((h.key, h.value), ("h", Some(format!("hv-{i}").as_bytes())));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_are_found_by_timestamp_and_watermarks_are_reported() {
    // Fixed timestamps from 1970: keep retention from deleting them.
    let broker = TestBroker::start(&["log.retention.ms=-1"]);
    let p = producer(&broker, &[("linger.ms", "0")]);
    for i in 0..50i64 {
        let record = FutureRecord::to("times").key("k").payload("v").timestamp(1_000_000 + i * 1000);
        p.send(record, DEADLINE).await.map_err(|(e, _)| e).expect("delivered");
    }
    let c = consumer(&broker);
    let (low, high) = c.fetch_watermarks("times", 0, DEADLINE).expect("watermarks");
    assert_eq!((low, high), (0, 50));
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("times", 0, Offset::Offset(1_020_500)).expect("tpl");
    let found = c.offsets_for_times(tpl, DEADLINE).expect("offsets for times");
    assert_eq!(found.find_partition("times", 0).expect("partition").offset(), Offset::Offset(21));
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("times", 0, Offset::Offset(9_000_000)).expect("tpl");
    let found = c.offsets_for_times(tpl, DEADLINE).expect("offsets for times");
    assert_eq!(found.find_partition("times", 0).expect("partition").offset(), Offset::End);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_created_and_deleted_through_the_admin_api() {
    let broker = TestBroker::start(&[]);
    let a = admin(&broker);
    let opts = AdminOptions::new().operation_timeout(Some(DEADLINE));
    let topic = NewTopic::new("admin-made", 3, TopicReplication::Fixed(1)).set("retention.ms", "60000");
    let results = a.create_topics([&topic], &opts).await.expect("create topics");
    assert!(results[0].is_ok(), "{results:?}");
    let again = a.create_topics([&topic], &opts).await.expect("create topics");
    assert!(matches!(&again[0], Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists))), "{again:?}");
    let bad = NewTopic::new("bad-config", 1, TopicReplication::Fixed(1)).set("no.such.setting", "1");
    let bad = a.create_topics([&bad], &opts).await.expect("create topics");
    assert!(matches!(&bad[0], Err((_, rdkafka::types::RDKafkaErrorCode::InvalidConfig))), "{bad:?}");
    let rf = NewTopic::new("three-copies", 1, TopicReplication::Fixed(3));
    let rf = a.create_topics([&rf], &opts).await.expect("create topics");
    assert!(matches!(&rf[0], Err((_, rdkafka::types::RDKafkaErrorCode::InvalidReplicationFactor))), "{rf:?}");

    let metadata = consumer(&broker).fetch_metadata(Some("admin-made"), DEADLINE).expect("metadata");
    assert_eq!(metadata.topics()[0].partitions().len(), 3);

    let deleted = a.delete_topics(&["admin-made"], &opts).await.expect("delete topics");
    assert!(deleted[0].is_ok(), "{deleted:?}");
    assert!(!broker.data_dir().join("admin-made-0").exists());
    let gone = a.delete_topics(&["admin-made"], &opts).await.expect("delete topics");
    assert!(matches!(&gone[0], Err((_, rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition))), "{gone:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_auto_created_only_when_enabled() {
    let on = TestBroker::start(&["num.partitions=2"]);
    let p = producer(&on, &[]);
    p.send(FutureRecord::to("auto").key("k").payload("v"), DEADLINE).await.map_err(|(e, _)| e).expect("delivered");
    let md = consumer(&on).fetch_metadata(Some("auto"), DEADLINE).expect("metadata");
    assert_eq!(md.topics()[0].partitions().len(), 2);

    let off = TestBroker::start(&["auto.create.topics.enable=false"]);
    let p = producer(&off, &[("message.timeout.ms", "3000")]);
    let r = p.send(FutureRecord::to("nope").key("k").payload("v"), Duration::from_secs(10)).await;
    assert!(r.is_err(), "a produce to a missing topic must fail when auto-create is off");
    let md = consumer(&off).fetch_metadata(Some("nope"), DEADLINE).expect("metadata");
    assert!(md.topics()[0].error().is_some(), "the topic must be reported missing");
    assert!(!off.data_dir().join("nope-0").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_topics_and_data() {
    let mut broker = TestBroker::start(&[]);
    let a = admin(&broker);
    let topic = NewTopic::new("durable", 2, TopicReplication::Fixed(1)).set("segment.bytes", "100000");
    a.create_topics([&topic], &AdminOptions::new()).await.expect("create")[0].as_ref().expect("created");
    let p = producer(&broker, &[]);
    for i in 0..100 {
        let v = format!("v{i}");
        p.send(FutureRecord::to("durable").partition(i % 2).key("k").payload(&v), DEADLINE)
            .await
            .map_err(|(e, _)| e)
            .expect("delivered");
    }
    p.flush(DEADLINE).expect("flush");
    drop(p);
    drop(a);
    broker.stop();
    assert!(broker.data_dir().join(".weir_cleanshutdown").exists());
    broker.restart();
    let got = consume(&broker, "durable", 1, Offset::Beginning, 50);
    assert_eq!(got[49].payload(), Some("v99".as_bytes()));
    let md = consumer(&broker).fetch_metadata(Some("durable"), DEADLINE).expect("metadata");
    assert_eq!(md.topics()[0].partitions().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_produce_keeps_everything_acknowledged() {
    let mut broker = TestBroker::start(&[]);
    let p = producer(&broker, &[("acks", "all"), ("message.timeout.ms", "5000"), ("linger.ms", "1")]);
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(i64, String)>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producing = {
        let (acked, stop) = (acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            let mut in_flight = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 200_000 {
                let value = format!("m{i}");
                let send = p.send_result(FutureRecord::to("killed").key("k").payload(&value));
                if let Ok(delivery) = send {
                    in_flight.push((value, delivery));
                }
                i += 1;
                if in_flight.len() >= 64 {
                    for (value, delivery) in in_flight.drain(..) {
                        if let Ok(Ok(d)) = delivery.await {
                            acked.lock().expect("lock").push((d.offset, value));
                        }
                    }
                }
            }
            for (value, delivery) in in_flight {
                if let Ok(Ok(d)) = delivery.await {
                    acked.lock().expect("lock").push((d.offset, value));
                }
            }
        })
    };
    let deadline = Instant::now() + DEADLINE;
    while acked.lock().expect("lock").len() < 2_000 {
        assert!(Instant::now() < deadline, "producer made no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    broker.kill(); // SIGKILL while the producer is still sending
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    producing.await.expect("producer task");
    let acked = acked.lock().expect("lock").clone();
    broker.restart();
    let max_offset = acked.iter().map(|(o, _)| *o).max().expect("acks");
    let got = consume(&broker, "killed", 0, Offset::Beginning, max_offset as usize + 1);
    for (offset, value) in &acked {
        assert_eq!(got[*offset as usize].payload(), Some(value.as_bytes()), "acknowledged record at {offset} lost");
    }
    assert!(broker.log().contains("clean_shutdown=false"), "the restart after SIGKILL must recover");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_compression_codec_round_trips_and_is_stored_as_sent() {
    let broker = TestBroker::start(&[]);
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        let p = producer(&broker, &[("compression.codec", codec), ("linger.ms", "50")]);
        let values: Vec<String> = (0..500).map(|i| format!("{codec} value {i} {}", "x".repeat(i % 50))).collect();
        let sends: Vec<_> = values
            .iter()
            .map(|v| p.send_result(FutureRecord::to(&topic).key("k").payload(v)).expect("queued"))
            .collect();
        for s in sends {
            s.await.expect("delivery").map_err(|(e, _)| e).expect("delivered");
        }
        let got = consume(&broker, &topic, 0, Offset::Beginning, values.len());
        for (m, v) in got.iter().zip(&values) {
            assert_eq!(m.payload(), Some(v.as_bytes()), "{codec}");
        }
        // The broker stored the producer's compressed batches unchanged (librdkafka compresses
        // with lz4 only because FindCoordinator is advertised: its BrokerGroupCoordinator
        // feature gate).
        let dump = crate::util::run_weir(&[
            "log",
            "dump",
            broker.data_dir().join(format!("{topic}-0/00000000000000000000.log")).to_str().expect("utf-8"),
        ]);
        let text = String::from_utf8_lossy(&dump.stdout);
        assert!(text.contains(&format!("compresscodec: {codec}")), "{codec}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_near_one_megabyte_round_trip_and_larger_ones_are_refused() {
    let broker = TestBroker::start(&[]);
    let p = producer(&broker, &[("message.max.bytes", "2000000")]);
    let big = vec![b'b'; 1_000_000];
    p.send(FutureRecord::to("big").key("k").payload(&big), DEADLINE).await.map_err(|(e, _)| e).expect("delivered");
    let got = consume(&broker, "big", 0, Offset::Beginning, 1);
    assert_eq!(got[0].payload().map(<[u8]>::len), Some(1_000_000));
    let too_big = vec![b'b'; 1_100_000];
    let r = p.send(FutureRecord::to("big").key("k").payload(&too_big), DEADLINE).await;
    assert!(
        matches!(
            &r,
            Err((
                rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::MessageSizeTooLarge),
                _
            ))
        ),
        "{:?}",
        r.as_ref().err().map(|(e, _)| e)
    );
}

/// A Fetch for offset `offset` of partition 0 of `topic` (v4: names, no sessions) that
/// waits up to `max_wait_ms` for one byte.
fn long_poll(topic: &str, offset: i64, max_wait_ms: i32) -> kafka_protocol::messages::FetchRequest {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{FetchRequest, TopicName};
    FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(kafka_protocol::protocol::StrBytes::from_string(topic.to_owned())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])])
}

fn fetched_bytes(r: &kafka_protocol::messages::FetchResponse) -> usize {
    r.responses[0].partitions[0].records.as_ref().map_or(0, bytes::Bytes::len)
}

/// Long polls on one connection: a Fetch with nothing to return waits its `max_wait_ms`
/// (never less), one that data arrives for returns at once, a shorter wait after a longer
/// one is not held to the longer deadline (the connection re-arms its one timer), and
/// `min_bytes` 0 does not wait at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_waits_max_wait_ms_and_returns_as_soon_as_a_record_arrives() {
    let broker = TestBroker::start(&[]);
    let topic = "long-poll";
    let p = producer(&broker, &[]);
    p.send(FutureRecord::to(topic).key("k").payload("first"), DEADLINE).await.map_err(|(e, _)| e).expect("produce");
    let mut c = weir::client::Client::connect(&broker.bootstrap()).await.expect("connect");

    let started = tokio::time::Instant::now();
    let r = c.request(4, &long_poll(topic, 1, 300)).await.expect("fetch");
    let waited = started.elapsed();
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
    assert_eq!(fetched_bytes(&r), 0);
    assert!(waited >= Duration::from_millis(300), "answered after {waited:?}, before max_wait_ms");
    assert!(waited < Duration::from_secs(10), "answered after {waited:?}");

    let started = tokio::time::Instant::now();
    let waiting = long_poll(topic, 1, 20_000);
    let (r, sent) = tokio::join!(c.request(4, &waiting), async {
        p.send(FutureRecord::to(topic).key("k").payload("second"), DEADLINE).await.map_err(|(e, _)| e)
    });
    let waited = started.elapsed();
    sent.expect("produce while the fetch waits");
    let r = r.expect("fetch");
    assert!(fetched_bytes(&r) > 0, "the append answers the waiting fetch");
    assert!(waited < Duration::from_secs(10), "answered after {waited:?}, not when the record arrived");

    let started = tokio::time::Instant::now();
    let r = c.request(4, &long_poll(topic, 2, 200)).await.expect("fetch");
    let waited = started.elapsed();
    assert_eq!(fetched_bytes(&r), 0);
    assert!(waited >= Duration::from_millis(200), "answered after {waited:?}, before max_wait_ms");
    assert!(waited < Duration::from_secs(10), "held to the previous fetch's 20 s deadline: {waited:?}");

    // min_bytes 0: answered at once, as Kafka does, however long max_wait_ms is.
    let started = tokio::time::Instant::now();
    let r = c.request(4, &long_poll(topic, 2, 20_000).with_min_bytes(0)).await.expect("fetch");
    assert_eq!(fetched_bytes(&r), 0);
    assert!(started.elapsed() < Duration::from_secs(10), "min_bytes 0 waited {:?}", started.elapsed());
}
