//! The key-value view of compacted topics, for the RESP side port (`GET`, `HGET`, `EXISTS`,
//! `SCAN`, `KEYS`, ...).
//!
//! This module owns the in-memory index key → offset of the key's latest record, one
//! [`KvIndex`] per partition, maintained by tailing the partition log up to the high
//! watermark. It owns no bytes on disk and stores no values: a value is read from the log's
//! memory maps when asked for, so the view costs memory per key, not per byte of data, and a
//! restart rebuilds it by reading the log once.
//!
//! It must not write to the log (RESP writes are produces, made by the broker), parse RESP
//! (that is [`crate::resp`]), or take the partition lock: it reads through a
//! [`crate::log::LogReader`], which never waits for appends.
//!
//! # Layout
//! - [`index`]: [`KvIndex`] — catching up with the log, reading values, SCAN.
//! - [`key_map`]: the key table underneath: keys packed in an arena, ordered by a hash of the
//!   key so that a SCAN cursor is a position in hash order.
//! - [`views`]: the views of every topic read through the RESP port, caught up on each read;
//!   Kafka's murmur2 partitioner for keyed writes.
//! - [`error`]: what can stop the view catching up ([`Error`]).
//! - `tests`: the view over real logs — appends, tombstones, codecs, compaction, SCAN.

pub mod error;
pub mod index;
pub mod key_map;
pub mod views;

pub use self::error::Error;
pub use self::index::KvIndex;

#[cfg(test)]
mod tests;
