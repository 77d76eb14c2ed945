//! Loading a segment's files on open: trusting them after a clean shutdown, recovering them
//! after a crash.
//!
//! - **Load** (clean shutdown, or a segment below the recovery point): check the indexes
//!   cheaply (whole entries, last entry inside the log) and scan only the tail of the `.log`
//!   after the last index entry, CRCs included, to learn the next offset and largest
//!   timestamp. An index that fails its check, or a tail that does not scan clean, sends the
//!   segment to recovery.
//! - **Recover**: scan every batch (header checks, CRC32C, increasing offsets), cut the `.log`
//!   at the first torn or corrupt byte, and rewrite both indexes from the valid batches with
//!   the same rule appends use ([`IndexState::on_batch`]), so a rebuilt index equals the one
//!   appends would have written.
//!
//! The caller (the log) deletes every segment after one that recovery had to cut.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use memmap2::Mmap;

use super::batch::{self, ScanEnd};
use super::error::{Error, Result};
use super::index::open_rw;
use super::index::EntryFormat;
use super::offset_index::{self, IndexEntry, OffsetIndexFormat};
use super::segment::{segment_path, IndexState, LoadedState, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use super::time_index::{self, TimeIndexEntry, TimeIndexFormat};

/// How much to trust a segment's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMode {
    /// Check indexes cheaply and scan only the tail.
    Load,
    /// Scan everything and rebuild the indexes.
    Recover,
}

/// What loading a segment found.
#[derive(Debug, Clone)]
pub struct LoadOutcome {
    pub state: LoadedState,
    /// Set when recovery cut a torn or corrupt tail: where, and why.
    pub truncated: Option<(u64, String)>,
    /// Whether the indexes were rewritten.
    pub rebuilt: bool,
}

/// The result of scanning a whole `.log`: what its indexes should hold.
#[derive(Debug, Clone, PartialEq)]
pub struct ScannedSegment {
    pub valid_bytes: u64,
    pub next_offset: i64,
    pub index: Vec<IndexEntry>,
    pub time_index: Vec<TimeIndexEntry>,
    pub state: IndexState,
    pub end: ScanEnd,
}

/// Scans `log` (a whole `.log`) and computes the indexes a fresh build would write. With
/// `sealed`, includes the time index entry written when a segment is sealed.
pub fn scan_segment(log: &[u8], base_offset: i64, interval: u32, sealed: bool) -> ScannedSegment {
    let mut state = IndexState::new(base_offset);
    let (mut index, mut time_index) = (Vec::new(), Vec::new());
    let mut next_offset = base_offset;
    let mut valid_bytes = 0u64;
    let end = batch::scan_valid(log, 0, base_offset, |b| {
        let (e, t) = state.on_batch(base_offset, b.position, &b.header, interval);
        index.extend(e);
        time_index.extend(t);
        next_offset = b.header.next_offset();
        valid_bytes = u64::from(b.position) + b.header.size() as u64;
    });
    if sealed {
        time_index.extend(state.time_entry(base_offset));
    }
    ScannedSegment { valid_bytes, next_offset, index, time_index, state, end }
}

fn map_file(path: &Path) -> Result<(File, Option<Mmap>, u64)> {
    let file = open_rw(path)?;
    let len = file.metadata().map_err(|e| Error::io("stat", path, e))?.len();
    if len == 0 {
        return Ok((file, None, 0));
    }
    let map = super::mmap::map_for_recovery(&file).map_err(|e| Error::io("map", path, e))?;
    Ok((file, map, len))
}

pub(crate) fn write_entries<F: EntryFormat>(path: &Path, entries: &[F::Entry]) -> Result<()> {
    let mut bytes = vec![0u8; entries.len() * F::SIZE];
    for (i, e) in entries.iter().enumerate() {
        F::encode(e, &mut bytes[i * F::SIZE..(i + 1) * F::SIZE]);
    }
    let mut file = open_rw(path)?;
    file.set_len(0).map_err(|e| Error::io("truncate index", path, e))?;
    file.write_all(&bytes).map_err(|e| Error::io("write index", path, e))?;
    file.sync_data().map_err(|e| Error::io("fsync index", path, e))
}

