//! The data directory: every partition log in it, the topics' stored configuration, the
//! offset checkpoints and the clean-shutdown marker.
//!
//! ```text
//! <data_dir>/
//!   .lock                               flock'ed while a broker uses the directory
//!   .weir_cleanshutdown                 present only between a clean shutdown and the next open
//!   recovery-point-offset-checkpoint    per partition: everything below is fsynced
//!   log-start-offset-checkpoint         per partition: the log start offset
//!   topics/<topic>.json                 partitions and config overrides (Kafka key names)
//!   <topic>-<partition>/                segments, see `segment`
//! ```
//!
//! # Durability
//! Topic files and checkpoints are written temp → fsync → rename → fsync dir. The marker is
//! removed (and the removal fsynced) before any log is opened for writing, so a crash at any
//! later point is seen as unclean by the next open.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::checkpoint::{self, Checkpointer};
use super::error::{Error, Result};
use super::{cleaner, sync_dir, validate_topic_name, Log, LogConfig, LogFlusher, LogReader, OpenState, TopicPartition};

pub const CLEAN_SHUTDOWN_FILE: &str = ".weir_cleanshutdown";
pub const LOCK_FILE: &str = ".lock";
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
/// Kafka's name for where compaction's last pass ended, per compacted partition.
pub const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";
pub const TOPICS_DIR: &str = "topics";

/// A topic as stored in `topics/<name>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMetadata {
    /// Format version of this file (1).
    pub version: u32,
    pub name: String,
    /// Stable topic id (Kafka's topic UUID), assigned at creation. Files written before ids
    /// existed get one on the next open.
    #[serde(default)]
    pub topic_id: Option<uuid::Uuid>,
    pub partitions: i32,
    /// Overrides of broker defaults, under Kafka's topic config keys.
    pub configs: BTreeMap<String, String>,
}

/// One partition's log with its lock-free read and flush handles.
#[derive(Debug)]
pub struct PartitionLog {
    /// Serializes writers. A std mutex: nothing awaits while holding it.
    pub log: Mutex<Log>,
    pub reader: LogReader,
    pub flusher: LogFlusher,
}

/// What one [`LogManager::maintain`] pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Maintenance {
    pub flushed: usize,
    pub segments_deleted: usize,
    /// Logs that failed (and went offline), with the error.
    pub failures: Vec<(TopicPartition, String)>,
}

/// One upkeep pass over `logs` (a snapshot of a data directory's partitions), needing no lock
/// on the [`LogManager`], so topic administration never waits behind fsyncs: flushes each
/// log whose flush is due, without holding the log's lock during the fsync, so appends
/// continue; with `retention`, applies retention up to each log's end offset (the high
/// watermark of a single broker) and deletes retired segments outside the log's lock; then
/// writes the checkpoints of `data_dir`.
///
/// A log that fails goes offline and is reported; the others are still maintained.
///
/// # Errors
/// Only a failure to write the checkpoints.
pub fn maintain_logs(
    data_dir: &Path,
    logs: &[(TopicPartition, Arc<PartitionLog>)],
    now_ms: i64,
    retention: bool,
    checkpointer: &Checkpointer,
) -> Result<Maintenance> {
    let mut report = Maintenance::default();
    for (tp, p) in logs {
        let outcome = (|| -> Result<()> {
            let due = {
                let log = p.log.lock().unwrap_or_else(|e| e.into_inner());
                log.offline_cause().is_none() && log.flush_due(now_ms)
            };
            if due {
                p.flusher.flush()?; // without the log's lock: appends continue
                report.flushed += 1;
            }
            if !retention {
                return Ok(());
            }
            let retired = {
                let mut log = p.log.lock().unwrap_or_else(|e| e.into_inner());
                if log.offline_cause().is_some() {
                    return Ok(());
                }
                let end = log.log_end_offset();
                log.apply_retention(now_ms, end)?
            };
            report.segments_deleted += retired.delete()?; // outside the log's lock
            Ok(())
        })();
        if let Err(e) = outcome {
            report.failures.push((tp.clone(), e.to_string()));
        }
    }
    write_checkpoints(data_dir, logs, checkpointer)?;
    Ok(report)
}

