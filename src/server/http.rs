//! The HTTP port: `/health` (the process is up) and `/ready` (it serves requests; 503 while
//! shutting down). Deliberately tiny: one request per connection, bounded reads.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Serves until shutdown.
pub async fn serve(listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    let shutting_down = *shutdown.borrow();
                    tokio::spawn(respond(stream, shutting_down));
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

async fn respond(mut stream: TcpStream, shutting_down: bool) {
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf)).await;
    let Ok(Ok(n)) = read else { return };
    let request = String::from_utf8_lossy(&buf[..n]);
    let path = request.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = match path {
        "/health" => ("200 OK", "ok\n"),
        "/ready" if shutting_down => ("503 Service Unavailable", "shutting down\n"),
        "/ready" => ("200 OK", "ready\n"),
        _ => ("404 Not Found", "not found\n"),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
}
