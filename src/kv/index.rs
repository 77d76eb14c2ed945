//! [`KvIndex`]: the key-value view of one partition of a compacted topic.

use bytes::Bytes;

use super::error::Error;
use super::key_map::{KeyMap, Location};
use crate::log::batch::{self, BatchHeader, Compression, HeaderIter, TimestampType, HEADER_SIZE};
use crate::log::{self, codec, LogReader, Segments};

/// Bytes asked of the log per read while catching up. Large enough that the per-read cost
/// (segment list, index lookup) vanishes next to decoding; reads are zero-copy slices of the
/// segment maps, so the size costs no memory.
const CATCH_UP_READ_BYTES: usize = 8 << 20;

/// Key → latest record of one partition, for `GET`/`HGET`/`EXISTS`/`SCAN`/`KEYS`.
///
/// The index holds, for every key whose latest record (below the offset it has caught up
/// to) has a value, the offset of that record. A tombstone (null value) removes the key;
/// records without a key are not part of the view; control batches (transaction markers)
/// are skipped, but the records of aborted transactions are applied like any others (the
/// view does not track aborted transactions yet). Values are not held: [`KvIndex::get`]
/// reads them from the log.
///
/// # Keeping up
/// [`KvIndex::catch_up`] applies records from where it stopped up to an offset the caller
/// gives (the high watermark, so the view only shows committed records). The first call
/// reads the whole log: that is the rebuild after a restart. The caller calls it again
/// whenever the high watermark moves; a read that must see an acknowledged write calls it
/// first. A rebuild takes about 0.4 s per million keys (`benches/kv_index.rs`): a caller that
/// must not hold a write lock that long catches up in steps (a smaller `up_to` each time) or
/// builds a new index unlocked and swaps it in.
///
/// # Against compaction and retention
/// The cleaner removes a record only when a later record has the same key, or when it is a
/// tombstone older than `delete.retention.ms`. So once the view has caught up, the record at
/// every indexed offset is still in the log, and a record the cleaner removes ahead of the
/// view is superseded by one the view will apply. The one thing the view can miss is a
/// tombstone removed before the view reached it (a view more than `delete.retention.ms`
/// behind): the key then stays listed, and `get` reports it absent because its record is
/// gone.
///
/// Retention (`cleanup.policy=compact,delete`) and DeleteRecords move the log start offset:
/// the next `catch_up` drops every key whose latest record is below it. A log truncated
/// below what the view applied (replication's truncation) is rebuilt from the start.
///
/// # Concurrency
/// Not synchronized: `catch_up` takes `&mut self`, reads take `&self`. The caller puts it
/// behind a `std::sync::RwLock` (no `.await` happens under it: a `get` is one mmap read).
#[derive(Debug, Default)]
pub struct KvIndex {
    keys: KeyMap,
    /// The next offset to apply; `None` before the first `catch_up`.
    next_offset: Option<i64>,
    /// The log start offset at the last `catch_up`: no key has an offset below it.
    log_start_offset: i64,
}

/// The records section of `batch` (one whole batch): a zero-copy slice when uncompressed.
fn records_section(reader: &LogReader, batch: &Bytes, header: &BatchHeader) -> Result<Bytes, Error> {
    let corrupt =
        |reason: String| Error::CorruptBatch { dir: reader.dir().to_owned(), base_offset: header.base_offset, reason };
    let section = batch.slice(HEADER_SIZE..header.size());
    match header.compression() {
        Ok(Compression::None) => Ok(section),
        Ok(codec) => codec::decompress(codec, &section).map_err(corrupt),
        Err(e) => Err(corrupt(e.to_string())),
    }
}

/// The timestamp Kafka reports for a record of a batch with `header`: LogAppendTime batches
/// carry it in the header.
fn record_timestamp(header: &BatchHeader, record: &batch::Record<'_>) -> i64 {
    match header.timestamp_type() {
        TimestampType::LogAppendTime => header.max_timestamp,
        TimestampType::CreateTime => record.timestamp,
    }
}

/// A value read from the log: borrowed from a segment map (uncompressed batch), or a slice
/// of the decompressed records section (compressed batch).
#[derive(Debug)]
pub enum Value<'s> {
    Mapped(&'s [u8]),
    Decompressed(Bytes),
}

