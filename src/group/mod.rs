//! The group coordinator: consumer groups (classic and KIP-848) and committed offsets.
//!
//! It owns every group's membership and committed offsets, kept in memory and written to the
//! compacted internal topic `__consumer_offsets` in Kafka's record schemas ([`records`]).
//! The group's partition of that topic is Kafka's `abs(hash(group)) % partitions`; on a single
//! broker this broker leads them all, so it coordinates every group. On start the state is
//! rebuilt by reading the topic from its log start ([`Coordinator::load`]).
//!
//! - [`classic`]: JoinGroup/SyncGroup/Heartbeat/LeaveGroup and the rebalance state machine;
//! - [`consumer`]: ConsumerGroupHeartbeat (KIP-848) with server-side assignors;
//! - this module: the shared state, offsets (commit, fetch, delete, expiry), listing,
//!   deletion, persistence and the timer that enforces sessions and deadlines.
//!
//! One async lock guards all groups. Requests that change durable state write their records
//! while holding it, so the order in `__consumer_offsets` is the order of the changes in
//! memory; a change is applied in memory only once its write succeeded. JoinGroup and
//! SyncGroup wait for their answer *outside* the lock.
//!
//! Durability: offset commits and group metadata are appended like any produce to
//! `__consumer_offsets` (whose flush settings apply): an acknowledged commit survives
//! `kill -9`; across power loss it survives once flushed.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, MutexGuard};

use crate::broker::{now_ms, Broker, TopicError};
use crate::handler::code;
use crate::log::batch::BatchBuilder;

pub mod classic;
pub mod consumer;
pub mod records;

use classic::{ClassicGroup, ClassicState, JoinParams, JoinResult, Reply, SyncResult};
use consumer::{ConsumerGroup, HeartbeatParams, HeartbeatResult, TopicInfo};
use records::{Key, OffsetValue, Value};

/// The internal topic of committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Coordinator settings, under Kafka's broker keys.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms`
    pub initial_rebalance_delay: Duration,
    /// `group.min.session.timeout.ms` / `group.max.session.timeout.ms`
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    /// `group.max.size`
    pub max_size: usize,
    /// `offsets.topic.num.partitions`
    pub offsets_partitions: i32,
    /// `offsets.topic.segment.bytes`
    pub offsets_segment_bytes: i64,
    /// `offsets.retention.minutes`
    pub offsets_retention: Duration,
    /// `offsets.retention.check.interval.ms`
    pub offsets_retention_check: Duration,
    /// `offset.metadata.max.bytes`
    pub offset_metadata_max_bytes: usize,
    /// `group.consumer.session.timeout.ms`
    pub consumer_session_timeout: Duration,
    /// `group.consumer.heartbeat.interval.ms`
    pub consumer_heartbeat_interval: Duration,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            initial_rebalance_delay: Duration::from_millis(3_000),
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            max_size: i32::MAX as usize,
            offsets_partitions: 50,
            offsets_segment_bytes: 104_857_600,
            offsets_retention: Duration::from_secs(7 * 24 * 3600),
            offsets_retention_check: Duration::from_millis(600_000),
            offset_metadata_max_bytes: 4096,
            consumer_session_timeout: Duration::from_millis(45_000),
            consumer_heartbeat_interval: Duration::from_millis(5_000),
        }
    }
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
    pub expire_timestamp: i64,
}

impl From<OffsetValue> for Committed {
    fn from(v: OffsetValue) -> Self {
        Committed {
            offset: v.offset,
            leader_epoch: v.leader_epoch,
            metadata: v.metadata,
            commit_timestamp: v.commit_timestamp,
            expire_timestamp: v.expire_timestamp,
        }
    }
}

/// Which protocol a group speaks.
#[derive(Debug)]
pub enum Kind {
    Classic(ClassicGroup),
    Consumer(ConsumerGroup),
}

/// A group: its membership and its committed offsets.
#[derive(Debug)]
pub struct Group {
    pub offsets: BTreeMap<(String, i32), Committed>,
    pub kind: Kind,
}

impl Group {
    fn classic(now_ms: i64) -> Self {
        Group { offsets: BTreeMap::new(), kind: Kind::Classic(ClassicGroup::new(now_ms)) }
    }