/// One compaction pass over a log, if it is compacted and dirty enough: plans under the
/// log's lock, cleans without it (appends and reads continue), installs under it. Returns
/// what the pass did, or `None` when there was nothing to do.
///
/// # Errors
/// I/O errors or undecodable batches; a failed install takes the log offline.
pub fn compact_log(p: &PartitionLog, now_ms: i64) -> Result<Option<cleaner::CleanStats>> {
    let plan = {
        let log = p.log.lock().unwrap_or_else(|e| e.into_inner());
        log.plan_cleaning(now_ms)
    };
    let Some(plan) = plan else { return Ok(None) };
    let cleaned = match cleaner::clean(&plan, now_ms) {
        Ok(c) => c,
        Err(e) => {
            // Whatever was written goes; the next open would remove it too.
            let _ = cleaner::finish_interrupted_swaps(&plan.dir);
            return Err(e);
        }
    };
    let mut log = p.log.lock().unwrap_or_else(|e| e.into_inner());
    log.install_cleaned(cleaned).map(Some)
}

/// Writes the recovery-point and log-start-offset checkpoints of `data_dir` for `logs`.
///
/// # Errors
/// I/O failures (the previous checkpoints stay in place).
pub fn write_checkpoints(
    data_dir: &Path,
    logs: &[(TopicPartition, Arc<PartitionLog>)],
    checkpointer: &Checkpointer,
) -> Result<()> {
    let recovery = logs.iter().map(|(tp, p)| (tp.clone(), p.reader.recovery_point())).collect();
    let starts = logs.iter().map(|(tp, p)| (tp.clone(), p.reader.log_start_offset())).collect();
    let cleaned = logs
        .iter()
        .filter(|(_, p)| p.reader.first_dirty_offset() > p.reader.log_start_offset())
        .map(|(tp, p)| (tp.clone(), p.reader.first_dirty_offset()))
        .collect();
    checkpointer.write(&data_dir.join(RECOVERY_POINT_CHECKPOINT), &recovery)?;
    checkpointer.write(&data_dir.join(LOG_START_OFFSET_CHECKPOINT), &starts)?;
    checkpointer.write(&data_dir.join(CLEANER_OFFSET_CHECKPOINT), &cleaned)?;
    Ok(())
}

/// Owner of a data directory.
#[derive(Debug)]
pub struct LogManager {
    data_dir: PathBuf,
    defaults: LogConfig,
    topics: BTreeMap<String, TopicMetadata>,
    logs: BTreeMap<TopicPartition, Arc<PartitionLog>>,
    /// Held (flock'ed) for the manager's life.
    _lock: File,
    /// The one writer of this directory's checkpoint files, shared with whoever runs the
    /// maintenance pass outside the manager (the broker), so its memory of what the files
    /// hold is never stale.
    checkpointer: Arc<Checkpointer>,
    had_clean_shutdown: bool,
}

fn lock_dir(data_dir: &Path) -> Result<File> {
    let path = data_dir.join(LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("open", &path, e))?;
    super::mmap::try_lock_exclusive(&file)
        .map_err(|e| Error::io("lock (is another weir using this data dir?)", &path, e))?;
    Ok(file)
}

fn read_topics(dir: &Path) -> Result<BTreeMap<String, TopicMetadata>> {
    let mut topics = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(topics),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    for entry in entries {
        let path = entry.map_err(|e| Error::io("list", dir, e))?.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let text = std::fs::read(&path).map_err(|e| Error::io("read topic", &path, e))?;
        let meta: TopicMetadata = serde_json::from_slice(&text)
            .map_err(|e| Error::CorruptMetadata { path: path.clone(), reason: e.to_string() })?;
        topics.insert(meta.name.clone(), meta);
    }
    Ok(topics)
}

