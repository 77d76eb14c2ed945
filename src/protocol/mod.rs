//! The Kafka wire protocol as weir speaks it: the table of supported APIs and versions, request
//! header parsing, and response framing. Message bodies are decoded and encoded by the
//! `kafka-protocol` crate; this module decides what is attempted and checks what the crate
//! does not (frame lengths, header bounds, versions it cannot decode).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

pub mod guard;

/// One supported API: the versions advertised in ApiVersions, and the lowest version
/// `kafka-protocol` can decode (advertised-but-undecodable versions are refused).
#[derive(Debug, Clone, Copy)]
pub struct ApiSpec {
    pub key: ApiKey,
    /// Kafka's name of the API (metric label).
    pub name: &'static str,
    pub min: i16,
    pub max: i16,
    pub decodable_min: i16,
}

/// Every API this broker serves. ApiVersions answers from this table and the dispatcher in
/// `handler` has an arm for each entry (a test checks both).
///
/// Why the minimums: librdkafka before 2.11 compresses produce batches only when the broker's
/// Produce minimum version is 0 (it checks `Produce 0..2` for gzip/snappy/lz4), so Produce
/// advertises 0 like Kafka 4.0 while versions 0–2 (pre-0.11 message formats) are refused.
pub const APIS: &[ApiSpec] = &[
    ApiSpec { key: ApiKey::Produce, name: "Produce", min: 0, max: 12, decodable_min: 3 },
    ApiSpec { key: ApiKey::Fetch, name: "Fetch", min: 4, max: 16, decodable_min: 4 },
    ApiSpec { key: ApiKey::ListOffsets, name: "ListOffsets", min: 1, max: 7, decodable_min: 1 },
    ApiSpec { key: ApiKey::Metadata, name: "Metadata", min: 0, max: 12, decodable_min: 0 },
    ApiSpec { key: ApiKey::ApiVersions, name: "ApiVersions", min: 0, max: 4, decodable_min: 0 },
    ApiSpec { key: ApiKey::CreateTopics, name: "CreateTopics", min: 2, max: 7, decodable_min: 2 },
    ApiSpec { key: ApiKey::DeleteTopics, name: "DeleteTopics", min: 1, max: 6, decodable_min: 1 },
    ApiSpec { key: ApiKey::InitProducerId, name: "InitProducerId", min: 0, max: 5, decodable_min: 0 },
    ApiSpec { key: ApiKey::CreatePartitions, name: "CreatePartitions", min: 0, max: 3, decodable_min: 0 },
    ApiSpec { key: ApiKey::DeleteRecords, name: "DeleteRecords", min: 0, max: 2, decodable_min: 0 },
    ApiSpec { key: ApiKey::DescribeCluster, name: "DescribeCluster", min: 0, max: 2, decodable_min: 0 },
    ApiSpec { key: ApiKey::DescribeConfigs, name: "DescribeConfigs", min: 1, max: 4, decodable_min: 1 },
    ApiSpec { key: ApiKey::AlterConfigs, name: "AlterConfigs", min: 0, max: 2, decodable_min: 0 },
    ApiSpec { key: ApiKey::IncrementalAlterConfigs, name: "IncrementalAlterConfigs", min: 0, max: 1, decodable_min: 0 },
    ApiSpec { key: ApiKey::FindCoordinator, name: "FindCoordinator", min: 0, max: 6, decodable_min: 0 },
    ApiSpec { key: ApiKey::JoinGroup, name: "JoinGroup", min: 0, max: 9, decodable_min: 0 },
    ApiSpec { key: ApiKey::SyncGroup, name: "SyncGroup", min: 0, max: 5, decodable_min: 0 },
    ApiSpec { key: ApiKey::Heartbeat, name: "Heartbeat", min: 0, max: 4, decodable_min: 0 },
    ApiSpec { key: ApiKey::LeaveGroup, name: "LeaveGroup", min: 0, max: 5, decodable_min: 0 },
    ApiSpec { key: ApiKey::OffsetCommit, name: "OffsetCommit", min: 2, max: 9, decodable_min: 2 },
    ApiSpec { key: ApiKey::OffsetFetch, name: "OffsetFetch", min: 1, max: 9, decodable_min: 1 },
    ApiSpec { key: ApiKey::ListGroups, name: "ListGroups", min: 0, max: 5, decodable_min: 0 },
    ApiSpec { key: ApiKey::DescribeGroups, name: "DescribeGroups", min: 0, max: 6, decodable_min: 0 },
    ApiSpec { key: ApiKey::DeleteGroups, name: "DeleteGroups", min: 0, max: 2, decodable_min: 0 },
    ApiSpec { key: ApiKey::OffsetDelete, name: "OffsetDelete", min: 0, max: 0, decodable_min: 0 },
    ApiSpec { key: ApiKey::ConsumerGroupHeartbeat, name: "ConsumerGroupHeartbeat", min: 0, max: 1, decodable_min: 0 },
    ApiSpec { key: ApiKey::ConsumerGroupDescribe, name: "ConsumerGroupDescribe", min: 0, max: 1, decodable_min: 0 },
];

