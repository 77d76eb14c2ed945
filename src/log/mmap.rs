//! Memory-mapped files and the raw system calls weir makes (`pwritev`, `posix_fallocate`,
//! `flock`, `statvfs`): the only module with `unsafe`.
//!
//! A [`MappedFile`] maps a file read-only (including a region beyond its current end, which
//! becomes readable as the file grows) once, for its whole life, and tracks how many bytes
//! from the start are *readable*: published by the one writer with `Release`, read by any
//! number of readers with `Acquire`. Readers borrow only readable bytes; the writer writes
//! only at or above the readable length. That split is what lets readers run without ever
//! waiting for an append.
//!
//! Writes go through `pwrite` into the same page cache the map shows, not through the map:
//! measured here on ext4, `pwrite` into preallocated blocks runs at ~8 GB/s while storing
//! through a shared map costs a page fault per 4 KiB page (~0.8 GB/s for 64 KiB appends).
//! Readers see the bytes through the map as soon as they are published (Linux keeps the map
//! and the page cache coherent).
//!
//! SIGBUS: touching a mapped page beyond the file's end raises SIGBUS. It is ruled out by
//! construction: the writer calls [`reserve`] (`posix_fallocate`, which really allocates
//! blocks and extends the file) before writing past what was reserved, so readable bytes are
//! always inside the file; and no file is ever shrunk below bytes a reader may still hold
//! (sealing trims only the unused tail; truncation zero-fills instead of shrinking). Because
//! the blocks are allocated up front, a full disk is reported by the reservation, never later
//! by writeback or fsync.

#![allow(unsafe_code)] // the one module where it is allowed: see the module docs

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use memmap2::{MmapOptions, MmapRaw};

/// A file mapped shared and read-only, with a published readable prefix.
#[derive(Debug)]
pub struct MappedFile {
    map: MmapRaw,
    /// The mapped file, kept so any holder can fdatasync it (flushes need no writer lock).
    file: File,
    /// Bytes from the start that readers may borrow. Only the owner of the writer side
    /// (an active segment or an index writer) changes it.
    readable: AtomicUsize,
    path: PathBuf,
}

impl MappedFile {
    /// Maps `capacity` bytes of `file` (which may extend past the file's current length: those
    /// pages must be reserved before they are written or read) with `readable` bytes published.
    pub fn map(file: File, path: &Path, capacity: usize, readable: usize) -> io::Result<MappedFile> {
        assert!(readable <= capacity, "readable {readable} exceeds capacity {capacity}");
        let map = MmapOptions::new().len(capacity).map_raw_read_only(&file)?;
        Ok(MappedFile { map, file, readable: AtomicUsize::new(readable), path: path.to_owned() })
    }

    /// `fdatasync`: makes the written bytes and the file length durable. Callable by anyone
    /// holding the map; the writer need not be involved.
    pub fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn capacity(&self) -> usize {
        self.map.len()
    }

    /// Number of bytes readers may borrow.
    pub fn readable(&self) -> usize {
        self.readable.load(Ordering::Acquire)
    }

    /// All readable bytes.
    pub fn readable_bytes(&self) -> &[u8] {
        let len = self.readable();
        // SAFETY: `len` ≤ capacity and ≤ the file's length (the writer reserves, extending
        // the file, before publishing), so every page is mapped and backed: no SIGBUS. The
        // mapping lives as long as `self`. The bytes below `readable` are not written while
        // they are readable: the writer only writes at or above `readable` (checked in
        // `write_at`). The one exception is documented on `Writer::truncate`: bytes above a
        // truncation point may change under a reader that borrowed them before; readers treat
        // stored bytes as untrusted (every header is bounds-checked), so that can only yield
        // stale or zeroed data, never an out-of-bounds access.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr(), len) }
    }

    /// A zero-copy `Bytes` of `start..end` that keeps the mapping alive; `None` when the range
    /// is not entirely readable.
    pub fn slice(self: &Arc<Self>, start: usize, end: usize) -> Option<Bytes> {
        if start > end || end > self.readable() {
            return None;
        }
        Some(Bytes::from_owner(MapSlice { file: Arc::clone(self), start, end }))
    }
}

/// Owner of a mapped range inside a `Bytes`.
struct MapSlice {
    file: Arc<MappedFile>,
    start: usize,
    end: usize,
}

