//! A run: the work of a command on reader and hashing threads, the results handed back in
//! input order. This module is the orchestrator, and what it does runs on the calling
//! thread: it starts the others, then prints in order until the end.
//!
//! SHA-256 is sequential inside one file, so the parallelism is across files, and a file is
//! the unit of work; reading is apart from hashing, because a checksummer mostly waits on
//! storage: cold caches, flash that wants tens of requests in flight, network file systems
//! where each open and read is a round trip. The threads, one module each:
//!
//! | thread | module | does |
//! | --- | --- | --- |
//! | readers (by device policy) | [`reader`] | open and read; hash small files and files read whole (several at once); hand large ones to a worker, reading ahead of it (mapped) or reading them in chunks for it (network file systems) |
//! | workers (one per `-j`) | [`worker`] | hash large files, several at once: mapped window by window (local file systems), or from their reader's chunks |
//! | calling thread | this module, [`feeder`], [`supervisor`] | numbers and plans the items and queues requests, at most [`Tuning::window`] ahead of the output, and looks ahead for large files; results in order to the [`Sink`]; signals; flushes while it waits; the stall timeout and rescue |
//!
//! The queues between them, and the lock order, are in [`state`]; the results' way back is
//! [`handoff`]; memory for files read whole is [`buffers`]. What depends on the machine
//! (how many readers, which requests a reader takes, when the extra readers come in, how a
//! file is read) is decided by the pure functions of `engine::policy`.
//!
//! Readers are threads of their own, not of a pool the run waits for: one stuck in the
//! kernel (a dead NFS server, a hung FUSE daemon) holds nothing but itself. On a stop, the
//! calling thread returns with whole lines written, and readers that are stuck are
//! interrupted with a signal ([`signals::WAKE`]) where the file system allows it.
//!
//! Memory stays bounded whatever the number of items: at most `window` items are between the
//! feeder and the output, files read whole take at most `buffers::WHOLE_BUDGET` bytes, and
//! large files are streamed a few chunks at a time, a few files at once.

mod buffers;
mod feeder;
mod handoff;
mod limits;

pub use limits::{Deadline, Limits};
mod reader;
mod state;
mod supervisor;
mod worker;

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use rayon::ThreadPool;

use crate::digest::Algorithms;
use crate::engine::calibrate;
use crate::engine::policy::{self, IoPolicy, Slowness};
use crate::engine::read::Hashing;
use crate::engine::source::{OwnFiles, Source};
use crate::engine::storage::{Disk, Storage};
use crate::format::state::FileState;
use crate::report::Failure;
use crate::signals;

use buffers::{Budget, WHOLE_BUDGET};
use handoff::{Reorder, Results};
use state::{Counters, ReaderSlot, Requests, Shared, StreamSlots, lock};

#[cfg(test)]
mod tests;

/// Sizes that bound dispatch cost and memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// Most requests a reader takes from the queue at once.
    pub batch_size: usize,
    /// Most items between the feeder and the output.
    pub window: usize,
    /// Files each reader or worker hashes at once (1 to 4); 0 lets the CPU decide
    /// (`engine::calibrate`).
    pub lanes: usize,
}

impl Default for Tuning {
    /// From whole-process benchmarks on 2 cores (docs/benchmarks.md has the tables).
    ///
    /// `batch_size` 64: readers take requests in batches of up to this many, so that on
    /// trees of tiny files, where a file costs a few microseconds, the locks are shared by
    /// many files. A reader takes no more than its share of what is queued, so on slow
    /// storage every reader has requests.
    ///
    /// `window` 4096 items. A large file is seen, opened and started first as long as it is
    /// within the window of the output; and while one worker is inside a large file the
    /// others go on only as far as the window reaches. Each waiting result is a path and a
    /// digest, about 150 bytes, so 4096 of them cost well under a megabyte.
    fn default() -> Tuning {
        Tuning {
            batch_size: 64,
            window: 4096,
            lanes: 0,
        }
    }
}

