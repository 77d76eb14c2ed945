//! A small Kafka protocol client for the operator tools: one TCP connection to one broker,
//! one request in flight at a time, typed requests and responses from `kafka-protocol`.
//!
//! It owns framing on the client side (4-byte size prefix, request and response headers,
//! correlation ids) and the version check against the broker's ApiVersions. It does not own
//! cluster knowledge — which broker leads a partition or coordinates a group is the caller's
//! business — and it never retries: the operator tools report what the broker said.
//!
//! Versions are chosen by the caller, one fixed version per API, so that the fields a command
//! reads are always present; [`Client::request`] refuses a version the broker does not
//! support with an error that says so, instead of letting the broker close the connection.

use std::collections::HashMap;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The `client_id` in every request header, so that broker logs show who asked.
pub const CLIENT_ID: &str = "weir-cli";

/// The largest response accepted. Group and offset responses for thousands of partitions are
/// a few MiB; anything near this is a corrupt size prefix, not a response, so the size is
/// checked before the buffer is allocated.
pub const MAX_RESPONSE_BYTES: usize = 100 * 1024 * 1024;

/// How long to wait for a TCP connection. A broker that is up accepts at once; an address
/// that drops packets would otherwise hang the tool for the kernel's minutes-long timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait for one response. Group requests are answered immediately (no request
/// here asks the broker to wait), so this only bounds a stuck broker.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// ApiVersions v3 (Kafka 2.4+, every weir): flexible, and carries the client's name.
const API_VERSIONS_VERSION: i16 = 3;

/// Why a request did not produce a response.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach {addr}: {reason} — is `weir serve` running there?")]
    Connect { addr: String, reason: String },
    #[error("cannot reach {addr}: no connection within {timeout:?} (is `weir serve` running there?)")]
    ConnectTimeout { addr: String, timeout: Duration },
    #[error("{api:?} v{version} to {addr} failed")]
    Io {
        addr: String,
        api: ApiKey,
        version: i16,
        #[source]
        source: std::io::Error,
    },
    #[error("{addr} closed the connection instead of answering {api:?} v{version}")]
    Closed { addr: String, api: ApiKey, version: i16 },
    #[error("{addr} did not answer {api:?} v{version} within {timeout:?}")]
    Timeout { addr: String, api: ApiKey, version: i16, timeout: Duration },
    #[error("{addr} does not support {api:?}")]
    UnsupportedApi { addr: String, api: ApiKey },
    #[error("{addr} supports {api:?} v{min}..v{max}, this tool needs v{version}")]
    UnsupportedVersion { addr: String, api: ApiKey, version: i16, min: i16, max: i16 },
    #[error("{addr} refused ApiVersions with error code {code}")]
    ApiVersions { addr: String, code: i16 },
    #[error("cannot encode {api:?} v{version}")]
    Encode {
        api: ApiKey,
        version: i16,
        #[source]
        source: anyhow::Error,
    },
    #[error("malformed {api:?} v{version} response from {addr}")]
    Decode {
        addr: String,
        api: ApiKey,
        version: i16,
        #[source]
        source: anyhow::Error,
    },
    #[error("{addr} sent a {size}-byte response to {api:?} (limit {MAX_RESPONSE_BYTES}); is it a Kafka broker?")]
    FrameSize { addr: String, api: ApiKey, size: i32 },
    #[error("{addr} answered correlation id {got} to {api:?} sent with {expected}")]
    Correlation { addr: String, api: ApiKey, expected: i32, got: i32 },
}

/// Why a connect failed, as an operator reads it: "connection refused" rather than
/// "Connection refused (os error 111)".
fn connect_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        kind @ (K::ConnectionRefused
        | K::ConnectionReset
        | K::TimedOut
        | K::HostUnreachable
        | K::NetworkUnreachable) => kind.to_string(),
        _ => e.to_string(),
    }
}

/// One connection to one broker.
#[derive(Debug)]
pub struct Client {
    addr: String,
    stream: TcpStream,
    next_correlation_id: i32,
    /// `api_key` → (min, max) version, from the broker's ApiVersions response.
    versions: HashMap<i16, (i16, i16)>,
}