impl AsRef<[u8]> for MapSlice {
    fn as_ref(&self) -> &[u8] {
        &self.file.readable_bytes()[self.start..self.end]
    }
}

/// The single writer of a [`MappedFile`]. Not `Clone`: whoever owns it is the only writer,
/// which is what makes "only the active segment can append" a property of the types.
#[derive(Debug)]
pub struct Writer {
    mapped: Arc<MappedFile>,
    /// Bytes of the file backed by allocated blocks (`posix_fallocate`d or already written).
    reserved: u64,
    /// How much to reserve at a time beyond what an append needs (amortizes fallocate calls).
    reserve_step: u64,
}

impl Writer {
    /// Wraps a mapped file. `file_len` is its current length (all of it counts as reserved).
    pub fn new(mapped: Arc<MappedFile>, file_len: u64, reserve_step: u64) -> Writer {
        Writer { mapped, reserved: file_len, reserve_step }
    }

    pub fn mapped(&self) -> &Arc<MappedFile> {
        &self.mapped
    }

    fn file(&self) -> &File {
        &self.mapped.file
    }

    pub fn reserved(&self) -> u64 {
        self.reserved
    }

    /// Ensures `0..end` is backed by allocated disk blocks, reserving in steps.
    ///
    /// # Errors
    /// `ENOSPC` (and any other `posix_fallocate` failure) with nothing written and no state
    /// changed; `InvalidInput` when `end` exceeds the mapping's capacity.
    pub fn ensure_reserved(&mut self, end: u64) -> io::Result<()> {
        if end <= self.reserved {
            return Ok(());
        }
        let capacity = self.mapped.capacity() as u64;
        if end > capacity {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{end} bytes exceed the mapped capacity of {capacity}"),
            ));
        }
        let target = end.max(self.reserved + self.reserve_step).min(capacity);
        reserve(self.file(), self.reserved, target - self.reserved)?;
        self.reserved = target;
        Ok(())
    }

    /// Writes `data` at `pos` (`pwrite`). The range must be reserved and at or above the
    /// readable length.
    ///
    /// # Errors
    /// The `pwrite` failure (EIO and the like); the caller takes the log offline.
    ///
    /// # Panics
    /// If the range is unreserved or overlaps readable bytes: both are bugs in the caller
    /// (readers could see the bytes change, or the write could need space it has not got).
    pub fn write_at(&mut self, pos: usize, data: &[u8]) -> io::Result<()> {
        let end = pos.checked_add(data.len()).expect("write range overflows usize");
        assert!(end as u64 <= self.reserved, "write to {pos}..{end} beyond the reserved {}", self.reserved);
        assert!(pos >= self.mapped.readable(), "write at {pos} below the readable length");
        self.file().write_all_at(data, pos as u64)
    }

    /// Writes the concatenation of `parts` at `pos` with one `pwritev` (retrying partial
    /// writes), so a batch can be stored as a patched header plus the untouched body without
    /// first copying them together. Same contract as [`Self::write_at`].
    ///
    /// # Errors
    /// The `pwritev` failure.
    pub fn write_parts_at(&mut self, pos: usize, parts: &[&[u8]]) -> io::Result<()> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let end = pos.checked_add(total).expect("write range overflows usize");
        assert!(end as u64 <= self.reserved, "write to {pos}..{end} beyond the reserved {}", self.reserved);
        assert!(pos >= self.mapped.readable(), "write at {pos} below the readable length");
        let mut done = 0usize;
        while done < total {
            // iovecs for what is left, skipping bytes already written.
            let mut skip = done;
            let iov: Vec<libc::iovec> = parts
                .iter()
                .filter_map(|p| {
                    if skip >= p.len() {
                        skip -= p.len();
                        return None;
                    }
                    let rest = &p[skip..];
                    skip = 0;
                    Some(libc::iovec { iov_base: rest.as_ptr() as *mut libc::c_void, iov_len: rest.len() })
                })
                .collect();
            let offset = libc::off_t::try_from(pos + done)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset too large"))?;
            // SAFETY: every iovec points into a live borrowed slice (`parts`) for its length;
            // pwritev only reads them. The fd is open for writing.
            let n = unsafe { libc::pwritev(self.file().as_raw_fd(), iov.as_ptr(), iov.len() as libc::c_int, offset) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::WriteZero, "pwritev wrote nothing"));
            }
            done += n as usize;
        }
        Ok(())
    }

    /// Publishes `0..len` to readers.
    pub fn set_readable(&mut self, len: usize) {
        assert!(len as u64 <= self.reserved, "publishing {len} bytes beyond the reserved {}", self.reserved);
        assert!(len <= self.mapped.capacity(), "publishing {len} bytes beyond the map");
        self.mapped.readable.store(len, Ordering::Release);
    }

    /// Lowers the readable length to `len` and zero-fills `len..old`, so that neither readers
    /// nor crash recovery can see the removed bytes. The file keeps its length (shrinking a
    /// mapped file could SIGBUS a reader still holding a slice of the removed range).
    ///
    /// A reader that borrowed bytes above `len` *before* this call may observe them change
    /// to zeros or to later appends; only replicas truncating unreplicated data (above the
    /// high watermark, which consumers never read) and recovery do this.
    ///
    /// # Errors
    /// The zero-fill's `pwrite` failure.
    pub fn truncate(&mut self, len: usize) -> io::Result<()> {
        let old = self.mapped.readable();
        if len >= old {
            return Ok(());
        }
        self.mapped.readable.store(len, Ordering::Release);
        let zeros = vec![0u8; (old - len).min(1 << 20)];
        let mut pos = len;
        while pos < old {
            let n = zeros.len().min(old - pos);
            self.file().write_all_at(&zeros[..n], pos as u64)?;
            pos += n;
        }
        Ok(())
    }

    /// Shrinks the file to `len` bytes (dropping unused reserved blocks) once no more writes
    /// will happen. `len` must be at least the readable length.
    pub fn trim(&mut self, len: u64) -> io::Result<()> {
        assert!(len >= self.mapped.readable() as u64, "trim below readable bytes");
        self.file().set_len(len)?;
        self.reserved = len;
        Ok(())
    }

    /// `fdatasync` of the file.
    pub fn sync(&self) -> io::Result<()> {
        self.mapped.sync_data()
    }
}

