//! Memory-mapped files and the raw system calls weir makes (`pwritev`, `posix_fallocate`,
//! `madvise`, `flock`, `statvfs`, SIGBUS handling): the only module with `unsafe`.
//!
//! A [`MappedFile`] maps a file read-only (including a region beyond its current end, which
//! becomes readable as the file grows) once, for its whole life, and tracks how many bytes
//! from the start are *readable*: published by the one writer with `Release`, read by any
//! number of readers with `Acquire`. Readers borrow only readable bytes; the writer writes
//! only at or above the readable length. That split is what lets readers run without ever
//! waiting for an append.
//!
//! Writes: an append that fits in the rest of the page the previous append ended in is
//! copied through a second, writable shared map of the same file; any other goes through
//! `pwritev`. Both land in the same page cache the read map shows, and readers see the bytes
//! as soon as they are published (Linux keeps maps and the page cache coherent). In the
//! 10,000 msgs/s latency run (~170-byte batches) that turned ~7,050 `pwritev` and ~720 index
//! `pwrite` calls a second, each a system call plus ext4's buffered-write path (page lookup,
//! block mapping, inode timestamps), into ~380 `pwritev` and ~380 `madvise` (one each per
//! 4 KiB page), and the broker's CPU per request fell by ~6% in interleaved runs.
//!
//! Stores never fault on a page the kernel must find memory or blocks for. After a `pwritev`
//! that leaves room in its last page for another append of its size, the writer maps that page
//! writable with `MADV_POPULATE_WRITE` (the page is in the page cache, just written, so this is
//! cheap, and failure comes back as an error, not a signal); only later appends that fit in
//! that page are stored. Pages are never readied ahead of the data. Tried: zero-filling and
//! populating 256 KiB ahead saved no more CPU in the latency run, but every fsync then wrote
//! the dirty zero pages too (the fsync-per-append criterion bench went from 56 to 102 µs per
//! 64 KiB append); populating unwritten pages without the zero fill took ext4's readahead
//! and block-mapping paths per page (4× the broker CPU per million 1 KiB messages). A flush write-protects the pages
//! it cleans, so the page readied before a flush is not stored to after it, and a write that
//! follows a flush readies nothing: a log flushed after every append (`flush.messages=1`)
//! writes with `pwritev` only, as before. Kernels before 5.14 lack `MADV_POPULATE_WRITE`: the
//! writer then uses `pwritev` for every append. A mapping of pages populated writable with
//! `madvise` does not raise any memory use beyond the page cache the data lives in anyway.
//!
//! A store can still fault: the kernel's own writeback may clean the readied page and
//! write-protect it, and the next store asks the filesystem again (normally a no-op: the
//! blocks are allocated). If the filesystem refuses (shut down after an I/O error), the kernel
//! raises SIGBUS. The writer turns that into an I/O error, not a dead process: a store runs
//! with its target range noted in a thread-local, and weir's SIGBUS handler, finding the
//! faulting address inside it, maps an anonymous page over that page of the writable map so
//! the copy completes harmlessly, and flags the store as failed. The writer then drops its
//! writable map and returns the error, and the caller takes the log offline as for a failed
//! `pwrite`. Faults anywhere else go to the handler installed before weir's (Rust's
//! stack-overflow handler) or the default action.
//!
//! Durability is the same on both paths: the bytes are in the page cache when the write
//! returns (they survive `kill -9`), and `fdatasync` writes back pages dirtied through a
//! shared map as well as by `pwrite` (they survive power loss once flushed).
//!
//! SIGBUS on the read side: touching a mapped page beyond the file's end raises SIGBUS. It is
//! ruled out by construction: the writer calls [`reserve`] (`posix_fallocate`, which really
//! allocates blocks and extends the file) before writing past what was reserved, so readable
//! bytes are always inside the file; and no file is ever shrunk below bytes a reader may still
//! hold (sealing trims only the unused tail; truncation zero-fills instead of shrinking).
//! Because the blocks are allocated up front, a full disk is reported by the reservation,
//! never later by writeback or fsync.

#![allow(unsafe_code)] // the one module where it is allowed: see the module docs

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use memmap2::{Advice, MmapOptions, MmapRaw};

