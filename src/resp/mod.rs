//! The Redis protocol (RESP2 and RESP3) as bytes: requests in, replies out.
//!
//! The codec owns the wire format of the RESP side port and nothing above it. It turns the
//! bytes a Redis client sends into argument lists ([`RequestParser`]) and turns replies into
//! bytes ([`Reply::encode`], [`Reply::encode_parts`]), byte for byte as Redis does — the same
//! accepted inputs, the same `Protocol error: …` messages, the same RESP2 downgrades of RESP3
//! types. It must not do I/O, know any command, or allocate more than the configured
//! [`Limits`] because of a length a client claims: the connection loop (reading the socket,
//! closing after a protocol error, choosing RESP2 or RESP3 after `HELLO`) and the commands are
//! built on top of it elsewhere.
//!
//! Zero copy both ways: request arguments are [`bytes::Bytes`] split off the read buffer, and
//! a large reply payload (a value sliced from a memory-mapped segment) is handed back as its own
//! `Bytes` for a vectored write instead of being copied.
//!
//! # Layout
//! - [`codec`]: [`RequestParser`] and its [`Limits`] and [`ProtocolError`]s; [`Reply`] and
//!   its encoding under each [`Protocol`].
//! - [`server`]: the listener and the connection loop (pipelining, pushed pub/sub messages).
//! - [`commands`]: the commands and their replies; one session per connection.
//! - [`kv`]: strings (the `kv.topic` topic) and hashes (any compacted topic).
//! - [`pubsub`]: channels as topics, patterns as globs over topic names.

pub mod codec;
pub mod commands;
pub mod kv;
pub mod pubsub;
pub mod server;

pub use codec::{encode_bulk, Limits, Protocol, ProtocolError, Reply, RequestParser, ZERO_COPY_MIN_LEN};
