//! Errors of the storage layer.
//!
//! Every variant names its subject (a path, a topic-partition, an offset) and what was being
//! done, and keeps the underlying cause as `#[source]`. The mapping to Kafka error codes lives
//! in one place, [`crate::error`]; this module only says what went wrong.

use std::io;
use std::path::PathBuf;

/// A storage-layer error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O operation on a file or directory failed.
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The log was taken offline by an earlier failed write or fsync; it refuses every later
    /// write until the broker restarts and recovers it (a failed fsync is never retried).
    #[error("log {dir} is offline after an earlier storage failure: {cause}")]
    Offline { dir: PathBuf, cause: String },

    /// There was no disk space to reserve for the append; nothing was written and the log
    /// stays online (a later append succeeds once space is freed).
    #[error("no space left to reserve {bytes} bytes in {path}")]
    DiskFull {
        path: PathBuf,
        bytes: u64,
        #[source]
        source: io::Error,
    },

    /// The record batch handed to `append` is malformed (Kafka: CORRUPT_MESSAGE or
    /// INVALID_RECORD, see [`InvalidBatch`]).
    #[error("invalid record batch: {0}")]
    InvalidBatch(#[from] InvalidBatch),

    /// The batch is larger than `max.message.bytes` or `segment.bytes` (Kafka:
    /// MESSAGE_TOO_LARGE / RECORD_BATCH_TOO_LARGE).
    #[error("record batch of {size} bytes exceeds the limit of {limit} bytes ({setting})")]
    BatchTooLarge { size: usize, limit: usize, setting: &'static str },

    /// The requested offset lies outside `[log_start_offset, log_end_offset]`.
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange { offset: i64, log_start_offset: i64, log_end_offset: i64 },

    /// A topic configuration value could not be parsed or is out of range.
    #[error("invalid value {value:?} for topic config {key}: {reason}")]
    InvalidConfig { key: String, value: String, reason: String },

    /// A topic name breaks Kafka's naming rules.
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidTopic { name: String, reason: &'static str },

    /// A metadata file (topic config, checkpoint) under the data dir could not be parsed.
    #[error("corrupt metadata file {path}: {reason}")]
    CorruptMetadata { path: PathBuf, reason: String },
}

impl Error {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io { action, path: path.into(), source }
    }

    /// True for errors that Kafka reports as KAFKA_STORAGE_ERROR (the disk, not the request,
    /// is at fault).
    pub fn is_storage_error(&self) -> bool {
        matches!(self, Error::Io { .. } | Error::Offline { .. } | Error::DiskFull { .. })
    }
}

/// Why a record batch header was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidBatch {
    #[error("{0} bytes is shorter than the 61-byte record batch header")]
    TooShort(usize),
    #[error("batch length field says {declared} bytes but {actual} bytes were given")]
    LengthMismatch { declared: i64, actual: usize },
    #[error("magic byte is {0}, only magic 2 (Kafka 0.11+) record batches are accepted")]
    UnsupportedMagic(i8),
    #[error("CRC32C mismatch: header says {expected:#010x}, computed {computed:#010x}")]
    CrcMismatch { expected: u32, computed: u32 },
    #[error("record count {0} must be positive")]
    BadRecordCount(i32),
    #[error("last offset delta {last_offset_delta} does not match record count {count}")]
    CountMismatch { last_offset_delta: i32, count: i32 },
    #[error("max timestamp {max} is below first timestamp {first}")]
    BadTimestamps { first: i64, max: i64 },
    #[error("control batches may only be written by the broker")]
    ControlBatchFromClient,
    #[error("unknown compression codec {0}")]
    UnknownCompression(u8),
}

/// Result alias of the storage layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
