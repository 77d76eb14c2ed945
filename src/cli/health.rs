//! `weir cluster info | health`: what a cluster is made of and whether it is healthy, asked
//! over the Kafka protocol the way `rpk cluster info` and `rpk cluster health` show it,
//! against weir or Apache Kafka.
//!
//! This module owns the cluster-wide view: the Metadata and DescribeCluster versions it
//! sends, the health verdict ([`assess_health`], a pure function of a Metadata response and
//! the set of brokers that did not answer), the reachability probe of every advertised
//! broker, and the output. It never changes the cluster.
//!
//! Health is judged from the client's side, since Kafka has no health API:
//! - **nodes down** are brokers that partitions name as replicas but that Metadata does not
//!   list (Kafka lists only live brokers), and listed brokers that do not answer ApiVersions
//!   at the address they advertise. The second kind is what a client following Metadata
//!   meets: a broker whose advertised address is wrong is down for every client, even when
//!   the bootstrap address reaches it.
//! - **leaderless partitions** have no leader (-1) or LEADER_NOT_AVAILABLE;
//! - **under-replicated partitions** have fewer in-sync replicas than replicas.
//!
//! Exit codes: 0 healthy, [`EXIT_UNHEALTHY`] (10) unhealthy (rpk's convention), 1 refused by
//! the broker, 2 usage and connection errors.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use kafka_protocol::error::{ParseResponseErrorCode, ResponseError};
use kafka_protocol::messages::{DescribeClusterRequest, DescribeClusterResponse, MetadataRequest, MetadataResponse};
use serde::Serialize;

use super::{
    cell, describe_error, host_port, run_async, write_json, write_section, Format, Refused, Table, EXIT_UNHEALTHY,
    METADATA_VERSION,
};
use crate::client::{self, Client};

/// DescribeCluster v0 (Kafka 2.8+, weir): v1 adds only the endpoint type, whose default
/// (brokers) is what is wanted here.
const DESCRIBE_CLUSTER_VERSION: i16 = 0;

