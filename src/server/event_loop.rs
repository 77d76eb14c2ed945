//! Event-loop threads: a listening port served by N threads, each a single-threaded tokio
//! runtime that owns the connections handed to it, as Redis and Kafka's network threads do.
//! Both the Kafka port (`num.network.threads`) and the RESP port (`resp.io-threads`) run
//! this way, apart from the runtime that runs the HTTP port and the background tasks.
//!
//! The first thread accepts and hands connections out round robin; a connection stays on
//! its thread for life, so its requests are decoded, handled and answered there with no
//! hand-off between threads.
//!
//! Why not one work-stealing runtime for everything: a small request (a Produce of a few
//! records, a Fetch answered from the page cache, a GET) costs a few microseconds of work,
//! less than the wake of a second worker that work stealing starts on every burst. On the
//! 2-core benchmark machine the stealing runtime made ~0.15 futex calls per request and
//! ~13% more context switches than one event loop did (`perf stat -e context-switches`,
//! `benches/e2e.rs latency`), and context switches are most of the broker's CPU there.
//!
//! Shutdown: when the watch flips, each thread stops accepting, lets its connections finish
//! the request in hand (they close themselves on the same signal) and, after `drain`,
//! aborts whatever is left, so a stuck client cannot hold up the broker's clean shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

/// A connection accepted by the first thread and handed to another.
type Handoff = (std::net::TcpStream, SocketAddr);

/// What the threads of one port share: its name (for thread names and logs), how long
/// connections get to finish at shutdown, and how a connection is served.
#[derive(Clone)]
pub struct Port<F> {
    pub name: &'static str,
    pub threads: usize,
    pub drain: Duration,
    pub serve: F,
}

impl<F> std::fmt::Debug for Port<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port").field("name", &self.name).field("threads", &self.threads).finish_non_exhaustive()
    }
}

/// Starts `port.threads` event-loop threads serving `listener`. Returns a future that
/// completes once shutdown has been signalled and every thread has finished (or, after
/// `drain`, aborted) its connections.
///
/// # Errors
/// A thread or its runtime could not be started, or the listener could not be moved.
pub fn start<F, Fut>(
    listener: TcpListener,
    port: Port<F>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<impl Future<Output = ()>>
where
    F: Fn(TcpStream, SocketAddr) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let threads = port.threads.max(1);
    let mut listener = Some(listener.into_std()?);
    let (handoff, inboxes): (Vec<_>, Vec<_>) = (0..threads).map(|_| mpsc::unbounded_channel::<Handoff>()).unzip();
    let mut done = Vec::with_capacity(threads);
    for (i, inbox) in inboxes.into_iter().enumerate() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (finished, finished_rx) = oneshot::channel::<()>();
        done.push(finished_rx);
        let accept = listener.take().map(|l| (l, handoff.clone()));
        let (port, shutdown) = (port.clone(), shutdown.clone());
        std::thread::Builder::new().name(format!("weir-{}-{i}", port.name)).spawn(move || {
            runtime.block_on(run(accept, inbox, port, shutdown));
            drop(finished);
        })?;
    }
    Ok(async move {
        for d in done {
            let _ = d.await;
        }
    })
}

async fn next_connection(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// One thread: serves the connections handed to it (and, on the first thread, accepts and
/// hands them out) until shutdown, then drains its connections.
async fn run<F, Fut>(
    accept: Option<(std::net::TcpListener, Vec<mpsc::UnboundedSender<Handoff>>)>,
    mut inbox: mpsc::UnboundedReceiver<Handoff>,
    port: Port<F>,
    mut shutdown: watch::Receiver<bool>,
) where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (listener, loops) = match accept {
        Some((l, loops)) => match TcpListener::from_std(l) {
            Ok(l) => (Some(l), loops),
            Err(e) => {
                tracing::error!(port = port.name, error = %e, "cannot serve the port");
                (None, loops)
            }
        },
        None => (None, Vec::new()),
    };
    let mut next = 0usize;
    let mut connections = JoinSet::new();
    while !*shutdown.borrow_and_update() {
        tokio::select! {
            accepted = next_connection(listener.as_ref()), if listener.is_some() => match accepted {
                Ok((stream, peer)) => {
                    next = (next + 1) % loops.len().max(1);
                    if next == 0 {
                        connections.spawn((port.serve)(stream, peer));
                    } else if let Ok(stream) = stream.into_std() {
                        let _ = loops[next].send((stream, peer));
                    }
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(port = port.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some((stream, peer)) = inbox.recv() => {
                if let Ok(stream) = TcpStream::from_std(stream) {
                    connections.spawn((port.serve)(stream, peer));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            changed = shutdown.changed() => if changed.is_err() { break },
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(port.drain, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(port = port.name, left = connections.len(), "connections did not finish in time; closing them");
        connections.shutdown().await;
    }
}
