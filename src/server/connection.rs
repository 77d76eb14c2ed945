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
use kafka_protocol::messages::ResponseKind;

use crate::protocol::{self, Decoded};

/// Serves one connection until the client closes it, it breaks a rule, or shutdown.
pub async fn serve(stream: TcpStream, peer: SocketAddr, broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    metrics::gauge!(crate::metrics::ACTIVE_CONNECTIONS).increment(1.0);
    let _open = scopeguard(|| metrics::gauge!(crate::metrics::ACTIVE_CONNECTIONS).decrement(1.0));
    let (mut reader, mut writer) = stream.into_split();
    let idle = broker.config.connections_max_idle;
    let max = broker.config.socket_request_max_bytes;
    loop {
        let mut prefix = [0u8; 4];
        tokio::select! {
            read = tokio::time::timeout(idle, reader.read_exact(&mut prefix)) => match read {
                Err(_) => {
                    tracing::debug!(%peer, "closing idle connection");
                    return;
                }
                Ok(Err(_)) => return, // closed by the client
                Ok(Ok(_)) => {}
            },
            _ = shutdown.changed() => return,
        }
        let len = i32::from_be_bytes(prefix);
        if len < 0 || len as usize > max {
            tracing::warn!(%peer, len, max, "closing connection: request size out of range (socket.request.max.bytes)");
            return;
        }
        let len = len as usize;
        let mut frame = BytesMut::with_capacity(len);
        let body = async {
            while frame.len() < len {
                let want = (len - frame.len()) as u64;
                if (&mut reader).take(want).read_buf(&mut frame).await? == 0 {
                    return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
                }
            }
            Ok::<(), std::io::Error>(())
        };
        match tokio::time::timeout(broker.config.request_timeout, body).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                tracing::warn!(%peer, len, "closing connection: request did not arrive within request.timeout.ms");
                return;
            }
        }
        match handle_frame(&broker, frame.freeze()).await {
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

/// Writes the pieces of a response with vectored writes: record bytes go from the segment
/// maps to the socket without an intermediate buffer.
async fn write_all_vectored(
    writer: &mut tokio::net::tcp::OwnedWriteHalf,
    mut pieces: Vec<Bytes>,
) -> std::io::Result<()> {
    use bytes::Buf;
    pieces.retain(|p| !p.is_empty());
    let mut first = 0;
    while first < pieces.len() {
        let slices: Vec<std::io::IoSlice<'_>> =
            pieces[first..].iter().take(64).map(|p| std::io::IoSlice::new(p)).collect();
        let mut written = writer.write_vectored(&slices).await?;
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
pub async fn handle_frame(broker: &Arc<Broker>, frame: Bytes) -> anyhow::Result<Option<Vec<Bytes>>> {
    let request = match protocol::decode_request(frame)? {
        Decoded::ApiVersionsUnsupported { correlation_id } => {
            return Ok(Some(vec![protocol::api_versions_unsupported(correlation_id)]));
        }
        Decoded::Request(r) => r,
    };
    let ctx = RequestContext {
        api_version: request.api_version,
        correlation_id: request.header.correlation_id,
        client_id: request.header.client_id.as_ref().map(|c| c.to_string()),
    };
    let decoded = request.body;
    let started = std::time::Instant::now();
    let response = handler::dispatch(broker, &ctx, decoded).await;
    let api = api_name(request.api_key);
    metrics::counter!(crate::metrics::REQUESTS, "api" => api).increment(1);
    metrics::histogram!(crate::metrics::REQUEST_DURATION, "api" => api).record(started.elapsed().as_secs_f64());
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
