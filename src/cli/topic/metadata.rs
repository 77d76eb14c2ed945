//! What topic administration learns from the cluster before it acts, and where its requests
//! go: Metadata v10 (topic ids, replicas, ISR, the controller) read into [`TopicInfo`], and
//! [`Admin`], which sends admin requests to the controller and the rest to the bootstrap
//! broker. Connections and partition leaders come from [`crate::cli::cluster`].
//!
//! It sends only Metadata itself and never creates topics (`allow_auto_topic_creation`
//! false); Kafka's `-1` sentinels become `Option`s here.

use std::collections::BTreeMap;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::MetadataRequest;

use super::{refused, topic_name};
use crate::cli::cluster::{Cluster, Topology};
use crate::client::Client;
use crate::log::TopicPartition;

/// Metadata v10, the first with topic ids, which both Kafka 3.x/4.x and weir serve.
const METADATA_VERSION: i16 = 10;

/// A topic as Metadata describes it.
#[derive(Debug)]
pub(super) struct TopicInfo {
    pub(super) name: String,
    /// Kafka's text form of the id, `None` when the broker has none (nil).
    pub(super) topic_id: Option<String>,
    pub(super) internal: bool,
    /// In partition order.
    pub(super) partitions: Vec<PartitionInfo>,
}

impl TopicInfo {
    /// The largest replica count among the partitions (they normally agree).
    pub(super) fn replication_factor(&self) -> usize {
        self.partitions.iter().map(|p| p.replicas.len()).max().unwrap_or(0)
    }

    /// The leaders of its partitions, for [`Cluster::list_offsets`].
    pub(super) fn topology(&self) -> Topology {
        let mut topology = Topology::default();
        for p in &self.partitions {
            topology.leaders.insert(self.partition(p.partition), p.leader);
        }
        topology
    }

    pub(super) fn partition(&self, partition: i32) -> TopicPartition {
        TopicPartition::new(self.name.as_str(), partition)
    }
}

#[derive(Debug)]
pub(super) struct PartitionInfo {
    pub(super) partition: i32,
    pub(super) leader: Option<i32>,
    pub(super) leader_epoch: Option<i32>,
    pub(super) replicas: Vec<i32>,
    pub(super) isr: Vec<i32>,
}

/// One Metadata answer: the topics it described and those it refused, by name.
#[derive(Debug, Default)]
pub(super) struct Snapshot {
    pub(super) topics: Vec<TopicInfo>,
    pub(super) errors: BTreeMap<String, i16>,
}

/// A [`Cluster`] plus what topic administration needs: Metadata with topic ids and replicas,
/// and the controller, where admin requests go (a ZooKeeper-mode Kafka refuses them
/// elsewhere; KRaft brokers forward them, so any broker Metadata names as controller works).
#[derive(Debug)]
pub(super) struct Admin {
    pub(super) cluster: Cluster,
    pub(super) bootstrap: String,
    /// The controller the last Metadata named, if it named one.
    controller: Option<i32>,
    /// Whether a Metadata response has been read (so `controller` is known).
    knows_controller: bool,
}

impl Admin {
    pub(super) async fn connect(bootstrap: &str) -> anyhow::Result<Admin> {
        let cluster = Cluster::connect(bootstrap).await?;
        Ok(Admin { cluster, bootstrap: bootstrap.to_owned(), controller: None, knows_controller: false })
    }

