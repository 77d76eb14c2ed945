//! The Kafka v2 (magic 2) record batch header: parsing, validation and the few in-place edits
//! the broker makes (base offset, partition leader epoch, LogAppendTime).
//!
//! This module owns the byte layout of one batch header. It never decodes individual records
//! on the append path; the only record-level decoding here is [`first_offset_at_or_after`],
//! which ListOffsets-by-timestamp needs inside one uncompressed batch.
//!
//! ```text
//! offset  size  field                  covered by CRC
//!      0     8  base_offset            no   (rewritten by the broker on append)
//!      8     4  batch_length           no   (bytes after this field)
//!     12     4  partition_leader_epoch no   (stamped by the broker)
//!     16     1  magic (= 2)            no
//!     17     4  crc (CRC32C, unsigned) no
//!     21     2  attributes             yes  (bits 0-2 codec, 3 timestamp type, 4 transactional, 5 control)
//!     23     4  last_offset_delta      yes
//!     27     8  base_timestamp         yes
//!     35     8  max_timestamp          yes
//!     43     8  producer_id            yes
//!     51     2  producer_epoch         yes
//!     53     4  base_sequence          yes
//!     57     4  records_count          yes
//!     61     …  records                yes
//! ```
//! All integers are big-endian. See `storage-format.md` ("Record batch").

use super::error::InvalidBatch;

/// Size of the fixed record batch header.
pub const HEADER_SIZE: usize = 61;
/// Bytes before (and including) the batch length field: `base_offset` + `batch_length`.
pub const LOG_OVERHEAD: usize = 12;
/// The smallest legal value of the `batch_length` field.
pub const MIN_BATCH_LENGTH: i32 = (HEADER_SIZE - LOG_OVERHEAD) as i32;

const BASE_OFFSET: usize = 0;
const BATCH_LENGTH: usize = 8;
const LEADER_EPOCH: usize = 12;
const MAGIC: usize = 16;
const CRC: usize = 17;
const ATTRIBUTES: usize = 21;
const LAST_OFFSET_DELTA: usize = 23;
const BASE_TIMESTAMP: usize = 27;
const MAX_TIMESTAMP: usize = 35;
const PRODUCER_ID: usize = 43;
const PRODUCER_EPOCH: usize = 51;
const BASE_SEQUENCE: usize = 53;
const RECORDS_COUNT: usize = 57;

const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
const TRANSACTIONAL_BIT: i16 = 1 << 4;
const CONTROL_BIT: i16 = 1 << 5;

/// Compression codec of a batch (attributes bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    fn from_bits(bits: u8) -> Result<Self, InvalidBatch> {
        Ok(match bits {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            other => return Err(InvalidBatch::UnknownCompression(other)),
        })
    }

    /// Kafka's name of the codec, as `DumpLogSegments` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Timestamp type of a batch (attributes bit 3); `message.timestamp.type` in topic config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// The decoded fixed header of one record batch. Plain data, copied out of the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(x)
}

impl BatchHeader {
    /// Reads the fixed header from the start of `bytes`, or `None` when fewer than
    /// [`HEADER_SIZE`] bytes are present. No field is checked.
    pub fn parse(bytes: &[u8]) -> Option<BatchHeader> {
        if bytes.len() < HEADER_SIZE {
            return None;
        }
        Some(BatchHeader {
            base_offset: i64_at(bytes, BASE_OFFSET),
            batch_length: i32_at(bytes, BATCH_LENGTH),
            partition_leader_epoch: i32_at(bytes, LEADER_EPOCH),
            magic: bytes[MAGIC] as i8,
            crc: i32_at(bytes, CRC) as u32,
            attributes: i16_at(bytes, ATTRIBUTES),
            last_offset_delta: i32_at(bytes, LAST_OFFSET_DELTA),
            base_timestamp: i64_at(bytes, BASE_TIMESTAMP),
            max_timestamp: i64_at(bytes, MAX_TIMESTAMP),
            producer_id: i64_at(bytes, PRODUCER_ID),
            producer_epoch: i16_at(bytes, PRODUCER_EPOCH),
            base_sequence: i32_at(bytes, BASE_SEQUENCE),
            records_count: i32_at(bytes, RECORDS_COUNT),
        })
    }

