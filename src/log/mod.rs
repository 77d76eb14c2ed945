//! The partition log: segmented, memory-mapped, indexed, crash-safe storage.
//!
//! This module owns every byte weir writes under a partition directory
//! (`<data_dir>/<topic>-<partition>/`) and the per-data-dir files of [`manager`]. The format is
//! specified in `storage-format.md`; it is Kafka's. It is synchronous: nothing here awaits.
//!
//! # Layout
//! - [`batch`]: the record batch header — validation, offset assignment, in-place stamps.
//! - [`mmap`]: memory maps; the only `unsafe` code.
//! - [`index`], [`offset_index`], [`time_index`]: the sparse indexes.
//! - [`segment`]: [`segment::ActiveSegment`] appends, [`segment::SealedSegment`] is read-only,
//!   [`segment::SegmentView`] is what readers share.
//! - [`recovery`]: loading segment files after a clean or an unclean shutdown.
//! - [`retention`]: which segments retention deletes (pure decisions).
//! - [`config`]: typed topic configuration under Kafka's keys.
//! - [`manager`]: the data directory — topics, checkpoints, clean-shutdown marker.
//! - [`verify`]: offline checks behind `weir log dump` / `weir log verify`.
//!
//! # Concurrency
//! [`Log`] is the writer side: `&mut self` for append, roll, truncate and retention; the
//! caller serializes writers (the partition lock). [`LogReader`] is a cheap clone that reads
//! without taking that lock: appends publish with `Release` stores (bytes first, then index
//! entries, then the log end offset), readers load with `Acquire`, and the segment list is
//! swapped under a `RwLock` held only for a pointer copy — so reads never wait for an
//! append. [`LogFlusher`] fsyncs from the same shared state, also without the writer lock,
//! so appends never wait for an fsync and an fsync never waits for the appender (with a
//! `std` mutex an appender in a tight loop starved a flusher that needed the lock: measured
//! group commit went from 39% to 48% of the no-fsync append rate when flushing stopped
//! taking it).
//!
//! # Durability
//! - **`kill -9`**: every append that returned survives. Its bytes were written into the page
//!   cache (by `pwritev`, or stored through a shared writable map: see [`mmap`]), which the
//!   kernel writes back even though the process is gone.
//! - **Power loss**: what was flushed survives — everything below the recovery point. Flushes
//!   happen per `flush.messages` / `flush.ms` (the caller asks [`Log::flush_due`] and runs
//!   a [`LogFlusher`]; [`manager::LogManager::maintain`] does both), on roll
//!   (via `flush_due`), and on clean shutdown. A flush fdatasyncs the `.log` of every segment
//!   holding unflushed offsets, and the directory when files were created or deleted since
//!   the last flush.
//! - **A failed fsync or write** takes the log offline: the error is kept and every later
//!   write returns [`Error::Offline`]. The fsync is never retried — after a failed fsync the
//!   page cache may already have dropped the dirty pages, so a retry could report success
//!   for data that is gone.
//! - **A full disk** is found before writing: space is reserved with `posix_fallocate` ahead
//!   of every write, so the append fails with [`Error::DiskFull`] (nothing written, the log
//!   stays online) — never a SIGBUS on a map, never a late ENOSPC from writeback or fsync.

pub mod batch;
pub mod checkpoint;
pub mod cleaner;
pub mod codec;
pub mod config;
pub mod error;
pub mod index;
pub mod manager;
pub mod mmap;
pub mod offset_index;
pub mod producer_state;
pub mod recovery;
pub mod retention;
pub mod segment;
pub mod time_index;
pub mod verify;

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;

pub use self::batch::TimestampType;
pub use self::config::LogConfig;
pub use self::error::{Error, InvalidBatch, Result};
use self::recovery::LoadMode;
use self::retention::{RetentionInputs, RetentionReason, SegmentFacts};
use self::segment::{ActiveSegment, SealedSegment, SegmentLimits, SegmentView};

/// A topic name and partition number; its directory is `<topic>-<partition>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition { topic: topic.into(), partition }
    }

    /// The partition directory name.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }

    /// Parses a directory name `<topic>-<partition>`.
    pub fn from_dir_name(name: &str) -> Option<TopicPartition> {
        let (topic, partition) = name.rsplit_once('-')?;
        if topic.is_empty() || partition.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        validate_topic_name(topic).ok()?;
        Some(TopicPartition::new(topic, partition.parse().ok()?))
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Kafka's topic name rules: 1..=249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
///
/// # Errors
/// [`Error::InvalidTopic`] saying which rule is broken.
pub fn validate_topic_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "the name is empty"
    } else if name == "." || name == ".." {
        "'.' and '..' are not allowed"
    } else if name.len() > 249 {
        "longer than 249 characters"
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-') {
        "only ASCII letters, digits, '.', '_' and '-' are allowed"
    } else {
        return Ok(());
    };
    Err(Error::InvalidTopic { name: name.to_owned(), reason })
}