/// Cleared the first time the kernel rejects `MADV_POPULATE_WRITE` (before 5.14): from then
/// on writers are created without a writable map.
static STORES_SUPPORTED: AtomicBool = AtomicBool::new(true);

/// A file mapped shared and read-only, with a published readable prefix.
#[derive(Debug)]
pub struct MappedFile {
    map: MmapRaw,
    /// The mapped file, kept so any holder can fdatasync it (flushes need no writer lock).
    file: File,
    /// Bytes from the start that readers may borrow. Only the owner of the writer side
    /// (an active segment or an index writer) changes it.
    readable: AtomicUsize,
    /// Flushes started, so the writer can tell that pages it readied for stores may have been
    /// cleaned (and write-protected) since.
    syncs: AtomicU64,
    path: PathBuf,
}

impl MappedFile {
    /// Maps `capacity` bytes of `file` (which may extend past the file's current length: those
    /// pages must be reserved before they are written or read) with `readable` bytes published.
    pub fn map(file: File, path: &Path, capacity: usize, readable: usize) -> io::Result<MappedFile> {
        assert!(readable <= capacity, "readable {readable} exceeds capacity {capacity}");
        let map = MmapOptions::new().len(capacity).map_raw_read_only(&file)?;
        Ok(MappedFile {
            map,
            file,
            readable: AtomicUsize::new(readable),
            syncs: AtomicU64::new(0),
            path: path.to_owned(),
        })
    }

    /// `fdatasync`: makes the written bytes and the file length durable. Callable by anyone
    /// holding the map; the writer need not be involved.
    pub fn sync_data(&self) -> io::Result<()> {
        self.syncs.fetch_add(1, Ordering::AcqRel);
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
    /// A writable shared map of the same file, for small appends; `None` when stores are off
    /// (unsupported kernel, or a populate or store failed): every write then uses `pwritev`.
    store: Option<MmapRaw>,
    /// The page span populated writable for stores, valid while the file's flush count is
    /// still `ready_syncs`.
    ready: std::ops::Range<u64>,
    ready_syncs: u64,
    /// The file's flush count at the previous write.
    last_write_syncs: u64,
}

impl Writer {
    /// Wraps a mapped file. `file_len` is its current length (all of it counts as reserved).
    pub fn new(mapped: Arc<MappedFile>, file_len: u64, reserve_step: u64) -> Writer {
        let store = if STORES_SUPPORTED.load(Ordering::Relaxed) && sigbus::install() {
            match MmapOptions::new().len(mapped.capacity()).map_raw(&mapped.file) {
                Ok(map) => Some(map),
                Err(e) => {
                    tracing::warn!(file = %mapped.path.display(), error = %e, "cannot map the file writable; appends use pwrite");
                    None
                }
            }
        } else {
            None
        };
        let syncs = mapped.syncs.load(Ordering::Acquire);
        Writer {
            mapped,
            reserved: file_len,
            reserve_step,
            store,
            ready: 0..0,
            ready_syncs: syncs,
            last_write_syncs: syncs,
        }
    }

