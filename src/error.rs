//! The one place where errors of every layer become Kafka error codes.
//!
//! Kafka error codes are the protocol's; the numbers here are Kafka's own (see the protocol
//! guide's error table), so that clients react to weir exactly as they react to Kafka.

use crate::log;

/// The Kafka error codes the storage layer can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i16)]
pub enum KafkaErrorCode {
    OffsetOutOfRange = 1,
    CorruptMessage = 2,
    MessageTooLarge = 10,
    InvalidTopicException = 17,
    RecordListTooLarge = 18,
    InvalidRecord = 87,
    InvalidConfig = 40,
    KafkaStorageError = 56,
}

impl KafkaErrorCode {
    pub fn code(self) -> i16 {
        self as i16
    }
}

/// Maps a storage error to the code Kafka would send for it.
pub fn log_error_code(e: &log::Error) -> KafkaErrorCode {
    use log::{Error, InvalidBatch};
    match e {
        Error::Io { .. } | Error::Offline { .. } | Error::DiskFull { .. } | Error::CorruptMetadata { .. } => {
            KafkaErrorCode::KafkaStorageError
        }
        Error::InvalidBatch(
            InvalidBatch::CrcMismatch { .. } | InvalidBatch::TooShort(_) | InvalidBatch::LengthMismatch { .. },
        ) => KafkaErrorCode::CorruptMessage,
        Error::InvalidBatch(_) => KafkaErrorCode::InvalidRecord,
        Error::BatchTooLarge { setting: "segment.bytes", .. } => KafkaErrorCode::RecordListTooLarge,
        Error::BatchTooLarge { .. } => KafkaErrorCode::MessageTooLarge,
        Error::OffsetOutOfRange { .. } => KafkaErrorCode::OffsetOutOfRange,
        Error::InvalidConfig { .. } => KafkaErrorCode::InvalidConfig,
        Error::InvalidTopic { .. } => KafkaErrorCode::InvalidTopicException,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_failures_are_kafka_storage_errors_and_corruption_is_corrupt_message() {
        let io = log::Error::Offline { dir: "/d".into(), cause: "fsync failed".into() };
        assert_eq!(log_error_code(&io).code(), 56);
        let crc = log::Error::InvalidBatch(log::InvalidBatch::CrcMismatch { expected: 1, computed: 2 });
        assert_eq!(log_error_code(&crc).code(), 2);
        let big = log::Error::BatchTooLarge { size: 2, limit: 1, setting: "max.message.bytes" };
        assert_eq!(log_error_code(&big).code(), 10);
    }
}
