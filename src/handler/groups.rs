//! The group coordinator's APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, OffsetCommit, OffsetFetch, ListGroups, DescribeGroups, DeleteGroups,
//! OffsetDelete, ConsumerGroupHeartbeat and ConsumerGroupDescribe. These translate between
//! the wire and [`crate::group::Coordinator`], minding which fields each version carries.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::consumer_group_describe_response as cgd;
use kafka_protocol::messages::consumer_group_heartbeat_response as cgh;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator as CoordinatorEntry;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::{code, RequestContext};
use crate::broker::Broker;
use crate::group::classic::{ClassicState, JoinParams};
use crate::group::consumer::{Assignment, HeartbeatParams, ASSIGNORS};
use crate::group::{CommitEntry, Committed, Committer, Group, Kind};

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// Kafka's CLIENT-HOST form: "/" and the address.
fn client_host(ctx: &RequestContext) -> String {
    format!("/{}", ctx.client_host)
}

pub async fn find_coordinator(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let (host, port) = broker.advertised.clone();
    let node = BrokerId(broker.config.node_id);
    let keys: Vec<StrBytes> = if ctx.api_version >= 4 { req.coordinator_keys } else { vec![req.key] };
    let mut entries = Vec::with_capacity(keys.len());
    for key in keys {
        let (error, message) = match req.key_type {
            0 => match broker.groups.partition_for(broker, &key).await {
                Ok(_) => (code::NONE, None),
                Err(e) => (e, Some("the offsets topic could not be created")),
            },
            1 => (code::COORDINATOR_NOT_AVAILABLE, Some("transactions are not supported by this broker")),
            _ => (code::INVALID_REQUEST, Some("unsupported coordinator key type")),
        };
        let ok = error == code::NONE;
        entries.push(
            CoordinatorEntry::default()
                .with_key(key)
                .with_node_id(if ok { node } else { BrokerId(-1) })
                .with_host(if ok { s(host.clone()) } else { s("") })
                .with_port(if ok { i32::from(port) } else { -1 })
                .with_error_code(error)
                .with_error_message(message.map(s)),
        );
    }
    if ctx.api_version >= 4 {
        return FindCoordinatorResponse::default().with_coordinators(entries);
    }
    let e = entries.pop().unwrap_or_default();
    let mut r = FindCoordinatorResponse::default()
        .with_error_code(e.error_code)
        .with_node_id(e.node_id)
        .with_host(e.host)
        .with_port(e.port);
    if ctx.api_version >= 1 {
        r = r.with_error_message(e.error_message);
    }
    r
}

pub async fn join_group(broker: &Arc<Broker>, ctx: &RequestContext, req: JoinGroupRequest) -> JoinGroupResponse {
    let v = ctx.api_version;
    let params = JoinParams {
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.map(|i| i.to_string()),
        client_id: ctx.client_id.as_deref().unwrap_or_default().to_owned(),
        client_host: client_host(ctx),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: if v >= 1 && req.rebalance_timeout_ms >= 0 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req.protocols.into_iter().map(|p| (p.name.to_string(), p.metadata)).collect(),
        require_known_member_id: v >= 4,
    };
    let r = broker.groups.join(broker, &req.group_id, params).await;
    let members = r
        .members
        .into_iter()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(s(m.member_id))
                .with_group_instance_id(if v >= 5 { m.instance_id.map(s) } else { None })
                .with_metadata(m.metadata)
        })
        .collect();
    let protocol_name = match r.protocol_name {
        Some(p) => Some(s(p)),
        None if v < 7 => Some(s("")),
        None => None,
    };
    JoinGroupResponse::default()
        .with_error_code(r.error)
        .with_generation_id(r.generation)
        .with_protocol_type(if v >= 7 { r.protocol_type.map(s) } else { None })
        .with_protocol_name(protocol_name)
        .with_leader(s(r.leader))
        .with_skip_assignment(v >= 9 && r.skip_assignment)
        .with_member_id(s(r.member_id))
        .with_members(members)
}

