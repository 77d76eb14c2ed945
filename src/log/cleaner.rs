//! Log compaction (`cleanup.policy=compact`): keep the last record of every key.
//!
//! One pass over a log, in Kafka's shape:
//! 1. **Plan** (under the writer lock, no I/O): the cleanable range is the sealed segments
//!    from the log start up to the first segment that is active or holds records younger
//!    than `min.compaction.lag.ms`. The part from the *first dirty offset* (where the last
//!    pass ended) is dirty; the pass runs when dirty bytes are at least
//!    `min.cleanable.dirty.ratio` of the range, or dirty records are older than
//!    `max.compaction.lag.ms`.
//! 2. **Clean** (no lock; appends and reads go on): build the offset map (key → offset of
//!    its latest record) over the dirty part, then rewrite the whole range, segment group by
//!    segment group (consecutive segments whose sizes add up to at most `segment.bytes` are
//!    merged into one), into `<base>.log.cleaned` with its indexes. A record is kept unless
//!    a later record has its key, or it is a tombstone (null value) older than
//!    `delete.retention.ms`. Kept records keep their offsets, timestamps and headers; a batch
//!    that loses records is rewritten with its base offset and last offset delta unchanged
//!    (as Kafka does, so offsets and producer sequences stay as they were), re-compressed
//!    with its codec, with a new CRC; a batch that loses all its records is dropped.
//! 3. **Install** (under the writer lock, renames and unlinks only): for each group, write
//!    `<base>.swap.end` (the group's end offset), rename the `.cleaned` files to `.swap`
//!    (the log file last: that rename commits the swap), delete the old segments, rename the
//!    `.swap` files into place, delete the marker. Readers holding the old segments' maps
//!    keep reading them; a reader positioned at a removed offset continues at the next
//!    surviving batch.
//!
//! Crash safety: on open, [`finish_interrupted_swaps`] completes every committed swap
//! (deletes the segments in `[base, end)`, renames the `.swap` files) and deletes the files
//! of uncommitted ones (`.cleaned`, stray index `.swap`s and markers). Between any two steps
//! the directory holds either the old segments or the new one for every offset.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::batch::{self, BatchHeader, Compression, HeaderIter, HEADER_SIZE};
use super::config::LogConfig;
use super::error::{Error, Result};
use super::offset_index::OffsetIndexFormat;
use super::recovery::write_entries;
use super::segment::TIME_INDEX_SUFFIX;
use super::segment::{self, segment_path, IndexState, LoadedState, SegmentView, INDEX_SUFFIX, LOG_SUFFIX};
use super::time_index::TimeIndexFormat;

/// Suffix of files written by a pass, before they are installed.
pub const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of installed-in-progress files (a committed swap).
pub const SWAP_SUFFIX: &str = ".swap";
/// Marker holding a swap's end offset: `<base>.swap.end`.
pub const SWAP_END_SUFFIX: &str = ".swap.end";

/// Keys (bytes) the offset map may hold in one pass; past it, the pass stops at a segment
/// boundary and the rest waits for the next pass.
const OFFSET_MAP_BUDGET: usize = 256 << 20;

/// What a pass will work on, taken under the writer lock.
#[derive(Debug, Clone)]
pub struct CleanPlan {
    pub dir: PathBuf,
    pub config: Arc<LogConfig>,
    /// The sealed segments of the cleanable range, oldest first.
    pub segments: Vec<Arc<SegmentView>>,
    /// Where the dirty part starts.
    pub first_dirty: i64,
    /// End of the cleanable range: the base offset of the first segment left alone.
    pub end: i64,
}

/// Facts for deciding whether a log is worth cleaning.
#[derive(Debug, Clone, Copy)]
pub struct SegmentInfo {
    pub base_offset: i64,
    pub size: u64,
    pub max_timestamp: i64,
}

