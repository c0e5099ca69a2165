//! Windows of a file mapped into memory, read only inside a guard that survives the file
//! shrinking under them.
//!
//! Reading a large file with `read` copies every byte from the page cache into a buffer and
//! then reads it again to hash it; measured on 4 files of 512 MiB on 2 cores, the copy made
//! hashing 15% slower warm and cost 5 times the system time cold. Mapping lets the hash read
//! the page cache directly. A worker maps a window of [`WINDOW`] bytes with its pages
//! faulted in (`MAP_POPULATE`), hashes it, and unmaps it.
//!
//! The danger of maps is a file truncated by someone else while it is mapped: touching a page
//! past the new end raises SIGBUS, which by default kills the process. So a [`Window`] is
//! registered, while it lives, in a table of guarded ranges that the SIGBUS handler of this
//! module looks up: a fault inside one maps zeroed memory over the rest of that window,
//! records the fault, and returns, so the hash finishes on zeros and the caller reports the
//! file as changed (or, for a fault that is not about the file's end, as an I/O error). The
//! table is the process's, not a thread's: a window may be read by helper threads too
//! (BLAKE3 spreads one window over several). A SIGBUS anywhere else is not sumpool's: the
//! handler restores the default action and lets the fault happen again.
//!
//! The bytes of a window are reachable only through [`read_guarded`], which gives them to a
//! closure and then says whether reading them faulted: a read outside the guard does not
//! compile.
//!
//! Files on network file systems are never mapped (`device::is_local`): a page fault there
//! could wait on a server that never answers.

use std::fs::File;
use std::io;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering, compiler_fence};

use crate::report::Reason;

/// Bytes mapped at a time. Measured on a 1 GiB file (warm cache, 2 cores): 1 MiB windows
/// took 5% longer than 2 MiB ones, and larger windows gained nothing while raising the
/// resident set.
pub(crate) const WINDOW: usize = 2 << 20;

/// Bytes mapped at a time for a file whose windows are spread over every core (BLAKE3 alone:
/// `Hasher::update_parallel`), mapped without `MAP_POPULATE` so that the threads that hash a
/// window fault its pages in side by side, not the worker alone before them. Measured warm
/// on a file of 1 GiB on 2 cores (medians of 15 interleaved runs), against `b3sum`'s time:
/// 2 MiB populated windows 0.75 x its speed, 8 MiB 0.89 x, 16 MiB 0.90 x (peak RSS 22 MiB),
/// 32 MiB 0.91 x (38 MiB, over the engine's 32 MiB).
pub(crate) const WIDE_WINDOW: usize = 16 << 20;

/// Windows mapped at once, in the whole process: the streams of a run, one window each.
const SLOTS: usize = 64;

/// One guarded range: in use, its addresses, and the `si_code` of a fault in it (0: none).
struct Slot {
    used: AtomicBool,
    start: AtomicUsize,
    end: AtomicUsize,
    fault: AtomicI32,
}

static GUARDS: [Slot; SLOTS] = [const {
    Slot {
        used: AtomicBool::new(false),
        start: AtomicUsize::new(0),
        end: AtomicUsize::new(0),
        fault: AtomicI32::new(0),
    }
}; SLOTS];

static INSTALL: Once = Once::new();

/// The page size, read once when the handler is installed (the handler must not ask).
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);

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
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers; the table is of
    // atomics, and mmap is a single system call.
    unsafe {
        let addr = (*info).si_addr() as usize;
        for slot in &GUARDS {
            if !slot.used.load(Ordering::Acquire) {
                continue;
            }
            let (start, end) = (
                slot.start.load(Ordering::Acquire),
                slot.end.load(Ordering::Acquire),
            );
            if start <= addr && addr < end {
                let page = addr & !(PAGE_SIZE.load(Ordering::Relaxed) - 1);
                let zeros = libc::mmap(
                    page as *mut libc::c_void,
                    end - page,
                    libc::PROT_READ,
                    libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                if zeros != libc::MAP_FAILED {
                    slot.fault.store((*info).si_code, Ordering::Release);
                    return;
                }
            }
        }
        // Not a fault in a guarded window: fall back to the default action, which applies
        // when the faulting instruction runs again.
        libc::signal(libc::SIGBUS, libc::SIG_DFL);
    }
}

/// A mapped window of a file, guarded while it lives; unmapped on drop.
pub(crate) struct Window {
    ptr: *mut std::ffi::c_void,
    len: usize,
    slot: usize,
}

// SAFETY: the window is a private read-only view owned by one value; moving it to another
// thread moves that ownership. Reading it from several threads at once (through
// `read_guarded`) is reading immutable memory.
unsafe impl Send for Window {}
// SAFETY: as above: `&Window` only gives reads, inside the guard.
unsafe impl Sync for Window {}

