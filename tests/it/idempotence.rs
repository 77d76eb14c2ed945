//! The idempotent producer: retries are written once, sequence and epoch errors are Kafka's,
//! the producer state survives restarts and crashes, and idle producer ids expire. Raw
//! requests are encoded with the `kafka-protocol` crate (a real Kafka codec) so that the
//! exact retry can be replayed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use weir::log::batch::BatchBuilder;

use crate::util::TestBroker;

/// An idempotent batch of `n` records from producer `pid`/`epoch` starting at `seq`.
fn idempotent_batch(pid: i64, epoch: i16, seq: i32, n: usize) -> Vec<u8> {
    let mut b = BatchBuilder::new();
    for i in 0..n {
        b.record(crate::util::now_ms(), Some(b"k"), Some(format!("{seq}+{i}").as_bytes()), &[]);
    }
    let mut bytes = b.build();
    // Producer fields are covered by the CRC: set them, then recompute it.
    bytes[43..51].copy_from_slice(&pid.to_be_bytes());
    bytes[51..53].copy_from_slice(&epoch.to_be_bytes());
    bytes[53..57].copy_from_slice(&seq.to_be_bytes());
    let crc = weir::log::batch::compute_crc(&bytes);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    bytes
}

/// Sends one Produce v9 request and returns (error code, base offset).
fn produce_raw(broker: &TestBroker, topic: &str, batch: &[u8]) -> (i16, i64) {
    let version = 9;
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
        TopicProduceData::default().with_name(TopicName(StrBytes::from_string(topic.to_owned()))).with_partition_data(
            vec![PartitionProduceData::default().with_index(0).with_records(Some(Bytes::copy_from_slice(batch)))],
        ),
    ]);
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("raw")));
    let mut body = BytesMut::new();
    header.encode(&mut body, ApiKey::Produce.request_header_version(version)).expect("header");
    request.encode(&mut body, version).expect("body");
    let mut s = TcpStream::connect(broker.kafka_addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    s.write_all(&(body.len() as i32).to_be_bytes()).expect("write");
    s.write_all(&body).expect("write");
    let mut size = [0u8; 4];
    s.read_exact(&mut size).expect("response size");
    let mut response = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut response).expect("response");
    let mut response = Bytes::from(response);
    let header =
        ResponseHeader::decode(&mut response, ApiKey::Produce.response_header_version(version)).expect("header");
    assert_eq!(header.correlation_id, 1);
    let r = ProduceResponse::decode(&mut response, version).expect("produce response");
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// Creates `topic` the way clients do: a Metadata request that auto-creates it.
fn auto_create(broker: &TestBroker, topic: &str) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("allow.auto.create.topics", "true")
        .create()
        .expect("consumer");
    c.fetch_metadata(Some(topic), Duration::from_secs(20)).expect("metadata auto-creates");
}

fn log_end(broker: &TestBroker, topic: &str) -> i64 {
    let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", broker.bootstrap()).create().expect("consumer");
    c.fetch_watermarks(topic, 0, Duration::from_secs(20)).expect("watermarks").1
}

