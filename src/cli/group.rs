//! `weir group list | describe | delete`: consumer groups seen through the Kafka protocol,
//! the way `kafka-consumer-groups.sh` shows them, against weir or Apache Kafka.
//! `weir group reset-offsets` lives in [`super::reset_offsets`].
//!
//! Group requests go to the group's coordinator (FindCoordinator), offsets to each
//! partition's leader (see [`super::cluster`]). This module owns the group side: the
//! request versions, decoding members' assignments (Kafka's consumer protocol), the lag
//! arithmetic, and the output. It never changes a group except through `delete`.
//!
//! `describe` asks as Kafka's admin client does (`DescribeConsumerGroupsHandler`):
//! ConsumerGroupDescribe first, which describes KIP-848 groups (`group.protocol=consumer`),
//! then DescribeGroups for classic groups — a KIP-848 group is "Dead" with no members there.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use kafka_protocol::error::{ParseResponseErrorCode, ResponseError};
use kafka_protocol::messages::consumer_group_describe_response as cgd;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, DeleteGroupsRequest, DescribeGroupsRequest, GroupId, ListGroupsRequest,
    OffsetFetchRequest,
};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use super::cluster::{Cluster, Coordinator, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use super::{cell, describe_error, run_async, write_json, ErrorJson, Format, Refused, Table, EXIT_REFUSED};
use crate::client;
use crate::log::TopicPartition;

/// Versions both Kafka 3.x/4.x and weir serve, each the lowest with the fields used here:
/// ListGroups v4 has the states filter; OffsetFetch v7 and OffsetCommit v8 are flexible
/// and carry leader epochs; DescribeGroups v5 and DeleteGroups v2 are their flexible forms.
pub(super) const LIST_GROUPS_VERSION: i16 = 4;
pub(super) const DESCRIBE_GROUPS_VERSION: i16 = 5;
pub(super) const OFFSET_FETCH_VERSION: i16 = 7;
pub(super) const OFFSET_COMMIT_VERSION: i16 = 8;
pub(super) const DELETE_GROUPS_VERSION: i16 = 2;

/// ConsumerGroupDescribe v1 (Kafka 4.0+, weir) and v0 (Kafka 3.7–3.9): v1 only adds the
/// members' type, which is not shown, so v0 serves as well where v1 is missing.
const CONSUMER_GROUP_DESCRIBE_VERSION: i16 = 1;
const CONSUMER_GROUP_DESCRIBE_MIN_VERSION: i16 = 0;

/// The protocol type of groups formed by Kafka consumers, whose assignments this tool reads.
const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// Group states Kafka reports (classic and KIP-848 groups), for case-insensitive `--state`.
const GROUP_STATES: [&str; 8] =
    ["PreparingRebalance", "CompletingRebalance", "Stable", "Empty", "Dead", "Assigning", "Reconciling", "NotReady"];

/// `weir group list`: every group of every broker, optionally only those in `states`.
///
/// # Errors
/// Connection errors; a ListGroups error code is [`Refused`] (exit 1).
pub fn list(bootstrap: &str, states: &[String], format: Format) -> anyhow::Result<i32> {
    run_async(list_groups(bootstrap, states, format))
}

#[derive(Serialize)]
struct ListedGroup {
    group: String,
    state: String,
    protocol_type: String,
}

async fn list_groups(bootstrap: &str, states: &[String], format: Format) -> anyhow::Result<i32> {
    let states = states.iter().map(|s| StrBytes::from_string(canonical_state(s))).collect();
    let request = ListGroupsRequest::default().with_states_filter(states);
    let mut cluster = Cluster::connect(bootstrap).await?;
    let mut groups = BTreeMap::new();
    // Each broker lists the groups it coordinates.
    for addr in cluster.broker_addrs() {
        let response = cluster.client(&addr).await?.request(LIST_GROUPS_VERSION, &request).await?;
        if response.error_code != 0 {
            return Err(Refused::Code { what: format!("ListGroups on {addr}"), code: response.error_code }.into());
        }
        for g in response.groups {
            let group = g.group_id.to_string();
            let listed = ListedGroup {
                group: group.clone(),
                state: g.group_state.to_string(),
                protocol_type: g.protocol_type.to_string(),
            };
            groups.insert(group, listed);
        }
    }
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            let groups: Vec<_> = groups.into_values().collect();
            write_json(&mut out, &serde_json::json!({ "groups": groups }))?;
        }
        Format::Text => {
            let mut table = Table::new(&["GROUP", "STATE", "PROTOCOL-TYPE"]);
            for g in groups.into_values() {
                let protocol_type = if g.protocol_type.is_empty() { "-".to_owned() } else { g.protocol_type };
                table.row(vec![g.group, g.state, protocol_type]);
            }
            table.write(&mut out)?;
        }
    }
    Ok(0)
}

