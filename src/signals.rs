//! An orderly stop on the signals that end a process, and a guarantee that it ends.
//!
//! Killed outright, sumpool could leave half a line at the end of a manifest: a block of
//! output can be cut inside a `write` to a full pipe. Instead, the first SIGINT, SIGTERM or
//! SIGHUP (and SIGALRM, SIGUSR1, SIGXCPU, SIGVTALRM, SIGPROF, whose default action also ends
//! a process: `timeout -s ALRM`, a CPU limit) only sets a flag. The run loop sees it within a
//! fraction of a second, stops dispatching work, workers abandon the file they are in at the
//! next block, the lines already formatted are written out whole, the temporary manifest is
//! removed, and then the process ends by the same signal with its default action, so the
//! shell sees the usual status (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP).
//!
//! The main thread may be blocked where it cannot look at the flag: in the `open` of a FIFO
//! that no one reads (`-o fifo`), in a `statfs` that a dead file server never answers, in a
//! `write` to a pipe that is full and stays full. So a *watchdog* thread sleeps on a pipe the
//! handler writes to (the self-pipe trick: `write` is async-signal-safe), and if the process
//! is still there [`GRACE`] after the first signal, it removes the temporary files itself and
//! ends the process by the signal. A second signal does the same at once, from the handler.
//! SIGQUIT ends the process at once too (with its core dump, as the user asked), after the
//! temporary files are removed.
//!
//! Temporary files are removed by name from a fixed table ([`TempName`]): the handler may not
//! allocate or take a lock, so each entry is an open directory and a name of at most
//! [`TEMP_NAME_MAX`] bytes, written before the name exists on disk and read with
//! `unlinkat`, which is async-signal-safe.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::time::Duration;

/// The signal that asked the run to stop, or 0.
static STOP: AtomicI32 = AtomicI32::new(0);

/// Whether a progress bar is on the terminal, so a dying process should erase its line.
static BAR_ACTIVE: AtomicBool = AtomicBool::new(false);

/// The write end of the watchdog's pipe, or -1 before [`install`].
static WATCHDOG_PIPE: AtomicI32 = AtomicI32::new(-1);

/// How long after the first signal the watchdog waits for the orderly stop before it ends
/// the process itself. The run loop notices a stop within 100 ms and then writes out what it
/// formatted; past this, it is blocked somewhere it cannot notice.
pub const GRACE: Duration = Duration::from_millis(600);

/// Signals whose default action ends the process, and which end a run in an orderly way.
const ORDERLY: [libc::c_int; 8] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGALRM,
    libc::SIGUSR1,
    libc::SIGXCPU,
    libc::SIGVTALRM,
    libc::SIGPROF,
];

/// Tells the handler whether a progress bar is shown on stderr.
pub fn set_bar_active(active: bool) {
    BAR_ACTIVE.store(active, Ordering::SeqCst);
}

extern "C" fn on_signal(signal: libc::c_int) {
    // A second signal: the user insists; die the default way right now.
    if STOP.swap(signal, Ordering::SeqCst) != 0 {
        die_now(signal);
    }
    let fd = WATCHDOG_PIPE.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = [signal as u8];
        // SAFETY: write is async-signal-safe; a full pipe (O_NONBLOCK) only drops the byte,
        // and one byte is enough to wake the watchdog.
        unsafe {
            libc::write(fd, byte.as_ptr().cast(), 1);
        }
    }
}

extern "C" fn on_quit(signal: libc::c_int) {
    die_now(signal);
}