    /// Kafka's state name.
    pub fn state_name(&self) -> &'static str {
        match &self.kind {
            Kind::Classic(g) => g.state.name(),
            Kind::Consumer(g) => g.state().name(),
        }
    }

    /// "classic" or "consumer" (ListGroups v5 group types).
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            Kind::Classic(_) => "classic",
            Kind::Consumer(_) => "consumer",
        }
    }

    pub fn protocol_type(&self) -> String {
        match &self.kind {
            Kind::Classic(g) => g.protocol_type.clone().unwrap_or_default(),
            Kind::Consumer(_) => "consumer".to_owned(),
        }
    }

    /// No members (offsets may remain).
    pub fn is_empty(&self) -> bool {
        match &self.kind {
            Kind::Classic(g) => g.is_empty(),
            Kind::Consumer(g) => g.members.is_empty(),
        }
    }

    pub fn member_count(&self) -> usize {
        match &self.kind {
            Kind::Classic(g) => g.members.len(),
            Kind::Consumer(g) => g.members.len(),
        }
    }

    fn is_dead(&self) -> bool {
        matches!(&self.kind, Kind::Classic(g) if g.state == ClassicState::Dead)
    }
}

/// One OffsetCommit entry.
#[derive(Debug, Clone)]
pub struct CommitEntry {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// Who commits: the group member fields of OffsetCommit.
#[derive(Debug, Clone)]
pub struct Committer {
    pub generation_or_epoch: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
}

/// Groups and offsets, by group id.
pub type Groups = BTreeMap<String, Group>;

#[derive(Debug)]
pub struct Coordinator {
    config: GroupConfig,
    groups: Mutex<Groups>,
    /// Partitions of `__consumer_offsets` (0 until it exists).
    partitions: AtomicI32,
    /// Set at shutdown: new JoinGroup/SyncGroup requests are not parked any more.
    closed: AtomicBool,
}

impl Coordinator {
    pub fn new(config: GroupConfig) -> Self {
        Coordinator {
            config,
            groups: Mutex::new(Groups::new()),
            partitions: AtomicI32::new(0),
            closed: AtomicBool::new(false),
        }
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// Rebuilds every group from `__consumer_offsets` (at broker start, before serving).
    /// Blocking: reads the topic's logs.
    pub fn load(&self, broker: &Broker) {
        let Some(topic) = broker.topic(OFFSETS_TOPIC) else { return };
        self.partitions.store(topic.partitions, Ordering::Release);
        let mut latest: BTreeMap<String, GroupRecords> = BTreeMap::new();
        let mut records = 0usize;
        for p in 0..topic.partitions {
            let Some(partition) = broker.partition_named(OFFSETS_TOPIC, p) else { continue };
            let mut offset = partition.log_start_offset();
            let end = partition.high_watermark();
            while offset < end {
                let read = match broker.read(&partition, offset, 1 << 20, true) {
                    Ok(r) if r.next_offset > offset => r,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::error!(partition = p, offset, error = %e, "cannot read {OFFSETS_TOPIC}");
                        break;
                    }
                };
                for batch in crate::log::batch::HeaderIter::new(&read.records, 0) {
                    let bytes = &read.records[batch.position as usize..batch.position as usize + batch.header.size()];
                    let Some(iter) = crate::log::batch::records(bytes) else { continue };
                    for r in iter {
                        records += 1;
                        match records::decode(r.key, r.value) {
                            Ok(Some((key, value))) => {
                                latest.entry(key.group().to_owned()).or_default().apply(key, value);
                            }
                            Ok(None) => {}
                            Err(e) => tracing::warn!(partition = p, offset = r.offset, error = %e, "skipping record"),
                        }
                    }
                }
                offset = read.next_offset;
            }
        }
        let now = Instant::now();
        let mut groups = Groups::new();
        for (id, r) in latest {
            if let Some(group) = r.into_group(now) {
                groups.insert(id, group);
            }
        }
        tracing::info!(groups = groups.len(), records, "loaded consumer groups from {OFFSETS_TOPIC}");
        if let Ok(mut g) = self.groups.try_lock() {
            *g = groups;
        }
    }

    /// The partition of `__consumer_offsets` that holds `group` (creating the topic on first
    /// use, as Kafka does on the first FindCoordinator).
    ///
    /// # Errors
    /// COORDINATOR_NOT_AVAILABLE when the topic cannot be created.
    pub async fn partition_for(&self, broker: &Arc<Broker>, group: &str) -> Result<i32, i16> {
        let mut n = self.partitions.load(Ordering::Acquire);
        if n == 0 {
            n = self.create_offsets_topic(broker).await?;
        }
        Ok(records::partition_for(group, n))
    }