/// Kafka's spelling of a group state typed in any case (`stable` → `Stable`); unknown
/// states pass through for the broker to judge.
fn canonical_state(state: &str) -> String {
    GROUP_STATES.iter().find(|s| s.eq_ignore_ascii_case(state)).map_or_else(|| state.to_owned(), |s| (*s).to_owned())
}

/// `weir group describe <group>`: state, members, and per partition the committed offset,
/// log end offset, lag and owning member, for KIP-848 and classic groups alike.
///
/// # Errors
/// Connection errors; error codes and a group that does not exist are [`Refused`] (exit 1).
pub fn describe(bootstrap: &str, group: &str, format: Format) -> anyhow::Result<i32> {
    run_async(describe_group_command(bootstrap, group, format))
}

#[derive(Serialize)]
struct Description {
    group: String,
    coordinator: CoordinatorJson,
    state: String,
    group_type: GroupType,
    protocol_type: String,
    /// The assignor: the classic protocol's (`range`, ...) or the KIP-848 group's
    /// server-side one (`uniform`, ...).
    protocol: String,
    members: Vec<Member>,
    partitions: Vec<PartitionRow>,
}

/// Which group protocol a group follows, by Kafka's names for the two (ListGroups v5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum GroupType {
    /// KIP-848 (`group.protocol=consumer`): the coordinator assigns, ConsumerGroupDescribe
    /// describes.
    Consumer,
    /// JoinGroup/SyncGroup: a member assigns, DescribeGroups describes.
    Classic,
}

/// A group as either describe API tells it, in the terms `describe` prints.
#[derive(Debug)]
struct GroupSummary {
    group_type: GroupType,
    state: String,
    protocol_type: String,
    protocol: String,
    members: Vec<Member>,
}

#[derive(Serialize)]
struct CoordinatorJson {
    node_id: i32,
    addr: String,
}

#[derive(Debug, Serialize)]
struct Member {
    member_id: String,
    group_instance_id: Option<String>,
    client_id: String,
    host: String,
    /// Topic → partitions, for consumer-protocol groups.
    assignment: BTreeMap<String, Vec<i32>>,
}

/// One line of `describe`: a partition the group has committed or is assigned.
#[derive(Debug, PartialEq, Eq, Serialize)]
struct PartitionRow {
    topic: String,
    partition: i32,
    current_offset: Option<i64>,
    log_start_offset: Option<i64>,
    log_end_offset: Option<i64>,
    lag: Option<i64>,
    member_id: Option<String>,
    client_id: Option<String>,
    host: Option<String>,
}

async fn describe_group_command(bootstrap: &str, group: &str, format: Format) -> anyhow::Result<i32> {
    let mut cluster = Cluster::connect(bootstrap).await?;
    let coordinator = cluster.coordinator(group).await?;
    let summary = summarize(&mut cluster, &coordinator, group).await?;
    let committed = committed_offsets(&mut cluster, &coordinator, group).await?;
    if summary.state == "Dead" && committed.is_empty() {
        return Err(Refused::State(format!("group {group} does not exist (see `weir group list`)")).into());
    }
    let GroupSummary { group_type, state, protocol_type, protocol, members } = summary;
    let mut partitions: BTreeSet<TopicPartition> = committed.keys().cloned().collect();
    for m in &members {
        for (topic, ps) in &m.assignment {
            partitions.extend(ps.iter().map(|&p| TopicPartition::new(topic.as_str(), p)));
        }
    }
    let topics: Vec<String> =
        partitions.iter().map(|tp| tp.topic.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let topology = if topics.is_empty() { Default::default() } else { cluster.metadata(Some(&topics)).await? };
    let starts = cluster.list_offsets(&topology, &partitions, EARLIEST_TIMESTAMP).await?;
    let ends = cluster.list_offsets(&topology, &partitions, LATEST_TIMESTAMP).await?;
    let found = |m: &BTreeMap<TopicPartition, Result<Option<i64>, i16>>, tp: &TopicPartition| {
        m.get(tp).and_then(|r| r.as_ref().ok().copied().flatten())
    };
    let rows = partitions
        .iter()
        .map(|tp| {
            let owner =
                members.iter().find(|m| m.assignment.get(&tp.topic).is_some_and(|ps| ps.contains(&tp.partition)));
            partition_row(tp, committed.get(tp).copied(), found(&starts, tp), found(&ends, tp), owner)
        })
        .collect();
    let description = Description {
        group: group.to_owned(),
        coordinator: CoordinatorJson { node_id: coordinator.node_id, addr: coordinator.advertised.clone() },
        state,
        group_type,
        protocol_type,
        protocol,
        members,
        partitions: rows,
    };
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => write_json(&mut out, &description)?,
        Format::Text => print_description(&mut out, &description)?,
    }
    Ok(0)
}

