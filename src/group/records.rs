//! The records of `__consumer_offsets`, in Kafka's own key and value schemas, so tools that
//! read that topic (Burrow, kminion, Kafka's `kafka-console-consumer --formatter
//! ...OffsetsMessageFormatter`) understand weir's.
//!
//! Every key and value starts with an int16 schema version. Keys:
//! - v0/v1 `OffsetCommitKey`: group, topic, partition;
//! - v2 `GroupMetadataKey`: group (classic group membership);
//! - v3 `ConsumerGroupMetadataKey`: group (KIP-848 group epoch).
//!
//! weir writes `OffsetCommitValue` v3, `GroupMetadataValue` v3 (the versions Kafka 3.x writes,
//! readable by every tool) and `ConsumerGroupMetadataValue` v0; it reads every version of
//! these up to the flexible ones (v4 of the first two). A null value is a tombstone: the
//! offset or group was deleted. Other key versions (Kafka's further KIP-848 records) are
//! skipped.

use bytes::{BufMut, Bytes, BytesMut};

/// A key of `__consumer_offsets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Offset { group: String, topic: String, partition: i32 },
    GroupMetadata { group: String },
    ConsumerGroupMetadata { group: String },
}

impl Key {
    pub fn group(&self) -> &str {
        match self {
            Key::Offset { group, .. } | Key::GroupMetadata { group } | Key::ConsumerGroupMetadata { group } => group,
        }
    }
}

/// `OffsetCommitValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    /// -1 when unknown.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
    /// Only in v1 values (explicit retention of old clients); -1 otherwise.
    pub expire_timestamp: i64,
}

/// One member in `GroupMetadataValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// The member's metadata for the selected protocol.
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// `GroupMetadataValue`: a classic group's generation and members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp: i64,
    pub members: Vec<MemberValue>,
}

/// A decoded value (`None` in [`decode`]'s result is a tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Offset(OffsetValue),
    Group(GroupValue),
    ConsumerGroup { epoch: i32 },
}

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("record key is missing")]
    NoKey,
    #[error("truncated or malformed {0}")]
    Malformed(&'static str),
    #[error("unknown {what} schema version {version}")]
    UnknownVersion { what: &'static str, version: i16 },
}

// ---- encoding ----

fn put_string(out: &mut BytesMut, s: &str) {
    out.put_i16(s.len().min(i16::MAX as usize) as i16);
    out.put_slice(&s.as_bytes()[..s.len().min(i16::MAX as usize)]);
}

fn put_nullable_string(out: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(out, s),
        None => out.put_i16(-1),
    }
}

fn put_bytes(out: &mut BytesMut, b: &[u8]) {
    out.put_i32(b.len() as i32);
    out.put_slice(b);
}

impl Key {
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(64);
        match self {
            Key::Offset { group, topic, partition } => {
                out.put_i16(1);
                put_string(&mut out, group);
                put_string(&mut out, topic);
                out.put_i32(*partition);
            }
            Key::GroupMetadata { group } => {
                out.put_i16(2);
                put_string(&mut out, group);
            }
            Key::ConsumerGroupMetadata { group } => {
                out.put_i16(3);
                put_string(&mut out, group);
            }
        }
        out.freeze()
    }
}

impl Value {
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(128);
        match self {
            Value::Offset(v) => {
                out.put_i16(3);
                out.put_i64(v.offset);
                out.put_i32(v.leader_epoch);
                put_string(&mut out, &v.metadata);
                out.put_i64(v.commit_timestamp);
            }
            Value::Group(g) => {
                out.put_i16(3);
                put_string(&mut out, &g.protocol_type);
                out.put_i32(g.generation);
                put_nullable_string(&mut out, g.protocol.as_deref());
                put_nullable_string(&mut out, g.leader.as_deref());
                out.put_i64(g.current_state_timestamp);
                out.put_i32(g.members.len() as i32);
                for m in &g.members {
                    put_string(&mut out, &m.member_id);
                    put_nullable_string(&mut out, m.group_instance_id.as_deref());
                    put_string(&mut out, &m.client_id);
                    put_string(&mut out, &m.client_host);
                    out.put_i32(m.rebalance_timeout_ms);
                    out.put_i32(m.session_timeout_ms);
                    put_bytes(&mut out, &m.subscription);
                    put_bytes(&mut out, &m.assignment);
                }
            }
            Value::ConsumerGroup { epoch } => {
                // Flexible from v0: the epoch, then an empty tagged-field section.
                out.put_i16(0);
                out.put_i32(*epoch);
                out.put_u8(0);
            }
        }
        out.freeze()
    }
}