    /// Whether appends that fit a readied page are stored through the writable map (false:
    /// every write uses `pwritev`).
    #[cfg(test)]
    fn stores_through_map(&self) -> bool {
        self.store.is_some()
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

    /// Writes `data` at `pos`. The range must be reserved and at or above the readable length.
    ///
    /// # Errors
    /// The write's failure (EIO and the like); the caller takes the log offline.
    ///
    /// # Panics
    /// If the range is unreserved or overlaps readable bytes: both are bugs in the caller
    /// (readers could see the bytes change, or the write could need space it has not got).
    pub fn write_at(&mut self, pos: usize, data: &[u8]) -> io::Result<()> {
        self.write_parts_at(pos, &[data])
    }

    /// Writes the concatenation of `parts` at `pos`, so a batch can be stored as a patched
    /// header plus the untouched body without first copying them together: through the
    /// writable map when the range lies in the page readied by the previous write, else with
    /// one `pwritev` (retrying partial writes), after which the last page is readied when
    /// another write of this size fits in it. Same contract as [`Self::write_at`].
    ///
    /// # Errors
    /// The `pwritev` failure, or an I/O error for a store the filesystem refused (SIGBUS,
    /// caught).
    pub fn write_parts_at(&mut self, pos: usize, parts: &[&[u8]]) -> io::Result<()> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let end = pos.checked_add(total).expect("write range overflows usize");
        assert!(end as u64 <= self.reserved, "write to {pos}..{end} beyond the reserved {}", self.reserved);
        assert!(pos >= self.mapped.readable(), "write at {pos} below the readable length");
        if total == 0 {
            return Ok(());
        }
        let syncs = self.mapped.syncs.load(Ordering::Acquire);
        let (start, stop) = (pos as u64, end as u64);
        if self.store.is_some() && syncs == self.ready_syncs && self.ready.start <= start && stop <= self.ready.end {
            self.last_write_syncs = syncs;
            return self.store(pos, parts);
        }
        pwritev_all(self.file(), pos, parts)?;
        // Ready the last page for the next appends if one more of this size fits in it, unless
        // a flush came since the previous write (see the module docs).
        if self.store.is_some() && syncs == self.last_write_syncs {
            let page = sigbus::page_size() as u64;
            let used = stop % page;
            if used != 0 && page - used >= total as u64 {
                self.ready_page(stop - used, (stop - used + page).min(self.reserved), syncs);
            }
        }
        self.last_write_syncs = syncs;
        Ok(())
    }

    /// Populates `start..stop` (one page, just written, so in the page cache) writable.
    fn ready_page(&mut self, start: u64, stop: u64, syncs: u64) {
        let Some(store) = &self.store else { return };
        match store.advise_range(Advice::PopulateWrite, start as usize, (stop - start) as usize) {
            Ok(()) => {
                self.ready = start..stop;
                self.ready_syncs = syncs;
            }
            Err(e) => {
                if e.raw_os_error() == Some(libc::EINVAL) {
                    STORES_SUPPORTED.store(false, Ordering::Relaxed);
                    tracing::info!("the kernel lacks MADV_POPULATE_WRITE (Linux 5.14+): appends use pwrite");
                } else {
                    tracing::warn!(file = %self.mapped.path.display(), error = %e, "cannot populate the writable map; appends to this file use pwrite");
                }
                self.store = None;
            }
        }
    }

    /// Copies `parts` to `pos..` through the writable map (inside the readied page).
    fn store(&mut self, pos: usize, parts: &[&[u8]]) -> io::Result<()> {
        let Some(store) = &self.store else { unreachable!("store without a writable map") };
        let total: usize = parts.iter().map(|p| p.len()).sum();
        // SAFETY: `pos..pos + total` lies inside the map (≤ reserved ≤ capacity, checked by
        // the caller) and inside the readied page, which was written (so is inside the file)
        // and populated writable, so the copy touches only mapped memory. If the filesystem
        // refuses the page anyway, `sigbus::guarded` turns the fault into `false`. The
        // destination is only ever written by this writer, and the bytes are at or above the
        // readable length, so no reader borrows them.
        let stored = unsafe {
            let dst = store.as_mut_ptr().add(pos);
            sigbus::guarded(dst as usize, total, || {
                let mut at = dst;
                for part in parts {
                    std::ptr::copy_nonoverlapping(part.as_ptr(), at, part.len());
                    at = at.add(part.len());
                }
            })
        };
        if stored {
            return Ok(());
        }
        self.store = None;
        Err(io::Error::other("the filesystem refused a page of the writable map (SIGBUS during the store)"))
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
        self.ready = 0..0;
        Ok(())
    }

    /// `fdatasync` of the file.
    pub fn sync(&self) -> io::Result<()> {
        self.mapped.sync_data()
    }
}

/// Writes the concatenation of `parts` at `pos` with `pwritev`, retrying partial writes.
fn pwritev_all(file: &File, pos: usize, parts: &[&[u8]]) -> io::Result<()> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
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
        let n = unsafe { libc::pwritev(file.as_raw_fd(), iov.as_ptr(), iov.len() as libc::c_int, offset) };
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

/// Turns a SIGBUS raised by a store through a writable map into a flag the writer checks.
///
/// A store notes its destination range in a thread-local before copying; the handler, given
/// a faulting address inside the range of the thread it interrupted, maps an anonymous page
/// over that page (so the interrupted copy finishes into memory nobody reads), sets the
/// thread's flag and returns. Any other SIGBUS goes to the handler installed before weir's
/// (Rust's stack-overflow handler), or gets the default action back and re-faults.
mod sigbus {
    use std::cell::Cell;
    use std::sync::atomic::{compiler_fence, AtomicUsize, Ordering};
    use std::sync::OnceLock;

