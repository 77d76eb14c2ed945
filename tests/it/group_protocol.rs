//! The group coordinator at the wire level (weir's own Kafka client): the error codes Kafka
//! returns at each step of the classic protocol, old and new API versions, batched
//! FindCoordinator and LeaveGroup, multi-group OffsetFetch, listing, deletion and
//! OffsetDelete; and how a KIP-848 group (librdkafka members) is described, listed and
//! guarded from deletion.

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use weir::client::Client;

use crate::util::{kip848_member, TestBroker};

// Kafka's error codes.
const NONE: i16 = 0;
const ILLEGAL_GENERATION: i16 = 22;
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const UNKNOWN_MEMBER_ID: i16 = 25;
const INVALID_SESSION_TIMEOUT: i16 = 26;
const REBALANCE_IN_PROGRESS: i16 = 27;
const NON_EMPTY_GROUP: i16 = 68;
const GROUP_ID_NOT_FOUND: i16 = 69;
const MEMBER_ID_REQUIRED: i16 = 79;
const FENCED_INSTANCE_ID: i16 = 82;
const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// Consumer-protocol subscription metadata (v0) for `topics`.
fn subscription(topics: &[&str]) -> Bytes {
    let mut b = Vec::new();
    b.extend(0i16.to_be_bytes());
    b.extend((topics.len() as i32).to_be_bytes());
    for t in topics {
        b.extend((t.len() as i16).to_be_bytes());
        b.extend(t.as_bytes());
    }
    b.extend((-1i32).to_be_bytes());
    Bytes::from(b)
}

fn join(group: &str, member: &str, instance: Option<&str>, topics: &[&str]) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(s(member))
        .with_group_instance_id(instance.map(s))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(subscription(topics))])
}

fn sync(group: &str, member: &str, generation: i32, assignments: &[(&str, &[u8])]) -> SyncGroupRequest {
    SyncGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(generation)
        .with_member_id(s(member))
        .with_assignments(
            assignments
                .iter()
                .map(|(m, a)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(m))
                        .with_assignment(Bytes::copy_from_slice(a))
                })
                .collect(),
        )
}

fn heartbeat(group: &str, member: &str, generation: i32) -> HeartbeatRequest {
    HeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(generation)
        .with_member_id(s(member))
}

fn commit(group: &str, member: &str, generation: i32, topic: &str, offset: i64) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(vec![OffsetCommitRequestTopic::default().with_name(TopicName(s(topic))).with_partitions(vec![
            OffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(offset),
        ])])
}

async fn client(broker: &TestBroker) -> Client {
    Client::connect(&broker.bootstrap()).await.expect("connect")
}

async fn create_topic(c: &mut Client, name: &str) {
    create_partitioned_topic(c, name, 1).await;
}