/// What the command makes of an item's hash, given the outcome. `'static`: readers are
/// threads the run does not wait for.
pub enum Then<R> {
    /// A function of the item's own. (A closure that captures nothing costs no allocation.)
    Own(Box<dyn FnOnce(Result<Hashing, Failure>) -> R + Send + 'static>),
    /// A function shared by many items, called with the number the command gave this one.
    /// For a function that needs data of each item (`hash --update`: the item's entry in the
    /// old manifest): boxing a closure that captures it cost an allocation per file, made on
    /// the feeder and freed on a reader, which queued both on the feeder's allocator lock.
    Tagged(Tagged<R>, u64),
}

/// The shared function of [`Then::Tagged`].
pub type Tagged<R> = Arc<dyn Fn(u64, Result<Hashing, Failure>) -> R + Send + Sync + 'static>;

impl<R> Then<R> {
    /// The command's result from the outcome.
    pub fn call(self, result: Result<Hashing, Failure>) -> R {
        match self {
            Then::Own(then) => then(result),
            Then::Tagged(then, tag) => then(tag, result),
        }
    }
}

/// What to do with one item.
pub enum Plan<R> {
    /// The result is known without reading anything.
    Done(R),
    /// Hash `source` with `algorithm`, then make the result with `then`.
    Hash {
        /// What to hash.
        source: Source,
        /// With which algorithm.
        algorithm: Algorithms,
        /// Do not read it if a stat of it, taken first, says this: the state recorded with
        /// its digest (`hash --update`). The result is then [`Hashing::Unchanged`].
        unless: Option<FileState>,
        /// The result, from the outcome.
        then: Then<R>,
    },
}

/// Where results go, in input order: the one place that prints.
pub trait Sink<R> {
    /// What stops the run (stdout closed or full).
    type Error;
    /// Takes the next result.
    fn put(&mut self, result: R) -> Result<(), Self::Error>;
    /// Makes what was put so far visible (called when the run waits on slow work).
    fn flush(&mut self) -> Result<(), Self::Error>;
}

/// How a run ended when the sink did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Every item was processed and handed to the sink.
    Finished,
    /// A signal asked to stop; results after the stop were dropped.
    Interrupted(i32),
    /// A thread the run needed could not be started (the `errno` of the failure): the run
    /// stopped, and its results are incomplete. A fatal error ([`thread_error`]).
    NoThread(i32),
    /// The time box ended the run ([`Deadline`]): items not started by then came back as
    /// [`Hashing::NotReached`]; `abandoned` items still in flight after the grace were given
    /// up, and no result of theirs was handed to the sink.
    OutOfTime {
        /// Items given up after the grace.
        abandoned: u64,
    },
}

/// Why a thread could not be started, as an error to end the run with.
#[derive(Debug)]
pub struct ThreadError(pub std::io::Error);

impl std::fmt::Display for ThreadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot start a thread: {}",
            crate::report::io_reason(&self.0)
        )
    }
}

impl std::error::Error for ThreadError {}

/// The error for [`Completion::NoThread`].
pub fn thread_error(errno: i32) -> std::io::Error {
    std::io::Error::other(ThreadError(std::io::Error::from_raw_os_error(errno)))
}

/// Whether `error` is a [`thread_error`] (not a failure of the output).
pub fn is_thread_error(error: &std::io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<ThreadError>())
}

/// Everything a run needs besides its items: the worker pool, sizes, and the I/O policy.
pub struct Engine<'a> {
    /// The hashing workers.
    pub pool: &'a ThreadPool,
    /// Batch, window and lanes.
    pub tuning: Tuning,
    /// How many readers, in which order, and when a file has stalled.
    pub io: IoPolicy,
    /// Files never to hash, whatever they are called (the manifest being written).
    pub skip: Arc<OwnFiles>,
    /// A read rate, the page cache, a time box.
    pub limits: Limits,
    /// Where the bytes come from.
    pub(crate) storage: Arc<dyn Storage>,
}

impl<'a> Engine<'a> {
    /// An engine over the file system, with no limits.
    pub fn new(pool: &'a ThreadPool, tuning: Tuning, io: IoPolicy, skip: Arc<OwnFiles>) -> Self {
        Engine {
            pool,
            tuning,
            io,
            skip,
            limits: Limits::default(),
            storage: Arc::new(Disk),
        }
    }

    /// The engine, held to `limits`.
    pub fn with_limits(self, limits: Limits) -> Self {
        Engine { limits, ..self }
    }
}