// ---- decoding ----

/// A bounds-checked reader over a key or value; `flexible` switches strings, bytes and arrays
/// to the compact (unsigned varint) encodings of flexible versions.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    flexible: bool,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, pos: 0, flexible: false, what }
    }

    fn err(&self) -> RecordError {
        RecordError::Malformed(self.what)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.err())?;
        let s = self.buf.get(self.pos..end).ok_or_else(|| self.err())?;
        self.pos = end;
        Ok(s)
    }

    fn i16(&mut self) -> Result<i16, RecordError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32, RecordError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self) -> Result<i64, RecordError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(i64::from_be_bytes(a))
    }

    fn uvarint(&mut self) -> Result<u64, RecordError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.err())
    }

    /// A length: -1 (null) or ≥ 0, in the encoding of the current version.
    fn length(&mut self, wide: bool) -> Result<Option<usize>, RecordError> {
        let n: i64 = if self.flexible {
            self.uvarint()? as i64 - 1
        } else if wide {
            i64::from(self.i32()?)
        } else {
            i64::from(self.i16()?)
        };
        match n {
            -1 => Ok(None),
            n if n >= 0 && (n as usize) <= self.buf.len() - self.pos.min(self.buf.len()) => Ok(Some(n as usize)),
            _ => Err(self.err()),
        }
    }

    fn nullable_string(&mut self) -> Result<Option<String>, RecordError> {
        match self.length(false)? {
            None => Ok(None),
            Some(n) => {
                let s = self.take(n)?;
                Ok(Some(String::from_utf8(s.to_vec()).map_err(|_| self.err())?))
            }
        }
    }

    fn string(&mut self) -> Result<String, RecordError> {
        self.nullable_string()?.ok_or_else(|| self.err())
    }

    fn bytes(&mut self) -> Result<Bytes, RecordError> {
        let n = self.length(true)?.unwrap_or(0);
        Ok(Bytes::copy_from_slice(self.take(n)?))
    }

    fn array_len(&mut self) -> Result<usize, RecordError> {
        Ok(self.length(true)?.unwrap_or(0))
    }

    /// Skips a tagged-field section (flexible versions).
    fn tagged_fields(&mut self) -> Result<(), RecordError> {
        if self.flexible {
            let count = self.uvarint()?;
            for _ in 0..count {
                self.uvarint()?;
                let size = usize::try_from(self.uvarint()?).map_err(|_| self.err())?;
                self.take(size)?;
            }
        }
        Ok(())
    }
}

