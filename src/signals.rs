//! An orderly stop on SIGINT and SIGTERM.
//!
//! Killed outright, sumpool could leave half a line at the end of a manifest: a block of
//! output can be cut inside a `write` to a full pipe. Instead, the first SIGINT or SIGTERM only
//! sets a flag. The run loop sees it within a fraction of a second, stops dispatching work,
//! workers abandon the file they are in at the next block, the lines already formatted are
//! written out whole, and then the process ends by the same signal with its default action,
//! so the shell sees the usual status (130 for Ctrl-C, 143 for SIGTERM). A second signal
//! while stopping ends the process at once.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// The signal that asked the run to stop, or 0.
static STOP: AtomicI32 = AtomicI32::new(0);

/// Whether a progress bar is on the terminal, so a dying process should erase its line.
static BAR_ACTIVE: AtomicBool = AtomicBool::new(false);

/// Tells the handler whether a progress bar is shown on stderr.
pub fn set_bar_active(active: bool) {
    BAR_ACTIVE.store(active, Ordering::SeqCst);
}

extern "C" fn on_signal(signal: libc::c_int) {
    // A second signal: the user insists; die the default way right now.
    if STOP.swap(signal, Ordering::SeqCst) != 0 {
        const ERASE_LINE: &[u8] = b"\r\x1b[2K";
        // SAFETY: write, signal and raise are async-signal-safe; the buffer is static.
        unsafe {
            if BAR_ACTIVE.load(Ordering::SeqCst) {
                libc::write(2, ERASE_LINE.as_ptr().cast(), ERASE_LINE.len());
            }
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
    }
}

/// Installs the handlers for SIGINT and SIGTERM. Without SA_RESTART, so a worker blocked in a
/// read of a FIFO or a terminal returns to look at the flag. Also installs a handler that
/// does nothing for [`WAKE`], the signal aimed at a reader thread stuck in a read, so that
/// the read returns `EINTR` where the file system allows it.
pub fn install() {
    let handlers = [
        (libc::SIGINT, on_signal as extern "C" fn(libc::c_int)),
        (libc::SIGTERM, on_signal),
        (WAKE, on_wake),
    ];
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
    // SAFETY: restoring the default action and raising a signal have no preconditions.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
    // Only reached if the signal was blocked: exit with the status a shell would report.
    std::process::exit(128 + signal)
}