/// Runs every item through `plan` and the engine, and hands the results to `sink` in the
/// order the items came from `items`. Stops early, and returns the error, if the sink fails;
/// stops early with [`Completion::Interrupted`] if a signal asks to.
pub fn run<T, R, S, P>(
    engine: &Engine<'_>,
    items: impl Iterator<Item = T> + Send,
    plan: P,
    sink: &mut S,
) -> Result<Completion, S::Error>
where
    T: Send,
    R: Send + 'static,
    S: Sink<R>,
    P: Fn(T) -> Plan<R> + Sync,
{
    let workers = engine.pool.current_num_threads().max(1);
    let cores = available_cores();
    let readers = engine.io.readers.max(1);
    let core = policy::core_readers(&engine.io, cores).min(readers);
    let (run_over_tx, run_over) = crossbeam_channel::bounded::<()>(0);
    let shared = new_shared(engine, (readers, core, workers), run_over);
    for index in 0..core {
        reader::spawn(Arc::clone(&shared), index);
    }
    // The extra readers start when first called for (by a weak reference: the run's state
    // must not own itself).
    let weak = Arc::downgrade(&shared);
    *lock(&shared.start_extras) = Some(Box::new(move || {
        if let Some(shared) = weak.upgrade() {
            for index in core..readers {
                reader::spawn(Arc::clone(&shared), index);
            }
        }
    }));
    // Threads of their own, not of the run's rayon pool: a worker hashing BLAKE3 spreads a
    // window over rayon's global pool (`Hasher::update_parallel`), which only threads off
    // any pool do; and like readers they are not joined (a page of a dying local disk may
    // hold one in the kernel).
    for index in 0..workers {
        let worker = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name(format!("sumpool-worker-{index}"))
            .spawn(move || worker::work(&worker));
        if let Err(e) = spawned {
            shared.thread_failed(&e);
        }
    }
    let mut feeder = feeder::Feeder::new(items, plan);
    let result = print_in_order(&shared, &mut feeder, sink);
    end(&shared, &result);
    drop(run_over_tx);
    shared.budget.close();
    shared.stream_slots.wake_all();
    // Streams no worker took: their readers, waiting to send, see the channel close.
    lock(&shared.streams).clear();
    result
}

/// How a run whose every item was handed to the sink ended: finished, or cut by its time
/// box.
fn complete<R>(shared: &Shared<R>) -> Completion {
    if shared.cut.load(Ordering::Acquire) {
        Completion::OutOfTime { abandoned: 0 }
    } else {
        Completion::Finished
    }
}

/// Gives up the items still in flight when the time box's grace is over; what came in
/// behind them, up to `fed`, is handed on.
fn give_up<R, S: Sink<R>>(
    pending: &mut Reorder<R>,
    fed: u64,
    sink: &mut S,
) -> Result<Completion, S::Error> {
    let mut abandoned = 0;
    while pending.next() < fed {
        match pending.pop_given_up() {
            Some(result) => sink.put(result)?,
            None => abandoned += 1,
        }
    }
    Ok(Completion::OutOfTime { abandoned })
}

/// Whether the time box's grace is over, with items still in flight.
fn past_grace<R>(shared: &Shared<R>) -> bool {
    shared.cut.load(Ordering::Acquire)
        && shared
            .limits
            .deadline
            .is_some_and(|d| Instant::now() >= d.at + d.grace)
}

/// The cores of this machine, asked once: the standard library reads the cgroup's CPU quota
/// from /proc and /sys at every call (nine system calls).
fn available_cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// Tells every thread the run is over (cancelled, if it did not finish).
fn end<R, E>(shared: &Shared<R>, result: &Result<Completion, E>) {
    let mut requests = shared.requests();
    requests.finished = true;
    if !matches!(result, Ok(Completion::Finished)) {
        requests.cancelled = true;
    }
    drop(requests);
    shared.requests_cv.notify_all();
    shared.extras_cv.notify_all();
    if let Some(pace) = &shared.pace {
        pace.end();
    }
    if matches!(
        result,
        Ok(Completion::Interrupted(_) | Completion::OutOfTime { .. })
    ) {
        supervisor::interrupt_readers(shared);
    }
}

