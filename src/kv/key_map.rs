//! The key table under a [`crate::kv::KvIndex`]: key → [`Location`] of its latest record,
//! ordered by a hash of the key.
//!
//! # Why ordered by hash
//! Redis's SCAN promises that a key present from the first call (cursor 0) to the last
//! (returned cursor 0) is returned at least once, however many keys are added or removed
//! between calls. Here the cursor is a position in hash order: a call returns the keys whose
//! hash is at or after the cursor, up to COUNT of them, and the next cursor is the next hash
//! present. Every hash below the cursor has been visited, so a key present throughout was
//! visited when the cursor passed it. Keys sharing a hash are returned together, so a cursor
//! never splits them. Unlike Redis, a key is never returned twice in one scan.
//!
//! # Memory
//! The keys live in an arena: chunks of 1 MiB holding each key as a LEB128 length then
//! its bytes (one allocation per MiB of keys, not one per key — a per-key `Box<[u8]>` costs
//! 16 bytes of pointer and up to 24 more of allocator rounding and header). The table itself
//! is a `BTreeMap<u64, Entry>` of 16-byte entries — the offset, and one `u64` packing the
//! key's place in the arena with the record's position in its batch: B-tree leaves hold 11
//! entries in 280 bytes and are about 70% full after random inserts, so about 37 bytes per
//! key, plus the internal nodes. `benches/kv_index.rs` measures the whole.
//!
//! A removed key's bytes stay in the arena as garbage until the garbage is at least as large
//! as the live keys (and at least a chunk); then the live keys are copied into a new arena,
//! in one O(keys) pass, amortized over the removals that made the garbage.
//!
//! # Hash
//! SipHash-1-3 with a per-table random key ([`RandomState`]), truncated to [`CURSOR_BITS`]:
//! clients cannot choose keys that collide (collisions only cost a linear search among the
//! keys of one hash, which stays tiny unless collisions can be aimed), and a cursor means
//! nothing outside the table that issued it — the same as Redis, whose cursors do not survive
//! a restart either.

use std::collections::btree_map::{self, BTreeMap};
use std::fmt;
use std::hash::{BuildHasher, RandomState};

use bytes::Bytes;

/// Bits of a SCAN cursor a key table uses: the cursor is below `1 << CURSOR_BITS`. The 16
/// bits left over let a caller that scans several partitions put the partition number in
/// the cursor's high bits.
pub const CURSOR_BITS: u32 = 48;

/// Marks a table entry whose hash is shared by several keys, which live in `collided`.
/// Offsets are never negative.
const SHARED: i64 = -1;

/// Where a key's latest record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub offset: i64,
    /// Where the record starts in its batch's (decompressed) records section, when that is
    /// below [`MAX_POSITION`]: lets a read go straight to the record instead of walking the
    /// batch. A hint: the reader checks it (see [`crate::kv::KvIndex::get`]).
    pub position: Option<u32>,
}

/// Bits of an entry's packed `u64` that hold [`Location::position`]; the all-ones value is
/// "none".
const POSITION_BITS: u32 = 20;
/// Positions at or above this are not stored.
pub const MAX_POSITION: u32 = (1 << POSITION_BITS) - 1;
/// Bits of a [`KeyRef`] for the position inside a chunk: chunks are at most 1 MiB, except a
/// big key's own chunk, where the key is at position 0.
const IN_CHUNK_BITS: u32 = 20;
/// Bits of a [`KeyRef`] for the chunk index: with the others, 64 in all. 2^24 chunks of
/// 1 MiB is 16 TiB of keys.
const CHUNK_INDEX_BITS: u32 = 64 - POSITION_BITS - IN_CHUNK_BITS;

/// Where a key lives in the arena: chunk index, then position in the chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeyRef(u64);

/// A key (in the arena) and the location of its latest record; its offset is [`SHARED`]
/// for a hash shared by several keys.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// `KeyRef << POSITION_BITS | position` (all ones: no position).
    packed: u64,
    offset: i64,
}

