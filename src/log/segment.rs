//! One log segment: a `.log` of record batches plus its `.index` and `.timeindex`.
//!
//! Three types split who may do what:
//! - [`SegmentView`] is the read side, shared with readers through an `Arc`: the three maps
//!   and the published next offset / largest timestamp. Reading never takes a lock.
//! - [`ActiveSegment`] is the one segment of a log that appends. It owns the writers of the
//!   three maps, so appending is impossible through any other type.
//! - [`SealedSegment`] is read-only; [`ActiveSegment::seal`] trims the files to their valid
//!   size and turns the active segment into one.
//!
//! File names are the base offset as 20 zero-padded digits (`00000000000000000042.log`), as
//! Kafka names them. See `storage-format.md` for the byte layout and crash behaviour.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use super::batch::{self, BatchHeader, HeaderIter};
use super::error::{Error, Result};
use super::index::{self, reserve_error};
use super::mmap::{MappedFile, Writer};
use super::offset_index::{self, IndexEntry, OffsetIndexWriter};
use super::time_index::{self, TimeIndexEntry, TimeIndexWriter};

/// Reserve `.log` space 4 MiB at a time: one fallocate per 64 appends of 64 KiB, and at most
/// 4 MiB of unused reservation per active segment (trimmed on seal and on clean shutdown).
const LOG_RESERVE_STEP: u64 = 4 * 1024 * 1024;

pub const LOG_SUFFIX: &str = ".log";
pub const INDEX_SUFFIX: &str = ".index";
pub const TIME_INDEX_SUFFIX: &str = ".timeindex";

/// `<dir>/<base offset, 20 digits><suffix>`.
pub fn segment_path(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}{suffix}"))
}

/// Parses a segment file name back into its base offset and suffix.
pub fn parse_segment_name(name: &str) -> Option<(i64, &str)> {
    let dot = name.find('.')?;
    let (digits, suffix) = name.split_at(dot);
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, suffix))
}

/// Deletes the three files of segment `base_offset` (missing ones are fine). The caller
/// fsyncs the directory.
pub fn delete_segment_files(dir: &Path, base_offset: i64) -> Result<()> {
    for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
        let path = segment_path(dir, base_offset, suffix);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("delete segment file", &path, e)),
        }
    }
    Ok(())
}

/// Where the sparse indexes stand: the state that decides the next entries. Shared by the
/// append path and by recovery, so that a rebuilt index equals the one appends wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexState {
    /// Position of the last batch given an offset index entry (0 before any).
    pub last_indexed_position: u32,
    /// Largest batch max timestamp in the segment so far (-1 = none).
    pub max_timestamp: i64,
    /// Last offset of the batch holding `max_timestamp`.
    pub offset_of_max_timestamp: i64,
    /// Timestamp of the last time index entry (-1 = none).
    pub last_time_entry: i64,
}

impl IndexState {
    pub fn new(base_offset: i64) -> IndexState {
        IndexState {
            last_indexed_position: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            last_time_entry: -1,
        }
    }

    /// Accounts for a batch at `position` and returns the index entries it earns, following
    /// Kafka's rule: a batch more than `interval` bytes past the last indexed one gets an
    /// offset index entry (its last offset → its position) and, if the largest timestamp grew
    /// since the last time entry, a time index entry.
    pub fn on_batch(
        &mut self,
        base_offset: i64,
        position: u32,
        header: &BatchHeader,
        interval: u32,
    ) -> (Option<IndexEntry>, Option<TimeIndexEntry>) {
        let ts = batch::index_timestamp(header);
        if ts > self.max_timestamp {
            self.max_timestamp = ts;
            self.offset_of_max_timestamp = header.last_offset();
        }
        if position - self.last_indexed_position <= interval {
            return (None, None);
        }
        self.last_indexed_position = position;
        let entry = IndexEntry { relative_offset: (header.last_offset() - base_offset) as u32, position };
        (Some(entry), self.time_entry(base_offset))
    }

