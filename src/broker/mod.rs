//! The replica manager: the one layer between request handlers and partition logs.
//!
//! It owns the data directory ([`LogManager`]), the partitions this broker leads (all of them:
//! a single broker is a cluster of one), and what replication will extend: each
//! [`Partition`] carries its leader epoch and high watermark (equal to the log end offset
//! while there are no followers). Handlers never touch a log directly.
//!
//! Waiting: appends bump a broker-wide data version ([`Broker::subscribe_appends`]), which
//! long-poll fetches await instead of sleeping.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;
use uuid::Uuid;

use crate::config::BrokerConfig;
use crate::log::batch::BatchHeader;
use crate::log::manager::{LogManager, PartitionLog, TopicMetadata};
use crate::log::producer_state::{last_seq, BatchMeta, ProducerState, SequenceCheck};
use crate::log::{self, AppendInfo, AppendOptions, LogRead, TopicPartition};

/// Wall-clock milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// A partition this broker leads.
#[derive(Debug)]
pub struct Partition {
    pub topic_partition: TopicPartition,
    pub topic_id: Uuid,
    pub log: Arc<PartitionLog>,
    /// Stamped into every appended batch; bumped by leader elections (replication).
    pub leader_epoch: i32,
    /// Idempotent-producer state. Locked before the log, and held across the check and the
    /// append so a retry racing its original cannot be written twice.
    pub producers: Mutex<ProducerState>,
    /// Bytes and records in and out, summed per topic on `/metrics`.
    pub traffic: crate::metrics::Traffic,
}

/// Loads a partition's producer state: the snapshot, then every batch after it.
fn load_producer_state(log: &PartitionLog) -> ProducerState {
    let dir = log.reader.dir().to_owned();
    let (mut state, from) = match ProducerState::read_snapshot(&dir) {
        Ok(Some((state, offset))) if offset <= log.reader.log_end_offset() => (state, offset),
        Ok(_) => (ProducerState::default(), log.reader.log_start_offset()),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "ignoring unreadable producer state snapshot; rebuilding from the log");
            (ProducerState::default(), log.reader.log_start_offset())
        }
    };
    log.reader.for_each_batch_header(from, |h| state.observe(h));
    state
}

/// Why a produce was refused, beyond the log's own reasons.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("producer epoch is older than the partition's current one")]
    InvalidProducerEpoch,
    #[error("sequence number out of order")]
    OutOfOrderSequence,
    /// Kafka's rule for compacted topics (INVALID_RECORD).
    #[error("Compacted topic cannot accept message without key in topic partition {0}.")]
    NoKeyForCompactedTopic(TopicPartition),
    #[error(transparent)]
    Log(#[from] log::Error),
}

impl Partition {
    /// The high watermark: the log end offset while this broker has no followers.
    pub fn high_watermark(&self) -> i64 {
        self.log.reader.log_end_offset()
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log.reader.log_start_offset()
    }

    /// Whether the log went offline after a storage error (appends and reads refused).
    pub fn is_offline(&self) -> bool {
        self.log.log.lock().map(|l| l.offline_cause().is_some()).unwrap_or(true)
    }

    /// Replicas and in-sync replicas as Metadata and `/metrics` report them: on a single
    /// broker, this broker alone — and no replica in sync while the log is offline.
    pub fn replica_sets(&self, node_id: i32) -> (Vec<i32>, Vec<i32>) {
        let isr = if self.is_offline() { vec![] } else { vec![node_id] };
        (vec![node_id], isr)
    }
}

/// Why a topic operation failed, in terms handlers map to Kafka error codes.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("topic {0} already exists")]
    AlreadyExists(String),
    #[error("unknown topic {0}")]
    Unknown(String),
    #[error("replication factor {0} is larger than the 1 broker available")]
    InvalidReplicationFactor(i16),
    #[error("invalid number of partitions {0}")]
    InvalidPartitions(i32),
    #[error(transparent)]
    Log(#[from] log::Error),
}

