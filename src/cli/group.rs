//! `weir group list | describe | delete`: consumer groups seen through the Kafka protocol,
//! the way `kafka-consumer-groups.sh` shows them, against weir or Apache Kafka.
//! `weir group reset-offsets` lives in [`super::reset_offsets`].
//!
//! Group requests go to the group's coordinator (FindCoordinator), offsets to each
//! partition's leader (see [`super::cluster`]). This module owns the group side: the
//! request versions, decoding members' assignments (Kafka's consumer protocol), the lag
//! arithmetic, and the output. It never changes a group except through `delete`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, GroupId, ListGroupsRequest, OffsetFetchRequest,
};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use super::cluster::{Cluster, Coordinator, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use super::{cell, describe_error, error_name, hint, run_async, Format, Refused, Table, EXIT_REFUSED};
use crate::log::TopicPartition;

/// Versions both Kafka 3.x/4.x and weir serve, each the lowest with the fields used here:
/// ListGroups v4 has the states filter; OffsetFetch v7 and OffsetCommit v8 are flexible
/// and carry leader epochs; DescribeGroups v5 and DeleteGroups v2 are their flexible forms.
pub(super) const LIST_GROUPS_VERSION: i16 = 4;
pub(super) const DESCRIBE_GROUPS_VERSION: i16 = 5;
pub(super) const OFFSET_FETCH_VERSION: i16 = 7;
pub(super) const OFFSET_COMMIT_VERSION: i16 = 8;
pub(super) const DELETE_GROUPS_VERSION: i16 = 2;

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
            serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "groups": groups }))?;
            writeln!(out)?;
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
/// log end offset, lag and owning member.
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
    protocol_type: String,
    protocol: String,
    members: Vec<Member>,
    partitions: Vec<PartitionRow>,
}

#[derive(Serialize)]
struct CoordinatorJson {
    node_id: i32,
    addr: String,
}

#[derive(Serialize)]
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
    let described = describe_group(&mut cluster, &coordinator, group).await?;
    let committed = committed_offsets(&mut cluster, &coordinator, group).await?;
    if described.group_state.as_str() == "Dead" && committed.is_empty() {
        return Err(Refused::State(format!("group {group} does not exist (see `weir group list`)")).into());
    }
    let members = members(&described);
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
        state: described.group_state.to_string(),
        protocol_type: described.protocol_type.to_string(),
        protocol: described.protocol_data.to_string(),
        members,
        partitions: rows,
    };
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &description)?;
            writeln!(out)?;
        }
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

/// DescribeGroups for one group at its coordinator.
///
/// # Errors
/// Request errors; the group's error code is [`Refused`].
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
        return Err(Refused::Code { what: format!("DescribeGroups {group}"), code: described.error_code }.into());
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

/// The group's members with their assignments decoded when the group uses the consumer
/// protocol. An assignment that does not decode is reported on stderr and left empty.
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

/// A Kafka error code in JSON output.
#[derive(Serialize)]
pub(super) struct ErrorJson {
    code: i16,
    name: String,
    hint: Option<&'static str>,
}

impl ErrorJson {
    pub(super) fn new(code: i16) -> Option<ErrorJson> {
        (code != 0).then(|| ErrorJson { code, name: error_name(code), hint: hint(code) })
    }
}

async fn delete_groups(bootstrap: &str, groups: &[String], format: Format) -> anyhow::Result<i32> {
    let mut cluster = Cluster::connect(bootstrap).await?;
    // Groups may live on different coordinators: one DeleteGroups per coordinator.
    let mut by_coordinator: BTreeMap<String, Vec<&String>> = BTreeMap::new();
    let mut codes: BTreeMap<&String, i16> = BTreeMap::new();
    for group in groups {
        match cluster.coordinator(group).await {
            Ok(c) => by_coordinator.entry(c.addr).or_default().push(group),
            Err(e) => match e.downcast_ref::<Refused>() {
                Some(Refused::Code { code, .. }) => {
                    codes.insert(group, *code);
                }
                _ => return Err(e),
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
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "groups": results }))?;
            writeln!(out)?;
        }
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

    #[test]
    fn states_are_matched_case_insensitively_and_unknown_ones_pass_through() {
        assert_eq!(canonical_state("stable"), "Stable");
        assert_eq!(canonical_state("PREPARINGREBALANCE"), "PreparingRebalance");
        assert_eq!(canonical_state("Sleeping"), "Sleeping");
    }
}