impl LogManager {
    /// Opens `data_dir` (creating it), recovering every partition log in it.
    ///
    /// # Errors
    /// The directory is locked by another process, unreadable metadata, or a log that
    /// cannot be opened.
    pub fn open(data_dir: &Path, defaults: LogConfig, now_ms: i64) -> Result<LogManager> {
        std::fs::create_dir_all(data_dir.join(TOPICS_DIR)).map_err(|e| Error::io("create data dir", data_dir, e))?;
        let lock = lock_dir(data_dir)?;
        let marker = data_dir.join(CLEAN_SHUTDOWN_FILE);
        let clean = marker.exists();
        if clean {
            std::fs::remove_file(&marker).map_err(|e| Error::io("remove", &marker, e))?;
            sync_dir(data_dir)?;
        }
        let recovery_points = checkpoint::read(&data_dir.join(RECOVERY_POINT_CHECKPOINT))?;
        let log_starts = checkpoint::read(&data_dir.join(LOG_START_OFFSET_CHECKPOINT))?;
        let cleaner_offsets = checkpoint::read(&data_dir.join(CLEANER_OFFSET_CHECKPOINT))?;
        let topics = read_topics(&data_dir.join(TOPICS_DIR))?;
        let needs_id: Vec<TopicMetadata> = topics.values().filter(|t| t.topic_id.is_none()).cloned().collect();
        let mut manager = LogManager {
            data_dir: data_dir.to_owned(),
            defaults,
            topics,
            logs: BTreeMap::new(),
            _lock: lock,
            checkpointer: Arc::default(),
            had_clean_shutdown: clean,
        };
        for mut meta in needs_id {
            meta.topic_id = Some(uuid::Uuid::new_v4());
            manager.write_topic(&meta)?;
            manager.topics.insert(meta.name.clone(), meta);
        }
        let mut dirs = Vec::new();
        for entry in std::fs::read_dir(data_dir).map_err(|e| Error::io("list", data_dir, e))? {
            let entry = entry.map_err(|e| Error::io("list", data_dir, e))?;
            if !entry.file_type().map_err(|e| Error::io("stat", entry.path(), e))?.is_dir() {
                continue;
            }
            if let Some(tp) = entry.file_name().to_str().and_then(TopicPartition::from_dir_name) {
                dirs.push(tp);
            }
        }
        for tp in dirs {
            if !manager.topics.contains_key(&tp.topic) {
                tracing::warn!(topic_partition = %tp, "partition directory without topic metadata; opening with broker defaults");
            }
            let state = OpenState {
                clean_shutdown: clean,
                recovery_point: recovery_points.get(&tp).copied().unwrap_or(0),
                log_start_offset: log_starts.get(&tp).copied().unwrap_or(0),
                cleaner_offset: cleaner_offsets.get(&tp).copied().unwrap_or(0),
            };
            manager.open_log(tp, state, now_ms)?;
        }
        tracing::info!(data_dir = %data_dir.display(), partitions = manager.logs.len(), clean_shutdown = clean, "opened data directory");
        Ok(manager)
    }