impl Entry {
    fn new(key: KeyRef, location: Location) -> Entry {
        let mut e = Entry { packed: key.0 << POSITION_BITS, offset: 0 };
        e.set_location(location);
        e
    }

    fn key(&self) -> KeyRef {
        KeyRef(self.packed >> POSITION_BITS)
    }

    fn set_key(&mut self, key: KeyRef) {
        self.packed = (key.0 << POSITION_BITS) | (self.packed & u64::from(MAX_POSITION));
    }

    fn location(&self) -> Location {
        let position = (self.packed & u64::from(MAX_POSITION)) as u32;
        Location { offset: self.offset, position: (position != MAX_POSITION).then_some(position) }
    }

    /// Sets the location, returning the previous one.
    fn set_location(&mut self, location: Location) -> Location {
        let previous = self.location();
        let position = location.position.filter(|&p| p < MAX_POSITION).unwrap_or(MAX_POSITION);
        self.packed = (self.packed & !u64::from(MAX_POSITION)) | u64::from(position);
        self.offset = location.offset;
        previous
    }
}

/// Size of an arena chunk. Large enough that the per-chunk allocation is noise and the
/// unused tail of the last chunk is at most 1 byte per key at a million keys; small enough
/// that an empty view costs little. Positions in a chunk must fit [`IN_CHUNK_BITS`].
const CHUNK: usize = 1 << IN_CHUNK_BITS;

/// Keys bigger than this get a chunk of their own, so a big key never abandons the unused
/// tail of the chunk being filled.
const BIG_KEY: usize = CHUNK / 4;

/// Append-only storage of keys: see the module docs.
#[derive(Default)]
struct Arena {
    chunks: Vec<Vec<u8>>,
    /// The chunk small keys are appended to.
    current: Option<usize>,
    /// Bytes (length prefixes included) of keys still referenced.
    live: usize,
    /// Bytes of keys removed since the last compaction.
    garbage: usize,
}

fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

impl Arena {
    fn push(&mut self, key: &[u8]) -> KeyRef {
        let need = varint_len(key.len()) + key.len();
        let chunk = match self.current {
            Some(c) if need <= BIG_KEY && self.chunks[c].capacity() - self.chunks[c].len() >= need => c,
            _ => {
                self.chunks.push(Vec::with_capacity(if need > BIG_KEY { need } else { CHUNK }));
                let c = self.chunks.len() - 1;
                if need <= BIG_KEY {
                    self.current = Some(c);
                }
                c
            }
        };
        let bytes = &mut self.chunks[chunk];
        let position = bytes.len();
        let mut n = key.len();
        while n >= 0x80 {
            bytes.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        bytes.push(n as u8);
        bytes.extend_from_slice(key);
        self.live += need;
        // A small key starts below CHUNK; a big one at 0 in its own chunk.
        assert!(chunk < 1 << CHUNK_INDEX_BITS, "more than 2^{CHUNK_INDEX_BITS} key arena chunks");
        KeyRef(((chunk as u64) << IN_CHUNK_BITS) | position as u64)
    }

    fn get(&self, key: KeyRef) -> &[u8] {
        let bytes = &self.chunks[(key.0 >> IN_CHUNK_BITS) as usize];
        let mut pos = (key.0 & ((1 << IN_CHUNK_BITS) - 1)) as usize;
        let (mut len, mut shift) = (0usize, 0);
        loop {
            let b = bytes[pos];
            pos += 1;
            len |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        &bytes[pos..pos + len]
    }

    fn free(&mut self, key: KeyRef) {
        let len = self.get(key).len();
        let size = varint_len(len) + len;
        self.live -= size;
        self.garbage += size;
    }

    fn should_compact(&self) -> bool {
        self.garbage >= CHUNK && self.garbage >= self.live
    }

    /// Bytes allocated for keys.
    fn capacity(&self) -> usize {
        self.chunks.iter().map(Vec::capacity).sum()
    }
}

impl fmt::Debug for Arena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena")
            .field("chunks", &self.chunks.len())
            .field("live", &self.live)
            .field("garbage", &self.garbage)
            .finish()
    }
}

