//! Idempotent-producer state of one partition: per producer id, its epoch and the last five
//! batches it appended (Kafka's `ProducerStateManager`).
//!
//! Decisions are pure ([`ProducerState::check`]); the caller appends and then
//! [`ProducerState::record`]s. Rules, as Kafka applies them:
//! - an epoch below the producer's current one is fenced: INVALID_PRODUCER_EPOCH;
//! - a batch matching one of the last five (same epoch, first and last sequence) is a retry:
//!   it is acknowledged with the original offsets and not written again;
//! - otherwise, in the current epoch the first sequence must follow the last one
//!   (wrapping after `i32::MAX`), and a new epoch must start at sequence 0:
//!   OUT_OF_ORDER_SEQUENCE_NUMBER.
//!
//! # Durability
//! The state is a function of the log's batch headers (producer id, epoch, base sequence,
//! offsets), so it can always be rebuilt by [`ProducerState::observe`]-ing them. A snapshot
//! (`producer-state.json` in the partition directory) written on clean shutdown records the
//! state up to an offset; on open, batches after that offset are scanned, so the state is
//! right after a crash as well. See `storage-format.md`.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::batch::BatchHeader;
use super::error::{Error, Result};

/// Batches remembered per producer for duplicate detection (Kafka's constant).
pub const REMEMBERED_BATCHES: usize = 5;

/// File name of the snapshot in a partition directory.
pub const SNAPSHOT_FILE: &str = "producer-state.json";

/// One appended batch of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMeta>,
}

/// What to do with an idempotent batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Append it.
    Append,
    /// A retry of a batch already in the log: acknowledge with these offsets.
    Duplicate(BatchMeta),
    /// The producer's epoch is older than the current one (a zombie).
    InvalidEpoch,
    /// The sequence does not follow the last one.
    OutOfOrder,
}

/// The producer state of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerState {
    producers: HashMap<i64, ProducerEntry>,
}

/// The sequence after `seq` (sequences wrap to 0 after `i32::MAX`).
fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

/// The last sequence of a batch starting at `first_seq` with `records` records.
pub fn last_seq(first_seq: i32, records: i32) -> i32 {
    let last = i64::from(first_seq) + i64::from(records) - 1;
    (last % (i64::from(i32::MAX) + 1)) as i32
}

impl ProducerState {
    /// Decides what to do with a batch of `producer_id`/`epoch` spanning `first_seq..=last_seq`.
    pub fn check(&self, producer_id: i64, epoch: i16, first_seq: i32, last_seq: i32) -> SequenceCheck {
        let Some(entry) = self.producers.get(&producer_id) else {
            // A producer this partition has not seen: its first batch starts at 0.
            return if first_seq == 0 { SequenceCheck::Append } else { SequenceCheck::OutOfOrder };
        };
        if epoch < entry.epoch {
            return SequenceCheck::InvalidEpoch;
        }
        if epoch > entry.epoch {
            return if first_seq == 0 { SequenceCheck::Append } else { SequenceCheck::OutOfOrder };
        }
        if let Some(dup) = entry.batches.iter().find(|b| b.first_seq == first_seq && b.last_seq == last_seq) {
            return SequenceCheck::Duplicate(*dup);
        }
        match entry.batches.back() {
            Some(last) if first_seq != next_seq(last.last_seq) => SequenceCheck::OutOfOrder,
            _ => SequenceCheck::Append,
        }
    }

    /// Records an appended batch.
    pub fn record(&mut self, producer_id: i64, epoch: i16, meta: BatchMeta) {
        let entry = self.producers.entry(producer_id).or_default();
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(meta);
        while entry.batches.len() > REMEMBERED_BATCHES {
            entry.batches.pop_front();
        }
    }

    /// Updates the state from a stored batch header (recovery and snapshot catch-up).
    /// Batches without a producer id are ignored.
    pub fn observe(&mut self, header: &BatchHeader) {
        if header.producer_id < 0 || header.is_control() {
            return;
        }
        let meta = BatchMeta {
            first_seq: header.base_sequence,
            last_seq: last_seq(header.base_sequence, header.records_count),
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
        };
        let current = self.producers.get(&header.producer_id).map(|e| e.epoch);
        if current.is_none_or(|e| header.producer_epoch >= e) {
            self.record(header.producer_id, header.producer_epoch, meta);
        }
    }