async fn create_partitioned_topic(c: &mut Client, name: &str, partitions: i32) {
    let req = CreateTopicsRequest::default().with_topics(vec![create_topics_request::CreatableTopic::default()
        .with_name(TopicName(s(name)))
        .with_num_partitions(partitions)
        .with_replication_factor(1)]);
    let r = c.request(5, &req).await.expect("create topics");
    assert_eq!(r.topics[0].error_code, NONE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_classic_protocol_returns_kafkas_error_codes_at_every_step() {
    let broker = TestBroker::start(&["group.initial.rebalance.delay.ms=0"]);
    let mut a = client(&broker).await;
    let mut b = client(&broker).await;
    create_topic(&mut a, "t").await;

    // FindCoordinator, batched (v4) and single (v0): this broker for every group.
    let found = a
        .request(4, &FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g"), s("other")]))
        .await
        .expect("find");
    assert_eq!(found.coordinators.len(), 2);
    assert!(found.coordinators.iter().all(|c| c.error_code == NONE && c.port == i32::from(broker.kafka_addr.port())));
    let found = a.request(0, &FindCoordinatorRequest::default().with_key(s("g"))).await.expect("find v0");
    assert_eq!((found.error_code, found.port), (NONE, i32::from(broker.kafka_addr.port())));

    // Session timeouts outside group.min/max.session.timeout.ms are refused.
    let r = a.request(5, &join("g", "", None, &["t"]).with_session_timeout_ms(1_000)).await.expect("join");
    assert_eq!(r.error_code, INVALID_SESSION_TIMEOUT);
    // An unknown member id for a group that does not exist.
    let r = a.request(5, &join("nope", "ghost", None, &["t"])).await.expect("join");
    assert_eq!(r.error_code, UNKNOWN_MEMBER_ID);

    // v4+: the first JoinGroup hands out the member id.
    let r = a.request(5, &join("g", "", None, &["t"])).await.expect("join");
    assert_eq!(r.error_code, MEMBER_ID_REQUIRED);
    let member_a = r.member_id.to_string();
    let r = a.request(5, &join("g", &member_a, None, &["t"])).await.expect("join");
    assert_eq!((r.error_code, r.generation_id, r.leader.as_str()), (NONE, 1, member_a.as_str()));
    assert_eq!(r.members.len(), 1, "the leader gets the members' metadata");
    // A protocol nobody in the group supports.
    let odd = join("g", "", None, &["t"]).with_protocols(vec![JoinGroupRequestProtocol::default().with_name(s("odd"))]);
    assert_eq!(b.request(5, &odd).await.expect("join").error_code, INCONSISTENT_GROUP_PROTOCOL);

    // SyncGroup with the wrong generation, then the right one.
    assert_eq!(a.request(3, &sync("g", &member_a, 7, &[])).await.expect("sync").error_code, ILLEGAL_GENERATION);
    let r = a.request(3, &sync("g", &member_a, 1, &[(&member_a, b"A1")])).await.expect("sync");
    assert_eq!((r.error_code, &r.assignment[..]), (NONE, &b"A1"[..]));
    assert_eq!(a.request(3, &heartbeat("g", &member_a, 1)).await.expect("hb").error_code, NONE);
    assert_eq!(a.request(3, &heartbeat("g", &member_a, 0)).await.expect("hb").error_code, ILLEGAL_GENERATION);
    assert_eq!(a.request(3, &heartbeat("g", "ghost", 1)).await.expect("hb").error_code, UNKNOWN_MEMBER_ID);

    // A second member with JoinGroup v0 (no member id round): a rebalance starts, which the
    // first member learns from its heartbeat; commits stay allowed until it completes.
    let joining = tokio::spawn(async move {
        let r = b.request(0, &join("g", "", None, &["t"])).await.expect("join v0");
        (b, r)
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let code = a.request(0, &heartbeat("g", &member_a, 1)).await.expect("hb v0").error_code;
        if code == REBALANCE_IN_PROGRESS {
            break;
        }
        assert_eq!(code, NONE);
        assert!(std::time::Instant::now() < deadline, "no rebalance seen");
    }
    let r = a.request(2, &commit("g", &member_a, 1, "t", 5)).await.expect("commit");
    assert_eq!(r.topics[0].partitions[0].error_code, NONE, "commits during PreparingRebalance are allowed");
    let r = a.request(0, &join("g", &member_a, None, &["t"])).await.expect("rejoin v0");
    assert_eq!((r.error_code, r.generation_id), (NONE, 2));
    let (mut b, rb) = joining.await.expect("joined");
    assert_eq!((rb.error_code, rb.generation_id), (NONE, 2));
    let member_b = rb.member_id.to_string();
    // Between the join and the leader's sync, commits get REBALANCE_IN_PROGRESS.
    let r = a.request(2, &commit("g", &member_a, 2, "t", 6)).await.expect("commit");
    assert_eq!(r.topics[0].partitions[0].error_code, REBALANCE_IN_PROGRESS);
    let follower = {
        let req = sync("g", &member_b, 2, &[]);
        tokio::spawn(async move { b.request(0, &req).await.expect("sync v0") })
    };
    assert_eq!(rb.leader.as_str(), member_a, "the old leader stays leader");
    let r = a.request(0, &sync("g", &member_a, 2, &[(&member_a, b"A2"), (&member_b, b"B2")])).await.expect("sync");
    assert_eq!(&r.assignment[..], b"A2");
    assert_eq!(&follower.await.expect("follower").assignment[..], b"B2");
    let r = a.request(2, &commit("g", &member_a, 2, "t", 7)).await.expect("commit");
    assert_eq!(r.topics[0].partitions[0].error_code, NONE);
    assert_eq!(
        a.request(2, &commit("g", "", -1, "nope", 1)).await.expect("commit").topics[0].partitions[0].error_code,
        UNKNOWN_MEMBER_ID,
        "a generation-less commit to a live group"
    );

    // Listing (with a state filter) and describing.
    let listed = a.request(4, &ListGroupsRequest::default().with_states_filter(vec![s("Stable")])).await.expect("list");
    assert_eq!(listed.groups.iter().map(|g| g.group_id.as_str()).collect::<Vec<_>>(), ["g"]);
    let listed = a.request(4, &ListGroupsRequest::default().with_states_filter(vec![s("Empty")])).await.expect("list");
    assert!(listed.groups.is_empty());
    let described =
        a.request(5, &DescribeGroupsRequest::default().with_groups(vec![GroupId(s("g"))])).await.expect("describe");
    let g = &described.groups[0];
    assert_eq!((g.group_state.as_str(), g.protocol_data.as_str(), g.members.len()), ("Stable", "range", 2));
    assert!(g.members.iter().any(|m| &m.member_assignment[..] == b"B2"));

    // A non-empty group cannot be deleted; its subscribed topic's offsets cannot be deleted.
    let r = a.request(2, &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g"))])).await.expect("del");
    assert_eq!(r.results[0].error_code, NON_EMPTY_GROUP);
    let od = OffsetDeleteRequest::default().with_group_id(GroupId(s("g"))).with_topics(vec![
        OffsetDeleteRequestTopic::default()
            .with_name(TopicName(s("t")))
            .with_partitions(vec![OffsetDeleteRequestPartition::default().with_partition_index(0)]),
    ]);
    let r = a.request(0, &od).await.expect("offset delete");
    assert_eq!(r.topics[0].partitions[0].error_code, GROUP_SUBSCRIBED_TO_TOPIC);

    // Batched LeaveGroup (v3+): one known member, one unknown.
    let leave = LeaveGroupRequest::default().with_group_id(GroupId(s("g"))).with_members(vec![
        MemberIdentity::default().with_member_id(s(&member_b)),
        MemberIdentity::default().with_member_id(s("ghost")),
    ]);
    let r = a.request(3, &leave).await.expect("leave");
    assert_eq!(r.members.iter().map(|m| m.error_code).collect::<Vec<_>>(), [NONE, UNKNOWN_MEMBER_ID]);
    // Single LeaveGroup (v0) for the last member: the group is empty.
    let r = a
        .request(0, &LeaveGroupRequest::default().with_group_id(GroupId(s("g"))).with_member_id(s(&member_a)))
        .await
        .expect("leave v0");
    assert_eq!(r.error_code, NONE);

    // Multi-group OffsetFetch (v8): the committed offset, and -1 for an unknown group.
    let fetch = OffsetFetchRequest::default().with_groups(vec![
        OffsetFetchRequestGroup::default().with_group_id(GroupId(s("g"))).with_topics(None),
        OffsetFetchRequestGroup::default().with_group_id(GroupId(s("unknown"))).with_topics(Some(vec![
            offset_fetch_request::OffsetFetchRequestTopics::default()
                .with_name(TopicName(s("t")))
                .with_partition_indexes(vec![0]),
        ])),
    ]);
    let r = a.request(8, &fetch).await.expect("offset fetch v8");
    assert_eq!(r.groups[0].topics[0].partitions[0].committed_offset, 7);
    assert_eq!(r.groups[1].topics[0].partitions[0].committed_offset, -1);
    // Old OffsetFetch (v1) of the same.
    let fetch = OffsetFetchRequest::default().with_group_id(GroupId(s("g"))).with_topics(Some(vec![
        offset_fetch_request::OffsetFetchRequestTopic::default()
            .with_name(TopicName(s("t")))
            .with_partition_indexes(vec![0]),
    ]));
    let r = a.request(1, &fetch).await.expect("offset fetch v1");
    assert_eq!(r.topics[0].partitions[0].committed_offset, 7);

    // Empty now: a commit to an unknown topic is refused per partition; OffsetDelete and
    // DeleteGroups succeed; the group is gone.
    let r = a.request(2, &commit("g", "", -1, "nope", 1)).await.expect("commit");
    assert_eq!(r.topics[0].partitions[0].error_code, UNKNOWN_TOPIC_OR_PARTITION);
    assert_eq!(a.request(0, &od).await.expect("offset delete").topics[0].partitions[0].error_code, NONE);
    let r = a.request(2, &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g"))])).await.expect("del");
    assert_eq!(r.results[0].error_code, NONE);
    let r = a.request(2, &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g"))])).await.expect("del");
    assert_eq!(r.results[0].error_code, GROUP_ID_NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_members_are_fenced_by_instance_id() {
    let broker = TestBroker::start(&["group.initial.rebalance.delay.ms=0"]);
    let mut a = client(&broker).await;
    create_topic(&mut a, "t").await;
    let r = a.request(5, &join("sg", "", Some("i1"), &["t"])).await.expect("join");
    assert_eq!(r.error_code, NONE, "static members join without MEMBER_ID_REQUIRED");
    let first = r.member_id.to_string();
    let r = a.request(3, &sync("sg", &first, 1, &[(&first, b"X")])).await.expect("sync");
    assert_eq!(r.error_code, NONE);
    // The same instance restarts: a new member id, same generation, no rebalance.
    let r = a.request(5, &join("sg", "", Some("i1"), &["t"])).await.expect("rejoin");
    assert_eq!((r.error_code, r.generation_id), (NONE, 1));
    let second = r.member_id.to_string();
    assert_ne!(first, second);
    // The old incarnation is fenced.
    let hb = heartbeat("sg", &first, 1).with_group_instance_id(Some(s("i1")));
    assert_eq!(a.request(3, &hb).await.expect("hb").error_code, FENCED_INSTANCE_ID);
    let r = a.request(3, &sync("sg", &second, 1, &[]).with_group_instance_id(Some(s("i1")))).await.expect("sync");
    assert_eq!((r.error_code, &r.assignment[..]), (NONE, &b"X"[..]), "the assignment carries over");
    // Leaving by instance id (member id empty), as Kafka's admin tools do.
    let leave = LeaveGroupRequest::default()
        .with_group_id(GroupId(s("sg")))
        .with_members(vec![MemberIdentity::default().with_member_id(s("")).with_group_instance_id(Some(s("i1")))]);
    assert_eq!(a.request(3, &leave).await.expect("leave").members[0].error_code, NONE);
}

const DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// The partitions librdkafka says `c` owns.
fn owned(c: &BaseConsumer) -> Vec<i32> {
    let mut ps: Vec<i32> =
        c.assignment().map(|a| a.elements().iter().map(|e| e.partition()).collect()).unwrap_or_default();
    ps.sort();
    ps
}

/// ConsumerGroupDescribe (v1) of one group.
async fn consumer_describe(c: &mut Client, group: &str) -> consumer_group_describe_response::DescribedGroup {
    let req = ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(s(group))]);
    let mut r = c.request(1, &req).await.expect("consumer group describe");
    r.groups.remove(0)
}

/// DescribeGroups of one group at `version`.
async fn describe(c: &mut Client, group: &str, version: i16) -> describe_groups_response::DescribedGroup {
    let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group))]);
    let mut r = c.request(version, &req).await.expect("describe groups");
    r.groups.remove(0)
}

/// ListGroups (v5) with filters: the entry of `group`, if listed.
async fn listed(
    c: &mut Client,
    group: &str,
    states: &[&str],
    types: &[&str],
) -> Option<list_groups_response::ListedGroup> {
    let req = ListGroupsRequest::default()
        .with_states_filter(states.iter().map(|x| s(x)).collect())
        .with_types_filter(types.iter().map(|x| s(x)).collect());
    let r = c.request(5, &req).await.expect("list groups");
    assert_eq!(r.error_code, NONE);
    r.groups.into_iter().find(|g| g.group_id.as_str() == group)
}

fn offset_delete(group: &str, topics: &[&str]) -> OffsetDeleteRequest {
    OffsetDeleteRequest::default().with_group_id(GroupId(s(group))).with_topics(
        topics
            .iter()
            .map(|t| {
                OffsetDeleteRequestTopic::default()
                    .with_name(TopicName(s(t)))
                    .with_partitions(vec![OffsetDeleteRequestPartition::default().with_partition_index(0)])
            })
            .collect(),
    )
}

async fn delete_group(c: &mut Client, group: &str) -> i16 {
    let r = c.request(2, &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(group))])).await;
    r.expect("delete groups").results[0].error_code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kip848_group_is_described_by_consumer_group_describe_and_listed_as_a_consumer_group() {
    let broker =
        TestBroker::start(&["group.consumer.heartbeat.interval.ms=300", "group.consumer.session.timeout.ms=6000"]);
    let mut c = client(&broker).await;
    create_partitioned_topic(&mut c, "orders", 2).await;
    create_topic(&mut c, "audit").await;
    // An offset of a topic the members will not subscribe to (an admin-style commit).
    let r = c.request(2, &commit("kip848", "", -1, "audit", 3)).await.expect("commit");
    assert_eq!(r.topics[0].partitions[0].error_code, NONE);

    let a = kip848_member(&broker, "kip848", "orders", "member-a");
    let b = kip848_member(&broker, "kip848", "orders", "member-b");
    // Both members own one partition, and the coordinator sees the group reconciled to it.
    let deadline = std::time::Instant::now() + DEADLINE;
    let described = loop {
        for m in [&a, &b] {
            let _ = m.poll(std::time::Duration::from_millis(50));
        }
        let (pa, pb) = (owned(&a), owned(&b));
        let d = consumer_describe(&mut c, "kip848").await;
        if pa.len() == 1 && pb.len() == 1 && pa != pb && d.group_state.as_str() == "Stable" {
            break (d, pa, pb);
        }
        assert!(std::time::Instant::now() < deadline, "never stable: a {pa:?}, b {pb:?}, {d:?}");
    };
    let (d, pa, pb) = described;
    assert_eq!((d.error_code, d.members.len(), d.assignor_name.as_str()), (NONE, 2, "uniform"));
    for (client_id, partitions) in [("member-a", &pa), ("member-b", &pb)] {
        let m = d.members.iter().find(|m| m.client_id.as_str() == client_id).expect("member described");
        assert!(m.client_host.starts_with('/'), "Kafka's host form: {:?}", m.client_host);
        assert_eq!(m.subscribed_topic_names.iter().map(|t| t.as_str()).collect::<Vec<_>>(), ["orders"]);
        let topics = &m.assignment.topic_partitions;
        assert_eq!(topics.len(), 1);
        assert_eq!((topics[0].topic_name.as_str(), &topics[0].partitions), ("orders", partitions));
    }

    // DescribeGroups is Kafka's classic-group API: a KIP-848 group is "Dead" there, with
    // GROUP_ID_NOT_FOUND from v6, exactly like an unknown group.
    for (group, message) in [("kip848", "Group kip848 is not a classic group."), ("nope", "Group nope not found.")] {
        let v5 = describe(&mut c, group, 5).await;
        assert_eq!((v5.group_state.as_str(), v5.error_code, v5.members.len()), ("Dead", NONE, 0), "{group} v5");
        let v6 = describe(&mut c, group, 6).await;
        assert_eq!((v6.group_state.as_str(), v6.error_code), ("Dead", GROUP_ID_NOT_FOUND), "{group} v6");
        assert_eq!(v6.error_message.as_deref(), Some(message));
    }
    let d = consumer_describe(&mut c, "nope").await;
    assert_eq!(d.error_code, GROUP_ID_NOT_FOUND);

    // ListGroups: the consumer protocol type, Kafka's state and group type names; both
    // filters are case-insensitive.
    let g = listed(&mut c, "kip848", &[], &[]).await.expect("listed");
    assert_eq!(
        (g.protocol_type.as_str(), g.group_state.as_str(), g.group_type.as_str()),
        ("consumer", "Stable", "consumer")
    );
    assert!(listed(&mut c, "kip848", &["STABLE"], &["Consumer"]).await.is_some());
    assert!(listed(&mut c, "kip848", &[], &["classic"]).await.is_none());
    assert!(listed(&mut c, "kip848", &["Empty"], &[]).await.is_none());

    // With members: the group cannot be deleted, nor the offsets of its subscribed topic;
    // the offsets of any other topic can.
    assert_eq!(delete_group(&mut c, "kip848").await, NON_EMPTY_GROUP);
    let r = c.request(0, &offset_delete("kip848", &["orders", "audit"])).await.expect("offset delete");
    assert_eq!(r.error_code, NONE);
    let code_of = |t: &str| r.topics.iter().find(|x| x.name.as_str() == t).map(|x| x.partitions[0].error_code);
    assert_eq!((code_of("orders"), code_of("audit")), (Some(GROUP_SUBSCRIBED_TO_TOPIC), Some(NONE)));
    let fetch = OffsetFetchRequest::default()
        .with_groups(vec![OffsetFetchRequestGroup::default().with_group_id(GroupId(s("kip848"))).with_topics(None)]);
    let r = c.request(8, &fetch).await.expect("offset fetch");
    assert!(r.groups[0].topics.iter().all(|t| t.name.as_str() != "audit"), "audit's offset is gone: {r:?}");

    // Once the members are gone the group is Empty, and can be deleted.
    drop((a, b));
    let deadline = std::time::Instant::now() + DEADLINE;
    while listed(&mut c, "kip848", &["Empty"], &[]).await.is_none() {
        assert!(std::time::Instant::now() < deadline, "the group never emptied");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(delete_group(&mut c, "kip848").await, NONE);
    assert_eq!(delete_group(&mut c, "kip848").await, GROUP_ID_NOT_FOUND);
    assert!(listed(&mut c, "kip848", &[], &[]).await.is_none());
}
