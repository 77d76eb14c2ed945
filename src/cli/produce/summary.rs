//! The end of a `weir produce` run: per-partition counters, the [`Summary`] made of them,
//! and its two forms — text on stderr, one JSON object on stdout with `--format json`. It
//! owns the hints for the errors a Produce meets; it sends nothing.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use kafka_protocol::error::{ParseResponseErrorCode, ResponseError};
use serde::Serialize;

use crate::cli::error_name;
use crate::log::batch::Compression;

/// Counters of one partition.
#[derive(Debug, Default)]
pub(crate) struct PartitionStats {
    pub(crate) acknowledged: u64,
    /// With `--acks 0`: written to the socket, never confirmed.
    pub(crate) sent: u64,
    pub(super) batches: u64,
    pub(super) first_offset: Option<i64>,
    pub(super) last_offset: Option<i64>,
    /// error code → refusals with that code
    pub(crate) refused: BTreeMap<i16, Refusals>,
}

/// Records refused with one error code.
#[derive(Debug, Default)]
pub(crate) struct Refusals {
    pub(crate) records: u64,
    pub(super) batches: u64,
    /// The broker's first message about them.
    pub(crate) message: Option<String>,
}

/// The run-wide numbers of a [`Summary`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Totals {
    /// Lines read from stdin.
    pub(super) records: u64,
    /// Batch bytes sent.
    pub(super) bytes: u64,
    pub(super) acks: i16,
    pub(super) compression: Compression,
    pub(super) elapsed: Duration,
}

/// What `weir produce --format json` prints on stdout when it is done, one object:
/// `{"topic", "records" (lines read), "acknowledged", "sent" (acks=0), "refused", "batches",
/// "bytes" (batch bytes sent), "acks", "compression", "elapsed_ms", "partitions": [{
/// "partition", "acknowledged", "sent", "refused", "batches", "first_offset",
/// "last_offset", "errors": [{"error", "code", "records", "batches", "message"}]}]}`.
/// Partitions nothing was written to are left out.
#[derive(Debug, Serialize)]
pub struct Summary {
    topic: String,
    records: u64,
    acknowledged: u64,
    sent: u64,
    pub(super) refused: u64,
    batches: u64,
    bytes: u64,
    acks: i16,
    compression: &'static str,
    elapsed_ms: u64,
    partitions: Vec<PartitionSummary>,
}

#[derive(Debug, Serialize)]
struct PartitionSummary {
    partition: i32,
    acknowledged: u64,
    sent: u64,
    refused: u64,
    batches: u64,
    first_offset: Option<i64>,
    last_offset: Option<i64>,
    errors: Vec<ErrorSummary>,
}

#[derive(Debug, Serialize)]
struct ErrorSummary {
    error: String,
    code: i16,
    records: u64,
    batches: u64,
    message: Option<String>,
}

/// What to do about the errors a Produce meets (beyond [`crate::cli::hint`]).
fn produce_hint(code: i16) -> Option<&'static str> {
    use ResponseError as E;
    Some(match code.err()? {
        E::MessageTooLarge => "larger than the topic's max.message.bytes; lower --batch-bytes unless one record is",
        E::RecordListTooLarge => "the request is larger than the broker's socket.request.max.bytes",
        E::NotEnoughReplicas | E::NotEnoughReplicasAfterAppend => {
            "fewer in-sync replicas than min.insync.replicas; try --acks 1"
        }
        E::InvalidRecord => "the broker found the batch invalid",
        _ => return crate::cli::hint(code),
    })
}

/// `1 record`, `2 records`; `1 batch`, `2 batches`.
fn count(n: u64, word: &str) -> String {
    match (n, word.ends_with('h')) {
        (1, _) => format!("1 {word}"),
        (_, true) => format!("{n} {word}es"),
        (_, false) => format!("{n} {word}s"),
    }
}