#[test]
fn retries_are_written_once_and_sequence_and_epoch_errors_are_kafkas() {
    let mut broker = TestBroker::start(&[]);
    let topic = "idem";
    assert_eq!(produce_raw(&broker, topic, &idempotent_batch(1000, 0, 0, 3)).0, 3, "unknown topic before creation");
    auto_create(&broker, topic);

    let first = idempotent_batch(1000, 0, 0, 3);
    assert_eq!(produce_raw(&broker, topic, &first), (0, 0));
    assert_eq!(produce_raw(&broker, topic, &idempotent_batch(1000, 0, 3, 2)), (0, 3));
    // A retry of the first batch: acknowledged with its original offset, not written again.
    assert_eq!(produce_raw(&broker, topic, &first), (0, 0));
    assert_eq!(log_end(&broker, topic), 5);
    // A gap in the sequence.
    assert_eq!(produce_raw(&broker, topic, &idempotent_batch(1000, 0, 9, 1)).0, 45, "OUT_OF_ORDER_SEQUENCE_NUMBER");
    // A newer epoch restarts at 0; the old epoch is then fenced.
    assert_eq!(produce_raw(&broker, topic, &idempotent_batch(1000, 1, 0, 1)), (0, 5));
    assert_eq!(produce_raw(&broker, topic, &idempotent_batch(1000, 0, 5, 1)).0, 47, "INVALID_PRODUCER_EPOCH");

    // The producer state survives a clean restart...
    broker.stop();
    broker.restart();
    assert_eq!(produce_raw(&broker, topic, &idempotent_batch(1000, 1, 0, 1)), (0, 5), "retry after restart");
    assert_eq!(produce_raw(&broker, topic, &idempotent_batch(1000, 1, 1, 1)), (0, 6));
    // ...and a SIGKILL (rebuilt from the batches after the last snapshot).
    broker.kill();
    broker.restart();
    assert_eq!(produce_raw(&broker, topic, &idempotent_batch(1000, 1, 1, 1)), (0, 6), "retry after SIGKILL");
    assert_eq!(produce_raw(&broker, topic, &idempotent_batch(1000, 1, 3, 1)).0, 45);
    assert_eq!(log_end(&broker, topic), 7);
}

#[test]
fn idle_producers_expire_and_a_producer_without_state_is_accepted_at_any_sequence() {
    let broker = TestBroker::start(&[
        "producer.id.expiration.ms=2000",
        "producer.id.expiration.check.interval.ms=100",
        "log.flush.scheduler.interval.ms=100",
    ]);
    let topic = "expiry";
    auto_create(&broker, topic);

    // A producer the partition has no state for (here: never seen; in life, expired or its
    // batches deleted) is accepted mid-sequence, as Kafka does; from then on it is known.
    assert_eq!(produce_raw(&broker, topic, &idempotent_batch(2000, 0, 7, 1)), (0, 0));
    assert_eq!(produce_raw(&broker, topic, &idempotent_batch(2000, 0, 9, 1)).0, 45, "OUT_OF_ORDER_SEQUENCE_NUMBER");

    let batch = idempotent_batch(2001, 0, 0, 2);
    assert_eq!(produce_raw(&broker, topic, &batch), (0, 1));
    assert_eq!(produce_raw(&broker, topic, &batch), (0, 1), "a retry while the producer is known");
    // Idle for producer.id.expiration.ms, the producer is forgotten: the same batch is new.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (error, offset) = produce_raw(&broker, topic, &batch);
        assert_eq!(error, 0);
        if offset != 1 {
            assert_eq!(offset, 3, "appended after the log end");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "producer 2001 was not expired within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(log_end(&broker, topic), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_librdkafka_producer_delivers_n_and_the_log_holds_exactly_n() {
    let broker = TestBroker::start(&[]);
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("enable.idempotence", "true")
        .set("linger.ms", "2")
        .create()
        .expect("producer");
    let n = 5_000;
    let values: Vec<String> = (0..n).map(|i| format!("v{i}")).collect();
    let sends: Vec<_> = values
        .iter()
        .map(|v| p.send_result(FutureRecord::to("idem-rd").key("k").payload(v)).expect("queued"))
        .collect();
    for s in sends {
        s.await.expect("delivery").map_err(|(e, _)| e).expect("delivered");
    }
    assert_eq!(log_end(&broker, "idem-rd"), n as i64);
    let dump = crate::util::run_weir(&[
        "log",
        "dump",
        "--format",
        "json",
        broker.data_dir().join("idem-rd-0/00000000000000000000.log").to_str().expect("utf-8"),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&dump.stdout).expect("json");
    let batches = v["files"][0]["batches"].as_array().expect("batches");
    assert!(batches.iter().all(|b| b["producer_id"].as_i64() >= Some(0)), "batches carry the producer id");
}