    /// The time index entry due now (on an index interval, or when sealing), if the largest
    /// timestamp grew since the last one.
    pub fn time_entry(&mut self, base_offset: i64) -> Option<TimeIndexEntry> {
        if self.max_timestamp <= self.last_time_entry {
            return None;
        }
        self.last_time_entry = self.max_timestamp;
        Some(TimeIndexEntry {
            timestamp: self.max_timestamp,
            relative_offset: (self.offset_of_max_timestamp - base_offset) as u32,
        })
    }
}

/// The read side of a segment, shared by the log, its readers and handed-out `Bytes`.
#[derive(Debug)]
pub struct SegmentView {
    base_offset: i64,
    log: Arc<MappedFile>,
    index: Arc<MappedFile>,
    time_index: Arc<MappedFile>,
    /// Offset after the last published batch. Written by the appender (Release).
    next_offset: AtomicI64,
    max_timestamp: AtomicI64,
    offset_of_max_timestamp: AtomicI64,
    /// Sealed, with indexes not yet fsynced: the next flush syncs them (sealing happens on
    /// the append path, where no fsync should run).
    indexes_unsynced: AtomicBool,
    /// Position of the last batch appended through this view ([`NO_TAIL`] when unknown):
    /// a consumer at the tail asks for exactly that batch, found here without an index
    /// lookup and header scan. A hint only: it is checked against the header it points to.
    tail: AtomicU64,
}

/// [`SegmentView::tail`] when no batch has been appended since the segment was opened.
const NO_TAIL: u64 = u64::MAX;

/// What [`SegmentView::read`] found.
#[derive(Debug, Clone)]
pub struct SegmentRead {
    /// Whole batches, a zero-copy slice of the `.log` map.
    pub records: Bytes,
    /// Offset after the last batch in `records`.
    pub next_offset: i64,
}

impl SegmentView {
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub fn next_offset(&self) -> i64 {
        self.next_offset.load(Ordering::Acquire)
    }

    /// Valid bytes in the `.log`.
    pub fn size(&self) -> u64 {
        self.log.readable() as u64
    }

