//! The sparse time index (`.timeindex`): largest timestamp so far → relative offset.
//!
//! Format (Kafka's, byte for byte): 12-byte entries, no header: `timestamp: i64 BE`,
//! `relative_offset: u32 BE`. Written alongside each offset index entry, and once more when
//! the segment is sealed, but only when the segment's largest timestamp so far has grown
//! since the last entry; the offset is the last offset of the batch that holds that timestamp.
//! So timestamps strictly increase and offsets never decrease, and the last entry of a sealed
//! segment carries its largest timestamp (what retention by time uses).
//!
//! To find the first offset with timestamp ≥ T: take the last entry with timestamp < T — every
//! batch up to its offset has timestamps below T — and scan batches from its offset on. An
//! index that breaks the invariants is rebuilt on open. See `storage-format.md`.

use super::index::{self, EntryFormat};

/// One time index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeIndexEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

/// The `.timeindex` entry format.
#[derive(Debug)]
pub struct TimeIndexFormat;

impl EntryFormat for TimeIndexFormat {
    const SIZE: usize = 12;
    type Entry = TimeIndexEntry;

    fn decode(b: &[u8]) -> TimeIndexEntry {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[..8]);
        TimeIndexEntry {
            timestamp: i64::from_be_bytes(ts),
            relative_offset: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        }
    }

    fn encode(e: &TimeIndexEntry, out: &mut [u8]) {
        out[..8].copy_from_slice(&e.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&e.relative_offset.to_be_bytes());
    }
}

/// The appendable time index of the active segment.
pub type TimeIndexWriter = index::IndexWriter<TimeIndexFormat>;

/// The relative offset from which to scan for the first batch with timestamp ≥ `timestamp`:
/// that of the last entry whose timestamp is strictly below it, or 0.
pub fn lookup(entries: &[u8], timestamp: i64) -> u32 {
    // Last entry with timestamp ≤ timestamp - 1, i.e. < timestamp.
    index::search::<TimeIndexFormat, _>(entries, timestamp.saturating_sub(1), |e| e.timestamp)
        .map(|i| index::entry_at::<TimeIndexFormat>(entries, i).relative_offset)
        .unwrap_or(0)
}

/// All entries of `entries`, decoded.
pub fn decode_all(entries: &[u8]) -> Vec<TimeIndexEntry> {
    (0..entries.len() / TimeIndexFormat::SIZE).map(|i| index::entry_at::<TimeIndexFormat>(entries, i)).collect()
}

/// The last entry, if any.
pub fn last(entries: &[u8]) -> Option<TimeIndexEntry> {
    let n = entries.len() / TimeIndexFormat::SIZE;
    (n > 0).then(|| index::entry_at::<TimeIndexFormat>(entries, n - 1))
}

/// Whole entries only, timestamps strictly increasing, offsets non-decreasing and below
/// `max_relative_offset` (the segment's next offset, relative). Returns why it fails.
pub fn sanity_check(file_len: u64, entries: &[u8], max_relative_offset: u64) -> Result<(), String> {
    if !file_len.is_multiple_of(TimeIndexFormat::SIZE as u64) {
        return Err(format!("time index file length {file_len} is not a multiple of 12"));
    }
    let mut previous: Option<TimeIndexEntry> = None;
    for e in decode_all(entries) {
        if let Some(p) = previous {
            if e.timestamp <= p.timestamp || e.relative_offset < p.relative_offset {
                return Err(format!("entry {e:?} does not increase after {p:?}"));
            }
        }
        if u64::from(e.relative_offset) >= max_relative_offset {
            return Err(format!("entry {e:?} points past the segment's last offset"));
        }
        previous = Some(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(entries: &[(i64, u32)]) -> Vec<u8> {
        let mut out = vec![0u8; entries.len() * 12];
        for (i, &(timestamp, relative_offset)) in entries.iter().enumerate() {
            TimeIndexFormat::encode(&TimeIndexEntry { timestamp, relative_offset }, &mut out[i * 12..i * 12 + 12]);
        }
        out
    }

    #[test]
    fn lookup_below_the_first_entry_scans_from_the_segment_start() {
        assert_eq!(lookup(&encode(&[(100, 5), (200, 9)]), 50), 0);
        assert_eq!(lookup(&encode(&[(100, 5), (200, 9)]), 100), 0);
    }

    #[test]
    fn lookup_between_entries_scans_from_the_entry_below() {
        assert_eq!(lookup(&encode(&[(100, 5), (200, 9), (300, 20)]), 250), 9);
        assert_eq!(lookup(&encode(&[(100, 5), (200, 9), (300, 20)]), 200), 5);
    }

    #[test]
    fn lookup_above_the_last_entry_scans_from_the_last() {
        assert_eq!(lookup(&encode(&[(100, 5), (200, 9)]), 1_000), 9);
    }

    #[test]
    fn sanity_check_rejects_decreasing_timestamps_and_offsets_past_the_segment() {
        assert!(sanity_check(24, &encode(&[(100, 5), (200, 9)]), 10).is_ok());
        assert!(sanity_check(24, &encode(&[(200, 5), (100, 9)]), 10).is_err());
        assert!(sanity_check(24, &encode(&[(100, 5), (200, 9)]), 9).is_err());
        assert!(sanity_check(25, &encode(&[(100, 5), (200, 9)]), 10).is_err());
    }
}
