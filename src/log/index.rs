//! The mechanics shared by the sparse offset index and time index: fixed-size big-endian
//! entries in a memory-mapped file, appended in key order, binary-searched, truncated and
//! sanity-checked. The two formats are [`super::offset_index`] and [`super::time_index`].

use std::fs::{File, OpenOptions};
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

use super::error::{Error, Result};
use super::mmap::{MappedFile, Writer};

/// One index format: the size of an entry and how to encode and decode it.
pub trait EntryFormat {
    /// Bytes per entry.
    const SIZE: usize;
    /// Decoded entry.
    type Entry: Copy + std::fmt::Debug + PartialEq;
    /// Decodes the entry at the start of `bytes` (at least `SIZE` long).
    fn decode(bytes: &[u8]) -> Self::Entry;
    /// Encodes `entry` into `out` (exactly `SIZE` long).
    fn encode(entry: &Self::Entry, out: &mut [u8]);
}

/// Number of entries in the readable part of an index map.
pub fn entry_count<F: EntryFormat>(map: &MappedFile) -> usize {
    map.readable() / F::SIZE
}

/// The entry at `i` of `bytes`.
pub fn entry_at<F: EntryFormat>(bytes: &[u8], i: usize) -> F::Entry {
    F::decode(&bytes[i * F::SIZE..(i + 1) * F::SIZE])
}

/// Index of the last entry whose key is ≤ `target` under `key`, or `None` when every entry's
/// key is above it (or there are none). Keys must be non-decreasing.
pub fn search<F: EntryFormat, K: Ord>(bytes: &[u8], target: K, key: impl Fn(&F::Entry) -> K) -> Option<usize> {
    let n = bytes.len() / F::SIZE;
    // Binary search for the first entry with key > target.
    let (mut lo, mut hi) = (0usize, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if key(&entry_at::<F>(bytes, mid)) <= target {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo.checked_sub(1)
}

/// Writer side of an index: owned by the active segment only.
#[derive(Debug)]
pub struct IndexWriter<F: EntryFormat> {
    writer: Writer,
    max_entries: usize,
    _format: PhantomData<F>,
}

/// Reserve index space in 64 KiB steps: enough for 8192 offset entries (≈ 32 MiB of log at
/// the default 4 KiB interval) per fallocate call, small enough that a thousand active
/// segments reserve only ~128 MiB.
const INDEX_RESERVE_STEP: u64 = 64 * 1024;

impl<F: EntryFormat> IndexWriter<F> {
    /// Opens (creating if missing) the index at `path` for appending, mapping room for
    /// `max_entries`. The first `entries` entries are taken as valid; the rest of the file,
    /// if any, is zeroed space left by an earlier reservation.
    pub fn open(path: &Path, max_entries: usize, entries: usize) -> Result<IndexWriter<F>> {
        let file = open_rw(path)?;
        let len = file.metadata().map_err(|e| Error::io("stat index", path, e))?.len();
        let capacity = max_entries * F::SIZE;
        let readable = (entries * F::SIZE).min(capacity);
        let mapped = MappedFile::map(file, path, capacity.max(len as usize), readable)
            .map_err(|e| Error::io("map index", path, e))?;
        let mut writer = Writer::new(Arc::new(mapped), len, INDEX_RESERVE_STEP);
        // Bytes past the valid entries may be stale (an index reopened after a crash or being
        // rebuilt): zero them so that neither readers nor a later recovery see them.
        if len as usize > readable {
            writer.set_readable(len as usize);
            writer.truncate(readable).map_err(|e| Error::io("clear stale index entries in", path, e))?;
        }
        Ok(IndexWriter { writer, max_entries, _format: PhantomData })
    }

    pub fn mapped(&self) -> &Arc<MappedFile> {
        self.writer.mapped()
    }

    pub fn entries(&self) -> usize {
        entry_count::<F>(self.mapped())
    }

    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    pub fn is_full(&self) -> bool {
        self.entries() >= self.max_entries
    }

    pub fn last(&self) -> Option<F::Entry> {
        let n = self.entries();
        (n > 0).then(|| entry_at::<F>(self.mapped().readable_bytes(), n - 1))
    }

    /// Makes sure the next entry's bytes are backed by disk blocks.
    ///
    /// # Errors
    /// [`Error::DiskFull`] when they cannot be reserved; nothing changes.
    pub fn reserve_next(&mut self) -> Result<()> {
        let end = ((self.entries() + 1) * F::SIZE) as u64;
        self.writer.ensure_reserved(end).map_err(|e| reserve_error(self.mapped().path(), F::SIZE, e))
    }

    /// Appends one entry and publishes it.
    ///
    /// # Errors
    /// A storage error when the index file cannot be grown (disk full).
    pub fn append(&mut self, entry: F::Entry) -> Result<()> {
        let n = self.entries();
        assert!(n < self.max_entries, "append to a full index {}", self.mapped().path().display());
        let (start, end) = (n * F::SIZE, (n + 1) * F::SIZE);
        self.writer.ensure_reserved(end as u64).map_err(|e| reserve_error(self.mapped().path(), F::SIZE, e))?;
        let mut buf = [0u8; 16];
        F::encode(&entry, &mut buf[..F::SIZE]);
        self.writer.write_at(start, &buf[..F::SIZE]).map_err(|e| Error::io("write index", self.mapped().path(), e))?;
        self.writer.set_readable(end);
        Ok(())
    }

    /// Keeps the first `entries` entries.
    ///
    /// # Errors
    /// Failing to zero the removed entries.
    pub fn truncate_entries(&mut self, entries: usize) -> Result<()> {
        let path = self.mapped().path().to_owned();
        self.writer.truncate(entries * F::SIZE).map_err(|e| Error::io("truncate index", &path, e))
    }

    /// Trims the file to exactly its entries (Kafka's `trimToValidSize`), when sealing.
    pub fn trim(&mut self) -> Result<()> {
        let len = (self.entries() * F::SIZE) as u64;
        self.writer.trim(len).map_err(|e| Error::io("trim index", self.mapped().path(), e))
    }

    pub fn sync(&self) -> Result<()> {
        self.writer.sync().map_err(|e| Error::io("fsync index", self.mapped().path(), e))
    }
}

pub(crate) fn reserve_error(path: &Path, bytes: usize, source: std::io::Error) -> Error {
    if source.raw_os_error() == Some(libc::ENOSPC) || source.raw_os_error() == Some(libc::EDQUOT) {
        Error::DiskFull { path: path.to_owned(), bytes: bytes as u64, source }
    } else {
        Error::io("reserve space in", path, source)
    }
}

pub(crate) fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io("open", path, e))
}

/// Maps an index read-only for a sealed segment: all of the file's whole entries are readable.
pub fn open_sealed<F: EntryFormat>(path: &Path) -> Result<Arc<MappedFile>> {
    let file = open_rw(path)?;
    let len = file.metadata().map_err(|e| Error::io("stat index", path, e))?.len() as usize;
    let readable = len / F::SIZE * F::SIZE;
    let mapped = MappedFile::map(file, path, len, readable).map_err(|e| Error::io("map index", path, e))?;
    Ok(Arc::new(mapped))
}