    /// Metadata for `topics` (`None`: every topic), asked of the bootstrap broker. Never
    /// creates topics.
    ///
    /// # Errors
    /// Request errors; a cluster-level error code is [`Refused`](crate::cli::Refused).
    pub(super) async fn metadata(&mut self, topics: Option<&[String]>) -> anyhow::Result<Snapshot> {
        let request =
            MetadataRequest::default().with_allow_auto_topic_creation(false).with_topics(topics.map(|t| {
                t.iter().map(|name| MetadataRequestTopic::default().with_name(Some(topic_name(name)))).collect()
            }));
        let bootstrap = self.bootstrap.clone();
        let response = self.cluster.client(&bootstrap).await?.request(METADATA_VERSION, &request).await?;
        if response.error_code != 0 {
            return Err(refused(format!("Metadata from {bootstrap}"), response.error_code, None));
        }
        self.controller = (response.controller_id.0 >= 0).then_some(response.controller_id.0);
        self.knows_controller = true;
        let mut snapshot = Snapshot::default();
        for t in response.topics {
            let Some(name) = t.name else { continue };
            let name = name.0.to_string();
            if t.error_code != 0 {
                snapshot.errors.insert(name, t.error_code);
                continue;
            }
            let mut partitions: Vec<PartitionInfo> = t
                .partitions
                .iter()
                .map(|p| PartitionInfo {
                    partition: p.partition_index,
                    leader: (p.leader_id.0 >= 0).then_some(p.leader_id.0),
                    leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
                    replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                    isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            let topic_id = topic_id_text(t.topic_id);
            snapshot.topics.push(TopicInfo { name, topic_id, internal: t.is_internal, partitions });
        }
        snapshot.topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(snapshot)
    }

    /// Metadata for one topic.
    ///
    /// # Errors
    /// Request errors; an unknown topic (or any topic error code) is [`Refused`](crate::cli::Refused).
    pub(super) async fn topic(&mut self, topic: &str) -> anyhow::Result<TopicInfo> {
        let mut snapshot = self.metadata(Some(&[topic.to_owned()])).await?;
        if let Some(&code) = snapshot.errors.get(topic) {
            return Err(refused(format!("topic {topic}"), code, None));
        }
        let at = snapshot.topics.iter().position(|t| t.name == topic);
        let at =
            at.ok_or_else(|| anyhow::anyhow!("Metadata from {} did not describe topic {topic}", self.bootstrap))?;
        Ok(snapshot.topics.swap_remove(at))
    }

    /// The connection to the controller (the bootstrap broker when Metadata named none).
    pub(super) async fn controller(&mut self) -> anyhow::Result<&mut Client> {
        if !self.knows_controller {
            self.metadata(Some(&[])).await?;
        }
        let addr = self.controller.and_then(|id| self.cluster.addr_of(id)).unwrap_or_else(|| self.bootstrap.clone());
        self.cluster.client(&addr).await
    }

    /// The connection to the bootstrap broker, for requests any broker answers.
    pub(super) async fn any_broker(&mut self) -> anyhow::Result<&mut Client> {
        let addr = self.bootstrap.clone();
        self.cluster.client(&addr).await
    }
}

/// Kafka's text form of a topic id (URL-safe base64 of the 16 bytes, unpadded, as
/// `kafka-topics.sh` prints it and accepts it); `None` for the nil id, which means "none".
pub(super) fn topic_id_text(id: uuid::Uuid) -> Option<String> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if id.is_nil() {
        return None;
    }
    let mut text = String::with_capacity(22);
    for chunk in id.as_bytes().chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let bits = byte(0) << 16 | byte(1) << 8 | byte(2);
        for i in 0..=chunk.len() {
            text.push(char::from(ALPHABET[(bits >> (18 - 6 * i) & 63) as usize]));
        }
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_ids_print_as_kafka_prints_them() {
        let id = uuid::Uuid::from_bytes([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
        assert_eq!(topic_id_text(id).as_deref(), Some("AAECAwQFBgcICQoLDA0ODw"));
        // URL-safe: '-' and '_' where standard base64 has '+' and '/'.
        let id = uuid::Uuid::from_bytes([0xfb, 0xff, 0xbf, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(topic_id_text(id).as_deref(), Some("-_-_AAAAAAAAAAAAAAAAAA"));
        assert_eq!(topic_id_text(uuid::Uuid::nil()), None);
    }
}