    /// Total size of the batch on disk, including `base_offset` and `batch_length`.
    pub fn size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    pub fn compression(&self) -> Result<Compression, InvalidBatch> {
        Compression::from_bits((self.attributes & 0x07) as u8)
    }

    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// Checks every header field that can be checked without the records, except the CRC.
    /// `exact_count`: a producer's batch must hold one record per offset of its range;
    /// a stored batch may hold fewer (compaction removes records but keeps the batch's
    /// base offset and last offset delta, as Kafka does).
    fn check_fields(&self, exact_count: bool) -> Result<(), InvalidBatch> {
        if self.magic != 2 {
            return Err(InvalidBatch::UnsupportedMagic(self.magic));
        }
        if self.batch_length < MIN_BATCH_LENGTH {
            return Err(InvalidBatch::LengthMismatch {
                declared: i64::from(self.batch_length),
                actual: HEADER_SIZE - LOG_OVERHEAD,
            });
        }
        if self.records_count <= 0 {
            return Err(InvalidBatch::BadRecordCount(self.records_count));
        }
        // Kafka: "Inconsistent batch offset range and count of records".
        let range = i64::from(self.last_offset_delta) + 1;
        let count = i64::from(self.records_count);
        if (exact_count && range != count) || range < count {
            return Err(InvalidBatch::CountMismatch {
                last_offset_delta: self.last_offset_delta,
                count: self.records_count,
            });
        }
        // -1 is "no timestamp" (NO_TIMESTAMP); anything below it is garbage.
        if self.base_timestamp < -1 || self.max_timestamp < -1 || self.max_timestamp < self.base_timestamp {
            return Err(InvalidBatch::BadTimestamps { first: self.base_timestamp, max: self.max_timestamp });
        }
        self.compression()?;
        Ok(())
    }
}

/// CRC32C over `attributes..end`, the range the batch's `crc` field covers.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES..])
}

/// Validates one complete batch as a producer sent it: the length field must match `batch`
/// exactly, then magic, CRC32C, record count, last offset delta, timestamps and codec.
///
/// Only the 61-byte header is decoded; the CRC pass is the one read of the record bytes.
///
/// # Errors
/// The first check that fails, as an [`InvalidBatch`].
pub fn validate(batch: &[u8]) -> Result<BatchHeader, InvalidBatch> {
    let header = BatchHeader::parse(batch).ok_or(InvalidBatch::TooShort(batch.len()))?;
    if header.batch_length < 0 || header.size() != batch.len() {
        return Err(InvalidBatch::LengthMismatch {
            declared: i64::from(header.batch_length),
            actual: batch.len().saturating_sub(LOG_OVERHEAD),
        });
    }
    header.check_fields(true)?;
    let computed = compute_crc(batch);
    if computed != header.crc {
        return Err(InvalidBatch::CrcMismatch { expected: header.crc, computed });
    }
    Ok(header)
}

