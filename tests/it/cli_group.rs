//! `weir group list | describe | reset-offsets | delete`, run as the real binary against a
//! real broker, with librdkafka consumer groups making the commits: a classic group, and a
//! KIP-848 one (`group.protocol=consumer`) for `describe`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::Value;

use crate::util::{run_weir, TestBroker};

const DEADLINE: Duration = Duration::from_secs(30);
const TOPIC: &str = "cli-group";
const GROUP: &str = "g";
/// 2020-01-01T00:00:00Z: record i of each partition is stamped this plus i seconds.
const BASE_TIMESTAMP: i64 = 1_577_836_800_000;

/// Runs `weir group <args> --bootstrap <broker>`: (exit code, stdout, stderr).
fn weir_group(broker: &TestBroker, args: &[&str]) -> (i32, String, String) {
    let bootstrap = broker.bootstrap();
    let mut all = vec!["group"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--bootstrap", &bootstrap]);
    let out = run_weir(&all);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

fn describe(broker: &TestBroker) -> Value {
    describe_group(broker, GROUP)
}

fn describe_group(broker: &TestBroker, group: &str) -> Value {
    let (code, stdout, stderr) = weir_group(broker, &["describe", group, "--format", "json"]);
    assert_eq!(code, 0, "describe failed: {stderr}");
    serde_json::from_str(&stdout).expect("describe prints JSON")
}

/// The describe row of `partition`.
fn row(description: &Value, partition: i64) -> Value {
    let rows = description["partitions"].as_array().expect("partitions array");
    rows.iter().find(|r| r["topic"] == TOPIC && r["partition"] == partition).cloned().unwrap_or(Value::Null)
}

fn committed(broker: &TestBroker) -> (Value, Value) {
    let d = describe(broker);
    (row(&d, 0)["current_offset"].clone(), row(&d, 1)["current_offset"].clone())
}

/// Creates the two-partition topic with 10 records in partition 0 and 5 in partition 1.
async fn produce(broker: &TestBroker) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", broker.bootstrap()).create().expect("admin");
    let opts = AdminOptions::new().operation_timeout(Some(DEADLINE));
    let created = admin.create_topics([&NewTopic::new(TOPIC, 2, TopicReplication::Fixed(1))], &opts).await;
    assert!(created.expect("create topics")[0].is_ok());
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("message.timeout.ms", "20000")
        .create()
        .expect("producer");
    for (partition, count) in [(0, 10), (1, 5)] {
        for i in 0..count {
            let record =
                FutureRecord::to(TOPIC).partition(partition).key("k").payload("v").timestamp(BASE_TIMESTAMP + i * 1000);
            producer.send(record, DEADLINE).await.map_err(|(e, _)| e).expect("delivered");
        }
    }
}

/// A member of group `g` that has read all 15 records and committed 6 on partition 0 and 5
/// on partition 1.
fn consume_and_commit(broker: &TestBroker) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", GROUP)
        .set("client.id", "cli-group-test")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        // Should the consumer not leave on close, the group still empties within the test.
        .set("session.timeout.ms", "10000")
        .create()
        .expect("consumer");
    consumer.subscribe(&[TOPIC]).expect("subscribe");
    let deadline = Instant::now() + DEADLINE;
    let mut seen = 0;
    while seen < 15 {
        assert!(Instant::now() < deadline, "consumed only {seen} of 15 records");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                assert_eq!(m.topic(), TOPIC);
                seen += 1;
            }
            Some(Err(e)) => panic!("consume error: {e}"),
            None => {}
        }
    }
    let mut offsets = TopicPartitionList::new();
    offsets.add_partition_offset(TOPIC, 0, Offset::Offset(6)).expect("tpl");
    offsets.add_partition_offset(TOPIC, 1, Offset::Offset(5)).expect("tpl");
    consumer.commit(&offsets, CommitMode::Sync).expect("commit");
    consumer
}

/// Polls `describe` until group `g` reports `state`.
fn wait_for_state(broker: &TestBroker, state: &str) -> Value {
    wait_for_group_state(broker, GROUP, state)
}