    async fn create_offsets_topic(&self, broker: &Arc<Broker>) -> Result<i32, i16> {
        let b = Arc::clone(broker);
        let config = self.config.clone();
        let created = tokio::task::spawn_blocking(move || {
            let configs = BTreeMap::from([
                ("cleanup.policy".to_owned(), "compact".to_owned()),
                ("segment.bytes".to_owned(), config.offsets_segment_bytes.to_string()),
            ]);
            match b.create_topic(OFFSETS_TOPIC, config.offsets_partitions, -1, configs, false) {
                Ok(t) => Ok(t.partitions),
                Err(TopicError::AlreadyExists(_)) => b.topic(OFFSETS_TOPIC).map(|t| t.partitions).ok_or(()),
                Err(e) => {
                    tracing::error!(error = %e, "cannot create {OFFSETS_TOPIC}");
                    Err(())
                }
            }
        })
        .await;
        match created {
            Ok(Ok(n)) => {
                self.partitions.store(n, Ordering::Release);
                Ok(n)
            }
            _ => Err(code::COORDINATOR_NOT_AVAILABLE),
        }
    }

    /// Appends `records` for `group` to its `__consumer_offsets` partition, as one batch.
    async fn persist(&self, broker: &Arc<Broker>, group: &str, records: &[(Key, Option<Value>)]) -> Result<(), i16> {
        if records.is_empty() {
            return Ok(());
        }
        let mut partition = self.partition_for(broker, group).await?;
        if broker.partition_named(OFFSETS_TOPIC, partition).is_none() {
            // The topic was deleted (DeleteTopics): create it again.
            self.partitions.store(0, Ordering::Release);
            partition = self.partition_for(broker, group).await?;
        }
        let Some(p) = broker.partition_named(OFFSETS_TOPIC, partition) else {
            return Err(code::COORDINATOR_NOT_AVAILABLE);
        };
        let now = now_ms();
        let mut builder = BatchBuilder::new();
        let encoded: Vec<(bytes::Bytes, Option<bytes::Bytes>)> =
            records.iter().map(|(k, v)| (k.encode(), v.as_ref().map(Value::encode))).collect();
        for (k, v) in &encoded {
            builder.record(now, Some(k), v.as_deref(), &[]);
        }
        broker.append(&p, &builder.build()).await.map(|_| ()).map_err(|e| {
            tracing::error!(group, error = %e, "cannot write to {OFFSETS_TOPIC}");
            code::COORDINATOR_NOT_AVAILABLE
        })
    }

    async fn persist_classic(&self, broker: &Arc<Broker>, group_id: &str, groups: &Groups) -> Result<(), i16> {
        let Some(Group { kind: Kind::Classic(g), .. }) = groups.get(group_id) else { return Ok(()) };
        let record = (Key::GroupMetadata { group: group_id.to_owned() }, Some(Value::Group(g.to_record())));
        self.persist(broker, group_id, &[record]).await
    }

    /// Read access for describing and listing.
    pub async fn read<R>(&self, f: impl FnOnce(&Groups) -> R) -> R {
        f(&*self.groups.lock().await)
    }

    /// Read access from a blocking thread (the metrics scrape).
    pub fn read_blocking<R>(&self, f: impl FnOnce(&Groups) -> R) -> R {
        f(&self.groups.blocking_lock())
    }

    async fn lock(&self) -> MutexGuard<'_, Groups> {
        self.groups.lock().await
    }