    /// Largest batch timestamp in the segment (-1 when none has one).
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp.load(Ordering::Acquire)
    }

    /// Last offset of the batch holding [`Self::max_timestamp`].
    pub fn offset_of_max_timestamp(&self) -> i64 {
        self.offset_of_max_timestamp.load(Ordering::Acquire)
    }

    pub fn log_bytes(&self) -> &[u8] {
        self.log.readable_bytes()
    }

    pub fn index_bytes(&self) -> &[u8] {
        self.index.readable_bytes()
    }

    pub fn time_index_bytes(&self) -> &[u8] {
        self.time_index.readable_bytes()
    }

    /// The first batch whose last offset is ≥ `offset`, found from the offset index and a
    /// short header scan.
    pub fn translate_offset(&self, offset: i64) -> Option<batch::BatchPosition> {
        let tail = self.tail.load(Ordering::Acquire);
        let at_tail = (tail != NO_TAIL).then(|| HeaderIter::new(self.log_bytes(), tail as usize).next()).flatten();
        if let Some(b) = at_tail {
            // The batch containing `offset` when it is this one; the batch before ends below
            // its base offset, so it is also the first whose last offset is ≥ `offset`.
            if b.header.base_offset <= offset && offset <= b.header.last_offset() {
                return Some(b);
            }
        }
        let relative = (offset - self.base_offset).clamp(0, i64::from(u32::MAX)) as u32;
        let start = offset_index::lookup(self.index_bytes(), relative).position as usize;
        HeaderIter::new(self.log_bytes(), start).find(|b| b.header.last_offset() >= offset)
    }

    /// Reads whole batches starting with the one that contains `offset`, up to `max_bytes`
    /// (but at least one batch when `min_one`), stopping before any batch whose base offset
    /// is ≥ `max_offset`. `None` when the segment holds nothing at or after `offset` below
    /// `max_offset`.
    pub fn read(
        self: &Arc<Self>,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one: bool,
    ) -> Option<SegmentRead> {
        let first = self.translate_offset(offset)?;
        let start = first.position as usize;
        let mut end = start;
        let mut next_offset = offset;
        for b in HeaderIter::new(self.log_bytes(), start) {
            if b.header.base_offset >= max_offset {
                break;
            }
            let batch_end = b.position as usize + b.header.size();
            if batch_end - start > max_bytes && !(min_one && end == start) {
                break;
            }
            end = batch_end;
            next_offset = b.header.next_offset();
        }
        if end == start {
            return None;
        }
        let records = self.log.slice(start, end)?;
        Some(SegmentRead { records, next_offset })
    }

    /// The first offset ≥ `min_offset` whose record timestamp is ≥ `timestamp`, with that
    /// timestamp (see [`batch::first_offset_at_or_after`] for compressed batches).
    pub fn find_offset_by_timestamp(&self, timestamp: i64, min_offset: i64) -> Option<(i64, i64)> {
        if self.max_timestamp() < timestamp {
            return None;
        }
        let relative = time_index::lookup(self.time_index_bytes(), timestamp);
        let from = (self.base_offset + i64::from(relative)).max(min_offset);
        let start = self.translate_offset(from)?.position as usize;
        let log = self.log_bytes();
        HeaderIter::new(log, start)
            .filter(|b| b.header.max_timestamp >= timestamp && b.header.last_offset() >= min_offset)
            .find_map(|b| {
                let bytes = &log[b.position as usize..b.position as usize + b.header.size()];
                let (offset, ts) = batch::first_offset_at_or_after(bytes, timestamp)?;
                Some((offset.max(min_offset), ts))
            })
    }

    /// fdatasyncs the `.log`. The active segment's indexes are not synced: recovery rebuilds
    /// them from the `.log`.
    ///
    /// # Errors
    /// The fsync's failure (the caller takes the log offline).
    pub fn sync_log(&self) -> Result<()> {
        self.log.sync_data().map_err(|e| Error::io("fsync segment", self.log.path(), e))
    }

    /// fdatasyncs the indexes of a sealed segment once, the first time a flush sees it
    /// sealed; a no-op otherwise. Segments below the recovery point are trusted on a clean
    /// open, so their indexes must be durable before the recovery point passes them.
    ///
    /// # Errors
    /// The fsync's failure (the caller takes the log offline).
    pub fn sync_indexes_if_sealed(&self) -> Result<()> {
        if !self.indexes_unsynced.load(Ordering::Acquire) {
            return Ok(());
        }
        for map in [&self.index, &self.time_index] {
            map.sync_data().map_err(|e| Error::io("fsync index", map.path(), e))?;
        }
        self.indexes_unsynced.store(false, Ordering::Release);
        Ok(())
    }

    fn publish(&self, next_offset: i64, state: &IndexState, tail: Option<u32>) {
        self.tail.store(tail.map_or(NO_TAIL, u64::from), Ordering::Release);
        self.offset_of_max_timestamp.store(state.offset_of_max_timestamp, Ordering::Release);
        self.max_timestamp.store(state.max_timestamp, Ordering::Release);
        self.next_offset.store(next_offset, Ordering::Release);
    }
}

/// Sizes and limits an active segment needs from the log config.
#[derive(Debug, Clone, Copy)]
pub struct SegmentLimits {
    pub segment_bytes: u32,
    pub index_interval_bytes: u32,
    pub max_index_entries: usize,
    pub max_time_index_entries: usize,
}

/// What recovery (or a clean open) established about a segment's files.
#[derive(Debug, Clone, Copy)]
pub struct LoadedState {
    /// Valid bytes of the `.log`.
    pub size: u64,
    pub next_offset: i64,
    pub index_entries: usize,
    pub time_index_entries: usize,
    pub index_state: IndexState,
}

/// The appendable segment. Only this type holds writers.
#[derive(Debug)]
pub struct ActiveSegment {
    view: Arc<SegmentView>,
    log: Writer,
    index: OffsetIndexWriter,
    time_index: TimeIndexWriter,
    state: IndexState,
    limits: SegmentLimits,
    /// Wall-clock time the segment was created (this process's open, after a restart).
    created_ms: i64,
    /// Timestamp of the first batch, what `segment.ms` counts from (as in Kafka).
    first_batch_timestamp: Option<i64>,
    dir: PathBuf,
}

/// Why the active segment must roll before an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollReason {
    Size,
    Time,
    IndexFull,
    OffsetOverflow,
}

