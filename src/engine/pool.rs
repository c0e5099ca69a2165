//! Running the work of a command on reader and hashing threads, and handing the results back
//! in input order.
//!
//! SHA-256 is sequential inside one file, so the parallelism is across files, and a file is
//! the unit of work; reading is separated from hashing, because a checksummer mostly waits on
//! storage: cold caches, flash that wants tens of requests in flight, network file systems
//! where each open and read is a round trip. Four kinds of thread share the run:
//!
//! - the *feeder* (one thread) pulls items from the input (the walk, a checksum list), numbers
//!   them, and plans each one ([`Plan`]): a result known at once, or a source to hash. It
//!   never runs more than [`Tuning::window`] items ahead of the output.
//! - *readers* (`io`; as many as the device policy says, tens on flash or a network file
//!   system, two on a spinning disk) open the files, read small ones whole, hash the tiniest
//!   themselves, and prepare large ones for streaming. Many requests are in flight at once,
//!   in walk order or, on a spinning disk, in inode order.
//! - *hashing workers* (`lanes`; the rayon pool, one per core) take what the readers
//!   prepared, largest file first, so that a large file anywhere in the window starts early
//!   and no core idles while it finishes, then the rest in walk order; they hash several
//!   files at once per core, and never touch the file system, so a stuck read cannot stop
//!   them.
//! - the *calling thread* puts results back in input order and hands them to the [`Sink`],
//!   the one place that prints. It never blocks on storage: it waits on results for at most
//!   [`POLL`] at a time, flushes the sink when it waited (so lines finished while a slow file
//!   is read reach a pipe or a file within a fraction of a second), watches for SIGINT and
//!   SIGTERM, and gives up on a file that makes no progress for `--stall-timeout`.
//!
//! Readers are threads of their own, not of a pool the run waits for: one stuck in the kernel
//! (a dead NFS server, a hung FUSE daemon) holds nothing but itself. On a stop, the calling
//! thread returns with whole lines written, and readers that are stuck are interrupted with a
//! signal ([`signals::WAKE`]) where the file system allows it.
//!
//! Memory stays bounded whatever the number of items: at most `window` items are between the
//! feeder and the output, files read whole take at most [`io::WHOLE_BUDGET`] bytes, and a
//! large file at most two chunks at a time.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use rayon::ThreadPool;

use crate::digest::Algorithms;
use crate::engine::io;
use crate::engine::lanes;
use crate::engine::policy::IoPolicy;
use crate::engine::shared::{BufferPool, Mailbox, POLL, Reader, Request, Shared, State};
pub use crate::engine::shared::{Tagged, Then, Tuning};
use crate::engine::source::{FileId, Source};
use crate::format::state::FileState;
use crate::signals;

/// How a run ended when the sink did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Every item was processed and handed to the sink.
    Finished,
    /// A signal asked to stop; results after the stop were dropped.
    Interrupted(i32),
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

/// A sink from a function; `flush` does nothing.
pub struct FnSink<F>(pub F);

impl<R, E, F: FnMut(R) -> Result<(), E>> Sink<R> for FnSink<F> {
    type Error = E;
    fn put(&mut self, result: R) -> Result<(), E> {
        (self.0)(result)
    }
    fn flush(&mut self) -> Result<(), E> {
        Ok(())
    }
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
    pub skip: Vec<FileId>,
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
    let readers = engine.io.readers.max(1);
    let core = io::core_readers(&engine.io).min(readers);
    let shared = new_shared(engine, readers, core);
    for index in 0..core {
        io::spawn_reader(Arc::clone(&shared), index);
    }
    // The extra readers start when first called for (by a weak reference: the run's state
    // must not own itself).
    let weak = Arc::downgrade(&shared);
    *shared
        .start_extras
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Box::new(move || {
        if let Some(shared) = weak.upgrade() {
            for index in core..readers {
                io::spawn_reader(Arc::clone(&shared), index);
            }
        }
    }));
    for _ in 0..workers {
        let shared = Arc::clone(&shared);
        engine.pool.spawn(move || lanes::work(&shared));
    }
    let result = std::thread::scope(|scope| {
        let feeder = Arc::clone(&shared);
        let plan = &plan;
        std::thread::Builder::new()
            .name("sumpool-feeder".into())
            .spawn_scoped(scope, move || feed(&feeder, items, plan))
            .map_err(|_| ())
            .ok();
        let result = print_in_order(&shared, sink);
        // Everyone leaves: the feeder (joined at the end of this scope), the workers, and
        // the readers that are not stuck.
        let mut state = shared.lock();
        state.finished = true;
        if !matches!(result, Ok(Completion::Finished)) {
            state.cancelled = true;
        }
        drop(state);
        shared.feeder_cv.notify_all();
        shared.readers_cv.notify_all();
        shared.extra_cv.notify_all();
        shared.workers_cv.notify_all();
        if matches!(result, Ok(Completion::Interrupted(_))) {
            io::interrupt_readers(&shared);
        }
        result
    });
    shared.buffers.close();
    result
}