impl std::ops::Deref for Value<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Value::Mapped(v) => v,
            Value::Decompressed(v) => v,
        }
    }
}

impl Value<'_> {
    /// An owned copy (a reference count for a decompressed value).
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Value::Mapped(v) => Bytes::copy_from_slice(v),
            Value::Decompressed(v) => v.clone(),
        }
    }
}

/// The record of `key` at `location` in `section` (a batch's records section), with its
/// timestamp: found from the position hint when it checks out, else by walking the batch.
fn find_record<'a>(section: &'a [u8], header: &BatchHeader, key: &[u8], location: Location) -> Option<(&'a [u8], i64)> {
    let offset = location.offset;
    let is_record = |r: &batch::Record<'_>| r.offset == offset && r.key == Some(key);
    let untouched = i64::from(header.records_count) == i64::from(header.last_offset_delta) + 1;
    let at_position = location
        .position
        .filter(|_| untouched)
        .and_then(|p| section.get(p as usize..))
        .and_then(|rest| batch::records_in(rest, header).next())
        .filter(is_record);
    let record = match at_position {
        Some(r) => r,
        None => batch::records_in(section, header).take_while(|r| r.offset <= offset).find(is_record)?,
    };
    Some((record.value?, record_timestamp(header, &record)))
}

/// The value and timestamp of the record of `key` at `location`: see [`KvIndex::get`].
pub(super) fn read_record<'s>(segments: &'s Segments, key: &[u8], location: Location) -> Option<(Value<'s>, i64)> {
    let (batch, header) = segments.batch_at(location.offset)?;
    let section = &batch[HEADER_SIZE..];
    match header.compression() {
        Ok(Compression::None) => find_record(section, &header, key, location).map(|(v, ts)| (Value::Mapped(v), ts)),
        Ok(codec) => match codec::decompress(codec, section) {
            Ok(section) => find_record(&section, &header, key, location)
                .map(|(v, ts)| (Value::Decompressed(section.slice_ref(v)), ts)),
            Err(e) => {
                tracing::warn!(base_offset = header.base_offset, error = %e, "cannot read a value for the key-value view");
                None
            }
        },
        Err(e) => {
            tracing::warn!(base_offset = header.base_offset, error = %e, "cannot read a value for the key-value view");
            None
        }
    }
}

impl KvIndex {
    pub fn new() -> Self {
        KvIndex::default()
    }

    /// Number of keys with a value.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The next offset `catch_up` will apply (`None` before the first call). Every record
    /// below it is reflected in the view.
    pub fn next_offset(&self) -> Option<i64> {
        self.next_offset
    }

    /// Applies the records from where the view stopped up to, but not including, `up_to`
    /// (clamped to the log end offset): each keyed record sets its key's latest offset, a
    /// tombstone removes its key. Returns how many keyed records were applied.
    ///
    /// Batches are read zero-copy from the segment maps; compressed ones are decompressed.
    /// Work is proportional to the records applied, plus one pass over the keys when the log
    /// start offset moved.
    ///
    /// # Errors
    /// [`Error::Read`] when the log cannot be read; [`Error::CorruptBatch`] when a batch
    /// cannot be decoded. The records before the failing batch stay applied, and the next
    /// call starts again at that batch.
    pub fn catch_up(&mut self, reader: &LogReader, up_to: i64) -> Result<usize, Error> {
        let log_end_offset = reader.log_end_offset();
        let mut next = match self.next_offset {
            Some(next) if next <= log_end_offset => next,
            Some(next) => {
                tracing::warn!(dir = %reader.dir().display(), next, log_end_offset,
                    "log truncated below the key-value view: rebuilding it");
                self.keys.clear();
                self.log_start_offset = 0;
                reader.log_start_offset()
            }
            None => reader.log_start_offset(),
        };
        self.drop_below_log_start(reader.log_start_offset());
        next = next.max(self.log_start_offset);
        self.next_offset = Some(next);
        let up_to = up_to.min(log_end_offset);
        let mut applied = 0;
        while next < up_to {
            let read = match reader.read(next, CATCH_UP_READ_BYTES, up_to, true) {
                Ok(read) => read,
                // Retention or DeleteRecords moved the log start past `next` since we looked.
                Err(log::Error::OffsetOutOfRange { log_start_offset, .. }) if log_start_offset > next => {
                    self.drop_below_log_start(log_start_offset);
                    next = log_start_offset;
                    self.next_offset = Some(next);
                    continue;
                }
                Err(source) => return Err(Error::Read { dir: reader.dir().to_owned(), offset: next, source }),
            };
            if read.records.is_empty() {
                // No batch overlaps [next, up_to): compaction removed them all.
                next = up_to;
                self.next_offset = Some(next);
                break;
            }
            for b in HeaderIter::new(&read.records, 0) {
                let header = b.header;
                if header.base_offset >= up_to {
                    break;
                }
                if header.last_offset() >= next && !header.is_control() {
                    let start = b.position as usize;
                    let batch = read.records.slice(start..start + header.size());
                    let section = records_section(reader, &batch, &header)?;
                    let mut records = batch::records_in(&section, &header);
                    loop {
                        let position = u32::try_from(records.position()).ok();
                        let Some(r) = records.next() else { break };
                        if r.offset < next {
                            continue;
                        }
                        if r.offset >= up_to {
                            break;
                        }
                        let Some(key) = r.key else { continue };
                        match r.value {
                            Some(_) => self.keys.insert(key, Location { offset: r.offset, position }),
                            None => self.keys.remove(key),
                        };
                        applied += 1;
                    }
                }
                next = next.max(header.next_offset().min(up_to));
                self.next_offset = Some(next);
            }
            // Whatever the batches said, never go back and never stall.
            next = next.max(read.next_offset.min(up_to));
            self.next_offset = Some(next);
        }
        Ok(applied)
    }

