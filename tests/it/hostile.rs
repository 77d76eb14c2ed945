//! Hostile input: nothing a client sends may crash the broker or make it allocate beyond its
//! limits. Each case is sent on a raw socket, the broker must close that connection (or
//! answer with an error) and stay up, and then serve a normal librdkafka round trip.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

use crate::util::TestBroker;

/// A request frame: size prefix, header v1/v2 (key, version, correlation id 7, client id
/// "evil", tagged fields when flexible) and `body`.
fn frame(api_key: i16, version: i16, flexible_header: bool, body: &[u8]) -> Vec<u8> {
    let mut req = Vec::new();
    req.extend_from_slice(&api_key.to_be_bytes());
    req.extend_from_slice(&version.to_be_bytes());
    req.extend_from_slice(&7i32.to_be_bytes());
    req.extend_from_slice(&4i16.to_be_bytes());
    req.extend_from_slice(b"evil");
    if flexible_header {
        req.push(0); // no tagged fields
    }
    req.extend_from_slice(body);
    let mut out = (req.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&req);
    out
}

/// Sends raw bytes and waits until the broker closes the connection or answers.
fn send_raw(broker: &TestBroker, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(broker.kafka_addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let _ = s.write_all(bytes);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer); // EOF when the broker closes; timeout otherwise
    answer
}

async fn round_trip(broker: &TestBroker, topic: &str) {
    let p: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", broker.bootstrap()).create().expect("producer");
    p.send(FutureRecord::to(topic).key("k").payload("still alive"), Duration::from_secs(20))
        .await
        .map_err(|(e, _)| e)
        .expect("produce after hostile input");
    let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", broker.bootstrap()).create().expect("consumer");
    let (_, high) = c.fetch_watermarks(topic, 0, Duration::from_secs(20)).expect("watermarks");
    assert_eq!(high, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_close_one_connection_and_the_broker_keeps_serving() {
    let mut broker = TestBroker::start(&[]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // The two known aborts of kafka-protocol 0.18: array counts that preallocate ~150 GB
        // and ~280 GB.
        ("Metadata v0 with array count 0x7fffffff", frame(3, 0, false, &[0x7f, 0xff, 0xff, 0xff, 0x00])),
        ("DescribeLogDirs v4 with compact count 0xcfffffff", frame(35, 4, true, &[0xff, 0xff, 0xff, 0xff, 0x2c])),
        // The same class on served, flexible APIs.
        ("Metadata v12 with compact count 0xcfffffff", frame(3, 12, true, &[0xff, 0xff, 0xff, 0xff, 0x2c])),
        ("CreateTopics v7 with compact count 0xcfffffff", frame(19, 7, true, &[0xff, 0xff, 0xff, 0xff, 0x2c])),
        (
            "Produce v9 with huge topic count",
            frame(0, 9, true, &[0x00, 0xff, 0xff, 0x00, 0x00, 0x27, 0x10, 0xff, 0xff, 0xff, 0xff, 0x0f]),
        ),
        ("Fetch v4 with array count 0x7fffffff", {
            let mut body = vec![0xff, 0xff, 0xff, 0xff]; // replica id -1
            body.extend_from_slice(&[0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0]); // wait, min, max bytes, isolation
            body.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff]);
            frame(1, 4, false, &body)
        }),
        ("frame length 2^31-1", i32::MAX.to_be_bytes().to_vec()),
        ("negative frame length", (-5i32).to_be_bytes().to_vec()),
        ("truncated request", {
            let mut f = frame(3, 1, false, &[0, 0, 0, 0]);
            f.truncate(f.len() - 3);
            f
        }),
        ("frame shorter than a header", vec![0, 0, 0, 3, 0, 3, 0]),
        ("unknown API key", frame(0x7fff, 0, false, &[])),
        ("unsupported version of a served API", frame(3, 99, true, &[])),
        ("Produce v2 (pre-0.11 format)", frame(0, 2, false, &[0, 1, 0, 0, 0x75, 0x30, 0, 0, 0, 0])),
        ("garbage", b"GET / HTTP/1.1\r\nHost: weir\r\n\r\n".to_vec()),
    ];
    for (name, bytes) in cases {
        let answer = send_raw(&broker, &bytes);
        assert!(broker.is_running(), "the broker died on: {name}");
        assert!(answer.len() < 1024, "{name}: unexpected answer of {} bytes", answer.len());
    }
    let log = broker.log();
    assert!(log.contains("closing connection"), "hostile connections are logged as closed");
    // These reached kafka-protocol's decoder (which preallocates from the count) and failed
    // cleanly there: the allocator, not an earlier check, is what kept the process alive.
    for decoded in
        ["malformed Metadata v0 request", "malformed Metadata v12 request", "malformed CreateTopics v7 request"]
    {
        assert!(log.contains(decoded), "expected {decoded:?} in the broker log");
    }
    round_trip(&broker, "after-hostile").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_frame_that_never_completes_is_dropped_after_the_request_timeout() {
    let broker = TestBroker::start(&["request.timeout.ms=500"]);
    let mut s = TcpStream::connect(broker.kafka_addr).expect("connect");
    s.write_all(&1_000_000i32.to_be_bytes()).expect("write prefix");
    s.write_all(&[0u8; 100]).expect("write some");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).expect("the broker closes the stalled connection");
    assert_eq!(n, 0);
    assert!(broker.log().contains("did not arrive within request.timeout.ms"));
}