    fn open_log(&mut self, tp: TopicPartition, state: OpenState, now_ms: i64) -> Result<Arc<PartitionLog>> {
        let config = Arc::new(self.topic_config(&tp.topic)?);
        let log = Log::open(&self.data_dir, tp.clone(), config, state, now_ms)?;
        let (reader, flusher) = (log.reader(), log.flusher());
        let partition = Arc::new(PartitionLog { log: Mutex::new(log), reader, flusher });
        self.logs.insert(tp, Arc::clone(&partition));
        Ok(partition)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Whether the directory was shut down cleanly before this open.
    pub fn had_clean_shutdown(&self) -> bool {
        self.had_clean_shutdown
    }

    /// The broker defaults with `topic`'s overrides applied.
    ///
    /// # Errors
    /// A stored override that does not parse.
    pub fn topic_config(&self, topic: &str) -> Result<LogConfig> {
        match self.topics.get(topic) {
            Some(meta) => self.defaults.with_overrides(&meta.configs),
            None => Ok(self.defaults.clone()),
        }
    }

    pub fn topics(&self) -> impl Iterator<Item = &TopicMetadata> {
        self.topics.values()
    }

    pub fn topic(&self, name: &str) -> Option<&TopicMetadata> {
        self.topics.get(name)
    }

    pub fn log(&self, tp: &TopicPartition) -> Option<&Arc<PartitionLog>> {
        self.logs.get(tp)
    }

    pub fn logs(&self) -> impl Iterator<Item = (&TopicPartition, &Arc<PartitionLog>)> {
        self.logs.iter()
    }

    fn write_topic(&self, meta: &TopicMetadata) -> Result<()> {
        let path = self.data_dir.join(TOPICS_DIR).join(format!("{}.json", meta.name));
        let json = serde_json::to_vec_pretty(meta).expect("topic metadata always serializes");
        checkpoint::write_atomically(&path, &json)
    }

    /// Creates a topic: validates name and configs, stores its metadata durably, then
    /// creates its partition logs.
    ///
    /// # Errors
    /// An invalid name or config, a topic that exists, or I/O failures.
    pub fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        now_ms: i64,
    ) -> Result<()> {
        validate_topic_name(name)?;
        if self.topics.contains_key(name) {
            return Err(Error::InvalidTopic { name: name.to_owned(), reason: "the topic already exists" });
        }
        if partitions < 1 {
            return Err(Error::InvalidConfig {
                key: "partitions".into(),
                value: partitions.to_string(),
                reason: "must be at least 1".into(),
            });
        }
        self.defaults.with_overrides(&configs)?;
        let meta = TopicMetadata {
            version: 1,
            name: name.to_owned(),
            topic_id: Some(uuid::Uuid::new_v4()),
            partitions,
            configs,
        };
        self.write_topic(&meta)?;
        self.topics.insert(name.to_owned(), meta);
        for p in 0..partitions {
            self.open_log(TopicPartition::new(name, p), OpenState::UNKNOWN, now_ms)?;
        }
        Ok(())
    }

    /// Replaces a topic's config overrides and applies them to its open logs.
    ///
    /// # Errors
    /// An unknown topic, an invalid value, or I/O failures.
    pub fn alter_topic_config(&mut self, name: &str, configs: BTreeMap<String, String>) -> Result<()> {
        let Some(meta) = self.topics.get(name) else {
            return Err(Error::InvalidTopic { name: name.to_owned(), reason: "no such topic" });
        };
        let config = Arc::new(self.defaults.with_overrides(&configs)?);
        let meta = TopicMetadata { configs, ..meta.clone() };
        self.write_topic(&meta)?;
        self.topics.insert(name.to_owned(), meta);
        for (_, p) in self.logs.iter().filter(|(tp, _)| tp.topic == name) {
            p.log.lock().unwrap_or_else(|e| e.into_inner()).set_config(Arc::clone(&config));
        }
        Ok(())
    }

    /// Grows a topic to `partitions` partitions (never shrinks: Kafka cannot either).
    ///
    /// # Errors
    /// An unknown topic, a count not above the current one, or I/O failures.
    pub fn add_partitions(&mut self, name: &str, partitions: i32, now_ms: i64) -> Result<()> {
        let Some(meta) = self.topics.get(name).cloned() else {
            return Err(Error::InvalidTopic { name: name.to_owned(), reason: "no such topic" });
        };
        if partitions <= meta.partitions {
            return Err(Error::InvalidConfig {
                key: "partitions".into(),
                value: partitions.to_string(),
                reason: format!("topic has {} partitions; the count can only grow", meta.partitions),
            });
        }
        let old = meta.partitions;
        let meta = TopicMetadata { partitions, ..meta };
        self.write_topic(&meta)?;
        self.topics.insert(name.to_owned(), meta);
        for p in old..partitions {
            self.open_log(TopicPartition::new(name, p), OpenState::UNKNOWN, now_ms)?;
        }
        Ok(())
    }

