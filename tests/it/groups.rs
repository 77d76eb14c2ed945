//! Consumer groups through librdkafka (the `rdkafka` crate): classic and KIP-848 groups
//! sharing partitions, rebalancing when members die, committed offsets surviving restarts.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

use crate::observability::{http_get, sample};
use crate::util::TestBroker;

const DEADLINE: Duration = Duration::from_secs(60);

/// Which group protocol a consumer speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Classic,
    Consumer,
}

/// Counts rebalance callbacks (assignments and revocations).
#[derive(Default, Clone)]
struct Counting(Arc<AtomicUsize>);

impl ClientContext for Counting {}
impl ConsumerContext for Counting {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, _: &Rebalance<'_>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

type Member = BaseConsumer<Counting>;

fn config(bootstrap: &str, group: &str, protocol: Protocol, extra: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false");
    match protocol {
        Protocol::Classic => {
            c.set("session.timeout.ms", "6000").set("heartbeat.interval.ms", "500");
        }
        Protocol::Consumer => {
            c.set("group.protocol", "consumer");
        }
    }
    if let Ok(debug) = std::env::var("WEIR_TEST_RDKAFKA_DEBUG") {
        c.set("debug", debug);
    }
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c
}

fn member(broker: &TestBroker, group: &str, protocol: Protocol, topic: &str, extra: &[(&str, &str)]) -> Member {
    let c: Member =
        config(&broker.bootstrap(), group, protocol, extra).create_with_context(Counting::default()).expect("consumer");
    c.subscribe(&[topic]).expect("subscribe");
    c
}

/// The broker settings these tests use: quick rebalances and KIP-848 heartbeats.
const BROKER_SETTINGS: &[&str] = &[
    "group.initial.rebalance.delay.ms=0",
    "group.consumer.heartbeat.interval.ms=300",
    "group.consumer.session.timeout.ms=6000",
];

async fn create_topic(broker: &TestBroker, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", broker.bootstrap()).create().expect("admin");
    let results = admin
        .create_topics(&[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))], &AdminOptions::new())
        .await
        .expect("create topics");
    for r in results {
        r.expect("topic created");
    }
}

/// Produces `n` records with values "0".."n-1", spread over the partitions by key.
async fn produce(broker: &TestBroker, topic: &str, n: usize) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let mut pending = Vec::with_capacity(n);
    for i in 0..n {
        let (key, value) = (format!("key-{i}"), i.to_string());
        let record = FutureRecord::to(topic).key(&key).payload(&value);
        pending.push(producer.send_result(record).map_err(|(e, _)| e).expect("enqueued"));
    }
    for delivery in pending {
        delivery.await.expect("not cancelled").map_err(|(e, _)| e).expect("delivered");
    }
}

fn partitions_of(c: &Member) -> BTreeSet<i32> {
    c.assignment().map(|a| a.elements().iter().map(|e| e.partition()).collect()).unwrap_or_default()
}

/// Polls every member until `done` holds for their assignments (with the deadline).
fn poll_until(members: &[&Member], what: &str, done: impl Fn(&[BTreeSet<i32>]) -> bool) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        for m in members {
            if let Some(Err(e)) = m.poll(Duration::from_millis(20)) {
                eprintln!("poll: {e}");
            }
        }
        let assignments: Vec<BTreeSet<i32>> = members.iter().map(|m| partitions_of(m)).collect();
        if done(&assignments) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: assignments still {assignments:?}");
    }
}

/// Disjoint, non-empty, and together all of 0..partitions.
fn balanced(assignments: &[BTreeSet<i32>], partitions: i32) -> bool {
    let total: usize = assignments.iter().map(BTreeSet::len).sum();
    let union: BTreeSet<i32> = assignments.iter().flatten().copied().collect();
    assignments.iter().all(|a| !a.is_empty()) && total == partitions as usize && union == (0..partitions).collect()
}