/// Key → location of the key's latest record, ordered by key hash. See the module docs.
pub struct KeyMap<S = RandomState> {
    hasher: S,
    arena: Arena,
    /// Hash → the one key with that hash, or a [`SHARED`] marker.
    by_hash: BTreeMap<u64, Entry>,
    /// Hash → every key with that hash, for hashes shared by two keys or more.
    collided: BTreeMap<u64, Vec<Entry>>,
    len: usize,
}

impl<S> fmt::Debug for KeyMap<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyMap")
            .field("len", &self.len)
            .field("collided_hashes", &self.collided.len())
            .field("arena", &self.arena)
            .finish()
    }
}

impl Default for KeyMap {
    fn default() -> Self {
        KeyMap::new()
    }
}

impl KeyMap {
    pub fn new() -> Self {
        KeyMap::with_hasher(RandomState::new())
    }
}

impl<S: BuildHasher> KeyMap<S> {
    pub fn with_hasher(hasher: S) -> Self {
        KeyMap { hasher, arena: Arena::default(), by_hash: BTreeMap::new(), collided: BTreeMap::new(), len: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The key's position in SCAN order: below `1 << CURSOR_BITS`.
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key) >> (64 - CURSOR_BITS)
    }

    /// The keys of the table entry `entry` at `hash`.
    fn group<'a>(&'a self, hash: u64, entry: &'a Entry) -> &'a [Entry] {
        if entry.offset == SHARED {
            self.collided.get(&hash).map_or(&[], Vec::as_slice)
        } else {
            std::slice::from_ref(entry)
        }
    }

    /// Where the latest record of `key` is.
    pub fn get(&self, key: &[u8]) -> Option<Location> {
        let hash = self.hash(key);
        let entry = self.by_hash.get(&hash)?;
        self.group(hash, entry).iter().find(|e| self.arena.get(e.key()) == key).map(Entry::location)
    }

    /// Sets the location of `key`, returning the previous one.
    ///
    /// # Panics
    /// If the offset is negative (offsets never are).
    pub fn insert(&mut self, key: &[u8], location: Location) -> Option<Location> {
        assert!(location.offset >= 0, "offset {} is negative", location.offset);
        let hash = self.hash(key);
        let arena = &mut self.arena;
        match self.by_hash.entry(hash) {
            btree_map::Entry::Vacant(v) => {
                v.insert(Entry::new(arena.push(key), location));
            }
            btree_map::Entry::Occupied(mut o) => {
                let entry = o.get_mut();
                if entry.offset != SHARED {
                    if arena.get(entry.key()) == key {
                        return Some(entry.set_location(location));
                    }
                    let first = *entry;
                    entry.offset = SHARED;
                    self.collided.insert(hash, vec![first, Entry::new(arena.push(key), location)]);
                } else {
                    let group = self.collided.get_mut(&hash).expect("a shared hash has its keys in `collided`");
                    if let Some(e) = group.iter_mut().find(|e| arena.get(e.key()) == key) {
                        return Some(e.set_location(location));
                    }
                    group.push(Entry::new(arena.push(key), location));
                }
            }
        }
        self.len += 1;
        None
    }

    /// Removes `key`, returning where its latest record was.
    pub fn remove(&mut self, key: &[u8]) -> Option<Location> {
        let hash = self.hash(key);
        let btree_map::Entry::Occupied(mut o) = self.by_hash.entry(hash) else { return None };
        let removed = if o.get().offset != SHARED {
            if self.arena.get(o.get().key()) != key {
                return None;
            }
            o.remove()
        } else {
            let group = self.collided.get_mut(&hash).expect("a shared hash has its keys in `collided`");
            let at = group.iter().position(|e| self.arena.get(e.key()) == key)?;
            let removed = group.swap_remove(at);
            if let [last] = group[..] {
                *o.get_mut() = last;
                self.collided.remove(&hash);
            }
            removed
        };
        self.arena.free(removed.key());
        self.len -= 1;
        self.maybe_compact();
        Some(removed.location())
    }