/// The shared state of a new run with `readers` readers, the first `core` of which always
/// take requests.
fn new_shared<R>(engine: &Engine<'_>, readers: usize, core: usize) -> Arc<Shared<R>> {
    Arc::new(Shared {
        state: Mutex::new(State::new(
            (0..readers)
                .map(|index| Reader {
                    core: index < core,
                    ..Reader::default()
                })
                .collect(),
        )),
        readers_cv: Condvar::new(),
        extra_cv: Condvar::new(),
        start_extras: Mutex::new(None),
        extras_started: AtomicBool::new(false),
        workers_cv: Condvar::new(),
        feeder_cv: Condvar::new(),
        mailbox: Mailbox::default(),
        buffers: Arc::new(BufferPool::new(io::WHOLE_BUDGET)),
        skip: engine.skip.clone(),
        tuning: engine.tuning,
        io: engine.io.clone(),
        thens: (0..engine.tuning.window.max(1))
            .map(|_| Mutex::new(None))
            .collect(),
        printed: AtomicU64::new(0),
        queued: AtomicUsize::new(0),
        watched: AtomicBool::new(engine.io.stall_timeout.is_some()),
        nowait_unsupported: AtomicBool::new(false),
        misses: AtomicU64::new(0),
        opened_files: AtomicU64::new(0),
        opened_bytes: AtomicU64::new(0),
    })
}

/// Requests the feeder gathers before it queues them, when the readers have enough to do:
/// one lock for many requests.
const FEED_BATCH: usize = 16;

/// Below this many requests queued, the readers may run dry: the feeder queues each request
/// at once. (When the input is slow to come, the readers drain the queue, so what the feeder
/// has is never held back waiting for more.)
const QUEUE_LOW: usize = 32;

/// The feeder: numbers and plans the items, and queues what needs reading. Plans are made
/// outside the lock (a plan may look a name up in a manifest), and so is the pull of the
/// next item (the walk may wait on a cold directory, a list on a pipe); requests are queued
/// a few at a time while the readers have plenty.
fn feed<T, R: Send + 'static>(
    shared: &Shared<R>,
    items: impl Iterator<Item = T>,
    plan: &(impl Fn(T) -> Plan<R> + Sync),
) {
    let window = shared.thens.len() as u64;
    let mut gathered: Vec<Request> = Vec::with_capacity(FEED_BATCH);
    let mut scout = io::Scout::default();
    let mut seq = 0u64;
    let mut items = items;
    loop {
        // Room in the window for one more; first queue what was gathered, so the readers
        // can make the room.
        if seq >= shared.printed.load(Ordering::Acquire) + window {
            if !queue(shared, &mut gathered, seq) {
                return;
            }
            if !wait_for_room(shared, seq, &mut scout) {
                return;
            }
        }
        let Some(item) = items.next() else { break };
        match plan(item) {
            Plan::Done(result) => shared.mailbox.post(seq, result),
            Plan::Hash {
                source,
                algorithm,
                unless,
                then,
            } => {
                *shared.then_slot(seq) = Some(then);
                gathered.push(Request {
                    seq,
                    source,
                    algorithm,
                    unless,
                    promoted: false,
                });
            }
        }
        seq += 1;
        // Few requests queued: the readers may run dry (the input is slow to come, or they
        // are fast), so each one goes at once.
        let low = shared.queued.load(Ordering::Relaxed) < QUEUE_LOW;
        if (gathered.len() >= FEED_BATCH || low) && !queue(shared, &mut gathered, seq) {
            return;
        }
    }
    queue(shared, &mut gathered, seq);
    shared.lock().feeding_done = true;
    shared.readers_cv.notify_all();
    shared.extra_cv.notify_all();
    shared.mailbox.wake();
    scout_the_rest(shared, &mut scout);
}

/// Waits until item `seq` fits in the window, looking ahead in the queue for large files
/// meanwhile. `false` if the run was cancelled.
fn wait_for_room<R>(shared: &Shared<R>, seq: u64, scout: &mut io::Scout) -> bool {
    let window = shared.thens.len() as u64;
    let mut state = shared.lock();
    while !state.cancelled && seq >= state.printed + window {
        if scout.wanted(shared, &state) {
            drop(state);
            scout.step(shared);
            state = shared.lock();
            continue;
        }
        state.feeder_waiting = true;
        state = shared
            .feeder_cv
            .wait_timeout(state, POLL)
            .map(|(state, _)| state)
            .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        state.feeder_waiting = false;
    }
    !state.cancelled
}