/// The cleanable range: `(number of leading segments, end offset)`, given the sealed
/// segments and the active segment's base; `None` if there is nothing to do now.
pub fn cleanable(
    sealed: &[SegmentInfo],
    active_base: i64,
    first_dirty: i64,
    config: &LogConfig,
    now_ms: i64,
) -> Option<(usize, i64)> {
    // Segments with records younger than the minimum lag, and everything after, wait.
    let count = sealed.iter().take_while(|s| s.max_timestamp <= now_ms - config.min_compaction_lag_ms).count();
    if count == 0 {
        return None;
    }
    let end = sealed.get(count).map_or(active_base, |s| s.base_offset);
    let (mut clean, mut dirty) = (0u64, 0u64);
    let mut oldest_dirty = i64::MAX;
    for (i, s) in sealed[..count].iter().enumerate() {
        let seg_end = sealed.get(i + 1).map_or(active_base, |n| n.base_offset);
        if seg_end <= first_dirty {
            clean += s.size;
        } else {
            dirty += s.size;
            oldest_dirty = oldest_dirty.min(s.max_timestamp);
        }
    }
    if dirty == 0 {
        return None;
    }
    let ratio = dirty as f64 / (clean + dirty) as f64;
    let overdue = config.max_compaction_lag_ms.is_some_and(|lag| oldest_dirty < now_ms - lag);
    (ratio >= config.min_cleanable_dirty_ratio || overdue).then_some((count, end))
}

/// What a pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanStats {
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_removed: u64,
    pub segments_in: usize,
    pub segments_out: usize,
}

/// One cleaned segment, written and indexed under `.cleaned` names, ready to install.
#[derive(Debug)]
pub struct CleanedGroup {
    pub base_offset: i64,
    /// The base offsets of the segments it replaces.
    pub replaces: Vec<i64>,
    /// The group's end: the base offset of the segment after it.
    pub end: i64,
    pub state: LoadedState,
}

/// The output of [`clean`].
#[derive(Debug)]
pub struct Cleaned {
    pub groups: Vec<CleanedGroup>,
    /// The new first dirty offset once installed.
    pub end: i64,
    pub stats: CleanStats,
}

fn invalid(dir: &Path, what: String) -> Error {
    Error::CorruptMetadata { path: dir.to_owned(), reason: what }
}

/// Key → offset of its latest record in the dirty part, and where the map stops (a segment
/// boundary: the whole dirty part unless the budget ran out).
fn build_offset_map(plan: &CleanPlan) -> Result<(HashMap<Vec<u8>, i64>, i64)> {
    let mut map: HashMap<Vec<u8>, i64> = HashMap::new();
    let mut bytes = 0usize;
    for (i, seg) in plan.segments.iter().enumerate() {
        let seg_end = plan.segments.get(i + 1).map_or(plan.end, |n| n.base_offset());
        if seg_end <= plan.first_dirty {
            continue;
        }
        if bytes > OFFSET_MAP_BUDGET {
            return Ok((map, seg.base_offset()));
        }
        for b in HeaderIter::new(seg.log_bytes(), 0) {
            let raw = &seg.log_bytes()[b.position as usize..b.position as usize + b.header.size()];
            let section = decompressed(&plan.dir, raw, &b.header)?;
            for r in batch::records_in(&section, &b.header) {
                if let Some(key) = r.key.filter(|_| r.offset >= plan.first_dirty) {
                    if map.insert(key.to_vec(), r.offset).is_none() {
                        bytes += key.len() + 32;
                    }
                }
            }
        }
    }
    Ok((map, plan.end))
}

fn decompressed(dir: &Path, raw: &[u8], header: &BatchHeader) -> Result<bytes::Bytes> {
    let codec = header.compression().map_err(|e| invalid(dir, e.to_string()))?;
    super::codec::decompress(codec, &raw[HEADER_SIZE..]).map_err(|e| invalid(dir, e))
}

/// What becomes of one batch.
enum Filtered {
    Unchanged,
    Dropped(u64),
    Rewritten(Vec<u8>, u64),
}

