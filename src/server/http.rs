//! The HTTP port: `/metrics` (Prometheus text format), `/health` (the process is up) and
//! `/ready` (it serves requests; 503 while shutting down). Deliberately tiny: one request per
//! connection, bounded reads.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::broker::Broker;

/// Serves until shutdown.
pub async fn serve(
    listener: TcpListener,
    broker: Arc<Broker>,
    metrics: PrometheusHandle,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    let shutting_down = *shutdown.borrow();
                    tokio::spawn(respond(stream, Arc::clone(&broker), metrics.clone(), shutting_down));
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

async fn respond(mut stream: TcpStream, broker: Arc<Broker>, metrics: PrometheusHandle, shutting_down: bool) {
    // The request head may arrive in pieces: read until its blank line (or 4 KiB, or 5 s).
    let mut buf = [0u8; 4096];
    let mut n = 0;
    let head = async {
        while n < buf.len() && !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf[n..]).await {
                Ok(0) | Err(_) => return n > 0,
                Ok(k) => n += k,
            }
        }
        true
    };
    if !matches!(tokio::time::timeout(std::time::Duration::from_secs(5), head).await, Ok(true)) {
        return;
    }
    let request = String::from_utf8_lossy(&buf[..n]);
    let path = request.split_whitespace().nth(1).unwrap_or("");
    let (status, content_type, body) = match path {
        "/metrics" => {
            let text = tokio::task::spawn_blocking(move || crate::metrics::render(&metrics, &broker))
                .await
                .unwrap_or_default();
            ("200 OK", "text/plain; version=0.0.4", text)
        }
        "/health" => ("200 OK", "text/plain", "ok\n".to_owned()),
        "/ready" if shutting_down => ("503 Service Unavailable", "text/plain", "shutting down\n".to_owned()),
        "/ready" => ("200 OK", "text/plain", "ready\n".to_owned()),
        _ => ("404 Not Found", "text/plain", "not found\n".to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
}
