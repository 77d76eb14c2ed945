//! `weir cluster info | health` and `weir offsets`, run as the real binary against real
//! brokers, with librdkafka creating topics, producing records at known timestamps and
//! committing a group's offsets.
//!
//! A weir broker is a single node, so the unhealthy cluster here is a real misconfiguration
//! rather than a simulated one: a broker that advertises (`advertised.addr`) a port where
//! nothing listens is down for every client that follows Metadata, although the bootstrap
//! address reaches it. Leaderless and under-replicated partitions need several brokers; the
//! unit tests in `src/cli/health.rs` cover them from Metadata responses.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value};

use crate::util::{run_weir, TestBroker};

const DEADLINE: Duration = Duration::from_secs(30);
const TOPIC: &str = "cli-ops";
/// 2020-01-01T00:00:00Z: record i of each partition is stamped this plus i seconds.
const BASE_TIMESTAMP: i64 = 1_577_836_800_000;
/// Records in partitions 0 and 1 of [`TOPIC`].
const COUNTS: [i64; 2] = [10, 5];

/// Runs `weir <args> --bootstrap <bootstrap>`: (exit code, stdout, stderr).
fn weir_at(bootstrap: &str, args: &[&str]) -> (i32, String, String) {
    let mut all = args.to_vec();
    all.extend_from_slice(&["--bootstrap", bootstrap]);
    let out = run_weir(&all);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

fn parse_json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// The whitespace-separated words of each line.
fn words(text: &str) -> Vec<Vec<String>> {
    text.lines().map(|l| l.split_whitespace().map(str::to_owned).collect()).collect()
}

fn admin(broker: &TestBroker) -> AdminClient<DefaultClientContext> {
    ClientConfig::new().set("bootstrap.servers", broker.bootstrap()).create().expect("admin client")
}

/// Creates `topic` with `partitions` partitions.
async fn create_topic(broker: &TestBroker, topic: &str, partitions: i32) {
    let opts = AdminOptions::new().operation_timeout(Some(DEADLINE));
    let admin = admin(broker);
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = admin.create_topics([&new_topic], &opts).await.expect("create topics");
    assert!(results[0].is_ok(), "{results:?}");
}

/// Creates [`TOPIC`] and produces [`COUNTS`] records into its partitions, record i stamped
/// `BASE_TIMESTAMP + i * 1000`, one batch each.
async fn produce(broker: &TestBroker) {
    create_topic(broker, TOPIC, 2).await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("message.timeout.ms", "20000")
        .create()
        .expect("producer");
    for (partition, count) in (0..).zip(COUNTS) {
        for i in 0..count {
            let record =
                FutureRecord::to(TOPIC).partition(partition).key("k").payload("v").timestamp(BASE_TIMESTAMP + i * 1000);
            producer.send(record, DEADLINE).await.map_err(|(e, _)| e).expect("delivered");
        }
    }
}

/// `weir offsets TOPIC <args>` in text: its exit code and `topic:partition:offset` lines.
fn offsets_text(broker: &TestBroker, args: &[&str]) -> (i32, Vec<String>) {
    let mut all = vec!["offsets", TOPIC];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = weir_at(&broker.bootstrap(), &all);
    assert!(code == 0 || !stderr.is_empty(), "exit {code} without a reason");
    (code, stdout.lines().map(str::to_owned).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_are_looked_up_latest_earliest_by_timestamp_and_max_timestamp() {
    // Records stamped in 2020: keep retention from deleting them.
    let broker = TestBroker::start(&["log.retention.ms=-1"]);
    produce(&broker).await;

    // Latest is the default; partitions in order, kafka-get-offsets.sh's format.
    let (code, lines) = offsets_text(&broker, &[]);
    assert_eq!((code, lines), (0, vec!["cli-ops:0:10".to_owned(), "cli-ops:1:5".to_owned()]));
    assert_eq!(offsets_text(&broker, &["--time", "-1"]).1, ["cli-ops:0:10", "cli-ops:1:5"]);
    assert_eq!(offsets_text(&broker, &["--time", "latest"]).1, ["cli-ops:0:10", "cli-ops:1:5"]);

    // A timestamp: the first record at or after it, in each partition.
    let at = |offset_s: i64| (BASE_TIMESTAMP + offset_s).to_string();
    assert_eq!(offsets_text(&broker, &["--time", &at(2000)]).1, ["cli-ops:0:2", "cli-ops:1:2"]);
    assert_eq!(offsets_text(&broker, &["--time", &at(2500)]).1, ["cli-ops:0:3", "cli-ops:1:3"]);
    // In the middle of partition 0 but after all of partition 1: partition 1 is left out,
    // as kafka-get-offsets.sh leaves it out; JSON says null.
    let (code, lines) = offsets_text(&broker, &["--time", &at(6500)]);
    assert_eq!((code, lines), (0, vec!["cli-ops:0:7".to_owned()]));
    let (code, stdout, _) = weir_at(&broker.bootstrap(), &["offsets", TOPIC, "--time", &at(6500), "--format", "json"]);
    assert_eq!(code, 0);
    assert_eq!(
        parse_json(&stdout),
        json!({
            "topic": TOPIC,
            "time": BASE_TIMESTAMP + 6500,
            "partitions": [
                {"partition": 0, "offset": 7, "error": null},
                {"partition": 1, "offset": null, "error": null},
            ],
        })
    );
    // After every record: nothing to print, and that is not an error.
    let (code, lines) = offsets_text(&broker, &["--time", &at(100_000)]);
    assert_eq!((code, lines), (0, Vec::<String>::new()));

    // max-timestamp (ListOffsets v7): the last record here, since timestamps only grow.
    assert_eq!(offsets_text(&broker, &["--time", "-3"]).1, ["cli-ops:0:9", "cli-ops:1:4"]);
    assert_eq!(offsets_text(&broker, &["--time", "max"]).1, ["cli-ops:0:9", "cli-ops:1:4"]);

    // Earliest: 0 until records are deleted, then the new log start offset.
    assert_eq!(offsets_text(&broker, &["--time", "-2"]).1, ["cli-ops:0:0", "cli-ops:1:0"]);
    let mut before = TopicPartitionList::new();
    before.add_partition_offset(TOPIC, 0, Offset::Offset(3)).expect("partition list");
    let opts = AdminOptions::new().operation_timeout(Some(DEADLINE));
    let admin = admin(&broker);
    let deleted = admin.delete_records(&before, &opts).await.expect("delete records");
    assert_eq!(deleted.elements()[0].error(), Ok(()), "{deleted:?}");
    assert_eq!(offsets_text(&broker, &["--time", "-2"]).1, ["cli-ops:0:3", "cli-ops:1:0"]);
    assert_eq!(offsets_text(&broker, &["--time", "earliest"]).1, ["cli-ops:0:3", "cli-ops:1:0"]);

    // Some partitions only, in text and JSON.
    assert_eq!(offsets_text(&broker, &["-p", "1"]).1, ["cli-ops:1:5"]);
    let (code, stdout, _) =
        weir_at(&broker.bootstrap(), &["offsets", TOPIC, "--partitions", "1,0", "--time", "-2", "--format", "json"]);
    assert_eq!(code, 0);
    let offsets = parse_json(&stdout);
    assert_eq!(offsets["time"], -2);
    assert_eq!(offsets["partitions"][0], json!({"partition": 0, "offset": 3, "error": null}));
    assert_eq!(offsets["partitions"][1], json!({"partition": 1, "offset": 0, "error": null}));

    // A partition the topic does not have, and a topic that does not exist: refused (1).
    let (code, stdout, stderr) = weir_at(&broker.bootstrap(), &["offsets", TOPIC, "-p", "0,7"]);
    assert_eq!((code, stdout.as_str()), (1, ""), "{stderr}");
    assert!(stderr.contains("topic cli-ops has no partition 7 (it has 2 partitions)"), "{stderr}");
    let (code, stdout, stderr) = weir_at(&broker.bootstrap(), &["offsets", "no-such-topic"]);
    assert_eq!((code, stdout.as_str()), (1, ""), "{stderr}");
    assert!(stderr.contains("no-such-topic") && stderr.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{stderr}");
    // Metadata from this tool never creates the topic it asks about.
    let (_, stdout, _) = weir_at(&broker.bootstrap(), &["cluster", "info", "--format", "json"]);
    assert_eq!(parse_json(&stdout)["topics"], 1);

    // A time that is not one: usage error (2).
    for bad in ["-4", "yesterday"] {
        let (code, _, stderr) = weir_at(&broker.bootstrap(), &["offsets", TOPIC, "--time", bad]);
        assert_eq!(code, 2, "{bad}: {stderr}");
        assert!(stderr.contains("--time"), "{stderr}");
    }
}

/// `weir cluster info --format json`, polled until `done` holds (the deadline fails the
/// test).
fn wait_for_info(broker: &TestBroker, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (code, stdout, stderr) = weir_at(&broker.bootstrap(), &["cluster", "info", "--format", "json"]);
        assert_eq!(code, 0, "{stderr}");
        let info = parse_json(&stdout);
        if done(&info) {
            return info;
        }
        assert!(Instant::now() < deadline, "cluster info never reached the expected state: {info:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_info_and_health_describe_a_healthy_broker() {
    let broker = TestBroker::start(&[]);
    let port = broker.kafka_addr.port();
    create_topic(&broker, "ops-a", 3).await;
    create_topic(&broker, "ops-b", 1).await;
    // A group commit makes the broker create its internal __consumer_offsets topic.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "ops-group")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut commit = TopicPartitionList::new();
    commit.add_partition_offset("ops-b", 0, Offset::Offset(0)).expect("partition list");
    consumer.commit(&commit, CommitMode::Sync).expect("commit");
    drop(consumer);

    let info = wait_for_info(&broker, |info| info["internal_topics"] == 1);
    let cluster_id = info["cluster_id"].as_str().expect("a cluster id").to_owned();
    assert!(!cluster_id.is_empty());
    assert_eq!(
        info,
        json!({
            "cluster_id": cluster_id,
            "controller_id": 0,
            "brokers": [{"node_id": 0, "host": "127.0.0.1", "port": port, "rack": null}],
            "topics": 2,
            "internal_topics": 1,
        })
    );
    let (code, stdout, stderr) = weir_at(&broker.bootstrap(), &["cluster", "info"]);
    assert_eq!(code, 0, "{stderr}");
    let port = port.to_string();
    assert_eq!(
        words(&stdout),
        words(&format!(
            "CLUSTER\n=======\nCluster ID: {cluster_id}\nController ID: 0\n\n\
             BROKERS\n=======\nID HOST PORT RACK\n0* 127.0.0.1 {port} -\n\n\
             TOPICS\n======\nTopics: 2\nInternal topics: 1\n"
        )),
        "{stdout}"
    );
    // The columns line up under their headers.
    let header = stdout.lines().find(|l| l.starts_with("ID ")).expect("the BROKERS header");
    let row = stdout.lines().find(|l| l.starts_with("0* ")).expect("the broker row");
    assert_eq!(header.find("PORT"), row.find(&port), "{stdout}");

    let (code, stdout, stderr) = weir_at(&broker.bootstrap(), &["cluster", "health"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        words(&stdout),
        words(
            "CLUSTER HEALTH OVERVIEW\n=======================\nHealthy: true\nUnhealthy reasons: []\n\
             Controller ID: 0\nAll nodes: [0]\nNodes down: []\nLeaderless partitions (0): []\n\
             Under-replicated partitions (0): []\n"
        ),
        "{stdout}"
    );
    let (code, stdout, stderr) = weir_at(&broker.bootstrap(), &["cluster", "health", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        parse_json(&stdout),
        json!({
            "healthy": true,
            "unhealthy_reasons": [],
            "controller_id": 0,
            "nodes": [0],
            "nodes_down": [],
            "leaderless_partitions": [],
            "under_replicated_partitions": [],
        })
    );
    // The bootstrap address may come from the environment too.
    let out = crate::util::weir().args(["cluster", "health"]).env("WEIR_BOOTSTRAP", broker.bootstrap()).output();
    assert_eq!(out.expect("run weir").status.code(), Some(0));
}

/// A port where nothing listens (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[test]
fn health_is_false_and_exits_10_when_a_broker_does_not_answer_at_its_advertised_address() {
    let advertised_port = closed_port();
    let advertised = format!("127.0.0.1:{advertised_port}");
    let broker = TestBroker::start(&[&format!("advertised.addr={advertised}")]);

    let (code, stdout, stderr) = weir_at(&broker.bootstrap(), &["cluster", "health"]);
    assert_eq!(code, 10, "{stdout}{stderr}");
    let lines = words(&stdout);
    assert!(lines.contains(&words("Healthy: false")[0]), "{stdout}");
    assert!(lines.contains(&words("Unhealthy reasons: [nodes_down]")[0]), "{stdout}");
    assert!(lines.contains(&words("All nodes: [0]")[0]), "{stdout}");
    assert!(lines.contains(&words("Nodes down: [0]")[0]), "{stdout}");
    assert!(stderr.contains(&format!("broker 0 does not answer at its advertised address {advertised}")), "{stderr}");
    assert!(stderr.contains(&format!("cannot reach {advertised}")), "{stderr}");

    let (code, stdout, _) = weir_at(&broker.bootstrap(), &["cluster", "health", "--format", "json"]);
    assert_eq!(code, 10);
    assert_eq!(
        parse_json(&stdout),
        json!({
            "healthy": false,
            "unhealthy_reasons": ["nodes_down"],
            "controller_id": 0,
            "nodes": [0],
            "nodes_down": [0],
            "leaderless_partitions": [],
            "under_replicated_partitions": [],
        })
    );

    // Info reports what the broker advertises, without judging it.
    let (code, stdout, stderr) = weir_at(&broker.bootstrap(), &["cluster", "info"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(words(&stdout).contains(&words(&format!("0* 127.0.0.1 {advertised_port} -"))[0]), "{stdout}");
}

#[test]
fn every_command_exits_2_and_names_the_address_when_the_bootstrap_does_not_answer() {
    let addr = format!("127.0.0.1:{}", closed_port());
    for args in [&["cluster", "info"][..], &["cluster", "health", "--format", "json"], &["offsets", TOPIC]] {
        let (code, stdout, stderr) = weir_at(&addr, args);
        assert_eq!((code, stdout.as_str()), (2, ""), "{args:?}: {stderr}");
        assert!(stderr.contains(&format!("cannot reach {addr}")), "{args:?}: {stderr}");
    }
}

/// `weir completions bash` prints a script bash loads, completing every noun and verb.
#[test]
fn bash_completions_load_and_complete_nouns_and_verbs() {
    let out = run_weir(&["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0));
    let script = String::from_utf8(out.stdout).expect("utf-8");
    for noun in ["topic", "produce", "consume", "group", "cluster", "offsets", "bench", "log", "serve"] {
        assert!(script.contains(noun), "{noun} missing from the completion script");
    }
    // Load it in a real bash and ask for the completions of `weir topic `.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("weir.bash");
    std::fs::write(&path, &script).expect("write");
    let probe = format!(
        "source {}; COMP_WORDS=(weir topic ''); COMP_CWORD=2; COMP_LINE='weir topic '; COMP_POINT=11; \
         _weir weir '' topic; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        path.display()
    );
    let bash = std::process::Command::new("bash").args(["-c", &probe]).output().expect("run bash");
    let offered = String::from_utf8_lossy(&bash.stdout);
    for verb in ["create", "list", "describe", "alter-config", "add-partitions", "delete", "trim-prefix"] {
        assert!(offered.lines().any(|l| l == verb), "`weir topic <TAB>` does not offer {verb}: {offered}");
    }
}