impl Window {
    /// Maps `len` bytes of `file` at `offset` (a multiple of the page size), with its pages
    /// faulted in now, on the calling thread, if `populate`, else as they are read. `None`
    /// when every guard slot is taken (the caller reads instead).
    pub(crate) fn map(
        file: &File,
        offset: u64,
        len: usize,
        populate: bool,
    ) -> io::Result<Option<Window>> {
        install_handler()?;
        if len == 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let Some(slot) = (0..SLOTS).find(|&i| {
            GUARDS[i]
                .used
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        }) else {
            return Ok(None);
        };
        // SAFETY: a fresh shared read-only mapping of an open file; the kernel picks the
        // address, and the mapping is only ever read, then unmapped in `drop`.
        let mapped = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ,
                if populate {
                    rustix::mm::MapFlags::SHARED | rustix::mm::MapFlags::POPULATE
                } else {
                    rustix::mm::MapFlags::SHARED
                },
                file,
                offset,
            )
        };
        let ptr = match mapped {
            Ok(ptr) => ptr,
            Err(e) => {
                GUARDS[slot].used.store(false, Ordering::Release);
                return Err(e.into());
            }
        };
        let guard = &GUARDS[slot];
        guard.fault.store(0, Ordering::Release);
        guard.start.store(ptr as usize, Ordering::Release);
        guard.end.store(ptr as usize + len, Ordering::Release);
        Ok(Some(Window { ptr, len, slot }))
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        let guard = &GUARDS[self.slot];
        guard.start.store(0, Ordering::Release);
        guard.end.store(0, Ordering::Release);
        // SAFETY: unmapping exactly the mapping created in `map`; no slice of it outlives
        // the closure of `read_guarded`, which borrows `self`.
        unsafe {
            let _ = rustix::mm::munmap(self.ptr, self.len);
        }
        guard.used.store(false, Ordering::Release);
    }
}

/// Gives `f` the bytes of `windows`, from `from[i]` on in window `i`, and returns what `f`
/// returns and, for each window, what went wrong while they were read: a fault past the end
/// of the file (it was truncated: `Changed`), or another (`Io`). The only way to read a
/// window: the slices do not outlive `f`.
pub(crate) fn read_guarded<T>(
    windows: &[(&Window, usize)],
    f: impl FnOnce(&[&[u8]]) -> T,
) -> (T, Vec<Option<Reason>>) {
    let slices: Vec<&[u8]> = windows
        .iter()
        .map(|&(window, from)| {
            // SAFETY: `ptr` points to `len` readable bytes while `window` lives, which the
            // borrow guarantees for `f`'s run. If the file shrinks, the pages past its end
            // are replaced by zeros by `on_sigbus` before any read of them completes, and
            // the fault is recorded in the window's slot.
            let all = unsafe { std::slice::from_raw_parts(window.ptr as *const u8, window.len) };
            &all[from.min(window.len)..]
        })
        .collect();
    compiler_fence(Ordering::SeqCst);
    let result = f(&slices);
    compiler_fence(Ordering::SeqCst);
    let reasons = windows
        .iter()
        .map(
            |(window, _)| match GUARDS[window.slot].fault.load(Ordering::Acquire) {
                0 => None,
                libc::BUS_ADRERR => Some(Reason::Changed),
                _ => Some(Reason::Io(io::Error::from_raw_os_error(libc::EIO))),
            },
        )
        .collect();
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
        let window = Window::map(&file, 0, 3 * WINDOW, true).unwrap().unwrap();
        // Truncated after it was mapped: the pages past the new end raise SIGBUS, which
        // must become a "changed" result, on this thread or on another.
        file.set_len(WINDOW as u64 / 2 + 100).unwrap();
        let (sum, reasons) = read_guarded(&[(&window, 0)], |bytes| {
            std::thread::scope(|s| {
                s.spawn(|| {
                    bytes[0][2 * WINDOW..]
                        .iter()
                        .map(|&b| u64::from(b))
                        .sum::<u64>()
                })
                .join()
                .unwrap()
            })
        });
        assert!(matches!(reasons[0], Some(Reason::Changed)), "{reasons:?}");
        assert!(sum < 7 * WINDOW as u64);
    }

    #[test]
    fn a_window_reads_what_the_file_holds() {
        let mut file = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..(WINDOW + 12345)).map(|i| (i % 253) as u8).collect();
        file.write_all(&data).unwrap();
        let first = Window::map(&file, 0, WINDOW, true).unwrap().unwrap();
        let second = Window::map(&file, WINDOW as u64, 12345, false)
            .unwrap()
            .unwrap();
        let (joined, reasons) = read_guarded(&[(&first, 0), (&second, 0)], |bytes| bytes.concat());
        assert_eq!(joined, data);
        assert!(reasons.iter().all(Option::is_none));
        let (tail, _) = read_guarded(&[(&second, 12000)], |bytes| bytes[0].to_vec());
        assert_eq!(tail, &data[WINDOW + 12000..]);
    }
}