fn partition_row(
    tp: &TopicPartition,
    committed: Option<i64>,
    log_start_offset: Option<i64>,
    log_end_offset: Option<i64>,
    owner: Option<&Member>,
) -> PartitionRow {
    PartitionRow {
        topic: tp.topic.clone(),
        partition: tp.partition,
        current_offset: committed,
        log_start_offset,
        log_end_offset,
        lag: lag(committed, log_start_offset, log_end_offset),
        member_id: owner.map(|m| m.member_id.clone()),
        client_id: owner.map(|m| m.client_id.clone()),
        host: owner.map(|m| m.host.clone()),
    }
}

/// How far a group is behind: log end minus the committed offset, where a committed offset
/// below the log start (retention deleted those records) counts from the log start. `None`
/// without a commit or without a log end offset.
fn lag(committed: Option<i64>, log_start_offset: Option<i64>, log_end_offset: Option<i64>) -> Option<i64> {
    let committed = committed?;
    let position = committed.max(log_start_offset.unwrap_or(committed));
    Some((log_end_offset? - position).max(0))
}

fn print_description(out: &mut impl Write, d: &Description) -> std::io::Result<()> {
    let protocol = match (d.protocol_type.as_str(), d.protocol.as_str()) {
        ("", _) => "-".to_owned(),
        (t, "") => t.to_owned(),
        (t, p) => format!("{t}/{p}"),
    };
    let n = d.members.len();
    writeln!(
        out,
        "Group {} on coordinator {} ({}): state {}, protocol {protocol}, {n} member{}\n",
        d.group,
        d.coordinator.node_id,
        d.coordinator.addr,
        d.state,
        if n == 1 { "" } else { "s" }
    )?;
    let mut table = Table::new(&[
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "MEMBER-ID",
        "CLIENT-ID",
        "HOST",
    ]);
    for r in &d.partitions {
        table.row(vec![
            r.topic.clone(),
            r.partition.to_string(),
            cell(r.current_offset),
            cell(r.log_end_offset),
            cell(r.lag),
            cell(r.member_id.as_deref()),
            cell(r.client_id.as_deref()),
            cell(r.host.as_deref()),
        ]);
    }
    // Members without partitions, as kafka-consumer-groups.sh shows them.
    for m in d.members.iter().filter(|m| m.assignment.values().all(Vec::is_empty)) {
        let dash = || "-".to_owned();
        table.row(vec![
            dash(),
            dash(),
            dash(),
            dash(),
            dash(),
            m.member_id.clone(),
            m.client_id.clone(),
            m.host.clone(),
        ]);
    }
    table.write(out)
}

/// The group as `describe` shows it, from ConsumerGroupDescribe (a KIP-848 group) or else
/// DescribeGroups (a classic or unknown group).
async fn summarize(cluster: &mut Cluster, coordinator: &Coordinator, group: &str) -> anyhow::Result<GroupSummary> {
    Ok(match describe_consumer_group(cluster, coordinator, group).await? {
        Some(described) => consumer_group_summary(&described),
        None => classic_group_summary(&describe_group(cluster, coordinator, group).await?),
    })
}

/// A group's state and member count, whichever protocol it uses; an unknown group is
/// ("Dead", 0), as Kafka reports it.
///
/// # Errors
/// Request errors, and refusals other than GROUP_ID_NOT_FOUND.
pub(super) async fn state_and_members(
    cluster: &mut Cluster,
    coordinator: &Coordinator,
    group: &str,
) -> anyhow::Result<(String, usize)> {
    match summarize(cluster, coordinator, group).await {
        Ok(summary) => Ok((summary.state, summary.members.len())),
        Err(e) if e.downcast_ref().and_then(Refused::code) == Some(ResponseError::GroupIdNotFound.code()) => {
            Ok(("Dead".to_owned(), 0))
        }
        Err(e) => Err(e),
    }
}