/// Allocates real disk blocks for `offset..offset+len` of `file`, extending its length.
///
/// # Errors
/// `ENOSPC` when the disk is full (the reason for doing this before writing through a map).
pub fn reserve(file: &File, offset: u64, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    let (off, len) = match (i64::try_from(offset), i64::try_from(len)) {
        (Ok(o), Ok(l)) => (o, l),
        _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, "reservation too large")),
    };
    // SAFETY: plain FFI call on an open file descriptor; no memory is passed.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), off, len) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// Maps a whole file read-only, for recovery at open time (`None` for an empty file).
///
/// The caller must own the data directory (its lock is held) and must not change the file
/// while the map lives: a file shrunk under a map makes reads past the new end SIGBUS.
pub fn map_for_recovery(file: &File) -> io::Result<Option<memmap2::Mmap>> {
    if file.metadata()?.len() == 0 {
        return Ok(None);
    }
    // SAFETY: per the contract above, nothing modifies the file while it is mapped: open and
    // recovery run before any writer exists, under the data directory's lock.
    unsafe { memmap2::Mmap::map(file) }.map(Some)
}

/// Takes an exclusive, non-blocking `flock` on `file`, held until the file is closed.
///
/// # Errors
/// `EWOULDBLOCK` when another process holds it.
pub fn try_lock_exclusive(file: &File) -> io::Result<()> {
    // SAFETY: plain FFI call on an open file descriptor; no memory is passed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// (bytes available to unprivileged users, total bytes) of the filesystem holding `path`:
/// what `/metrics` reports so a "disk nearly full" alert fires before appends fail.
///
/// # Errors
/// `statvfs` failed (the path is gone, or holds a NUL byte).
pub fn disk_space(path: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is NUL-terminated and outlives the call; `stat` points to writable
    // memory of the right type, read only after statvfs reports success (it then wrote it).
    let stat = unsafe {
        if libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        stat.assume_init()
    };
    // The statvfs fields are u32 or u64 depending on the target.
    #[allow(clippy::useless_conversion)]
    let (block, available, total) = (u64::from(stat.f_frsize), u64::from(stat.f_bavail), u64::from(stat.f_blocks));
    Ok((available * block, total * block))
}