#[test]
fn api_versions_beyond_v4_gets_the_v0_unsupported_version_answer() {
    let broker = TestBroker::start(&[]);
    let answer = send_raw_until_answer(&broker, &frame(18, 9, true, &[]));
    // size, correlation id 7, error 35, one entry: ApiVersions 0..4
    assert_eq!(&answer[4..8], &7i32.to_be_bytes());
    assert_eq!(&answer[8..10], &35i16.to_be_bytes());
    assert_eq!(&answer[10..14], &1i32.to_be_bytes());
    assert_eq!(&answer[14..20], &[0, 18, 0, 0, 0, 4]);
}

fn send_raw_until_answer(broker: &TestBroker, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(broker.kafka_addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    s.write_all(bytes).expect("write");
    let mut size = [0u8; 4];
    s.read_exact(&mut size).expect("response size");
    let mut rest = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut rest).expect("response");
    [size.to_vec(), rest].concat()
}

#[test]
fn an_unknown_topic_is_an_error_in_the_response_not_a_closed_connection() {
    let broker = TestBroker::start(&["auto.create.topics.enable=false"]);
    let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", broker.bootstrap()).create().expect("consumer");
    let r = c.fetch_watermarks("missing", 0, Duration::from_secs(5));
    assert!(r.is_err());
    assert!(!broker.log().contains("closing connection"));
}