/// ConsumerGroupDescribe for one group at its coordinator: `None` when the group is to be
/// asked with DescribeGroups instead, as Kafka's admin client does — the coordinator
/// answers GROUP_ID_NOT_FOUND (an unknown group, or a classic one) or UNSUPPORTED_VERSION,
/// or it serves neither v1 nor v0 of the API (Kafka before 3.7, or without KIP-848).
///
/// # Errors
/// Request errors; any other error code of the group is [`Refused`], with the broker's
/// message.
async fn describe_consumer_group(
    cluster: &mut Cluster,
    coordinator: &Coordinator,
    group: &str,
) -> anyhow::Result<Option<cgd::DescribedGroup>> {
    let request = ConsumerGroupDescribeRequest::default().with_group_ids(vec![group_id(group)]);
    let client = cluster.client(&coordinator.addr).await?;
    let mut response = client.request(CONSUMER_GROUP_DESCRIBE_VERSION, &request).await;
    if let Err(client::Error::UnsupportedVersion { min, max, .. }) = response {
        if (min..=max).contains(&CONSUMER_GROUP_DESCRIBE_MIN_VERSION) {
            response = client.request(CONSUMER_GROUP_DESCRIBE_MIN_VERSION, &request).await;
        }
    }
    let response = match response {
        Ok(response) => response,
        // Refused by the client before sending: the connection stays usable.
        Err(client::Error::UnsupportedApi { .. } | client::Error::UnsupportedVersion { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let described = response.groups.into_iter().find(|g| g.group_id.as_str() == group).ok_or_else(|| {
        anyhow::anyhow!("ConsumerGroupDescribe from {} did not describe group {group}", coordinator.addr)
    })?;
    match described.error_code {
        0 => Ok(Some(described)),
        code if ask_describe_groups_instead(code) => Ok(None),
        code => {
            let message = described.error_message.as_deref();
            Err(Refused::broker(format!("ConsumerGroupDescribe {group}"), code, message).into())
        }
    }
}

/// Whether a ConsumerGroupDescribe error code of a group sends `describe` to DescribeGroups:
/// the two codes on which Kafka's `DescribeConsumerGroupsHandler` does.
fn ask_describe_groups_instead(code: i16) -> bool {
    matches!(code.err(), Some(ResponseError::GroupIdNotFound | ResponseError::UnsupportedVersion))
}

/// A KIP-848 group as ConsumerGroupDescribe describes it: Kafka's state names, the
/// server-side assignor as the protocol, and each member's current assignment (topic
/// names come in the response). An assigned topic without a name (its id is unknown to the
/// coordinator) is reported on stderr and left out.
fn consumer_group_summary(described: &cgd::DescribedGroup) -> GroupSummary {
    let members = described
        .members
        .iter()
        .map(|m| {
            let mut assignment: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            for topic in &m.assignment.topic_partitions {
                if topic.topic_name.is_empty() {
                    eprintln!(
                        "warning: member {} is assigned partitions {:?} of topic id {} without a name",
                        m.member_id.as_str(),
                        topic.partitions,
                        topic.topic_id
                    );
                    continue;
                }
                let entry = assignment.entry(topic.topic_name.to_string()).or_default();
                entry.extend(&topic.partitions);
                entry.sort_unstable();
                entry.dedup();
            }
            Member {
                member_id: m.member_id.to_string(),
                group_instance_id: m.instance_id.as_ref().map(|s| s.to_string()),
                client_id: m.client_id.to_string(),
                host: m.client_host.to_string(),
                assignment,
            }
        })
        .collect();
    GroupSummary {
        group_type: GroupType::Consumer,
        state: canonical_state(described.group_state.as_str()),
        protocol_type: CONSUMER_PROTOCOL_TYPE.to_owned(),
        protocol: described.assignor_name.to_string(),
        members,
    }
}

/// A classic group as DescribeGroups describes it.
fn classic_group_summary(described: &DescribedGroup) -> GroupSummary {
    GroupSummary {
        group_type: GroupType::Classic,
        state: described.group_state.to_string(),
        protocol_type: described.protocol_type.to_string(),
        protocol: described.protocol_data.to_string(),
        members: members(described),
    }
}

/// DescribeGroups for one group at its coordinator. A KIP-848 group is "Dead" without
/// members here (as on Kafka); [`describe_consumer_group`] describes those.
///
/// # Errors
/// Request errors; the group's error code is [`Refused`] (with the broker's message from
/// DescribeGroups v6 on; v5, sent here, carries none).
pub(super) async fn describe_group(
    cluster: &mut Cluster,
    coordinator: &Coordinator,
    group: &str,
) -> anyhow::Result<DescribedGroup> {
    let request = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
    let response = cluster.client(&coordinator.addr).await?.request(DESCRIBE_GROUPS_VERSION, &request).await?;
    let described =
        response.groups.into_iter().find(|g| g.group_id.as_str() == group).ok_or_else(|| {
            anyhow::anyhow!("DescribeGroups from {} did not describe group {group}", coordinator.addr)
        })?;
    if described.error_code != 0 {
        let message = described.error_message.as_deref();
        return Err(Refused::broker(format!("DescribeGroups {group}"), described.error_code, message).into());
    }
    Ok(described)
}

/// The group's committed offsets (OffsetFetch for all topics). Partitions without a commit
/// are left out; partitions the coordinator could not read are reported on stderr.
///
/// # Errors
/// Request errors; a group-level error code is [`Refused`].
pub(super) async fn committed_offsets(
    cluster: &mut Cluster,
    coordinator: &Coordinator,
    group: &str,
) -> anyhow::Result<BTreeMap<TopicPartition, i64>> {
    let request = OffsetFetchRequest::default().with_group_id(group_id(group)).with_topics(None); // None: all
    let response = cluster.client(&coordinator.addr).await?.request(OFFSET_FETCH_VERSION, &request).await?;
    if response.error_code != 0 {
        return Err(Refused::Code { what: format!("OffsetFetch {group}"), code: response.error_code }.into());
    }
    let mut offsets = BTreeMap::new();
    for topic in &response.topics {
        for p in &topic.partitions {
            let tp = TopicPartition::new(topic.name.as_str(), p.partition_index);
            if p.error_code != 0 {
                eprintln!("warning: committed offset of {tp}: {}", describe_error(p.error_code));
            } else if p.committed_offset >= 0 {
                offsets.insert(tp, p.committed_offset);
            }
        }
    }
    Ok(offsets)
}

/// The classic group's members with their assignments decoded when the group uses the
/// consumer protocol. An assignment that does not decode is reported on stderr and left empty.
fn members(described: &DescribedGroup) -> Vec<Member> {
    let consumer = described.protocol_type.as_str() == CONSUMER_PROTOCOL_TYPE;
    described
        .members
        .iter()
        .map(|m| {
            let mut assignment = BTreeMap::new();
            if consumer {
                match decode_assignment(&m.member_assignment) {
                    Ok(topics) => {
                        for (topic, mut partitions) in topics {
                            let entry: &mut Vec<i32> = assignment.entry(topic).or_default();
                            entry.append(&mut partitions);
                            entry.sort_unstable();
                        }
                    }
                    Err(e) => eprintln!("warning: assignment of member {}: {e:#}", m.member_id.as_str()),
                }
            }
            Member {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
                client_id: m.client_id.to_string(),
                host: m.client_host.to_string(),
                assignment,
            }
        })
        .collect()
}

/// Decodes the assigned partitions from a consumer's `member_assignment` bytes, Kafka's
/// `ConsumerProtocolAssignment`: `version: int16`, then `[topic: string, [partition:
/// int32]]`, then `user_data: bytes`. Versions 0–3 share this prefix; only the prefix is
/// read, so later fields and trailing bytes are ignored. Empty bytes (a member not yet
/// assigned) are an empty assignment.
///
/// # Errors
/// Truncated input, a negative version, or a null or non-UTF-8 topic name.
fn decode_assignment(bytes: &[u8]) -> anyhow::Result<Vec<(String, Vec<i32>)>> {
    Ok(crate::group::records::assignment_partitions(bytes)?)
}

/// `weir group delete <group>...`: deletes empty groups and their committed offsets.
/// Exit code 1 when any group was not deleted.
///
/// # Errors
/// Connection errors.
pub fn delete(bootstrap: &str, groups: &[String], format: Format) -> anyhow::Result<i32> {
    run_async(delete_groups(bootstrap, groups, format))
}

#[derive(Serialize)]
struct Deleted {
    group: String,
    deleted: bool,
    error: Option<ErrorJson>,
}

async fn delete_groups(bootstrap: &str, groups: &[String], format: Format) -> anyhow::Result<i32> {
    let mut cluster = Cluster::connect(bootstrap).await?;
    // Groups may live on different coordinators: one DeleteGroups per coordinator.
    let mut by_coordinator: BTreeMap<String, Vec<&String>> = BTreeMap::new();
    let mut codes: BTreeMap<&String, i16> = BTreeMap::new();
    for group in groups {
        match cluster.coordinator(group).await {
            Ok(c) => by_coordinator.entry(c.addr).or_default().push(group),
            Err(e) => match e.downcast_ref::<Refused>().and_then(Refused::code) {
                Some(code) => {
                    codes.insert(group, code);
                }
                None => return Err(e),
            },
        }
    }
    for (addr, names) in &by_coordinator {
        let request = DeleteGroupsRequest::default().with_groups_names(names.iter().map(|g| group_id(g)).collect());
        let response = cluster.client(addr).await?.request(DELETE_GROUPS_VERSION, &request).await?;
        for result in response.results {
            if let Some(group) = names.iter().find(|g| g.as_str() == result.group_id.as_str()) {
                codes.insert(group, result.error_code);
            }
        }
    }
    let results: Vec<Deleted> = groups
        .iter()
        .map(|g| {
            // A group the coordinator did not mention was not deleted.
            let code = codes.get(g).copied().unwrap_or(kafka_protocol::error::ResponseError::UnknownServerError.code());
            Deleted { group: g.clone(), deleted: code == 0, error: ErrorJson::new(code) }
        })
        .collect();
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => write_json(&mut out, &serde_json::json!({ "groups": results }))?,
        Format::Text => {
            let mut table = Table::new(&["GROUP", "RESULT"]);
            for r in &results {
                let code = r.error.as_ref().map_or(0, |e| e.code);
                let result = if r.deleted { "deleted".to_owned() } else { describe_error(code) };
                table.row(vec![r.group.clone(), result]);
            }
            table.write(&mut out)?;
        }
    }
    Ok(if results.iter().all(|r| r.deleted) { 0 } else { EXIT_REFUSED })
}

pub(super) fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes a `ConsumerProtocolAssignment` the way Kafka's consumer does.
    fn encode_assignment(version: i16, topics: &[(&str, &[i32])], user_data: Option<&[u8]>) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        b.extend((topics.len() as i32).to_be_bytes());
        for (topic, partitions) in topics {
            b.extend((topic.len() as i16).to_be_bytes());
            b.extend(topic.as_bytes());
            b.extend((partitions.len() as i32).to_be_bytes());
            for p in *partitions {
                b.extend(p.to_be_bytes());
            }
        }
        match user_data {
            Some(d) => {
                b.extend((d.len() as i32).to_be_bytes());
                b.extend(d);
            }
            None => b.extend((-1i32).to_be_bytes()),
        }
        b
    }

    #[test]
    fn assignments_of_every_consumer_protocol_version_decode_to_their_partitions() {
        for version in 0..=3 {
            let bytes = encode_assignment(version, &[("orders", &[0, 2]), ("audit", &[1])], Some(b"sticky"));
            let got = decode_assignment(&bytes).expect("decode");
            assert_eq!(got, [("orders".to_owned(), vec![0, 2]), ("audit".to_owned(), vec![1])], "v{version}");
        }
    }

    #[test]
    fn an_assignment_with_trailing_fields_or_without_user_data_still_decodes() {
        let mut bytes = encode_assignment(3, &[("t", &[5])], None);
        bytes.extend([0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(decode_assignment(&bytes).expect("decode"), [("t".to_owned(), vec![5])]);
        // Only the prefix is read: user data may even be missing entirely.
        let bytes = &encode_assignment(0, &[("t", &[5])], None)[..2 + 4 + 2 + 1 + 4 + 4];
        assert_eq!(decode_assignment(bytes).expect("decode"), [("t".to_owned(), vec![5])]);
    }

    #[test]
    fn an_empty_assignment_is_no_partitions() {
        assert!(decode_assignment(&[]).expect("decode").is_empty());
        assert!(decode_assignment(&encode_assignment(1, &[], None)).expect("decode").is_empty());
    }

    #[test]
    fn truncated_or_hostile_assignments_are_errors_not_allocations() {
        let bytes = encode_assignment(0, &[("orders", &[0, 1, 2])], None);
        for cut in [1, 3, 7, 10, 16] {
            assert!(decode_assignment(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge = 0i16.to_be_bytes().to_vec();
        huge.extend(i32::MAX.to_be_bytes());
        assert!(decode_assignment(&huge).is_err(), "2^31 topics in 0 bytes");
        let mut null_name = 0i16.to_be_bytes().to_vec();
        null_name.extend(1i32.to_be_bytes());
        null_name.extend((-1i16).to_be_bytes());
        null_name.extend(0i32.to_be_bytes());
        assert!(decode_assignment(&null_name).is_err());
    }

    #[test]
    fn lag_counts_from_the_commit_or_the_log_start_and_never_goes_negative() {
        assert_eq!(lag(Some(40), Some(0), Some(100)), Some(60));
        assert_eq!(lag(Some(100), Some(0), Some(100)), Some(0));
        // Retention deleted records below the commit's position: count from the log start.
        assert_eq!(lag(Some(10), Some(50), Some(100)), Some(50));
        // A commit beyond the log end (the topic was recreated) is no lag, not negative lag.
        assert_eq!(lag(Some(150), Some(0), Some(100)), Some(0));
        assert_eq!(lag(Some(10), None, Some(100)), Some(90));
        assert_eq!(lag(None, Some(0), Some(100)), None);
        assert_eq!(lag(Some(10), Some(0), None), None);
    }

    #[test]
    fn assigned_partitions_without_a_commit_show_dashes_for_offsets_and_lag() {
        let member = Member {
            member_id: "m-1".into(),
            group_instance_id: None,
            client_id: "c".into(),
            host: "/127.0.0.1".into(),
            assignment: BTreeMap::from([("t".to_owned(), vec![0])]),
        };
        let row = partition_row(&TopicPartition::new("t", 0), None, Some(0), Some(7), Some(&member));
        assert_eq!((row.current_offset, row.log_end_offset, row.lag), (None, Some(7), None));
        assert_eq!(row.member_id.as_deref(), Some("m-1"));
        let d = Description {
            group: "g".into(),
            coordinator: CoordinatorJson { node_id: 0, addr: "h:9092".into() },
            state: "Stable".into(),
            group_type: GroupType::Classic,
            protocol_type: "consumer".into(),
            protocol: "range".into(),
            members: vec![member],
            partitions: vec![row],
        };
        let mut out = Vec::new();
        print_description(&mut out, &d).expect("print");
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Group g on coordinator 0 (h:9092): state Stable, protocol consumer/range, 1 member");
        assert_eq!(lines[2], "TOPIC  PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  MEMBER-ID  CLIENT-ID  HOST");
        assert_eq!(lines[3], "t      0          -               7               -    m-1        c          /127.0.0.1");
    }

    fn topic_partitions(name: &str, partitions: &[i32]) -> cgd::TopicPartitions {
        cgd::TopicPartitions::default()
            .with_topic_name(kafka_protocol::messages::TopicName(StrBytes::from_string(name.to_owned())))
            .with_partitions(partitions.to_vec())
    }

    #[test]
    fn a_kip848_group_shows_kafkas_state_its_assignor_and_each_members_current_assignment() {
        let s = |v: &str| StrBytes::from_string(v.to_owned());
        let member = cgd::Member::default()
            .with_member_id(s("m-1"))
            .with_instance_id(Some(s("i-1")))
            .with_client_id(s("c-1"))
            .with_client_host(s("/10.0.0.1"))
            .with_assignment(cgd::Assignment::default().with_topic_partitions(vec![
                topic_partitions("orders", &[3, 1]),
                topic_partitions("audit", &[0]),
                topic_partitions("orders", &[1, 2]),
                // A topic the coordinator could not name is left out.
                topic_partitions("", &[7]),
            ]))
            // The target is not what the member owns yet.
            .with_target_assignment(
                cgd::Assignment::default().with_topic_partitions(vec![topic_partitions("orders", &[9])]),
            );
        let described = cgd::DescribedGroup::default()
            .with_group_state(s("reconciling"))
            .with_assignor_name(s("uniform"))
            .with_members(vec![member, cgd::Member::default().with_member_id(s("m-2"))]);
        let summary = consumer_group_summary(&described);
        assert_eq!(summary.group_type, GroupType::Consumer);
        assert_eq!(
            (summary.state.as_str(), summary.protocol_type.as_str(), summary.protocol.as_str()),
            ("Reconciling", "consumer", "uniform")
        );
        let m = &summary.members[0];
        assert_eq!(
            (m.member_id.as_str(), m.group_instance_id.as_deref(), m.client_id.as_str(), m.host.as_str()),
            ("m-1", Some("i-1"), "c-1", "/10.0.0.1")
        );
        let orders_and_audit = [("audit".to_owned(), vec![0]), ("orders".to_owned(), vec![1, 2, 3])];
        assert_eq!(m.assignment, BTreeMap::from(orders_and_audit));
        assert!(summary.members[1].assignment.is_empty());
    }

    #[test]
    fn only_group_id_not_found_and_unsupported_version_send_describe_to_describe_groups() {
        assert!(ask_describe_groups_instead(ResponseError::GroupIdNotFound.code()));
        assert!(ask_describe_groups_instead(ResponseError::UnsupportedVersion.code()));
        for code in [0, 15, 16, 30, -1] {
            assert!(!ask_describe_groups_instead(code), "{code}");
        }
    }

    /// A fake coordinator that lists Metadata v9 and ConsumerGroupDescribe `versions`
    /// (`None`: not at all) in ApiVersions, and answers every ConsumerGroupDescribe with
    /// `code` (and a message), sending the version it was asked at to the returned channel.
    async fn fake_coordinator(
        versions: Option<(i16, i16)>,
        code: i16,
    ) -> (String, tokio::sync::mpsc::UnboundedReceiver<i16>) {
        use bytes::{BufMut, Bytes, BytesMut};
        use kafka_protocol::messages::api_versions_response::ApiVersion;
        use kafka_protocol::messages::{
            ApiKey, ApiVersionsResponse, ConsumerGroupDescribeResponse, MetadataResponse, ResponseHeader,
        };
        use kafka_protocol::protocol::Encodable;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let (asked, versions_asked) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            while let Ok(size) = stream.read_i32().await {
                let mut body = vec![0; size as usize];
                stream.read_exact(&mut body).await.expect("request");
                let mut body = Bytes::from(body);
                let header = kafka_protocol::protocol::decode_request_header_from_buffer(&mut body).expect("header");
                let (api, version) =
                    (ApiKey::try_from(header.request_api_key).expect("key"), header.request_api_version);
                let mut out = BytesMut::new();
                out.put_i32(0); // size, patched below
                let header = ResponseHeader::default().with_correlation_id(header.correlation_id);
                header.encode(&mut out, api.response_header_version(version)).expect("header");
                match api {
                    ApiKey::ApiVersions => {
                        let mut keys = vec![(ApiKey::Metadata, 9, 9)];
                        keys.extend(versions.map(|(min, max)| (ApiKey::ConsumerGroupDescribe, min, max)));
                        let keys = keys.into_iter().map(|(k, min, max)| {
                            ApiVersion::default().with_api_key(k as i16).with_min_version(min).with_max_version(max)
                        });
                        ApiVersionsResponse::default().with_api_keys(keys.collect()).encode(&mut out, version)
                    }
                    ApiKey::Metadata => MetadataResponse::default().encode(&mut out, version),
                    ApiKey::ConsumerGroupDescribe => {
                        let _ = asked.send(version);
                        let group = cgd::DescribedGroup::default()
                            .with_group_id(group_id("g"))
                            .with_error_code(code)
                            .with_error_message((code != 0).then(|| StrBytes::from_static_str("Told so.")));
                        ConsumerGroupDescribeResponse::default().with_groups(vec![group]).encode(&mut out, version)
                    }
                    other => panic!("unexpected {other:?}"),
                }
                .expect("response");
                let size = (out.len() - 4) as i32;
                out[..4].copy_from_slice(&size.to_be_bytes());
                stream.write_all(&out).await.expect("write");
            }
        });
        (addr, versions_asked)
    }

    async fn describe_at(addr: &str) -> anyhow::Result<Option<cgd::DescribedGroup>> {
        let mut cluster = Cluster::connect(addr).await.expect("connect");
        let coordinator = Coordinator { node_id: 0, advertised: addr.to_owned(), addr: addr.to_owned() };
        describe_consumer_group(&mut cluster, &coordinator, "g").await
    }

    #[tokio::test]
    async fn consumer_group_describe_is_sent_at_v1_or_v0_and_falls_back_where_kafka_does() {
        for (versions, sent) in [((0, 1), 1), ((0, 0), 0)] {
            let (addr, mut asked) = fake_coordinator(Some(versions), 0).await;
            assert!(describe_at(&addr).await.expect("described").is_some(), "{versions:?}");
            assert_eq!(asked.recv().await, Some(sent), "{versions:?}");
        }
        // A broker without the API (before Kafka 3.7), or only a later version of it.
        for versions in [None, Some((2, 3))] {
            let (addr, mut asked) = fake_coordinator(versions, 0).await;
            assert!(describe_at(&addr).await.expect("fall back").is_none(), "{versions:?}");
            assert_eq!(asked.try_recv().ok(), None, "refused before sending");
        }
        for code in [ResponseError::GroupIdNotFound.code(), ResponseError::UnsupportedVersion.code()] {
            let (addr, _) = fake_coordinator(Some((0, 1)), code).await;
            assert!(describe_at(&addr).await.expect("fall back").is_none(), "{code}");
        }
        let (addr, _) = fake_coordinator(Some((0, 1)), ResponseError::NotCoordinator.code()).await;
        let err = describe_at(&addr).await.expect_err("refused");
        let refused = err.downcast_ref::<Refused>().expect("a refusal");
        assert_eq!(refused.code(), Some(ResponseError::NotCoordinator.code()));
        assert!(
            refused.to_string().starts_with("ConsumerGroupDescribe g: NOT_COORDINATOR (16): Told so;"),
            "{refused}"
        );
    }

    #[test]
    fn states_are_matched_case_insensitively_and_unknown_ones_pass_through() {
        assert_eq!(canonical_state("stable"), "Stable");
        assert_eq!(canonical_state("PREPARINGREBALANCE"), "PreparingRebalance");
        assert_eq!(canonical_state("Sleeping"), "Sleeping");
    }
}