pub async fn sync_group(broker: &Arc<Broker>, ctx: &RequestContext, req: SyncGroupRequest) -> SyncGroupResponse {
    let assignments: Vec<(String, Bytes)> =
        req.assignments.into_iter().map(|a| (a.member_id.to_string(), a.assignment)).collect();
    let r = broker
        .groups
        .sync(
            broker,
            &req.group_id,
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id,
            req.protocol_type.as_deref(),
            req.protocol_name.as_deref(),
            assignments,
        )
        .await;
    let v5 = ctx.api_version >= 5;
    SyncGroupResponse::default()
        .with_error_code(r.error)
        .with_protocol_type(if v5 { r.protocol_type.map(s) } else { None })
        .with_protocol_name(if v5 { r.protocol_name.map(s) } else { None })
        .with_assignment(r.assignment)
}

pub async fn heartbeat(broker: &Arc<Broker>, req: HeartbeatRequest) -> HeartbeatResponse {
    let error = broker
        .groups
        .heartbeat(&req.group_id, &req.member_id, req.group_instance_id.as_deref(), req.generation_id)
        .await;
    HeartbeatResponse::default().with_error_code(error)
}

pub async fn leave_group(broker: &Arc<Broker>, ctx: &RequestContext, req: LeaveGroupRequest) -> LeaveGroupResponse {
    let batch = ctx.api_version >= 3;
    let members: Vec<(String, Option<String>)> = if batch {
        req.members
            .iter()
            .map(|m| (m.member_id.to_string(), m.group_instance_id.as_ref().map(|i| i.to_string())))
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    match broker.groups.leave(broker, &req.group_id, &members).await {
        Err(e) => LeaveGroupResponse::default().with_error_code(e),
        Ok(codes) if !batch => {
            LeaveGroupResponse::default().with_error_code(codes.first().copied().unwrap_or_default())
        }
        Ok(codes) => LeaveGroupResponse::default().with_members(
            members
                .into_iter()
                .zip(codes)
                .map(|((id, instance), error)| {
                    MemberResponse::default()
                        .with_member_id(s(id))
                        .with_group_instance_id(instance.map(s))
                        .with_error_code(error)
                })
                .collect(),
        ),
    }
}

pub async fn offset_commit(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let entries: Vec<CommitEntry> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| CommitEntry {
                topic: t.name.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if ctx.api_version >= 6 { p.committed_leader_epoch } else { -1 },
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        })
        .collect();
    let who = Committer {
        generation_or_epoch: req.generation_id_or_member_epoch,
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.map(|i| i.to_string()),
    };
    let codes = match broker.groups.commit(broker, &req.group_id, &who, &entries, ctx.api_version).await {
        Ok(codes) => codes,
        Err(e) => vec![e; entries.len()],
    };
    let mut codes = codes.into_iter();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(codes.next().unwrap_or(code::NONE))
                })
                .collect();
            OffsetCommitResponseTopic::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// Committed offsets grouped by topic, in request order (or sorted for "all").
type Fetched = Vec<(String, Vec<(i32, Option<Committed>)>)>;

fn group_by_topic(rows: Vec<(String, i32, Option<Committed>)>) -> Fetched {
    let mut out: Fetched = Vec::new();
    for (topic, partition, c) in rows {
        match out.last_mut() {
            Some((t, ps)) if *t == topic => ps.push((partition, c)),
            _ => out.push((topic, vec![(partition, c)])),
        }
    }
    out
}

fn fetched_fields(c: &Option<Committed>, v: i16) -> (i64, i32, StrBytes) {
    match c {
        Some(c) => (c.offset, if v >= 5 { c.leader_epoch } else { -1 }, s(c.metadata.clone())),
        None => (-1, -1, s("")),
    }
}