/// Broker-wide state shared by all connections.
#[derive(Debug)]
pub struct Broker {
    pub config: BrokerConfig,
    pub cluster_id: String,
    /// Host and port advertised in Metadata.
    pub advertised: (String, u16),
    /// Topic creation, deletion and config changes (blocking file I/O: call from
    /// `spawn_blocking`). `None` after shutdown.
    logs: Mutex<Option<LogManager>>,
    /// Lookup cache of partitions by name; the lock is held only for map access.
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// Topic names and ids, for Metadata and id-based requests.
    topics: RwLock<BTreeMap<String, TopicMetadata>>,
    /// Topic names by id (Fetch v13+ names topics by id only), as `StrBytes` so a response
    /// can carry the name without copying it.
    topic_names: RwLock<HashMap<Uuid, StrBytes>>,
    appends: watch::Sender<u64>,
    /// What the maintenance pass last wrote to the checkpoint files.
    checkpointer: Arc<log::checkpoint::Checkpointer>,
    producer_ids: Mutex<ProducerIdBlock>,
    /// Consumer groups and committed offsets.
    pub groups: crate::group::Coordinator,
    /// The RESP port's shared state (pub/sub subscribers, connected clients).
    pub resp: crate::resp::commands::RespState,
    /// Key-value views of the topics read through the RESP port.
    pub kv_views: crate::kv::views::Views,
    /// Bumped whenever topics or partitions change (caches of partitions check it).
    topology: std::sync::atomic::AtomicU64,
    /// Serializes RESP writes that check before they write (SET NX/XX/GET, DEL counts, HSET).
    pub kv_write_lock: tokio::sync::Mutex<()>,
}

/// Producer ids come from blocks claimed durably in `<data_dir>/producer-ids`, so an id is
/// never handed out twice, even across crashes (ids of a block cut short are skipped).
#[derive(Debug)]
struct ProducerIdBlock {
    next: i64,
    end: i64,
}

const PRODUCER_ID_BLOCK: i64 = 1000;

impl Broker {
    /// Opens the data directory and builds the broker state.
    ///
    /// # Errors
    /// The data directory cannot be opened (locked, unreadable, corrupt metadata).
    pub fn open(config: BrokerConfig, advertised: (String, u16)) -> Result<Broker, log::Error> {
        let manager = LogManager::open(&config.data_dir, config.log.clone(), now_ms())?;
        let cluster_id = read_or_create_cluster_id(&config.data_dir)?;
        let config_dir = config.data_dir.clone();
        let config_group = config.group.clone();
        let broker = Broker {
            config,
            cluster_id,
            advertised,
            logs: Mutex::new(None),
            partitions: RwLock::new(HashMap::new()),
            topics: RwLock::new(BTreeMap::new()),
            topic_names: RwLock::new(HashMap::new()),
            appends: watch::channel(0).0,
            checkpointer: manager.checkpointer(),
            producer_ids: Mutex::new(read_producer_id_block(&config_dir)?),
            groups: crate::group::Coordinator::new(config_group),
            resp: crate::resp::commands::RespState::default(),
            kv_views: crate::kv::views::Views::default(),
            topology: std::sync::atomic::AtomicU64::new(0),
            kv_write_lock: tokio::sync::Mutex::new(()),
        };
        broker.refresh(&manager);
        *broker.logs.lock().unwrap_or_else(|p| p.into_inner()) = Some(manager);
        broker.groups.load(&broker);
        Ok(broker)
    }

    /// Rebuilds the caches from the log manager after a change.
    fn refresh(&self, manager: &LogManager) {
        self.topology.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let topics: BTreeMap<String, TopicMetadata> = manager.topics().map(|t| (t.name.clone(), t.clone())).collect();
        let mut partitions = HashMap::new();
        for (tp, log) in manager.logs() {
            let topic_id = topics.get(&tp.topic).and_then(|t| t.topic_id).unwrap_or_else(Uuid::nil);
            let existing = self.partitions.read().unwrap_or_else(|p| p.into_inner()).get(tp).cloned();
            let partition = match existing {
                Some(p) if Arc::ptr_eq(&p.log, log) => p,
                _ => Arc::new(Partition {
                    topic_partition: tp.clone(),
                    topic_id,
                    log: Arc::clone(log),
                    leader_epoch: 0,
                    producers: Mutex::new(load_producer_state(log)),
                    traffic: crate::metrics::Traffic::default(),
                }),
            };
            partitions.insert(tp.clone(), partition);
        }
        let names =
            topics.values().filter_map(|t| Some((t.topic_id?, StrBytes::from_string(t.name.clone())))).collect();
        *self.partitions.write().unwrap_or_else(|p| p.into_inner()) = partitions;
        *self.topics.write().unwrap_or_else(|p| p.into_inner()) = topics;
        *self.topic_names.write().unwrap_or_else(|p| p.into_inner()) = names;
    }