impl Client {
    /// Connects to `addr` (HOST:PORT) and asks the broker which API versions it supports.
    ///
    /// # Errors
    /// [`Error::Connect`] / [`Error::ConnectTimeout`] when nothing answers at `addr`; any
    /// request error of the ApiVersions exchange.
    pub async fn connect(addr: &str) -> Result<Client, Error> {
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(Error::Connect { addr: addr.to_owned(), reason: connect_reason(&e) }),
            Err(_elapsed) => return Err(Error::ConnectTimeout { addr: addr.to_owned(), timeout: CONNECT_TIMEOUT }),
        };
        // Requests are small and answered one at a time: send each at once.
        let _ = stream.set_nodelay(true);
        let mut client = Client { addr: addr.to_owned(), stream, next_correlation_id: 0, versions: HashMap::new() };
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str(CLIENT_ID))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let response = client.request(API_VERSIONS_VERSION, &request).await?;
        if response.error_code != 0 {
            return Err(Error::ApiVersions { addr: client.addr, code: response.error_code });
        }
        client.versions = response.api_keys.iter().map(|k| (k.api_key, (k.min_version, k.max_version))).collect();
        Ok(client)
    }

    /// The HOST:PORT this client is connected to, as given to [`Client::connect`].
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `request` at `version` and waits for its response.
    ///
    /// # Errors
    /// The broker does not support `R` at `version`; the connection fails, closes or times
    /// out; the response is oversized, malformed or answers another correlation id. After
    /// any error other than an unsupported version the connection is unusable (a response
    /// may still be in flight), so drop the client.
    pub async fn request<R: Request>(&mut self, version: i16, request: &R) -> Result<R::Response, Error> {
        let api = ApiKey::try_from(R::KEY).expect("kafka-protocol request types have known API keys");
        self.check_version(api, version)?;
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let frame = encode_request(api, version, correlation_id, request)?;
        let exchange = self.exchange(api, version, &frame);
        let mut body = match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(result) => result?,
            Err(_elapsed) => {
                return Err(Error::Timeout { addr: self.addr.clone(), api, version, timeout: REQUEST_TIMEOUT })
            }
        };
        let decode_error = |source| Error::Decode { addr: self.addr.clone(), api, version, source };
        let header = ResponseHeader::decode(&mut body, api.response_header_version(version)).map_err(decode_error)?;
        if header.correlation_id != correlation_id {
            return Err(Error::Correlation {
                addr: self.addr.clone(),
                api,
                expected: correlation_id,
                got: header.correlation_id,
            });
        }
        R::Response::decode(&mut body, version).map_err(decode_error)
    }

    fn check_version(&self, api: ApiKey, version: i16) -> Result<(), Error> {
        if api == ApiKey::ApiVersions {
            return Ok(());
        }
        match self.versions.get(&(api as i16)) {
            None => Err(Error::UnsupportedApi { addr: self.addr.clone(), api }),
            Some(&(min, max)) if !(min..=max).contains(&version) => {
                Err(Error::UnsupportedVersion { addr: self.addr.clone(), api, version, min, max })
            }
            Some(_) => Ok(()),
        }
    }

    /// Writes one frame and reads one response frame (without its size prefix).
    async fn exchange(&mut self, api: ApiKey, version: i16, frame: &[u8]) -> Result<Bytes, Error> {
        let addr = &self.addr;
        let io_error = |source: std::io::Error| {
            if source.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::Closed { addr: addr.clone(), api, version }
            } else {
                Error::Io { addr: addr.clone(), api, version, source }
            }
        };
        self.stream.write_all(frame).await.map_err(io_error)?;
        let size = self.stream.read_i32().await.map_err(io_error)?;
        let len = check_response_size(size).ok_or_else(|| Error::FrameSize { addr: addr.clone(), api, size })?;
        let mut body = vec![0; len];
        self.stream.read_exact(&mut body).await.map_err(io_error)?;
        Ok(Bytes::from(body))
    }
}

/// Encodes a size-prefixed request frame: size, header at the version `api` needs, body.
fn encode_request<R: Request>(api: ApiKey, version: i16, correlation_id: i32, request: &R) -> Result<BytesMut, Error> {
    let encode_error = |source| Error::Encode { api, version, source };
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    let mut frame = BytesMut::new();
    frame.put_i32(0); // size, patched below
    header.encode(&mut frame, api.request_header_version(version)).map_err(encode_error)?;
    request.encode(&mut frame, version).map_err(encode_error)?;
    let size = i32::try_from(frame.len() - 4).expect("operator requests are far below 2 GiB");
    frame[..4].copy_from_slice(&size.to_be_bytes());
    Ok(frame)
}