/// Writes seed inputs for the fuzzer (valid requests of every served API at every advertised
/// version, plus the known hostile inputs). Run on purpose only:
/// `WEIR_WRITE_FUZZ_SEEDS=1 cargo test --test it -- --ignored write_fuzz_seeds`.
#[test]
#[ignore = "writes fuzz seeds into tests/fuzz/corpus"]
fn write_fuzz_seeds() {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::Encodable;
    if std::env::var_os("WEIR_WRITE_FUZZ_SEEDS").is_none() {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus/decode_request");
    std::fs::create_dir_all(&dir).expect("corpus dir");
    let mut n = 0;
    let mut write = |bytes: &[u8]| {
        std::fs::write(dir.join(format!("seed-{n:04}")), bytes).expect("write seed");
        n += 1;
    };
    for spec in weir::protocol::APIS {
        for version in spec.decodable_min..=spec.max {
            let body: RequestKind = match spec.key {
                ApiKey::Produce => ProduceRequest::default().into(),
                ApiKey::Fetch => FetchRequest::default().into(),
                ApiKey::ListOffsets => ListOffsetsRequest::default().into(),
                ApiKey::Metadata => MetadataRequest::default().into(),
                ApiKey::ApiVersions => ApiVersionsRequest::default().into(),
                ApiKey::CreateTopics => CreateTopicsRequest::default().into(),
                ApiKey::DeleteTopics => DeleteTopicsRequest::default().into(),
                ApiKey::InitProducerId => InitProducerIdRequest::default().into(),
                ApiKey::CreatePartitions => CreatePartitionsRequest::default().into(),
                ApiKey::DeleteRecords => DeleteRecordsRequest::default().into(),
                ApiKey::DescribeCluster => DescribeClusterRequest::default().into(),
                ApiKey::DescribeConfigs => DescribeConfigsRequest::default().into(),
                ApiKey::AlterConfigs => AlterConfigsRequest::default().into(),
                ApiKey::IncrementalAlterConfigs => IncrementalAlterConfigsRequest::default().into(),
                other => panic!("add a seed for {other:?}"),
            };
            let header = RequestHeader::default()
                .with_request_api_key(spec.key as i16)
                .with_request_api_version(version)
                .with_correlation_id(1)
                .with_client_id(Some(kafka_protocol::protocol::StrBytes::from_static_str("seed")));
            let mut frame = bytes::BytesMut::new();
            header.encode(&mut frame, spec.key.request_header_version(version)).expect("header");
            if body.encode(&mut frame, version).is_ok() {
                write(&frame);
            }
        }
    }
    write(&frame(3, 0, false, &[0x7f, 0xff, 0xff, 0xff, 0x00])[4..]);
    write(&frame(35, 4, true, &[0xff, 0xff, 0xff, 0xff, 0x2c])[4..]);
    write(&frame(3, 12, true, &[0xff, 0xff, 0xff, 0xff, 0x2c])[4..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_connections_are_served_at_once() {
    let broker = TestBroker::start(&[]);
    let request = frame(18, 3, true, &[1, 1, 0]); // ApiVersions v3: empty software name and version, no tags
    let mut streams = Vec::with_capacity(2000);
    for _ in 0..2000 {
        let mut s = TcpStream::connect(broker.kafka_addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        s.write_all(&request).expect("send ApiVersions");
        streams.push(s);
    }
    for (i, s) in streams.iter_mut().enumerate() {
        let mut size = [0u8; 4];
        s.read_exact(&mut size).unwrap_or_else(|e| panic!("connection {i} got no answer: {e}"));
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        s.read_exact(&mut body).expect("response body");
        assert_eq!(&body[..4], &7i32.to_be_bytes(), "correlation id");
        assert_eq!(&body[4..6], &0i16.to_be_bytes(), "no error");
    }
    round_trip(&broker, "many-connections").await;
    drop(streams);
}

#[test]
fn trickling_bytes_do_not_keep_a_partial_frame_alive() {
    let broker = TestBroker::start(&["request.timeout.ms=500"]);
    let mut s = TcpStream::connect(broker.kafka_addr).expect("connect");
    s.write_all(&1_000i32.to_be_bytes()).expect("write prefix");
    let started = std::time::Instant::now();
    // One byte every 100 ms: each read arrives well within the timeout, the frame never does.
    let mut closed = false;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        if s.write_all(&[0]).is_err() {
            closed = true;
            break;
        }
        s.set_read_timeout(Some(Duration::from_millis(1))).expect("timeout");
        let mut buf = [0u8; 1];
        if matches!(s.read(&mut buf), Ok(0)) {
            closed = true;
            break;
        }
    }
    assert!(closed, "the connection must be closed");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "closed after {:?}, not at the frame deadline",
        started.elapsed()
    );
    assert!(broker.log().contains("did not arrive within request.timeout.ms"));
}

/// `connections.max.idle.ms` closes a connection that sends nothing, and only then: one
/// that keeps sending requests for several idle periods stays open.
#[test]
fn an_idle_connection_is_closed_after_connections_max_idle_ms_and_a_busy_one_is_not() {
    let broker = TestBroker::start(&["connections.max.idle.ms=1000"]);
    let mut s = TcpStream::connect(broker.kafka_addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let busy_until = std::time::Instant::now() + Duration::from_secs(3);
    let mut answered = 0;
    while std::time::Instant::now() < busy_until {
        s.write_all(&frame(18, 0, false, &[])).expect("a busy connection stays open");
        let mut size = [0u8; 4];
        s.read_exact(&mut size).expect("ApiVersions answer");
        let mut rest = vec![0u8; i32::from_be_bytes(size) as usize];
        s.read_exact(&mut rest).expect("ApiVersions answer");
        answered += 1;
    }
    assert!(answered > 10);
    // Silent from here: the broker closes the connection (EOF), well before the read timeout.
    let started = std::time::Instant::now();
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).expect("the broker closes the idle connection");
    assert_eq!(n, 0);
    assert!(started.elapsed() >= Duration::from_millis(900), "closed after {:?}", started.elapsed());
}