/// How long a broker gets to answer ApiVersions before health calls it down. A live broker
/// answers in milliseconds; this bounds a host that drops packets.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// `weir cluster <command>`.
#[derive(clap::Subcommand, Debug)]
pub enum ClusterCommand {
    /// Cluster id, controller, brokers (the controller marked `*`) and topic counts.
    Info {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Whether every broker answers and every partition has a leader and a full ISR.
    /// Exits 10 when the cluster is unhealthy, 0 when healthy.
    Health {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// Runs a `weir cluster` command against `bootstrap`; returns the exit code.
///
/// # Errors
/// Connection errors (exit 2); error codes are [`Refused`] and become exit 1.
pub fn run(bootstrap: &str, command: ClusterCommand) -> anyhow::Result<i32> {
    match command {
        ClusterCommand::Info { format } => run_async(info(bootstrap, format)),
        ClusterCommand::Health { format } => run_async(health(bootstrap, format)),
    }
}

/// What `weir cluster info` prints.
#[derive(Debug, PartialEq, Eq, Serialize)]
struct ClusterInfo {
    cluster_id: Option<String>,
    controller_id: Option<i32>,
    brokers: Vec<Broker>,
    /// Topics that are not internal.
    topics: usize,
    /// Internal topics (`__consumer_offsets`, ...).
    internal_topics: usize,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
struct Broker {
    node_id: i32,
    host: String,
    port: i32,
    rack: Option<String>,
}

async fn info(bootstrap: &str, format: Format) -> anyhow::Result<i32> {
    let mut client = Client::connect(bootstrap).await?;
    let metadata = metadata(&mut client).await?;
    let described = describe_cluster(&mut client).await?;
    let info = cluster_info(&metadata, described.as_ref());
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => write_json(&mut out, &info)?,
        Format::Text => print_info(&mut out, &info)?,
    }
    Ok(0)
}

/// Metadata for every topic from the bootstrap broker. Never creates topics.
///
/// # Errors
/// Request errors; a cluster-level error code is [`Refused`].
async fn metadata(client: &mut Client) -> anyhow::Result<MetadataResponse> {
    let request = MetadataRequest::default().with_topics(None).with_allow_auto_topic_creation(false);
    let response: MetadataResponse = client.request(METADATA_VERSION, &request).await?;
    if response.error_code != 0 {
        let what = format!("Metadata from {}", client.addr());
        return Err(Refused::Code { what, code: response.error_code }.into());
    }
    Ok(response)
}

/// DescribeCluster, or `None` from a broker that predates it (Kafka before 2.8): the caller
/// then falls back to what Metadata says.
///
/// # Errors
/// Request errors; an error code is [`Refused`], with the broker's message.
async fn describe_cluster(client: &mut Client) -> anyhow::Result<Option<DescribeClusterResponse>> {
    match client.request(DESCRIBE_CLUSTER_VERSION, &DescribeClusterRequest::default()).await {
        Ok(response) if response.error_code != 0 => {
            let what = format!("DescribeCluster from {}", client.addr());
            Err(Refused::broker(what, response.error_code, response.error_message.as_deref()).into())
        }
        Ok(response) => Ok(Some(response)),
        // Refused before sending: the connection stays usable.
        Err(client::Error::UnsupportedApi { .. } | client::Error::UnsupportedVersion { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The cluster as DescribeCluster describes it, or as Metadata does without DescribeCluster;
/// topic counts always come from Metadata.
fn cluster_info(metadata: &MetadataResponse, described: Option<&DescribeClusterResponse>) -> ClusterInfo {
    let (cluster_id, controller_id, mut brokers) = match described {
        Some(d) => (
            Some(d.cluster_id.to_string()),
            d.controller_id.0,
            d.brokers
                .iter()
                .map(|b| Broker {
                    node_id: b.broker_id.0,
                    host: b.host.to_string(),
                    port: b.port,
                    rack: b.rack.as_ref().map(|r| r.to_string()),
                })
                .collect::<Vec<_>>(),
        ),
        None => (
            metadata.cluster_id.as_ref().map(|id| id.to_string()),
            metadata.controller_id.0,
            metadata
                .brokers
                .iter()
                .map(|b| Broker {
                    node_id: b.node_id.0,
                    host: b.host.to_string(),
                    port: b.port,
                    rack: b.rack.as_ref().map(|r| r.to_string()),
                })
                .collect(),
        ),
    };
    brokers.sort_by_key(|b| b.node_id);
    let named = metadata.topics.iter().filter(|t| t.name.is_some());
    let internal_topics = named.clone().filter(|t| t.is_internal).count();
    ClusterInfo {
        cluster_id: cluster_id.filter(|id| !id.is_empty()),
        controller_id: (controller_id >= 0).then_some(controller_id),
        brokers,
        topics: named.count() - internal_topics,
        internal_topics,
    }
}

fn print_info(out: &mut impl Write, info: &ClusterInfo) -> std::io::Result<()> {
    write_section(out, "CLUSTER")?;
    key_values(out, &[("Cluster ID", cell(info.cluster_id.as_deref())), ("Controller ID", cell(info.controller_id))])?;
    writeln!(out)?;
    write_section(out, "BROKERS")?;
    let mut table = Table::new(&["ID", "HOST", "PORT", "RACK"]);
    for b in &info.brokers {
        let controller = if Some(b.node_id) == info.controller_id { "*" } else { "" };
        table.row(vec![
            format!("{}{controller}", b.node_id),
            b.host.clone(),
            b.port.to_string(),
            cell(b.rack.as_deref()),
        ]);
    }
    table.write(out)?;
    writeln!(out)?;
    write_section(out, "TOPICS")?;
    key_values(out, &[("Topics", info.topics.to_string()), ("Internal topics", info.internal_topics.to_string())])
}

/// `Key:  value` lines with the values aligned.
fn key_values(out: &mut impl Write, pairs: &[(&str, String)]) -> std::io::Result<()> {
    let width = pairs.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    for (key, value) in pairs {
        let key = format!("{key}:");
        writeln!(out, "{key:<width$}  {value}")?;
    }
    Ok(())
}

/// What `weir cluster health` prints.
#[derive(Debug, PartialEq, Eq, Serialize)]
struct HealthReport {
    healthy: bool,
    /// Why not healthy, rpk's names: `nodes_down`, `leaderless_partitions`,
    /// `under_replicated_partitions`, `no_elected_controller`.
    unhealthy_reasons: Vec<&'static str>,
    controller_id: Option<i32>,
    /// Every node Metadata lists or a partition names as a replica.
    nodes: Vec<i32>,
    nodes_down: Vec<i32>,
    leaderless_partitions: Vec<PartitionRef>,
    under_replicated_partitions: Vec<PartitionRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
struct PartitionRef {
    topic: String,
    partition: i32,
}

impl std::fmt::Display for PartitionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

async fn health(bootstrap: &str, format: Format) -> anyhow::Result<i32> {
    let mut client = Client::connect(bootstrap).await?;
    let metadata = metadata(&mut client).await?;
    for t in metadata.topics.iter().filter(|t| t.error_code != 0) {
        let name = t.name.as_ref().map_or_else(|| t.topic_id.to_string(), |n| n.to_string());
        eprintln!("warning: Metadata for topic {name}: {}", describe_error(t.error_code));
    }
    let unreachable = probe_brokers(&metadata).await?;
    for (node_id, (addr, reason)) in &unreachable {
        eprintln!("warning: broker {node_id} does not answer at its advertised address {addr}: {reason}");
    }
    let report = assess_health(&metadata, &unreachable.keys().copied().collect());
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => write_json(&mut out, &report)?,
        Format::Text => print_health(&mut out, &report)?,
    }
    Ok(if report.healthy { 0 } else { EXIT_UNHEALTHY })
}

/// Connects to every broker Metadata lists, at the address it advertises, all at once.
/// Returns the brokers that did not answer ApiVersions within [`PROBE_TIMEOUT`], with their
/// address and why.
///
/// # Errors
/// A probe task that panicked.
async fn probe_brokers(metadata: &MetadataResponse) -> anyhow::Result<BTreeMap<i32, (String, String)>> {
    let mut probes = tokio::task::JoinSet::new();
    for b in &metadata.brokers {
        let (node_id, addr) = (b.node_id.0, host_port(b.host.as_str(), b.port));
        probes.spawn(async move {
            let failure = match tokio::time::timeout(PROBE_TIMEOUT, Client::connect(&addr)).await {
                Ok(Ok(_answered)) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_elapsed) => Some(format!("no answer to ApiVersions within {PROBE_TIMEOUT:?}")),
            };
            (node_id, addr, failure)
        });
    }
    let mut unreachable = BTreeMap::new();
    while let Some(probe) = probes.join_next().await {
        let (node_id, addr, failure) = probe.context("a broker probe failed")?;
        if let Some(reason) = failure {
            unreachable.insert(node_id, (addr, reason));
        }
    }
    Ok(unreachable)
}

/// The health verdict from one Metadata response and the listed brokers that did not
/// answer (`unreachable`).
fn assess_health(metadata: &MetadataResponse, unreachable: &BTreeSet<i32>) -> HealthReport {
    let listed: BTreeSet<i32> = metadata.brokers.iter().map(|b| b.node_id.0).collect();
    let mut nodes = listed.clone();
    let mut leaderless = BTreeSet::new();
    let mut under_replicated = BTreeSet::new();
    for topic in &metadata.topics {
        let Some(name) = &topic.name else { continue };
        for p in &topic.partitions {
            let replicas = p.replica_nodes.iter().chain(&p.isr_nodes).chain(&p.offline_replicas);
            nodes.extend(replicas.map(|id| id.0).filter(|&id| id >= 0));
            let partition = || PartitionRef { topic: name.to_string(), partition: p.partition_index };
            if p.leader_id.0 < 0 || p.error_code.err() == Some(ResponseError::LeaderNotAvailable) {
                leaderless.insert(partition());
            }
            if p.isr_nodes.len() < p.replica_nodes.len() {
                under_replicated.insert(partition());
            }
        }
    }
    // Kafka lists only live brokers: a replica on a broker it does not list is on one that
    // is down.
    let nodes_down: Vec<i32> =
        nodes.iter().copied().filter(|id| !listed.contains(id) || unreachable.contains(id)).collect();
    let controller_id = (metadata.controller_id.0 >= 0).then_some(metadata.controller_id.0);
    let mut unhealthy_reasons = Vec::new();
    if !nodes_down.is_empty() {
        unhealthy_reasons.push("nodes_down");
    }
    if !leaderless.is_empty() {
        unhealthy_reasons.push("leaderless_partitions");
    }
    if !under_replicated.is_empty() {
        unhealthy_reasons.push("under_replicated_partitions");
    }
    if controller_id.is_none() {
        unhealthy_reasons.push("no_elected_controller");
    }
    HealthReport {
        healthy: unhealthy_reasons.is_empty(),
        unhealthy_reasons,
        controller_id,
        nodes: nodes.into_iter().collect(),
        nodes_down,
        leaderless_partitions: leaderless.into_iter().collect(),
        under_replicated_partitions: under_replicated.into_iter().collect(),
    }
}

fn print_health(out: &mut impl Write, r: &HealthReport) -> std::io::Result<()> {
    fn list<T: std::fmt::Display>(items: &[T]) -> String {
        format!("[{}]", items.iter().map(T::to_string).collect::<Vec<_>>().join(" "))
    }
    write_section(out, "CLUSTER HEALTH OVERVIEW")?;
    key_values(
        out,
        &[
            ("Healthy", r.healthy.to_string()),
            ("Unhealthy reasons", list(&r.unhealthy_reasons)),
            ("Controller ID", cell(r.controller_id)),
            ("All nodes", list(&r.nodes)),
            ("Nodes down", list(&r.nodes_down)),
            (&format!("Leaderless partitions ({})", r.leaderless_partitions.len()), list(&r.leaderless_partitions)),
            (
                &format!("Under-replicated partitions ({})", r.under_replicated_partitions.len()),
                list(&r.under_replicated_partitions),
            ),
        ],
    )
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::{BrokerId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    use super::*;

    fn broker(id: i32) -> MetadataResponseBroker {
        MetadataResponseBroker::default()
            .with_node_id(BrokerId(id))
            .with_host(StrBytes::from_string(format!("b{id}")))
            .with_port(9092)
    }

    fn partition(index: i32, leader: i32, replicas: &[i32], isr: &[i32]) -> MetadataResponsePartition {
        let ids = |ids: &[i32]| ids.iter().map(|&id| BrokerId(id)).collect();
        MetadataResponsePartition::default()
            .with_partition_index(index)
            .with_leader_id(BrokerId(leader))
            .with_replica_nodes(ids(replicas))
            .with_isr_nodes(ids(isr))
    }

    fn topic(name: &str, internal: bool, partitions: Vec<MetadataResponsePartition>) -> MetadataResponseTopic {
        MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(name.to_owned()))))
            .with_is_internal(internal)
            .with_partitions(partitions)
    }

    fn at(topic: &str, partition: i32) -> PartitionRef {
        PartitionRef { topic: topic.to_owned(), partition }
    }

    #[test]
    fn a_cluster_whose_partitions_all_have_leaders_and_full_isrs_is_healthy() {
        let metadata = MetadataResponse::default()
            .with_brokers(vec![broker(1), broker(2)])
            .with_controller_id(BrokerId(1))
            .with_topics(vec![topic("t", false, vec![partition(0, 1, &[1, 2], &[2, 1])])]);
        let report = assess_health(&metadata, &BTreeSet::new());
        assert!(report.healthy, "{report:?}");
        assert_eq!(report.nodes, [1, 2]);
        assert!(report.unhealthy_reasons.is_empty());
    }

    #[test]
    fn leaderless_and_under_replicated_partitions_and_unlisted_replicas_make_it_unhealthy() {
        // Broker 3 is gone: Kafka no longer lists it, but partitions still name it.
        let metadata = MetadataResponse::default()
            .with_brokers(vec![broker(1), broker(2)])
            .with_controller_id(BrokerId(2))
            .with_topics(vec![
                topic("a", false, vec![partition(0, 1, &[1, 3], &[1]), partition(1, -1, &[3], &[])]),
                topic(
                    "b",
                    false,
                    vec![partition(0, 2, &[2], &[2]).with_error_code(ResponseError::LeaderNotAvailable.code())],
                ),
            ]);
        let report = assess_health(&metadata, &BTreeSet::new());
        assert!(!report.healthy);
        assert_eq!(report.nodes, [1, 2, 3]);
        assert_eq!(report.nodes_down, [3]);
        assert_eq!(report.leaderless_partitions, [at("a", 1), at("b", 0)]);
        assert_eq!(report.under_replicated_partitions, [at("a", 0), at("a", 1)]);
        assert_eq!(report.unhealthy_reasons, ["nodes_down", "leaderless_partitions", "under_replicated_partitions"]);
    }

    #[test]
    fn a_listed_broker_that_does_not_answer_is_down_and_no_controller_is_unhealthy() {
        let metadata =
            MetadataResponse::default().with_brokers(vec![broker(1), broker(2)]).with_controller_id(BrokerId(-1));
        let report = assess_health(&metadata, &BTreeSet::from([2]));
        assert_eq!(report.nodes_down, [2]);
        assert_eq!(report.controller_id, None);
        assert_eq!(report.unhealthy_reasons, ["nodes_down", "no_elected_controller"]);
    }

    #[test]
    fn health_text_lists_partitions_as_topic_slash_partition_with_aligned_values() {
        let report = HealthReport {
            healthy: false,
            unhealthy_reasons: vec!["leaderless_partitions"],
            controller_id: Some(0),
            nodes: vec![0],
            nodes_down: vec![],
            leaderless_partitions: vec![at("orders", 0), at("orders", 3)],
            under_replicated_partitions: vec![],
        };
        let mut out = Vec::new();
        print_health(&mut out, &report).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "CLUSTER HEALTH OVERVIEW\n\
             =======================\n\
             Healthy:                          false\n\
             Unhealthy reasons:                [leaderless_partitions]\n\
             Controller ID:                    0\n\
             All nodes:                        [0]\n\
             Nodes down:                       []\n\
             Leaderless partitions (2):        [orders/0 orders/3]\n\
             Under-replicated partitions (0):  []\n"
        );
    }

    #[test]
    fn info_prefers_describe_cluster_and_falls_back_to_metadata() {
        let metadata = MetadataResponse::default()
            .with_brokers(vec![broker(2), broker(1).with_rack(Some(StrBytes::from_static_str("r1")))])
            .with_cluster_id(Some(StrBytes::from_static_str("from-metadata")))
            .with_controller_id(BrokerId(2))
            .with_topics(vec![topic("t", false, vec![]), topic("u", false, vec![]), topic("__x", true, vec![])]);
        let info = cluster_info(&metadata, None);
        assert_eq!(info.cluster_id.as_deref(), Some("from-metadata"));
        assert_eq!(info.controller_id, Some(2));
        assert_eq!(info.brokers.iter().map(|b| b.node_id).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(info.brokers[0].rack.as_deref(), Some("r1"));
        assert_eq!((info.topics, info.internal_topics), (2, 1));

        let described = DescribeClusterResponse::default()
            .with_cluster_id(StrBytes::from_static_str("from-describe"))
            .with_controller_id(BrokerId(7))
            .with_brokers(vec![DescribeClusterBroker::default()
                .with_broker_id(BrokerId(7))
                .with_host(StrBytes::from_static_str("h"))
                .with_port(1)]);
        let info = cluster_info(&metadata, Some(&described));
        assert_eq!((info.cluster_id.as_deref(), info.controller_id), (Some("from-describe"), Some(7)));
        assert_eq!(info.brokers, [Broker { node_id: 7, host: "h".into(), port: 1, rack: None }]);

        let mut out = Vec::new();
        print_info(&mut out, &info).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "CLUSTER\n=======\n\
             Cluster ID:     from-describe\n\
             Controller ID:  7\n\n\
             BROKERS\n=======\n\
             ID  HOST  PORT  RACK\n\
             7*  h     1     -\n\n\
             TOPICS\n======\n\
             Topics:           2\n\
             Internal topics:  1\n"
        );
    }
}