/// A batch with `header`'s fields (the first [`HEADER_SIZE`] bytes of a stored batch) and a
/// new records section of `records_count` records (compressed as the header says), with its
/// length and CRC recomputed. The base offset, last offset delta, timestamps and producer
/// fields are unchanged: what compaction writes.
pub fn with_records(header: &[u8], records_count: i32, records: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_SIZE + records.len());
    b.extend_from_slice(&header[..HEADER_SIZE]);
    let length = (HEADER_SIZE - LOG_OVERHEAD + records.len()) as i32;
    b[BATCH_LENGTH..BATCH_LENGTH + 4].copy_from_slice(&length.to_be_bytes());
    b[RECORDS_COUNT..RECORDS_COUNT + 4].copy_from_slice(&records_count.to_be_bytes());
    b.extend_from_slice(records);
    let crc = compute_crc(&b);
    b[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Checks a stored batch: what [`scan_valid`] checks for one batch (compaction may have left
/// fewer records than offsets).
///
/// # Errors
/// The first failed check.
pub fn validate_stored(batch: &[u8]) -> Result<BatchHeader, InvalidBatch> {
    let header = BatchHeader::parse(batch).ok_or(InvalidBatch::TooShort(batch.len()))?;
    header.check_fields(false)?;
    let computed = compute_crc(batch);
    if computed != header.crc {
        return Err(InvalidBatch::CrcMismatch { expected: header.crc, computed });
    }
    Ok(header)
}

/// Rewrites the base offset in place (not covered by the CRC).
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[BASE_OFFSET..BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// The broker's edits to a batch header at append.
#[derive(Debug, Clone, Copy)]
pub struct HeaderPatch {
    pub base_offset: i64,
    pub partition_leader_epoch: Option<i32>,
    /// Stamp LogAppendTime with this time (sets the attribute and `max_timestamp`).
    pub log_append_time: Option<i64>,
}

/// The header of `batch` (a validated batch) with `patch` applied, as it is stored. The body
/// is not copied: LogAppendTime changes CRC-covered fields, and the new CRC is computed over
/// the patched header bytes followed by the untouched body.
pub fn patched_header(batch: &[u8], patch: HeaderPatch) -> [u8; HEADER_SIZE] {
    let mut h = [0u8; HEADER_SIZE];
    h.copy_from_slice(&batch[..HEADER_SIZE]);
    h[BASE_OFFSET..BASE_OFFSET + 8].copy_from_slice(&patch.base_offset.to_be_bytes());
    if let Some(epoch) = patch.partition_leader_epoch {
        h[LEADER_EPOCH..LEADER_EPOCH + 4].copy_from_slice(&epoch.to_be_bytes());
    }
    if let Some(now_ms) = patch.log_append_time {
        let attributes = i16_at(&h, ATTRIBUTES) | TIMESTAMP_TYPE_BIT;
        h[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
        h[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&now_ms.to_be_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&h[ATTRIBUTES..]), &batch[HEADER_SIZE..]);
        h[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
    }
    h
}

/// The time used for indexing and retention: LogAppendTime batches carry it in
/// `max_timestamp`, CreateTime batches carry the largest record timestamp there.
pub fn index_timestamp(header: &BatchHeader) -> i64 {
    header.max_timestamp
}

/// One batch found while walking a region of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPosition {
    pub position: u32,
    pub header: BatchHeader,
}

/// How a walk over stored batches ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every byte belonged to a valid batch.
    Clean,
    /// The bytes from `position` on are not a complete, valid batch.
    Invalid { position: u32, reason: String },
}

/// Walks stored batches in `bytes` (a segment's `.log` contents from `start`), checking each
/// header, each CRC and that offsets increase, and calls `visit` for every valid batch.
/// Stops at the first batch that is torn or corrupt and reports where.
///
/// `segment_base` is the segment's base offset: every batch's base offset must be at least
/// it (and above the previous batch's last offset), and its last offset at most
/// `segment_base + u32::MAX` — relative offsets in the indexes are u32. The base offset is
/// not covered by the CRC, so these bounds are what catch a corrupted one.
pub fn scan_valid(bytes: &[u8], start: usize, segment_base: i64, mut visit: impl FnMut(BatchPosition)) -> ScanEnd {
    let mut min_offset = segment_base;
    let mut pos = start;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        let invalid = |reason: String| ScanEnd::Invalid { position: pos as u32, reason };
        let Some(header) = BatchHeader::parse(rest) else {
            return invalid(format!("{} trailing bytes are shorter than a batch header", rest.len()));
        };
        if let Err(e) = header.check_fields(false) {
            return invalid(e.to_string());
        }
        if header.size() > rest.len() {
            return invalid(format!("batch of {} bytes is cut off after {} bytes", header.size(), rest.len()));
        }
        if header.base_offset < min_offset {
            return invalid(format!("base offset {} is below the expected minimum {min_offset}", header.base_offset));
        }
        if header.last_offset() - segment_base > i64::from(u32::MAX) {
            return invalid(format!(
                "last offset {} does not fit segment {segment_base} (relative offsets are 32-bit)",
                header.last_offset()
            ));
        }
        let computed = compute_crc(&rest[..header.size()]);
        if computed != header.crc {
            return invalid(format!("CRC32C mismatch: stored {:#010x}, computed {computed:#010x}", header.crc));
        }
        visit(BatchPosition { position: pos as u32, header });
        min_offset = header.next_offset();
        pos += header.size();
    }
    ScanEnd::Clean
}

/// Iterates batch headers in `bytes` without checking CRCs: the read path, where the bytes
/// were validated when they were appended or recovered. Stops at the first incomplete or
/// implausible header (a reader racing a truncation sees zeros, never a panic).
#[derive(Debug, Clone)]
pub struct HeaderIter<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> HeaderIter<'a> {
    pub fn new(bytes: &'a [u8], start: usize) -> Self {
        HeaderIter { bytes, pos: start }
    }
}

