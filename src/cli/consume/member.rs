//! One member of a consumer group for `weir consume -g`, speaking the KIP-848 protocol
//! (ConsumerGroupHeartbeat, API key 68) that weir and Apache Kafka 4.x serve: the broker
//! assigns the partitions; the member heartbeats at the interval the broker returns,
//! acknowledges each new assignment in its next heartbeat (after committing and dropping the
//! partitions it lost), commits with its member id and epoch (OffsetCommit v9), and leaves
//! with member epoch -1.
//!
//! This module owns the member's identity and epoch, the coordinator connection (through
//! [`Cluster`]) and the group requests. It does not fetch and does not decide where a
//! partition without a commit starts; the consumer does both and hands positions in.
//!
//! Requests here are never raced against signals, so the shared connection to the
//! coordinator is never left with a response in flight.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kafka_protocol::error::{ParseResponseErrorCode, ResponseError};
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, GroupId, MetadataRequest, OffsetCommitRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;
use uuid::Uuid;

use crate::cli::cluster::{Cluster, Coordinator};
use crate::cli::{describe_error, error_name, Refused};

/// ConsumerGroupHeartbeat v1 (Kafka 4.0): the member id is chosen by the member.
const HEARTBEAT_VERSION: i16 = 1;
/// OffsetCommit v9 is the first that members of KIP-848 groups may use (Kafka refuses
/// older versions from them).
const OFFSET_COMMIT_VERSION: i16 = 9;
/// OffsetFetch v7: one group, a topic filter, `require_stable`.
const OFFSET_FETCH_VERSION: i16 = 7;
/// Metadata v12: topic ids, which assignments are given in.
const METADATA_VERSION: i16 = 12;

/// Kafka's consumer default `auto.commit.interval.ms`.
pub(super) const COMMIT_INTERVAL: Duration = Duration::from_secs(5);

/// How long the member may take to give back revoked partitions: Kafka's
/// `max.poll.interval.ms` is the rebalance timeout of its consumers; this tool revokes as
/// soon as it hears, so a minute is plenty.
const REBALANCE_TIMEOUT_MS: i32 = 60_000;

/// Until the broker says otherwise (its answer carries the interval).
const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3);

/// Pause before asking again while the coordinator moves or loads.
const COORDINATOR_BACKOFF: Duration = Duration::from_millis(200);

/// Member epochs with special meanings (KIP-848).
const JOIN_EPOCH: i32 = 0;
const LEAVE_EPOCH: i32 = -1;

/// What a heartbeat changed.
#[derive(Debug)]
pub(super) enum Change {
    None,
    /// A new assignment (the topic's partitions); acknowledge it with [`Member::owned`].
    Assignment(BTreeSet<i32>),
    /// The coordinator no longer knows this member (session expired): its partitions are
    /// gone without a commit, and it rejoins.
    Fenced,
}

#[derive(Debug)]
pub(super) struct Member {
    group: String,
    topic: String,
    topic_id: Uuid,
    member_id: String,
    epoch: i32,
    coordinator: Coordinator,
    heartbeat_interval: Duration,
    next_heartbeat: Instant,
    /// The partitions this member holds and reports in heartbeats.
    owned: BTreeSet<i32>,
    /// Whether an assignment arrived since the last (re)join.
    assigned: bool,
    /// Offsets as last committed or fetched, so unchanged ones are not committed again.
    committed: BTreeMap<i32, i64>,
}

impl Member {
    /// Finds the coordinator and the topic's id. The first heartbeat (which joins) is due at
    /// once.
    ///
    /// # Errors
    /// Connection errors; refusals are [`Refused`].
    pub(super) async fn join(cluster: &mut Cluster, group: &str, topic: &str) -> anyhow::Result<Member> {
        let coordinator = cluster.coordinator(group).await?;
        let topic_id = topic_id(cluster, &coordinator, topic).await?;
        Ok(Member {
            group: group.to_owned(),
            topic: topic.to_owned(),
            topic_id,
            member_id: Uuid::new_v4().simple().to_string(),
            epoch: JOIN_EPOCH,
            coordinator,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            next_heartbeat: Instant::now(),
            owned: BTreeSet::new(),
            assigned: false,
            committed: BTreeMap::new(),
        })
    }

    pub(super) fn group(&self) -> &str {
        &self.group
    }

