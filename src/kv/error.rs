//! Errors of the key-value view.

use std::path::PathBuf;

/// Why the view could not catch up with its log. Reads of single values do not fail: a value
/// that cannot be read is reported absent (see [`crate::kv::KvIndex::get`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the log failed.
    #[error("read {dir} from offset {offset} for the key-value view")]
    Read {
        dir: PathBuf,
        offset: i64,
        #[source]
        source: crate::log::Error,
    },

    /// A stored batch could not be decoded (unknown codec, or its records section does not
    /// decompress). The view stops before it: no later record can be applied in order.
    #[error("record batch at offset {base_offset} in {dir} cannot be decoded for the key-value view: {reason}")]
    CorruptBatch { dir: PathBuf, base_offset: i64, reason: String },
}
