//! The RESP port: accepts Redis clients and runs each connection — reading pipelined
//! requests, answering them in order, and, once the connection subscribes, pushing the
//! messages of its channels between requests.
//!
//! A protocol error (garbage bytes, an oversized length) gets Redis's error reply and closes
//! that connection only; an unknown command or a wrong arity gets an error reply and the
//! connection goes on.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::commands::{self, Outcome, Session};
use super::{Limits, Protocol, Reply, RequestParser};
use crate::broker::Broker;

/// Connection ids (`CLIENT ID`), unique for the process.
static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(1);

/// Starts the RESP port on threads of its own (`resp.io-threads`), each a single-threaded
/// runtime — an event loop, as in Redis. The first thread accepts and hands connections
/// out round robin; a connection stays on its thread. Returns a future that completes once
/// shutdown is signalled and every thread has finished its connections' current commands
/// (they hold partitions, which a clean shutdown needs back).
///
/// Why apart from the Kafka port's work-stealing runtime: a pipelined GET run costs a few
/// hundred nanoseconds, less than waking another worker thread to steal it, so on few cores
/// one event loop per thread serves more (measured: with `redis-benchmark -P 16` on 2
/// cores, one loop answered about 1.4M GET/s where the shared 2-thread runtime answered
/// 1.2M); and neither port can starve the other of all the cores.
///
/// # Errors
/// A thread or its runtime could not be started.
pub fn start(
    listener: TcpListener,
    broker: Arc<Broker>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<impl std::future::Future<Output = ()>> {
    let threads = broker.config.resp_threads.max(1);
    let listener = listener.into_std()?;
    let mut done = Vec::with_capacity(threads);
    let mut handoff = Vec::with_capacity(threads);
    let mut inboxes = Vec::with_capacity(threads);
    for _ in 0..threads {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        handoff.push(tx);
        inboxes.push(rx);
    }
    let mut listener = Some(listener);
    for (i, inbox) in inboxes.into_iter().enumerate() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (finished, finished_rx) = tokio::sync::oneshot::channel::<()>();
        done.push(finished_rx);
        let (broker, shutdown) = (Arc::clone(&broker), shutdown.clone());
        let accept = listener.take().map(|l| (l, handoff.clone()));
        std::thread::Builder::new().name(format!("weir-resp-{i}")).spawn(move || {
            runtime.block_on(event_loop(accept, inbox, broker, shutdown));
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

/// A connection handed to an event loop.
type Handoff = (std::net::TcpStream, SocketAddr);

/// One RESP thread: serves the connections handed to it (and, on the first thread, accepts
/// and hands them out) until shutdown, then waits for its connections to finish.
async fn event_loop(
    accept: Option<(std::net::TcpListener, Vec<tokio::sync::mpsc::UnboundedSender<Handoff>>)>,
    mut inbox: tokio::sync::mpsc::UnboundedReceiver<Handoff>,
    broker: Arc<Broker>,
    shutdown: watch::Receiver<bool>,
) {
    let (listener, loops) = match accept {
        Some((l, loops)) => match TcpListener::from_std(l) {
            Ok(l) => (Some(l), loops),
            Err(e) => {
                tracing::error!(error = %e, "cannot serve the RESP port");
                (None, loops)
            }
        },
        None => (None, Vec::new()),
    };
    let mut next = 0usize;
    let mut stop = shutdown.clone();
    let mut connections = tokio::task::JoinSet::new();
    let spawn = |connections: &mut tokio::task::JoinSet<()>, stream: TcpStream, peer| {
        connections.spawn(connection(stream, peer, Arc::clone(&broker), shutdown.clone()));
    };
    loop {
        tokio::select! {
            accepted = next_connection(listener.as_ref()), if listener.is_some() => match accepted {
                Ok((stream, peer)) => {
                    next = (next + 1) % loops.len().max(1);
                    if next == 0 {
                        spawn(&mut connections, stream, peer);
                    } else if let Ok(stream) = stream.into_std() {
                        let _ = loops[next].send((stream, peer));
                    }
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "RESP accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            Some((stream, peer)) = inbox.recv() => {
                if let Ok(stream) = TcpStream::from_std(stream) {
                    spawn(&mut connections, stream, peer);
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

async fn write_replies(stream: &mut TcpStream, out: &mut BytesMut) -> std::io::Result<()> {
    if !out.is_empty() {
        stream.write_all(out).await?;
        out.clear();
    }
    Ok(())
}

async fn connection(mut stream: TcpStream, peer: SocketAddr, broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    metrics::gauge!(crate::metrics::RESP_CONNECTIONS).increment(1.0);
    let id = NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed);
    let mut session = Session::new(id, peer, &broker);
    let limits = Limits { max_bulk_len: broker.config.resp_max_bulk_len, ..Limits::default() };
    let mut parser = RequestParser::new(limits);
    let mut input = BytesMut::with_capacity(16 * 1024);
    let mut out = BytesMut::with_capacity(16 * 1024);
    let mut appends = broker.subscribe_appends();
    // One wait for shutdown for the connection's life, not a new one per request.
    let stopping = shutdown.changed();
    tokio::pin!(stopping);
    'conn: loop {
        // Answer every complete request already buffered (pipelining), then write once.
        let mut requests = Vec::new();
        let mut broken = None;
        loop {
            match parser.next(&mut input) {
                Ok(Some(args)) => requests.push(args),
                Ok(None) => break,
                Err(e) => {
                    broken = Some(e);
                    break;
                }
            }
        }
        let mut requests = requests.into_iter().peekable();
        while let Some(args) = requests.next() {
            // A run of GETs is answered under one look at the views.
            if commands::is_plain_get(&session, &args) {
                let mut run = vec![args];
                while let Some(next) = requests.next_if(|n| commands::is_plain_get(&session, n)) {
                    run.push(next);
                }
                session.ran("get");
                super::kv::get_run(&broker, &run, session.protocol, &mut out).await;
                continue;
            }
            // A run of plain SETs is appended as one batch (one log append for the run).
            if commands::is_plain_set(&session, &args)
                && requests.peek().is_some_and(|n| commands::is_plain_set(&session, n))
            {
                let mut run = vec![args];
                while let Some(next) = requests.next_if(|n| commands::is_plain_set(&session, n)) {
                    run.push(next);
                }
                session.ran("set");
                for r in super::kv::set_run(&broker, run).await {
                    r.encode(session.protocol, &mut out);
                }
                continue;
            }
            match commands::execute(&broker, &mut session, args).await {
                Outcome::Reply(r) => r.encode(session.protocol, &mut out),
                Outcome::Replies(rs) => rs.iter().for_each(|r| r.encode(session.protocol, &mut out)),
                Outcome::Close(r) => {
                    r.encode(session.protocol, &mut out);
                    let _ = write_replies(&mut stream, &mut out).await;
                    break 'conn;
                }
            }
        }
        if let Some(e) = broken {
            tracing::debug!(%peer, error = %e, "closing RESP connection after a protocol error");
            e.to_reply().encode(session.protocol, &mut out);
            let _ = write_replies(&mut stream, &mut out).await;
            break 'conn;
        }
        if session.subscriptions.count() > 0 {
            deliver(&broker, &mut session, &mut out);
        }
        if write_replies(&mut stream, &mut out).await.is_err() {
            break;
        }
        let subscribed = session.subscriptions.count() > 0;
        tokio::select! {
            read = stream.read_buf(&mut input) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
            changed = appends.changed(), if subscribed => {
                if changed.is_err() {
                    break;
                }
            }
            _ = &mut stopping => break,
        }
    }
    session.close(&broker);
    metrics::gauge!(crate::metrics::RESP_CONNECTIONS).decrement(1.0);
}

/// Pushes the messages that arrived on the session's channels.
fn deliver(broker: &Broker, session: &mut Session, out: &mut BytesMut) {
    for m in session.subscriptions.poll(broker, 10_000) {
        let push = |items: Vec<Reply>| match session.protocol {
            Protocol::Resp3 => Reply::Push(items),
            Protocol::Resp2 => Reply::Array(items),
        };
        let reply = match m.pattern {
            Some(p) => push(vec![
                Reply::Bulk(Bytes::from_static(b"pmessage")),
                Reply::Bulk(p),
                Reply::Bulk(m.channel),
                Reply::Bulk(m.payload),
            ]),
            None => {
                push(vec![Reply::Bulk(Bytes::from_static(b"message")), Reply::Bulk(m.channel), Reply::Bulk(m.payload)])
            }
        };
        reply.encode(session.protocol, out);
    }
}