/// Polls the members until `n` records arrived; returns value → times seen.
fn consume_all(members: &[&Member], n: usize) -> BTreeMap<String, usize> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut count = 0;
    let deadline = Instant::now() + DEADLINE;
    while count < n {
        assert!(Instant::now() < deadline, "consumed {count} of {n}");
        for m in members {
            if let Some(Ok(msg)) = m.poll(Duration::from_millis(20)) {
                let v = String::from_utf8_lossy(msg.payload().unwrap_or_default()).into_owned();
                *seen.entry(v).or_default() += 1;
                count += 1;
            }
        }
    }
    // Anything more would be a duplicate.
    let settle = Instant::now() + Duration::from_millis(500);
    while Instant::now() < settle {
        for m in members {
            if let Some(Ok(msg)) = m.poll(Duration::from_millis(20)) {
                let v = String::from_utf8_lossy(msg.payload().unwrap_or_default()).into_owned();
                *seen.entry(v).or_default() += 1;
            }
        }
    }
    seen
}

async fn three_members_share_six_partitions(protocol: Protocol, extra: &[(&str, &str)]) {
    let broker = TestBroker::start(BROKER_SETTINGS);
    create_topic(&broker, "shared", 6).await;
    let group = format!("three-{protocol:?}");
    let a = member(&broker, &group, protocol, "shared", extra);
    let b = member(&broker, &group, protocol, "shared", extra);
    let c = member(&broker, &group, protocol, "shared", extra);
    poll_until(&[&a, &b, &c], "3 members over 6 partitions", |x| balanced(x, 6));
    if protocol == Protocol::Consumer {
        // The broker assigned, with the assignor the members asked for.
        use kafka_protocol::messages::{ConsumerGroupDescribeRequest, GroupId};
        let mut client = weir::client::Client::connect(&broker.bootstrap()).await.expect("connect");
        let req = ConsumerGroupDescribeRequest::default()
            .with_group_ids(vec![GroupId(kafka_protocol::protocol::StrBytes::from_string(group.clone()))]);
        let described = client.request(0, &req).await.expect("describe");
        let g = &described.groups[0];
        let wanted = extra.iter().find(|(k, _)| *k == "group.remote.assignor").map_or("uniform", |(_, v)| *v);
        assert_eq!((g.error_code, g.assignor_name.as_str(), g.members.len()), (0, wanted, 3));
    }
    produce(&broker, "shared", 300).await;
    let seen = consume_all(&[&a, &b, &c], 300);
    assert_eq!(seen.len(), 300, "every record arrived");
    assert!(seen.values().all(|&n| n == 1), "no record twice: {:?}", seen.iter().find(|(_, &n)| n > 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_classic_members_get_disjoint_partitions_and_consume_each_record_once() {
    three_members_share_six_partitions(Protocol::Classic, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_cooperative_sticky_members_get_disjoint_partitions_and_consume_each_record_once() {
    // Incremental rebalancing: members keep their partitions while others are moved.
    three_members_share_six_partitions(Protocol::Classic, &[("partition.assignment.strategy", "cooperative-sticky")])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_kip848_members_get_disjoint_partitions_and_consume_each_record_once() {
    three_members_share_six_partitions(Protocol::Consumer, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_kip848_members_with_the_range_assignor_share_the_partitions() {
    three_members_share_six_partitions(Protocol::Consumer, &[("group.remote.assignor", "range")]).await;
}

/// Not a test on its own: the group member that `a_killed_member...` runs in a child
/// process and SIGKILLs (so it never leaves the group).
#[test]
#[ignore = "run as a child process by a_killed_members_partitions_move_to_the_others"]
fn group_member_process() {
    let Ok(bootstrap) = std::env::var("WEIR_MEMBER_BOOTSTRAP") else { return };
    let group = std::env::var("WEIR_MEMBER_GROUP").expect("group");
    let protocol = if std::env::var("WEIR_MEMBER_PROTOCOL").as_deref() == Ok("consumer") {
        Protocol::Consumer
    } else {
        Protocol::Classic
    };
    let c: Member =
        config(&bootstrap, &group, protocol, &[]).create_with_context(Counting::default()).expect("consumer");
    c.subscribe(&["shared"]).expect("subscribe");
    let end = Instant::now() + DEADLINE;
    while Instant::now() < end {
        let _ = c.poll(Duration::from_millis(50));
    }
}

fn spawn_member(broker: &TestBroker, group: &str, protocol: Protocol) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "groups::group_member_process", "--ignored", "--nocapture", "--test-threads=1"])
        .env("WEIR_MEMBER_BOOTSTRAP", broker.bootstrap())
        .env("WEIR_MEMBER_GROUP", group)
        .env("WEIR_MEMBER_PROTOCOL", if protocol == Protocol::Consumer { "consumer" } else { "classic" })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn member process")
}

async fn killed_member_partitions_move(protocol: Protocol) {
    let broker = TestBroker::start(BROKER_SETTINGS);
    create_topic(&broker, "shared", 6).await;
    let group = format!("kill-{protocol:?}");
    let a = member(&broker, &group, protocol, "shared", &[]);
    let b = member(&broker, &group, protocol, "shared", &[]);
    let mut child = spawn_member(&broker, &group, protocol);
    // Three members: a and b hold four partitions between them, the child the other two.
    poll_until(&[&a, &b], "three-way split", |x| x.iter().all(|s| s.len() == 2) && balanced_pair(x));
    child.kill().expect("SIGKILL the member");
    let _ = child.wait();
    let killed = Instant::now();
    poll_until(&[&a, &b], "the dead member's partitions move", |x| balanced(x, 6));
    let took = killed.elapsed();
    // Session timeout 6 s (both protocols here), plus the rebalance itself.
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

fn balanced_pair(x: &[BTreeSet<i32>]) -> bool {
    x.len() == 2 && x[0].is_disjoint(&x[1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_classic_members_partitions_move_to_the_others_within_the_session_timeout() {
    killed_member_partitions_move(Protocol::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_kip848_members_partitions_move_to_the_others_within_the_session_timeout() {
    killed_member_partitions_move(Protocol::Consumer).await;
}

/// Consumes `n` records with a fresh member, commits synchronously, closes; returns the
/// offsets it saw.
fn consume_and_commit(broker: &TestBroker, group: &str, protocol: Protocol, n: usize) -> Vec<i64> {
    let c = member(broker, group, protocol, "resume", &[]);
    let mut offsets = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while offsets.len() < n {
        assert!(Instant::now() < deadline, "consumed {} of {n}", offsets.len());
        if let Some(Ok(m)) = c.poll(Duration::from_millis(50)) {
            offsets.push(m.offset());
            if offsets.len() == n {
                c.commit_message(&m, CommitMode::Sync).expect("commit");
            }
        }
    }
    c.unsubscribe();
    offsets
}

async fn a_consumer_resumes_after_its_commit(protocol: Protocol) {
    let broker = TestBroker::start(BROKER_SETTINGS);
    create_topic(&broker, "resume", 1).await;
    produce(&broker, "resume", 20).await;
    let group = format!("resume-{protocol:?}");
    assert_eq!(consume_and_commit(&broker, &group, protocol, 8), (0..8).collect::<Vec<i64>>());
    assert_eq!(consume_and_commit(&broker, &group, protocol, 5), (8..13).collect::<Vec<i64>>());
    // The group's lag is in /metrics, and the requests show which protocol was spoken.
    let (_, metrics) = http_get(&broker, "/metrics");
    let series = format!("weir_group_lag{{group=\"{group}\",topic=\"resume\",partition=\"0\"}}");
    assert_eq!(sample(&metrics, &series), Some(7.0), "{metrics}");
    let api = if protocol == Protocol::Consumer { "ConsumerGroupHeartbeat" } else { "JoinGroup" };
    let requests = sample(&metrics, &format!("weir_requests_total{{api=\"{api}\"}}")).unwrap_or(0.0);
    assert!(requests > 0.0, "no {api} requests counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classic_consumer_resumes_after_its_last_commit() {
    a_consumer_resumes_after_its_commit(Protocol::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kip848_consumer_resumes_after_its_last_commit() {
    a_consumer_resumes_after_its_commit(Protocol::Consumer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_groups_each_see_every_record() {
    let broker = TestBroker::start(BROKER_SETTINGS);
    create_topic(&broker, "news", 3).await;
    produce(&broker, "news", 90).await;
    let a = member(&broker, "subscriber-a", Protocol::Classic, "news", &[]);
    let b = member(&broker, "subscriber-b", Protocol::Consumer, "news", &[]);
    let seen_a = consume_all(&[&a], 90);
    let seen_b = consume_all(&[&b], 90);
    assert_eq!((seen_a.len(), seen_b.len()), (90, 90));
    assert!(seen_a.values().chain(seen_b.values()).all(|&n| n == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_restarting_within_its_session_timeout_causes_no_rebalance() {
    let broker = TestBroker::start(BROKER_SETTINGS);
    create_topic(&broker, "static", 4).await;
    let stat = |id: &str| member(&broker, "static-group", Protocol::Classic, "static", &[("group.instance.id", id)]);
    let a = stat("instance-a");
    let b = stat("instance-b");
    poll_until(&[&a, &b], "two static members", |x| balanced(x, 4));
    let before_a = partitions_of(&a);
    let b_rebalances = b.context().0.load(Ordering::SeqCst);
    drop(a); // a static member does not leave the group when it closes
    let a = stat("instance-a");
    poll_until(&[&a, &b], "the restarted member gets its partitions back", |x| x[0] == before_a && balanced(x, 4));
    // Give a rebalance, if one were coming, time to reach b (heartbeats every 500 ms).
    let settle = Instant::now() + Duration::from_secs(2);
    while Instant::now() < settle {
        let _ = a.poll(Duration::from_millis(20));
        let _ = b.poll(Duration::from_millis(20));
    }
    assert_eq!(b.context().0.load(Ordering::SeqCst), b_rebalances, "the other member saw no rebalance");
}

fn committed(broker: &TestBroker, group: &str, topic: &str, partitions: i32) -> Vec<Offset> {
    let c: BaseConsumer = config(&broker.bootstrap(), group, Protocol::Classic, &[]).create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = c.committed_offsets(tpl, Duration::from_secs(20)).expect("committed offsets");
    got.elements().iter().map(|e| e.offset()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_a_restart_and_a_sigkill() {
    let mut broker = TestBroker::start(BROKER_SETTINGS);
    create_topic(&broker, "durable", 2).await;
    produce(&broker, "durable", 10).await;
    {
        let c: BaseConsumer =
            config(&broker.bootstrap(), "durable-group", Protocol::Classic, &[]).create().expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("durable", 0, Offset::Offset(3)).expect("tpl");
        tpl.add_partition_offset("durable", 1, Offset::Offset(4)).expect("tpl");
        c.commit(&tpl, CommitMode::Sync).expect("commit");
    }
    let expected = vec![Offset::Offset(3), Offset::Offset(4)];
    assert_eq!(committed(&broker, "durable-group", "durable", 2), expected);
    broker.stop();
    broker.restart();
    assert_eq!(committed(&broker, "durable-group", "durable", 2), expected, "after a clean restart");
    {
        let c: BaseConsumer =
            config(&broker.bootstrap(), "durable-group", Protocol::Classic, &[]).create().expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("durable", 1, Offset::Offset(7)).expect("tpl");
        c.commit(&tpl, CommitMode::Sync).expect("commit");
    }
    broker.kill();
    broker.restart();
    assert_eq!(
        committed(&broker, "durable-group", "durable", 2),
        vec![Offset::Offset(3), Offset::Offset(7)],
        "after SIGKILL"
    );
}
