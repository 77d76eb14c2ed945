//! `weir log dump <files...>` and `weir log verify <dir>`: offline tools over segment files.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use super::Format;
use crate::log::segment::{parse_segment_name, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use crate::log::verify::{self, BatchSummary};
use crate::log::{offset_index, time_index};

/// Exit code when `verify` finds damage.
pub const EXIT_DAMAGED: i32 = 1;

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Dumped {
    Log { path: PathBuf, batches: Vec<BatchSummary>, trailing: Option<String> },
    Index { path: PathBuf, entries: Vec<IndexRow> },
    TimeIndex { path: PathBuf, entries: Vec<TimeRow> },
}

#[derive(Serialize)]
struct IndexRow {
    offset: i64,
    position: u32,
}

#[derive(Serialize)]
struct TimeRow {
    timestamp: i64,
    offset: i64,
}

fn dump_file(path: &Path) -> anyhow::Result<Dumped> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let (base, suffix) = parse_segment_name(name).with_context(|| {
        format!("{} is not a segment file (<20-digit base offset>.log|.index|.timeindex)", path.display())
    })?;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let path = path.to_owned();
    Ok(match suffix {
        LOG_SUFFIX => {
            let (batches, trailing) = verify::dump_log(&bytes);
            Dumped::Log { path, batches, trailing }
        }
        INDEX_SUFFIX => Dumped::Index {
            path,
            entries: offset_index::decode_all(&bytes)
                .into_iter()
                .map(|e| IndexRow { offset: base + i64::from(e.relative_offset), position: e.position })
                .collect(),
        },
        TIME_INDEX_SUFFIX => Dumped::TimeIndex {
            path,
            entries: time_index::decode_all(&bytes)
                .into_iter()
                .map(|e| TimeRow { timestamp: e.timestamp, offset: base + i64::from(e.relative_offset) })
                .collect(),
        },
        other => anyhow::bail!("{} has unknown suffix {other}", path.display()),
    })
}

fn print_text(out: &mut impl Write, d: &Dumped) -> std::io::Result<()> {
    match d {
        Dumped::Log { path, batches, trailing } => {
            writeln!(out, "Dumping {}", path.display())?;
            for b in batches {
                writeln!(
                    out,
                    "baseOffset: {} lastOffset: {} count: {} position: {} CreateTime: {} maxTimestamp: {} size: {} compresscodec: {} producerId: {} producerEpoch: {} baseSequence: {} partitionLeaderEpoch: {} isTransactional: {} isControl: {} crc: {} isvalid: {}",
                    b.base_offset, b.last_offset, b.count, b.position, b.create_time, b.max_timestamp, b.size,
                    b.compression, b.producer_id, b.producer_epoch, b.base_sequence, b.partition_leader_epoch,
                    b.is_transactional, b.is_control, b.crc, b.crc_valid
                )?;
            }
            if let Some(t) = trailing {
                writeln!(out, "WARNING: {t}")?;
            }
        }
        Dumped::Index { path, entries } => {
            writeln!(out, "Dumping {}", path.display())?;
            for e in entries {
                writeln!(out, "offset: {} position: {}", e.offset, e.position)?;
            }
        }
        Dumped::TimeIndex { path, entries } => {
            writeln!(out, "Dumping {}", path.display())?;
            for e in entries {
                writeln!(out, "timestamp: {} offset: {}", e.timestamp, e.offset)?;
            }
        }
    }
    Ok(())
}

/// `weir log dump`: prints every batch of `.log` files and every entry of index files.
/// Returns the exit code.
///
/// # Errors
/// A file that cannot be read or is not a segment file.
pub fn dump(files: &[PathBuf], format: Format) -> anyhow::Result<i32> {
    let dumped = files.iter().map(|f| dump_file(f)).collect::<anyhow::Result<Vec<_>>>()?;
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "files": dumped }))?;
            writeln!(out)?;
        }
        Format::Text => {
            for d in &dumped {
                print_text(&mut out, d)?;
            }
        }
    }
    Ok(0)
}

/// `weir log verify`: checks every segment under `dir`; exit code 1 on any damage.
///
/// # Errors
/// A directory that cannot be read.
pub fn verify(dir: &Path, format: Format) -> anyhow::Result<i32> {
    let report = verify::verify_dir(dir).with_context(|| format!("cannot verify {}", dir.display()))?;
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        Format::Text => {
            for p in &report.problems {
                writeln!(out, "DAMAGED {}: {}", p.file.display(), p.message)?;
            }
            let verdict = if report.problems.is_empty() { "OK" } else { "DAMAGED" };
            writeln!(
                out,
                "{verdict}: {} segments, {} batches, {} bytes, {} problems",
                report.segments,
                report.batches,
                report.bytes,
                report.problems.len()
            )?;
        }
    }
    Ok(if report.problems.is_empty() { 0 } else { EXIT_DAMAGED })
}
