//! Compression of a batch's records section, for the one place the broker must look inside
//! compressed batches: the compaction cleaner, which decompresses, filters and re-compresses
//! with the same codec. The codecs are kafka-protocol's (gzip, xerial-framed snappy as Java
//! writes it and raw snappy as librdkafka does, LZ4 frames, zstd), so the bytes are what
//! Kafka's clients read.

use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Decompressor, Gzip, Lz4, Snappy, Zstd};

use super::batch::Compression;

/// Decompresses `data` (a records section) written with `codec`.
///
/// # Errors
/// The codec's error, as text (the bytes are not what the header says).
pub fn decompress(codec: Compression, data: &[u8]) -> Result<Bytes, String> {
    let mut input = Bytes::copy_from_slice(data);
    let take = |b: &mut Bytes| Ok(std::mem::take(b));
    let out = match codec {
        Compression::None => return Ok(input),
        Compression::Gzip => Gzip::decompress(&mut input, take),
        Compression::Snappy => Snappy::decompress(&mut input, take),
        Compression::Lz4 => Lz4::decompress(&mut input, take),
        Compression::Zstd => Zstd::decompress(&mut input, take),
    };
    out.map_err(|e| format!("{codec:?} decompression failed: {e:#}"))
}

/// Compresses `data` with `codec`.
///
/// # Errors
/// The codec's error, as text.
pub fn compress(codec: Compression, data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = BytesMut::with_capacity(data.len() / 2 + 64);
    let fill = |b: &mut BytesMut| {
        b.extend_from_slice(data);
        Ok(())
    };
    let done = match codec {
        Compression::None => {
            out.extend_from_slice(data);
            Ok(())
        }
        Compression::Gzip => Gzip::compress(&mut out, fill),
        Compression::Snappy => Snappy::compress(&mut out, fill),
        Compression::Lz4 => Lz4::compress(&mut out, fill),
        Compression::Zstd => Zstd::compress(&mut out, fill),
    };
    done.map_err(|e| format!("{codec:?} compression failed: {e:#}"))?;
    Ok(out.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| (i % 251).to_be_bytes()).collect();
        for codec in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let packed = compress(codec, &data).expect("compress");
            if codec != Compression::None {
                assert!(packed.len() < data.len(), "{codec:?} compresses");
            }
            assert_eq!(&decompress(codec, &packed).expect("decompress")[..], &data[..], "{codec:?}");
        }
    }

    #[test]
    fn garbage_is_an_error() {
        for codec in [Compression::Gzip, Compression::Lz4, Compression::Zstd] {
            assert!(decompress(codec, b"definitely not compressed").is_err(), "{codec:?}");
        }
    }
}