impl Summary {
    /// The summary of a run from its per-partition counters (indexed by partition).
    pub(super) fn new(topic: &str, stats: &[PartitionStats], totals: Totals) -> Summary {
        let mut partitions = Vec::new();
        for (p, s) in stats.iter().enumerate() {
            let refused: u64 = s.refused.values().map(|r| r.records).sum();
            if s.acknowledged + s.sent + refused == 0 {
                continue;
            }
            let errors = s
                .refused
                .iter()
                .map(|(&code, r)| ErrorSummary {
                    error: error_name(code),
                    code,
                    records: r.records,
                    batches: r.batches,
                    message: r.message.clone(),
                })
                .collect();
            partitions.push(PartitionSummary {
                partition: p as i32,
                acknowledged: s.acknowledged,
                sent: s.sent,
                refused,
                batches: s.batches,
                first_offset: s.first_offset,
                last_offset: s.last_offset,
                errors,
            });
        }
        let sum = |f: fn(&PartitionSummary) -> u64| partitions.iter().map(f).sum();
        Summary {
            topic: topic.to_owned(),
            records: totals.records,
            acknowledged: sum(|p| p.acknowledged),
            sent: sum(|p| p.sent),
            refused: sum(|p| p.refused),
            batches: sum(|p| p.batches),
            bytes: totals.bytes,
            acks: totals.acks,
            compression: totals.compression.name(),
            elapsed_ms: totals.elapsed.as_millis() as u64,
            partitions,
        }
    }

    /// The human summary: a total line, one line per partition, one per refusal.
    pub(super) fn print_text(&self, out: &mut impl Write) -> std::io::Result<()> {
        let secs = self.elapsed_ms as f64 / 1000.0;
        let rate = if secs > 0.0 { (self.acknowledged + self.sent) as f64 / secs } else { 0.0 };
        let done = if self.acks == 0 {
            format!("sent {} (acks=0: not acknowledged)", count(self.sent, "record"))
        } else {
            format!("produced {}", count(self.acknowledged, "record"))
        };
        writeln!(
            out,
            "{done} to {} in {} ({:.1} MB, {}) in {secs:.2} s: {rate:.0} records/s",
            self.topic,
            count(self.batches, "batch"),
            self.bytes as f64 / 1e6,
            self.compression,
        )?;
        for p in &self.partitions {
            let mut line = format!("  partition {}: ", p.partition);
            if self.acks == 0 {
                line.push_str(&format!("{} sent", count(p.sent, "record")));
            } else {
                line.push_str(&count(p.acknowledged, "record"));
                if let (Some(first), Some(last)) = (p.first_offset, p.last_offset) {
                    line.push_str(&format!(", offsets {first}..{last}"));
                }
            }
            if p.refused > 0 {
                line.push_str(&format!(", {} refused", p.refused));
            }
            writeln!(out, "{line}")?;
        }
        for p in &self.partitions {
            for e in &p.errors {
                let hint = produce_hint(e.code).map(|h| format!(": {h}")).unwrap_or_default();
                let message = e.message.as_ref().map(|m| format!(" (broker: {m})")).unwrap_or_default();
                writeln!(
                    out,
                    "error: partition {}: {} in {} refused: {} ({}){hint}{message}",
                    p.partition,
                    count(e.records, "record"),
                    count(e.batches, "batch"),
                    e.error,
                    e.code
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_summary_names_partitions_offsets_and_refusals() {
        let mut stats: Vec<PartitionStats> = (0..3).map(|_| PartitionStats::default()).collect();
        stats[0] = PartitionStats {
            acknowledged: 5,
            batches: 1,
            first_offset: Some(10),
            last_offset: Some(14),
            ..PartitionStats::default()
        };
        stats[2].batches = 1;
        stats[2].refused.insert(10, Refusals { records: 1, batches: 1, message: None });
        let totals =
            Totals { records: 6, bytes: 2_000_000, acks: -1, compression: Compression::Lz4, elapsed: Duration::ZERO };
        let summary = Summary::new("t", &stats, totals);
        assert_eq!(summary.refused, 1);
        let mut out = Vec::new();
        summary.print_text(&mut out).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "produced 5 records to t in 2 batches (2.0 MB, lz4) in 0.00 s: 0 records/s");
        assert_eq!(lines[1], "  partition 0: 5 records, offsets 10..14");
        assert_eq!(lines[2], "  partition 2: 0 records, 1 refused");
        assert!(lines[3].starts_with("error: partition 2: 1 record in 1 batch refused: MESSAGE_TOO_LARGE (10): "));
        let json = serde_json::to_value(&summary).expect("json");
        assert_eq!(json["partitions"][1]["errors"][0]["error"], "MESSAGE_TOO_LARGE");
        assert_eq!(json["partitions"].as_array().map(Vec::len), Some(2));
    }
}