/// One group's committed offsets in the v8+ shape (older versions are converted from it).
async fn fetch_group(
    broker: &Arc<Broker>,
    group_id: GroupId,
    topics: Option<Vec<(String, Vec<i32>)>>,
    member: Option<(&str, i32)>,
    v: i16,
) -> OffsetFetchResponseGroup {
    let (error, rows) = match broker.groups.fetch_offsets(&group_id, topics.as_deref(), member).await {
        Ok(rows) => (code::NONE, rows),
        Err(e) => (e, Vec::new()),
    };
    let topics = group_by_topic(rows)
        .into_iter()
        .map(|(t, ps)| {
            let partitions = ps
                .iter()
                .map(|(p, c)| {
                    let (offset, epoch, metadata) = fetched_fields(c, v);
                    OffsetFetchResponsePartitions::default()
                        .with_partition_index(*p)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(epoch)
                        .with_metadata(Some(metadata))
                })
                .collect();
            OffsetFetchResponseTopics::default().with_name(TopicName(s(t))).with_partitions(partitions)
        })
        .collect();
    OffsetFetchResponseGroup::default().with_group_id(group_id).with_topics(topics).with_error_code(error)
}

pub async fn offset_fetch(broker: &Arc<Broker>, ctx: &RequestContext, req: OffsetFetchRequest) -> OffsetFetchResponse {
    let v = ctx.api_version;
    if v < 8 {
        let topics = req.topics.map(|ts| ts.into_iter().map(|t| (t.name.to_string(), t.partition_indexes)).collect());
        let g = fetch_group(broker, req.group_id, topics, None, v).await;
        let topics = g
            .topics
            .into_iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .into_iter()
                    .map(|p| {
                        OffsetFetchResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_committed_offset(p.committed_offset)
                            .with_committed_leader_epoch(p.committed_leader_epoch)
                            .with_metadata(p.metadata)
                            .with_error_code(p.error_code)
                    })
                    .collect();
                OffsetFetchResponseTopic::default().with_name(t.name).with_partitions(partitions)
            })
            .collect();
        let r = OffsetFetchResponse::default().with_topics(topics);
        return if v >= 2 { r.with_error_code(g.error_code) } else { r };
    }
    let mut groups = Vec::with_capacity(req.groups.len());
    for g in req.groups {
        let topics = g.topics.map(|ts| ts.into_iter().map(|t| (t.name.to_string(), t.partition_indexes)).collect());
        let member = match (&g.member_id, v >= 9) {
            (Some(m), true) if !m.is_empty() => Some((m.as_str(), g.member_epoch)),
            _ => None,
        };
        groups.push(fetch_group(broker, g.group_id.clone(), topics, member, v).await);
    }
    OffsetFetchResponse::default().with_groups(groups)
}

/// ListGroups: classic and KIP-848 groups alike, with Kafka's state names (v4+) and group
/// types (v5+). Both filters are case-insensitive, as Kafka's `listGroups` (which also trims
/// the states); a type Kafka does not know matches no group.
pub async fn list_groups(broker: &Arc<Broker>, ctx: &RequestContext, req: ListGroupsRequest) -> ListGroupsResponse {
    let v = ctx.api_version;
    let states: Vec<String> = req.states_filter.iter().map(|s| s.trim().to_lowercase()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_lowercase()).collect();
    let groups = broker
        .groups
        .read(|groups| {
            groups
                .iter()
                .filter(|(_, g)| states.is_empty() || states.contains(&g.state_name().to_lowercase()))
                .filter(|(_, g)| types.is_empty() || types.contains(&g.type_name().to_owned()))
                .map(|(id, g)| {
                    ListedGroup::default()
                        .with_group_id(GroupId(s(id.clone())))
                        .with_protocol_type(s(g.protocol_type()))
                        .with_group_state(if v >= 4 { s(g.state_name()) } else { s("") })
                        // Kafka's coordinator sends its `Group.GroupType` names, lower case
                        // ("classic", "consumer"); clients parse them case-insensitively.
                        .with_group_type(if v >= 5 { s(g.type_name()) } else { s("") })
                })
                .collect()
        })
        .await;
    ListGroupsResponse::default().with_groups(groups)
}

