//! What the operator commands need to know about a cluster, asked over the Kafka protocol:
//! its brokers, who leads a partition (Metadata), who coordinates a group (FindCoordinator),
//! and partition offsets (ListOffsets, sent to each leader). Holds one [`Client`] per broker.
//!
//! It works against Apache Kafka as well as weir, so it never assumes a single broker; but a
//! cluster whose Metadata lists exactly one broker is reached through the bootstrap address,
//! even when that broker advertises a name this machine cannot resolve (a container's
//! hostname, say).
//!
//! Kafka's `-1` sentinels are translated here into `Option`s; callers see no sentinels.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use kafka_protocol::error::{ParseResponseErrorCode, ResponseError};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, ListOffsetsRequest, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{host_port, Refused, METADATA_VERSION};
use crate::client::Client;
use crate::log::TopicPartition;

/// Versions both Kafka 3.x/4.x and weir serve (Metadata's is [`METADATA_VERSION`], shared
/// with `weir cluster health`). FindCoordinator v3 is the last single-key one.
const FIND_COORDINATOR_VERSION: i16 = 3;
const LIST_OFFSETS_VERSION: i16 = 7;

/// ListOffsets timestamps with special meanings (Kafka's protocol).
pub const LATEST_TIMESTAMP: i64 = -1;
pub const EARLIEST_TIMESTAMP: i64 = -2;

/// How long to retry FindCoordinator while the coordinator is loading or not yet elected:
/// Kafka answers COORDINATOR_NOT_AVAILABLE while it creates `__consumer_offsets` for the
/// first group, which takes a second or two.
const COORDINATOR_WAIT: Duration = Duration::from_secs(10);
const COORDINATOR_RETRY_BACKOFF: Duration = Duration::from_millis(200);

/// The broker that coordinates a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinator {
    pub node_id: i32,
    /// HOST:PORT as the coordinator advertises itself.
    pub advertised: String,
    /// HOST:PORT this tool connects to (the bootstrap address for a one-broker cluster).
    pub addr: String,
}

/// Leaders of the partitions of some topics.
#[derive(Debug, Default)]
pub struct Topology {
    /// Every partition of every topic that Metadata described, with its leader (`None`
    /// while it has none).
    pub leaders: BTreeMap<TopicPartition, Option<i32>>,
    /// Topics Metadata refused (UNKNOWN_TOPIC_OR_PARTITION, ...) with the error code.
    pub topic_errors: BTreeMap<String, i16>,
}

impl Topology {
    /// The partitions of `topic`, in order.
    pub fn partitions_of<'a>(&'a self, topic: &'a str) -> impl Iterator<Item = i32> + 'a {
        self.leaders.keys().filter(move |tp| tp.topic == topic).map(|tp| tp.partition)
    }
}

/// The brokers of a cluster and one connection to each broker used so far.
#[derive(Debug)]
pub struct Cluster {
    bootstrap: String,
    /// node id → advertised HOST:PORT, from the last Metadata response.
    brokers: BTreeMap<i32, String>,
    /// Connections by the HOST:PORT they were opened to.
    clients: HashMap<String, Client>,
}

impl Cluster {
    /// Connects to `bootstrap` and learns the cluster's brokers.
    ///
    /// # Errors
    /// Nothing answers at `bootstrap`, or it does not speak Metadata v9.
    pub async fn connect(bootstrap: &str) -> anyhow::Result<Cluster> {
        let client = Client::connect(bootstrap).await?;
        let mut cluster =
            Cluster { bootstrap: bootstrap.to_owned(), brokers: BTreeMap::new(), clients: HashMap::new() };
        cluster.clients.insert(bootstrap.to_owned(), client);
        cluster.metadata(Some(&[])).await?;
        Ok(cluster)
    }

    /// The connection to `addr`, opened on first use.
    ///
    /// # Errors
    /// Nothing answers at `addr`.
    pub async fn client(&mut self, addr: &str) -> anyhow::Result<&mut Client> {
        if !self.clients.contains_key(addr) {
            let client = Client::connect(addr).await?;
            self.clients.insert(addr.to_owned(), client);
        }
        Ok(self.clients.get_mut(addr).expect("inserted above"))
    }

    /// The address to connect to for broker `node_id`, or `None` for a broker Metadata did
    /// not list.
    pub fn addr_of(&self, node_id: i32) -> Option<String> {
        if self.brokers.len() == 1 && self.brokers.contains_key(&node_id) {
            return Some(self.bootstrap.clone());
        }
        self.brokers.get(&node_id).cloned()
    }

    /// The address of every broker, one per node (for requests such as ListGroups that each
    /// broker answers for its own share); the bootstrap address if Metadata listed none.
    pub fn broker_addrs(&self) -> Vec<String> {
        if self.brokers.is_empty() {
            return vec![self.bootstrap.clone()];
        }
        self.brokers.keys().filter_map(|&id| self.addr_of(id)).collect()
    }

