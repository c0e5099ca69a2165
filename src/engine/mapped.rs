//! Windows of a file mapped into memory, and hashing them safely even if the file shrinks.
//!
//! Reading a large file with `read` copies every byte from the page cache into a buffer and
//! then reads it again to hash it; that copy costs about a quarter of the time of SHA-256
//! itself. Mapping the file lets SHA-256 read the page cache directly. A reader maps a window
//! of [`WINDOW`] bytes with its pages faulted in (`MAP_POPULATE`: the waiting for the disk
//! happens on the reader, not on the hashing core), hands it to the worker that hashes the
//! file, and the window is unmapped when the worker is done with it. A file being hashed has
//! at most two windows mapped, so the resident set stays a few megabytes per file however
//! large the file is.
//!
//! The danger of maps is a file truncated by someone else while it is mapped: touching a page
//! past the new end raises SIGBUS, which by default kills the process. This module installs a
//! SIGBUS handler that, for a fault inside a window the faulting thread is hashing
//! ([`guarded`]), maps zeroed anonymous memory over the rest of that window, records the
//! fault for that window, and returns, so the hash finishes on zeros and the caller reports
//! the file as changed (or, for a fault that is not about the file's end, as an I/O error).
//! A SIGBUS anywhere else is not ours: the handler restores the default action and lets the
//! fault happen again.
//!
//! Files on network file systems are not mapped (`policy::maps_safely`): a page fault there
//! could wait on a server that never answers, on a hashing core.

use std::fs::File;
use std::io;
use std::sync::Once;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering, compiler_fence};

use crate::report::Reason;

/// Bytes mapped at a time. Measured on a 1 GiB file (warm cache, 2 cores): 1 MiB windows
/// took 5% longer than 2 MiB ones, and larger windows gained nothing while raising the
/// resident set.
pub const WINDOW: usize = 2 << 20;

/// Most windows one thread hashes at once (one per lane).
pub const MAX_GUARDS: usize = 4;

// The handler runs on the thread it interrupts, so these are per thread; they are atomics
// (not `Cell`s) with a `compiler_fence` around the guarded code because the handler writes
// them behind the compiler's back: with plain cells, an optimised build may fold the read of
// a fault back to the zero stored just before the guarded code ran.
thread_local! {
    /// Start and end address of the windows this thread is hashing; (0, 0) when none.
    static GUARDS: [(AtomicUsize, AtomicUsize); MAX_GUARDS] =
        const { [const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; MAX_GUARDS] };
    /// `si_code` of a SIGBUS caught in each of this thread's windows; 0 if none.
    static FAULTS: [AtomicI32; MAX_GUARDS] = const { [const { AtomicI32::new(0) }; MAX_GUARDS] };
}

static INSTALL: Once = Once::new();

/// Installs the SIGBUS handler once per process.
fn install_handler() -> io::Result<()> {
    let mut result = Ok(());
    INSTALL.call_once(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if page > 0 {
            PAGE_SIZE.store(page as usize, Ordering::Relaxed);
        }
        // SAFETY: `action` is fully initialised before use; `on_sigbus` has the signature
        // SA_SIGINFO requires and only performs async-signal-safe work.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) != 0 {
                result = Err(io::Error::last_os_error());
            }
        }
    });
    result
}

extern "C" fn on_sigbus(
    _signal: libc::c_int,
    info: *mut libc::siginfo_t,
    _context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers; the thread-locals
    // are atomics with const initialisers (no lazy set-up, no destructor), and mmap
    // is a single system call.
    unsafe {
        let addr = (*info).si_addr() as usize;
        for i in 0..MAX_GUARDS {
            let (start, end) = GUARDS.with(|g| {
                (
                    g[i].0.load(Ordering::Relaxed),
                    g[i].1.load(Ordering::Relaxed),
                )
            });
            if start <= addr && addr < end {
                let page = addr & !(page_size() - 1);
                let zeros = libc::mmap(
                    page as *mut libc::c_void,
                    end - page,
                    libc::PROT_READ,
                    libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                if zeros != libc::MAP_FAILED {
                    FAULTS.with(|f| f[i].store((*info).si_code, Ordering::Relaxed));
                    return;
                }
            }
        }
        // Not a fault in a window we are hashing: fall back to the default action, which
        // applies when the faulting instruction runs again.
        libc::signal(libc::SIGBUS, libc::SIG_DFL);
    }
}

/// The page size, read once when the handler is installed (the handler must not ask).
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);