/// Keeps the records `keep` accepts, copying their bytes unchanged.
fn filter_batch(
    dir: &Path,
    raw: &[u8],
    header: &BatchHeader,
    mut keep: impl FnMut(&batch::Record<'_>) -> bool,
) -> Result<Filtered> {
    let section = decompressed(dir, raw, header)?;
    let mut iter = batch::records_in(&section, header);
    let mut kept: Vec<std::ops::Range<usize>> = Vec::new();
    let (mut seen, mut kept_count) = (0i32, 0i32);
    loop {
        let start = iter.position();
        let Some(r) = iter.next() else { break };
        seen += 1;
        if keep(&r) {
            kept_count += 1;
            match kept.last_mut() {
                Some(last) if last.end == start => last.end = iter.position(),
                _ => kept.push(start..iter.position()),
            }
        }
    }
    if seen != header.records_count {
        // Records that do not parse are kept as they are rather than guessed at.
        return Ok(Filtered::Unchanged);
    }
    let removed = u64::from((header.records_count - kept_count) as u32);
    if kept_count == header.records_count {
        return Ok(Filtered::Unchanged);
    }
    if kept_count == 0 {
        return Ok(Filtered::Dropped(removed));
    }
    let mut records = Vec::with_capacity(kept.iter().map(|r| r.len()).sum());
    for r in &kept {
        records.extend_from_slice(&section[r.clone()]);
    }
    let codec = header.compression().map_err(|e| invalid(dir, e.to_string()))?;
    let body = if codec == Compression::None {
        records
    } else {
        super::codec::compress(codec, &records).map_err(|e| invalid(dir, e))?
    };
    Ok(Filtered::Rewritten(batch::with_records(&raw[..HEADER_SIZE], kept_count, &body), removed))
}

/// Groups consecutive segments so that each group's inputs fit one segment.
fn group_segments(plan: &CleanPlan, end: i64) -> Vec<Vec<Arc<SegmentView>>> {
    let limit = u64::from(plan.config.segment_bytes);
    let max_index = plan.config.max_index_entries();
    let mut groups: Vec<Vec<Arc<SegmentView>>> = Vec::new();
    let (mut size, mut entries) = (0u64, 0usize);
    for seg in plan.segments.iter().filter(|s| s.base_offset() < end) {
        let seg_entries = seg.index_bytes().len() / 8;
        let fits = groups.last().is_some_and(|g: &Vec<Arc<SegmentView>>| {
            let span = seg.next_offset().max(seg.base_offset()) - g[0].base_offset();
            size + seg.size() <= limit && entries + seg_entries <= max_index && span <= i64::from(u32::MAX)
        });
        if fits {
            size += seg.size();
            entries += seg_entries;
            groups.last_mut().expect("a group exists when it fits").push(Arc::clone(seg));
        } else {
            size = seg.size();
            entries = seg_entries;
            groups.push(vec![Arc::clone(seg)]);
        }
    }
    groups
}

fn cleaned_path(dir: &Path, base: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base:020}{suffix}{CLEANED_SUFFIX}"))
}

