//! weir: a Kafka-compatible streaming platform with a Redis-protocol side port.
//!
//! The `weir` binary is a thin shell over this library: `weir serve` runs a broker, every
//! other subcommand is an operator tool. See `ARCHITECTURE.md` in the design notes and
//! `storage-format.md` at the repository root.
//!
//! # Layout
//! - [`server`]: the broker process — listeners, connections (framing, limits, in-order
//!   responses), the HTTP port, background upkeep, shutdown.
//! - [`protocol`]: the table of supported Kafka APIs and versions; header parsing, response
//!   framing, request guards.
//! - [`resp`]: the Redis protocol (RESP2/RESP3) as bytes — request parsing, reply encoding.
//! - [`kv`]: the key-value view of compacted topics (key → latest record) behind the RESP port.
//! - [`handler`]: one file per Kafka API.
//! - [`broker`]: the replica manager — partitions, leader epochs, high watermarks, waiting.
//! - [`group`]: the group coordinator — consumer groups (classic and KIP-848) and committed
//!   offsets, stored in `__consumer_offsets`.
//! - [`log`]: the partition log — segmented, memory-mapped, indexed, crash-safe storage,
//!   and the data directory that holds the logs. Synchronous; owns every byte on disk.
//! - [`config`]: broker configuration, raw → validated.
//! - [`metrics`]: every exported metric, named and described once.
//! - [`alloc`]: the global allocator that keeps hostile array counts from aborting.
//! - [`cli`]: operator subcommands (`weir log dump`, `weir log verify`, `weir group ...`).
//! - [`client`]: a small Kafka protocol client, for the operator subcommands that talk to
//!   brokers.
//! - [`error`]: where per-layer errors meet the Kafka error codes.
//!
//! Still to come: replication.

pub mod alloc;
pub mod broker;
pub mod cli;
pub mod client;
pub mod config;
pub mod error;
pub mod group;
pub mod handler;
pub mod kv;
pub mod log;
pub mod metrics;
pub mod protocol;
pub mod resp;
pub mod server;