/// Plain facts about the active segment that the roll decision needs.
#[derive(Debug, Clone, Copy)]
pub struct RollInputs {
    pub size: u64,
    pub base_offset: i64,
    pub created_ms: i64,
    pub first_batch_timestamp: Option<i64>,
    pub index_full: bool,
}

/// The batch about to be appended, as the roll decision sees it.
#[derive(Debug, Clone, Copy)]
pub struct IncomingBatch {
    pub size: usize,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

/// Decides whether to roll before appending `batch`. Pure: `now_ms` is an argument.
///
/// Time-based rolling follows Kafka: when the segment's first batch has a timestamp, the
/// age is the incoming batch's timestamp minus it; otherwise wall-clock time since creation.
pub fn should_roll(
    seg: RollInputs,
    batch: IncomingBatch,
    now_ms: i64,
    segment_bytes: u32,
    segment_ms: i64,
) -> Option<RollReason> {
    if seg.size == 0 {
        return None; // an empty segment takes any batch that fits a segment at all
    }
    let age = match seg.first_batch_timestamp {
        Some(first) if first >= 0 => batch.max_timestamp.saturating_sub(first),
        _ => now_ms.saturating_sub(seg.created_ms),
    };
    if seg.size + batch.size as u64 > u64::from(segment_bytes) {
        Some(RollReason::Size)
    } else if age >= segment_ms {
        Some(RollReason::Time)
    } else if seg.index_full {
        Some(RollReason::IndexFull)
    } else if batch.last_offset - seg.base_offset > i64::from(u32::MAX) {
        Some(RollReason::OffsetOverflow)
    } else {
        None
    }
}

fn open_log_writer(dir: &Path, base_offset: i64, limits: &SegmentLimits, size: u64) -> Result<Writer> {
    let path = segment_path(dir, base_offset, LOG_SUFFIX);
    let file = index::open_rw(&path)?;
    let len = file.metadata().map_err(|e| Error::io("stat segment", &path, e))?.len();
    let capacity = (u64::from(limits.segment_bytes)).max(len) as usize;
    let mapped =
        MappedFile::map(file, &path, capacity, size as usize).map_err(|e| Error::io("map segment", &path, e))?;
    let mut writer = Writer::new(Arc::new(mapped), len, LOG_RESERVE_STEP);
    // Anything past the valid size (a reservation, or a torn tail recovery cut off) must read
    // as zeros, so a later crash cannot resurrect it.
    if len > size {
        writer.set_readable(len as usize);
        writer.truncate(size as usize).map_err(|e| Error::io("clear the stale tail of", &path, e))?;
    }
    Ok(writer)
}

impl ActiveSegment {
    /// Creates the files of a new, empty segment at `base_offset`.
    ///
    /// # Durability
    /// The new files exist in the directory only after the directory is fsynced, which the
    /// log does on its next flush.
    pub fn create(dir: &Path, base_offset: i64, limits: SegmentLimits, now_ms: i64) -> Result<ActiveSegment> {
        for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            let path = segment_path(dir, base_offset, suffix);
            let file = index::open_rw(&path)?;
            file.set_len(0).map_err(|e| Error::io("truncate new segment file", &path, e))?;
        }
        let state = LoadedState {
            size: 0,
            next_offset: base_offset,
            index_entries: 0,
            time_index_entries: 0,
            index_state: IndexState::new(base_offset),
        };
        ActiveSegment::open(dir, base_offset, limits, state, now_ms)
    }