/// The spec of `key`, if served.
pub fn spec(key: ApiKey) -> Option<&'static ApiSpec> {
    APIS.iter().find(|s| s.key == key)
}

/// Why a frame could not be turned into a request. Each closes the connection (Kafka does
/// the same for requests it cannot parse).
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("frame of {0} bytes is too short for a request header")]
    ShortFrame(usize),
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("API {key:?} is not supported")]
    UnsupportedApi { key: ApiKey },
    #[error("{key:?} v{version} is not supported (supported: v{min}..v{max})")]
    UnsupportedVersion { key: ApiKey, version: i16, min: i16, max: i16 },
    #[error("malformed {what}")]
    Malformed {
        what: String,
        #[source]
        source: anyhow::Error,
    },
    #[error("cannot encode {key:?} v{version} response")]
    Encode {
        key: ApiKey,
        version: i16,
        #[source]
        source: anyhow::Error,
    },
}

/// A parsed request header with the remaining body bytes.
#[derive(Debug)]
pub struct Request {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub header: RequestHeader,
    pub body: Bytes,
}

/// What to do with a frame.
#[derive(Debug)]
pub enum Parsed {
    Request(Request),
    /// ApiVersions at a version this broker does not know: answer with UNSUPPORTED_VERSION
    /// in the v0 layout (what Kafka does, so that clients can retry with a lower version).
    ApiVersionsUnsupported {
        correlation_id: i32,
    },
}

