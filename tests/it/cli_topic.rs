//! `weir topic create | list | describe | alter-config | add-partitions | delete |
//! trim-prefix`, run as the real binary against a real broker, with librdkafka producing
//! and reading the records.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::Value;

use crate::util::{run_weir, TestBroker};

const DEADLINE: Duration = Duration::from_secs(30);

/// Runs `weir topic <args> --bootstrap <broker>`: (exit code, stdout, stderr).
fn weir_topic(broker: &TestBroker, args: &[&str]) -> (i32, String, String) {
    let bootstrap = broker.bootstrap();
    let mut all = vec!["topic"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--bootstrap", &bootstrap]);
    let out = run_weir(&all);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// Runs `weir topic <args> --format json`, expecting `code`; the parsed output.
fn weir_json(broker: &TestBroker, args: &[&str], code: i32) -> Value {
    let mut all = args.to_vec();
    all.extend_from_slice(&["--format", "json"]);
    let (got, stdout, stderr) = weir_topic(broker, &all);
    assert_eq!(got, code, "weir topic {args:?}: {stdout}{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("weir topic {args:?} printed no JSON ({e}): {stdout}"))
}

/// Each line of `text` split into its cells.
fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines().map(|l| l.split_whitespace().map(str::to_owned).collect()).collect()
}

fn has_row(text: &str, expected: &[&str]) -> bool {
    rows(text).iter().any(|r| r == expected)
}

/// The names `weir topic list` prints (without its header).
fn listed(broker: &TestBroker, args: &[&str]) -> Vec<String> {
    let mut all = vec!["list"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = weir_topic(broker, &all);
    assert_eq!(code, 0, "{stderr}");
    rows(&stdout).into_iter().skip(1).map(|r| r[0].clone()).collect()
}

/// `describe <topic> -p --format json`: the partitions array.
fn partitions(broker: &TestBroker, topic: &str) -> Vec<Value> {
    let d = weir_json(broker, &["describe", topic, "-p"], 0);
    d["partitions"].as_array().cloned().unwrap_or_else(|| panic!("no partitions: {d:#}"))
}

/// `describe <topic> -c --format json`: the config `key`.
fn config(broker: &TestBroker, topic: &str, key: &str) -> Value {
    let d = weir_json(broker, &["describe", topic, "-c"], 0);
    let configs = d["configs"].as_array().cloned().unwrap_or_default();
    configs.into_iter().find(|c| c["key"] == key).unwrap_or_else(|| panic!("no config {key}: {d:#}"))
}

/// Produces `count` records into each (partition, count) of `topic`.
async fn produce(broker: &TestBroker, topic: &str, counts: &[(i32, usize)]) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("message.timeout.ms", "20000")
        .create()
        .expect("producer");
    for &(partition, count) in counts {
        for i in 0..count {
            let value = format!("record {i}");
            let record = FutureRecord::to(topic).partition(partition).key("k").payload(&value);
            producer.send(record, DEADLINE).await.map_err(|(e, _)| e).expect("delivered");
        }
    }
}

#[test]
fn topics_are_created_listed_and_deleted() {
    let broker = TestBroker::start(&["num.partitions=2"]);

    let (code, stdout, stderr) = weir_topic(&broker, &["create", "orders", "audit", "-p", "3", "-r", "1"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(rows(&stdout), [["TOPIC", "STATUS"], ["orders", "OK"], ["audit", "OK"]]);

    // One exists, one is new: exit 1, each topic with its own status.
    let created = weir_json(&broker, &["create", "orders", "fresh"], 1);
    assert_eq!(created["dry_run"], false);
    let (orders, fresh) = (&created["topics"][0], &created["topics"][1]);
    assert_eq!((&orders["topic"], &orders["ok"]), (&Value::from("orders"), &Value::from(false)), "{created:#}");
    assert_eq!(orders["error"]["name"], "TOPIC_ALREADY_EXISTS", "{created:#}");
    assert_eq!(orders["error"]["code"], 36);
    assert_eq!((&fresh["ok"], &fresh["partition_count"]), (&Value::from(true), &Value::from(2)), "{created:#}");
    assert_eq!(fresh["replication_factor"], 1);
    assert_eq!(fresh["topic_id"].as_str().map(str::len), Some(22), "Kafka's base64 form: {created:#}");
    assert_eq!(fresh["error"], Value::Null);
    let (code, stdout, stderr) = weir_topic(&broker, &["create", "orders"]);
    assert_eq!(code, 1);
    assert!(rows(&stdout)[1].starts_with(&["orders".to_owned(), "TOPIC_ALREADY_EXISTS".to_owned()]), "{stdout}");
    assert!(stderr.contains("1 of 1 topics not created"), "{stderr}");

    // A dry run asks the broker and creates nothing.
    let (code, stdout, stderr) = weir_topic(&broker, &["create", "planned", "-p", "4", "--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(has_row(&stdout, &["planned", "OK"]), "{stdout}");
    assert!(stderr.contains("dry run"), "{stderr}");
    assert_eq!(weir_json(&broker, &["create", "planned", "--dry-run"], 0)["dry_run"], true);

    // A bad config value is refused with the broker's message; nothing is created.
    let (code, stdout, _) = weir_topic(&broker, &["create", "bad", "-c", "retention.ms=soon"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("INVALID_CONFIG") && stdout.contains("retention.ms"), "{stdout}");
    // Usage errors exit 2.
    assert_eq!(weir_topic(&broker, &["create", "bad", "-c", "retention.ms"]).0, 2);
    assert_eq!(weir_topic(&broker, &["create", "bad", "-p", "0"]).0, 2);

    let (code, stdout, _) = weir_topic(&broker, &["list"]);
    assert_eq!(code, 0);
    assert_eq!(
        rows(&stdout),
        [["NAME", "PARTITIONS", "REPLICAS"], ["audit", "3", "1"], ["fresh", "2", "1"], ["orders", "3", "1"]]
    );
    let list = weir_json(&broker, &["list"], 0);
    assert_eq!(list["topics"][0]["topic"], "audit", "{list:#}");
    assert_eq!(list["topics"][0]["partition_count"], 3);
    assert_eq!(list["topics"][0]["replication_factor"], 1);
    assert_eq!(list["topics"][0]["internal"], false);
    assert_eq!(list["topics"][1]["topic_id"], fresh["topic_id"], "ids are stable");

    // Internal topics only with -i. FindCoordinator (any group command) makes the broker
    // create __consumer_offsets.
    let bootstrap = broker.bootstrap();
    run_weir(&["group", "describe", "nobody", "--bootstrap", &bootstrap]);
    let deadline = Instant::now() + DEADLINE;
    while !listed(&broker, &["-i"]).contains(&"__consumer_offsets".to_owned()) {
        assert!(Instant::now() < deadline, "__consumer_offsets never appeared: {:?}", listed(&broker, &["-i"]));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(listed(&broker, &[]), ["audit", "fresh", "orders"]);
    let list = weir_json(&broker, &["list", "--internal"], 0);
    let internal = list["topics"].as_array().expect("topics").iter().find(|t| t["topic"] == "__consumer_offsets");
    assert_eq!(internal.map(|t| t["internal"].clone()), Some(Value::from(true)), "{list:#}");

    // Delete: exit 1 when any topic was not deleted; the others are.
    let (code, stdout, stderr) = weir_topic(&broker, &["delete", "orders", "no-such-topic"]);
    assert_eq!(code, 1, "{stdout}");
    assert_eq!(rows(&stdout)[..2], [vec!["TOPIC", "STATUS"], vec!["orders", "OK"]]);
    assert!(rows(&stdout)[2].starts_with(&["no-such-topic".to_owned(), "UNKNOWN_TOPIC_OR_PARTITION".to_owned()]));
    assert!(stderr.contains("1 of 2 topics not deleted"), "{stderr}");
    let deleted = weir_json(&broker, &["delete", "audit"], 0);
    assert_eq!(deleted["topics"][0]["topic"], "audit");
    assert_eq!(deleted["topics"][0]["deleted"], true);
    assert_eq!(deleted["topics"][0]["error"], Value::Null);
    let deleted = weir_json(&broker, &["delete", "audit"], 1);
    assert_eq!(deleted["topics"][0]["error"]["name"], "UNKNOWN_TOPIC_OR_PARTITION", "{deleted:#}");
    assert_eq!(listed(&broker, &[]), ["fresh"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_shows_the_summary_configs_and_partitions_with_offsets() {
    let broker = TestBroker::start(&[]);
    let (code, _, stderr) = weir_topic(&broker, &["create", "events", "-p", "2", "-c", "retention.ms=3600000"]);
    assert_eq!(code, 0, "{stderr}");
    produce(&broker, "events", &[(0, 5), (1, 3)]).await;

    // No flag: summary, configs and partitions, titled.
    let (code, stdout, stderr) = weir_topic(&broker, &["describe", "events"]);
    assert_eq!(code, 0, "{stderr}");
    let lines = rows(&stdout);
    for title in ["SUMMARY", "CONFIGS", "PARTITIONS"] {
        assert!(has_row(&stdout, &[title]), "no {title} section: {stdout}");
    }
    for field in [["NAME", "events"], ["INTERNAL", "false"], ["PARTITIONS", "2"], ["REPLICAS", "1"]] {
        assert!(has_row(&stdout, &field), "{stdout}");
    }
    let topic_id = lines.iter().find(|r| r.first().is_some_and(|c| c == "TOPIC-ID")).map(|r| r[1].clone());
    assert_eq!(topic_id.as_ref().map(String::len), Some(22), "{stdout}");
    assert!(has_row(&stdout, &["retention.ms", "3600000", "DYNAMIC_TOPIC_CONFIG"]), "{stdout}");
    assert!(lines.iter().any(|r| r.len() == 3 && r[2] == "DEFAULT_CONFIG"), "{stdout}");
    let header = ["PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "LOG-START-OFFSET", "HIGH-WATERMARK"];
    assert!(has_row(&stdout, &header), "{stdout}");

    // -p: the partition table alone, with leader, epoch, replicas, ISR and offsets.
    let (code, stdout, _) = weir_topic(&broker, &["describe", "events", "-p"]);
    assert_eq!(code, 0);
    let lines = rows(&stdout);
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(lines[0], header);
    assert_eq!((lines[1][0].as_str(), &lines[1][5..]), ("0", &["0".to_owned(), "5".to_owned()][..]), "{stdout}");
    assert_eq!((lines[2][0].as_str(), &lines[2][5..]), ("1", &["0".to_owned(), "3".to_owned()][..]), "{stdout}");
    let leader = &lines[1][1];
    assert_eq!((&lines[1][3], &lines[1][4]), (leader, leader), "one broker: the leader is the only replica");

    // -c: the config table alone.
    let (code, stdout, _) = weir_topic(&broker, &["describe", "events", "--print-configs"]);
    assert_eq!(code, 0);
    assert_eq!(rows(&stdout)[0], ["KEY", "VALUE", "SOURCE"]);
    assert!(!stdout.contains("PARTITION"), "{stdout}");

    let d = weir_json(&broker, &["describe", "events"], 0);
    assert_eq!((&d["topic"], &d["internal"]), (&Value::from("events"), &Value::from(false)));
    assert_eq!((&d["partition_count"], &d["replication_factor"]), (&Value::from(2), &Value::from(1)));
    assert_eq!(d["topic_id"].as_str(), topic_id.as_deref());
    let retention = d["configs"].as_array().expect("configs").iter().find(|c| c["key"] == "retention.ms").cloned();
    let retention = retention.unwrap_or_else(|| panic!("no retention.ms: {d:#}"));
    assert_eq!(
        (&retention["value"], &retention["source"]),
        (&Value::from("3600000"), &Value::from("DYNAMIC_TOPIC_CONFIG"))
    );
    let p0 = &d["partitions"][0];
    assert_eq!(
        (&p0["partition"], &p0["log_start_offset"], &p0["high_watermark"]),
        (&Value::from(0), &Value::from(0), &Value::from(5))
    );
    assert!(p0["leader"].is_i64() && p0["leader_epoch"].is_i64(), "{d:#}");
    assert_eq!(p0["replicas"], Value::from(vec![p0["leader"].clone()]));
    assert_eq!(p0["isr"], p0["replicas"]);
    assert_eq!(d["partitions"][1]["high_watermark"], 3);
    let only_partitions = weir_json(&broker, &["describe", "events", "-p"], 0);
    assert_eq!(only_partitions["configs"], Value::Null);
    assert_eq!(only_partitions["partitions"], d["partitions"]);
    assert_eq!(weir_json(&broker, &["describe", "events", "-c"], 0)["partitions"], Value::Null);

    let (code, stdout, stderr) = weir_topic(&broker, &["describe", "no-such-topic"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stderr.contains("topic no-such-topic: UNKNOWN_TOPIC_OR_PARTITION"), "{stderr}");
    assert!(stderr.contains("weir topic list"), "says what to do: {stderr}");
}

#[test]
fn alter_config_sets_and_deletes_overrides_and_surfaces_refusals() {
    let broker = TestBroker::start(&[]);
    assert_eq!(weir_topic(&broker, &["create", "settings"]).0, 0);
    let default_retention = config(&broker, "settings", "retention.ms")["value"].clone();
    assert_eq!(config(&broker, "settings", "retention.ms")["source"], "DEFAULT_CONFIG");
    let default_retention = default_retention.as_str().expect("a value").to_owned();

    let (code, stdout, stderr) = weir_topic(
        &broker,
        &["alter-config", "settings", "--set", "retention.ms=60000", "--set", "cleanup.policy=compact"],
    );
    assert_eq!(code, 0, "{stderr}");
    let lines = rows(&stdout);
    assert_eq!(lines[0], ["KEY", "OPERATION", "OLD-VALUE", "NEW-VALUE", "SOURCE"]);
    assert_eq!(lines[1], ["retention.ms", "set", default_retention.as_str(), "60000", "DYNAMIC_TOPIC_CONFIG"]);
    assert_eq!(lines[2], ["cleanup.policy", "set", "delete", "compact", "DYNAMIC_TOPIC_CONFIG"]);
    assert_eq!(config(&broker, "settings", "retention.ms")["value"], "60000");
    assert_eq!(config(&broker, "settings", "cleanup.policy")["source"], "DYNAMIC_TOPIC_CONFIG");

    // Delete: back to the default, and the other override stays.
    let altered = weir_json(&broker, &["alter-config", "settings", "--delete", "retention.ms"], 0);
    assert_eq!(altered["topic"], "settings");
    let change = &altered["changes"][0];
    assert_eq!((&change["key"], &change["operation"]), (&Value::from("retention.ms"), &Value::from("delete")));
    assert_eq!(
        (&change["old_value"], &change["new_value"]),
        (&Value::from("60000"), &Value::from(default_retention.as_str()))
    );
    assert_eq!(change["source"], "DEFAULT_CONFIG");
    assert_eq!(config(&broker, "settings", "retention.ms")["source"], "DEFAULT_CONFIG");
    assert_eq!(config(&broker, "settings", "cleanup.policy")["value"], "compact");

    // A bad value is refused with the broker's message, and nothing changes.
    let (code, _, stderr) = weir_topic(&broker, &["alter-config", "settings", "--set", "retention.ms=soon"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("INVALID_CONFIG") && stderr.contains("retention.ms"), "{stderr}");
    assert!(stderr.contains("soon"), "the broker's message names the value: {stderr}");
    assert_eq!(config(&broker, "settings", "retention.ms")["source"], "DEFAULT_CONFIG");
    let (code, _, stderr) = weir_topic(&broker, &["alter-config", "settings", "--set", "no.such.key=1"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("no.such.key"), "{stderr}");

    let (code, _, stderr) = weir_topic(&broker, &["alter-config", "no-such-topic", "--set", "retention.ms=1"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{stderr}");
    // Usage: nothing to change, or a key named twice.
    assert_eq!(weir_topic(&broker, &["alter-config", "settings"]).0, 2);
    let (code, _, stderr) =
        weir_topic(&broker, &["alter-config", "settings", "--set", "retention.ms=1", "--delete", "retention.ms"]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn add_partitions_adds_n_and_prints_the_new_total() {
    let broker = TestBroker::start(&[]);
    assert_eq!(weir_topic(&broker, &["create", "grow", "-p", "2"]).0, 0);
    let (code, stdout, stderr) = weir_topic(&broker, &["add-partitions", "grow", "-n", "3"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(rows(&stdout), [["TOPIC", "ADDED", "PARTITIONS"], ["grow", "3", "5"]]);
    assert_eq!(partitions(&broker, "grow").len(), 5);
    let added = weir_json(&broker, &["add-partitions", "grow", "--num", "1"], 0);
    assert_eq!(added, serde_json::json!({ "topic": "grow", "added": 1, "partition_count": 6 }));
    assert_eq!(partitions(&broker, "grow").len(), 6);

    let (code, _, stderr) = weir_topic(&broker, &["add-partitions", "no-such-topic", "-n", "1"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{stderr}");
    assert_eq!(weir_topic(&broker, &["add-partitions", "grow", "-n", "0"]).0, 2);
}

/// The offset of the first record a consumer reads from `topic`-`partition` at its beginning.
fn first_offset(broker: &TestBroker, topic: &str, partition: i32) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "cli-topic-check")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, partition, Offset::Beginning).expect("tpl");
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + DEADLINE;
    loop {
        assert!(Instant::now() < deadline, "no record from {topic}-{partition}");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => return m.offset(),
            Some(Err(e)) => panic!("consume error: {e}"),
            None => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trim_prefix_is_a_dry_run_until_execute_then_moves_the_log_start() {
    let broker = TestBroker::start(&[]);
    assert_eq!(weir_topic(&broker, &["create", "trim", "-p", "2"]).0, 0);
    produce(&broker, "trim", &[(0, 10), (1, 4)]).await;

    // The plan, and nothing deleted.
    let (code, stdout, stderr) = weir_topic(&broker, &["trim-prefix", "trim", "-o", "4"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        rows(&stdout),
        [
            ["TOPIC", "PARTITION", "LOG-START-OFFSET", "NEW-LOG-START-OFFSET"],
            ["trim", "0", "0", "4"],
            ["trim", "1", "0", "4"]
        ]
    );
    assert!(stderr.contains("dry run") && stderr.contains("--execute"), "{stderr}");
    let plan = weir_json(&broker, &["trim-prefix", "trim", "-p", "0,1", "-o", "4"], 0);
    assert_eq!(plan["executed"], false);
    assert_eq!(plan["partitions"][0]["high_watermark"], 10);
    assert_eq!(plan["partitions"][0]["low_watermark"], Value::Null);
    assert!(partitions(&broker, "trim").iter().all(|p| p["log_start_offset"] == 0));
    assert_eq!(first_offset(&broker, "trim", 0), 0);

    // --execute on one partition moves its log start; the other keeps its records.
    let (code, stdout, stderr) = weir_topic(&broker, &["trim-prefix", "trim", "-p", "0", "-o", "4", "--execute"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        rows(&stdout),
        [
            ["TOPIC", "PARTITION", "LOG-START-OFFSET", "NEW-LOG-START-OFFSET", "LOW-WATERMARK"],
            ["trim", "0", "0", "4", "4"]
        ]
    );
    let after = partitions(&broker, "trim");
    assert_eq!((&after[0]["log_start_offset"], &after[0]["high_watermark"]), (&Value::from(4), &Value::from(10)));
    assert_eq!(after[1]["log_start_offset"], 0);
    assert_eq!(first_offset(&broker, "trim", 0), 4);
    assert_eq!(first_offset(&broker, "trim", 1), 0);

    // Above the high watermark: the dry run says the broker would refuse; --execute shows
    // the broker's refusal. Nothing moves.
    let (code, _, stderr) = weir_topic(&broker, &["trim-prefix", "trim", "-p", "1", "-o", "100"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("OFFSET_OUT_OF_RANGE") && stderr.contains("high watermark of trim-1 (4)"), "{stderr}");
    let (code, _, stderr) = weir_topic(&broker, &["trim-prefix", "trim", "-p", "1", "-o", "100", "--execute"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("OFFSET_OUT_OF_RANGE (1)") && stderr.contains("high watermark 4"), "{stderr}");
    let refused = weir_json(&broker, &["trim-prefix", "trim", "-p", "1", "-o", "100", "--execute"], 1);
    assert_eq!(refused["executed"], true);
    assert_eq!(refused["partitions"][0]["error"]["name"], "OFFSET_OUT_OF_RANGE", "{refused:#}");
    assert_eq!(partitions(&broker, "trim")[1]["log_start_offset"], 0);

    // `end` empties a partition; an offset below the log start leaves it where it is.
    let trimmed = weir_json(&broker, &["trim-prefix", "trim", "-p", "1", "-o", "end", "--execute"], 0);
    assert_eq!(trimmed["partitions"][0]["low_watermark"], 4, "{trimmed:#}");
    let trimmed = weir_json(&broker, &["trim-prefix", "trim", "-p", "0", "-o", "2", "--execute"], 0);
    assert_eq!(trimmed["partitions"][0]["new_log_start_offset"], 4, "{trimmed:#}");
    assert_eq!(trimmed["partitions"][0]["low_watermark"], 4, "{trimmed:#}");

    let (code, _, stderr) = weir_topic(&broker, &["trim-prefix", "trim", "-p", "7", "-o", "1"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("no partition 7"), "{stderr}");
    let (code, _, stderr) = weir_topic(&broker, &["trim-prefix", "no-such-topic", "-o", "1", "--execute"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{stderr}");
    assert_eq!(weir_topic(&broker, &["trim-prefix", "trim", "-o", "-1"]).0, 2);
}

#[test]
fn an_unreachable_bootstrap_exits_2_and_names_the_address() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    drop(listener);
    let out = run_weir(&["topic", "list", "--bootstrap", &addr]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&addr), "{stderr}");
}
