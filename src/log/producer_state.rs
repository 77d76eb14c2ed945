//! Idempotent-producer state of one partition: per producer id, its epoch and the last five
//! batches it appended (Kafka's `ProducerStateManager`).
//!
//! Decisions are pure ([`ProducerState::check`]); the caller appends and then
//! [`ProducerState::record`]s. Rules, as Kafka applies them:
//! - a producer the partition has no state for (new, expired, or whose batches retention
//!   deleted) is accepted at any sequence, as Kafka does since KIP-360;
//! - an epoch below the producer's current one is fenced: INVALID_PRODUCER_EPOCH;
//! - a batch matching one of the last five (same epoch, first and last sequence) is a retry:
//!   it is acknowledged with the original offsets and not written again;
//! - otherwise, in the current epoch the first sequence must follow the last one
//!   (wrapping after `i32::MAX`), and a new epoch must start at sequence 0:
//!   OUT_OF_ORDER_SEQUENCE_NUMBER.
//!
//! A producer whose last batch is older than `producer.id.expiration.ms` (by the batch's max
//! timestamp, as Kafka measures it) is forgotten by [`ProducerState::expire`], so a broker
//! that sees many short-lived idempotent producers does not keep them all.
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
    /// Max timestamp (ms) of the producer's last batch: what expiry measures from. Snapshots
    /// written before this field existed load it as [`UNKNOWN_TIMESTAMP`], replaced by the
    /// load time.
    #[serde(default = "unknown_timestamp")]
    last_timestamp: i64,
}

/// `last_timestamp` of an entry read from a snapshot that did not record it.
const UNKNOWN_TIMESTAMP: i64 = i64::MIN;

fn unknown_timestamp() -> i64 {
    UNKNOWN_TIMESTAMP
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
            // No state: a new producer, or one expired or deleted by retention. Kafka accepts
            // any sequence here; refusing would make the client reset its sequence and resend
            // what it holds, the duplicates idempotence exists to prevent.
            return SequenceCheck::Append;
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

    /// Records an appended batch whose max timestamp is `timestamp` (ms).
    pub fn record(&mut self, producer_id: i64, epoch: i16, meta: BatchMeta, timestamp: i64) {
        let entry = self.producers.entry(producer_id).or_default();
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.last_timestamp = timestamp;
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
            self.record(header.producer_id, header.producer_epoch, meta, header.max_timestamp);
        }
    }

    /// Forgets every producer whose last batch's max timestamp is `expiration_ms` or more
    /// before `now_ms` (Kafka's `producer.id.expiration.ms`). Returns how many were removed.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| now_ms.saturating_sub(e.last_timestamp) < expiration_ms);
        before - self.producers.len()
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
        let loaded_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let producers = snapshot
            .producers
            .into_iter()
            .map(|(id, mut e)| {
                if e.last_timestamp == UNKNOWN_TIMESTAMP {
                    e.last_timestamp = loaded_at;
                }
                (id, e)
            })
            .collect();
        Ok(Some((ProducerState { producers }, snapshot.offset)))
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
    fn a_producer_without_state_is_accepted_at_any_sequence() {
        let s = ProducerState::default();
        assert_eq!(s.check(7, 0, 0, 4), SequenceCheck::Append);
        assert_eq!(s.check(7, 0, 5, 9), SequenceCheck::Append);
    }

    #[test]
    fn producers_idle_for_the_expiration_are_forgotten() {
        let mut s = ProducerState::default();
        s.record(1, 0, meta(0, 4, 0), 1_000);
        s.record(2, 0, meta(0, 4, 5), 5_000);
        assert_eq!(s.expire(10_999, 10_000), 0);
        assert_eq!(s.expire(11_000, 10_000), 1, "idle for exactly the expiration");
        assert_eq!(s.epoch(1), None);
        assert_eq!(s.epoch(2), Some(0));
        // A new batch restarts the clock.
        s.record(2, 0, meta(5, 9, 10), 14_000);
        assert_eq!(s.expire(20_000, 10_000), 0);
        // After expiry, the producer's next batch is accepted whatever its sequence.
        assert_eq!(s.check(1, 0, 5, 9), SequenceCheck::Append);
    }

    #[test]
    fn snapshots_without_timestamps_load_as_fresh() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = r#"{"version":1,"offset":5,"producers":[[9,{"epoch":0,"batches":[
            {"first_seq":0,"last_seq":4,"base_offset":0,"last_offset":4}]}]]}"#;
        std::fs::write(dir.path().join(SNAPSHOT_FILE), old).expect("write");
        let (mut s, offset) = ProducerState::read_snapshot(dir.path()).expect("read").expect("snapshot");
        assert_eq!(offset, 5);
        assert_eq!(s.check(9, 0, 0, 4), SequenceCheck::Duplicate(meta(0, 4, 0)));
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock");
        let now = i64::try_from(since_epoch.as_millis()).expect("ms fit i64");
        assert_eq!(s.expire(now, 60_000), 0, "kept for a full expiration after loading");
        assert_eq!(s.expire(now + 120_000, 60_000), 1);
    }

    #[test]
    fn sequences_must_follow_and_retries_of_the_last_five_are_duplicates() {
        let mut s = ProducerState::default();
        for i in 0..7 {
            s.record(7, 0, meta(i * 5, i * 5 + 4, i64::from(i) * 5), 0);
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
        s.record(7, 3, meta(0, 4, 0), 0);
        assert_eq!(s.check(7, 2, 5, 9), SequenceCheck::InvalidEpoch);
        assert_eq!(s.check(7, 4, 5, 9), SequenceCheck::OutOfOrder);
        assert_eq!(s.check(7, 4, 0, 0), SequenceCheck::Append);
        s.record(7, 4, meta(0, 0, 5), 0);
        assert_eq!(s.epoch(7), Some(4));
        assert_eq!(s.check(7, 4, 1, 1), SequenceCheck::Append);
    }

    #[test]
    fn sequences_wrap_after_i32_max() {
        let mut s = ProducerState::default();
        s.record(1, 0, meta(i32::MAX - 1, i32::MAX, 0), 0);
        assert_eq!(s.check(1, 0, 0, 3), SequenceCheck::Append);
        assert_eq!(last_seq(i32::MAX, 3), 1);
    }

    #[test]
    fn snapshots_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = ProducerState::default();
        s.record(1, 2, meta(0, 9, 100), 1_700_000_000_000);
        s.record(3, 0, meta(0, 0, 110), 1_700_000_000_500);
        s.write_snapshot(dir.path(), 111).expect("write");
        assert_eq!(ProducerState::read_snapshot(dir.path()).expect("read"), Some((s, 111)));
    }
}