impl Iterator for HeaderIter<'_> {
    type Item = BatchPosition;

    fn next(&mut self) -> Option<BatchPosition> {
        let rest = self.bytes.get(self.pos..)?;
        let header = BatchHeader::parse(rest)?;
        if header.batch_length < MIN_BATCH_LENGTH || header.size() > rest.len() {
            return None;
        }
        let item = BatchPosition { position: self.pos as u32, header };
        self.pos += header.size();
        Some(item)
    }
}

fn read_varint(bytes: &[u8], pos: &mut usize) -> Option<i64> {
    let mut value: u64 = 0;
    for shift in (0..70).step_by(7) {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            // Zig-zag decoding.
            return Some((value >> 1) as i64 ^ -((value & 1) as i64));
        }
    }
    None
}

/// The offset and timestamp of the first record in `batch` whose timestamp is ≥ `target`
/// (ListOffsets semantics), or `None` if no record qualifies.
///
/// LogAppendTime batches and uncompressed CreateTime batches are answered exactly; for a
/// compressed CreateTime batch the records cannot be read without decompressing, so the
/// batch's base offset is returned when its max timestamp qualifies (a consumer starting there
/// sees the wanted record, plus possibly a few earlier ones from the same batch).
pub fn first_offset_at_or_after(batch: &[u8], target: i64) -> Option<(i64, i64)> {
    let header = BatchHeader::parse(batch)?;
    if header.max_timestamp < target {
        return None;
    }
    if header.timestamp_type() == TimestampType::LogAppendTime || header.compression() != Ok(Compression::None) {
        return Some((header.base_offset, header.max_timestamp));
    }
    let mut pos = HEADER_SIZE;
    for _ in 0..header.records_count {
        let start = pos;
        let length = read_varint(batch, &mut pos)?;
        let body = pos;
        pos += 1; // attributes
        let timestamp_delta = read_varint(batch, &mut pos)?;
        let offset_delta = read_varint(batch, &mut pos)?;
        let timestamp = header.base_timestamp.saturating_add(timestamp_delta);
        if timestamp >= target {
            return Some((header.base_offset + offset_delta, timestamp));
        }
        pos = body.checked_add(usize::try_from(length).ok()?)?;
        if pos <= start {
            return None;
        }
    }
    // The header's max timestamp qualified but no record did: trust the header.
    Some((header.base_offset, header.max_timestamp))
}

/// One record of an uncompressed batch, borrowed from the batch bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub offset: i64,
    pub timestamp: i64,
    /// `None` is a null key.
    pub key: Option<&'a [u8]>,
    /// `None` is a null value: a tombstone.
    pub value: Option<&'a [u8]>,
    /// The record's headers section, undecoded (count, then key/value pairs): most readers
    /// never look at headers, so [`Record::headers`] decodes them on demand.
    pub headers: &'a [u8],
}

impl<'a> Record<'a> {
    /// The record's headers, in order: (key, value, `None` for a null value). Stops at the
    /// first malformed header.
    pub fn headers(&self) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> {
        let bytes = self.headers;
        let mut pos = 0;
        let count = read_varint(bytes, &mut pos).unwrap_or(0);
        (0..count).map_while(move |_| {
            let key = read_nullable(bytes, &mut pos)?.unwrap_or_default();
            let value = read_nullable(bytes, &mut pos)?;
            Some((key, value))
        })
    }
}

/// The records of an uncompressed batch (headers are skipped), for the broker's own readers of
/// internal topics. Stops at the first malformed record; compressed batches yield nothing
/// (`records` returns `None` for them).
#[derive(Debug, Clone)]
pub struct RecordIter<'a> {
    section: &'a [u8],
    header: BatchHeader,
    pos: usize,
    left: i32,
}

/// Iterates the records of `batch` when it is a well-formed uncompressed batch.
pub fn records(batch: &[u8]) -> Option<RecordIter<'_>> {
    let header = BatchHeader::parse(batch)?;
    if header.compression() != Ok(Compression::None) || header.size() > batch.len() {
        return None;
    }
    Some(records_in(&batch[HEADER_SIZE..header.size()], &header))
}