/// Loads (or recovers) segment `base_offset` of `dir`. `sealed` says whether it will be
/// opened read-only (it is not the last segment).
pub fn load_segment(dir: &Path, base_offset: i64, interval: u32, mode: LoadMode, sealed: bool) -> Result<LoadOutcome> {
    let log_path = segment_path(dir, base_offset, LOG_SUFFIX);
    let (file, map, len) = map_file(&log_path)?;
    let log: &[u8] = map.as_deref().unwrap_or(&[]);
    if mode == LoadMode::Load {
        if let Some(state) = try_load(dir, base_offset, log)? {
            return Ok(LoadOutcome { state, truncated: None, rebuilt: false });
        }
    }
    let scanned = scan_segment(log, base_offset, interval, sealed);
    drop(map);
    let truncated = match &scanned.end {
        ScanEnd::Clean => None,
        ScanEnd::Invalid { position, reason } => Some((u64::from(*position), reason.clone())),
    };
    if scanned.valid_bytes < len {
        file.set_len(scanned.valid_bytes).map_err(|e| Error::io("truncate torn segment", &log_path, e))?;
        file.sync_data().map_err(|e| Error::io("fsync segment", &log_path, e))?;
    }
    write_entries::<OffsetIndexFormat>(&segment_path(dir, base_offset, INDEX_SUFFIX), &scanned.index)?;
    write_entries::<TimeIndexFormat>(&segment_path(dir, base_offset, TIME_INDEX_SUFFIX), &scanned.time_index)?;
    let state = LoadedState {
        size: scanned.valid_bytes,
        next_offset: scanned.next_offset,
        index_entries: scanned.index.len(),
        time_index_entries: scanned.time_index.len(),
        index_state: scanned.state,
    };
    Ok(LoadOutcome { state, truncated, rebuilt: true })
}

fn read_index_file(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read index", path, e)),
    }
}

/// The cheap path: `None` when anything does not check out.
fn try_load(dir: &Path, base_offset: i64, log: &[u8]) -> Result<Option<LoadedState>> {
    let Some(index) = read_index_file(&segment_path(dir, base_offset, INDEX_SUFFIX))? else {
        return Ok(None);
    };
    let Some(times) = read_index_file(&segment_path(dir, base_offset, TIME_INDEX_SUFFIX))? else {
        return Ok(None);
    };
    if offset_index::sanity_check(index.len() as u64, &index, log.len() as u64).is_err() {
        return Ok(None);
    }
    let entries = offset_index::decode_all(&index);
    let time_entries = time_index::decode_all(&times);
    let mut state = IndexState::new(base_offset);
    if let Some(last) = entries.last() {
        state.last_indexed_position = last.position;
    }
    if let Some(last) = time_entries.last() {
        state.last_time_entry = last.timestamp;
        state.max_timestamp = last.timestamp;
        state.offset_of_max_timestamp = base_offset + i64::from(last.relative_offset);
    }
    // The tail after the last index entry must scan clean, and the index entry must point at
    // a batch whose last offset it names.
    let from = state.last_indexed_position as usize;
    let mut next_offset = base_offset;
    let mut first = true;
    let mut entry_ok = entries.is_empty();
    let end = batch::scan_valid(log, from, base_offset, |b| {
        if first {
            entry_ok = entry_ok
                || entries.last().is_some_and(|e| base_offset + i64::from(e.relative_offset) == b.header.last_offset());
            first = false;
        }
        let ts = batch::index_timestamp(&b.header);
        if ts > state.max_timestamp {
            state.max_timestamp = ts;
            state.offset_of_max_timestamp = b.header.last_offset();
        }
        next_offset = b.header.next_offset();
    });
    if end != ScanEnd::Clean || !entry_ok {
        return Ok(None);
    }
    if time_index::sanity_check(times.len() as u64, &times, (next_offset - base_offset) as u64).is_err() {
        return Ok(None);
    }
    Ok(Some(LoadedState {
        size: log.len() as u64,
        next_offset,
        index_entries: entries.len(),
        time_index_entries: time_entries.len(),
        index_state: state,
    }))
}