/// A `(topic, partition)` pair however it is stored, so maps keyed by [`TopicPartition`] can
/// be searched with a borrowed name: `map.get(&("t", 0) as &dyn PartitionKey)` (the request
/// paths would otherwise copy the topic name for every lookup). Hashes and compares exactly as
/// `TopicPartition`'s derived impls do, which `Borrow` requires.
pub trait PartitionKey {
    fn topic(&self) -> &str;
    fn partition(&self) -> i32;
}

impl PartitionKey for TopicPartition {
    fn topic(&self) -> &str {
        &self.topic
    }
    fn partition(&self) -> i32 {
        self.partition
    }
}

impl PartitionKey for (&str, i32) {
    fn topic(&self) -> &str {
        self.0
    }
    fn partition(&self) -> i32 {
        self.1
    }
}

impl<'a> std::borrow::Borrow<dyn PartitionKey + 'a> for TopicPartition {
    fn borrow(&self) -> &(dyn PartitionKey + 'a) {
        self
    }
}

impl std::hash::Hash for dyn PartitionKey + '_ {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Field by field, as `#[derive(Hash)]` on `TopicPartition` does.
        self.topic().hash(state);
        self.partition().hash(state);
    }
}

impl PartialEq for dyn PartitionKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.topic() == other.topic() && self.partition() == other.partition()
    }
}

impl Eq for dyn PartitionKey + '_ {}

/// How a log is opened: what the data directory's checkpoints and marker say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenState {
    /// The clean-shutdown marker was present.
    pub clean_shutdown: bool,
    /// Offset below which everything was flushed (from the recovery-point checkpoint).
    pub recovery_point: i64,
    /// From the log-start-offset checkpoint.
    pub log_start_offset: i64,
    /// From the cleaner-offset-checkpoint: where compaction's last pass ended (0: unknown).
    pub cleaner_offset: i64,
}

impl OpenState {
    /// A log with no checkpoints: recover everything.
    pub const UNKNOWN: OpenState =
        OpenState { clean_shutdown: false, recovery_point: 0, log_start_offset: 0, cleaner_offset: 0 };
}

/// Per-append options.
#[derive(Debug, Clone, Copy)]
pub struct AppendOptions {
    /// Stamped into the batch's partition leader epoch field.
    pub leader_epoch: Option<i32>,
    /// Wall-clock time: LogAppendTime, `segment.ms`, `flush.ms`.
    pub now_ms: i64,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    pub log_end_offset: i64,
    pub max_timestamp: i64,
    /// Set when the topic stamps LogAppendTime: the time stamped.
    pub log_append_time: Option<i64>,
    pub records: i32,
}

/// Data returned by a read.
#[derive(Debug, Clone)]
pub struct LogRead {
    /// Whole batches; a zero-copy slice of a segment map (empty when nothing is available).
    pub records: Bytes,
    /// Offset after the last batch returned (the requested offset when empty).
    pub next_offset: i64,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// A log's segments at one moment ([`LogReader::segments_now`]): point reads of single
/// batches that borrow from the segment maps — no reference count taken per read, no shared
/// lock touched (the key-value view's pipelined GETs run many reads on one snapshot). A
/// snapshot keeps its segments mapped, so hold it briefly: segments deleted meanwhile stay on
/// disk until it is dropped.
pub struct Segments {
    segments: Arc<Vec<Arc<SegmentView>>>,
    log_end_offset: i64,
}

impl Segments {
    /// The whole batch that holds `offset` (bytes and parsed header), borrowed from its
    /// segment's map; `None` when no batch at or below the snapshot's log end holds it (it
    /// was removed by compaction or retention, or is not written yet).
    pub fn batch_at(&self, offset: i64) -> Option<(&[u8], batch::BatchHeader)> {
        if offset >= self.log_end_offset {
            return None;
        }
        let i = self.segments.partition_point(|s| s.base_offset() <= offset).checked_sub(1)?;
        let segment = &self.segments[i];
        let found = segment.translate_offset(offset)?;
        let header = found.header;
        if header.base_offset > offset {
            return None;
        }
        let start = found.position as usize;
        let bytes = segment.log_bytes().get(start..start + header.size())?;
        Some((bytes, header))
    }
}

impl fmt::Debug for Segments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segments").field("count", &self.segments.len()).finish_non_exhaustive()
    }
}

/// State shared between the log, its readers and its flushers.
#[derive(Debug)]
struct Shared {
    topic_partition: TopicPartition,
    dir: PathBuf,
    /// Sealed segments then the active one, by base offset. The lock is held only to clone or
    /// replace the `Arc`.
    segments: RwLock<Arc<Vec<Arc<SegmentView>>>>,
    log_start_offset: AtomicI64,
    log_end_offset: AtomicI64,
    /// Mirror of `recovery.point`, for lock-free reads.
    recovery_point: AtomicI64,
    /// The recovery point and a count of truncations, changed together under a lock held only
    /// for the update (never across I/O), so that a flush which raced a truncation cannot
    /// raise the recovery point past the truncated end.
    recovery: Mutex<Recovery>,
    /// Segment files were created or deleted since the last flush: fsync the directory.
    dir_dirty: AtomicBool,
    /// Set by a failed write or fsync; every later write is refused.
    offline: Mutex<Option<String>>,
    /// Compaction: offsets below this were compacted by the last pass.
    first_dirty: AtomicI64,
}