    /// The current epoch of a producer, if known.
    pub fn epoch(&self, producer_id: i64) -> Option<i16> {
        self.producers.get(&producer_id).map(|e| e.epoch)
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Writes the snapshot of the state as of `offset` (temp → fsync → rename → fsync dir).
    ///
    /// # Errors
    /// I/O failures (the previous snapshot stays).
    pub fn write_snapshot(&self, dir: &Path, offset: i64) -> Result<()> {
        let snapshot =
            Snapshot { version: 1, offset, producers: self.producers.iter().map(|(k, v)| (*k, v.clone())).collect() };
        let json = serde_json::to_vec(&snapshot).expect("producer state always serializes");
        super::checkpoint::write_atomically(&dir.join(SNAPSHOT_FILE), &json)
    }

    /// Reads the snapshot in `dir`: the state and the offset it covers up to (exclusive).
    /// `None` when there is none.
    ///
    /// # Errors
    /// An unreadable or malformed snapshot.
    pub fn read_snapshot(dir: &Path) -> Result<Option<(ProducerState, i64)>> {
        let path = dir.join(SNAPSHOT_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read producer state", &path, e)),
        };
        let snapshot: Snapshot = serde_json::from_slice(&bytes)
            .map_err(|e| Error::CorruptMetadata { path: path.clone(), reason: e.to_string() })?;
        Ok(Some((ProducerState { producers: snapshot.producers.into_iter().collect() }, snapshot.offset)))
    }
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    offset: i64,
    producers: Vec<(i64, ProducerEntry)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(first_seq: i32, last_seq: i32, base_offset: i64) -> BatchMeta {
        BatchMeta { first_seq, last_seq, base_offset, last_offset: base_offset + i64::from(last_seq - first_seq) }
    }

    #[test]
    fn a_new_producer_starts_at_sequence_zero() {
        let s = ProducerState::default();
        assert_eq!(s.check(7, 0, 0, 4), SequenceCheck::Append);
        assert_eq!(s.check(7, 0, 5, 9), SequenceCheck::OutOfOrder);
    }

    #[test]
    fn sequences_must_follow_and_retries_of_the_last_five_are_duplicates() {
        let mut s = ProducerState::default();
        for i in 0..7 {
            s.record(7, 0, meta(i * 5, i * 5 + 4, i64::from(i) * 5));
        }
        assert_eq!(s.check(7, 0, 35, 39), SequenceCheck::Append);
        assert_eq!(s.check(7, 0, 36, 40), SequenceCheck::OutOfOrder);
        assert_eq!(s.check(7, 0, 30, 34), SequenceCheck::Duplicate(meta(30, 34, 30)));
        assert_eq!(s.check(7, 0, 10, 14), SequenceCheck::Duplicate(meta(10, 14, 10)));
        // The sixth-newest batch is forgotten: no longer recognised as a duplicate.
        assert_eq!(s.check(7, 0, 5, 9), SequenceCheck::OutOfOrder);
    }

    #[test]
    fn older_epochs_are_fenced_and_a_new_epoch_restarts_sequences() {
        let mut s = ProducerState::default();
        s.record(7, 3, meta(0, 4, 0));
        assert_eq!(s.check(7, 2, 5, 9), SequenceCheck::InvalidEpoch);
        assert_eq!(s.check(7, 4, 5, 9), SequenceCheck::OutOfOrder);
        assert_eq!(s.check(7, 4, 0, 0), SequenceCheck::Append);
        s.record(7, 4, meta(0, 0, 5));
        assert_eq!(s.epoch(7), Some(4));
        assert_eq!(s.check(7, 4, 1, 1), SequenceCheck::Append);
    }

    #[test]
    fn sequences_wrap_after_i32_max() {
        let mut s = ProducerState::default();
        s.record(1, 0, meta(i32::MAX - 1, i32::MAX, 0));
        assert_eq!(s.check(1, 0, 0, 3), SequenceCheck::Append);
        assert_eq!(last_seq(i32::MAX, 3), 1);
    }

    #[test]
    fn snapshots_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = ProducerState::default();
        s.record(1, 2, meta(0, 9, 100));
        s.record(3, 0, meta(0, 0, 110));
        s.write_snapshot(dir.path(), 111).expect("write");
        assert_eq!(ProducerState::read_snapshot(dir.path()).expect("read"), Some((s, 111)));
    }
}