    pub(super) fn next_heartbeat(&self) -> Instant {
        self.next_heartbeat
    }

    /// Whether the member received an assignment since it (re)joined.
    pub(super) fn has_assignment(&self) -> bool {
        self.assigned
    }

    /// The partitions the consumer now holds (after reconciling an assignment); the next
    /// heartbeat, sent at once, acknowledges them.
    pub(super) fn owned(&mut self, partitions: BTreeSet<i32>) {
        self.committed.retain(|p, _| partitions.contains(p));
        self.owned = partitions;
        self.next_heartbeat = Instant::now();
    }

    /// Sends the heartbeat that is due.
    ///
    /// # Errors
    /// Connection errors; errors other than fencing and a moving coordinator are
    /// [`Refused`].
    pub(super) async fn heartbeat(&mut self, cluster: &mut Cluster) -> anyhow::Result<Change> {
        let owned = vec![TopicPartitions::default()
            .with_topic_id(self.topic_id)
            .with_partitions(self.owned.iter().copied().collect())];
        let request = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group.clone())))
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_member_epoch(self.epoch)
            .with_rebalance_timeout_ms(REBALANCE_TIMEOUT_MS)
            .with_subscribed_topic_names(Some(vec![TopicName(StrBytes::from_string(self.topic.clone()))]))
            .with_topic_partitions(Some(if self.epoch == JOIN_EPOCH { Vec::new() } else { owned }));
        let client = cluster.client(&self.coordinator.addr).await?;
        let response = client.request(HEARTBEAT_VERSION, &request).await?;
        let now = Instant::now();
        match response.error_code.err() {
            None => {}
            Some(ResponseError::UnknownMemberId | ResponseError::FencedMemberEpoch) => {
                eprintln!(
                    "warning: group {}: the coordinator fenced this member ({}); rejoining",
                    self.group,
                    error_name(response.error_code)
                );
                self.epoch = JOIN_EPOCH;
                self.owned.clear();
                self.committed.clear();
                self.assigned = false;
                self.next_heartbeat = now;
                return Ok(Change::Fenced);
            }
            Some(
                ResponseError::CoordinatorNotAvailable
                | ResponseError::NotCoordinator
                | ResponseError::CoordinatorLoadInProgress,
            ) => {
                self.coordinator = cluster.coordinator(&self.group).await?;
                self.next_heartbeat = now + COORDINATOR_BACKOFF;
                return Ok(Change::None);
            }
            Some(_) => {
                let message = response.error_message.map(|m| format!(" ({m})")).unwrap_or_default();
                let what = format!("ConsumerGroupHeartbeat for group {}{message}", self.group);
                return Err(Refused::Code { what, code: response.error_code }.into());
            }
        }
        self.epoch = response.member_epoch;
        if response.heartbeat_interval_ms > 0 {
            self.heartbeat_interval = Duration::from_millis(response.heartbeat_interval_ms as u64);
        }
        self.next_heartbeat = now + self.heartbeat_interval;
        let Some(assignment) = response.assignment else { return Ok(Change::None) };
        let mut partitions = BTreeSet::new();
        for t in assignment.topic_partitions {
            if t.topic_id == self.topic_id {
                partitions.extend(t.partitions);
            } else {
                eprintln!("warning: group {}: assigned partitions of an unknown topic id {}", self.group, t.topic_id);
            }
        }
        self.assigned = true;
        Ok(Change::Assignment(partitions))
    }

    /// The group's committed offsets of `partitions`; partitions without one are left out.
    ///
    /// # Errors
    /// Connection errors; error codes are [`Refused`].
    pub(super) async fn committed(
        &mut self,
        cluster: &mut Cluster,
        partitions: &[i32],
    ) -> anyhow::Result<BTreeMap<i32, i64>> {
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group.clone())))
            .with_require_stable(true)
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(TopicName(StrBytes::from_string(self.topic.clone())))
                .with_partition_indexes(partitions.to_vec())]));
        let client = cluster.client(&self.coordinator.addr).await?;
        let response = client.request(OFFSET_FETCH_VERSION, &request).await?;
        if response.error_code != 0 {
            let what = format!("OffsetFetch for group {}", self.group);
            return Err(Refused::Code { what, code: response.error_code }.into());
        }
        let mut out = BTreeMap::new();
        for p in response.topics.iter().filter(|t| t.name.as_str() == self.topic).flat_map(|t| &t.partitions) {
            if p.error_code != 0 {
                let what = format!("OffsetFetch for group {}, {}-{}", self.group, self.topic, p.partition_index);
                return Err(Refused::Code { what, code: p.error_code }.into());
            }
            if p.committed_offset >= 0 {
                out.insert(p.partition_index, p.committed_offset);
            }
        }
        self.committed.extend(&out);
        Ok(out)
    }

    /// Commits `positions` (the next offset to read, per partition) that changed since the
    /// last commit, with this member's id and epoch. Returns the partitions the coordinator
    /// refused, as `P: ERROR_NAME` texts.
    ///
    /// # Errors
    /// Connection errors.
    pub(super) async fn commit(
        &mut self,
        cluster: &mut Cluster,
        positions: &BTreeMap<i32, i64>,
    ) -> anyhow::Result<Vec<String>> {
        let changed: Vec<(i32, i64)> = positions
            .iter()
            .filter(|(p, offset)| self.owned.contains(p) && self.committed.get(p) != Some(offset))
            .map(|(&p, &offset)| (p, offset))
            .collect();
        if changed.is_empty() || self.epoch <= JOIN_EPOCH {
            return Ok(Vec::new());
        }
        let partitions = changed
            .iter()
            .map(|&(p, offset)| {
                OffsetCommitRequestPartition::default()
                    .with_partition_index(p)
                    .with_committed_offset(offset)
                    .with_committed_leader_epoch(-1)
                    .with_committed_metadata(Some(StrBytes::from_static_str("")))
            })
            .collect();
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group.clone())))
            .with_generation_id_or_member_epoch(self.epoch)
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_string(self.topic.clone())))
                .with_partitions(partitions)]);
        let client = cluster.client(&self.coordinator.addr).await?;
        let response = client.request(OFFSET_COMMIT_VERSION, &request).await?;
        let mut failures = Vec::new();
        for p in response.topics.iter().flat_map(|t| &t.partitions) {
            match changed.iter().find(|(partition, _)| *partition == p.partition_index) {
                Some(&(partition, offset)) if p.error_code == 0 => {
                    self.committed.insert(partition, offset);
                }
                _ => failures.push(format!("{}-{}: {}", self.topic, p.partition_index, describe_error(p.error_code))),
            }
        }
        Ok(failures)
    }

    /// Leaves the group (member epoch -1), so its partitions move on at once.
    ///
    /// # Errors
    /// Connection errors and error codes other than "this member is already gone".
    pub(super) async fn leave(&mut self, cluster: &mut Cluster) -> anyhow::Result<()> {
        if self.epoch == JOIN_EPOCH && !self.assigned {
            return Ok(()); // never joined
        }
        let request = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group.clone())))
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_member_epoch(LEAVE_EPOCH)
            .with_rebalance_timeout_ms(-1);
        let client = cluster.client(&self.coordinator.addr).await?;
        let response = client.request(HEARTBEAT_VERSION, &request).await?;
        match response.error_code.err() {
            None | Some(ResponseError::UnknownMemberId | ResponseError::FencedMemberEpoch) => Ok(()),
            Some(_) => {
                let what = format!("leaving group {}", self.group);
                Err(Refused::Code { what, code: response.error_code }.into())
            }
        }
    }
}

/// The id of `topic` (Metadata v12), which assignments name topics by.
///
/// # Errors
/// Connection errors; a topic Metadata refuses is [`Refused`].
async fn topic_id(cluster: &mut Cluster, coordinator: &Coordinator, topic: &str) -> anyhow::Result<Uuid> {
    let request = MetadataRequest::default().with_allow_auto_topic_creation(false).with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(topic.to_owned())))),
    ]));
    let client = cluster.client(&coordinator.addr).await?;
    let response = client.request(METADATA_VERSION, &request).await?;
    let found = response.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic));
    match found {
        Some(t) if t.error_code != 0 => {
            Err(Refused::Code { what: format!("Metadata for topic {topic}"), code: t.error_code }.into())
        }
        Some(t) if !t.topic_id.is_nil() => Ok(t.topic_id),
        _ => anyhow::bail!("Metadata v{METADATA_VERSION} from {} gave no id for topic {topic}", coordinator.addr),
    }
}