fn wait_for_group_state(broker: &TestBroker, group: &str, state: &str) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let d = describe_group(broker, group);
        if d["state"] == state {
            return d;
        }
        assert!(Instant::now() < deadline, "group never became {state}: {d:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_listed_described_reset_and_deleted() {
    // Records stamped in 2020: keep retention from deleting them.
    let broker = TestBroker::start(&["log.retention.ms=-1"]);
    produce(&broker).await;
    let consumer = consume_and_commit(&broker);

    // While the consumer is a member: its partitions, offsets and lag.
    let d = wait_for_state(&broker, "Stable");
    assert_eq!(d["group"], GROUP);
    assert_eq!((&d["group_type"], &d["protocol_type"]), (&Value::from("classic"), &Value::from("consumer")));
    assert_eq!(d["members"].as_array().map(Vec::len), Some(1), "{d:#}");
    let (p0, p1) = (row(&d, 0), row(&d, 1));
    assert_eq!(
        (&p0["current_offset"], &p0["log_end_offset"], &p0["lag"]),
        (&Value::from(6), &Value::from(10), &Value::from(4))
    );
    assert_eq!(
        (&p1["current_offset"], &p1["log_end_offset"], &p1["lag"]),
        (&Value::from(5), &Value::from(5), &Value::from(0))
    );
    assert_eq!(p0["client_id"], "cli-group-test", "{d:#}");
    assert_eq!(p0["member_id"], d["members"][0]["member_id"]);

    let (code, stdout, _) = weir_group(&broker, &["describe", GROUP]);
    assert_eq!(code, 0);
    let words = |line: &str| line.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert!(
        stdout.lines().any(|l| words(l)
            == ["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "MEMBER-ID", "CLIENT-ID", "HOST",]),
        "{stdout}"
    );
    let member_id = p0["member_id"].as_str().unwrap_or_default().to_owned();
    let expected = ["cli-group", "0", "6", "10", "4", &member_id, "cli-group-test"].map(str::to_owned);
    assert!(stdout.lines().any(|l| words(l).starts_with(&expected)), "{stdout}");

    // An active group is neither reset nor deleted.
    let (code, _, stderr) = weir_group(&broker, &["reset-offsets", GROUP, "--to-earliest", "--execute"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("stop its consumers first"), "{stderr}");
    let (code, stdout, _) = weir_group(&broker, &["delete", GROUP]);
    assert_eq!(code, 1);
    assert!(stdout.contains("NON_EMPTY_GROUP"), "{stdout}");

    // Closing the consumer leaves the group: Empty, offsets kept, no members.
    consumer.unsubscribe();
    drop(consumer);
    let d = wait_for_state(&broker, "Empty");
    assert_eq!(row(&d, 0)["lag"], 4);
    assert_eq!(row(&d, 0)["member_id"], Value::Null);

    let (code, stdout, _) = weir_group(&broker, &["list"]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("GROUP"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == [GROUP, "Empty", "consumer"]),
        "{stdout}"
    );
    let (code, stdout, _) = weir_group(&broker, &["list", "--state", "stable"]);
    assert_eq!(code, 0);
    assert!(!stdout.lines().any(|l| l.starts_with("g ")), "{stdout}");
    let (_, stdout, _) = weir_group(&broker, &["list", "--format", "json"]);
    let listed: Value = serde_json::from_str(&stdout).expect("JSON");
    assert!(listed["groups"].as_array().expect("groups").iter().any(|g| g["group"] == GROUP), "{listed:#}");

    // A dry run prints the plan and changes nothing.
    let (code, stdout, stderr) = weir_group(&broker, &["reset-offsets", GROUP, "--to-earliest", "--topic", TOPIC]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<_> = stdout.lines().map(words).collect();
    assert_eq!(
        lines,
        [["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], ["g", "cli-group", "0", "0"], ["g", "cli-group", "1", "0"]]
    );
    assert!(stderr.contains("dry run"), "{stderr}");
    assert_eq!(committed(&broker), (Value::from(6), Value::from(5)));

    // --execute commits.
    let (code, _, stderr) =
        weir_group(&broker, &["reset-offsets", GROUP, "--to-earliest", "--topic", TOPIC, "--execute"]);
    assert_eq!(code, 0, "{stderr}");
    let d = describe(&broker);
    assert_eq!((row(&d, 0)["current_offset"].clone(), row(&d, 0)["lag"].clone()), (Value::from(0), Value::from(10)));
    assert_eq!(row(&d, 1)["current_offset"], 0);

    // Shifts are clamped to the log; one partition can be named alone.
    let (code, _, stderr) =
        weir_group(&broker, &["reset-offsets", GROUP, "--shift-by", "-3", "--topic", "cli-group:0", "--execute"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = weir_group(&broker, &["reset-offsets", GROUP, "--shift-by", "7", "--execute"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(committed(&broker), (Value::from(7), Value::from(5)));

    // By time: the first record at or after the instant; the log end when none is that new.
    let (code, stdout, stderr) = weir_group(
        &broker,
        &["reset-offsets", GROUP, "--to-datetime", "2020-01-01T00:00:02Z", "--execute", "--format", "json"],
    );
    assert_eq!(code, 0, "{stderr}");
    let plan: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(plan["executed"], true);
    assert_eq!(plan["partitions"][0]["new_offset"], 2, "{plan:#}");
    assert_eq!(committed(&broker), (Value::from(2), Value::from(2)));
    let (code, _, stderr) =
        weir_group(&broker, &["reset-offsets", GROUP, "--to-datetime", "2020-01-01T01:00:07+01:00", "--execute"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(committed(&broker), (Value::from(7), Value::from(5)));

    // An unknown topic is refused with the broker's error.
    let (code, _, stderr) = weir_group(&broker, &["reset-offsets", GROUP, "--to-latest", "--topic", "no-such-topic"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{stderr}");

    // Delete: the group and its offsets go; a second delete says there is no such group.
    let (code, stdout, _) = weir_group(&broker, &["delete", GROUP]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("deleted"), "{stdout}");
    let (_, stdout, _) = weir_group(&broker, &["list"]);
    assert!(!stdout.lines().any(|l| l.starts_with("g ")), "{stdout}");
    let (code, stdout, _) = weir_group(&broker, &["delete", GROUP, "--format", "json"]);
    assert_eq!(code, 1, "{stdout}");
    let results: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(results["groups"][0]["error"]["name"], "GROUP_ID_NOT_FOUND", "{results:#}");
    let (code, _, stderr) = weir_group(&broker, &["describe", GROUP]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("does not exist") || stderr.contains("GROUP_ID_NOT_FOUND"), "{stderr}");
}

#[test]
fn an_unreachable_bootstrap_exits_2_and_names_the_address() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    drop(listener);
    let out = run_weir(&["group", "list", "--bootstrap", &addr]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("cannot reach {addr}")) && stderr.contains("weir serve"), "{stderr}");
    let out = crate::util::weir().args(["group", "list"]).env("WEIR_BOOTSTRAP", &addr).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&addr));
}

const KIP848_GROUP: &str = "g848";

/// A librdkafka member of [`KIP848_GROUP`] speaking KIP-848, subscribed to the test topic.
fn kip848_member(broker: &TestBroker, client_id: &str) -> BaseConsumer {
    crate::util::kip848_member(broker, KIP848_GROUP, TOPIC, client_id)
}

/// The partitions librdkafka says `consumer` owns.
fn owned(consumer: &BaseConsumer) -> Vec<i32> {
    let assignment = consumer.assignment().expect("assignment");
    let mut partitions: Vec<i32> = assignment.elements().iter().map(|e| e.partition()).collect();
    partitions.sort_unstable();
    partitions
}

/// Polls each member once, briefly, remembering the (partition, offset) of every record.
fn poll_all(members: &[BaseConsumer], seen: &mut BTreeSet<(i32, i64)>) {
    for m in members {
        match m.poll(Duration::from_millis(50)) {
            Some(Ok(record)) => {
                seen.insert((record.partition(), record.offset()));
            }
            Some(Err(e)) => panic!("consume error: {e}"),
            None => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kip848_group_is_described_with_its_members_assignments_and_lag() {
    let broker = TestBroker::start(&[
        "log.retention.ms=-1",
        "group.consumer.heartbeat.interval.ms=300",
        "group.consumer.session.timeout.ms=6000",
    ]);
    produce(&broker).await;
    let members = [kip848_member(&broker, "kip848-a"), kip848_member(&broker, "kip848-b")];

    // Both members read all 15 records, own one partition each, and commit their own:
    // 6 of 10 on partition 0 (lag 4), all 5 on partition 1.
    let commits = [6, 5];
    let deadline = Instant::now() + DEADLINE;
    let mut seen = BTreeSet::new();
    let mut unacknowledged: Vec<usize> = vec![0, 1];
    while !unacknowledged.is_empty() {
        poll_all(&members, &mut seen);
        let owners = members.iter().map(owned).collect::<Vec<_>>();
        let settled = owners.iter().all(|ps| ps.len() == 1) && owners[0] != owners[1];
        if settled && seen.len() == 15 {
            // A commit during an epoch bump is refused (STALE_MEMBER_EPOCH): try it again.
            unacknowledged.retain(|&i| {
                let partition = owners[i][0];
                let mut offsets = TopicPartitionList::new();
                let offset = Offset::Offset(commits[partition as usize]);
                offsets.add_partition_offset(TOPIC, partition, offset).expect("tpl");
                members[i].commit(&offsets, CommitMode::Sync).is_err()
            });
        }
        assert!(
            Instant::now() < deadline,
            "members own {owners:?}, read {} of 15 records, {unacknowledged:?} not committed",
            seen.len()
        );
    }

    // While they are members, `describe` shows them (ConsumerGroupDescribe, where the classic
    // DescribeGroups says "Dead"), their partitions, offsets and lag.
    let deadline = Instant::now() + DEADLINE;
    let d = loop {
        poll_all(&members, &mut seen);
        let d = describe_group(&broker, KIP848_GROUP);
        let one_each = d["members"].as_array().is_some_and(|ms| {
            ms.len() == 2 && ms.iter().all(|m| m["assignment"][TOPIC].as_array().is_some_and(|ps| ps.len() == 1))
        });
        if d["state"] == "Stable" && one_each {
            break d;
        }
        assert!(Instant::now() < deadline, "never Stable with one partition each: {d:#}");
    };
    assert_eq!((&d["group"], &d["group_type"]), (&Value::from(KIP848_GROUP), &Value::from("consumer")));
    assert_eq!((&d["protocol_type"], &d["protocol"]), (&Value::from("consumer"), &Value::from("uniform")), "{d:#}");
    for (consumer, client_id) in members.iter().zip(["kip848-a", "kip848-b"]) {
        let ms = d["members"].as_array().expect("members");
        let m = ms.iter().find(|m| m["client_id"] == client_id).unwrap_or_else(|| panic!("{client_id}: {d:#}"));
        assert_eq!(m["assignment"][TOPIC], Value::from(owned(consumer)), "{d:#}");
        assert!(m["host"].as_str().is_some_and(|h| !h.is_empty()), "{d:#}");
        let partition = i64::from(owned(consumer)[0]);
        let r = row(&d, partition);
        assert_eq!((&r["member_id"], &r["client_id"]), (&m["member_id"], &m["client_id"]), "{d:#}");
    }
    let (p0, p1) = (row(&d, 0), row(&d, 1));
    assert_eq!((&p0["current_offset"], &p0["log_end_offset"], &p0["lag"]), (&6.into(), &10.into(), &4.into()));
    assert_eq!((&p1["current_offset"], &p1["log_end_offset"], &p1["lag"]), (&5.into(), &5.into(), &0.into()));

    let (code, stdout, stderr) = weir_group(&broker, &["describe", KIP848_GROUP]);
    assert_eq!(code, 0, "{stderr}");
    let header = stdout.lines().next().unwrap_or_default();
    assert!(header.ends_with("state Stable, protocol consumer/uniform, 2 members"), "{stdout}");
    let words = |line: &str| line.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let owner = |r: &Value, key: &str| r[key].as_str().unwrap_or_default().to_owned();
    for (r, offsets) in [(&p0, ["0", "6", "10", "4"]), (&p1, ["1", "5", "5", "0"])] {
        let mut expected = vec![TOPIC.to_owned()];
        expected.extend(offsets.map(str::to_owned));
        expected.extend([owner(r, "member_id"), owner(r, "client_id")]);
        assert!(stdout.lines().any(|l| words(l).starts_with(&expected)), "{expected:?} in {stdout}");
    }
    // Its offsets cannot be reset while members are in it (found through ConsumerGroupDescribe).
    let (code, _, stderr) =
        weir_group(&broker, &["reset-offsets", KIP848_GROUP, "--to-earliest", "--topic", TOPIC, "--execute"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("is Stable with 2 members"), "{stderr}");

    // Once both have left: Empty, no members, the commits and lag remain.
    for m in &members {
        m.unsubscribe();
    }
    drop(members);
    let d = wait_for_group_state(&broker, KIP848_GROUP, "Empty");
    assert_eq!((&d["group_type"], &d["members"]), (&Value::from("consumer"), &Value::Array(vec![])), "{d:#}");
    let (p0, p1) = (row(&d, 0), row(&d, 1));
    assert_eq!((&p0["current_offset"], &p0["lag"], &p0["member_id"]), (&6.into(), &4.into(), &Value::Null));
    assert_eq!((&p1["current_offset"], &p1["lag"], &p1["member_id"]), (&5.into(), &0.into(), &Value::Null));
    let (code, stdout, stderr) = weir_group(&broker, &["describe", KIP848_GROUP]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.lines().next().is_some_and(|l| l.ends_with("state Empty, protocol consumer/uniform, 0 members")));
    assert!(stdout.lines().any(|l| words(l) == [TOPIC, "0", "6", "10", "4", "-", "-", "-"]), "{stdout}");
}