/// Kafka's answer for a group DescribeGroups cannot describe: "Dead" and, from v6 (which
/// added the error message), GROUP_ID_NOT_FOUND with `message`.
fn not_described(id: &str, v: i16, message: String) -> DescribedGroup {
    let d = DescribedGroup::default().with_group_id(GroupId(s(id))).with_group_state(s("Dead"));
    if v >= 6 {
        d.with_error_code(code::GROUP_ID_NOT_FOUND).with_error_message(Some(s(message)))
    } else {
        d
    }
}

fn describe_classic(id: &str, g: &Group, v: i16) -> DescribedGroup {
    let Kind::Classic(c) = &g.kind else {
        return not_described(id, v, format!("Group {id} is not a classic group."));
    };
    let base = DescribedGroup::default().with_group_id(GroupId(s(id))).with_protocol_type(s(g.protocol_type()));
    let stable = c.state == ClassicState::Stable;
    let protocol = c.protocol.clone().unwrap_or_default();
    let members = c
        .members
        .values()
        .map(|m| {
            DescribedGroupMember::default()
                .with_member_id(s(m.member_id.clone()))
                .with_group_instance_id(if v >= 4 { m.instance_id.clone().map(s) } else { None })
                .with_client_id(s(m.client_id.clone()))
                .with_client_host(s(m.client_host.clone()))
                .with_member_metadata(if stable { m.metadata(&protocol) } else { Bytes::new() })
                .with_member_assignment(if stable { m.assignment.clone() } else { Bytes::new() })
        })
        .collect();
    base.with_group_state(s(c.state.name()))
        .with_protocol_data(if stable { s(protocol) } else { s("") })
        .with_members(members)
}

/// DescribeGroups describes classic groups only, as Kafka's coordinator does
/// (`GroupMetadataManager.describeGroups` looks the group up with `classicGroup()`): a
/// KIP-848 group, like an unknown one, is "Dead" with no members, and from v6
/// GROUP_ID_NOT_FOUND ("Group G is not a classic group."). Kafka's admin client
/// (`DescribeConsumerGroupsHandler`) and librdkafka describe a group with
/// ConsumerGroupDescribe first and fall back to DescribeGroups only on GROUP_ID_NOT_FOUND
/// or UNSUPPORTED_VERSION, so a KIP-848 group is described by [`consumer_group_describe`].
pub async fn describe_groups(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let v = ctx.api_version;
    let groups = broker
        .groups
        .read(|groups| {
            req.groups
                .iter()
                .map(|id| match groups.get(id.as_str()) {
                    Some(g) => describe_classic(id, g, v),
                    None => not_described(id, v, format!("Group {} not found.", id.as_str())),
                })
                .collect()
        })
        .await;
    DescribeGroupsResponse::default().with_groups(groups)
}

pub async fn delete_groups(broker: &Arc<Broker>, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let ids: Vec<String> = req.groups_names.iter().map(|g| g.to_string()).collect();
    let codes = broker.groups.delete_groups(broker, &ids).await;
    let results = req
        .groups_names
        .into_iter()
        .zip(codes)
        .map(|(g, e)| delete_groups_response::DeletableGroupResult::default().with_group_id(g).with_error_code(e))
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}