    /// Keeps only the keys whose offset `keep` accepts. Returns how many were removed.
    pub fn retain(&mut self, mut keep: impl FnMut(i64) -> bool) -> usize {
        let (arena, collided) = (&mut self.arena, &mut self.collided);
        let mut removed = 0;
        self.by_hash.retain(|hash, entry| {
            let mut keep_one = |e: &Entry| {
                let kept = keep(e.offset);
                if !kept {
                    arena.free(e.key());
                    removed += 1;
                }
                kept
            };
            if entry.offset != SHARED {
                return keep_one(entry);
            }
            let Some(group) = collided.get_mut(hash) else { return false };
            group.retain(|e| keep_one(e));
            match group[..] {
                [] => {
                    collided.remove(hash);
                    false
                }
                [last] => {
                    *entry = last;
                    collided.remove(hash);
                    true
                }
                _ => true,
            }
        });
        self.len -= removed;
        self.maybe_compact();
        removed
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        self.arena = Arena::default();
        self.by_hash.clear();
        self.collided.clear();
        self.len = 0;
    }

    fn maybe_compact(&mut self) {
        if !self.arena.should_compact() {
            return;
        }
        let old = std::mem::take(&mut self.arena);
        for e in self.by_hash.values_mut().filter(|e| e.offset != SHARED) {
            e.set_key(self.arena.push(old.get(e.key())));
        }
        for e in self.collided.values_mut().flatten() {
            e.set_key(self.arena.push(old.get(e.key())));
        }
    }

    /// One SCAN step: visits keys in hash order from `cursor`, at least `count` of them
    /// unless the table ends first (all keys of the last hash visited, so a cursor never
    /// splits a hash), and returns the next cursor (0 when the scan is complete) with the
    /// visited keys that `matches` accepts. See the module docs for the guarantee.
    pub fn scan(&self, cursor: u64, count: usize, matches: impl Fn(&[u8]) -> bool) -> (u64, Vec<Bytes>) {
        let count = count.max(1);
        let mut keys = Vec::new();
        let mut visited = 0;
        let mut table = self.by_hash.range(cursor..);
        while let Some((&hash, entry)) = table.next() {
            for e in self.group(hash, entry) {
                visited += 1;
                let key = self.arena.get(e.key());
                if matches(key) {
                    keys.push(Bytes::copy_from_slice(key));
                }
            }
            if visited >= count {
                // The next hash present is above `hash` ≥ 0, so it is never 0 ("done").
                return (table.next().map_or(0, |(&next, _)| next), keys);
            }
        }
        (0, keys)
    }

