//! Hashing a regular file through memory maps, safely even if the file shrinks meanwhile.
//!
//! Reading a large file with `read` copies every byte from the page cache into a buffer and
//! then reads it again to hash it; that copy costs about a quarter of the time of SHA-256
//! itself. Mapping the file lets SHA-256 read the page cache directly. The file is mapped in
//! windows of [`WINDOW`] bytes, each unmapped before the next, so the resident set of a worker
//! stays a few megabytes however large the file is.
//!
//! The danger of maps is a file truncated by someone else while it is mapped: touching a page
//! past the new end raises SIGBUS, which by default kills the process. This module installs a
//! SIGBUS handler that, for a fault inside the window the faulting thread is hashing, maps
//! zeroed anonymous memory over the rest of that window, records the fault for that thread,
//! and returns, so the hash finishes on zeros and [`hash_mapped`] reports the file as changed
//! (or, for a fault that is not about the file's end, as an I/O error). A SIGBUS anywhere else
//! is not ours: the handler restores the default action and lets the fault happen again.
//!
//! Small files, FIFOs, devices and files whose size reads as 0 are not mapped; `read` reads
//! them.

use std::cell::Cell;
use std::fs::File;
use std::io;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::digest::Hasher;

use crate::report::Reason;

/// Bytes mapped at a time. Measured on a 1 GiB file (warm cache, 2 cores): 1 MiB windows
/// took 5% longer than 2 MiB ones, and larger windows gained nothing while raising the
/// resident set.
pub const WINDOW: usize = 2 << 20;

/// Bytes handed to SHA-256 per call.
const BLOCK: usize = 1 << 20;