/// Once everything is queued: the scout looks through what the readers have not taken yet.
fn scout_the_rest<R>(shared: &Shared<R>, scout: &mut io::Scout) {
    let mut state = shared.lock();
    while !(state.cancelled || state.finished) && scout.pending(&state) {
        if scout.wanted(shared, &state) {
            drop(state);
            scout.step(shared);
            state = shared.lock();
        } else {
            state = shared
                .feeder_cv
                .wait_timeout(state, SCOUT_POLL)
                .map(|(state, _)| state)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
    }
}

/// How often the scout looks again when it has nothing to do yet (too few files opened to
/// judge, or no room to move a large file ahead).
const SCOUT_POLL: std::time::Duration = std::time::Duration::from_millis(5);

/// Queues the requests gathered, with `fed` items numbered so far, and wakes readers that
/// sleep. `false` if the run was cancelled.
fn queue<R>(shared: &Shared<R>, gathered: &mut Vec<Request>, fed: u64) -> bool {
    let mut state = shared.lock();
    if state.cancelled {
        return false;
    }
    state.fed = fed;
    if gathered.is_empty() {
        return true;
    }
    state.requests.extend(gathered.drain(..));
    shared.queued.store(state.requests.len(), Ordering::Relaxed);
    if state.readers_waiting > 0 {
        shared.readers_cv.notify_all();
    }
    true
}

/// The calling thread: results in order to the sink, flushes while it waits, signals, and
/// the stall watchdog.
fn print_in_order<R: Send + 'static, S: Sink<R>>(
    shared: &Arc<Shared<R>>,
    sink: &mut S,
) -> Result<Completion, S::Error> {
    let mut pending = Reorder::default();
    let mut unflushed = false;
    let mut fed = 0;
    // Wake up for a good handful of results, not for each one: a result this far past the
    // next one arrives about when the ones before it are in. Only for one already fed; else
    // for the next one the sink needs. At worst after POLL.
    let ahead = (shared.tuning.batch_size / 2).max(1);
    loop {
        if let Some(signal) = signals::stop_requested() {
            return Ok(Completion::Interrupted(signal));
        }
        let later = pending.first_missing_from(ahead);
        let wake_at = if later < fed { later } else { pending.next };
        let (arrived, waited) = shared.mailbox.collect(wake_at);
        for (seq, result) in arrived {
            pending.insert(seq, result);
        }
        let mut printed = 0;
        while signals::stop_requested().is_none() {
            let Some(result) = pending.pop_ready() else {
                break;
            };
            sink.put(result)?;
            printed += 1;
        }
        unflushed |= printed > 0;
        let finished = {
            let mut state = shared.lock();
            if printed > 0 {
                state.printed += printed;
                shared.printed.store(state.printed, Ordering::Release);
                if state.feeder_waiting {
                    shared.feeder_cv.notify_one();
                }
            }
            fed = state.fed;
            state.feeding_done && state.printed == state.fed
        };
        if finished {
            return Ok(Completion::Finished);
        }
        // Nothing arrived for a while: a slow file holds the output. What is printed must
        // reach a pipe or a file now, not when the buffer fills.
        if waited && unflushed {
            sink.flush()?;
            unflushed = false;
        }
        if waited {
            if shared.watched.load(Ordering::Relaxed) {
                io::watch_stalls(shared);
            }
            // A reader that waits on one file gives up what it holds of the others.
            io::rescue(shared);
        }
    }
}

/// Results that arrived early, waiting for the ones before them.
struct Reorder<R> {
    /// Sequence number of `slots[0]`: the next result the sink will take.
    next: u64,
    slots: VecDeque<Option<R>>,
}

impl<R> Default for Reorder<R> {
    fn default() -> Self {
        Reorder {
            next: 0,
            slots: VecDeque::new(),
        }
    }
}

impl<R> Reorder<R> {
    fn insert(&mut self, seq: u64, result: R) {
        let Some(index) = seq.checked_sub(self.next) else {
            return;
        };
        let index = index as usize;
        if index >= self.slots.len() {
            self.slots.resize_with(index + 1, || None);
        }
        self.slots[index] = Some(result);
    }

    /// The first sequence number, `offset` or more past the next one, not received yet.
    fn first_missing_from(&self, offset: usize) -> u64 {
        let missing = self.slots.iter().skip(offset).position(Option::is_none);
        self.next + (offset + missing.unwrap_or(self.slots.len().saturating_sub(offset))) as u64
    }

    fn pop_ready(&mut self) -> Option<R> {
        if let Some(Some(_)) = self.slots.front() {
            self.next += 1;
            self.slots.pop_front().flatten()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Reorder;

    #[test]
    fn reorder_hands_results_back_in_sequence_order() {
        let mut reorder = Reorder::default();
        for seq in [3u64, 1, 4, 0, 2, 6] {
            reorder.insert(seq, seq * 10);
        }
        let mut out = Vec::new();
        while let Some(r) = reorder.pop_ready() {
            out.push(r);
        }
        // 5 has not come: 6 waits behind it.
        assert_eq!(out, [0, 10, 20, 30, 40]);
        assert_eq!(reorder.first_missing_from(0), 5);
        assert_eq!(reorder.first_missing_from(1), 7);
        reorder.insert(5, 50);
        // A result for a sequence number already handed out is ignored.
        reorder.insert(2, 99);
        assert_eq!(reorder.pop_ready(), Some(50));
        assert_eq!(reorder.pop_ready(), Some(60));
        assert_eq!(reorder.pop_ready(), None);
        assert_eq!(reorder.first_missing_from(0), 7);
    }
}