    /// Opens an existing segment for appending, with `state` established by recovery.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        limits: SegmentLimits,
        state: LoadedState,
        now_ms: i64,
    ) -> Result<ActiveSegment> {
        let log = open_log_writer(dir, base_offset, &limits, state.size)?;
        let index = OffsetIndexWriter::open(
            &segment_path(dir, base_offset, INDEX_SUFFIX),
            limits.max_index_entries.max(state.index_entries),
            state.index_entries,
        )?;
        let time_index = TimeIndexWriter::open(
            &segment_path(dir, base_offset, TIME_INDEX_SUFFIX),
            limits.max_time_index_entries.max(state.time_index_entries + 1),
            state.time_index_entries,
        )?;
        let view = Arc::new(SegmentView {
            base_offset,
            log: Arc::clone(log.mapped()),
            index: Arc::clone(index.mapped()),
            time_index: Arc::clone(time_index.mapped()),
            next_offset: AtomicI64::new(state.next_offset),
            max_timestamp: AtomicI64::new(state.index_state.max_timestamp),
            offset_of_max_timestamp: AtomicI64::new(state.index_state.offset_of_max_timestamp),
            indexes_unsynced: AtomicBool::new(false),
            tail: AtomicU64::new(NO_TAIL),
        });
        let first_batch_timestamp = HeaderIter::new(view.log_bytes(), 0).next().map(|b| b.header.max_timestamp);
        Ok(ActiveSegment {
            view,
            log,
            index,
            time_index,
            state: state.index_state,
            limits,
            created_ms: now_ms,
            first_batch_timestamp,
            dir: dir.to_owned(),
        })
    }

    pub fn view(&self) -> &Arc<SegmentView> {
        &self.view
    }

    pub fn base_offset(&self) -> i64 {
        self.view.base_offset
    }

    pub fn size(&self) -> u64 {
        self.view.size()
    }

    pub fn roll_inputs(&self) -> RollInputs {
        RollInputs {
            size: self.size(),
            base_offset: self.base_offset(),
            created_ms: self.created_ms,
            first_batch_timestamp: self.first_batch_timestamp,
            // Keep one time index slot free for the entry written when sealing.
            index_full: self.index.is_full() || self.time_index.entries() + 1 >= self.time_index.max_entries(),
        }
    }

    /// Appends one validated batch, stored as `head` (its patched header) followed by `body`
    /// (the rest of the batch as received), then publishes it. `header` describes the batch
    /// as stored.
    ///
    /// # Errors
    /// [`Error::DiskFull`] when space cannot be reserved; nothing is written or published and
    /// the segment stays usable.
    pub fn append(&mut self, head: &[u8], body: &[u8], header: &BatchHeader) -> Result<()> {
        let len = head.len() + body.len();
        let position = self.size();
        let end = position + len as u64;
        // Reserve first, for the log and both indexes, so a full disk fails before any write.
        self.log.ensure_reserved(end).map_err(|e| reserve_error(self.log.mapped().path(), len, e))?;
        let position = position as u32;
        let mut probe = self.state;
        let (entry, time_entry) =
            probe.on_batch(self.base_offset(), position, header, self.limits.index_interval_bytes);
        if entry.is_some() {
            self.index.reserve_next()?;
        }
        if time_entry.is_some() {
            self.time_index.reserve_next()?;
        }
        if self.view.size() == 0 {
            self.first_batch_timestamp = Some(header.max_timestamp);
        }
        // Everything is reserved: from here on only an I/O error (EIO) can fail the append,
        // and the log then goes offline.
        self.log
            .write_parts_at(position as usize, &[head, body])
            .map_err(|e| Error::io("write segment", self.log.mapped().path(), e))?;
        self.log.set_readable(end as usize);
        if let Some(e) = entry {
            self.index.append(e)?;
        }
        if let Some(e) = time_entry {
            self.time_index.append(e)?;
        }
        self.state = probe;
        self.view.publish(header.next_offset(), &self.state, Some(position));
        Ok(())
    }

    /// Reserves disk space for the time index entry that sealing writes, so that a full disk
    /// fails the roll before the segment is consumed by [`Self::seal`].
    pub fn prepare_seal(&mut self) -> Result<()> {
        self.time_index.reserve_next()
    }

    /// Removes every batch whose base offset is ≥ `offset` (Kafka's `truncateTo`): the batch
    /// containing `offset`, if it starts below it, goes too. Returns the new next offset.
    pub fn truncate_to(&mut self, offset: i64) -> Result<i64> {
        let Some(first_removed) = self.view.translate_offset(offset) else {
            return Ok(self.view.next_offset()); // nothing at or after offset
        };
        let position = first_removed.position;
        let new_next = first_removed.header.base_offset.max(self.base_offset());
        // Rebuild index state from what stays: drop entries at or past the cut, recompute the
        // largest timestamp by scanning the kept batches after the last kept index entry.
        let kept_index =
            offset_index::decode_all(self.view.index_bytes()).iter().take_while(|e| e.position < position).count();
        let kept_time = time_index::decode_all(self.view.time_index_bytes())
            .iter()
            .take_while(|e| self.base_offset() + i64::from(e.relative_offset) < new_next)
            .count();
        self.index.truncate_entries(kept_index)?;
        self.time_index.truncate_entries(kept_time)?;
        let path = self.log.mapped().path().to_owned();
        self.log.truncate(position as usize).map_err(|e| Error::io("truncate segment", &path, e))?;
        self.state = rebuild_state_from_tail(&self.view, kept_index, kept_time);
        self.view.publish(new_next, &self.state, None);
        Ok(new_next)
    }

    /// Stops appending: writes the final time index entry and trims all three files to their
    /// valid size. No fsync here (this runs on the append path): the next flush syncs the
    /// `.log` and, once, the indexes.
    pub fn seal(mut self) -> Result<SealedSegment> {
        if let Some(e) = self.state.time_entry(self.base_offset()) {
            self.time_index.append(e)?;
        }
        let size = self.size();
        let path = self.log.mapped().path().to_owned();
        self.log.trim(size).map_err(|e| Error::io("trim segment", &path, e))?;
        self.index.trim()?;
        self.time_index.trim()?;
        self.view.indexes_unsynced.store(true, Ordering::Release);
        Ok(SealedSegment { view: self.view, dir: self.dir })
    }

    /// Trims the files to their valid size without sealing (clean shutdown), so the next open
    /// sees exact lengths and needs no scan.
    pub fn close(mut self) -> Result<()> {
        let size = self.size();
        let path = self.log.mapped().path().to_owned();
        self.log.trim(size).map_err(|e| Error::io("trim segment", &path, e))?;
        self.log.sync().map_err(|e| Error::io("fsync segment", &path, e))?;
        self.index.trim()?;
        self.time_index.trim()?;
        self.index.sync()?;
        self.time_index.sync()
    }
}