/// Removes the temporary files, erases the progress bar, and ends the process by `signal`
/// with its default action. Async-signal-safe.
fn die_now(signal: libc::c_int) -> ! {
    const ERASE_LINE: &[u8] = b"\r\x1b[2K";
    remove_temps();
    // SAFETY: write, signal and raise are async-signal-safe; the buffer is static.
    unsafe {
        if BAR_ACTIVE.load(Ordering::SeqCst) {
            libc::write(2, ERASE_LINE.as_ptr().cast(), ERASE_LINE.len());
        }
        libc::signal(signal, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(signal);
        // Only reached if the default action does not end the process.
        libc::_exit(128 + signal);
    }
}

/// Installs the handlers, without SA_RESTART so that a thread blocked in a read of a FIFO
/// or a terminal returns to look at the flag, and starts the watchdog. Also installs a
/// handler that does nothing for [`WAKE`], the signal aimed at a reader thread stuck in a
/// read, so that the read returns `EINTR` where the file system allows it.
pub fn install() {
    start_watchdog();
    let mut handlers: Vec<(libc::c_int, extern "C" fn(libc::c_int))> =
        ORDERLY.iter().map(|&s| (s, on_signal as _)).collect();
    handlers.push((libc::SIGQUIT, on_quit));
    handlers.push((WAKE, on_wake));
    for (signal, handler) in handlers {
        // SAFETY: `action` is fully initialised; the handlers only touch atomics and call
        // async-signal-safe functions.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
    WAKE_INSTALLED.store(true, Ordering::SeqCst);
}

/// Starts the thread that ends the process [`GRACE`] after the first signal. Without a pipe
/// or a thread (descriptors or threads exhausted), the orderly stop is all there is.
fn start_watchdog() {
    let mut fds = [-1; 2];
    // SAFETY: pipe2 fills the two descriptors it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return;
    }
    let (read_end, write_end) = (fds[0], fds[1]);
    // The read end blocks: the watchdog sleeps in `read`.
    // SAFETY: fcntl on a descriptor just made.
    unsafe {
        let flags = libc::fcntl(read_end, libc::F_GETFL);
        libc::fcntl(read_end, libc::F_SETFL, flags & !libc::O_NONBLOCK);
    }
    let spawned = std::thread::Builder::new()
        .name("sumpool-watchdog".into())
        .stack_size(64 << 10)
        .spawn(move || watch(read_end));
    if spawned.is_ok() {
        WATCHDOG_PIPE.store(write_end, Ordering::SeqCst);
    } else {
        // SAFETY: closing the descriptors just made, which nothing else uses.
        unsafe {
            libc::close(read_end);
            libc::close(write_end);
        }
    }
}

/// The watchdog: waits for the first signal, gives the orderly stop [`GRACE`], then ends the
/// process.
fn watch(read_end: libc::c_int) {
    let mut byte = [0u8; 1];
    loop {
        // SAFETY: reading one byte into a buffer of one byte.
        let n = unsafe { libc::read(read_end, byte.as_mut_ptr().cast(), 1) };
        if n == 1 || STOP.load(Ordering::SeqCst) != 0 {
            break;
        }
        if n == 0 {
            return;
        }
    }
    std::thread::sleep(GRACE);
    let signal = STOP.load(Ordering::SeqCst);
    if signal != 0 {
        die_now(signal);
    }
}

/// The signal aimed at a reader thread to interrupt a blocked read (SIGUSR2; its handler
/// does nothing). Only sent once [`install`] ran: by default it would end the process.
pub const WAKE: libc::c_int = libc::SIGUSR2;

static WAKE_INSTALLED: AtomicBool = AtomicBool::new(false);

/// Whether [`WAKE`] may be sent: its handler is installed.
pub fn wake_installed() -> bool {
    WAKE_INSTALLED.load(Ordering::SeqCst)
}

extern "C" fn on_wake(_signal: libc::c_int) {}

/// The signal that asked the run to stop, if one did.
pub fn stop_requested() -> Option<i32> {
    match STOP.load(Ordering::Relaxed) {
        0 => None,
        signal => Some(signal),
    }
}

/// Ends the process by `signal`, with its default action, after output was flushed.
pub fn exit_by(signal: i32) -> ! {
    die_now(signal)
}

/// Longest temporary file name the table holds.
pub const TEMP_NAME_MAX: usize = 255;

/// Temporary files at once (the manifest being written, and the one an update merges into).
const TEMP_SLOTS: usize = 4;

/// One entry of the table of temporary files to remove on a signal.
struct TempSlot {
    /// The directory's descriptor, or -1 while the slot is free or being written.
    dir: AtomicI32,
    len: AtomicUsize,
    name: UnsafeCell<[u8; TEMP_NAME_MAX + 1]>,
}

// SAFETY: `name` is written only by the thread that took the slot (with `dir` at -1, so the
// handler does not read it), and read by the handler only while `dir` is set.
unsafe impl Sync for TempSlot {}

static TEMPS: [TempSlot; TEMP_SLOTS] = [const {
    TempSlot {
        dir: AtomicI32::new(-1),
        len: AtomicUsize::new(0),
        name: UnsafeCell::new([0; TEMP_NAME_MAX + 1]),
    }
}; TEMP_SLOTS];

/// Slots taken (a slot is taken by swapping its bit in).
static TAKEN: AtomicUsize = AtomicUsize::new(0);

/// A temporary file that a signal removes: registered before the name exists, deregistered
/// once it no longer does (renamed into place, or removed). Dropping it deregisters it.
pub struct TempName {
    slot: Option<usize>,
}

impl TempName {
    /// Registers `name` in the directory open as `dir` (which must stay open while
    /// registered). A name that is too long, or a full table, is not registered: the file is
    /// then only removed by an orderly stop.
    pub fn register(dir: libc::c_int, name: &[u8]) -> TempName {
        if name.len() > TEMP_NAME_MAX || name.contains(&0) {
            return TempName { slot: None };
        }
        let slot =
            (0..TEMP_SLOTS).find(|&i| TAKEN.fetch_or(1 << i, Ordering::SeqCst) & (1 << i) == 0);
        if let Some(i) = slot {
            let entry = &TEMPS[i];
            // SAFETY: the slot is ours (its bit was clear) and `dir` is -1, so the handler
            // does not read the name while it is written.
            unsafe {
                let buf = &mut *entry.name.get();
                buf[..name.len()].copy_from_slice(name);
                buf[name.len()] = 0;
            }
            entry.len.store(name.len(), Ordering::SeqCst);
            entry.dir.store(dir, Ordering::SeqCst);
        }
        TempName { slot }
    }
}

impl Drop for TempName {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            TEMPS[i].dir.store(-1, Ordering::SeqCst);
            TAKEN.fetch_and(!(1 << i), Ordering::SeqCst);
        }
    }
}

/// Removes every registered temporary file. Async-signal-safe: atomics and `unlinkat`.
fn remove_temps() {
    for entry in &TEMPS {
        let dir = entry.dir.swap(-1, Ordering::SeqCst);
        if dir >= 0 {
            // SAFETY: the name is NUL-terminated and stays written while `dir` was set.
            unsafe {
                libc::unlinkat(dir, (*entry.name.get()).as_ptr().cast(), 0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn registered_temporary_files_are_removed_and_deregistered_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let handle = std::fs::File::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("a.tmp"), b"x").unwrap();
        std::fs::write(dir.path().join("b.tmp"), b"x").unwrap();
        let a = TempName::register(handle.as_raw_fd(), b"a.tmp");
        let b = TempName::register(handle.as_raw_fd(), b"b.tmp");
        drop(b);
        remove_temps();
        assert!(!dir.path().join("a.tmp").exists());
        assert!(dir.path().join("b.tmp").exists());
        drop(a);
        // Too long a name is not registered (and not cut short).
        let long = TempName::register(handle.as_raw_fd(), &[b'x'; TEMP_NAME_MAX + 1]);
        assert!(long.slot.is_none());
    }
}
