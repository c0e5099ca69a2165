//! An orderly stop on the signals that end a process, and a guarantee that it ends.
//!
//! Killed outright, sumpool could leave half a line at the end of a manifest: a block of
//! output can be cut inside a `write` to a full pipe. Instead, the first SIGINT, SIGTERM or
//! SIGHUP (and SIGALRM, SIGUSR1, SIGXCPU, SIGVTALRM, SIGPROF, whose default action also ends
//! a process: `timeout -s ALRM`, a CPU limit) only sets a flag. The run loop sees it within a
//! fraction of a second, stops dispatching work, interrupts the readers blocked in a read,
//! the lines already formatted are written out whole, the temporary manifest is removed, and
//! then the process ends by the same signal with its default action, so the shell sees the
//! usual status (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP).
//!
//! The main thread may be blocked where it cannot look at the flag: in the `open` of a FIFO
//! that no one reads (`-o fifo`), in a `statfs` that a dead file server never answers, in a
//! `write` to a pipe that is full and stays full. Worse, a signal handler runs on the thread
//! the kernel delivers to, and a thread inside a FUSE request the daemon holds never returns
//! to run it. So the signals are not handled at all: [`install`] blocks them in every thread
//! before any other starts, and one thread of its own, the *watchdog*, takes them with
//! `sigwaitinfo` (a thread that always gets them, and only waits for them). On the first, it
//! sets the flag; if the process is still there [`GRACE`] later, or a second signal comes,
//! it removes the temporary files, lets go of standard output, and ends the process by the
//! signal ([`die_now`]). SIGQUIT does that at once (with its core dump, as the user asked).
//!
//! Temporary files are removed by name from a fixed table ([`TempName`]), with `unlinkat`
//! on an open directory: nothing there allocates or locks, so the same code also serves the
//! fallback of handlers when the watchdog cannot start.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::time::Duration;

/// The signal that asked the run to stop, or 0.
static STOP: AtomicI32 = AtomicI32::new(0);

/// Whether a progress bar is on the terminal, so a dying process should erase its line.
static BAR_ACTIVE: AtomicBool = AtomicBool::new(false);

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

/// Tells the watchdog whether a progress bar is shown on stderr.
pub fn set_bar_active(active: bool) {
    BAR_ACTIVE.store(active, Ordering::SeqCst);
}

/// The set of the signals the watchdog takes: [`ORDERLY`] and SIGQUIT.
fn watched_set() -> libc::sigset_t {
    // SAFETY: sigemptyset and sigaddset initialise and fill the set they are given.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in ORDERLY.iter().chain([&libc::SIGQUIT]) {
            libc::sigaddset(&mut set, *signal);
        }
        set
    }
}

/// Takes the watched signals in the calling thread, which every thread started from it
/// after this inherits, then starts the watchdog; or, if it cannot start, installs handlers
/// instead (without SA_RESTART, so a thread blocked in a read returns to look at the flag).
/// Also installs a handler that does nothing for [`WAKE`], the signal aimed at a reader
/// thread stuck in a read, so that the read returns `EINTR` where the file system allows it.
pub fn install() {
    let set = watched_set();
    // SAFETY: blocking signals in the calling thread; the set is initialised.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    let spawned = std::thread::Builder::new()
        .name("sumpool-watchdog".into())
        .stack_size(64 << 10)
        .spawn(watch);
    let mut handlers: Vec<(libc::c_int, extern "C" fn(libc::c_int))> = vec![(WAKE, on_wake)];
    if spawned.is_err() {
        // SAFETY: unblocking what was just blocked, in the calling thread.
        unsafe {
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
        handlers.extend(
            ORDERLY
                .iter()
                .map(|&s| (s, on_signal as extern "C" fn(libc::c_int))),
        );
        handlers.push((libc::SIGQUIT, on_quit));
    }
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

/// The watchdog: takes the first signal and sets the flag, gives the orderly stop [`GRACE`]
/// (a second signal cuts it short), then ends the process.
fn watch() {
    let set = watched_set();
    let signal = loop {
        // SAFETY: waiting for signals of a set that this thread blocks (inherited).
        let signal = unsafe { libc::sigwaitinfo(&set, std::ptr::null_mut()) };
        if signal > 0 {
            break signal;
        }
    };
    if signal == libc::SIGQUIT {
        die_now(signal);
    }
    STOP.store(signal, Ordering::SeqCst);
    let grace = libc::timespec {
        tv_sec: GRACE.as_secs() as libc::time_t,
        tv_nsec: GRACE.subsec_nanos() as libc::c_long,
    };
    // SAFETY: as above, with a timeout; EAGAIN when it passes without a signal.
    unsafe {
        libc::sigtimedwait(&set, std::ptr::null_mut(), &grace);
    }
    die_now(signal);
}

extern "C" fn on_signal(signal: libc::c_int) {
    // A second signal: the user insists; die the default way right now.
    if STOP.swap(signal, Ordering::SeqCst) != 0 {
        die_now(signal);
    }
}

extern "C" fn on_quit(signal: libc::c_int) {
    die_now(signal);
}

/// Removes the temporary files, erases the progress bar, lets go of standard output and
/// error, and ends the process by `signal` with its default action. Async-signal-safe.
///
/// A thread stuck in the kernel (a FUSE request its daemon holds, a hard NFS mount) keeps
/// the process from exiting, and with it its descriptors, whatever the signal: so the
/// standard streams are replaced by `/dev/null` first, and a pipe into `sha256sum -c` or a
/// CI log sees its end now, not when the kernel lets the thread go.
fn die_now(signal: libc::c_int) -> ! {
    const ERASE_LINE: &[u8] = b"\r\x1b[2K";
    remove_temps();
    // SAFETY: write, open, dup2, signal, sigprocmask and raise are async-signal-safe; the
    // buffers are static.
    unsafe {
        if BAR_ACTIVE.load(Ordering::SeqCst) {
            libc::write(2, ERASE_LINE.as_ptr().cast(), ERASE_LINE.len());
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if null >= 0 {
            libc::dup2(null, 1);
            libc::dup2(null, 2);
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