#[derive(Debug)]
struct Recovery {
    point: i64,
    truncations: u64,
}

impl Shared {
    fn check_online(&self) -> Result<()> {
        match &*self.offline.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(cause) => Err(Error::Offline { dir: self.dir.clone(), cause: cause.clone() }),
            None => Ok(()),
        }
    }

    /// Takes the log offline after a failed write or fsync and returns the error.
    fn poison(&self, error: Error) -> Error {
        tracing::error!(topic_partition = %self.topic_partition, error = %error, "taking log offline");
        self.offline.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(|| error.to_string());
        error
    }

    /// After a truncation: the recovery point may not exceed the new end, and flushes that
    /// began before the truncation must not raise it.
    fn truncated(&self, log_end_offset: i64, reset_to: Option<i64>) {
        let mut r = self.recovery.lock().unwrap_or_else(|p| p.into_inner());
        r.truncations += 1;
        r.point = reset_to.unwrap_or(r.point).min(log_end_offset);
        self.recovery_point.store(r.point, Ordering::Release);
    }
}

/// A cheap, cloneable read handle: never waits for appends.
#[derive(Debug, Clone)]
pub struct LogReader {
    shared: Arc<Shared>,
}

impl LogReader {
    pub fn log_start_offset(&self) -> i64 {
        self.shared.log_start_offset.load(Ordering::Acquire)
    }

    pub fn log_end_offset(&self) -> i64 {
        self.shared.log_end_offset.load(Ordering::Acquire)
    }

    /// Offset below which every record is durable on disk (fsynced).
    pub fn recovery_point(&self) -> i64 {
        self.shared.recovery_point.load(Ordering::Acquire)
    }