/// Phase 2 of a pass, without any lock: writes the cleaned groups under `.cleaned` names.
///
/// # Errors
/// I/O errors, or batches that do not decompress (the pass is abandoned; its files are
/// removed by the caller or the next open).
pub fn clean(plan: &CleanPlan, now_ms: i64) -> Result<Cleaned> {
    let (map, end) = build_offset_map(plan)?;
    let delete_horizon = now_ms.saturating_sub(plan.config.delete_retention_ms);
    let mut stats = CleanStats::default();
    let mut groups = Vec::new();
    let all_groups = group_segments(plan, end);
    for (gi, group) in all_groups.iter().enumerate() {
        let base = group[0].base_offset();
        let group_end = all_groups.get(gi + 1).map_or(end, |g| g[0].base_offset());
        let log_path = cleaned_path(&plan.dir, base, LOG_SUFFIX);
        let file = std::fs::File::create(&log_path).map_err(|e| Error::io("create cleaned segment", &log_path, e))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut state = IndexState::new(base);
        let (mut index, mut time_index) = (Vec::new(), Vec::new());
        let mut position = 0u64;
        let mut next_offset = base;
        for seg in group {
            let log = seg.log_bytes();
            stats.bytes_read += log.len() as u64;
            for b in HeaderIter::new(log, 0) {
                let raw = &log[b.position as usize..b.position as usize + b.header.size()];
                let tombstone_expired = batch::index_timestamp(&b.header) < delete_horizon;
                let filtered = filter_batch(&plan.dir, raw, &b.header, |r| {
                    let Some(key) = r.key else { return true };
                    match map.get(key) {
                        Some(&latest) if r.offset < latest => false,
                        _ => r.value.is_some() || !tombstone_expired,
                    }
                })?;
                let rewritten;
                let bytes: &[u8] = match filtered {
                    Filtered::Unchanged => raw,
                    Filtered::Dropped(n) => {
                        stats.records_removed += n;
                        continue;
                    }
                    Filtered::Rewritten(b, n) => {
                        stats.records_removed += n;
                        rewritten = b;
                        &rewritten
                    }
                };
                let header = BatchHeader::parse(bytes).ok_or_else(|| invalid(&plan.dir, "rewritten batch".into()))?;
                let pos =
                    u32::try_from(position).map_err(|_| invalid(&plan.dir, "cleaned segment too large".into()))?;
                let (e, t) = state.on_batch(base, pos, &header, plan.config.index_interval_bytes);
                index.extend(e);
                time_index.extend(t);
                out.write_all(bytes).map_err(|e| Error::io("write cleaned segment", &log_path, e))?;
                position += bytes.len() as u64;
                next_offset = header.next_offset();
            }
        }
        time_index.extend(state.time_entry(base));
        let file = out.into_inner().map_err(|e| Error::io("write cleaned segment", &log_path, e.into_error()))?;
        file.sync_data().map_err(|e| Error::io("fsync cleaned segment", &log_path, e))?;
        write_entries::<OffsetIndexFormat>(&cleaned_path(&plan.dir, base, INDEX_SUFFIX), &index)?;
        write_entries::<TimeIndexFormat>(&cleaned_path(&plan.dir, base, TIME_INDEX_SUFFIX), &time_index)?;
        stats.bytes_written += position;
        stats.segments_in += group.len();
        stats.segments_out += 1;
        groups.push(CleanedGroup {
            base_offset: base,
            replaces: group.iter().map(|s| s.base_offset()).collect(),
            end: group_end,
            state: LoadedState {
                size: position,
                next_offset: next_offset.max(base),
                index_entries: index.len(),
                time_index_entries: time_index.len(),
                index_state: state,
            },
        });
    }
    Ok(Cleaned { groups, end, stats })
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| Error::io("rename", from, e))
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Commits one cleaned group's files (step 3 of the module docs) once the old segments'
/// files may go: `delete_old` deletes them.
pub fn swap_in(dir: &Path, group: &CleanedGroup, delete_old: impl FnOnce() -> Result<()>) -> Result<()> {
    let base = group.base_offset;
    let marker = segment_path(dir, base, SWAP_END_SUFFIX);
    let mut f = std::fs::File::create(&marker).map_err(|e| Error::io("create swap marker", &marker, e))?;
    f.write_all(group.end.to_string().as_bytes())
        .and_then(|()| f.sync_data())
        .map_err(|e| Error::io("write swap marker", &marker, e))?;
    for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX, LOG_SUFFIX] {
        let final_path = segment_path(dir, base, suffix);
        rename(&cleaned_path(dir, base, suffix), &with_suffix(&final_path, SWAP_SUFFIX))?;
    }
    super::sync_dir(dir)?; // the swap is committed
    delete_old()?;
    for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX, LOG_SUFFIX] {
        let final_path = segment_path(dir, base, suffix);
        rename(&with_suffix(&final_path, SWAP_SUFFIX), &final_path)?;
    }
    remove_if_exists(&marker)?;
    super::sync_dir(dir)
}

/// Removes the `.cleaned` files of an abandoned pass.
pub fn discard(dir: &Path, cleaned: &Cleaned) {
    for g in &cleaned.groups {
        for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            let _ = std::fs::remove_file(cleaned_path(dir, g.base_offset, suffix));
        }
    }
}

