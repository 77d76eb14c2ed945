//! Offline inspection of segment files: the engine behind `weir log dump` and
//! `weir log verify`. Reads files directly (no log is opened, nothing is written).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::batch::{self, BatchHeader, HeaderIter, ScanEnd};
use super::error::{Error, Result};
use super::offset_index;
use super::segment::{parse_segment_name, segment_path, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use super::time_index;

/// One batch as `weir log dump` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BatchSummary {
    pub base_offset: i64,
    pub last_offset: i64,
    pub count: i32,
    pub position: u32,
    pub size: usize,
    pub create_time: i64,
    pub max_timestamp: i64,
    pub timestamp_type: &'static str,
    pub compression: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub partition_leader_epoch: i32,
    pub is_transactional: bool,
    pub is_control: bool,
    pub crc: u32,
    pub crc_valid: bool,
}

fn summarize(position: u32, h: &BatchHeader, bytes: &[u8]) -> BatchSummary {
    BatchSummary {
        base_offset: h.base_offset,
        last_offset: h.last_offset(),
        count: h.records_count,
        position,
        size: h.size(),
        create_time: h.base_timestamp,
        max_timestamp: h.max_timestamp,
        timestamp_type: match h.timestamp_type() {
            batch::TimestampType::CreateTime => "CreateTime",
            batch::TimestampType::LogAppendTime => "LogAppendTime",
        },
        compression: h.compression().map(|c| c.name().to_owned()).unwrap_or_else(|e| e.to_string()),
        producer_id: h.producer_id,
        producer_epoch: h.producer_epoch,
        base_sequence: h.base_sequence,
        partition_leader_epoch: h.partition_leader_epoch,
        is_transactional: h.is_transactional(),
        is_control: h.is_control(),
        crc: h.crc,
        crc_valid: batch::compute_crc(bytes) == h.crc,
    }
}

/// Every batch in a `.log` file's bytes, plus a description of trailing bytes that do not
/// form a batch.
pub fn dump_log(bytes: &[u8]) -> (Vec<BatchSummary>, Option<String>) {
    let batches: Vec<BatchSummary> = HeaderIter::new(bytes, 0)
        .map(|b| {
            let start = b.position as usize;
            summarize(b.position, &b.header, &bytes[start..start + b.header.size()])
        })
        .collect();
    let end = batches.last().map_or(0, |b| b.position as usize + b.size);
    let trailing = trailing_problem(bytes, end as u64);
    (batches, trailing)
}

/// What the bytes after the last valid batch are: nothing, space reserved ahead of appends
/// (all zeros: an active segment of a running broker, or of one that crashed), or damage.
fn trailing_problem(bytes: &[u8], end: u64) -> Option<String> {
    let tail = bytes.get(end as usize..).unwrap_or_default();
    if tail.is_empty() || tail.iter().all(|&b| b == 0) {
        None
    } else {
        Some(format!("{} trailing bytes at position {end} are not a complete batch", tail.len()))
    }
}

/// What is wrong with one segment.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub message: String,
}

/// The outcome of verifying segments.
#[derive(Debug, Clone, Serialize, Default)]
pub struct VerifyReport {
    pub segments: usize,
    pub batches: usize,
    pub bytes: u64,
    pub problems: Vec<Problem>,
}

/// Verifies every segment in `dir` (a partition directory, or a data directory holding
/// partition directories): CRC and header of every batch, increasing offsets, and that the
/// `.index` and `.timeindex` are consistent with the log.
///
/// # Errors
/// Only when a directory or file cannot be read at all.
pub fn verify_dir(dir: &Path) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let mut bases = Vec::new();
    let mut subdirs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().map_err(|e| Error::io("stat", entry.path(), e))?.is_dir() {
            subdirs.push(entry.path());
        } else if let Some((base, LOG_SUFFIX)) = parse_segment_name(&name) {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    subdirs.sort();
    let mut min_offset = bases.first().copied().unwrap_or(0);
    for &base in &bases {
        min_offset = verify_segment(dir, base, min_offset, &mut report)?;
    }
    for sub in subdirs {
        let r = verify_dir(&sub)?;
        report.segments += r.segments;
        report.batches += r.batches;
        report.bytes += r.bytes;
        report.problems.extend(r.problems);
    }
    Ok(report)
}

fn verify_segment(dir: &Path, base: i64, min_offset: i64, report: &mut VerifyReport) -> Result<i64> {
    let log_path = segment_path(dir, base, LOG_SUFFIX);
    let log = std::fs::read(&log_path).map_err(|e| Error::io("read", &log_path, e))?;
    report.segments += 1;
    report.bytes += log.len() as u64;
    let mut problem = |file: &Path, message: String| report.problems.push(Problem { file: file.to_owned(), message });
    if min_offset > base {
        problem(
            &log_path,
            format!("segment base offset {base} overlaps the previous segment, which ends at {min_offset}"),
        );
    }
    let mut next = base;
    let mut batches = Vec::new();
    let end = batch::scan_valid(&log, 0, base, |b| {
        batches.push(b);
        next = b.header.next_offset();
    });
    if let ScanEnd::Invalid { position, reason } = end {
        // Zeros after the last batch are reserved space (active segment), not damage.
        if trailing_problem(&log, u64::from(position)).is_some() {
            problem(&log_path, format!("invalid data at position {position}: {reason}"));
        }
    }
    let index_path = segment_path(dir, base, INDEX_SUFFIX);
    match std::fs::read(&index_path) {
        Ok(index) => {
            if let Err(e) = offset_index::sanity_check(index.len() as u64, &index, log.len() as u64) {
                problem(&index_path, e);
            }
            for e in offset_index::decode_all(&index) {
                let offset = base + i64::from(e.relative_offset);
                let ok = batches
                    .binary_search_by_key(&e.position, |b| b.position)
                    .is_ok_and(|i| batches[i].header.last_offset() == offset);
                if !ok {
                    problem(
                        &index_path,
                        format!(
                            "entry (offset {offset}, position {}) does not point at the batch ending at that offset",
                            e.position
                        ),
                    );
                }
            }
        }
        Err(e) => problem(&index_path, format!("cannot read: {e}")),
    }
    let time_path = segment_path(dir, base, TIME_INDEX_SUFFIX);
    match std::fs::read(&time_path) {
        Ok(times) => {
            if let Err(e) = time_index::sanity_check(times.len() as u64, &times, (next - base).max(0) as u64) {
                problem(&time_path, e);
            }
            // Every entry's timestamp must be the largest timestamp of the batches up to and
            // including the batch that holds its offset.
            for e in time_index::decode_all(&times) {
                let offset = base + i64::from(e.relative_offset);
                let max =
                    batches.iter().take_while(|b| b.header.base_offset <= offset).map(|b| b.header.max_timestamp).max();
                if max != Some(e.timestamp) {
                    problem(&time_path, format!("entry (timestamp {}, offset {offset}) disagrees with the log's largest timestamp {max:?} up to that offset", e.timestamp));
                }
            }
        }
        Err(e) => problem(&time_path, format!("cannot read: {e}")),
    }
    report.batches += batches.len();
    Ok(next)
}