pub async fn offset_delete(broker: &Arc<Broker>, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let topics: Vec<(String, Vec<i32>)> = req
        .topics
        .iter()
        .map(|t| (t.name.to_string(), t.partitions.iter().map(|p| p.partition_index).collect()))
        .collect();
    match broker.groups.delete_offsets(broker, &req.group_id, &topics).await {
        Err(e) => OffsetDeleteResponse::default().with_error_code(e),
        Ok(rows) => {
            let mut by_topic: BTreeMap<String, Vec<OffsetDeleteResponsePartition>> = BTreeMap::new();
            for (t, p, e) in rows {
                by_topic
                    .entry(t)
                    .or_default()
                    .push(OffsetDeleteResponsePartition::default().with_partition_index(p).with_error_code(e));
            }
            let topics = by_topic
                .into_iter()
                .map(|(t, ps)| OffsetDeleteResponseTopic::default().with_name(TopicName(s(t))).with_partitions(ps))
                .collect();
            OffsetDeleteResponse::default().with_topics(topics)
        }
    }
}

fn invalid_heartbeat(message: &str) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(code::INVALID_REQUEST)
        .with_error_message(Some(s(message)))
}

pub async fn consumer_group_heartbeat(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let v = ctx.api_version;
    if req.group_id.is_empty() {
        return invalid_heartbeat("GroupId can't be empty.");
    }
    if req.instance_id.as_ref().is_some_and(|i| i.is_empty()) {
        return invalid_heartbeat("InstanceId can't be empty.");
    }
    if req.rack_id.as_ref().is_some_and(|r| r.is_empty()) {
        return invalid_heartbeat("RackId can't be empty.");
    }
    let mut member_id = req.member_id.to_string();
    if v >= 1 && member_id.is_empty() {
        return invalid_heartbeat("MemberId can't be empty.");
    }
    if req.member_epoch == 0 {
        if req.rebalance_timeout_ms == -1 {
            return invalid_heartbeat("RebalanceTimeoutMs must be provided in first request.");
        }
        if req.topic_partitions.as_ref().is_none_or(|t| !t.is_empty()) {
            return invalid_heartbeat("TopicPartitions must be empty when (re-)joining.");
        }
        if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
            return invalid_heartbeat("SubscribedTopicNames or SubscribedTopicRegex must be set in first request.");
        }
        if member_id.is_empty() {
            member_id = Uuid::new_v4().simple().to_string();
        }
    } else if req.member_epoch < -2 {
        return invalid_heartbeat("MemberEpoch is invalid.");
    } else if member_id.is_empty() {
        return invalid_heartbeat("MemberId can't be empty.");
    }
    if let Some(a) = req.server_assignor.as_deref() {
        if !ASSIGNORS.contains(&a) {
            return ConsumerGroupHeartbeatResponse::default()
                .with_error_code(code::UNSUPPORTED_ASSIGNOR)
                .with_error_message(Some(s(format!(
                    "ServerAssignor {a} is not supported. Supported assignors: {}.",
                    ASSIGNORS.join(", ")
                ))));
        }
    }
    let owned: Option<Assignment> = req.topic_partitions.map(|tps| {
        let mut a = Assignment::new();
        for tp in tps {
            a.entry(tp.topic_id).or_default().extend(tp.partitions);
        }
        a
    });
    let params = HeartbeatParams {
        member_id,
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.map(|i| i.to_string()),
        rack_id: req.rack_id.map(|r| r.to_string()),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed_topic_names: req.subscribed_topic_names.map(|n| n.into_iter().map(|t| t.to_string()).collect()),
        subscribed_topic_regex: if v >= 1 { req.subscribed_topic_regex.map(|r| r.to_string()) } else { None },
        server_assignor: req.server_assignor.map(|a| a.to_string()),
        owned,
        client_id: ctx.client_id.as_deref().unwrap_or_default().to_owned(),
        client_host: client_host(ctx),
    };
    let r = broker.groups.consumer_heartbeat(broker, &req.group_id, params).await;
    if r.error != code::NONE {
        return ConsumerGroupHeartbeatResponse::default().with_error_code(r.error).with_error_message(r.message.map(s));
    }
    let assignment = r.assignment.map(|a| {
        cgh::Assignment::default().with_topic_partitions(
            a.into_iter()
                .map(|(id, ps)| {
                    cgh::TopicPartitions::default().with_topic_id(id).with_partitions(ps.into_iter().collect())
                })
                .collect(),
        )
    });
    ConsumerGroupHeartbeatResponse::default()
        .with_member_id(Some(s(r.member_id)))
        .with_member_epoch(r.member_epoch)
        .with_heartbeat_interval_ms(broker.groups.config().consumer_heartbeat_interval.as_millis() as i32)
        .with_assignment(assignment)
}

