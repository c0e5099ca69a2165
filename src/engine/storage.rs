//! Where the engine's bytes come from: the file system ([`Disk`]), or, in the engine's own
//! tests, a storage that injects delays, short reads and errors.
//!
//! Readers (`run::reader`) are the only threads that call it. Everything they ask of a file
//! goes through these two traits, so that the property test of the engine can run every
//! reader and worker setting against a storage whose faults it controls, and check the
//! order, the digests and the failures without a file system.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use rustix::fs::{Advice, OFlags, Stat};

use crate::engine::source::{DirHandle, Source};
use crate::signals;

/// Opens what the engine reads.
pub(crate) trait Storage: Send + Sync + 'static {
    /// Opens `source` (never standard input) for reading.
    fn open(&self, source: &Source) -> io::Result<Box<dyn Handle>>;
    /// The status of what `source` names, following symlinks as an open would, without
    /// opening it (`hash --update`'s test of an unchanged file, the scout's look ahead).
    fn stat(&self, source: &Source) -> io::Result<Stat>;
}

/// One open file.
pub(crate) trait Handle: Send + Sync {
    /// Its status now.
    fn stat(&self) -> io::Result<Stat>;
    /// Reads at `offset`, waiting on storage if need be.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Reads at `offset` only what can be had without waiting on storage: `WouldBlock` for
    /// a read that would wait (a cache miss), `Unsupported` where the storage cannot tell.
    fn read_at_nowait(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Reads on from where the last read ended (a FIFO or a device, which cannot seek).
    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Tells the storage that `len` bytes at `offset` will be read soon.
    fn will_need(&self, offset: u64, len: u64);
    /// The file itself, if it is one of a local file system that may be mapped (`mapped`).
    fn mappable(&self) -> Option<&File>;
    /// Which pages of `len` bytes at `offset` (a multiple of the page size) are in the page
    /// cache now: one byte per page, bit 0 set for a cached one; `None` where that cannot
    /// be asked (`--nocache`).
    fn cached_pages(&self, _offset: u64, _len: u64) -> Option<Vec<u8>> {
        None
    }
    /// Tells the storage that `len` bytes at `offset` are not needed again: their clean
    /// pages leave the page cache (`--nocache`).
    fn wont_need(&self, _offset: u64, _len: u64) {}
    /// Called by the worker before it touches `len` bytes at `offset` of the mapped file,
    /// and [`Handle::done_with`] after it hashed them (`--nocache` learns and drops there).
    fn will_touch(&self, _offset: u64, _len: u64) {}
    /// See [`Handle::will_touch`].
    fn done_with(&self, _offset: u64, _len: u64) {}
    /// Tells the storage not to read ahead of what is asked (`POSIX_FADV_RANDOM`): under
    /// `--bwlimit`, so that the disk reads what was paid for.
    fn no_read_ahead(&self) {}
    /// Reads at `offset` through the page cache without leaving there the pages the read
    /// brings in (`RWF_DONTCACHE`, Linux 6.14 and later, on file systems that support it);
    /// pages cached before stay. With `nowait`, as [`Handle::read_at_nowait`]. `Unsupported`
    /// where the kernel or the file system cannot (`--nocache` then drops pages itself).
    fn read_at_uncached(&self, _buf: &mut [u8], _offset: u64, _nowait: bool) -> io::Result<usize> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// `RWF_DONTCACHE` of `preadv2(2)`: pages this read brings into the page cache leave it once
/// copied out.
const RWF_DONTCACHE: u32 = 0x80;

/// The file system.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Disk;

/// How long an open that finds no free descriptor waits, in all, for others to close.
const DESCRIPTOR_WAIT: Duration = Duration::from_secs(5);

impl Storage for Disk {
    /// Opens relative to the source's directory handle when it has one. Out of descriptors
    /// ("Too many open files"), it waits for the run's other files to close and tries again,
    /// for up to [`DESCRIPTOR_WAIT`]: the run holds descriptors only for a moment each.
    fn open(&self, source: &Source) -> io::Result<Box<dyn Handle>> {
        let mut pause = Duration::from_millis(1);
        let mut waited = Duration::ZERO;
        loop {
            let opened = match source {
                Source::Path(path) => open_path(path),
                Source::InDir { path, dir, .. } => open_in(dir, path),
                Source::Stdin => Err(io::Error::from(io::ErrorKind::Unsupported)),
            };
            match opened {
                Err(e)
                    if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
                        && waited < DESCRIPTOR_WAIT
                        && signals::stop_requested().is_none() =>
                {
                    std::thread::sleep(pause);
                    waited += pause;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(e) => return Err(e),
                Ok(file) => return Ok(Box::new(DiskFile(file))),
            }
        }
    }

    fn stat(&self, source: &Source) -> io::Result<Stat> {
        match source {
            Source::Stdin => Err(io::Error::from(io::ErrorKind::Unsupported)),
            other => other
                .stat()
                .unwrap_or_else(|| Err(io::ErrorKind::Unsupported.into())),
        }
    }
}

/// Flags of every open: read only, never the controlling terminal, closed on exec.
fn flags() -> OFlags {
    OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY
}

fn open_path(path: &Path) -> io::Result<File> {
    let fd = rustix::fs::open(path, flags(), rustix::fs::Mode::empty())?;
    Ok(File::from(fd))
}

/// Opens the file named by the last component of `path` inside `dir`.
fn open_in(dir: &DirHandle, path: &Path) -> io::Result<File> {
    let name = path.file_name().unwrap_or(OsStr::new("."));
    let fd = rustix::fs::openat(dir, name.as_bytes(), flags(), rustix::fs::Mode::empty())?;
    Ok(File::from(fd))
}

/// A file of the file system.
struct DiskFile(File);

impl Handle for DiskFile {
    fn stat(&self) -> io::Result<Stat> {
        rustix::fs::fstat(&self.0).map_err(io::Error::from)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }

    fn read_at_nowait(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut slices = [io::IoSliceMut::new(buf)];
        match rustix::io::preadv2(
            &self.0,
            &mut slices,
            offset,
            rustix::io::ReadWriteFlags::NOWAIT,
        ) {
            Ok(n) => Ok(n),
            Err(rustix::io::Errno::AGAIN) => Err(io::ErrorKind::WouldBlock.into()),
            // A file system or kernel that cannot say whether a read would wait.
            Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::INVAL) => {
                Err(io::ErrorKind::Unsupported.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.0).read(buf)
    }

    fn no_read_ahead(&self) {
        let _ = rustix::fs::fadvise(&self.0, 0, None, Advice::Random);
    }

    fn read_at_uncached(&self, buf: &mut [u8], offset: u64, nowait: bool) -> io::Result<usize> {
        let mut flags = rustix::io::ReadWriteFlags::from_bits_retain(RWF_DONTCACHE);
        if nowait {
            flags |= rustix::io::ReadWriteFlags::NOWAIT;
        }
        loop {
            let mut slices = [io::IoSliceMut::new(buf)];
            return match rustix::io::preadv2(&self.0, &mut slices, offset, flags) {
                Ok(n) => Ok(n),
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) if nowait => Err(io::ErrorKind::WouldBlock.into()),
                // A kernel before 6.14 (EINVAL: an unknown flag), or a file system without it.
                Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::INVAL) => {
                    Err(io::ErrorKind::Unsupported.into())
                }
                Err(e) => Err(e.into()),
            };
        }
    }

    fn will_need(&self, offset: u64, len: u64) {
        let _ = rustix::fs::fadvise(
            &self.0,
            offset,
            std::num::NonZeroU64::new(len),
            Advice::WillNeed,
        );
    }

    fn mappable(&self) -> Option<&File> {
        crate::engine::device::is_local(&self.0).then_some(&self.0)
    }

    /// `mincore(2)` over a mapping of the range, made for the question and unmapped: the
    /// mapping is never touched, so asking brings nothing into the cache.
    fn cached_pages(&self, offset: u64, len: u64) -> Option<Vec<u8>> {
        let page = page_size();
        if len == 0 || !offset.is_multiple_of(page) {
            return None;
        }
        let len = usize::try_from(len).ok()?;
        let mut pages = vec![0u8; len.div_ceil(page as usize)];
        // SAFETY: a fresh shared read-only mapping of our own descriptor, never read through;
        // mincore writes one byte per page of it into `pages`, which has exactly that many;
        // the mapping is removed before returning.
        unsafe {
            let at = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                std::os::fd::AsRawFd::as_raw_fd(&self.0),
                i64::try_from(offset).ok()?,
            );
            if at == libc::MAP_FAILED {
                return None;
            }
            let asked = libc::mincore(at, len, pages.as_mut_ptr());
            libc::munmap(at, len);
            (asked == 0).then_some(pages)
        }
    }

    fn wont_need(&self, offset: u64, len: u64) {
        let _ = rustix::fs::fadvise(
            &self.0,
            offset,
            std::num::NonZeroU64::new(len),
            Advice::DontNeed,
        );
    }
}

/// The size of a page of memory (and of the page cache), asked once.
pub(crate) fn page_size() -> u64 {
    static PAGE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        u64::try_from(page).ok().filter(|&p| p > 0).unwrap_or(4096)
    })
}