    /// Asks the bootstrap broker for the leaders of `topics` (`None`: all topics) and
    /// refreshes the broker list. Never creates topics.
    ///
    /// # Errors
    /// A request error; a cluster-level Metadata error code is [`Refused`].
    pub async fn metadata(&mut self, topics: Option<&[String]>) -> anyhow::Result<Topology> {
        let request = MetadataRequest::default().with_allow_auto_topic_creation(false).with_topics(topics.map(|t| {
            t.iter()
                .map(|name| {
                    MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                })
                .collect()
        }));
        let bootstrap = self.bootstrap.clone();
        let response: MetadataResponse = self.client(&bootstrap).await?.request(METADATA_VERSION, &request).await?;
        if response.error_code != 0 {
            let what = format!("Metadata from {bootstrap}");
            return Err(Refused::Code { what, code: response.error_code }.into());
        }
        self.brokers = response.brokers.iter().map(|b| (b.node_id.0, host_port(b.host.as_str(), b.port))).collect();
        let mut topology = Topology::default();
        for topic in &response.topics {
            let Some(name) = &topic.name else { continue };
            if topic.error_code != 0 {
                topology.topic_errors.insert(name.to_string(), topic.error_code);
                continue;
            }
            for p in &topic.partitions {
                let leader = (p.leader_id.0 >= 0).then_some(p.leader_id.0);
                topology.leaders.insert(TopicPartition::new(name.as_str(), p.partition_index), leader);
            }
        }
        Ok(topology)
    }

    /// Finds the coordinator of `group`, retrying for a while when the cluster says it is
    /// loading or not yet available.
    ///
    /// # Errors
    /// A request error; any other error code, or a retriable one after the wait, is
    /// [`Refused`].
    pub async fn coordinator(&mut self, group: &str) -> anyhow::Result<Coordinator> {
        let request =
            FindCoordinatorRequest::default().with_key(StrBytes::from_string(group.to_owned())).with_key_type(0); // 0 = group, 1 = transaction
        let deadline = tokio::time::Instant::now() + COORDINATOR_WAIT;
        let bootstrap = self.bootstrap.clone();
        loop {
            let response = self.client(&bootstrap).await?.request(FIND_COORDINATOR_VERSION, &request).await?;
            let retriable = matches!(
                response.error_code.err(),
                Some(ResponseError::CoordinatorNotAvailable | ResponseError::CoordinatorLoadInProgress)
            );
            if retriable && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(COORDINATOR_RETRY_BACKOFF).await;
                continue;
            }
            if response.error_code != 0 {
                let what = format!("FindCoordinator for group {group}");
                return Err(Refused::Code { what, code: response.error_code }.into());
            }
            let node_id = response.node_id.0;
            let advertised = host_port(response.host.as_str(), response.port);
            // A coordinator Metadata did not list (it just joined) is reached where it says.
            let addr = self.addr_of(node_id).unwrap_or_else(|| advertised.clone());
            return Ok(Coordinator { node_id, advertised, addr });
        }
    }

    /// Looks up the offset for `timestamp` (or [`LATEST_TIMESTAMP`] / [`EARLIEST_TIMESTAMP`])
    /// of each partition, asking each partition's leader. Per partition: `Ok(Some(offset))`,
    /// `Ok(None)` when no record has such a timestamp, or `Err(code)` (a partition without a
    /// known leader is LEADER_NOT_AVAILABLE).
    ///
    /// # Errors
    /// A request error to a leader.
    pub async fn list_offsets(
        &mut self,
        topology: &Topology,
        partitions: impl IntoIterator<Item = &TopicPartition>,
        timestamp: i64,
    ) -> anyhow::Result<BTreeMap<TopicPartition, Result<Option<i64>, i16>>> {
        let mut out = BTreeMap::new();
        let mut by_leader: BTreeMap<i32, BTreeMap<&str, Vec<i32>>> = BTreeMap::new();
        for tp in partitions {
            match topology.leaders.get(tp) {
                Some(Some(leader)) if self.addr_of(*leader).is_some() => {
                    by_leader.entry(*leader).or_default().entry(&tp.topic).or_default().push(tp.partition);
                }
                Some(_) => {
                    out.insert(tp.clone(), Err(ResponseError::LeaderNotAvailable.code()));
                }
                None => {
                    out.insert(tp.clone(), Err(ResponseError::UnknownTopicOrPartition.code()));
                }
            }
        }
        for (leader, topics) in by_leader {
            let request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1)) // -1: a client, not a follower
                .with_isolation_level(0) // read_uncommitted, as kafka-consumer-groups.sh
                .with_topics(
                    topics
                        .iter()
                        .map(|(topic, partitions)| {
                            ListOffsetsTopic::default()
                                .with_name(TopicName(StrBytes::from_string((*topic).to_owned())))
                                .with_partitions(
                                    partitions
                                        .iter()
                                        .map(|&p| {
                                            ListOffsetsPartition::default()
                                                .with_partition_index(p)
                                                .with_current_leader_epoch(-1)
                                                .with_timestamp(timestamp)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                );
            let addr = self.addr_of(leader).expect("leaders without an address were filtered out above");
            let response = self.client(&addr).await?.request(LIST_OFFSETS_VERSION, &request).await?;
            for topic in &response.topics {
                for p in &topic.partitions {
                    let result = match p.error_code {
                        0 => Ok((p.offset >= 0).then_some(p.offset)),
                        code => Err(code),
                    };
                    out.insert(TopicPartition::new(topic.name.as_str(), p.partition_index), result);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_broker_cluster_is_reached_through_the_bootstrap_address() {
        let mut cluster =
            Cluster { bootstrap: "localhost:9092".into(), brokers: BTreeMap::new(), clients: HashMap::new() };
        cluster.brokers.insert(1, "container-7:9092".into());
        assert_eq!(cluster.addr_of(1).as_deref(), Some("localhost:9092"));
        assert_eq!(cluster.addr_of(2), None);
        cluster.brokers.insert(2, "b2:9092".into());
        assert_eq!(cluster.addr_of(1).as_deref(), Some("container-7:9092"));
        assert_eq!(cluster.broker_addrs(), ["container-7:9092", "b2:9092"]);
    }
}
