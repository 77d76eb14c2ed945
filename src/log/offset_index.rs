//! The sparse offset index (`.index`): relative offset → byte position in the `.log`.
//!
//! Format (Kafka's, byte for byte): a sequence of 8-byte entries, no header:
//! `relative_offset: u32 BE` (entry offset − segment base offset), `position: u32 BE` (byte
//! position of a batch in the segment's `.log`). An entry is written for a batch whose
//! position is more than `index.interval.bytes` past the previous indexed batch (the first
//! batch of a segment is never indexed); its offset is the batch's *last* offset, as Kafka
//! writes it, and its position the batch's start.
//!
//! Invariants: relative offsets strictly increase, positions strictly increase, every position
//! is the start of a batch whose last offset is the entry's offset. An index that breaks them
//! is rebuilt from the log on open. After a crash the active segment's index may be missing
//! entries or hold zeroed ones; it is always rebuilt during recovery. See `storage-format.md`.

use super::index::{self, EntryFormat};

/// One offset index entry, with the offset made absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub relative_offset: u32,
    pub position: u32,
}

/// The `.index` entry format.
#[derive(Debug)]
pub struct OffsetIndexFormat;

impl EntryFormat for OffsetIndexFormat {
    const SIZE: usize = 8;
    type Entry = IndexEntry;

    fn decode(b: &[u8]) -> IndexEntry {
        IndexEntry {
            relative_offset: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            position: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    fn encode(e: &IndexEntry, out: &mut [u8]) {
        out[..4].copy_from_slice(&e.relative_offset.to_be_bytes());
        out[4..8].copy_from_slice(&e.position.to_be_bytes());
    }
}

/// The appendable offset index of the active segment.
pub type OffsetIndexWriter = index::IndexWriter<OffsetIndexFormat>;

/// Finds where to start scanning for `relative_offset`: the entry with the largest relative
/// offset ≤ the target, or `(0, 0)` (start of the segment) when there is none.
pub fn lookup(entries: &[u8], relative_offset: u32) -> IndexEntry {
    index::search::<OffsetIndexFormat, _>(entries, relative_offset, |e| e.relative_offset)
        .map(|i| index::entry_at::<OffsetIndexFormat>(entries, i))
        .unwrap_or(IndexEntry { relative_offset: 0, position: 0 })
}

/// All entries of `entries`, decoded.
pub fn decode_all(entries: &[u8]) -> Vec<IndexEntry> {
    (0..entries.len() / OffsetIndexFormat::SIZE).map(|i| index::entry_at::<OffsetIndexFormat>(entries, i)).collect()
}

/// Kafka's cheap sanity check: whole entries only, offsets and positions strictly increasing,
/// and the last position inside the log. Returns why it fails.
pub fn sanity_check(file_len: u64, entries: &[u8], log_size: u64) -> Result<(), String> {
    if !file_len.is_multiple_of(OffsetIndexFormat::SIZE as u64) {
        return Err(format!("index file length {file_len} is not a multiple of 8"));
    }
    let mut previous: Option<IndexEntry> = None;
    for e in decode_all(entries) {
        if let Some(p) = previous {
            if e.relative_offset <= p.relative_offset || e.position <= p.position {
                return Err(format!("entry {e:?} does not increase after {p:?}"));
            }
        }
        if u64::from(e.position) >= log_size {
            return Err(format!("entry {e:?} points past the log's {log_size} bytes"));
        }
        previous = Some(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(entries: &[(u32, u32)]) -> Vec<u8> {
        let mut out = vec![0u8; entries.len() * 8];
        for (i, &(relative_offset, position)) in entries.iter().enumerate() {
            OffsetIndexFormat::encode(&IndexEntry { relative_offset, position }, &mut out[i * 8..i * 8 + 8]);
        }
        out
    }

    #[test]
    fn lookup_below_the_first_entry_starts_at_the_segment_start() {
        let idx = encode(&[(10, 100), (20, 200)]);
        assert_eq!(lookup(&idx, 5), IndexEntry { relative_offset: 0, position: 0 });
    }

    #[test]
    fn lookup_at_an_entry_returns_that_entry() {
        let idx = encode(&[(10, 100), (20, 200), (30, 300)]);
        assert_eq!(lookup(&idx, 20), IndexEntry { relative_offset: 20, position: 200 });
    }

    #[test]
    fn lookup_between_entries_returns_the_lower_one() {
        let idx = encode(&[(10, 100), (20, 200), (30, 300)]);
        assert_eq!(lookup(&idx, 25), IndexEntry { relative_offset: 20, position: 200 });
    }

    #[test]
    fn lookup_above_the_last_entry_returns_the_last() {
        let idx = encode(&[(10, 100), (20, 200)]);
        assert_eq!(lookup(&idx, 1_000), IndexEntry { relative_offset: 20, position: 200 });
    }

    #[test]
    fn lookup_in_an_empty_index_starts_at_the_segment_start() {
        assert_eq!(lookup(&[], 7), IndexEntry { relative_offset: 0, position: 0 });
    }

    #[test]
    fn sanity_check_rejects_partial_entries_zeroed_tails_and_positions_past_the_log() {
        let good = encode(&[(10, 100), (20, 200)]);
        assert!(sanity_check(16, &good, 300).is_ok());
        assert!(sanity_check(17, &good, 300).is_err());
        assert!(sanity_check(24, &encode(&[(10, 100), (20, 200), (0, 0)]), 300).is_err());
        assert!(sanity_check(16, &good, 200).is_err());
    }

    proptest::proptest! {
        #[test]
        fn lookup_agrees_with_a_linear_scan(
            mut keys in proptest::collection::btree_set(0u32..10_000, 0..200),
            target in 0u32..10_500,
        ) {
            keys.insert(u32::MAX - 1);
            let entries: Vec<(u32, u32)> = keys.iter().map(|&k| (k, k.wrapping_mul(3))).collect();
            let idx = encode(&entries);
            let expected = entries.iter().rev().find(|e| e.0 <= target)
                .map(|&(relative_offset, position)| IndexEntry { relative_offset, position })
                .unwrap_or(IndexEntry { relative_offset: 0, position: 0 });
            proptest::prop_assert_eq!(lookup(&idx, target), expected);
        }
    }
}
