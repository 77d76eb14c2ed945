//! `/metrics`, `/health` and `/ready` on the HTTP port of the real binary.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::util::TestBroker;

/// GET `path`: (status line, body).
pub fn http_get(broker: &TestBroker, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(broker.http_addr).expect("connect http");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: weir\r\n\r\n").expect("request");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("response");
    let (head, body) = text.split_once("\r\n\r\n").expect("headers and body");
    (head.lines().next().unwrap_or_default().to_owned(), body.to_owned())
}

/// The value of the sample whose line starts with `series` (name and labels, exactly).
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_bytes_records_and_describe_partitions() {
    let broker = TestBroker::start(&[]);
    assert_eq!(http_get(&broker, "/health").0, "HTTP/1.1 200 OK");
    assert_eq!(http_get(&broker, "/ready").0, "HTTP/1.1 200 OK");
    assert!(http_get(&broker, "/nope").0.contains("404"));

    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("linger.ms", "0")
        .create()
        .expect("producer");
    for i in 0..10 {
        p.send(FutureRecord::to("m").key("k").payload(&format!("value {i}")), Duration::from_secs(20))
            .await
            .map_err(|(e, _)| e)
            .expect("delivered");
    }
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "x")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("m", 0, Offset::Beginning).expect("tpl");
    c.assign(&tpl).expect("assign");
    let mut got = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while got < 10 {
        assert!(std::time::Instant::now() < deadline, "consumed {got}");
        if let Some(Ok(_)) = c.poll(Duration::from_millis(200)) {
            got += 1;
        }
    }

    // A refused produce: a keyless record for a compacted topic (INVALID_RECORD, 87).
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", broker.bootstrap()).create().expect("admin");
    let compacted = NewTopic::new("c", 1, TopicReplication::Fixed(1)).set("cleanup.policy", "compact");
    let created = admin.create_topics(&[compacted], &AdminOptions::new()).await.expect("create");
    assert!(created[0].is_ok(), "{created:?}");
    let refused = p.send(FutureRecord::<(), _>::to("c").payload("no key"), Duration::from_secs(20)).await;
    assert!(refused.is_err(), "a keyless record for a compacted topic is refused");

    let (status, metrics) = http_get(&broker, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(sample(&metrics, "weir_produce_errors_total{topic=\"c\",code=\"87\"}"), Some(1.0), "{metrics}");
    assert_eq!(sample(&metrics, "weir_topic_records_in_total{topic=\"m\"}"), Some(10.0), "{metrics}");
    assert_eq!(sample(&metrics, "weir_topic_records_out_total{topic=\"m\"}"), Some(10.0));
    assert!(sample(&metrics, "weir_topic_bytes_in_total{topic=\"m\"}").is_some_and(|b| b > 100.0));
    assert!(sample(&metrics, "weir_requests_total{api=\"Produce\"}").is_some_and(|n| n >= 10.0));
    assert!(sample(&metrics, "weir_request_duration_seconds_count{api=\"Fetch\"}").is_some_and(|n| n >= 1.0));
    assert!(
        metrics.contains("weir_request_duration_seconds_bucket{api=\"Produce\",le=\"0.001\"}"),
        "histogram buckets"
    );
    assert_eq!(sample(&metrics, "weir_partition_log_end_offset{topic=\"m\",partition=\"0\"}"), Some(10.0));
    assert_eq!(sample(&metrics, "weir_partition_high_watermark{topic=\"m\",partition=\"0\"}"), Some(10.0));
    assert_eq!(sample(&metrics, "weir_partition_offline{topic=\"m\",partition=\"0\"}"), Some(0.0));
    assert!(sample(&metrics, "weir_active_connections").is_some_and(|n| n >= 1.0));
    assert!(metrics.contains("# HELP weir_topic_bytes_in_total"), "metrics are described");
    assert!(metrics.contains("# TYPE weir_partition_log_size_bytes gauge"), "partition gauges are typed");

    // A deleted topic's series go with it (not left at their last values).
    let deleted = admin.delete_topics(&["m", "c"], &AdminOptions::new()).await.expect("delete");
    assert!(deleted.iter().all(Result::is_ok), "{deleted:?}");
    let metrics = http_get(&broker, "/metrics").1;
    assert_eq!(sample(&metrics, "weir_partition_log_end_offset{topic=\"m\",partition=\"0\"}"), None, "{metrics}");
    assert_eq!(sample(&metrics, "weir_partition_offline{topic=\"m\",partition=\"0\"}"), None);
    assert_eq!(sample(&metrics, "weir_topic_records_in_total{topic=\"m\"}"), None);
    assert_eq!(sample(&metrics, "weir_produce_errors_total{topic=\"c\",code=\"87\"}"), None);
}
