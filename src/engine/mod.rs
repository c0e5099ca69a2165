//! From inputs to an ordered stream of digests: walking, scheduling, reading, SHA-256.
//!
//! - [`walk`] turns command-line inputs into an ordered stream of [`source::Source`]s, and
//!   decides what is skipped or failed on the way.
//! - [`pool`] runs items on worker threads in batches and hands results back in input order,
//!   in a bounded window.
//! - [`lanes`] is the pool job that hashes several files at once per worker, through the
//!   interleaved SHA-256 of [`multibuf`]; [`read`] hashes one source at a time (reads, or
//!   memory maps through [`mapped`]) and owns the "changed while being read" check.
//! - [`source`] holds the nouns they share: what to read, and the open directory it is in.
//! - [`load`] reads a manifest file into memory in parts, on the worker threads.
//!
//! The engine knows nothing of commands, of output formats or of the progress bar: it turns
//! items into results (`Hashed` or a [`crate::report::Failure`]) and gives them back. It
//! never writes to stdout or stderr.

/// Waits that timed out and then found their work ready: lost wake-ups. Every wait in the
/// engine has a timeout only as a safety net; a wake-up that went missing shows up here, and
/// the engine's tests assert that it stays zero across reader and worker settings.
static LOST_WAKEUPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Lost wake-ups in this process so far (see [`LOST_WAKEUPS`]).
pub fn lost_wakeups() -> u64 {
    LOST_WAKEUPS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Counts a wait that timed out and then found its work ready.
pub(crate) fn count_lost_wakeup(timed_out: bool, ready: bool) {
    if timed_out && ready {
        LOST_WAKEUPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

pub mod io;
pub mod lanes;
pub mod load;
pub mod mapped;
pub mod multibuf;
pub mod policy;
pub mod pool;
pub mod read;
mod shared;
pub mod source;
pub mod walk;