/// On open: completes swaps that were committed and removes the files of passes that were
/// not (see the module docs). Returns how many swaps were completed.
///
/// # Errors
/// I/O errors.
pub fn finish_interrupted_swaps(dir: &Path) -> Result<usize> {
    let mut log_swaps = Vec::new();
    let mut leftovers = Vec::new();
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io("list partition directory", dir, e))? {
        let entry = entry.map_err(|e| Error::io("list partition directory", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((base, suffix)) = segment::parse_segment_name(name) else { continue };
        match suffix {
            ".log.swap" => log_swaps.push(base),
            LOG_SUFFIX => segments.push(base),
            s if s.ends_with(CLEANED_SUFFIX) || s.ends_with(SWAP_SUFFIX) || s == SWAP_END_SUFFIX => {
                leftovers.push((base, entry.path()))
            }
            _ => {}
        }
    }
    if log_swaps.is_empty() && leftovers.is_empty() {
        return Ok(0);
    }
    for &base in &log_swaps {
        let marker = segment_path(dir, base, SWAP_END_SUFFIX);
        let end = std::fs::read_to_string(&marker).ok().and_then(|t| t.trim().parse::<i64>().ok());
        let end = match end {
            Some(end) => end,
            // No marker: the swap holds at least its own batches' offsets.
            None => swap_next_offset(&with_suffix(&segment_path(dir, base, LOG_SUFFIX), SWAP_SUFFIX))?.max(base + 1),
        };
        for &old in segments.iter().filter(|&&b| b >= base && b < end) {
            segment::delete_segment_files(dir, old)?;
        }
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX, LOG_SUFFIX] {
            let final_path = segment_path(dir, base, suffix);
            let swap = with_suffix(&final_path, SWAP_SUFFIX);
            if swap.exists() {
                rename(&swap, &final_path)?;
            }
        }
        remove_if_exists(&marker)?;
        tracing::warn!(dir = %dir.display(), segment = base, end, "completed an interrupted compaction swap");
    }
    for (base, path) in leftovers {
        if !log_swaps.contains(&base) || path.to_string_lossy().ends_with(CLEANED_SUFFIX) {
            remove_if_exists(&path)?;
        }
    }
    super::sync_dir(dir)?;
    Ok(log_swaps.len())
}