/// The length of a response body whose size prefix is `size`, or `None` when it is negative
/// or above [`MAX_RESPONSE_BYTES`].
fn check_response_size(size: i32) -> Option<usize> {
    usize::try_from(size).ok().filter(|&len| len <= MAX_RESPONSE_BYTES)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
    use tokio::net::TcpListener;

    use super::*;

    #[test]
    fn response_sizes_above_the_limit_or_negative_are_refused_before_allocating() {
        assert_eq!(check_response_size(0), Some(0));
        assert_eq!(check_response_size(1024), Some(1024));
        assert_eq!(check_response_size(MAX_RESPONSE_BYTES as i32), Some(MAX_RESPONSE_BYTES));
        assert_eq!(check_response_size(MAX_RESPONSE_BYTES as i32 + 1), None);
        assert_eq!(check_response_size(-1), None);
    }

    #[test]
    fn request_frames_carry_their_size_and_a_decodable_header() {
        let request = FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g"));
        let frame = encode_request(ApiKey::FindCoordinator, 3, 7, &request).expect("encode");
        let mut body = Bytes::copy_from_slice(&frame[4..]);
        assert_eq!(i32::from_be_bytes(frame[..4].try_into().expect("4 bytes")) as usize, body.len());
        let header =
            RequestHeader::decode(&mut body, ApiKey::FindCoordinator.request_header_version(3)).expect("header");
        assert_eq!((header.request_api_key, header.request_api_version, header.correlation_id), (10, 3, 7));
        assert_eq!(header.client_id.as_deref(), Some(CLIENT_ID));
        let decoded = FindCoordinatorRequest::decode(&mut body, 3).expect("body");
        assert_eq!(decoded.key.as_str(), "g");
    }

    #[tokio::test]
    async fn connecting_to_a_closed_port_names_the_address() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        drop(listener);
        let err = Client::connect(&addr).await.expect_err("nothing listens");
        assert!(matches!(err, Error::Connect { .. }), "{err:?}");
        assert!(err.to_string().starts_with(&format!("cannot reach {addr}")), "{err}");
    }

    /// A fake broker that answers ApiVersions with `versions`, then one FindCoordinator
    /// request with the given correlation id offset, then closes.
    async fn fake_broker(versions: Vec<(i16, i16, i16)>, correlation_skew: i32) -> String {
        use kafka_protocol::messages::api_versions_response::ApiVersion;
        use kafka_protocol::messages::ApiVersionsResponse;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            loop {
                let Ok(size) = s.read_i32().await else { return };
                let mut body = vec![0; size as usize];
                s.read_exact(&mut body).await.expect("body");
                let mut body = Bytes::from(body);
                let header = kafka_protocol::protocol::decode_request_header_from_buffer(&mut body).expect("header");
                let api = ApiKey::try_from(header.request_api_key).expect("key");
                let version = header.request_api_version;
                let mut out = BytesMut::new();
                ResponseHeader::default()
                    .with_correlation_id(header.correlation_id + correlation_skew)
                    .encode(&mut out, api.response_header_version(version))
                    .expect("encode header");
                match api {
                    ApiKey::ApiVersions => ApiVersionsResponse::default()
                        .with_api_keys(
                            versions
                                .iter()
                                .map(|&(k, min, max)| {
                                    ApiVersion::default().with_api_key(k).with_min_version(min).with_max_version(max)
                                })
                                .collect(),
                        )
                        .encode(&mut out, version),
                    _ => FindCoordinatorResponse::default()
                        .with_host(StrBytes::from_static_str("h"))
                        .with_port(9)
                        .encode(&mut out, version),
                }
                .expect("encode body");
                s.write_i32(out.len() as i32).await.expect("write size");
                s.write_all(&out).await.expect("write body");
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_request_round_trips_at_a_supported_version() {
        let addr = fake_broker(vec![(ApiKey::FindCoordinator as i16, 0, 4)], 0).await;
        let mut client = Client::connect(&addr).await.expect("connect");
        let request = FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g"));
        let response = client.request(3, &request).await.expect("response");
        assert_eq!((response.host.as_str(), response.port), ("h", 9));
    }

    #[tokio::test]
    async fn an_unsupported_version_is_refused_before_sending() {
        let addr = fake_broker(vec![(ApiKey::FindCoordinator as i16, 0, 2)], 0).await;
        let mut client = Client::connect(&addr).await.expect("connect");
        let err = client.request(3, &FindCoordinatorRequest::default()).await.expect_err("v3 > v2");
        assert!(matches!(err, Error::UnsupportedVersion { min: 0, max: 2, version: 3, .. }), "{err:?}");
        let addr = fake_broker(vec![], 0).await;
        let mut client = Client::connect(&addr).await.expect("connect");
        let err = client.request(3, &FindCoordinatorRequest::default()).await.expect_err("no such API");
        assert!(matches!(err, Error::UnsupportedApi { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn a_response_to_another_correlation_id_is_an_error() {
        let addr = fake_broker(vec![], 1).await;
        let err = Client::connect(&addr).await.expect_err("skewed correlation id");
        assert!(matches!(err, Error::Correlation { expected: 0, got: 1, .. }), "{err:?}");
    }
}