/// Parses a request header. The API key and version are read here, with bounds checks,
/// before `kafka-protocol` sees the frame.
///
/// # Errors
/// See [`ProtocolError`].
pub fn parse_request(mut frame: Bytes) -> Result<Parsed, ProtocolError> {
    if frame.len() < 8 {
        return Err(ProtocolError::ShortFrame(frame.len()));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let api_version = i16::from_be_bytes([frame[2], frame[3]]);
    let api_key = ApiKey::try_from(raw_key).map_err(|()| ProtocolError::UnknownApiKey(raw_key))?;
    let Some(spec) = spec(api_key) else {
        return Err(ProtocolError::UnsupportedApi { key: api_key });
    };
    if api_key == ApiKey::ApiVersions && api_version > spec.max {
        let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        return Ok(Parsed::ApiVersionsUnsupported { correlation_id });
    }
    if api_version < spec.decodable_min || api_version > spec.max {
        return Err(ProtocolError::UnsupportedVersion {
            key: api_key,
            version: api_version,
            min: spec.min,
            max: spec.max,
        });
    }
    let header_version = api_key.request_header_version(api_version);
    let header = RequestHeader::decode(&mut frame, header_version)
        .map_err(|source| ProtocolError::Malformed { what: format!("{api_key:?} request header"), source })?;
    guard::check_body(api_key, api_version, &frame)
        .map_err(|source| ProtocolError::Malformed { what: format!("{api_key:?} v{api_version} request"), source })?;
    Ok(Parsed::Request(Request { api_key, api_version, header, body: frame }))
}

/// A fully decoded request.
#[derive(Debug)]
pub struct DecodedRequest {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub header: RequestHeader,
    pub body: RequestKind,
}

/// What a frame turned out to be.
#[derive(Debug)]
pub enum Decoded {
    Request(Box<DecodedRequest>),
    ApiVersionsUnsupported { correlation_id: i32 },
}

/// Everything between a complete frame and a handler: header checks, guards, body decode.
/// This is the function the fuzzer drives (`tests/fuzz`), and whose corpus `cargo test`
/// replays: whatever the bytes, it returns, never panics or aborts (with the process's
/// allocator, see `crate::alloc`).
///
/// # Errors
/// See [`ProtocolError`].
pub fn decode_request(frame: Bytes) -> Result<Decoded, ProtocolError> {
    let request = match parse_request(frame)? {
        Parsed::ApiVersionsUnsupported { correlation_id } => {
            return Ok(Decoded::ApiVersionsUnsupported { correlation_id })
        }
        Parsed::Request(r) => r,
    };
    let mut body = request.body;
    let decoded = RequestKind::decode(request.api_key, &mut body, request.api_version).map_err(|source| {
        let client_id = request.header.client_id.as_deref().unwrap_or("");
        ProtocolError::Malformed {
            what: format!(
                "{:?} v{} request (client_id {client_id:?}, correlation_id {})",
                request.api_key, request.api_version, request.header.correlation_id
            ),
            source,
        }
    })?;
    Ok(Decoded::Request(Box::new(DecodedRequest {
        api_key: request.api_key,
        api_version: request.api_version,
        header: request.header,
        body: decoded,
    })))
}

/// A response frame: 4-byte length, response header, body.
///
/// # Errors
/// [`ProtocolError::Encode`] when the body has a field the version cannot carry (a bug).
pub fn encode_response(
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<Bytes, ProtocolError> {
    let encode_error = |source| ProtocolError::Encode { key: api_key, version: api_version, source };
    let mut out = BytesMut::with_capacity(256);
    out.put_i32(0); // length, patched below
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut out, api_key.response_header_version(api_version))
        .map_err(encode_error)?;
    body.encode(&mut out, api_version).map_err(encode_error)?;
    let len = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(out.freeze())
}

/// A Fetch response as the pieces of one frame, with record bytes *not* copied: each
/// partition's records (zero-copy slices of segment maps) become their own piece, written to
/// the socket with the rest by one vectored write.
///
/// How: the response is encoded by `kafka-protocol` with a 16-byte marker in place of each
/// partition's records; the encoding is split at the markers and each marker, with its length
/// prefix (i32 before v12, compact uvarint from v12), is replaced by the real length prefix
/// and the real bytes. Markers start with `0xff`, which no other field of the encoding can
/// place before the following `WEIRRECS`: topic names are ASCII and the marker is searched
/// for, in order, only where the next records field can be.
///
/// # Errors
/// [`ProtocolError::Encode`] (a bug).
pub fn encode_fetch_response(
    api_version: i16,
    correlation_id: i32,
    mut body: kafka_protocol::messages::FetchResponse,
) -> Result<Vec<Bytes>, ProtocolError> {
    let mut records: Vec<([u8; 16], Bytes)> = Vec::new();
    for topic in &mut body.responses {
        for p in &mut topic.partitions {
            if p.records.as_ref().is_some_and(|r| !r.is_empty()) {
                let mut marker = *b"\xffWEIRRECS\0\0\0\0\0\0\0";
                marker[9..13].copy_from_slice(&(records.len() as u32).to_be_bytes());
                let data = p.records.replace(Bytes::copy_from_slice(&marker)).expect("checked above");
                records.push((marker, data));
            }
        }
    }
    let encoded = encode_response(ApiKey::Fetch, api_version, correlation_id, &ResponseKind::Fetch(body))?;
    if records.is_empty() {
        return Ok(vec![encoded]);
    }
    let flexible = api_version >= 12;
    let marker_prefix = if flexible { 1 } else { 4 }; // uvarint(17) is one byte; i32 is four
    let mut pieces = Vec::with_capacity(records.len() * 3 + 2);
    let mut pos = 4; // after the size prefix, rewritten below
    for (marker, data) in records {
        let at = pos
            + encoded[pos..]
                .windows(marker.len())
                .position(|w| w == marker)
                .expect("every marker was encoded, in order");
        pieces.push(encoded.slice(pos..at - marker_prefix));
        let mut prefix = BytesMut::with_capacity(5);
        if flexible {
            let mut v = data.len() as u64 + 1;
            while v >= 0x80 {
                prefix.put_u8((v as u8 & 0x7f) | 0x80);
                v >>= 7;
            }
            prefix.put_u8(v as u8);
        } else {
            prefix.put_i32(data.len() as i32);
        }
        pieces.push(prefix.freeze());
        pieces.push(data);
        pos = at + marker.len();
    }
    pieces.push(encoded.slice(pos..));
    let len: usize = pieces.iter().map(Bytes::len).sum();
    pieces.insert(0, Bytes::copy_from_slice(&(len as i32).to_be_bytes()));
    Ok(pieces)
}

/// The ApiVersions v0-layout response with UNSUPPORTED_VERSION (35) that lists the versions
/// of ApiVersions itself, as Kafka sends it to a client that asked for a version it lacks.
pub fn api_versions_unsupported(correlation_id: i32) -> Bytes {
    let spec = spec(ApiKey::ApiVersions).expect("ApiVersions is always served");
    let mut out = BytesMut::with_capacity(24);
    out.put_i32(0);
    out.put_i32(correlation_id); // response header v0
    out.put_i16(35); // UNSUPPORTED_VERSION
    out.put_i32(1);
    out.put_i16(ApiKey::ApiVersions as i16);
    out.put_i16(spec.min);
    out.put_i16(spec.max);
    let len = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::Message;

    fn decodable_range(key: ApiKey) -> (i16, i16) {
        let r = match key {
            ApiKey::Produce => ProduceRequest::VERSIONS,
            ApiKey::Fetch => FetchRequest::VERSIONS,
            ApiKey::ListOffsets => ListOffsetsRequest::VERSIONS,
            ApiKey::Metadata => MetadataRequest::VERSIONS,
            ApiKey::ApiVersions => ApiVersionsRequest::VERSIONS,
            ApiKey::CreateTopics => CreateTopicsRequest::VERSIONS,
            ApiKey::DeleteTopics => DeleteTopicsRequest::VERSIONS,
            ApiKey::InitProducerId => InitProducerIdRequest::VERSIONS,
            ApiKey::CreatePartitions => CreatePartitionsRequest::VERSIONS,
            ApiKey::DeleteRecords => DeleteRecordsRequest::VERSIONS,
            ApiKey::DescribeCluster => DescribeClusterRequest::VERSIONS,
            ApiKey::DescribeConfigs => DescribeConfigsRequest::VERSIONS,
            ApiKey::AlterConfigs => AlterConfigsRequest::VERSIONS,
            ApiKey::IncrementalAlterConfigs => IncrementalAlterConfigsRequest::VERSIONS,
            ApiKey::FindCoordinator => FindCoordinatorRequest::VERSIONS,
            ApiKey::JoinGroup => JoinGroupRequest::VERSIONS,
            ApiKey::SyncGroup => SyncGroupRequest::VERSIONS,
            ApiKey::Heartbeat => HeartbeatRequest::VERSIONS,
            ApiKey::LeaveGroup => LeaveGroupRequest::VERSIONS,
            ApiKey::OffsetCommit => OffsetCommitRequest::VERSIONS,
            ApiKey::OffsetFetch => OffsetFetchRequest::VERSIONS,
            ApiKey::ListGroups => ListGroupsRequest::VERSIONS,
            ApiKey::DescribeGroups => DescribeGroupsRequest::VERSIONS,
            ApiKey::DeleteGroups => DeleteGroupsRequest::VERSIONS,
            ApiKey::OffsetDelete => OffsetDeleteRequest::VERSIONS,
            ApiKey::ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest::VERSIONS,
            ApiKey::ConsumerGroupDescribe => ConsumerGroupDescribeRequest::VERSIONS,
            other => panic!("add {other:?} to this test"),
        };
        (r.min, r.max)
    }

    #[test]
    fn every_advertised_version_from_the_decodable_minimum_can_be_decoded() {
        for spec in APIS {
            let (min, max) = decodable_range(spec.key);
            assert!(spec.decodable_min >= min && spec.max <= max, "{:?}: crate decodes {min}..{max}", spec.key);
            assert!(spec.min <= spec.decodable_min);
        }
    }

    #[test]
    fn short_frames_and_unknown_keys_are_errors_not_panics() {
        for len in 0..8 {
            assert!(matches!(parse_request(Bytes::from(vec![0u8; len])), Err(ProtocolError::ShortFrame(_))));
        }
        let frame = Bytes::from_static(&[0x7f, 0x7f, 0, 0, 0, 0, 0, 1]);
        assert!(matches!(parse_request(frame), Err(ProtocolError::UnknownApiKey(0x7f7f))));
    }

    #[test]
    fn zero_copy_fetch_encoding_equals_the_plain_encoding_at_every_version() {
        use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
        use kafka_protocol::protocol::StrBytes;
        let batch = |n: usize| Bytes::from((0..n).map(|i| (i * 7) as u8).collect::<Vec<u8>>());
        let response = FetchResponse::default().with_responses(vec![
            FetchableTopicResponse::default().with_topic(TopicName(StrBytes::from_static_str("a"))).with_partitions(
                vec![
                    PartitionData::default().with_partition_index(0).with_records(Some(batch(300))),
                    PartitionData::default().with_partition_index(1).with_records(Some(Bytes::new())),
                    PartitionData::default().with_partition_index(2).with_records(Some(batch(20_000))),
                ],
            ),
            FetchableTopicResponse::default()
                .with_topic(TopicName(StrBytes::from_static_str("b")))
                .with_partitions(vec![PartitionData::default().with_partition_index(0).with_records(Some(batch(5)))]),
        ]);
        for version in 4..=16 {
            let plain =
                encode_response(ApiKey::Fetch, version, 9, &ResponseKind::Fetch(response.clone())).expect("plain");
            let pieces = encode_fetch_response(version, 9, response.clone()).expect("zero copy");
            assert_eq!(pieces.concat(), plain.to_vec(), "v{version}");
        }
    }

    #[test]
    fn an_api_versions_request_above_v4_gets_the_v0_unsupported_answer() {
        let frame = Bytes::from_static(&[0, 18, 0, 9, 0, 0, 0, 42, 0, 0]);
        assert!(matches!(parse_request(frame), Ok(Parsed::ApiVersionsUnsupported { correlation_id: 42 })));
        let r = api_versions_unsupported(42);
        assert_eq!(&r[4..8], &42i32.to_be_bytes());
        assert_eq!(&r[8..10], &35i16.to_be_bytes());
        assert_eq!(&r[10..14], &1i32.to_be_bytes());
        assert_eq!(&r[14..16], &18i16.to_be_bytes());
    }
}
