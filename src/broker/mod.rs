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

use tokio::sync::watch;
use uuid::Uuid;

use crate::config::BrokerConfig;
use crate::log::manager::{LogManager, PartitionLog, TopicMetadata};
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
}

impl Partition {
    /// The high watermark: the log end offset while this broker has no followers.
    pub fn high_watermark(&self) -> i64 {
        self.log.reader.log_end_offset()
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log.reader.log_start_offset()
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
    appends: watch::Sender<u64>,
}

impl Broker {
    /// Opens the data directory and builds the broker state.
    ///
    /// # Errors
    /// The data directory cannot be opened (locked, unreadable, corrupt metadata).
    pub fn open(config: BrokerConfig, advertised: (String, u16)) -> Result<Broker, log::Error> {
        let manager = LogManager::open(&config.data_dir, config.log.clone(), now_ms())?;
        let cluster_id = read_or_create_cluster_id(&config.data_dir)?;
        let broker = Broker {
            config,
            cluster_id,
            advertised,
            logs: Mutex::new(None),
            partitions: RwLock::new(HashMap::new()),
            topics: RwLock::new(BTreeMap::new()),
            appends: watch::channel(0).0,
        };
        broker.refresh(&manager);
        *broker.logs.lock().unwrap_or_else(|p| p.into_inner()) = Some(manager);
        Ok(broker)
    }

    /// Rebuilds the caches from the log manager after a change.
    fn refresh(&self, manager: &LogManager) {
        let topics: BTreeMap<String, TopicMetadata> = manager.topics().map(|t| (t.name.clone(), t.clone())).collect();
        let mut partitions = HashMap::new();
        for (tp, log) in manager.logs() {
            let topic_id = topics.get(&tp.topic).and_then(|t| t.topic_id).unwrap_or_else(Uuid::nil);
            let existing = self.partitions.read().unwrap_or_else(|p| p.into_inner()).get(tp).cloned();
            let partition = match existing {
                Some(p) if Arc::ptr_eq(&p.log, log) => p,
                _ => {
                    Arc::new(Partition { topic_partition: tp.clone(), topic_id, log: Arc::clone(log), leader_epoch: 0 })
                }
            };
            partitions.insert(tp.clone(), partition);
        }
        *self.partitions.write().unwrap_or_else(|p| p.into_inner()) = partitions;
        *self.topics.write().unwrap_or_else(|p| p.into_inner()) = topics;
    }

    pub fn partition(&self, tp: &TopicPartition) -> Option<Arc<Partition>> {
        self.partitions.read().unwrap_or_else(|p| p.into_inner()).get(tp).cloned()
    }

    pub fn topic(&self, name: &str) -> Option<TopicMetadata> {
        self.topics.read().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<TopicMetadata> {
        self.topics.read().unwrap_or_else(|p| p.into_inner()).values().find(|t| t.topic_id == Some(id)).cloned()
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
        })
    }

    /// Appends one producer batch to a partition and wakes fetches waiting for data. If the
    /// topic's `flush.messages`/`flush.ms` make a flush due, runs it before returning, so an
    /// acknowledged append is then durable (concurrent producers share one fsync).
    ///
    /// # Errors
    /// The log's refusal (invalid batch, too large, storage error).
    pub async fn append(&self, partition: &Arc<Partition>, batch: &[u8]) -> Result<AppendInfo, log::Error> {
        let now = now_ms();
        let (info, flush_due) = {
            let mut log = partition.log.log.lock().unwrap_or_else(|p| p.into_inner());
            let info = log.append(batch, AppendOptions { leader_epoch: Some(partition.leader_epoch), now_ms: now })?;
            (info, log.flush_due(now))
        };
        self.appends.send_modify(|v| *v = v.wrapping_add(1));
        if flush_due {
            let flusher = partition.log.flusher.clone();
            tokio::task::spawn_blocking(move || flusher.flush())
                .await
                .map_err(|e| log::Error::Offline { dir: partition.log.reader.dir().into(), cause: e.to_string() })??;
        }
        Ok(info)
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
    pub fn maintain(&self, retention: bool) {
        let guard = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = guard.as_ref() {
            match m.maintain(now_ms(), retention) {
                Ok(report) => {
                    for (tp, e) in report.failures {
                        tracing::error!(topic_partition = %tp, error = %e, "log maintenance failed");
                    }
                }
                Err(e) => tracing::error!(error = %e, "writing checkpoints failed"),
            }
        }
    }

    /// Clean shutdown of the data directory (blocking). Requests must have finished.
    ///
    /// # Errors
    /// A log could not be closed; the clean-shutdown marker is then not written.
    pub fn shutdown(&self) -> Result<(), log::Error> {
        self.partitions.write().unwrap_or_else(|p| p.into_inner()).clear();
        let manager = self.logs.lock().unwrap_or_else(|p| p.into_inner()).take();
        match manager {
            Some(m) => m.shutdown(),
            None => Ok(()),
        }
    }
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