    /// Drops the keys whose latest record is below `log_start_offset` (deleted by retention
    /// or DeleteRecords), once per move of the log start.
    fn drop_below_log_start(&mut self, log_start_offset: i64) {
        if log_start_offset > self.log_start_offset {
            self.keys.retain(|offset| offset >= log_start_offset);
            self.log_start_offset = log_start_offset;
        }
    }

    /// Whether `key` has a value in the view.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.keys.get(key).is_some()
    }

    /// The offset of the latest record of `key`.
    pub fn offset_of(&self, key: &[u8]) -> Option<i64> {
        self.keys.get(key).map(|l| l.offset)
    }

    /// The value and timestamp of the latest record of `key`, read from the log through
    /// `segments` (a snapshot of its segments: one for many reads): borrowed from the segment
    /// map for an uncompressed batch, a slice of the decompressed records section for a
    /// compressed one.
    ///
    /// The index remembers where the record starts in its batch, so the read goes straight to
    /// it — but only in a batch that still holds one record per offset (which compaction has
    /// therefore not rewritten), and only if the record found there has the right offset and
    /// key. Otherwise the batch is walked from its first record.
    ///
    /// `None` when the key has no value — and, defensively, when its record can no longer
    /// be read (removed from the log ahead of the view, or its batch does not decode: see
    /// the type docs); those cases are logged.
    pub fn get_in<'s>(&self, segments: &'s Segments, key: &[u8]) -> Option<(Value<'s>, i64)> {
        let location = self.keys.get(key)?;
        let found = read_record(segments, key, location);
        if found.is_none() {
            let offset = location.offset;
            tracing::debug!(offset, "indexed record is no longer readable");
        }
        found
    }

    /// [`KvIndex::get_in`] on the log's current segments, the value copied out.
    pub fn get(&self, reader: &LogReader, key: &[u8]) -> Option<(Bytes, i64)> {
        self.get_in(&reader.segments_now(), key).map(|(v, ts)| (v.to_bytes(), ts))
    }

    /// One step of Redis SCAN: keys from `cursor` in hash order, about `count` of them,
    /// filtered by `matches` (MATCH / TYPE); returns the next cursor, 0 when the scan is
    /// complete. A key present from the call with cursor 0 to the call that returns 0 is
    /// returned exactly once, whatever is added or removed between calls. Cursors are below
    /// `1 << `[`super::key_map::CURSOR_BITS`] and mean nothing to another index.
    pub fn scan(&self, cursor: u64, count: usize, matches: impl Fn(&[u8]) -> bool) -> (u64, Vec<Bytes>) {
        self.keys.scan(cursor, count, matches)
    }

    /// Every key with a value (KEYS), in hash order.
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.keys.keys()
    }
}
