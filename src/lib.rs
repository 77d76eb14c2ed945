//! weir: a Kafka-compatible streaming platform with a Redis-protocol side port.
//!
//! The `weir` binary is a thin shell over this library: `weir serve` runs a broker, every
//! other subcommand is an operator tool. See `ARCHITECTURE.md` in the design notes and
//! `storage-format.md` at the repository root.
//!
//! # Layout
//! - [`log`]: the partition log — segmented, memory-mapped, indexed, crash-safe storage,
//!   and the data directory that holds the logs. Synchronous; owns every byte on disk.
//! - [`cli`]: operator subcommands (`weir log dump`, `weir log verify`).
//! - [`error`]: where per-layer errors meet the Kafka error codes.
//!
//! Still to come, in this order: the Kafka protocol server (`server`, `protocol`, `handler`,
//! `broker`), consumer groups (`coordinator`), the RESP port (`kv`), replication.

pub mod cli;
pub mod error;
pub mod log;