/// Iterates the records of a batch's (decompressed) records section.
pub fn records_in<'a>(section: &'a [u8], header: &BatchHeader) -> RecordIter<'a> {
    RecordIter { section, header: *header, pos: 0, left: header.records_count }
}

fn read_nullable<'a>(bytes: &'a [u8], pos: &mut usize) -> Option<Option<&'a [u8]>> {
    let len = read_varint(bytes, pos)?;
    if len < 0 {
        return Some(None);
    }
    let end = pos.checked_add(usize::try_from(len).ok()?)?;
    let slice = bytes.get(*pos..end)?;
    *pos = end;
    Some(Some(slice))
}

impl<'a> RecordIter<'a> {
    /// Where the next record starts in the records section (the end, once exhausted): lets a
    /// caller copy records it keeps byte for byte.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn parse_one(&mut self) -> Option<Record<'a>> {
        let length = usize::try_from(read_varint(self.section, &mut self.pos)?).ok()?;
        let end = self.pos.checked_add(length)?;
        let body = self.section.get(..end)?;
        let mut pos = self.pos + 1; // attributes
        let timestamp_delta = read_varint(body, &mut pos)?;
        let offset_delta = read_varint(body, &mut pos)?;
        let key = read_nullable(body, &mut pos)?;
        let value = read_nullable(body, &mut pos)?;
        let headers = body.get(pos..)?;
        self.pos = end;
        Some(Record {
            offset: self.header.base_offset.checked_add(offset_delta)?,
            timestamp: self.header.base_timestamp.saturating_add(timestamp_delta),
            key,
            value,
            headers,
        })
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        if self.left <= 0 {
            return None;
        }
        self.left -= 1;
        let record = self.parse_one();
        if record.is_none() {
            self.left = 0;
        }
        record
    }
}

/// Bytes [`write_varint`] writes for `v`.
fn varint_len(v: i64) -> usize {
    let z = ((v << 1) ^ (v >> 63)) as u64;
    (64 - (z | 1).leading_zeros() as usize).div_ceil(7)
}

fn write_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn write_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            write_varint(out, b.len() as i64);
            out.extend_from_slice(b);
        }
        None => write_varint(out, -1),
    }
}

/// Builds an uncompressed magic-2 record batch, for the broker's own writes (internal topics,
/// RESP writes) and for tools and tests. Base offset 0, no producer id, CreateTime.
#[derive(Debug, Default)]
pub struct BatchBuilder {
    records: Vec<u8>,
    count: i32,
    base_timestamp: Option<i64>,
    max_timestamp: i64,
}

impl BatchBuilder {
    pub fn new() -> Self {
        BatchBuilder { max_timestamp: -1, ..BatchBuilder::default() }
    }

