//! Decoding fetched record batches for `weir consume`: whole v2 batches as Fetch returns
//! them, decompressed with [`codec::decompress`], control batches skipped, records before the
//! fetch position skipped (a fetch returns the whole batch that holds it), and each record's
//! headers, which [`records_in`] does not decode.
//!
//! This module owns no I/O and no positions: it turns bytes into [`RecordView`]s and says
//! where reading stopped.

use std::ops::ControlFlow;

use crate::log::batch::{records_in, HeaderIter, TimestampType, HEADER_SIZE};
use crate::log::codec;

/// One decoded record, borrowing from the fetched (or decompressed) bytes.
#[derive(Debug)]
pub(crate) struct RecordView<'a> {
    pub(crate) offset: i64,
    pub(crate) timestamp: i64,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    pub(super) headers: Vec<(&'a [u8], Option<&'a [u8]>)>,
}

/// Why records could not be decoded: `emit` failed, or a batch is damaged.
#[derive(Debug)]
pub(crate) enum DecodeError {
    Io(std::io::Error),
    Batch(String),
}

/// Calls `emit` for every record at or after `position` in the fetched `records` (whole
/// batches; a cut-off last batch is ignored), decompressing batches and skipping control
/// batches. Returns the position after what was read: past the last whole batch, or past
/// the record after which `emit` said stop.
///
/// # Errors
/// `emit`'s error; a batch that is not magic 2 or does not decompress.
pub(crate) fn for_each_record(
    records: &[u8],
    mut position: i64,
    mut emit: impl FnMut(RecordView<'_>) -> std::io::Result<ControlFlow<()>>,
) -> Result<i64, DecodeError> {
    for batch in HeaderIter::new(records, 0) {
        let header = batch.header;
        if header.next_offset() <= position {
            continue;
        }
        if header.magic != 2 {
            return Err(DecodeError::Batch(format!(
                "batch at offset {} has magic {}",
                header.base_offset, header.magic
            )));
        }
        if header.is_control() {
            position = header.next_offset();
            continue;
        }
        let start = batch.position as usize;
        let body = &records[start + HEADER_SIZE..start + header.size()];
        let codec = header.compression().map_err(|e| DecodeError::Batch(e.to_string()))?;
        let section = codec::decompress(codec, body)
            .map_err(|e| DecodeError::Batch(format!("batch at offset {}: {e}", header.base_offset)))?;
        for record in records_in(&section, &header) {
            if record.offset < position {
                continue;
            }
            let timestamp = match header.timestamp_type() {
                TimestampType::LogAppendTime => header.max_timestamp,
                TimestampType::CreateTime => record.timestamp,
            };
            let view = RecordView {
                offset: record.offset,
                timestamp,
                key: record.key,
                value: record.value,
                headers: record.headers().collect(),
            };
            position = record.offset + 1;
            if emit(view).map_err(DecodeError::Io)?.is_break() {
                return Ok(position);
            }
        }
        position = position.max(header.next_offset());
    }
    Ok(position)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::{set_base_offset, BatchBuilder};

    #[test]
    fn records_before_the_position_are_skipped_and_headers_decoded() {
        let mut b = BatchBuilder::new();
        b.record(100, Some(b"k0"), Some(b"v0"), &[]);
        b.record(101, Some(b"k1"), Some(b"v1"), &[("h", b"1"), ("g", b"")]);
        b.record(102, None, None, &[]);
        let mut first = b.build();
        set_base_offset(&mut first, 10);
        let mut b = BatchBuilder::new();
        b.record(200, None, Some(b"v3"), &[]);
        let mut second = b.build();
        set_base_offset(&mut second, 13);
        let fetched = [first, second.clone(), second[..20].to_vec()].concat();
        let mut seen = Vec::new();
        let next = for_each_record(&fetched, 11, |r| {
            seen.push((r.offset, r.key.map(<[u8]>::to_vec), r.value.map(<[u8]>::to_vec), r.headers.len()));
            Ok(ControlFlow::Continue(()))
        })
        .expect("decoded");
        assert_eq!(next, 14);
        assert_eq!(
            seen,
            [
                (11, Some(b"k1".to_vec()), Some(b"v1".to_vec()), 2),
                (12, None, None, 0),
                (13, None, Some(b"v3".to_vec()), 0)
            ]
        );
        let mut headers = Vec::new();
        for_each_record(&fetched, 11, |r| {
            headers = r.headers.iter().map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec))).collect();
            Ok(ControlFlow::Break(()))
        })
        .expect("decoded");
        assert_eq!(headers, [(b"h".to_vec(), Some(b"1".to_vec())), (b"g".to_vec(), Some(Vec::new()))]);
        let stopped = for_each_record(&fetched, 0, |_| Ok(ControlFlow::Break(()))).expect("decoded");
        assert_eq!(stopped, 11);
    }
}