    thread_local! {
        /// `(start, end)` of the store in progress on this thread; `(0, 0)` when none.
        static RANGE: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
        /// Set by the handler when it caught a fault inside `RANGE`.
        static FAULTED: Cell<bool> = const { Cell::new(false) };
    }

    /// The SIGBUS action before weir's, to pass other faults on to.
    static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();
    static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);
    /// Whether installing succeeded (decided once).
    static INSTALLED: OnceLock<bool> = OnceLock::new();

    /// The page size (valid once [`install`] returned true).
    pub fn page_size() -> usize {
        PAGE_SIZE.load(Ordering::Relaxed)
    }

    /// Installs the handler (once per process); false if `sigaction` failed, in which case
    /// writers must not store through maps.
    pub fn install() -> bool {
        *INSTALLED.get_or_init(|| {
            // SAFETY: sysconf, sigemptyset and sigaction are called with valid pointers to
            // local, zero-initialized C structs; `on_sigbus` has the SA_SIGINFO signature.
            unsafe {
                let page = libc::sysconf(libc::_SC_PAGESIZE);
                if page <= 0 {
                    return false;
                }
                PAGE_SIZE.store(page as usize, Ordering::Relaxed);
                let mut previous: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) != 0 {
                    return false;
                }
                let _ = PREVIOUS.set(previous);
                let mut action: libc::sigaction = std::mem::zeroed();
                let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = on_sigbus;
                action.sa_sigaction = handler as libc::sighandler_t;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) == 0
            }
        })
    }

    /// Runs `copy`, which writes only into `start..start + len`; false if a SIGBUS hit that
    /// range meanwhile (some of the bytes then went to an anonymous page, not the file).
    pub fn guarded(start: usize, len: usize, copy: impl FnOnce()) -> bool {
        RANGE.with(|r| r.set((start, start + len)));
        FAULTED.with(|f| f.set(false));
        // The handler reads these on this thread: keep the compiler from moving the copy
        // across them (what `compiler_fence` is for).
        compiler_fence(Ordering::SeqCst);
        copy();
        compiler_fence(Ordering::SeqCst);
        RANGE.with(|r| r.set((0, 0)));
        !FAULTED.with(Cell::get)
    }

    extern "C" fn on_sigbus(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
        // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler. Only
        // async-signal-safe work follows: reads of const-initialized thread-locals without
        // destructors, mmap, sigaction, and calling the previous handler as it was installed.
        unsafe {
            let address = (*info).si_addr() as usize;
            let (start, end) = RANGE.try_with(Cell::get).unwrap_or((0, 0));
            if (start..end).contains(&address) {
                let page = address & !(PAGE_SIZE.load(Ordering::Relaxed) - 1);
                let replaced = libc::mmap(
                    page as *mut libc::c_void,
                    PAGE_SIZE.load(Ordering::Relaxed),
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                );
                if replaced != libc::MAP_FAILED {
                    let _ = FAULTED.try_with(|f| f.set(true));
                    return;
                }
            }
            match PREVIOUS.get() {
                Some(previous) if previous.sa_sigaction != libc::SIG_DFL && previous.sa_sigaction != libc::SIG_IGN => {
                    if previous.sa_flags & libc::SA_SIGINFO != 0 {
                        let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                            std::mem::transmute(previous.sa_sigaction);
                        handler(signal, info, context);
                    } else {
                        let handler: extern "C" fn(libc::c_int) = std::mem::transmute(previous.sa_sigaction);
                        handler(signal);
                    }
                }
                _ => {
                    // Back to the default action: returning re-runs the faulting access,
                    // which now ends the process as SIGBUS always did.
                    let mut default: libc::sigaction = std::mem::zeroed();
                    default.sa_sigaction = libc::SIG_DFL;
                    libc::sigaction(libc::SIGBUS, &default, std::ptr::null_mut());
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(dir: &Path, capacity: usize) -> (PathBuf, Writer) {
        let path = dir.join("f.log");
        let file =
            std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).expect("create");
        let mapped = MappedFile::map(file, &path, capacity, 0).expect("map");
        (path, Writer::new(Arc::new(mapped), 0, 64 << 10))
    }

    fn append(w: &mut Writer, parts: &[&[u8]]) -> io::Result<()> {
        let pos = w.mapped().readable();
        let end = pos + parts.iter().map(|p| p.len()).sum::<usize>();
        w.ensure_reserved(end as u64)?;
        w.write_parts_at(pos, parts)?;
        w.set_readable(end);
        Ok(())
    }

    #[test]
    fn small_and_large_writes_land_in_the_file_and_the_read_map() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, mut w) = writer(dir.path(), 4 << 20);
        let mut expected = Vec::new();
        let mut stored = 0;
        // Small ones (stored once a page is readied), one larger than a page (pwritev), then
        // small ones again, across many pages.
        let sizes = [4usize, 4, 100, 9000, 200].into_iter().chain((0..4000).map(|i| 150 + i % 300));
        for (i, size) in sizes.enumerate() {
            let record = vec![i as u8; size];
            let pos = w.mapped().readable() as u64;
            if w.stores_through_map() && w.ready.contains(&pos) && pos + size as u64 <= w.ready.end {
                stored += 1;
            }
            append(&mut w, &[&record[..1], &record[1..]]).expect("append");
            expected.extend_from_slice(&record);
        }
        assert_eq!(w.mapped().readable_bytes(), &expected[..]);
        let on_disk = std::fs::read(&path).expect("read");
        assert_eq!(&on_disk[..expected.len()], &expected[..], "pread sees what the map shows");
        assert!(on_disk[expected.len()..].iter().all(|&b| b == 0), "the reserved tail reads as zeros");
        if w.stores_through_map() {
            assert!(stored > 3000, "most small appends were stores: {stored}");
        }
    }

    #[test]
    fn a_file_flushed_after_every_write_is_written_with_pwritev_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, mut w) = writer(dir.path(), 1 << 20);
        let mut expected = Vec::new();
        for i in 0..50u8 {
            let pos = w.mapped().readable() as u64;
            let readied = w.ready.contains(&pos) && w.ready_syncs == w.mapped().syncs.load(Ordering::Acquire);
            assert!(i == 1 || !readied, "write {i} would be a store right after a flush");
            append(&mut w, &[&[i; 100]]).expect("append");
            expected.extend_from_slice(&[i; 100]);
            if i > 0 {
                w.sync().expect("fdatasync");
            }
        }
        assert_eq!(&std::fs::read(&path).expect("read")[..expected.len()], &expected[..]);
    }

    #[test]
    fn a_store_the_filesystem_refuses_is_an_error_and_the_process_lives_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, mut w) = writer(dir.path(), 1 << 20);
        append(&mut w, &[b"first"]).expect("append");
        if !w.stores_through_map() {
            eprintln!("skipped: this kernel lacks MADV_POPULATE_WRITE, so nothing is stored through a map");
            return;
        }
        // Shrinking the file behind the writer's back unmaps its ready pages: the next store
        // faults past the end of the file, which is SIGBUS.
        std::fs::OpenOptions::new().write(true).open(&path).expect("open").set_len(0).expect("shrink");
        let pos = w.mapped().readable();
        let err = w.write_parts_at(pos, &[b"second"]).expect_err("the store faulted");
        assert!(err.to_string().contains("SIGBUS"), "{err}");
        assert!(!w.stores_through_map(), "the writer gave up its writable map");
        // Later writes use pwrite, and the process is alive to make them.
        w.write_parts_at(pos, &[b"third"]).expect("pwrite after the fault");
        let on_disk = std::fs::read(&path).expect("read");
        assert_eq!(&on_disk[pos..pos + 5], b"third");
    }
}
