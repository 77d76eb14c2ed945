//! One client connection: 4-byte size-prefixed frames in, responses out, in request order.
//!
//! The connection knows bytes, not meaning: it checks the size prefix against
//! `socket.request.max.bytes` *before* allocating, reads the body without an intermediate
//! buffer (record bytes go from the kernel straight into the frame that the log writes from),
//! and hands complete frames to [`handle_frame`]. Responses are written with vectored writes,
//! so fetched record bytes go from the segment maps to the socket with no copy in weir. Requests are answered one at a time, in
//! order, as Kafka does (clients may pipeline; the next request is read after the previous
//! response is written). A connection idle for `connections.max.idle.ms` is closed, and so is
//! one whose frame does not complete within `request.timeout.ms`, so a stalled partial frame
//! cannot hold memory.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::broker::Broker;
use crate::handler::{self, RequestContext};
use crate::server::timer::ConnectionTimer;
use kafka_protocol::messages::ResponseKind;

use crate::protocol::{self, Decoded};

/// Serves one connection until the client closes it, it breaks a rule, or shutdown.
pub async fn serve(stream: TcpStream, peer: SocketAddr, broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    metrics::gauge!(crate::metrics::ACTIVE_CONNECTIONS).increment(1.0);
    let _open = scopeguard(|| metrics::gauge!(crate::metrics::ACTIVE_CONNECTIONS).decrement(1.0));
    let (mut reader, mut writer) = stream.into_split();
    let limits = FrameLimits {
        max: broker.config.socket_request_max_bytes,
        idle: broker.config.connections_max_idle,
        frame_timeout: broker.config.request_timeout,
    };
    let mut buffer = BytesMut::with_capacity(READ_CHUNK);
    let mut timer = ConnectionTimer::new();
    // One wait for shutdown for the connection's life, not a new one per request.
    let stopping = shutdown.changed();
    tokio::pin!(stopping);
    loop {
        let frame = tokio::select! {
            frame = next_frame(&mut reader, &mut buffer, &limits, &mut timer) => match frame {
                Ok(frame) => frame,
                Err(reason) => {
                    match reason {
                        Close::Eof => {}
                        Close::Idle => tracing::debug!(%peer, "closing idle connection"),
                        Close::TooLarge(len) => tracing::warn!(
                            %peer, len, max = limits.max,
                            "closing connection: request size out of range (socket.request.max.bytes)"
                        ),
                        Close::Stalled(len) => tracing::warn!(
                            %peer, len, "closing connection: request did not arrive within request.timeout.ms"
                        ),
                    }
                    return;
                }
            },
            _ = &mut stopping => return,
        };
        match handle_frame(&broker, peer, frame, &mut timer).await {
            Ok(Some(pieces)) => {
                if write_all_vectored(&mut writer, pieces).await.is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => {
                metrics::counter!(crate::metrics::CONNECTION_ERRORS).increment(1);
                tracing::warn!(%peer, error = %format!("{e:#}"), "closing connection");
                return;
            }
        }
    }
}

/// Bytes asked of the socket per read: a whole small request (and often several pipelined
/// ones) arrives in one `recv`; larger frames reserve their exact size and are read in place.
const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug)]
struct FrameLimits {
    max: usize,
    idle: std::time::Duration,
    frame_timeout: std::time::Duration,
}

/// Why a connection stops reading.
#[derive(Debug)]
enum Close {
    Eof,
    Idle,
    TooLarge(i64),
    Stalled(usize),
}

/// The next complete frame (without its size prefix), split off `buffer` without copying.
/// Checks the size prefix before reserving space for the body. Waits up to `idle` for a new
/// frame to start and up to `frame_timeout` for a started one to complete (one deadline for
/// the whole frame, so trickling bytes cannot keep a partial frame alive). Reads the clock
/// only when it has to wait.
///
/// # Cancel safety
/// Cancel safe: bytes read so far stay in `buffer`.
async fn next_frame(
    reader: &mut tokio::net::tcp::OwnedReadHalf,
    buffer: &mut BytesMut,
    limits: &FrameLimits,
    timer: &mut ConnectionTimer,
) -> Result<Bytes, Close> {
    // The deadline of the current wait, and whether it is a partial frame's.
    let mut deadline: Option<(tokio::time::Instant, bool)> = None;
    loop {
        if buffer.len() >= 4 {
            let len = i32::from_be_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]);
            if len < 0 || len as usize > limits.max {
                return Err(Close::TooLarge(i64::from(len)));
            }
            let total = 4 + len as usize;
            if buffer.len() >= total {
                let mut frame = buffer.split_to(total);
                bytes::Buf::advance(&mut frame, 4);
                return Ok(frame.freeze());
            }
            buffer.reserve(total - buffer.len());
        }
        if buffer.capacity() - buffer.len() < 1024 {
            buffer.reserve(READ_CHUNK);
        }
        let partial = !buffer.is_empty();
        let (until, stalled) = match deadline {
            Some(d) if d.1 || !partial => d,
            _ => {
                let wait = if partial { limits.frame_timeout } else { limits.idle };
                *deadline.insert((tokio::time::Instant::now() + wait, partial))
            }
        };
        tokio::select! {
            biased;
            read = reader.read_buf(buffer) => match read {
                Ok(0) | Err(_) => return Err(Close::Eof),
                Ok(_) => {}
            },
            () = timer.until(until) => {
                return Err(if stalled { Close::Stalled(buffer.len()) } else { Close::Idle });
            }
        }
    }
}