fn swap_next_offset(path: &Path) -> Result<i64> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read swap segment", path, e))?;
    Ok(HeaderIter::new(&bytes, 0).last().map_or(0, |b| b.header.next_offset()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::log::batch::tests::compress_batch;
    use crate::log::batch::BatchBuilder;
    use crate::log::config::CleanupPolicy;
    use crate::log::{AppendOptions, Log, LogReader, OpenState, TopicPartition};

    const NOW: i64 = 1_700_000_000_000;

    fn config() -> LogConfig {
        LogConfig {
            segment_bytes: 4096,
            index_interval_bytes: 200,
            cleanup_policy: CleanupPolicy { delete: false, compact: true },
            delete_retention_ms: 3_600_000,
            ..LogConfig::default()
        }
    }

    fn open(dir: &Path, config: LogConfig) -> Log {
        Log::open(dir, TopicPartition::new("kv", 0), Arc::new(config), OpenState::UNKNOWN, NOW).expect("open")
    }

    /// A batch of (key, value) records (None = tombstone) at `ts`, compressed with `codec`.
    fn keyed(records: &[(String, Option<String>)], ts: i64, codec: Compression) -> Vec<u8> {
        let mut b = BatchBuilder::new();
        for (k, v) in records {
            b.record(ts, Some(k.as_bytes()), v.as_ref().map(|v| v.as_bytes()), &[("h", b"x")]);
        }
        let plain = b.build();
        if codec == Compression::None {
            plain
        } else {
            compress_batch(&plain, codec)
        }
    }

    /// Every record readable from the log: (offset, key, value).
    fn contents(reader: &LogReader) -> Vec<(i64, String, Option<String>)> {
        let mut out = Vec::new();
        let mut offset = reader.log_start_offset();
        while offset < reader.log_end_offset() {
            let r = reader.read(offset, usize::MAX, i64::MAX, true).expect("read");
            if r.records.is_empty() {
                break;
            }
            for b in HeaderIter::new(&r.records, 0) {
                let raw = &r.records[b.position as usize..b.position as usize + b.header.size()];
                assert!(batch::validate_stored(raw).is_ok(), "every stored batch checks out");
                let section = decompressed(Path::new("."), raw, &b.header).expect("decompress");
                for rec in batch::records_in(&section, &b.header) {
                    let s = |x: &[u8]| String::from_utf8(x.to_vec()).expect("utf-8");
                    out.push((rec.offset, s(rec.key.expect("key")), rec.value.map(s)));
                }
            }
            offset = r.next_offset;
        }
        out
    }

    /// Writes 30 rounds over 10 keys with every codec, k3 deleted in the last round; returns the
    /// expected latest (offset, value) per key.
    fn fill(log: &mut Log, ts: i64) -> BTreeMap<String, (i64, Option<String>)> {
        let codecs = [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];
        let mut latest = BTreeMap::new();
        for round in 0..30 {
            let records: Vec<(String, Option<String>)> = (0..10)
                .map(|k| {
                    let value = (round != 29 || k != 3).then(|| format!("v{round}-{k}"));
                    (format!("k{k}"), value)
                })
                .collect();
            let b = keyed(&records, ts + round, codecs[round as usize % codecs.len()]);
            let info = log.append(&b, AppendOptions { leader_epoch: Some(1), now_ms: ts + round }).expect("append");
            for (i, (k, v)) in records.into_iter().enumerate() {
                latest.insert(k, (info.base_offset + i as i64, v));
            }
        }
        latest
    }

    fn pass(log: &mut Log, now: i64) -> CleanStats {
        let plan = log.plan_cleaning(now).expect("dirty enough to clean");
        let cleaned = clean(&plan, now).expect("clean");
        log.install_cleaned(cleaned).expect("install")
    }

    #[test]
    fn compaction_keeps_the_latest_record_per_key_with_its_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = || LogConfig { segment_bytes: 1024, ..config() };
        let mut log = open(dir.path(), config());
        let latest = fill(&mut log, NOW - 10_000);
        log.roll(NOW).expect("roll");
        let before = log.reader().size();
        let segments_before = log.reader().segment_count();
        let stats = pass(&mut log, NOW);
        assert!(stats.records_removed > 250, "{stats:?}");
        assert!(log.reader().size() < before / 4, "reclaimed: {before} -> {}", log.reader().size());
        let got = contents(&log.reader());
        let expected = |latest: &BTreeMap<String, (i64, Option<String>)>| {
            let mut v: Vec<_> = latest.iter().map(|(k, (o, val))| (*o, k.clone(), val.clone())).collect();
            v.sort();
            v
        };
        assert_eq!(got, expected(&latest), "one record per key, the latest, at its original offset (tombstone kept)");
        // Nothing more to clean until new data arrives; then the small cleaned segments are
        // merged into one.
        assert!(log.plan_cleaning(NOW).is_none());
        let b = keyed(&[("k0".to_owned(), Some("v30-0".to_owned()))], NOW, Compression::None);
        log.append(&b, AppendOptions { leader_epoch: Some(1), now_ms: NOW }).expect("append");
        log.roll(NOW).expect("roll");
        log.set_config(Arc::new(LogConfig { min_cleanable_dirty_ratio: 0.0, ..config() }));
        pass(&mut log, NOW);
        assert!(
            log.reader().segment_count() <= segments_before / 2,
            "small cleaned segments were merged: {segments_before} -> {}",
            log.reader().segment_count()
        );
        let mut latest = latest;
        latest.insert("k0".to_owned(), (log.log_end_offset() - 1, Some("v30-0".to_owned())));
        // A reopen (unclean: everything is scanned and checked) sees the same log.
        let end = log.log_end_offset();
        drop(log);
        let log = open(dir.path(), config());
        assert_eq!(log.log_end_offset(), end);
        assert_eq!(contents(&log.reader()), expected(&latest));
    }

    #[test]
    fn tombstones_go_after_delete_retention_ms() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), LogConfig { delete_retention_ms: 1_000, ..config() });
        fill(&mut log, NOW - 10_000);
        log.roll(NOW).expect("roll");
        // The tombstone is older than delete.retention.ms at the first pass: gone with its key.
        pass(&mut log, NOW);
        let keys: Vec<String> = contents(&log.reader()).into_iter().map(|(_, k, _)| k).collect();
        assert_eq!(keys.len(), 9);
        assert!(!keys.contains(&"k3".to_owned()));
    }

    #[test]
    fn a_young_tombstone_survives_until_a_later_pass() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), LogConfig { delete_retention_ms: 60_000, ..config() });
        fill(&mut log, NOW - 10_000);
        log.roll(NOW).expect("roll");
        pass(&mut log, NOW);
        assert!(contents(&log.reader()).iter().any(|(_, k, v)| k == "k3" && v.is_none()));
        // New data makes the log dirty again; a pass after the retention drops the tombstone.
        let later = NOW + 120_000;
        let b = keyed(&[("k0".to_owned(), Some("new".to_owned()))], later, Compression::None);
        log.append(&b, AppendOptions { leader_epoch: Some(1), now_ms: later }).expect("append");
        log.roll(later).expect("roll");
        let log_config = LogConfig { min_cleanable_dirty_ratio: 0.0, delete_retention_ms: 60_000, ..config() };
        log.set_config(Arc::new(log_config));
        pass(&mut log, later);
        assert!(!contents(&log.reader()).iter().any(|(_, k, _)| k == "k3"));
    }

    #[test]
    fn the_cleaner_offset_carried_over_a_restart_spares_a_second_full_pass() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), config());
        fill(&mut log, NOW - 10_000);
        log.roll(NOW).expect("roll");
        pass(&mut log, NOW);
        let cleaner_offset = log.reader().first_dirty_offset();
        assert!(cleaner_offset > 0);
        drop(log);
        let state = OpenState { cleaner_offset, ..OpenState::UNKNOWN };
        let log = Log::open(dir.path(), TopicPartition::new("kv", 0), Arc::new(config()), state, NOW).expect("open");
        assert!(log.plan_cleaning(NOW).is_none(), "nothing dirty: the checkpoint says where the last pass ended");
        drop(log);
        let log = open(dir.path(), config());
        assert!(log.plan_cleaning(NOW).is_some(), "without it, the whole log counts as dirty");
    }

    #[test]
    fn min_compaction_lag_leaves_young_segments_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), LogConfig { min_compaction_lag_ms: 60_000, ..config() });
        fill(&mut log, NOW - 1_000);
        log.roll(NOW).expect("roll");
        assert!(log.plan_cleaning(NOW).is_none(), "every segment is younger than the lag");
        assert!(log.plan_cleaning(NOW + 61_000).is_some());
    }

    #[test]
    fn an_uncommitted_pass_is_discarded_and_a_committed_swap_is_finished_on_open() {
        // Uncommitted: .cleaned files exist, the old segments are intact.
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), config());
        fill(&mut log, NOW - 10_000);
        log.roll(NOW).expect("roll");
        let original = contents(&log.reader());
        let plan = log.plan_cleaning(NOW).expect("plan");
        let cleaned = clean(&plan, NOW).expect("clean");
        drop(log);
        let log = open(dir.path(), config());
        assert_eq!(contents(&log.reader()), original);
        let leftovers = std::fs::read_dir(dir.path().join("kv-0"))
            .expect("list")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".cleaned"))
            .count();
        assert_eq!(leftovers, 0);
        drop(log);

        // Committed: the swap marker and .swap files exist, some old segments are still there.
        let dir2 = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir2.path(), config());
        fill(&mut log, NOW - 10_000);
        log.roll(NOW).expect("roll");
        let plan = log.plan_cleaning(NOW).expect("plan");
        let cleaned2 = clean(&plan, NOW).expect("clean");
        let probe_dir = tempfile::tempdir().expect("tempdir");
        let expected = {
            let mut probe = open(probe_dir.path(), config());
            fill(&mut probe, NOW - 10_000);
            probe.roll(NOW).expect("roll");
            pass(&mut probe, NOW);
            contents(&probe.reader())
        };
        let pdir = dir2.path().join("kv-0");
        // Crash right after the commit point of the first group (old segments not deleted).
        let g = &cleaned2.groups[0];
        swap_in(&pdir, g, || Err(Error::io("simulated crash", &pdir, std::io::Error::other("crash"))))
            .expect_err("crash");
        drop(log);
        let log = open(dir2.path(), config());
        let got = contents(&log.reader());
        // The first group's range is compacted, the rest is the original log: every key's
        // latest record is present exactly at its offset, nothing is duplicated.
        let offsets: Vec<i64> = got.iter().map(|(o, _, _)| *o).collect();
        let mut sorted = offsets.clone();
        sorted.dedup();
        assert_eq!(offsets, sorted, "offsets increase, no duplicates");
        for e in &expected {
            assert!(got.contains(e), "latest record {e:?} survives");
        }
        drop(cleaned);
    }
}