/// The shared state of a new run with `readers` readers, the first `core` of which always
/// take requests, and `workers` workers.
fn new_shared<R>(
    engine: &Engine<'_>,
    (readers, core, workers): (usize, usize, usize),
    run_over: crossbeam_channel::Receiver<()>,
) -> Arc<Shared<R>> {
    Arc::new(Shared {
        requests: Mutex::new(Requests::default()),
        requests_cv: Condvar::new(),
        extras_cv: Condvar::new(),
        readers: Mutex::new((0..readers).map(|i| ReaderSlot::new(i < core)).collect()),
        start_extras: Mutex::new(None),
        extras_started: AtomicBool::new(false),
        slowness: Mutex::new(Slowness::default()),
        streams: Mutex::new(Vec::new()),
        stream_slots: StreamSlots::new(policy::streams_max(workers)),
        wake_workers: crossbeam_channel::bounded(workers.max(1)),
        run_over,
        results: Results::default(),
        thens: (0..engine.tuning.window.max(1))
            .map(|_| Mutex::new(None))
            .collect(),
        printed: AtomicU64::new(0),
        queued: AtomicUsize::new(0),
        no_thread: AtomicI32::new(0),
        budget: Arc::new(Budget::new(WHOLE_BUDGET)),
        counters: Counters::default(),
        storage: Arc::clone(&engine.storage),
        skip: Arc::clone(&engine.skip),
        limits: engine.limits,
        pace: engine
            .limits
            .bwlimit
            .map(|rate| Arc::new(limits::Pace::new(rate))),
        cut: AtomicBool::new(false),
        tuning: engine.tuning,
        io: engine.io.clone(),
        core_readers: core,
        lanes: calibrate::lanes(engine.tuning.lanes),
        streaming: AtomicUsize::new(0),
        workers,
        idle_workers: AtomicUsize::new(0),
    })
}

/// The calling thread: feeds the run, and hands the results in order to the sink; flushes
/// while it waits, looks for signals, and supervises the readers.
fn print_in_order<T, R: Send + 'static, S: Sink<R>, I: Iterator<Item = T>, P>(
    shared: &Arc<Shared<R>>,
    feeder: &mut feeder::Feeder<I, P>,
    sink: &mut S,
) -> Result<Completion, S::Error>
where
    P: Fn(T) -> Plan<R>,
{
    let mut pending = Reorder::default();
    let mut arrived = Vec::new();
    let mut unflushed = false;
    let mut printed = 0u64;
    // Wake up for a good handful of results, not for each one: a result this far past the
    // next one arrives about when the ones before it are in. Only for one already fed; else
    // for the next one the sink needs.
    let ahead = (shared.tuning.batch_size / 2).max(1);
    loop {
        if let Some(signal) = signals::stop_requested() {
            return Ok(Completion::Interrupted(signal));
        }
        if let Some(errno) = shared.thread_failure() {
            return Ok(Completion::NoThread(errno));
        }
        let fed = match feeder.feed(shared, printed) {
            feeder::Fed::Cancelled => return Ok(Completion::Finished),
            feeder::Fed::Some(n) => n,
            feeder::Fed::Done if printed == feeder.seq => return Ok(complete(shared)),
            feeder::Fed::Done => 0,
        };
        // Items were fed: look at what came and feed on; else wait for results (or scout).
        let waited = if fed > 0 || feeder.scout(shared) {
            shared.results.take_into(&mut arrived);
            false
        } else {
            let later = pending.first_missing_from(ahead);
            let wake_at = if later < feeder.seq {
                later
            } else {
                pending.next()
            };
            shared.results.collect_into(wake_at, &mut arrived)
        };
        for (seq, result) in arrived.drain(..) {
            pending.insert(seq, result);
        }
        while signals::stop_requested().is_none() {
            let Some(result) = pending.pop_ready() else {
                break;
            };
            sink.put(result)?;
            printed += 1;
            unflushed = true;
        }
        shared.printed.store(printed, Ordering::Release);
        if matches!(feeder.feed_state(), feeder::Fed::Done) && printed == feeder.seq {
            return Ok(complete(shared));
        }
        if past_grace(shared) {
            return give_up(&mut pending, feeder.seq, sink);
        }
        // Nothing arrived for a while: a slow file holds the output. What is printed must
        // reach a pipe or a file now, not when the buffer fills.
        if waited && unflushed {
            sink.flush()?;
            unflushed = false;
        }
        if waited {
            supervisor::watch_stalls(shared);
            // A reader that waits on one file gives up what it holds of the others.
            supervisor::rescue(shared);
        }
    }
}