thread_local! {
    /// Start and end address of the window this thread is hashing; (0, 0) when none.
    static GUARD: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    /// `si_code` of a SIGBUS caught in this thread's window; 0 if none.
    static FAULT: Cell<i32> = const { Cell::new(0) };
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
    // are plain `Cell`s with const initialisers (no lazy set-up, no destructor), and mmap
    // is a single system call.
    unsafe {
        let addr = (*info).si_addr() as usize;
        let (start, end) = GUARD.with(Cell::get);
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
                FAULT.with(|f| f.set((*info).si_code));
                return;
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
struct Window {
    ptr: *mut std::ffi::c_void,
    len: usize,
}

// SAFETY: the window is a private read-only view owned by one value; moving it to another
// thread moves that ownership, nothing is shared.
unsafe impl Send for Window {}

impl Window {
    /// Maps `len` bytes of `file` at `offset` (a multiple of the page size), with its pages
    /// populated up front so the hashing thread does not take a fault per page.
    fn map(file: &File, offset: u64, len: usize) -> io::Result<Window> {
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

    /// Hashes the window on this thread, catching a SIGBUS from a file that shrank.
    fn hash_into(&self, hasher: &mut Hasher) -> Result<(), Reason> {
        if crate::signals::stop_requested().is_some() {
            return Err(Reason::Io(io::ErrorKind::Interrupted.into()));
        }
        let start = self.ptr as usize;
        GUARD.with(|g| g.set((start, start + self.len)));
        FAULT.with(|f| f.set(0));
        // SAFETY: `ptr` points to `len` readable bytes for as long as `self` lives. If another
        // process truncates the file, the pages past its end are replaced by zeros by
        // `on_sigbus` before any read of them completes, and the fault is recorded.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) };
        for block in bytes.chunks(BLOCK) {
            hasher.update(block);
        }
        GUARD.with(|g| g.set((0, 0)));
        match FAULT.with(Cell::get) {
            0 => Ok(()),
            libc::BUS_ADRERR => Err(Reason::Changed),
            _ => Err(Reason::Io(io::Error::from_raw_os_error(libc::EIO))),
        }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping created in `map`; no slice of it outlives
        // `hash_into`.
        unsafe {
            let _ = rustix::mm::munmap(self.ptr, self.len);
        }
    }
}

/// Files of more windows than this get a helper thread that maps the next window while the
/// worker hashes the current one, if a core is idle. Setting up a window's page tables is
/// about a tenth of the cost of hashing it; overlapped on an idle core, a single large file
/// hashes at nearly the in-memory speed of SHA-256 (1 GiB: 0.64 s instead of 0.69 s). When
/// every core is already hashing, the helper only adds hand-offs (4 files of 512 MiB on 2
/// cores: 0.71 s instead of 0.66 s), so it is not started. Below this size, a thread costs
/// more than it saves.
const PREFETCH_MIN_WINDOWS: u64 = 4;

/// Workers hashing right now: mapped files, or files in lanes.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// Counts a worker as busy hashing in [`ACTIVE`] until dropped, however the hash ends: a
/// mapped file here, or files in lanes (`lanes`).
pub(crate) struct Active;

impl Active {
    /// Counts this hash until the guard is dropped.
    pub(crate) fn enter() -> Active {
        ACTIVE.fetch_add(1, Ordering::AcqRel);
        Active
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::AcqRel);
    }
}

fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Feeds the first `len` bytes of `file` into `hasher` through memory maps.
///
/// Returns [`Reason::Changed`] if the file shrank while it was mapped, or an I/O error if the
/// kernel could not provide a page for another reason.
pub fn hash_mapped(file: &File, len: u64, hasher: &mut Hasher) -> Result<(), Reason> {
    install_handler()?;
    let window = WINDOW as u64;
    let mut offsets = (0..len.div_ceil(window))
        .map(move |i| (i * window, WINDOW.min((len - i * window) as usize)));
    let _active = Active::enter();
    // The first window is always hashed here: by the time it is done, workers that started
    // together with this one are counted too, and the count says whether a core is idle.
    if let Some((offset, size)) = offsets.next() {
        Window::map(file, offset, size)?.hash_into(hasher)?;
    }
    let idle_core = ACTIVE.load(Ordering::Acquire) < cores();
    if len.div_ceil(window) <= PREFETCH_MIN_WINDOWS || !idle_core {
        for (offset, size) in offsets {
            Window::map(file, offset, size)?.hash_into(hasher)?;
        }
        return Ok(());
    }
    std::thread::scope(|scope| {
        // A rendezvous channel: the helper maps one window ahead and waits until the worker
        // takes it, so at most two windows per worker are mapped at any time.
        let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Window>>(0);
        scope.spawn(move || {
            for (offset, size) in offsets {
                let mapped = Window::map(file, offset, size);
                let failed = mapped.is_err();
                if tx.send(mapped).is_err() || failed {
                    break;
                }
            }
        });
        // Returning early drops `rx`, which ends the helper at its next send.
        for mapped in rx {
            mapped?.hash_into(hasher)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_file_that_shrank_is_reported_changed_not_a_crash() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&vec![7u8; 3 * WINDOW]).unwrap();
        // Hash as if the file still had its old length: the pages past the new end raise
        // SIGBUS, which must become a "changed" result.
        file.set_len(WINDOW as u64 / 2 + 100).unwrap();
        let mut hasher = Hasher::new(crate::digest::Algorithm::Sha256);
        let result = hash_mapped(&file, 3 * WINDOW as u64, &mut hasher);
        assert!(matches!(result, Err(Reason::Changed)), "{result:?}");
    }

    #[test]
    fn mapped_and_read_digests_agree() {
        let mut file = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..(9 * WINDOW + 12345)).map(|i| (i % 253) as u8).collect();
        file.write_all(&data).unwrap();
        for algorithm in crate::digest::Algorithm::ALL {
            let mut hasher = Hasher::new(algorithm);
            hash_mapped(&file, data.len() as u64, &mut hasher).unwrap();
            let mut whole = Hasher::new(algorithm);
            whole.update(&data);
            assert_eq!(hasher.finalize(), whole.finalize());
        }
    }
}