/// Recomputes the index state after truncation, from the kept index entries and a scan of
/// the batches after the last kept offset index entry.
fn rebuild_state_from_tail(view: &SegmentView, kept_index: usize, kept_time: usize) -> IndexState {
    let base = view.base_offset;
    let mut state = IndexState::new(base);
    let index = offset_index::decode_all(view.index_bytes());
    let times = time_index::decode_all(view.time_index_bytes());
    if let Some(last) = kept_time.checked_sub(1).map(|i| times[i]) {
        state.last_time_entry = last.timestamp;
        state.max_timestamp = last.timestamp;
        state.offset_of_max_timestamp = base + i64::from(last.relative_offset);
    }
    let from = kept_index.checked_sub(1).map(|i| index[i].position).unwrap_or(0);
    state.last_indexed_position = from;
    for b in HeaderIter::new(view.log_bytes(), from as usize) {
        let ts = batch::index_timestamp(&b.header);
        if ts > state.max_timestamp {
            state.max_timestamp = ts;
            state.offset_of_max_timestamp = b.header.last_offset();
        }
    }
    state
}

/// A read-only segment.
#[derive(Debug)]
pub struct SealedSegment {
    view: Arc<SegmentView>,
    dir: PathBuf,
}

impl SealedSegment {
    /// Maps an existing sealed segment whose files are known to be valid (see
    /// [`super::recovery`]). `size` is the valid length of the `.log`.
    pub fn open(dir: &Path, base_offset: i64, state: LoadedState) -> Result<SealedSegment> {
        let path = segment_path(dir, base_offset, LOG_SUFFIX);
        let file = index::open_rw(&path)?;
        let log = MappedFile::map(file, &path, state.size as usize, state.size as usize)
            .map_err(|e| Error::io("map segment", &path, e))?;
        let index =
            index::open_sealed::<offset_index::OffsetIndexFormat>(&segment_path(dir, base_offset, INDEX_SUFFIX))?;
        let time_index =
            index::open_sealed::<time_index::TimeIndexFormat>(&segment_path(dir, base_offset, TIME_INDEX_SUFFIX))?;
        let view = Arc::new(SegmentView {
            base_offset,
            log: Arc::new(log),
            index,
            time_index,
            next_offset: AtomicI64::new(state.next_offset),
            max_timestamp: AtomicI64::new(state.index_state.max_timestamp),
            offset_of_max_timestamp: AtomicI64::new(state.index_state.offset_of_max_timestamp),
            // On disk since before this open (loaded) or fsynced when rebuilt by recovery.
            indexes_unsynced: AtomicBool::new(false),
            tail: AtomicU64::new(NO_TAIL),
        });
        Ok(SealedSegment { view, dir: dir.to_owned() })
    }