/// Writes the pieces of a response with vectored writes: record bytes go from the segment
/// maps to the socket without an intermediate buffer.
async fn write_all_vectored(
    writer: &mut tokio::net::tcp::OwnedWriteHalf,
    mut pieces: Vec<Bytes>,
) -> std::io::Result<()> {
    use bytes::Buf;
    /// Slices per `writev`, well under every platform's IOV_MAX.
    const MAX_SLICES: usize = 64;
    pieces.retain(|p| !p.is_empty());
    let mut first = 0;
    while first < pieces.len() {
        let mut slices = [std::io::IoSlice::new(&[]); MAX_SLICES];
        let n = (pieces.len() - first).min(MAX_SLICES);
        for (slot, piece) in slices.iter_mut().zip(&pieces[first..first + n]) {
            *slot = std::io::IoSlice::new(piece);
        }
        let slices = &slices[..n];
        let mut written = writer.write_vectored(slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while written > 0 {
            let piece = &mut pieces[first];
            let n = written.min(piece.len());
            piece.advance(n);
            written -= n;
            if piece.is_empty() {
                first += 1;
            }
        }
    }
    Ok(())
}

/// Parses, dispatches and encodes one request. `Ok(None)`: no response is due.
///
/// # Errors
/// A request that cannot be parsed or a response that cannot be encoded: the connection
/// is closed.
pub async fn handle_frame(
    broker: &Arc<Broker>,
    peer: SocketAddr,
    frame: Bytes,
    timer: &mut ConnectionTimer,
) -> anyhow::Result<Option<Vec<Bytes>>> {
    let request = match protocol::decode_request(frame)? {
        Decoded::ApiVersionsUnsupported { correlation_id } => {
            return Ok(Some(vec![protocol::api_versions_unsupported(correlation_id)]));
        }
        Decoded::Request(r) => r,
    };
    let ctx = RequestContext {
        api_version: request.api_version,
        correlation_id: request.header.correlation_id,
        client_id: request.header.client_id.clone(),
        client_host: peer.ip(),
    };
    let decoded = request.body;
    let started = std::time::Instant::now();
    let response = handler::dispatch(broker, &ctx, decoded, timer).await;
    let (requests, duration) = request_metrics(request.api_key);
    requests.increment(1);
    duration.record(started.elapsed().as_secs_f64());
    let Some(response) = response else {
        return Ok(None);
    };
    let pieces = match response {
        ResponseKind::Fetch(fetch) => protocol::encode_fetch_response(request.api_version, ctx.correlation_id, fetch)?,
        other => vec![protocol::encode_response(request.api_key, request.api_version, ctx.correlation_id, &other)?],
    };
    Ok(Some(pieces))
}

/// Kafka's name of an API, as a static label value.
fn api_name(key: kafka_protocol::messages::ApiKey) -> &'static str {
    crate::protocol::spec(key).map_or("Unknown", |s| s.name)
}

/// The request counter and latency histogram of an API, registered once per API: looking a
/// labelled metric up by name costs a hash and a lock per request, which at tens of
/// thousands of small requests a second is a visible share of the broker's CPU.
fn request_metrics(key: kafka_protocol::messages::ApiKey) -> &'static (metrics::Counter, metrics::Histogram) {
    use std::sync::OnceLock;
    /// Above every API key kafka-protocol knows (the highest is below 100).
    const SLOTS: usize = 128;
    static BY_KEY: OnceLock<Vec<OnceLock<(metrics::Counter, metrics::Histogram)>>> = OnceLock::new();
    static OTHER: OnceLock<(metrics::Counter, metrics::Histogram)> = OnceLock::new();
    let register = |api: &'static str| {
        (
            metrics::counter!(crate::metrics::REQUESTS, "api" => api),
            metrics::histogram!(crate::metrics::REQUEST_DURATION, "api" => api),
        )
    };
    let slots = BY_KEY.get_or_init(|| (0..SLOTS).map(|_| OnceLock::new()).collect());
    match usize::try_from(key as i16).ok().and_then(|i| slots.get(i)) {
        Some(slot) => slot.get_or_init(|| register(api_name(key))),
        None => OTHER.get_or_init(|| register("Unknown")),
    }
}

/// Runs `f` when dropped.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}