    /// Where compaction's last pass ended (the log start before any pass).
    pub fn first_dirty_offset(&self) -> i64 {
        self.shared.first_dirty.load(Ordering::Acquire)
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    fn segments(&self) -> Arc<Vec<Arc<SegmentView>>> {
        Arc::clone(&self.shared.segments.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Total bytes of all segments.
    pub fn size(&self) -> u64 {
        self.segments().iter().map(|s| s.size()).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.segments().len()
    }

    /// Reads whole batches starting with the batch that contains `offset` (as Kafka, that
    /// batch may begin before `offset`), up to `max_bytes` — but at least one batch when
    /// `min_one` — and never a batch starting at or after `max_offset` (the high watermark
    /// for consumers). Reads from one segment at a time.
    ///
    /// # Errors
    /// [`Error::OffsetOutOfRange`] when `offset` is below the log start offset or above the
    /// log end offset.
    pub fn read(&self, offset: i64, max_bytes: usize, max_offset: i64, min_one: bool) -> Result<LogRead> {
        let log_end_offset = self.log_end_offset();
        let log_start_offset = self.log_start_offset();
        if offset < log_start_offset || offset > log_end_offset {
            return Err(Error::OffsetOutOfRange { offset, log_start_offset, log_end_offset });
        }
        let max_offset = max_offset.min(log_end_offset);
        if offset >= max_offset {
            // A consumer at the end (every long-polling Fetch): nothing to read, no index
            // lookup or header scan needed to find that out.
            return Ok(LogRead { records: Bytes::new(), next_offset: offset, log_start_offset, log_end_offset });
        }
        let segments = self.segments();
        let first = segments.partition_point(|s| s.base_offset() <= offset).saturating_sub(1);
        for segment in &segments[first..] {
            if segment.base_offset() >= max_offset {
                break;
            }
            if let Some(r) = segment.read(offset, max_bytes, max_offset, min_one) {
                return Ok(LogRead {
                    records: r.records,
                    next_offset: r.next_offset,
                    log_start_offset,
                    log_end_offset,
                });
            }
        }
        Ok(LogRead { records: Bytes::new(), next_offset: offset, log_start_offset, log_end_offset })
    }

    /// The segments as they stand now, for many point reads without a lookup each: see
    /// [`Segments`].
    pub fn segments_now(&self) -> Segments {
        Segments { segments: self.segments(), log_end_offset: self.log_end_offset() }
    }

    /// ListOffsets by timestamp: the first offset (≥ the log start offset) whose record
    /// timestamp is ≥ `timestamp`, with that timestamp; `None` when there is none.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Option<(i64, i64)> {
        let start = self.log_start_offset();
        self.segments().iter().find_map(|s| s.find_offset_by_timestamp(timestamp, start))
    }

    /// Calls `visit` with the header of every batch whose last offset is ≥ `from`, in order
    /// (producer-state rebuilds read only headers).
    pub fn for_each_batch_header(&self, from: i64, mut visit: impl FnMut(&batch::BatchHeader)) {
        let end = self.log_end_offset();
        let segments = self.segments();
        let first = segments.partition_point(|s| s.base_offset() <= from).saturating_sub(1);
        for segment in &segments[first..] {
            for b in batch::HeaderIter::new(segment.log_bytes(), 0) {
                if b.header.base_offset >= end {
                    return;
                }
                if b.header.last_offset() >= from {
                    visit(&b.header);
                }
            }
        }
    }

    /// ListOffsets MAX_TIMESTAMP: the largest timestamp and the last offset of its batch.
    pub fn max_timestamp_offset(&self) -> Option<(i64, i64)> {
        let mut best: Option<(i64, i64)> = None;
        for s in self.segments().iter() {
            let ts = s.max_timestamp();
            if ts >= 0 && best.is_none_or(|(b, _)| ts > b) {
                best = Some((ts, s.offset_of_max_timestamp()));
            }
        }
        best
    }
}

/// Flushes a log without its writer: cheap to clone, needs no lock on the [`Log`], so
/// fsyncs run while appends continue and appends never wait for an fsync (group commit: one
/// fsync covers every append published before it started).
#[derive(Debug, Clone)]
pub struct LogFlusher {
    shared: Arc<Shared>,
}

impl LogFlusher {
    /// Makes everything appended before this call durable: fdatasyncs the `.log` of every
    /// segment holding offsets between the recovery point and the log end offset, and the
    /// directory if segment files were created or deleted, then advances the recovery point.
    /// Returns the recovery point.
    ///
    /// # Durability
    /// On success every record below the returned offset survives power loss.
    ///
    /// # Errors
    /// [`Error::Offline`], or the failed fsync, after which the log is offline (a failed
    /// fsync is never retried: the kernel may already have dropped the dirty pages).
    pub fn flush(&self) -> Result<i64> {
        let shared = &self.shared;
        shared.check_online()?;
        let truncations = shared.recovery.lock().unwrap_or_else(|p| p.into_inner()).truncations;
        // Load the end before the segment list: the list is published before the end moves,
        // so every segment holding offsets below `target` is in the snapshot.
        let target = shared.log_end_offset.load(Ordering::Acquire);
        let point = shared.recovery_point.load(Ordering::Acquire);
        let dir_dirty = shared.dir_dirty.swap(false, Ordering::AcqRel);
        if target <= point && !dir_dirty {
            return Ok(point);
        }
        let segments = Arc::clone(&shared.segments.read().unwrap_or_else(|p| p.into_inner()));
        let synced = (|| {
            for s in segments.iter() {
                if s.next_offset() > point && s.base_offset() < target {
                    s.sync_log()?;
                }
                s.sync_indexes_if_sealed()?;
            }
            if dir_dirty {
                sync_dir(&shared.dir)?;
            }
            Ok(())
        })();
        if let Err(e) = synced {
            return Err(shared.poison(e));
        }
        let mut r = shared.recovery.lock().unwrap_or_else(|p| p.into_inner());
        if r.truncations == truncations && target > r.point {
            r.point = target;
            shared.recovery_point.store(target, Ordering::Release);
        }
        Ok(r.point)
    }

    /// The offset below which every record is durable.
    pub fn recovery_point(&self) -> i64 {
        self.shared.recovery_point.load(Ordering::Acquire)
    }
}

/// Segments taken out of a log by retention. Readers that start now no longer see them
/// (the log start offset moved past them); readers already holding their maps keep reading.
/// If [`Retired::delete`] never runs (a crash), the next open deletes them: they end at or
/// below the checkpointed log start offset.
#[derive(Debug)]
#[must_use = "retired segments' files are deleted only by Retired::delete"]
pub struct Retired {
    segments: Vec<SealedSegment>,
    dir: PathBuf,
    pub reason: Option<RetentionReason>,
}

impl Retired {
    pub fn count(&self) -> usize {
        self.segments.len()
    }

    /// Deletes the files and fsyncs the directory. Returns how many segments were deleted.
    ///
    /// # Errors
    /// A failed unlink or directory fsync (the files left behind are deleted on next open).
    pub fn delete(self) -> Result<usize> {
        let n = self.segments.len();
        for s in self.segments {
            s.delete()?;
        }
        if n > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(n)
    }
}

/// fsyncs a directory, making file creations, renames and deletions in it durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io("fsync directory", dir, e))
}

/// The writer side of one partition's log. See the module docs for concurrency and durability.
#[derive(Debug)]
pub struct Log {
    topic_partition: TopicPartition,
    dir: PathBuf,
    config: Arc<LogConfig>,
    sealed: VecDeque<SealedSegment>,
    active: ActiveSegment,
    shared: Arc<Shared>,
    /// The first append not yet covered by a flush when it was made: (base offset, time).
    /// What `flush.ms` measures from (approximately: see [`Log::flush_due`]).
    unflushed_since: Option<(i64, i64)>,
}

fn limits(config: &LogConfig) -> SegmentLimits {
    SegmentLimits {
        segment_bytes: config.segment_bytes,
        index_interval_bytes: config.index_interval_bytes,
        max_index_entries: config.max_index_entries(),
        max_time_index_entries: config.max_time_index_entries(),
    }
}

impl Log {
    /// Opens (creating if needed) the log of `topic_partition` under `data_dir`, recovering it
    /// as `state` requires: after a clean shutdown segments are loaded without a full scan;
    /// otherwise every segment from the one containing the recovery point is scanned, a torn
    /// or corrupt tail is cut off (with every later segment), and indexes are rebuilt.
    ///
    /// # Errors
    /// I/O errors opening, mapping or repairing files.
    pub fn open(
        data_dir: &Path,
        topic_partition: TopicPartition,
        config: Arc<LogConfig>,
        state: OpenState,
        now_ms: i64,
    ) -> Result<Log> {
        let dir = data_dir.join(topic_partition.dir_name());
        let created = !dir.exists();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create partition directory", &dir, e))?;
        if created {
            sync_dir(data_dir)?;
        }
        cleaner::finish_interrupted_swaps(&dir)?;
        let mut bases = list_segments(&dir)?;
        // Segments that end at or below the log start offset were deleted by retention
        // before a crash made the deletion undone: finish it.
        while bases.len() > 1 && bases[1] <= state.log_start_offset {
            let base = bases.remove(0);
            segment::delete_segment_files(&dir, base)?;
        }
        let limits = limits(&config);
        let mut loaded: Vec<(i64, segment::LoadedState)> = Vec::with_capacity(bases.len());
        for (i, &base) in bases.iter().enumerate() {
            let is_last = i + 1 == bases.len();
            let covers_recovery_point = bases.get(i + 1).is_none_or(|&next| next > state.recovery_point);
            let mode = if state.clean_shutdown || !covers_recovery_point { LoadMode::Load } else { LoadMode::Recover };
            let outcome = recovery::load_segment(&dir, base, config.index_interval_bytes, mode, !is_last)?;
            if let Some((position, reason)) = &outcome.truncated {
                tracing::warn!(%topic_partition, segment = base, position, reason, "truncated a torn or corrupt log tail");
                loaded.push((base, outcome.state));
                for &later in &bases[i + 1..] {
                    tracing::warn!(%topic_partition, segment = later, "deleting a segment after a corrupt one");
                    segment::delete_segment_files(&dir, later)?;
                }
                break;
            }
            if outcome.rebuilt && mode == LoadMode::Load {
                tracing::info!(%topic_partition, segment = base, "rebuilt indexes that did not check out");
            }
            loaded.push((base, outcome.state));
        }
        let log_start_default = loaded.first().map_or(state.log_start_offset, |(b, _)| *b);
        let mut sealed = VecDeque::with_capacity(loaded.len());
        let active = match loaded.pop() {
            Some((base, last)) => {
                for (b, s) in loaded {
                    sealed.push_back(SealedSegment::open(&dir, b, s)?);
                }
                ActiveSegment::open(&dir, base, limits, last, now_ms)?
            }
            None => ActiveSegment::create(&dir, state.log_start_offset.max(0), limits, now_ms)?,
        };
        let log_end_offset = active.view().next_offset();
        let log_start_offset = state.log_start_offset.max(log_start_default).min(log_end_offset);
        let recovery_point =
            if state.clean_shutdown { log_end_offset } else { state.recovery_point.min(log_end_offset) };
        let shared = Arc::new(Shared {
            topic_partition: topic_partition.clone(),
            dir: dir.clone(),
            segments: RwLock::new(Arc::new(Vec::new())),
            log_start_offset: AtomicI64::new(log_start_offset),
            log_end_offset: AtomicI64::new(log_end_offset),
            recovery_point: AtomicI64::new(recovery_point),
            recovery: Mutex::new(Recovery { point: recovery_point, truncations: 0 }),
            dir_dirty: AtomicBool::new(created),
            offline: Mutex::new(None),
            first_dirty: AtomicI64::new(state.cleaner_offset.clamp(log_start_offset, log_end_offset)),
        });
        let log = Log { topic_partition, dir, config, sealed, active, shared, unflushed_since: None };
        log.publish_segments();
        Ok(log)
    }

