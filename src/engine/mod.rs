//! From inputs to an ordered stream of digests: walking, scheduling, reading, hashing.
//!
//! - `walk` turns command-line inputs into an ordered stream of [`source::Source`]s, and
//!   decides what is skipped or failed on the way (it runs on the calling thread, pulled by
//!   the feeder of `run`);
//! - `run` runs items on reader and worker threads and hands the results back in input
//!   order, on the calling thread: one module per kind of thread inside;
//! - `policy` holds what depends on the machine, as pure functions: how many readers, in
//!   which order, when the extra readers come in, how each file is read; `device` gathers
//!   the facts it decides from (file system, disk, virtual machine, open-file limit);
//! - `storage` is where the bytes come from (the file system, or a test's fake); `mapped`
//!   reads large local files through guarded memory maps;
//! - `lanes` and [`multibuf`] hash several files at once per core; `calibrate` measures
//!   whether that gains on this CPU;
//! - `read` holds the outcomes of hashing and the "changed while being read" check;
//!   `source` the nouns the others share; `load` reads a manifest file in parts.
//!
//! The engine knows nothing of commands, of output formats or of the progress bar: it turns
//! items into results (`Hashed` or a [`crate::report::Failure`]) and gives them back. It
//! never writes to stdout or stderr. `ARCHITECTURE.md` maps its threads, queues and locks.
//!
//! # What is public, and why
//!
//! Everything is `pub(crate)` but what the configuration, the benches and the integration
//! tests name from outside the crate:
//!
//! - [`Tuning`] (batch, window, lanes), [`walk::WalkOptions`] (with [`walk::Exclude`] and
//!   [`walk::Shard`]) and [`read::HashOptions`] (with [`source::FileId`]): fields of the
//!   public [`crate::config::Config`], which benches and tests build;
//! - [`read::hash_reader`] and [`read::BLOCK_SIZE`]: the one-stream baseline of
//!   `benches/hashing.rs`; [`multibuf`]'s `compress` and constants: its lanes benchmark;
//! - [`lost_wakeups`]: `tests/engine.rs` asserts it stays zero;
//! - [`read::Hashing`], [`read::Hashed`] and [`source::Source`] (with [`source::DirHandle`]):
//!   the public `cmd::hash::update::Updater` takes and returns them.
//!
//! The threads of a run (`run`), the policy, the device facts, storage, maps and lanes are
//! the engine's own: changing them changes no API.

/// Waits that timed out and then found their work ready: lost wake-ups. Every wait in the
/// engine has a timeout only as a safety net; a wake-up that went missing shows up here, and
/// the engine's tests assert that it stays zero across reader and worker settings.
static LOST_WAKEUPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Lost wake-ups in this process so far: waits that timed out and then found their work
/// ready. Every wait in the engine has a timeout only as a safety net, so this stays zero
/// unless a notification went missing.
pub fn lost_wakeups() -> u64 {
    LOST_WAKEUPS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Counts a wait that timed out and then found its work ready.
pub(crate) fn count_lost_wakeup(timed_out: bool, ready: bool) {
    if timed_out && ready {
        LOST_WAKEUPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

pub(crate) mod calibrate;
pub(crate) mod device;
pub(crate) mod lanes;
pub(crate) mod load;
pub(crate) mod mapped;
pub mod multibuf;
pub(crate) mod policy;
pub mod read;
pub(crate) mod run;
pub mod source;
pub(crate) mod storage;
pub mod walk;

pub use run::Tuning;