    /// Deletes a topic: its metadata file first (so a crash cannot resurrect it half-way),
    /// then its partition directories.
    ///
    /// # Errors
    /// An unknown topic or I/O failures.
    pub fn delete_topic(&mut self, name: &str) -> Result<()> {
        if self.topics.remove(name).is_none() {
            return Err(Error::InvalidTopic { name: name.to_owned(), reason: "no such topic" });
        }
        let path = self.data_dir.join(TOPICS_DIR).join(format!("{name}.json"));
        std::fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
        sync_dir(&self.data_dir.join(TOPICS_DIR))?;
        let doomed: Vec<TopicPartition> = self.logs.keys().filter(|tp| tp.topic == name).cloned().collect();
        for tp in doomed {
            self.logs.remove(&tp);
            let dir = self.data_dir.join(tp.dir_name());
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io("remove partition directory", &dir, e))?;
        }
        sync_dir(&self.data_dir)
    }

    /// [`maintain_logs`] over every log of this directory.
    ///
    /// # Errors
    /// Only a failure to write the checkpoints.
    pub fn maintain(&self, now_ms: i64, retention: bool) -> Result<Maintenance> {
        let logs: Vec<(TopicPartition, Arc<PartitionLog>)> =
            self.logs.iter().map(|(tp, p)| (tp.clone(), Arc::clone(p))).collect();
        maintain_logs(&self.data_dir, &logs, now_ms, retention, &self.checkpointer)
    }

    /// The writer of this directory's checkpoint files, for [`maintain_logs`] run outside
    /// the manager.
    pub fn checkpointer(&self) -> Arc<Checkpointer> {
        Arc::clone(&self.checkpointer)
    }

    /// Writes the recovery-point and log-start-offset checkpoints for every log.
    ///
    /// # Errors
    /// I/O failures (the previous checkpoints stay in place).
    pub fn checkpoint(&self) -> Result<()> {
        let logs: Vec<(TopicPartition, Arc<PartitionLog>)> =
            self.logs.iter().map(|(tp, p)| (tp.clone(), Arc::clone(p))).collect();
        write_checkpoints(&self.data_dir, &logs, &self.checkpointer)
    }

    /// Clean shutdown: closes every log (flush, trim), writes the checkpoints, then the
    /// marker. If any step fails the marker is not written, so the next open recovers.
    ///
    /// # Errors
    /// The first failure.
    pub fn shutdown(mut self) -> Result<()> {
        let logs = std::mem::take(&mut self.logs);
        let mut recovery = BTreeMap::new();
        let mut starts = BTreeMap::new();
        let mut cleaned = BTreeMap::new();
        for (tp, p) in logs {
            let log = match Arc::try_unwrap(p) {
                Ok(p) => p.log.into_inner().unwrap_or_else(|e| e.into_inner()),
                Err(_) => {
                    return Err(Error::Offline {
                        dir: self.data_dir.join(tp.dir_name()),
                        cause: "log still in use at shutdown".into(),
                    })
                }
            };
            starts.insert(tp.clone(), log.log_start_offset());
            let first_dirty = log.reader().first_dirty_offset();
            if first_dirty > log.log_start_offset() {
                cleaned.insert(tp.clone(), first_dirty);
            }
            recovery.insert(tp, log.log_end_offset());
            log.close()?;
        }
        checkpoint::write(&self.data_dir.join(RECOVERY_POINT_CHECKPOINT), &recovery)?;
        checkpoint::write(&self.data_dir.join(LOG_START_OFFSET_CHECKPOINT), &starts)?;
        checkpoint::write(&self.data_dir.join(CLEANER_OFFSET_CHECKPOINT), &cleaned)?;
        checkpoint::write_atomically(&self.data_dir.join(CLEAN_SHUTDOWN_FILE), b"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::BatchBuilder;
    use crate::log::AppendOptions;

    fn append(m: &LogManager, tp: &TopicPartition, ts: i64) {
        let mut b = BatchBuilder::new();
        b.record(ts, Some(b"k"), Some(&[0u8; 300]), &[]);
        let bytes = b.build();
        let p = m.log(tp).expect("log");
        p.log.lock().expect("lock").append(&bytes, AppendOptions { leader_epoch: None, now_ms: ts }).expect("append");
    }

    #[test]
    fn topics_and_their_configs_survive_a_restart_and_overrides_merge_over_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut m = LogManager::open(dir.path(), LogConfig::default(), 0).expect("open");
        let configs = [("retention.ms".to_owned(), "1000".to_owned())].into();
        m.create_topic("orders", 3, configs, 0).expect("create");
        assert!(m.create_topic("orders", 1, BTreeMap::new(), 0).is_err(), "duplicate");
        assert!(m.create_topic("bad/name", 1, BTreeMap::new(), 0).is_err());
        let bad = [("segment.bytes".to_owned(), "lots".to_owned())].into();
        assert!(m.create_topic("other", 1, bad, 0).is_err());
        m.shutdown().expect("shutdown");
        let mut m = LogManager::open(dir.path(), LogConfig::default(), 0).expect("reopen");
        assert!(m.had_clean_shutdown());
        assert_eq!(m.topic("orders").expect("topic").partitions, 3);
        assert_eq!(m.topic_config("orders").expect("config").retention_ms, Some(1000));
        assert_eq!(m.logs().count(), 3);
        m.alter_topic_config("orders", [("retention.ms".to_owned(), "5".to_owned())].into()).expect("alter");
        let tp = TopicPartition::new("orders", 0);
        assert_eq!(m.log(&tp).expect("log").log.lock().expect("lock").config().retention_ms, Some(5));
        m.delete_topic("orders").expect("delete");
        assert!(!dir.path().join("orders-0").exists());
        assert!(m.topic("orders").is_none());
    }

    #[test]
    fn a_second_manager_cannot_open_a_locked_data_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _m = LogManager::open(dir.path(), LogConfig::default(), 0).expect("open");
        let e = LogManager::open(dir.path(), LogConfig::default(), 0).expect_err("locked");
        assert!(e.to_string().contains("another weir"), "{e}");
    }

    #[test]
    fn maintain_flushes_what_is_due_applies_retention_and_checkpoints() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut m = LogManager::open(dir.path(), LogConfig::default(), 0).expect("open");
        let configs = [
            ("flush.messages".to_owned(), "2".to_owned()),
            ("retention.ms".to_owned(), "1000".to_owned()),
            ("segment.bytes".to_owned(), "1024".to_owned()),
        ]
        .into();
        m.create_topic("t", 1, configs, 0).expect("create");
        let tp = TopicPartition::new("t", 0);
        for i in 0..10 {
            append(&m, &tp, 10_000 + i);
        }
        let report = m.maintain(10_010, true).expect("maintain");
        assert_eq!(report.flushed, 1);
        assert_eq!(report.segments_deleted, 0);
        let reader = m.log(&tp).expect("log").reader.clone();
        assert_eq!(reader.recovery_point(), 10);
        let text = std::fs::read_to_string(dir.path().join(RECOVERY_POINT_CHECKPOINT)).expect("checkpoint");
        assert_eq!(text, "0\n1\nt 0 10\n");
        let report = m.maintain(20_000, true).expect("maintain");
        assert!(report.segments_deleted > 0);
        assert_eq!(reader.log_start_offset(), 10);
        assert!(report.failures.is_empty());
    }
}