fn describe_assignment(broker: &Broker, a: &Assignment) -> cgd::Assignment {
    cgd::Assignment::default().with_topic_partitions(
        a.iter()
            .map(|(id, ps)| {
                let name = broker.topic_by_id(*id).map(|t| t.name).unwrap_or_default();
                cgd::TopicPartitions::default()
                    .with_topic_id(*id)
                    .with_topic_name(TopicName(s(name)))
                    .with_partitions(ps.iter().copied().collect())
            })
            .collect(),
    )
}

pub async fn consumer_group_describe(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let v = ctx.api_version;
    let groups = broker
        .groups
        .read(|groups| {
            req.group_ids
                .iter()
                .map(|id| {
                    let not_found = |m: String| {
                        cgd::DescribedGroup::default()
                            .with_group_id(id.clone())
                            .with_error_code(code::GROUP_ID_NOT_FOUND)
                            .with_error_message(Some(s(m)))
                    };
                    let Some(g) = groups.get(id.as_str()) else {
                        return not_found(format!("Group {} not found.", id.as_str()));
                    };
                    let Kind::Consumer(c) = &g.kind else {
                        return not_found(format!("Group {} is not a consumer group.", id.as_str()));
                    };
                    let members = c
                        .members
                        .values()
                        .map(|m| {
                            let target = c.target.get(&m.member_id).cloned().unwrap_or_default();
                            cgd::Member::default()
                                .with_member_id(s(m.member_id.clone()))
                                .with_instance_id(m.instance_id.clone().map(s))
                                .with_rack_id(m.rack_id.clone().map(s))
                                .with_member_epoch(m.epoch)
                                .with_client_id(s(m.client_id.clone()))
                                .with_client_host(s(m.client_host.clone()))
                                .with_subscribed_topic_names(
                                    m.subscribed_names.iter().map(|n| TopicName(s(n.clone()))).collect(),
                                )
                                .with_subscribed_topic_regex(m.subscribed_regex.clone().map(s))
                                .with_assignment(describe_assignment(broker, &m.assigned))
                                .with_target_assignment(describe_assignment(broker, &target))
                                .with_member_type(if v >= 1 { 1 } else { -1 })
                        })
                        .collect();
                    cgd::DescribedGroup::default()
                        .with_group_id(id.clone())
                        .with_group_state(s(c.state().name()))
                        .with_group_epoch(c.epoch)
                        .with_assignment_epoch(c.assignment_epoch)
                        .with_assignor_name(s(c.assignor()))
                        .with_members(members)
                })
                .collect()
        })
        .await;
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::consumer::ConsumerGroup;

    fn consumer_group() -> Group {
        Group { offsets: BTreeMap::new(), kind: Kind::Consumer(ConsumerGroup::new(3, 0)) }
    }

    #[test]
    fn describe_groups_answers_a_kip848_group_as_kafka_does_dead_and_from_v6_not_found() {
        let v5 = describe_classic("g", &consumer_group(), 5);
        assert_eq!((v5.group_state.as_str(), v5.error_code, v5.members.len()), ("Dead", code::NONE, 0));
        assert_eq!((v5.protocol_type.as_str(), v5.error_message), ("", None));
        let v6 = describe_classic("g", &consumer_group(), 6);
        assert_eq!((v6.group_state.as_str(), v6.error_code), ("Dead", code::GROUP_ID_NOT_FOUND));
        assert_eq!(v6.error_message.as_deref(), Some("Group g is not a classic group."));
    }
}