    /// Every key, in hash order.
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.by_hash.iter().flat_map(move |(&hash, entry)| self.group(hash, entry)).map(|e| self.arena.get(e.key()))
    }

    /// Bytes allocated for the keys themselves (arena chunks), for reporting.
    pub fn key_bytes_allocated(&self) -> usize {
        self.arena.capacity()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::hash::{BuildHasherDefault, Hasher};

    use proptest::prelude::*;

    use super::*;

    /// A hash with 4 values (the sum of the bytes, shifted into the cursor's range), so that
    /// collisions are the rule.
    #[derive(Default)]
    struct Clumsy(u64);

    impl Hasher for Clumsy {
        fn write(&mut self, bytes: &[u8]) {
            self.0 = bytes.iter().fold(self.0, |h, &b| h.wrapping_add(u64::from(b)));
        }
        fn finish(&self) -> u64 {
            (self.0 % 4) << 62
        }
    }

    fn clumsy() -> KeyMap<BuildHasherDefault<Clumsy>> {
        KeyMap::with_hasher(BuildHasherDefault::default())
    }

    /// A location whose position follows from the offset (none for every third offset), so
    /// that every round trip checks both.
    fn at(offset: i64) -> Location {
        Location { offset, position: (offset % 3 != 0).then(|| (offset as u32).wrapping_mul(7919) % MAX_POSITION) }
    }

    #[test]
    fn positions_round_trip_and_those_too_large_are_dropped() {
        let mut m = KeyMap::new();
        for (i, position) in [Some(0), Some(1), Some(MAX_POSITION - 1), None].into_iter().enumerate() {
            let key = [i as u8];
            m.insert(&key, Location { offset: i64::MAX - i as i64, position });
            assert_eq!(m.get(&key), Some(Location { offset: i64::MAX - i as i64, position }));
        }
        for position in [MAX_POSITION, u32::MAX] {
            m.insert(b"far", Location { offset: 9, position: Some(position) });
            assert_eq!(m.get(b"far"), Some(Location { offset: 9, position: None }));
        }
    }

    #[test]
    fn insert_get_and_remove_with_and_without_collisions() {
        let mut m = clumsy();
        assert_eq!(m.insert(b"a", at(1)), None);
        assert_eq!(m.insert(b"e", at(2)), None, "a and e share a hash");
        assert_eq!(m.insert(b"i", at(3)), None);
        assert_eq!(m.insert(b"e", at(4)), Some(at(2)));
        assert_eq!((m.get(b"a"), m.get(b"e"), m.get(b"i"), m.get(b"m")), (Some(at(1)), Some(at(4)), Some(at(3)), None));
        assert_eq!(m.len(), 3);
        assert_eq!(m.remove(b"m"), None);
        assert_eq!(m.remove(b"a"), Some(at(1)));
        assert_eq!(m.remove(b"i"), Some(at(3)));
        assert!(m.collided.is_empty(), "one key left: no longer shared");
        assert_eq!(m.get(b"e"), Some(at(4)));
        assert_eq!(m.remove(b"e"), Some(at(4)));
        assert!(m.is_empty() && m.by_hash.is_empty());
    }

    #[test]
    fn keys_of_every_size_round_trip_through_the_arena() {
        let mut m = KeyMap::new();
        let sizes = [0, 1, 127, 128, 300, 16_383, 16_384, BIG_KEY - 3, BIG_KEY + 1, CHUNK + 5];
        for (i, &n) in sizes.iter().enumerate() {
            m.insert(&vec![i as u8; n], at(i as i64));
        }
        for (i, &n) in sizes.iter().enumerate() {
            assert_eq!(m.get(&vec![i as u8; n]), Some(at(i as i64)), "key of {n} bytes");
        }
        let mut lens: Vec<usize> = m.keys().map(<[u8]>::len).collect();
        lens.sort_unstable();
        assert_eq!(lens, sizes);
    }

    #[test]
    fn removals_compact_the_arena_and_keep_every_live_key() {
        let mut m = KeyMap::new();
        let key = |i: u32| format!("key-{i:08}-{}", "x".repeat(40)).into_bytes();
        for i in 0..100_000 {
            m.insert(&key(i), at(i64::from(i)));
        }
        let before = m.key_bytes_allocated();
        for i in (0..100_000).filter(|i| i % 10 != 0) {
            assert_eq!(m.remove(&key(i)), Some(at(i64::from(i))));
        }
        assert!(m.key_bytes_allocated() < before / 2, "{} -> {}", before, m.key_bytes_allocated());
        assert_eq!(m.len(), 10_000);
        for i in (0..100_000).step_by(10) {
            assert_eq!(m.get(&key(i)), Some(at(i64::from(i))), "positions survive the arena's compaction");
        }
        assert_eq!(m.retain(|offset| offset >= 50_000), 5_000);
        assert_eq!(m.keys().count(), 5_000);
        assert_eq!(m.get(&key(60_000)), Some(at(60_000)));
        assert_eq!(m.get(&key(40_000)), None);
    }

    #[test]
    fn scan_visits_every_key_once_in_steps_of_count() {
        let mut m = KeyMap::new();
        for i in 0..1_000 {
            m.insert(format!("k{i}").as_bytes(), at(i));
        }
        let (mut cursor, mut seen, mut calls) = (0, BTreeSet::new(), 0);
        loop {
            let (next, keys) = m.scan(cursor, 10, |_| true);
            assert!(keys.len() >= 10 || next == 0, "a step visits COUNT keys unless it ends the scan");
            for k in keys {
                assert!(seen.insert(k), "no key twice");
            }
            calls += 1;
            assert!(next < 1 << CURSOR_BITS);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        assert_eq!(seen.len(), 1_000);
        assert_eq!(calls, 100);
        let (_, only) = m.scan(0, 10_000, |k| k.ends_with(b"7"));
        assert_eq!(only.len(), 100, "MATCH filters the visited keys");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8),
        Remove(u8),
        Scan(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![(0u8..40).prop_map(Op::Insert), (0u8..40).prop_map(Op::Remove), (1usize..6).prop_map(Op::Scan),]
    }

    /// Keys returned by, or present throughout, a scan in progress.
    type KeySet = BTreeSet<Vec<u8>>;

    fn check_scan_guarantee<S: BuildHasher>(mut m: KeyMap<S>, ops: Vec<Op>) -> Result<(), TestCaseError> {
        let key = |k: u8| format!("key{k}").into_bytes();
        let mut model: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
        // The scan in progress: its cursor, keys returned, and keys present throughout.
        let mut scan: Option<(u64, KeySet, KeySet)> = None;
        let mut ever: BTreeSet<Vec<u8>> = BTreeSet::new();
        for (offset, op) in ops.into_iter().enumerate() {
            match op {
                Op::Insert(k) => {
                    prop_assert_eq!(m.insert(&key(k), at(offset as i64)), model.insert(key(k), offset as i64).map(at));
                    ever.insert(key(k));
                }
                Op::Remove(k) => {
                    prop_assert_eq!(m.remove(&key(k)), model.remove(&key(k)).map(at));
                    if let Some((_, _, throughout)) = &mut scan {
                        throughout.remove(&key(k));
                    }
                }
                Op::Scan(count) => {
                    let (cursor, mut returned, throughout) = scan.take().unwrap_or_else(|| {
                        ever = model.keys().cloned().collect();
                        (0, BTreeSet::new(), model.keys().cloned().collect())
                    });
                    let (next, keys) = m.scan(cursor, count, |_| true);
                    for k in keys {
                        prop_assert!(ever.contains(&k[..]), "returned a key never present during the scan");
                        prop_assert!(returned.insert(k.to_vec()), "returned twice");
                    }
                    if next == 0 {
                        let missed: Vec<_> = throughout.difference(&returned).collect();
                        prop_assert!(missed.is_empty(), "keys present throughout but not returned: {:?}", missed);
                    } else {
                        scan = Some((next, returned, throughout));
                    }
                }
            }
            prop_assert_eq!(m.len(), model.len());
        }
        for (k, offset) in &model {
            prop_assert_eq!(m.get(k), Some(at(*offset)));
        }
        let mut keys: Vec<Vec<u8>> = m.keys().map(<[u8]>::to_vec).collect();
        keys.sort();
        prop_assert_eq!(keys, model.keys().cloned().collect::<Vec<_>>());
        Ok(())
    }

    proptest! {
        #[test]
        fn scan_returns_every_key_present_throughout(ops in proptest::collection::vec(op(), 1..300)) {
            check_scan_guarantee(KeyMap::new(), ops)?;
        }

        #[test]
        fn scan_returns_every_key_present_throughout_when_hashes_collide(
            ops in proptest::collection::vec(op(), 1..300),
        ) {
            check_scan_guarantee(clumsy(), ops)?;
        }
    }
}