    pub fn partition(&self, tp: &TopicPartition) -> Option<Arc<Partition>> {
        self.partition_named(&tp.topic, tp.partition)
    }

    /// [`Self::partition`] by a borrowed name (what request handlers have).
    pub fn partition_named(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        let key = (topic, partition);
        self.partitions.read().unwrap_or_else(|p| p.into_inner()).get(&key as &dyn log::PartitionKey).cloned()
    }

    /// Every partition this broker hosts.
    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    pub fn topic(&self, name: &str) -> Option<TopicMetadata> {
        self.topics.read().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }

    /// Changes whenever topics or partitions are created, deleted or reopened.
    pub fn topology_version(&self) -> u64 {
        self.topology.load(std::sync::atomic::Ordering::Acquire)
    }

    /// A topic's partition count, without copying its metadata (hot paths).
    pub fn partition_count(&self, name: &str) -> Option<i32> {
        self.topics.read().unwrap_or_else(|p| p.into_inner()).get(name).map(|t| t.partitions)
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<TopicMetadata> {
        let name = self.topic_name_by_id(id)?;
        self.topic(&name)
    }

    /// A topic's name by its id, without scanning the topics or copying their metadata.
    pub fn topic_name_by_id(&self, id: Uuid) -> Option<StrBytes> {
        self.topic_names.read().unwrap_or_else(|p| p.into_inner()).get(&id).cloned()
    }

    pub fn topics(&self) -> Vec<TopicMetadata> {
        self.topics.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    /// Effective log configuration of a topic (broker defaults + overrides).
    pub fn topic_config(&self, name: &str) -> Option<log::LogConfig> {
        let t = self.topic(name)?;
        self.config.log.with_overrides(&t.configs).ok()
    }

    fn with_manager<T>(&self, f: impl FnOnce(&mut LogManager) -> Result<T, TopicError>) -> Result<T, TopicError> {
        let mut guard = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        let manager = guard.as_mut().ok_or_else(|| TopicError::Unknown("(broker shutting down)".into()))?;
        let result = f(manager);
        self.refresh(manager);
        result
    }

    /// Creates a topic (blocking: call from `spawn_blocking`). `partitions`/`replication`
    /// of -1 take the broker defaults. With `validate_only`, checks everything and creates
    /// nothing.
    ///
    /// # Errors
    /// See [`TopicError`].
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication: i16,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<TopicMetadata, TopicError> {
        log::validate_topic_name(name)?;
        let partitions = if partitions == -1 { self.config.num_partitions } else { partitions };
        if partitions < 1 {
            return Err(TopicError::InvalidPartitions(partitions));
        }
        let replication = if replication == -1 { self.config.default_replication_factor } else { replication };
        if replication != 1 {
            return Err(TopicError::InvalidReplicationFactor(replication));
        }
        self.config.log.with_overrides(&configs)?;
        self.with_manager(|m| {
            if m.topic(name).is_some() {
                return Err(TopicError::AlreadyExists(name.to_owned()));
            }
            if validate_only {
                return Ok(TopicMetadata { version: 1, name: name.to_owned(), topic_id: None, partitions, configs });
            }
            m.create_topic(name, partitions, configs, now_ms())?;
            Ok(m.topic(name).cloned().expect("just created"))
        })
    }

    /// Replaces a topic's config overrides (blocking). With `validate_only`, only checks.
    ///
    /// # Errors
    /// Unknown topic or invalid values.
    pub fn alter_topic_config(
        &self,
        name: &str,
        overrides: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        self.config.log.with_overrides(&overrides)?;
        self.with_manager(|m| {
            if m.topic(name).is_none() {
                return Err(TopicError::Unknown(name.to_owned()));
            }
            if !validate_only {
                m.alter_topic_config(name, overrides)?;
            }
            Ok(())
        })
    }

    /// Grows a topic to `count` partitions (blocking).
    ///
    /// # Errors
    /// Unknown topic, or a count that does not grow it.
    pub fn add_partitions(&self, name: &str, count: i32, validate_only: bool) -> Result<(), TopicError> {
        self.with_manager(|m| {
            let Some(current) = m.topic(name).map(|t| t.partitions) else {
                return Err(TopicError::Unknown(name.to_owned()));
            };
            if count <= current {
                return Err(TopicError::InvalidPartitions(count));
            }
            if !validate_only {
                m.add_partitions(name, count, now_ms())?;
            }
            Ok(())
        })
    }

    /// DeleteRecords: moves a partition's log start offset to `offset` (-1: the high
    /// watermark). Whole segments below it go at the next retention pass. Returns the new
    /// log start offset.
    ///
    /// # Errors
    /// [`log::Error::OffsetOutOfRange`] above the high watermark.
    pub fn delete_records(&self, partition: &Partition, offset: i64) -> Result<i64, log::Error> {
        let high_watermark = partition.high_watermark();
        let offset = if offset == -1 { high_watermark } else { offset };
        if offset > high_watermark || offset < 0 {
            return Err(log::Error::OffsetOutOfRange {
                offset,
                log_start_offset: partition.log_start_offset(),
                log_end_offset: high_watermark,
            });
        }
        partition.log.log.lock().unwrap_or_else(|p| p.into_inner()).delete_records(offset)
    }

    /// Deletes a topic (blocking: call from `spawn_blocking`).
    ///
    /// # Errors
    /// [`TopicError::Unknown`] or I/O failures.
    pub fn delete_topic(&self, name: &str) -> Result<(), TopicError> {
        self.with_manager(|m| {
            if m.topic(name).is_none() {
                return Err(TopicError::Unknown(name.to_owned()));
            }
            m.delete_topic(name)?;
            Ok(())
        })?;
        self.kv_views.prune(self);
        Ok(())
    }

    /// Appends one producer batch to a partition and wakes fetches waiting for data.
    ///
    /// Idempotent batches (producer id ≥ 0) are checked against the partition's producer
    /// state first: a retry of one of the producer's last five batches is acknowledged with
    /// its original offsets and not written again.
    ///
    /// If the topic's `flush.messages`/`flush.ms` make a flush due, runs it before returning,
    /// so an acknowledged append is then durable (concurrent producers share one fsync).
    ///
    /// # Errors
    /// [`ProduceError`]: the producer's sequence or epoch, or the log's refusal.
    pub async fn append(&self, partition: &Arc<Partition>, batch: &[u8]) -> Result<AppendInfo, ProduceError> {
        let now = now_ms();
        let header =
            BatchHeader::parse(batch).ok_or(log::Error::InvalidBatch(log::InvalidBatch::TooShort(batch.len())))?;
        // Compacted topics need a key on every record: checked (decompressing if need be)
        // before any lock is taken, so appends to the partition never wait for it.
        let compacted = partition.log.log.lock().unwrap_or_else(|p| p.into_inner()).config().cleanup_policy.compact;
        if compacted && !every_record_has_a_key(batch, &header) {
            return Err(ProduceError::NoKeyForCompactedTopic(partition.topic_partition.clone()));
        }
        let (info, flush_due) = {
            let mut producers = partition.producers.lock().unwrap_or_else(|p| p.into_inner());
            let idempotent = header.producer_id >= 0;
            if idempotent {
                let last = last_seq(header.base_sequence, header.records_count);
                match producers.check(header.producer_id, header.producer_epoch, header.base_sequence, last) {
                    SequenceCheck::Append => {}
                    SequenceCheck::Duplicate(m) => {
                        return Ok(AppendInfo {
                            base_offset: m.base_offset,
                            last_offset: m.last_offset,
                            log_end_offset: partition.log.reader.log_end_offset(),
                            max_timestamp: header.max_timestamp,
                            log_append_time: None,
                            records: header.records_count,
                        });
                    }
                    SequenceCheck::InvalidEpoch => return Err(ProduceError::InvalidProducerEpoch),
                    SequenceCheck::OutOfOrder => return Err(ProduceError::OutOfOrderSequence),
                }
            }
            let mut log = partition.log.log.lock().unwrap_or_else(|p| p.into_inner());
            let info = log.append(batch, AppendOptions { leader_epoch: Some(partition.leader_epoch), now_ms: now })?;
            if idempotent {
                let meta = BatchMeta {
                    first_seq: header.base_sequence,
                    last_seq: last_seq(header.base_sequence, header.records_count),
                    base_offset: info.base_offset,
                    last_offset: info.last_offset,
                };
                producers.record(header.producer_id, header.producer_epoch, meta, info.max_timestamp);
            }
            (info, log.flush_due(now))
        };
        self.appends.send_modify(|v| *v = v.wrapping_add(1));
        partition.traffic.count_in(batch.len(), header.records_count);
        if flush_due {
            let flusher = partition.log.flusher.clone();
            tokio::task::spawn_blocking(move || flusher.flush())
                .await
                .map_err(|e| log::Error::Offline { dir: partition.log.reader.dir().into(), cause: e.to_string() })??;
        }
        Ok(info)
    }

    /// A new producer id (InitProducerId). Blocking: may write `producer-ids`.
    ///
    /// # Errors
    /// The block file cannot be written.
    pub fn allocate_producer_id(&self) -> Result<i64, log::Error> {
        let mut block = self.producer_ids.lock().unwrap_or_else(|p| p.into_inner());
        if block.next >= block.end {
            let end = block.end + PRODUCER_ID_BLOCK;
            log::checkpoint::write_atomically(
                &self.config.data_dir.join("producer-ids"),
                format!("version=1\nnext.block={end}\n").as_bytes(),
            )?;
            block.next = block.end;
            block.end = end;
        }
        let id = block.next;
        block.next += 1;
        Ok(id)
    }

    /// Reads for a consumer: whole batches from `offset`, at most up to the high watermark.
    ///
    /// # Errors
    /// [`log::Error::OffsetOutOfRange`].
    pub fn read(
        &self,
        partition: &Partition,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<LogRead, log::Error> {
        partition.log.reader.read(offset, max_bytes, partition.high_watermark(), min_one)
    }

    /// A receiver that changes after every append (for long-poll fetches).
    pub fn subscribe_appends(&self) -> watch::Receiver<u64> {
        self.appends.subscribe()
    }

    /// One pass of background upkeep (blocking: call from `spawn_blocking`): flushes that
    /// are due, retention when `retention`, checkpoints.
    ///
    /// Works on a snapshot of the partitions without the log manager's lock, so topic
    /// administration does not wait behind fsyncs.
    pub fn maintain(&self, retention: bool) {
        let logs: Vec<(TopicPartition, Arc<PartitionLog>)> =
            self.all_partitions().into_iter().map(|p| (p.topic_partition.clone(), Arc::clone(&p.log))).collect();
        match crate::log::manager::maintain_logs(&self.config.data_dir, &logs, now_ms(), retention, &self.checkpointer)
        {
            Ok(report) => {
                for (tp, e) in report.failures {
                    tracing::error!(topic_partition = %tp, error = %e, "log maintenance failed");
                }
            }
            Err(e) => tracing::error!(error = %e, "writing checkpoints failed"),
        }
    }

    /// Forgets idempotent producers idle for `producer.id.expiration.ms` on every partition
    /// (Kafka's producer id expiration). Returns how many were removed.
    pub fn expire_producers(&self) -> usize {
        let expiration = i64::try_from(self.config.producer_id_expiration.as_millis()).unwrap_or(i64::MAX);
        let now = now_ms();
        let removed: usize = self
            .all_partitions()
            .iter()
            .map(|p| p.producers.lock().unwrap_or_else(|p| p.into_inner()).expire(now, expiration))
            .sum();
        if removed > 0 {
            tracing::debug!(removed, "expired idle producer ids");
        }
        removed
    }

    /// One compaction pass over every compacted partition that is dirty enough (blocking:
    /// call from `spawn_blocking`). Appends and reads continue while it runs.
    pub fn compact(&self) {
        for p in self.all_partitions() {
            match crate::log::manager::compact_log(&p.log, now_ms()) {
                Ok(None) => {}
                Ok(Some(stats)) => {
                    let topic = p.topic_partition.topic.clone();
                    tracing::info!(
                        topic_partition = %p.topic_partition,
                        read = stats.bytes_read,
                        written = stats.bytes_written,
                        records_removed = stats.records_removed,
                        segments = format!("{} -> {}", stats.segments_in, stats.segments_out),
                        "compacted"
                    );
                    let labels = [("topic", topic)];
                    metrics::counter!(crate::metrics::CLEANER_PASSES, &labels).increment(1);
                    metrics::counter!(crate::metrics::CLEANER_BYTES_READ, &labels).increment(stats.bytes_read);
                    metrics::counter!(crate::metrics::CLEANER_BYTES_RECLAIMED, &labels)
                        .increment(stats.bytes_read.saturating_sub(stats.bytes_written));
                    metrics::counter!(crate::metrics::CLEANER_RECORDS_REMOVED, &labels)
                        .increment(stats.records_removed);
                }
                Err(e) => {
                    tracing::error!(topic_partition = %p.topic_partition, error = %e, "compaction failed");
                    metrics::counter!(crate::metrics::CLEANER_ERRORS, "topic" => p.topic_partition.topic.clone())
                        .increment(1);
                }
            }
        }
    }

    /// Clean shutdown of the data directory (blocking). Requests must have finished.
    ///
    /// # Errors
    /// A log could not be closed; the clean-shutdown marker is then not written.
    pub fn shutdown(&self) -> Result<(), log::Error> {
        for p in self.partitions.read().unwrap_or_else(|p| p.into_inner()).values() {
            let producers = p.producers.lock().unwrap_or_else(|p| p.into_inner());
            let end = p.log.reader.log_end_offset();
            if let Err(e) = producers.write_snapshot(p.log.reader.dir(), end) {
                tracing::warn!(topic_partition = %p.topic_partition, error = %e, "could not snapshot producer state");
            }
        }
        self.kv_views.clear();
        self.partitions.write().unwrap_or_else(|p| p.into_inner()).clear();
        let manager = self.logs.lock().unwrap_or_else(|p| p.into_inner()).take();
        match manager {
            Some(m) => m.shutdown(),
            None => Ok(()),
        }
    }
}

/// Whether every record of `batch` has a key (compacted topics need one; the records are
/// read, and decompressed if need be, only for those topics). Malformed records count as
/// keyless: the batch is refused either way.
fn every_record_has_a_key(batch: &[u8], header: &BatchHeader) -> bool {
    let Ok(codec) = header.compression() else { return false };
    let Some(section) = batch.get(log::batch::HEADER_SIZE..header.size()) else { return false };
    let Ok(records) = log::codec::decompress(codec, section) else { return false };
    let mut n = 0;
    for r in log::batch::records_in(&records, header) {
        if r.key.is_none() {
            return false;
        }
        n += 1;
    }
    n == header.records_count
}

/// Where the next block of producer ids starts (0 on a new data directory).
fn read_producer_id_block(data_dir: &std::path::Path) -> Result<ProducerIdBlock, log::Error> {
    let path = data_dir.join("producer-ids");
    let next = match std::fs::read_to_string(&path) {
        Ok(text) => text
            .lines()
            .find_map(|l| l.strip_prefix("next.block=")?.trim().parse().ok())
            .ok_or_else(|| log::Error::CorruptMetadata { path: path.clone(), reason: "no next.block=N line".into() })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(log::Error::Io { action: "read", path, source: e }),
    };
    Ok(ProducerIdBlock { next, end: next })
}

/// `<data_dir>/meta.properties` holds the cluster id (Kafka's file name and key), created on
/// first start.
fn read_or_create_cluster_id(data_dir: &std::path::Path) -> Result<String, log::Error> {
    let path = data_dir.join("meta.properties");
    if let Ok(text) = std::fs::read_to_string(&path) {
        if let Some(id) = text.lines().find_map(|l| l.strip_prefix("cluster.id=")) {
            return Ok(id.trim().to_owned());
        }
    }
    let id = Uuid::new_v4().simple().to_string();
    log::checkpoint::write_atomically(&path, format!("version=1\ncluster.id={id}\n").as_bytes())?;
    Ok(id)
}