    pub fn topic_partition(&self) -> &TopicPartition {
        &self.topic_partition
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &Arc<LogConfig> {
        &self.config
    }

    /// Applies a new configuration; it governs the next segment and every later decision.
    pub fn set_config(&mut self, config: Arc<LogConfig>) {
        self.config = config;
    }

    pub fn reader(&self) -> LogReader {
        LogReader { shared: Arc::clone(&self.shared) }
    }

    pub fn log_end_offset(&self) -> i64 {
        self.active.view().next_offset()
    }

    pub fn log_start_offset(&self) -> i64 {
        self.shared.log_start_offset.load(Ordering::Acquire)
    }

    pub fn recovery_point(&self) -> i64 {
        self.shared.recovery_point.load(Ordering::Acquire)
    }

    /// The error that took this log offline, if any.
    pub fn offline_cause(&self) -> Option<String> {
        self.shared.offline.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn check_online(&self) -> Result<()> {
        self.shared.check_online()
    }

    /// Takes the log offline after a failed write or fsync and returns the error.
    fn poison(&self, error: Error) -> Error {
        self.shared.poison(error)
    }

    /// A handle that flushes this log without its writer lock.
    pub fn flusher(&self) -> LogFlusher {
        LogFlusher { shared: Arc::clone(&self.shared) }
    }

    fn publish_segments(&self) {
        let mut views: Vec<Arc<SegmentView>> = self.sealed.iter().map(|s| Arc::clone(s.view())).collect();
        views.push(Arc::clone(self.active.view()));
        *self.shared.segments.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(views);
    }

    fn publish_end(&self) {
        self.shared.log_end_offset.store(self.log_end_offset(), Ordering::Release);
    }

    /// Appends one record batch as a producer sent it: validates its header (length, magic,
    /// CRC32C, counts, timestamps), assigns offsets by rewriting the base offset in the stored
    /// header, stamps the leader epoch and (per `message.timestamp.type`) LogAppendTime, rolls
    /// the active segment if due, and writes the patched 61-byte header and the untouched body
    /// into the segment with one `pwritev` (or, for a small batch that fits the page the last
    /// one ended in, one copy through the writable map): weir makes no copy of its own.
    ///
    /// The batch is readable when this returns; it is durable after the next flush.
    ///
    /// # Errors
    /// [`Error::InvalidBatch`], [`Error::BatchTooLarge`] (nothing written);
    /// [`Error::DiskFull`] (nothing written, log stays online); [`Error::Offline`];
    /// I/O errors while rolling (the log goes offline).
    pub fn append(&mut self, batch: &[u8], options: AppendOptions) -> Result<AppendInfo> {
        self.check_online()?;
        let mut header = batch::validate(batch)?;
        let limits =
            [(self.config.max_message_bytes, "max.message.bytes"), (self.config.segment_bytes, "segment.bytes")];
        for (limit, setting) in limits {
            if batch.len() > limit as usize {
                return Err(Error::BatchTooLarge { size: batch.len(), limit: limit as usize, setting });
            }
        }
        let base_offset = self.log_end_offset();
        let log_append_time =
            (self.config.message_timestamp_type == TimestampType::LogAppendTime).then_some(options.now_ms);
        let patch = batch::HeaderPatch { base_offset, partition_leader_epoch: options.leader_epoch, log_append_time };
        let head = batch::patched_header(batch, patch);
        header.base_offset = base_offset;
        header.partition_leader_epoch = options.leader_epoch.unwrap_or(header.partition_leader_epoch);
        header.max_timestamp = log_append_time.unwrap_or(header.max_timestamp);
        let incoming = segment::IncomingBatch {
            size: batch.len(),
            last_offset: header.last_offset(),
            max_timestamp: header.max_timestamp,
        };
        self.maybe_roll(incoming, options.now_ms)?;
        match self.active.append(&head, &batch[batch::HEADER_SIZE..], &header) {
            Ok(()) => {}
            Err(e @ Error::DiskFull { .. }) => return Err(e),
            Err(e) => return Err(self.poison(e)),
        }
        self.publish_end();
        match self.unflushed_since {
            Some((offset, _)) if offset >= self.recovery_point() => {}
            _ => self.unflushed_since = Some((base_offset, options.now_ms)),
        }
        Ok(AppendInfo {
            base_offset,
            last_offset: header.last_offset(),
            log_end_offset: header.next_offset(),
            max_timestamp: header.max_timestamp,
            log_append_time,
            records: header.records_count,
        })
    }

    fn maybe_roll(&mut self, incoming: segment::IncomingBatch, now_ms: i64) -> Result<()> {
        let c = &self.config;
        let reason = segment::should_roll(self.active.roll_inputs(), incoming, now_ms, c.segment_bytes, c.segment_ms);
        if let Some(reason) = reason {
            tracing::debug!(topic_partition = %self.topic_partition, ?reason, "rolling segment");
            self.roll(now_ms)?;
        }
        Ok(())
    }

    /// Seals the active segment and starts a new one at the log end offset. Does nothing if
    /// the active segment is empty.
    ///
    /// # Errors
    /// [`Error::DiskFull`] with nothing changed; other I/O errors take the log offline.
    pub fn roll(&mut self, now_ms: i64) -> Result<()> {
        self.check_online()?;
        if self.active.size() == 0 {
            return Ok(());
        }
        self.active.prepare_seal()?;
        let next = self.log_end_offset();
        let new_active = match ActiveSegment::create(&self.dir, next, limits(&self.config), now_ms) {
            Ok(a) => a,
            Err(e) => return Err(self.poison(e)),
        };
        let old = std::mem::replace(&mut self.active, new_active);
        match old.seal() {
            Ok(s) => self.sealed.push_back(s),
            Err(e) => return Err(self.poison(e)),
        }
        self.shared.dir_dirty.store(true, Ordering::Release);
        self.publish_segments();
        Ok(())
    }

    /// Whether a flush is due now: `flush.messages` records or `flush.ms` elapsed since the
    /// oldest unflushed append, or a rolled segment not yet flushed. (The age can be
    /// overestimated when a flush raced the appends, which only flushes sooner.)
    pub fn flush_due(&self, now_ms: i64) -> bool {
        let (end, point) = (self.log_end_offset(), self.recovery_point());
        if end <= point {
            return false;
        }
        let by_count = self.config.flush_messages.is_some_and(|n| (end - point) as u64 >= n);
        let by_time = match (self.config.flush_ms, self.unflushed_since) {
            (Some(ms), Some((_, since))) => now_ms.saturating_sub(since) >= ms,
            _ => false,
        };
        let rolled = self.active.base_offset() > point;
        by_count || by_time || rolled
    }

    /// Flushes everything appended so far (see [`LogFlusher::flush`], which does the same
    /// without the writer).
    ///
    /// # Errors
    /// A failed fsync takes the log offline.
    pub fn flush(&mut self) -> Result<i64> {
        self.flusher().flush()
    }

    /// Removes every batch at or after `offset` (replication's truncation to a leader epoch
    /// boundary). A batch that begins below `offset` but extends past it is removed whole.
    /// Truncating below the first segment empties the log and restarts it at `offset`.
    ///
    /// # Errors
    /// I/O errors take the log offline.
    pub fn truncate_to(&mut self, offset: i64, now_ms: i64) -> Result<()> {
        self.check_online()?;
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        let first_base = self.sealed.front().map_or(self.active.base_offset(), |s| s.base_offset());
        if offset < first_base || offset < self.log_start_offset() {
            return self.truncate_fully_and_start_at(offset, now_ms);
        }
        let result = self.truncate_segments(offset, now_ms);
        self.shared.dir_dirty.store(true, Ordering::Release);
        self.publish_segments();
        self.publish_end();
        self.shared.truncated(self.log_end_offset(), None);
        result.map_err(|e| self.poison(e))
    }

    fn truncate_segments(&mut self, offset: i64, now_ms: i64) -> Result<()> {
        let limits = limits(&self.config);
        while self.active.base_offset() >= offset {
            let Some(previous) = self.sealed.pop_back() else { break };
            let reopened = previous.into_active(limits, now_ms)?;
            let removed = std::mem::replace(&mut self.active, reopened);
            segment::delete_segment_files(&self.dir, removed.base_offset())?;
        }
        self.active.truncate_to(offset)?;
        Ok(())
    }

    /// Deletes every segment and restarts the log empty at `offset` (log start = end = offset).
    ///
    /// # Errors
    /// I/O errors take the log offline.
    pub fn truncate_fully_and_start_at(&mut self, offset: i64, now_ms: i64) -> Result<()> {
        self.check_online()?;
        let result = (|| {
            let new_active = ActiveSegment::create(&self.dir, offset, limits(&self.config), now_ms)?;
            let old = std::mem::replace(&mut self.active, new_active);
            if old.base_offset() != offset {
                segment::delete_segment_files(&self.dir, old.base_offset())?;
            }
            for s in std::mem::take(&mut self.sealed) {
                if s.base_offset() != offset {
                    s.delete()?;
                }
            }
            Ok(())
        })();
        self.shared.dir_dirty.store(true, Ordering::Release);
        self.shared.log_start_offset.store(offset, Ordering::Release);
        self.publish_segments();
        self.publish_end();
        self.shared.truncated(offset, Some(offset));
        result.map_err(|e| self.poison(e))
    }

    /// DeleteRecords: moves the log start offset forward to `offset` (never back). Whole
    /// segments below it are deleted by the next retention pass.
    ///
    /// # Errors
    /// [`Error::OffsetOutOfRange`] when `offset` is above the log end offset.
    pub fn delete_records(&mut self, offset: i64) -> Result<i64> {
        self.check_online()?;
        let log_end_offset = self.log_end_offset();
        if offset > log_end_offset || offset < 0 {
            return Err(Error::OffsetOutOfRange { offset, log_start_offset: self.log_start_offset(), log_end_offset });
        }
        Ok(self.shared.log_start_offset.fetch_max(offset, Ordering::AcqRel).max(offset))
    }

    /// Plain facts about every segment, oldest first, for retention.
    pub fn segment_facts(&self) -> Vec<SegmentFacts> {
        let mut facts: Vec<SegmentFacts> = Vec::with_capacity(self.sealed.len() + 1);
        let views = self.sealed.iter().map(|s| s.view()).chain(std::iter::once(self.active.view()));
        // Each segment ends where the next begins; the active one at the log end offset.
        let ends = self
            .sealed
            .iter()
            .map(|s| s.base_offset())
            .chain([self.active.base_offset()])
            .skip(1)
            .chain([self.log_end_offset()]);
        for (i, (view, end_offset)) in views.zip(ends).enumerate() {
            facts.push(SegmentFacts {
                base_offset: view.base_offset(),
                end_offset,
                size: view.size(),
                max_timestamp: view.max_timestamp(),
                is_active: i == self.sealed.len(),
            });
        }
        facts
    }

    /// Applies retention: takes out the leading segments that are below the log start offset,
    /// older than `retention.ms`, or beyond `retention.bytes`, never past `high_watermark`,
    /// and advances the log start offset past them. Their files are deleted by
    /// [`Retired::delete`], which the caller runs after releasing the log, so appends do not
    /// wait for unlinks and a directory fsync.
    ///
    /// # Errors
    /// I/O errors while rolling (when the active segment itself is retired) take the log
    /// offline.
    pub fn apply_retention(&mut self, now_ms: i64, high_watermark: i64) -> Result<Retired> {
        self.check_online()?;
        let inputs = RetentionInputs {
            now_ms,
            retention_ms: self.config.retention_ms,
            retention_bytes: self.config.retention_bytes,
            delete_policy: self.config.cleanup_policy.delete,
            log_start_offset: self.log_start_offset(),
            max_end_offset: high_watermark,
        };
        let (count, reason) = retention::segments_to_delete(&self.segment_facts(), inputs);
        if count > self.sealed.len() {
            self.roll(now_ms)?; // the active segment goes too: start a new one first
        }
        let segments: Vec<SealedSegment> = (0..count).filter_map(|_| self.sealed.pop_front()).collect();
        if !segments.is_empty() {
            let new_first = self.sealed.front().map_or(self.active.base_offset(), |s| s.base_offset());
            self.shared.log_start_offset.fetch_max(new_first, Ordering::AcqRel);
            self.publish_segments();
            tracing::info!(topic_partition = %self.topic_partition, count, ?reason, "retention retired segments");
        }
        Ok(Retired { segments, dir: self.dir.clone(), reason })
    }

    /// Compaction, step 1: what a cleaning pass would work on now, if the topic is compacted
    /// and the log is dirty enough (see [`cleaner`]). No I/O.
    pub fn plan_cleaning(&self, now_ms: i64) -> Option<cleaner::CleanPlan> {
        if !self.config.cleanup_policy.compact || self.offline_cause().is_some() {
            return None;
        }
        let start = self.log_start_offset();
        let sealed: Vec<&SealedSegment> = self.sealed.iter().filter(|s| s.view().next_offset() > start).collect();
        let infos: Vec<cleaner::SegmentInfo> = sealed
            .iter()
            .map(|s| cleaner::SegmentInfo {
                base_offset: s.base_offset(),
                size: s.size(),
                max_timestamp: s.view().max_timestamp(),
            })
            .collect();
        let first_dirty = self.shared.first_dirty.load(Ordering::Acquire).max(start);
        let (count, end) = cleaner::cleanable(&infos, self.active.base_offset(), first_dirty, &self.config, now_ms)?;
        Some(cleaner::CleanPlan {
            dir: self.dir.clone(),
            config: Arc::clone(&self.config),
            segments: sealed[..count].iter().map(|s| Arc::clone(s.view())).collect(),
            first_dirty,
            end,
        })
    }

    /// Compaction, step 3: installs the segments [`cleaner::clean`] wrote, replacing the ones
    /// they were cleaned from. If retention or a truncation changed those segments meanwhile,
    /// the pass is discarded. Renames and unlinks only: appends wait for no more than that.
    ///
    /// # Errors
    /// I/O errors take the log offline (the next open finishes or discards the swap).
    pub fn install_cleaned(&mut self, cleaned: cleaner::Cleaned) -> Result<cleaner::CleanStats> {
        self.check_online()?;
        let present = |b: &i64| self.sealed.iter().any(|s| s.base_offset() == *b);
        if !cleaned.groups.iter().all(|g| g.replaces.iter().all(present)) {
            cleaner::discard(&self.dir, &cleaned);
            return Ok(cleaner::CleanStats::default());
        }
        for g in &cleaned.groups {
            let Some(at) = self.sealed.iter().position(|s| s.base_offset() == g.replaces[0]) else { continue };
            let old: Vec<SealedSegment> = self.sealed.drain(at..at + g.replaces.len()).collect();
            let installed = cleaner::swap_in(&self.dir, g, || old.into_iter().try_for_each(SealedSegment::delete))
                .and_then(|()| SealedSegment::open(&self.dir, g.base_offset, g.state));
            match installed {
                Ok(segment) => self.sealed.insert(at, segment),
                Err(e) => {
                    self.publish_segments();
                    return Err(self.poison(e));
                }
            }
        }
        self.shared.first_dirty.fetch_max(cleaned.end, Ordering::AcqRel);
        self.publish_segments();
        Ok(cleaned.stats)
    }

    /// Clean close: flushes, trims the active segment's files to their valid size (so the
    /// next open needs no scan) and releases the maps held by this log.
    ///
    /// # Errors
    /// I/O errors; the caller must then not write the clean-shutdown marker.
    pub fn close(mut self) -> Result<()> {
        self.check_online()?;
        self.flush()?;
        self.active.close()
    }
}

/// Base offsets of the segments in `dir`, sorted; removes leftovers that are not part of a
/// segment (index files without a `.log`, `.deleted` and `.tmp` files).
fn list_segments(dir: &Path) -> Result<Vec<i64>> {
    let mut logs = Vec::new();
    let mut others = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io("list partition directory", dir, e))? {
        let entry = entry.map_err(|e| Error::io("list partition directory", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".deleted") || name.ends_with(".tmp") {
            std::fs::remove_file(entry.path()).map_err(|e| Error::io("remove leftover", entry.path(), e))?;
            continue;
        }
        match segment::parse_segment_name(name) {
            Some((base, segment::LOG_SUFFIX)) => logs.push(base),
            Some((base, segment::INDEX_SUFFIX | segment::TIME_INDEX_SUFFIX)) => others.push((base, entry.path())),
            _ => {}
        }
    }
    logs.sort_unstable();
    for (base, path) in others {
        if logs.binary_search(&base).is_err() {
            std::fs::remove_file(&path).map_err(|e| Error::io("remove orphaned index", &path, e))?;
        }
    }
    Ok(logs)
}

#[cfg(test)]
mod tests;