    /// Adds a record; `None` key or value is null (a null value is a tombstone).
    pub fn record(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, &[u8])],
    ) -> &mut Self {
        let base = *self.base_timestamp.get_or_insert(timestamp);
        let bytes_len = |b: Option<&[u8]>| b.map_or(varint_len(-1), |b| varint_len(b.len() as i64) + b.len());
        let body_len = 1 // record attributes (unused)
            + varint_len(timestamp - base)
            + varint_len(i64::from(self.count))
            + bytes_len(key)
            + bytes_len(value)
            + varint_len(headers.len() as i64)
            + headers.iter().map(|(k, v)| bytes_len(Some(k.as_bytes())) + bytes_len(Some(v))).sum::<usize>();
        let out = &mut self.records;
        out.reserve(varint_len(body_len as i64) + body_len);
        write_varint(out, body_len as i64);
        out.push(0);
        write_varint(out, timestamp - base);
        write_varint(out, i64::from(self.count));
        write_bytes(out, key);
        write_bytes(out, value);
        write_varint(out, headers.len() as i64);
        for (k, v) in headers {
            write_bytes(out, Some(k.as_bytes()));
            write_bytes(out, Some(v));
        }
        self.count += 1;
        self.max_timestamp = self.max_timestamp.max(timestamp);
        self
    }

    /// The finished batch with its CRC.
    ///
    /// # Panics
    /// If no record was added (Kafka batches are never empty).
    pub fn build(&self) -> Vec<u8> {
        assert!(self.count > 0, "a record batch needs at least one record");
        let mut b = Vec::with_capacity(HEADER_SIZE + self.records.len());
        b.extend_from_slice(&0i64.to_be_bytes());
        b.extend_from_slice(&((HEADER_SIZE - LOG_OVERHEAD + self.records.len()) as i32).to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
        b.push(2);
        b.extend_from_slice(&[0; 4]); // crc, below
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&(self.count - 1).to_be_bytes());
        b.extend_from_slice(&self.base_timestamp.unwrap_or(-1).to_be_bytes());
        b.extend_from_slice(&self.max_timestamp.to_be_bytes());
        b.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
        b.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
        b.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
        b.extend_from_slice(&self.count.to_be_bytes());
        b.extend_from_slice(&self.records);
        let crc = compute_crc(&b);
        b[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
        b
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn varint_len_matches_what_write_varint_writes() {
        for v in [0, 1, -1, 63, 64, -64, -65, 127, 128, 8191, 8192, i64::from(i32::MAX), i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            assert_eq!(varint_len(v), out.len(), "{v}");
        }
    }

    /// A valid uncompressed batch of `values` (null keys), timestamps `base_timestamp + i`.
    pub(crate) fn make_batch(values: &[&[u8]], base_timestamp: i64) -> Vec<u8> {
        let mut b = BatchBuilder::new();
        for (i, v) in values.iter().enumerate() {
            b.record(base_timestamp + i as i64, None, Some(v), &[]);
        }
        b.build()
    }

    /// `batch` (uncompressed) with its records section compressed with `codec`.
    pub(crate) fn compress_batch(batch: &[u8], codec: Compression) -> Vec<u8> {
        let header = BatchHeader::parse(batch).expect("header");
        let mut head = batch[..HEADER_SIZE].to_vec();
        let attributes = (header.attributes & !0x07) | codec as i16;
        head[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
        let body = crate::log::codec::compress(codec, &batch[HEADER_SIZE..]).expect("compress");
        with_records(&head, header.records_count, &body)
    }

    #[test]
    fn records_of_a_built_batch_read_back_with_keys_values_headers_and_tombstones() {
        let mut b = BatchBuilder::new();
        b.record(1_000, Some(b"k1"), Some(b"v1"), &[("h", b"x")]);
        b.record(1_005, Some(b"k2"), None, &[]);
        b.record(1_002, None, Some(b""), &[]);
        let mut batch = b.build();
        set_base_offset(&mut batch, 40);
        let got: Vec<Record<'_>> = records(&batch).expect("uncompressed").collect();
        assert_eq!(
            got,
            vec![
                // One header: count 1, key "h", value "x" (zig-zag varint lengths).
                Record {
                    offset: 40,
                    timestamp: 1_000,
                    key: Some(b"k1"),
                    value: Some(b"v1"),
                    headers: &[2, 2, b'h', 2, b'x']
                },
                Record { offset: 41, timestamp: 1_005, key: Some(b"k2"), value: None, headers: &[0] },
                Record { offset: 42, timestamp: 1_002, key: None, value: Some(b""), headers: &[0] },
            ]
        );
        let headers: Vec<Vec<_>> = got.iter().map(|r| r.headers().collect()).collect();
        assert_eq!(headers, vec![vec![(&b"h"[..], Some(&b"x"[..]))], vec![], vec![]]);
        // A truncated batch yields what parses, then stops.
        assert!(records(&batch[..batch.len() - 1]).is_none());
    }

    #[test]
    fn a_well_formed_batch_validates_and_reports_its_fields() {
        let b = make_batch(&[b"a", b"bb", b"ccc"], 1_000);
        let h = validate(&b).expect("valid");
        assert_eq!(h.records_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.base_timestamp, 1_000);
        assert_eq!(h.max_timestamp, 1_002);
        assert_eq!(h.size(), b.len());
        assert_eq!(h.compression(), Ok(Compression::None));
    }

    #[test]
    fn every_single_bit_flip_in_crc_covered_bytes_is_rejected() {
        let b = make_batch(&[b"hello", b"world"], 5);
        for i in ATTRIBUTES..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x10;
            assert!(validate(&c).is_err(), "flip at byte {i} was accepted");
        }
    }

    fn patched(b: &[u8], patch: HeaderPatch) -> Vec<u8> {
        [&patched_header(b, patch)[..], &b[HEADER_SIZE..]].concat()
    }

    #[test]
    fn base_offset_and_leader_epoch_patches_keep_the_crc_valid() {
        let b = make_batch(&[b"x"], 5);
        let b = patched(&b, HeaderPatch { base_offset: 42, partition_leader_epoch: Some(7), log_append_time: None });
        let h = validate(&b).expect("still valid");
        assert_eq!((h.base_offset, h.partition_leader_epoch), (42, 7));
    }

    #[test]
    fn log_append_time_stamping_sets_type_and_max_timestamp_and_fixes_crc() {
        let b = make_batch(&[b"x", b"y"], 5);
        let b =
            patched(&b, HeaderPatch { base_offset: 0, partition_leader_epoch: None, log_append_time: Some(99_000) });
        let h = validate(&b).expect("crc recomputed");
        assert_eq!(h.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(h.max_timestamp, 99_000);
        assert_eq!(first_offset_at_or_after(&b, 50_000), Some((0, 99_000)));
    }

    #[test]
    fn header_checks_reject_bad_magic_counts_lengths_and_timestamps() {
        let good = make_batch(&[b"x", b"y"], 5);
        let fix = |mut b: Vec<u8>| {
            let crc = compute_crc(&b);
            b[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
            b
        };
        let mut b = good.clone();
        b[MAGIC] = 1;
        assert_eq!(validate(&b), Err(InvalidBatch::UnsupportedMagic(1)));
        let mut b = good.clone();
        b[RECORDS_COUNT..RECORDS_COUNT + 4].copy_from_slice(&3i32.to_be_bytes());
        assert!(matches!(validate(&fix(b)), Err(InvalidBatch::CountMismatch { .. })));
        let mut b = good.clone();
        b[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&1i64.to_be_bytes());
        assert!(matches!(validate(&fix(b)), Err(InvalidBatch::BadTimestamps { .. })));
        assert!(matches!(validate(&good[..good.len() - 1]), Err(InvalidBatch::LengthMismatch { .. })));
        assert!(matches!(validate(&good[..10]), Err(InvalidBatch::TooShort(10))));
        let mut b = good.clone();
        b[ATTRIBUTES + 1] |= 0x07;
        assert_eq!(validate(&fix(b)), Err(InvalidBatch::UnknownCompression(7)));
    }

    #[test]
    fn timestamp_search_inside_an_uncompressed_batch_finds_the_first_record_at_or_after() {
        let mut b = make_batch(&[b"a", b"b", b"c", b"d"], 100);
        set_base_offset(&mut b, 10);
        assert_eq!(first_offset_at_or_after(&b, 0), Some((10, 100)));
        assert_eq!(first_offset_at_or_after(&b, 102), Some((12, 102)));
        assert_eq!(first_offset_at_or_after(&b, 103), Some((13, 103)));
        assert_eq!(first_offset_at_or_after(&b, 104), None);
    }

    #[test]
    fn scanning_rejects_base_offsets_outside_the_segment_range() {
        let mut first = make_batch(&[b"a"], 1);
        assert!(matches!(scan_valid(&first, 0, 100, |_| {}), ScanEnd::Invalid { position: 0, .. }));
        set_base_offset(&mut first, 100);
        let mut far = make_batch(&[b"b"], 1);
        set_base_offset(&mut far, 100 + (1 << 40)); // a flipped bit: the CRC cannot see it
        let log = [first.clone(), far].concat();
        let mut seen = 0;
        let end = scan_valid(&log, 0, 100, |_| seen += 1);
        assert_eq!(seen, 1);
        assert!(matches!(end, ScanEnd::Invalid { position, .. } if position as usize == first.len()));
    }

    #[test]
    fn scanning_stops_at_a_torn_tail_and_reports_its_position() {
        let a = make_batch(&[b"a"], 1);
        let mut c = make_batch(&[b"c"], 1);
        set_base_offset(&mut c, 1);
        let mut log = [a.clone(), c.clone()].concat();
        log.truncate(log.len() - 3);
        let mut seen = vec![];
        let end = scan_valid(&log, 0, 0, |b| seen.push(b.header.base_offset));
        assert_eq!(seen, vec![0]);
        assert!(matches!(end, ScanEnd::Invalid { position, .. } if position as usize == a.len()));
    }
}