fn page_size() -> usize {
    PAGE_SIZE.load(Ordering::Relaxed)
}

/// A mapped window of a file, unmapped on drop.
pub struct Window {
    ptr: *mut std::ffi::c_void,
    len: usize,
}

// SAFETY: the window is a private read-only view owned by one value; moving it to another
// thread moves that ownership, nothing is shared.
unsafe impl Send for Window {}

impl Window {
    /// Maps `len` bytes of `file` at `offset` (a multiple of the page size), with its pages
    /// faulted in now, on the calling thread.
    pub fn map(file: &File, offset: u64, len: usize) -> io::Result<Window> {
        install_handler()?;
        if len == 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: a fresh shared read-only mapping of an open file; the kernel picks the
        // address, and the mapping is only ever read, then unmapped in `drop`.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ,
                rustix::mm::MapFlags::SHARED | rustix::mm::MapFlags::POPULATE,
                file,
                offset,
            )
        }?;
        Ok(Window { ptr, len })
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it maps nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its bytes. Read them only inside [`guarded`], with this window among the guarded
    /// ones: a file truncated meanwhile faults on them.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` points to `len` readable bytes for as long as `self` lives. If
        // another process truncates the file, the pages past its end are replaced by zeros
        // by `on_sigbus` before any read of them completes (inside `guarded`), and the fault
        // is recorded.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }

    fn range(&self) -> (usize, usize) {
        let start = self.ptr as usize;
        (start, start + self.len)
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping created in `map`; no slice of it outlives
        // the borrow of `self`.
        unsafe {
            let _ = rustix::mm::munmap(self.ptr, self.len);
        }
    }
}

/// Runs `f`, which reads the bytes of `windows` (at most [`MAX_GUARDS`]), with a SIGBUS in
/// any of them caught; returns `f`'s result and, for each window, what went wrong in it.
pub fn guarded<T>(windows: &[Option<&Window>], f: impl FnOnce() -> T) -> (T, Vec<Option<Reason>>) {
    let n = windows.len().min(MAX_GUARDS);
    GUARDS.with(|guards| {
        FAULTS.with(|faults| {
            for i in 0..n {
                let (start, end) = windows[i].map_or((0, 0), Window::range);
                guards[i].0.store(start, Ordering::Relaxed);
                guards[i].1.store(end, Ordering::Relaxed);
                faults[i].store(0, Ordering::Relaxed);
            }
        })
    });
    compiler_fence(Ordering::SeqCst);
    let result = f();
    compiler_fence(Ordering::SeqCst);
    let reasons = GUARDS.with(|guards| {
        FAULTS.with(|faults| {
            (0..n)
                .map(|i| {
                    guards[i].0.store(0, Ordering::Relaxed);
                    guards[i].1.store(0, Ordering::Relaxed);
                    match faults[i].load(Ordering::Relaxed) {
                        0 => None,
                        libc::BUS_ADRERR => Some(Reason::Changed),
                        _ => Some(Reason::Io(io::Error::from_raw_os_error(libc::EIO))),
                    }
                })
                .collect()
        })
    });
    (result, reasons)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_window_past_the_end_of_a_shrunk_file_is_a_change_not_a_crash() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&vec![7u8; 3 * WINDOW]).unwrap();
        let window = Window::map(&file, 0, 3 * WINDOW).unwrap();
        // Truncated after it was mapped: the pages past the new end raise SIGBUS, which
        // must become a "changed" result.
        file.set_len(WINDOW as u64 / 2 + 100).unwrap();
        let (sum, reasons) = guarded(&[Some(&window)], || {
            window.bytes().iter().map(|&b| u64::from(b)).sum::<u64>()
        });
        assert!(matches!(reasons[0], Some(Reason::Changed)), "{reasons:?}");
        assert!(sum < 7 * 3 * WINDOW as u64);
    }

    #[test]
    fn a_window_reads_what_the_file_holds() {
        let mut file = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..(WINDOW + 12345)).map(|i| (i % 253) as u8).collect();
        file.write_all(&data).unwrap();
        let first = Window::map(&file, 0, WINDOW).unwrap();
        let second = Window::map(&file, WINDOW as u64, 12345).unwrap();
        let (joined, reasons) = guarded(&[Some(&first), Some(&second)], || {
            [first.bytes(), second.bytes()].concat()
        });
        assert_eq!(joined, data);
        assert!(reasons.iter().all(Option::is_none));
    }
}