    /// JoinGroup.
    pub async fn join(&self, broker: &Arc<Broker>, group_id: &str, p: JoinParams) -> JoinResult {
        if group_id.is_empty() {
            return JoinResult::error(code::INVALID_GROUP_ID, &p.member_id);
        }
        if p.session_timeout_ms < self.config.min_session_timeout_ms
            || p.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return JoinResult::error(code::INVALID_SESSION_TIMEOUT, &p.member_id);
        }
        if self.closed.load(Ordering::Acquire) {
            return JoinResult::error(code::NOT_COORDINATOR, &p.member_id);
        }
        let now_ms = now_ms();
        let member_id = p.member_id.clone();
        let reply = {
            let mut groups = self.lock().await;
            if !groups.contains_key(group_id) {
                if !member_id.is_empty() {
                    return JoinResult::error(code::UNKNOWN_MEMBER_ID, &member_id);
                }
                groups.insert(group_id.to_owned(), Group::classic(now_ms));
            }
            let Some(group) = groups.get_mut(group_id) else { return JoinResult::error(code::UNKNOWN_MEMBER_ID, "") };
            // An empty KIP-848 group may switch to the classic protocol (and back).
            if let Kind::Consumer(c) = &group.kind {
                if !c.members.is_empty() {
                    return JoinResult::error(code::INCONSISTENT_GROUP_PROTOCOL, &member_id);
                }
                let tombstone = (Key::ConsumerGroupMetadata { group: group_id.to_owned() }, None);
                if let Err(e) = self.persist(broker, group_id, &[tombstone]).await {
                    return JoinResult::error(e, &member_id);
                }
                if let Some(group) = groups.get_mut(group_id) {
                    group.kind = Kind::Classic(ClassicGroup::new(now_ms));
                }
            }
            let Some(group) = groups.get_mut(group_id) else { return JoinResult::error(code::UNKNOWN_MEMBER_ID, "") };
            let Kind::Classic(g) = &mut group.kind else { return JoinResult::error(code::UNKNOWN_MEMBER_ID, "") };
            let (reply, persist) = g.join(p, &self.config, Instant::now(), now_ms);
            if persist.0 {
                if let Err(e) = self.persist_classic(broker, group_id, &groups).await {
                    return JoinResult::error(e, &member_id);
                }
            }
            reply
        };
        match reply {
            Reply::Now(r) => r,
            Reply::Wait(rx) => rx.await.unwrap_or_else(|_| JoinResult::error(code::NOT_COORDINATOR, &member_id)),
        }
    }

    /// SyncGroup.
    #[allow(clippy::too_many_arguments)]
    pub async fn sync(
        &self,
        broker: &Arc<Broker>,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, bytes::Bytes)>,
    ) -> SyncResult {
        if self.closed.load(Ordering::Acquire) {
            return SyncResult::error(code::NOT_COORDINATOR);
        }
        let reply = {
            let mut groups = self.lock().await;
            let Some(Group { kind: Kind::Classic(g), .. }) = groups.get_mut(group_id) else {
                return SyncResult::error(code::UNKNOWN_MEMBER_ID);
            };
            let (reply, persist) =
                g.sync(member_id, instance_id, generation, protocol_type, protocol_name, assignments);
            if persist.0 {
                let stored = self.persist_classic(broker, group_id, &groups).await.is_ok();
                if let Some(Group { kind: Kind::Classic(g), .. }) = groups.get_mut(group_id) {
                    g.finish_sync(stored, &self.config, Instant::now(), now_ms());
                }
            }
            reply
        };
        match reply {
            Reply::Now(r) => r,
            Reply::Wait(rx) => rx.await.unwrap_or_else(|_| SyncResult::error(code::NOT_COORDINATOR)),
        }
    }

    /// Heartbeat: the error code.
    pub async fn heartbeat(&self, group_id: &str, member_id: &str, instance_id: Option<&str>, generation: i32) -> i16 {
        let mut groups = self.lock().await;
        match groups.get_mut(group_id) {
            Some(Group { kind: Kind::Classic(g), .. }) => {
                g.heartbeat(member_id, instance_id, generation, Instant::now())
            }
            Some(_) => code::UNKNOWN_MEMBER_ID,
            None => code::UNKNOWN_MEMBER_ID,
        }
    }

    /// LeaveGroup: one error code per member, or a group-level error.
    ///
    /// # Errors
    /// COORDINATOR_NOT_AVAILABLE for a dead group.
    pub async fn leave(
        &self,
        broker: &Arc<Broker>,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<i16>, i16> {
        let mut groups = self.lock().await;
        let Some(Group { kind: Kind::Classic(g), .. }) = groups.get_mut(group_id) else {
            return Ok(vec![code::UNKNOWN_MEMBER_ID; members.len()]);
        };
        if g.state == ClassicState::Dead {
            return Err(code::COORDINATOR_NOT_AVAILABLE);
        }
        let (now, now_ms) = (Instant::now(), now_ms());
        let mut persist = false;
        let codes = members
            .iter()
            .map(|(id, instance)| {
                let (code, p) = g.leave(id, instance.as_deref(), &self.config, now, now_ms);
                persist |= p.0;
                code
            })
            .collect();
        if persist {
            let _ = self.persist_classic(broker, group_id, &groups).await;
        }
        Ok(codes)
    }

    /// OffsetCommit: an error per entry (in order), or one for the whole request.
    ///
    /// # Errors
    /// The group-level error (unknown member, illegal generation, ...).
    pub async fn commit(
        &self,
        broker: &Arc<Broker>,
        group_id: &str,
        who: &Committer,
        entries: &[CommitEntry],
        api_version: i16,
    ) -> Result<Vec<i16>, i16> {
        if group_id.is_empty() {
            return Err(code::INVALID_GROUP_ID);
        }
        let now = now_ms();
        let mut groups = self.lock().await;
        let error = match groups.get(group_id) {
            None if who.generation_or_epoch < 0 => code::NONE,
            None => {
                return Err(if api_version >= 9 { code::GROUP_ID_NOT_FOUND } else { code::ILLEGAL_GENERATION });
            }
            Some(Group { kind: Kind::Classic(g), .. }) => {
                g.validate_commit(&who.member_id, who.instance_id.as_deref(), who.generation_or_epoch)
            }
            Some(Group { kind: Kind::Consumer(g), .. }) => g.validate_commit(&who.member_id, who.generation_or_epoch),
        };
        if error != code::NONE {
            return Err(error);
        }
        let mut codes = Vec::with_capacity(entries.len());
        let mut records = Vec::with_capacity(entries.len());
        for e in entries {
            let known = broker.topic(&e.topic).is_some_and(|t| (0..t.partitions).contains(&e.partition));
            let metadata = e.metadata.clone().unwrap_or_default();
            let code = if !known {
                code::UNKNOWN_TOPIC_OR_PARTITION
            } else if metadata.len() > self.config.offset_metadata_max_bytes {
                code::OFFSET_METADATA_TOO_LARGE
            } else {
                let value = OffsetValue {
                    offset: e.offset,
                    leader_epoch: e.leader_epoch,
                    metadata,
                    commit_timestamp: now,
                    expire_timestamp: -1,
                };
                let key = Key::Offset { group: group_id.to_owned(), topic: e.topic.clone(), partition: e.partition };
                records.push((key, Some(Value::Offset(value))));
                code::NONE
            };
            codes.push(code);
        }
        if let Err(e) = self.persist(broker, group_id, &records).await {
            return Ok(codes.into_iter().map(|c| if c == code::NONE { e } else { c }).collect());
        }
        let group = groups.entry(group_id.to_owned()).or_insert_with(|| Group::classic(now));
        for (key, value) in records {
            if let (Key::Offset { topic, partition, .. }, Some(Value::Offset(v))) = (key, value) {
                group.offsets.insert((topic, partition), v.into());
            }
        }
        Ok(codes)
    }

    /// OffsetFetch for one group: committed offsets of `topics` (all committed when `None`).
    /// A KIP-848 member passing its id and epoch is checked (v9+).
    ///
    /// # Errors
    /// UNKNOWN_MEMBER_ID / STALE_MEMBER_EPOCH.
    pub async fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<&[(String, Vec<i32>)]>,
        member: Option<(&str, i32)>,
    ) -> Result<Vec<(String, i32, Option<Committed>)>, i16> {
        let groups = self.lock().await;
        let group = groups.get(group_id).filter(|g| !g.is_dead());
        if let (Some((member_id, epoch)), Some(Group { kind: Kind::Consumer(g), .. })) = (member, group) {
            let e = g.validate_commit(member_id, epoch);
            if e != code::NONE {
                return Err(e);
            }
        }
        Ok(match topics {
            Some(topics) => topics
                .iter()
                .flat_map(|(t, ps)| {
                    ps.iter().map(move |p| {
                        let c = group.and_then(|g| g.offsets.get(&(t.clone(), *p))).cloned();
                        (t.clone(), *p, c)
                    })
                })
                .collect(),
            None => group
                .map(|g| g.offsets.iter().map(|((t, p), c)| (t.clone(), *p, Some(c.clone()))).collect())
                .unwrap_or_default(),
        })
    }

    /// DeleteGroups: one error per group.
    pub async fn delete_groups(&self, broker: &Arc<Broker>, ids: &[String]) -> Vec<i16> {
        let mut groups = self.lock().await;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let code = match groups.get(id) {
                None => code::GROUP_ID_NOT_FOUND,
                Some(g) if g.is_dead() => code::GROUP_ID_NOT_FOUND,
                Some(g) if !g.is_empty() => code::NON_EMPTY_GROUP,
                Some(g) => {
                    let mut records: Vec<(Key, Option<Value>)> = g
                        .offsets
                        .keys()
                        .map(|(t, p)| (Key::Offset { group: id.clone(), topic: t.clone(), partition: *p }, None))
                        .collect();
                    records.push((Key::GroupMetadata { group: id.clone() }, None));
                    if matches!(g.kind, Kind::Consumer(_)) {
                        records.push((Key::ConsumerGroupMetadata { group: id.clone() }, None));
                    }
                    match self.persist(broker, id, &records).await {
                        Ok(()) => {
                            if let Some(Group { kind: Kind::Classic(c), .. }) = groups.get_mut(id) {
                                c.mark_dead(now_ms());
                            }
                            groups.remove(id);
                            code::NONE
                        }
                        Err(e) => e,
                    }
                }
            };
            out.push(code);
        }
        out
    }

    /// OffsetDelete: per-partition errors, or a group-level one.
    ///
    /// As in Kafka, a KIP-848 group may delete offsets whatever its state; only the topics a
    /// member subscribes to (by name or by regex) are refused, per partition, with
    /// GROUP_SUBSCRIBED_TO_TOPIC. A classic group with members must speak the consumer
    /// protocol, whose subscriptions are read from the members' metadata.
    ///
    /// # Errors
    /// GROUP_ID_NOT_FOUND; NON_EMPTY_GROUP for a non-consumer protocol group with members.
    pub async fn delete_offsets(
        &self,
        broker: &Arc<Broker>,
        group_id: &str,
        topics: &[(String, Vec<i32>)],
    ) -> Result<Vec<(String, i32, i16)>, i16> {
        let mut groups = self.lock().await;
        let Some(group) = groups.get(group_id).filter(|g| !g.is_dead()) else {
            return Err(code::GROUP_ID_NOT_FOUND);
        };
        let classic_topics: Vec<String> = match &group.kind {
            Kind::Classic(g) if g.state == ClassicState::Empty => Vec::new(),
            Kind::Classic(g) if g.protocol_type.as_deref() == Some("consumer") => g.subscribed_topics(),
            Kind::Classic(_) => return Err(code::NON_EMPTY_GROUP),
            Kind::Consumer(_) => Vec::new(),
        };
        let subscribed = |topic: &str| match &group.kind {
            Kind::Consumer(g) => g.is_subscribed_to(topic),
            Kind::Classic(_) => classic_topics.iter().any(|t| t == topic),
        };
        let mut out = Vec::new();
        let mut records = Vec::new();
        for (topic, partitions) in topics {
            for p in partitions {
                let code = if subscribed(topic) {
                    code::GROUP_SUBSCRIBED_TO_TOPIC
                } else if broker.topic(topic).is_none() {
                    code::UNKNOWN_TOPIC_OR_PARTITION
                } else {
                    if group.offsets.contains_key(&(topic.clone(), *p)) {
                        records.push((
                            Key::Offset { group: group_id.to_owned(), topic: topic.clone(), partition: *p },
                            None,
                        ));
                    }
                    code::NONE
                };
                out.push((topic.clone(), *p, code));
            }
        }
        self.persist(broker, group_id, &records).await?;
        if let Some(group) = groups.get_mut(group_id) {
            for (key, _) in records {
                if let Key::Offset { topic, partition, .. } = key {
                    group.offsets.remove(&(topic, partition));
                }
            }
        }
        Ok(out)
    }

    /// ConsumerGroupHeartbeat.
    pub async fn consumer_heartbeat(
        &self,
        broker: &Arc<Broker>,
        group_id: &str,
        p: HeartbeatParams,
    ) -> HeartbeatResult {
        if let Some(regex) = p.subscribed_topic_regex.as_deref().filter(|r| !r.is_empty()) {
            if let Err(e) = regex::Regex::new(regex) {
                return HeartbeatResult::error(code::INVALID_REGULAR_EXPRESSION, format!("invalid regex: {e}"));
            }
        }
        let all_topics: BTreeMap<String, TopicInfo> = broker
            .topics()
            .into_iter()
            .filter(|t| t.name != OFFSETS_TOPIC)
            .map(|t| (t.name, TopicInfo { id: t.topic_id.unwrap_or_else(uuid::Uuid::nil), partitions: t.partitions }))
            .collect();
        let now_ms = now_ms();
        let mut groups = self.lock().await;
        if !groups.contains_key(group_id) {
            if p.member_epoch != 0 {
                return HeartbeatResult::error(code::UNKNOWN_MEMBER_ID, format!("group {group_id} has no members"));
            }
            groups.insert(
                group_id.to_owned(),
                Group { offsets: BTreeMap::new(), kind: Kind::Consumer(ConsumerGroup::new(0, now_ms)) },
            );
        }
        let Some(group) = groups.get_mut(group_id) else {
            return HeartbeatResult::error(code::UNKNOWN_MEMBER_ID, "");
        };
        if let Kind::Classic(c) = &group.kind {
            if !c.is_empty() {
                return HeartbeatResult::error(
                    code::GROUP_ID_NOT_FOUND,
                    format!("group {group_id} is a classic group with members"),
                );
            }
            group.kind = Kind::Consumer(ConsumerGroup::new(c.generation, now_ms));
        }
        let Kind::Consumer(g) = &mut group.kind else { return HeartbeatResult::error(code::UNKNOWN_MEMBER_ID, "") };
        let before = g.epoch;
        let result = g.heartbeat(p, &all_topics, self.config.consumer_session_timeout, Instant::now(), now_ms);
        let epoch = g.epoch;
        if epoch != before {
            // The group epoch is durable, so it never goes back after a restart.
            let record =
                (Key::ConsumerGroupMetadata { group: group_id.to_owned() }, Some(Value::ConsumerGroup { epoch }));
            if let Err(e) = self.persist(broker, group_id, &[record]).await {
                return HeartbeatResult::error(e, "cannot store the group epoch");
            }
        }
        result
    }

    /// One pass over every group's deadlines; offset expiry when `expire_offsets`.
    pub async fn tick(&self, broker: &Arc<Broker>, expire_offsets: bool) {
        let (now, now_ms) = (Instant::now(), now_ms());
        let mut groups = self.lock().await;
        let mut to_persist = Vec::new();
        for (id, group) in groups.iter_mut() {
            match &mut group.kind {
                Kind::Classic(g) => {
                    if g.tick(&self.config, now, now_ms).0 {
                        to_persist.push(id.clone());
                    }
                }
                Kind::Consumer(g) => {
                    g.tick(now, now_ms);
                }
            }
        }
        for id in to_persist {
            let _ = self.persist_classic(broker, &id, &groups).await;
        }
        if expire_offsets {
            self.expire_offsets(broker, &mut groups, now_ms).await;
        }
    }

    /// Offsets of empty groups older than `offsets.retention.minutes` (counted from when
    /// the group became empty, or from the commit for groups that never had members) are
    /// deleted; a group left with nothing is removed.
    async fn expire_offsets(&self, broker: &Arc<Broker>, groups: &mut Groups, now_ms: i64) {
        let retention = self.config.offsets_retention.as_millis() as i64;
        let mut dead = Vec::new();
        let ids: Vec<String> = groups.keys().cloned().collect();
        for id in ids {
            let Some(group) = groups.get(&id) else { continue };
            if !group.is_empty() {
                continue;
            }
            let expired = expired_offsets(group, now_ms, retention);
            let emptied = expired.len() == group.offsets.len();
            let mut records: Vec<(Key, Option<Value>)> = expired
                .iter()
                .map(|(t, p)| (Key::Offset { group: id.clone(), topic: t.clone(), partition: *p }, None))
                .collect();
            if emptied {
                records.push((Key::GroupMetadata { group: id.clone() }, None));
                if matches!(group.kind, Kind::Consumer(_)) {
                    records.push((Key::ConsumerGroupMetadata { group: id.clone() }, None));
                }
            }
            if records.is_empty() || self.persist(broker, &id, &records).await.is_err() {
                continue;
            }
            tracing::info!(group = %id, offsets = expired.len(), "expired committed offsets");
            if let Some(group) = groups.get_mut(&id) {
                for k in &expired {
                    group.offsets.remove(k);
                }
            }
            if emptied {
                dead.push(id);
            }
        }
        for id in dead {
            groups.remove(&id);
        }
    }

    /// Answers every waiting JoinGroup/SyncGroup (shutdown: they must not hold it up).
    pub async fn shutdown(&self) {
        self.closed.store(true, Ordering::Release);
        let mut groups = self.lock().await;
        for group in groups.values_mut() {
            if let Kind::Classic(g) = &mut group.kind {
                g.release_waiters(code::NOT_COORDINATOR);
            }
        }
    }
}