    pub fn view(&self) -> &Arc<SegmentView> {
        &self.view
    }

    pub fn base_offset(&self) -> i64 {
        self.view.base_offset
    }

    pub fn size(&self) -> u64 {
        self.view.size()
    }

    /// Deletes the segment's files. Readers holding its maps keep reading them (an unlinked
    /// file stays mapped); the caller fsyncs the directory.
    pub fn delete(self) -> Result<()> {
        delete_segment_files(&self.dir, self.base_offset())
    }

    /// Reopens the segment for appending (truncation reached into it).
    pub fn into_active(self, limits: SegmentLimits, now_ms: i64) -> Result<ActiveSegment> {
        let view = &self.view;
        let index_entries = view.index_bytes().len() / 8;
        let time_entries = view.time_index_bytes().len() / 12;
        let index_state = rebuild_state_from_tail(view, index_entries, time_entries);
        let state = LoadedState {
            size: view.size(),
            next_offset: view.next_offset(),
            index_entries,
            time_index_entries: time_entries,
            index_state,
        };
        let base = self.base_offset();
        let dir = self.dir.clone();
        drop(self);
        ActiveSegment::open(&dir, base, limits, state, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_are_twenty_digit_base_offsets() {
        let p = segment_path(Path::new("/d"), 42, LOG_SUFFIX);
        assert_eq!(p, Path::new("/d/00000000000000000042.log"));
        assert_eq!(parse_segment_name("00000000000000000042.timeindex"), Some((42, ".timeindex")));
        assert_eq!(parse_segment_name("42.log"), None);
        assert_eq!(parse_segment_name("0000000000000000004x.log"), None);
    }

    fn inputs(size: u64, first: Option<i64>, index_full: bool) -> RollInputs {
        RollInputs { size, base_offset: 100, created_ms: 1_000, first_batch_timestamp: first, index_full }
    }

    fn batch(size: usize, last_offset: i64, max_timestamp: i64) -> IncomingBatch {
        IncomingBatch { size, last_offset, max_timestamp }
    }

    #[test]
    fn roll_happens_when_the_batch_would_not_fit() {
        assert_eq!(should_roll(inputs(900, None, false), batch(100, 101, 0), 0, 1000, 10), None);
        assert_eq!(should_roll(inputs(901, None, false), batch(100, 101, 0), 0, 1000, 10), Some(RollReason::Size));
    }

    #[test]
    fn roll_by_time_compares_batch_timestamps_like_kafka() {
        assert_eq!(should_roll(inputs(10, Some(5_000), false), batch(1, 101, 5_009), 0, 1000, 10), None);
        assert_eq!(
            should_roll(inputs(10, Some(5_000), false), batch(1, 101, 5_010), 0, 1000, 10),
            Some(RollReason::Time)
        );
    }

    #[test]
    fn roll_by_time_without_timestamps_uses_wall_clock_since_creation() {
        assert_eq!(should_roll(inputs(10, Some(-1), false), batch(1, 101, -1), 1_009, 1000, 10), None);
        assert_eq!(should_roll(inputs(10, None, false), batch(1, 101, -1), 1_010, 1000, 10), Some(RollReason::Time));
    }

    #[test]
    fn roll_happens_when_an_index_is_full_or_offsets_overflow() {
        assert_eq!(should_roll(inputs(10, None, true), batch(1, 101, 0), 0, 1000, 10), Some(RollReason::IndexFull));
        let far = 100 + i64::from(u32::MAX) + 1;
        assert_eq!(
            should_roll(inputs(10, None, false), batch(1, far, 0), 0, 1000, 10),
            Some(RollReason::OffsetOverflow)
        );
    }

    #[test]
    fn an_empty_segment_never_rolls() {
        assert_eq!(should_roll(inputs(0, None, true), batch(5000, 101, 1 << 40), 1 << 40, 1000, 10), None);
    }
}