/// Decodes a record of `__consumer_offsets`: its key, and its value (`None`: a tombstone).
/// `Ok(None)` for key versions weir does not keep (other KIP-848 records).
///
/// # Errors
/// [`RecordError`] for malformed bytes or unknown value versions.
pub fn decode(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Option<(Key, Option<Value>)>, RecordError> {
    let key = decode_key(key.ok_or(RecordError::NoKey)?)?;
    let Some(key) = key else { return Ok(None) };
    let Some(value) = value else { return Ok(Some((key, None))) };
    let value = match key {
        Key::Offset { .. } => Value::Offset(decode_offset_value(value)?),
        Key::GroupMetadata { .. } => Value::Group(decode_group_value(value)?),
        Key::ConsumerGroupMetadata { .. } => {
            let mut r = Reader::new(value, "ConsumerGroupMetadataValue");
            r.i16()?;
            Value::ConsumerGroup { epoch: r.i32()? }
        }
    };
    Ok(Some((key, Some(value))))
}

fn decode_key(key: &[u8]) -> Result<Option<Key>, RecordError> {
    let mut r = Reader::new(key, "__consumer_offsets key");
    let version = r.i16()?;
    Ok(Some(match version {
        0 | 1 => Key::Offset { group: r.string()?, topic: r.string()?, partition: r.i32()? },
        2 => Key::GroupMetadata { group: r.string()? },
        3 => Key::ConsumerGroupMetadata { group: r.string()? },
        v if v > 3 => return Ok(None),
        v => return Err(RecordError::UnknownVersion { what: "key", version: v }),
    }))
}

fn decode_offset_value(value: &[u8]) -> Result<OffsetValue, RecordError> {
    let mut r = Reader::new(value, "OffsetCommitValue");
    let version = r.i16()?;
    if !(0..=4).contains(&version) {
        return Err(RecordError::UnknownVersion { what: "OffsetCommitValue", version });
    }
    r.flexible = version >= 4;
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string()?;
    let commit_timestamp = r.i64()?;
    let expire_timestamp = if version == 1 { r.i64()? } else { -1 };
    r.tagged_fields()?;
    Ok(OffsetValue { offset, leader_epoch, metadata, commit_timestamp, expire_timestamp })
}

fn decode_group_value(value: &[u8]) -> Result<GroupValue, RecordError> {
    let mut r = Reader::new(value, "GroupMetadataValue");
    let version = r.i16()?;
    if !(0..=4).contains(&version) {
        return Err(RecordError::UnknownVersion { what: "GroupMetadataValue", version });
    }
    r.flexible = version >= 4;
    let protocol_type = r.string()?;
    let generation = r.i32()?;
    let protocol = r.nullable_string()?;
    let leader = r.nullable_string()?;
    let current_state_timestamp = if version >= 2 { r.i64()? } else { -1 };
    let count = r.array_len()?;
    let mut members = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let member_id = r.string()?;
        let group_instance_id = if version >= 3 { r.nullable_string()? } else { None };
        let client_id = r.string()?;
        let client_host = r.string()?;
        let rebalance_timeout_ms = if version >= 1 { r.i32()? } else { -1 };
        let session_timeout_ms = r.i32()?;
        let subscription = r.bytes()?;
        let assignment = r.bytes()?;
        r.tagged_fields()?;
        members.push(MemberValue {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms: if rebalance_timeout_ms < 0 { session_timeout_ms } else { rebalance_timeout_ms },
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    r.tagged_fields()?;
    Ok(GroupValue { protocol_type, generation, protocol, leader, current_state_timestamp, members })
}

/// The partition of `__consumer_offsets` that holds `group`: Kafka's rule,
/// `abs(String.hashCode(group)) % partitions`, so tools compute the same coordinator.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in group.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    // Kafka's Utils.abs maps i32::MIN to 0 rather than overflowing.
    let h = if h == i32::MIN { 0 } else { h.abs() };
    h % partitions.max(1)
}

/// The topics of a consumer-protocol subscription (`ConsumerProtocolSubscription`, any
/// version: they all start with the version and the topic array). Empty when unreadable.
pub fn subscription_topics(metadata: &[u8]) -> Vec<String> {
    let mut r = Reader::new(metadata, "subscription");
    let mut topics = Vec::new();
    let parse = |r: &mut Reader<'_>, topics: &mut Vec<String>| -> Result<(), RecordError> {
        r.i16()?;
        for _ in 0..r.array_len()? {
            topics.push(r.string()?);
        }
        Ok(())
    };
    if parse(&mut r, &mut topics).is_err() {
        topics.clear();
    }
    topics
}

/// The partitions of a consumer-protocol assignment (`ConsumerProtocolAssignment`, any
/// version: they all start with the version and the (topic, partitions) array; later fields
/// are not read), as (topic, partitions). Empty bytes are no partitions.
///
/// # Errors
/// Truncated or malformed bytes; counts larger than the bytes could hold are refused before
/// anything is allocated for them.
pub fn assignment_partitions(assignment: &[u8]) -> Result<Vec<(String, Vec<i32>)>, RecordError> {
    if assignment.is_empty() {
        return Ok(Vec::new());
    }
    let mut r = Reader::new(assignment, "consumer protocol assignment");
    if r.i16()? < 0 {
        return Err(r.err());
    }
    let mut out = Vec::new();
    for _ in 0..r.array_len()? {
        let topic = r.string()?;
        let n = r.array_len()?;
        let mut partitions = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            partitions.push(r.i32()?);
        }
        out.push((topic, partitions));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_commit_records_round_trip() {
        let key = Key::Offset { group: "g".into(), topic: "t".into(), partition: 3 };
        let value = Value::Offset(OffsetValue {
            offset: 42,
            leader_epoch: 7,
            metadata: "m".into(),
            commit_timestamp: 1_700_000_000_000,
            expire_timestamp: -1,
        });
        let decoded = decode(Some(&key.encode()), Some(&value.encode())).expect("decodes");
        assert_eq!(decoded, Some((key.clone(), Some(value))));
        assert_eq!(decode(Some(&key.encode()), None).expect("tombstone"), Some((key, None)));
    }

    #[test]
    fn kafka_byte_layout_of_an_offset_commit() {
        // Key v1: version, group "g", topic "t", partition 1. Value v3 as Kafka writes it.
        let key = Key::Offset { group: "g".into(), topic: "t".into(), partition: 1 }.encode();
        assert_eq!(&key[..], &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 1]);
        let value = Value::Offset(OffsetValue {
            offset: 5,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 9,
            expire_timestamp: -1,
        })
        .encode();
        assert_eq!(&value[..], &[0, 3, 0, 0, 0, 0, 0, 0, 0, 5, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
    }

    #[test]
    fn old_offset_values_with_expire_timestamps_decode() {
        // v1: offset, metadata, commit timestamp, expire timestamp.
        let mut v = BytesMut::new();
        v.put_i16(1);
        v.put_i64(10);
        put_string(&mut v, "meta");
        v.put_i64(100);
        v.put_i64(200);
        let key = Key::Offset { group: "g".into(), topic: "t".into(), partition: 0 }.encode();
        let Some((_, Some(Value::Offset(o)))) = decode(Some(&key), Some(&v)).expect("decodes") else {
            panic!("offset value expected")
        };
        assert_eq!((o.offset, o.leader_epoch, o.metadata.as_str(), o.expire_timestamp), (10, -1, "meta", 200));
    }

    #[test]
    fn group_metadata_round_trips() {
        let key = Key::GroupMetadata { group: "g".into() };
        let value = Value::Group(GroupValue {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp: 123,
            members: vec![MemberValue {
                member_id: "m1".into(),
                group_instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        });
        assert_eq!(decode(Some(&key.encode()), Some(&value.encode())).expect("ok"), Some((key, Some(value))));
    }

    #[test]
    fn flexible_v4_offset_values_decode() {
        let mut v = BytesMut::new();
        v.put_i16(4);
        v.put_i64(77);
        v.put_i32(2);
        v.put_u8(3); // compact string "ab"
        v.put_slice(b"ab");
        v.put_i64(5);
        v.put_u8(1); // one tagged field: tag 0, 16 bytes (topic id)
        v.put_u8(0);
        v.put_u8(16);
        v.put_slice(&[0; 16]);
        let key = Key::Offset { group: "g".into(), topic: "t".into(), partition: 0 }.encode();
        let Some((_, Some(Value::Offset(o)))) = decode(Some(&key), Some(&v)).expect("decodes") else {
            panic!("offset value expected")
        };
        assert_eq!((o.offset, o.leader_epoch, o.metadata.as_str()), (77, 2, "ab"));
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        let key = Key::GroupMetadata { group: "g".into() }.encode();
        for len in 0..12 {
            let junk = vec![0xffu8; len];
            let _ = decode(Some(&junk), Some(&junk));
            let _ = decode(Some(&key), Some(&junk));
        }
        assert_eq!(decode(None, None), Err(RecordError::NoKey));
        // Later KIP-848 record types are skipped, not errors.
        assert_eq!(decode(Some(&[0, 5, 0, 1, b'g']), Some(&[0, 0])), Ok(None));
    }

    #[test]
    fn coordinator_partition_matches_kafkas_hash() {
        // Java: "my-group".hashCode() == 1_060_869_839 ... computed by the same rule.
        assert_eq!(partition_for("", 50), 0);
        let h = "my-group".encode_utf16().fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)));
        assert_eq!(partition_for("my-group", 50), h.abs() % 50);
        for g in ["a", "console-consumer-12345", "ǅ-unicode-group"] {
            assert!((0..50).contains(&partition_for(g, 50)));
        }
    }

    #[test]
    fn consumer_protocol_subscription_and_assignment_parse() {
        let mut s = BytesMut::new();
        s.put_i16(1);
        s.put_i32(2);
        put_string(&mut s, "a");
        put_string(&mut s, "b");
        s.put_i32(-1); // user data
        assert_eq!(subscription_topics(&s), vec!["a".to_owned(), "b".to_owned()]);
        let mut a = BytesMut::new();
        a.put_i16(0);
        a.put_i32(1);
        put_string(&mut a, "a");
        a.put_i32(2);
        a.put_i32(0);
        a.put_i32(3);
        assert_eq!(assignment_partitions(&a), Ok(vec![("a".to_owned(), vec![0, 3])]));
        assert!(assignment_partitions(&[0, 0, 0x7f]).is_err());
        assert!(assignment_partitions(&[0, 0, 0x7f, 0xff, 0xff, 0xff]).is_err(), "a hostile count is refused");
        assert_eq!(assignment_partitions(&[]), Ok(vec![]));
    }
}