/// The offsets of an empty `group` that have expired at `now_ms` (Kafka's rules): an
/// explicit expire timestamp (v1 commits) wins; otherwise `retention_ms` counts from when the
/// group became empty, or from the commit for groups that never had members (assign()
/// consumers and admin tools).
fn expired_offsets(group: &Group, now_ms: i64, retention_ms: i64) -> Vec<(String, i32)> {
    if !group.is_empty() {
        return Vec::new();
    }
    let became_empty = match &group.kind {
        Kind::Classic(g) if g.protocol_type.is_some() => Some(g.state_timestamp),
        Kind::Classic(_) => None,
        Kind::Consumer(g) => Some(g.state_timestamp),
    };
    group
        .offsets
        .iter()
        .filter(|(_, c)| {
            if c.expire_timestamp >= 0 {
                now_ms >= c.expire_timestamp
            } else {
                now_ms - became_empty.unwrap_or(c.commit_timestamp).max(0) >= retention_ms
            }
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// The last record of each kind for one group, while loading.
#[derive(Debug, Default)]
struct GroupRecords {
    offsets: HashMap<(String, i32), OffsetValue>,
    classic: Option<records::GroupValue>,
    consumer_epoch: Option<i32>,
}

impl GroupRecords {
    fn apply(&mut self, key: Key, value: Option<Value>) {
        match (key, value) {
            (Key::Offset { topic, partition, .. }, Some(Value::Offset(v))) => {
                self.offsets.insert((topic, partition), v);
            }
            (Key::Offset { topic, partition, .. }, None) => {
                self.offsets.remove(&(topic, partition));
            }
            (Key::GroupMetadata { .. }, Some(Value::Group(v))) => self.classic = Some(v),
            (Key::GroupMetadata { .. }, None) => self.classic = None,
            (Key::ConsumerGroupMetadata { .. }, Some(Value::ConsumerGroup { epoch })) => {
                self.consumer_epoch = Some(epoch);
            }
            (Key::ConsumerGroupMetadata { .. }, None) => self.consumer_epoch = None,
            _ => {}
        }
    }

    fn into_group(self, now: Instant) -> Option<Group> {
        if self.offsets.is_empty() && self.classic.is_none() && self.consumer_epoch.is_none() {
            return None;
        }
        let kind = match (self.consumer_epoch, self.classic) {
            (Some(epoch), _) => Kind::Consumer(ConsumerGroup::new(epoch, now_ms())),
            (None, Some(v)) => Kind::Classic(ClassicGroup::from_record(v, now)),
            (None, None) => Kind::Classic(ClassicGroup::new(now_ms())),
        };
        let offsets = self.offsets.into_iter().map(|(k, v)| (k, Committed::from(v))).collect();
        Some(Group { offsets, kind })
    }
}

/// Lag per committed partition: (group, topic, partition, lag), clamped at the log start
/// (records below it can never be consumed, so they are not lag).
pub fn lag(broker: &Broker, groups: &Groups) -> Vec<(String, String, i32, i64)> {
    let mut out = Vec::new();
    for (id, g) in groups {
        for ((topic, partition), c) in &g.offsets {
            let Some(p) = broker.partition_named(topic, *partition) else { continue };
            let position = c.offset.max(p.log_start_offset());
            out.push((id.clone(), topic.clone(), *partition, (p.high_watermark() - position).max(0)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(at: i64) -> Committed {
        Committed { offset: 1, leader_epoch: -1, metadata: String::new(), commit_timestamp: at, expire_timestamp: -1 }
    }

    #[test]
    fn offsets_of_simple_groups_expire_by_commit_time() {
        let mut g = Group::classic(0);
        g.offsets.insert(("t".into(), 0), committed(1_000));
        g.offsets.insert(("t".into(), 1), committed(5_000));
        assert!(expired_offsets(&g, 5_999, 5_000).is_empty());
        assert_eq!(expired_offsets(&g, 6_000, 5_000), vec![("t".to_owned(), 0)]);
        assert_eq!(expired_offsets(&g, 10_000, 5_000).len(), 2);
    }

    #[test]
    fn offsets_of_a_group_that_had_members_expire_from_when_it_became_empty() {
        let mut g = Group::classic(0);
        if let Kind::Classic(c) = &mut g.kind {
            c.protocol_type = Some("consumer".into());
            c.state_timestamp = 50_000; // emptied long after the commit
        }
        g.offsets.insert(("t".into(), 0), committed(1_000));
        assert!(expired_offsets(&g, 54_999, 5_000).is_empty());
        assert_eq!(expired_offsets(&g, 55_000, 5_000).len(), 1);
        let mut explicit = committed(1_000);
        explicit.expire_timestamp = 2_000;
        g.offsets.insert(("t".into(), 1), explicit);
        assert_eq!(expired_offsets(&g, 2_000, 5_000), vec![("t".to_owned(), 1)]);
    }

    #[test]
    fn a_group_with_members_keeps_its_offsets() {
        let mut g = Group { offsets: BTreeMap::new(), kind: Kind::Consumer(ConsumerGroup::new(0, 0)) };
        g.offsets.insert(("t".into(), 0), committed(0));
        if let Kind::Consumer(c) = &mut g.kind {
            let p = consumer::HeartbeatParams {
                member_id: "m".into(),
                member_epoch: 0,
                instance_id: None,
                rack_id: None,
                rebalance_timeout_ms: 1_000,
                subscribed_topic_names: Some(vec!["t".into()]),
                subscribed_topic_regex: None,
                server_assignor: None,
                owned: Some(consumer::Assignment::new()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
            };
            let _ = c.heartbeat(p, &BTreeMap::new(), Duration::from_secs(45), Instant::now(), 0);
        }
        assert!(expired_offsets(&g, i64::MAX / 2, 1).is_empty());
    }
}
