//! The state the threads of a run share, and the things they hand each other: requests,
//! prepared files, streams of chunks, buffers, results.
//!
//! This module holds data and the small operations on it; what each kind of thread does with
//! it is in `pool` (the feeder and the calling thread), `io` (readers) and `lanes` (hashing
//! workers).

use std::collections::VecDeque;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rustix::fs::Stat;

use crate::digest::Algorithms;
use crate::engine::mapped::Window;
use crate::engine::policy::IoPolicy;
use crate::engine::read::Hashing;
use crate::engine::source::{FileId, Source};
use crate::format::state::FileState;
use crate::report::{Failure, Reason};

/// Longest wait for results before the calling thread looks for a stop request again (and
/// flushes what it printed).
pub const POLL: Duration = Duration::from_millis(100);

/// Sizes that bound dispatch cost and memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// Most items a thread takes from a queue at once.
    pub batch_size: usize,
    /// Most items between the feeder and the output.
    pub window: usize,
    /// Files each hashing worker hashes at once (`lanes`); 1 where the CPU gains nothing.
    pub lanes: usize,
}

impl Default for Tuning {
    /// From `benches/compare.sh`-style runs on 2 cores (medians; the README's Performance
    /// section has the tables).
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
            lanes: crate::engine::multibuf::default_lanes(),
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

/// A request for a reader: one file to open and prepare.
pub(crate) struct Request {
    pub seq: u64,
    pub source: Source,
    pub algorithm: Algorithms,
    pub unless: Option<FileState>,
    /// Moved to the front of the queue by the scout: a large file to start early.
    pub promoted: bool,
}

/// A file a reader prepared for the hashing workers.
pub(crate) struct Ready {
    pub seq: u64,
    pub name: PathBuf,
    pub algorithm: Algorithms,
    pub kind: ReadyKind,
}

/// What a reader prepared.
pub(crate) enum ReadyKind {
    /// The whole content, read and checked (it did not change while read).
    Whole {
        /// The bytes.
        data: Buffer,
        /// The stat before the read.
        state: Option<FileState>,
    },
    /// A large regular file, to be streamed in chunks by the readers.
    Large {
        /// The open file.
        file: Arc<File>,
        /// Its status when opened.
        before: Stat,
    },
}

impl Ready {
    /// The size of a large file (0 for a whole one): the largest goes first.
    pub fn large_size(&self) -> u64 {
        match &self.kind {
            ReadyKind::Large { before, .. } => before.st_size as u64,
            ReadyKind::Whole { .. } => 0,
        }
    }
}

/// A large file being hashed: the readers produce its chunks, one worker consumes them.
pub(crate) struct StreamSlot {
    pub seq: u64,
    pub file: Arc<File>,
    pub size: u64,
    /// Map chunks (local file systems) rather than read them into buffers.
    pub map: bool,
    /// Offset of the next chunk to produce.
    pub next: u64,
    /// A reader is producing a chunk now.
    pub producing: bool,
    /// Chunks produced and not yet taken.
    pub chunks: VecDeque<Chunk>,
    /// No more chunks: `Ok` at the end of the file, or why not.
    pub end: Option<Result<(), Reason>>,
    /// When the last chunk arrived (or production began), for the stall watchdog.
    pub progress: Instant,
    /// The worker gave up on it (the run was cancelled): produce nothing more.
    pub abandoned: bool,
}

/// Chunks a stream may have produced and not yet taken.
pub(crate) const CHUNKS_AHEAD: usize = 1;

/// The state of a run, shared by every thread, behind one lock.
pub(crate) struct State {
    /// Requests waiting for a reader, in sequence order.
    pub requests: VecDeque<Request>,
    /// Files read whole, waiting for a worker, in the order they were read.
    pub whole: VecDeque<Ready>,
    /// Requests for large files moved to the front of the queue by the scout, not yet taken
    /// by a reader.
    pub promoted: usize,
    /// Large files opened, waiting for a worker (few: the largest goes first).
    pub large: Vec<Ready>,
    /// Large files being hashed.
    pub streams: Vec<StreamSlot>,
    /// Items the feeder numbered so far.
    pub fed: u64,
    /// The feeder is done: no more items.
    pub feeding_done: bool,
    /// Results handed to the sink so far.
    pub printed: u64,
    /// Stop: results are no longer wanted.
    pub cancelled: bool,
    /// The run is over: every thread leaves.
    pub finished: bool,
    /// What each reader is doing, for the stall watchdog.
    pub readers: Vec<Reader>,
    /// Hashing workers asleep, waiting for work.
    pub workers_waiting: usize,
    /// Readers asleep, waiting for requests (those that always take them).
    pub readers_waiting: usize,
    /// The feeder waits for room in the window.
    pub feeder_waiting: bool,
    /// Until when requests count as slow, so every reader takes them (see `io`).
    pub slow_until: Option<Instant>,
    /// Slow requests in a row (each within a short while of the one before), and when the
    /// last one was.
    pub slow_count: u32,
    pub last_slow: Option<Instant>,
}

impl State {
    /// The state of a run that has not started, with these readers.
    pub fn new(readers: Vec<Reader>) -> State {
        State {
            requests: VecDeque::new(),
            whole: VecDeque::new(),
            promoted: 0,
            large: Vec::new(),
            streams: Vec::new(),
            fed: 0,
            feeding_done: false,
            printed: 0,
            cancelled: false,
            finished: false,
            readers,
            workers_waiting: 0,
            readers_waiting: 0,
            feeder_waiting: false,
            slow_until: None,
            slow_count: 0,
            last_slow: None,
        }
    }
}

/// What every thread of a run shares. `'static` (behind an `Arc`), because readers are not
/// joined: one may be stuck in the kernel after the run ended.
pub(crate) struct Shared<R> {
    pub state: Mutex<State>,
    /// Wakes readers: requests, chunks wanted, the end.
    pub readers_cv: Condvar,
    /// Wakes the extra readers: requests turned slow, the end.
    pub extra_cv: Condvar,
    /// Starts the extra readers, the first time they are called for ([`Shared::call_extras`]).
    /// Until then only the readers that always take requests run: a run over the page cache
    /// never needs the others, and starting thirty threads took 2.7 ms, half the time of a
    /// run over one small file and a fifth of an update of 2,000 unchanged files.
    pub start_extras: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    /// Whether `start_extras` ran.
    pub extras_started: AtomicBool,
    /// Wakes hashing workers: files ready, chunks produced, the end.
    pub workers_cv: Condvar,
    /// Wakes the feeder: room in the window.
    pub feeder_cv: Condvar,
    pub mailbox: Mailbox<R>,
    pub buffers: Arc<BufferPool>,
    pub skip: Vec<FileId>,
    pub tuning: Tuning,
    pub io: IoPolicy,
    /// What each item in the window makes of its outcome, in slot `seq % window`; set by the
    /// feeder, taken by whoever finishes the item. A lock per slot: finishing an item takes
    /// no lock any other thread wants.
    pub thens: Box<[Mutex<Option<Then<R>>>]>,
    /// Results handed to the sink so far (also in the state, for the feeder's wait).
    pub printed: AtomicU64,
    /// Requests queued (also the state's queue length, readable without the lock).
    pub queued: AtomicUsize,
    /// Set once readers should check their slots often (a stall timeout is set).
    pub watched: AtomicBool,
    /// The file system cannot say whether a read would wait (`RWF_NOWAIT`).
    pub nowait_unsupported: AtomicBool,
    /// Reads that had to wait on storage, so far.
    pub misses: AtomicU64,
    /// Regular files opened by the readers so far, and their bytes: the average size tells
    /// whether looking ahead for large files is worth a stat per file (`io::scout`).
    pub opened_files: AtomicU64,
    pub opened_bytes: AtomicU64,
}

impl<R> Shared<R> {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The slot of item `seq`'s `then`.
    pub fn then_slot(&self, seq: u64) -> MutexGuard<'_, Option<Then<R>>> {
        let slot = (seq % self.thens.len() as u64) as usize;
        self.thens[slot]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes one extra reader (`all`: every one), starting them first if none runs yet.
    pub fn call_extras(&self, all: bool) {
        if !self.extras_started.load(Ordering::Acquire) {
            let start = self
                .start_extras
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(start) = start {
                start();
            }
            self.extras_started.store(true, Ordering::Release);
        }
        if all {
            self.extra_cv.notify_all();
        } else {
            self.extra_cv.notify_one();
        }
    }

    /// Counts a regular file of `size` bytes opened by a reader.
    pub fn count_opened(&self, size: u64) {
        self.opened_files.fetch_add(1, Ordering::Relaxed);
        self.opened_bytes.fetch_add(size, Ordering::Relaxed);
    }

    /// Finishes item `seq` with `result`: its `then` makes the command's result, which goes
    /// to the calling thread. Nothing if the item was given up already (timed out).
    pub fn finish(&self, seq: u64, result: Result<Hashing, Failure>) {
        let then = self.then_slot(seq).take();
        if let Some(then) = then {
            self.mailbox.post(seq, then.call(result));
        }
    }
}

/// What a reader is doing, for the stall watchdog and for interrupting it.
#[derive(Default)]
pub(crate) struct Reader {
    /// The thread, to aim a signal at it.
    pub thread: Option<libc::pthread_t>,
    /// The item it works on (and its name), whether it is a chunk of a stream, and since
    /// when (the last sign of progress).
    pub busy: Option<(u64, std::path::PathBuf, bool, Instant)>,
    /// Given up on (stuck past the stall timeout): when it comes back, it leaves.
    pub abandoned: bool,
    /// It always takes requests (else only while reads wait on storage; see `io`).
    pub core: bool,
    /// What it holds between files.
    pub hands: Arc<Mutex<Hands>>,
}

/// What a reader holds between the files it reads: the requests it took and has not
/// started, files read whole and waiting for its lanes, and results not posted yet.
///
/// Behind a lock of its own, which only the reader takes while it works: a reader that
/// waits on storage for long (a slow server, a hung read) must not hold the rest, or the
/// lines finished before the file it waits on would wait with it. The printing thread takes
/// them over (`io::rescue`): requests go back to the queue, files read go to the hashing
/// workers, results to the mailbox.
#[derive(Default)]
pub(crate) struct Hands {
    /// Requests taken from the queue, not started.
    pub pending: VecDeque<Request>,
    /// Files read whole, held until a lane's worth is there.
    pub whole: Vec<Ready>,
    /// Results made, not posted yet.
    pub done: Vec<(u64, Result<Hashing, Failure>)>,
    /// When the reader started its current request.
    pub since: Option<Instant>,
}

impl Hands {
    /// Whether it holds anything another thread could finish.
    pub fn holds(&self) -> bool {
        !(self.pending.is_empty() && self.whole.is_empty() && self.done.is_empty())
    }
}

/// Locks a reader's hands.
pub(crate) fn lock_hands(hands: &Mutex<Hands>) -> MutexGuard<'_, Hands> {
    hands.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A part of a large file, produced by a reader for the worker that hashes the file.
pub(crate) enum Chunk {
    /// Mapped, its pages faulted in.
    Mapped(Window),
    /// Read into memory.
    Read(Vec<u8>),
}

impl Chunk {
    /// Its length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Chunk::Mapped(window) => window.len(),
            Chunk::Read(buf) => buf.len(),
        }
    }
}

/// Where readers and workers leave results, one at a time, for the thread that prints.
///
/// Each result is posted as soon as it exists, so a slow item (a huge file, a FIFO) never
/// holds back results finished before it. The printing thread is woken only when the result
/// it waits for arrives, not for every result: on trees of tiny files, a wake-up per file
/// cost more than the file.
pub(crate) struct Mailbox<R> {
    state: Mutex<MailboxState<R>>,
    arrived: Condvar,
}

struct MailboxState<R> {
    results: Vec<(u64, R)>,
    /// The sequence number the printing thread waits for.
    awaited: u64,
    /// Whether that result is among `results`.
    awaited_arrived: bool,
    /// Whether the printing thread sleeps until it arrives.
    sleeping: bool,
    /// Wake the printing thread whatever arrived (the feeder ended).
    poke: bool,
}

impl<R> Default for Mailbox<R> {
    fn default() -> Self {
        let state = MailboxState {
            results: Vec::new(),
            awaited: 0,
            awaited_arrived: false,
            sleeping: false,
            poke: false,
        };
        Mailbox {
            state: Mutex::new(state),
            arrived: Condvar::new(),
        }
    }
}

impl<R> Mailbox<R> {
    pub fn post(&self, seq: u64, result: R) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.results.push((seq, result));
        if seq == state.awaited {
            state.awaited_arrived = true;
            if state.sleeping {
                self.arrived.notify_one();
            }
        }
    }

    /// Posts several results at once: one lock.
    pub fn post_many(&self, results: &mut Vec<(u64, R)>) {
        if results.is_empty() {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let awaited = state.awaited;
        if results.iter().any(|(seq, _)| *seq == awaited) {
            state.awaited_arrived = true;
            if state.sleeping {
                self.arrived.notify_one();
            }
        }
        state.results.append(results);
    }

    /// Wakes the printing thread, whatever it waits for.
    pub fn wake(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.poke = true;
        self.arrived.notify_one();
    }

    /// Takes every result posted so far, first sleeping (at most [`POLL`]) until result
    /// `awaited` is among them. Also says whether it had to wait and nothing came.
    pub fn collect(&self, awaited: u64) -> (Vec<(u64, R)>, bool) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.awaited != awaited {
            state.awaited = awaited;
            state.awaited_arrived = state.results.iter().any(|(seq, _)| *seq == awaited);
        }
        let mut waited = false;
        if !state.awaited_arrived && !state.poke {
            state.sleeping = true;
            let (woken, timeout) = self
                .arrived
                .wait_timeout(state, POLL)
                .unwrap_or_else(PoisonError::into_inner);
            state = woken;
            state.sleeping = false;
            waited = timeout.timed_out();
        }
        state.awaited_arrived = false;
        state.poke = false;
        (std::mem::take(&mut state.results), waited)
    }
}

/// Memory for files read whole, with a budget in bytes: a reader waits for room, and a
/// buffer gives its room back when it is dropped. Buffers are kept for reuse by size class,
/// so a tree of many files does not map and unmap memory for each.
pub(crate) struct BufferPool {
    /// Bytes taken from the budget. An atomic: taking and giving back room is two atomic
    /// operations per file, no lock (two readers sharing a lock per file switched contexts
    /// several times per file on trees of small files).
    used: AtomicUsize,
    budget: usize,
    /// Readers waiting for room, and the lock and condition they wait on.
    waiting: AtomicUsize,
    wait_lock: Mutex<bool>,
    room: Condvar,
}

/// Smallest size class of a buffer.
const CLASS_MIN: usize = 4 << 10;

fn class_of(len: usize) -> (usize, usize) {
    let size = len.next_power_of_two().max(CLASS_MIN);
    (
        size.trailing_zeros() as usize - CLASS_MIN.trailing_zeros() as usize,
        size,
    )
}

thread_local! {
    /// Spare buffers of this thread, by size class, kept for reuse: a buffer is filled and
    /// dropped mostly on the same reader.
    static SPARE: std::cell::RefCell<Spares> = const {
        std::cell::RefCell::new(Spares { lists: Vec::new(), bytes: 0 })
    };
}

/// The spare buffers of one thread.
struct Spares {
    /// By size class.
    lists: Vec<Vec<Vec<u8>>>,
    /// Their bytes, counted in [`SPARE_ALL`] too.
    bytes: usize,
}

impl Drop for Spares {
    fn drop(&mut self) {
        SPARE_ALL.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// Most bytes of small spare buffers one thread keeps.
const SPARE_MAX: usize = 256 << 10;

/// Bytes of small spare buffers all threads keep, and the most they may: with tens of
/// readers working at once (a cold disk), a few megabytes each would be past 100 MiB of
/// memory that holds nothing.
static SPARE_ALL: AtomicUsize = AtomicUsize::new(0);
const SPARE_ALL_MAX: usize = 4 << 20;

/// Buffers from this size up are kept in one list shared by all threads: a lock per file is
/// nothing beside reading 128 KiB or more, and a reader rarely reads two large files in a
/// row, so per-thread spares of them would pile up on every reader.
const SHARED_FROM: usize = 128 << 10;

/// The shared spare buffers, and the most bytes they hold.
static SHARED_SPARES: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
const SHARED_SPARES_MAX: usize = 8 << 20;

impl BufferPool {
    pub fn new(budget: usize) -> BufferPool {
        BufferPool {
            used: AtomicUsize::new(0),
            budget,
            waiting: AtomicUsize::new(0),
            wait_lock: Mutex::new(false),
            room: Condvar::new(),
        }
    }

    /// Takes `size` bytes of room if there is (any size fits an empty budget).
    fn take_room(&self, size: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used == 0 || used + size <= self.budget).then_some(used + size)
            })
            .is_ok()
    }

    fn buffer(self: &Arc<BufferPool>, class: usize, size: usize) -> Buffer {
        if size >= SHARED_FROM {
            let mut shared = SHARED_SPARES.lock().unwrap_or_else(PoisonError::into_inner);
            let found = shared.iter().position(|b| b.capacity() == size);
            let data = found.map(|i| shared.swap_remove(i)).unwrap_or_default();
            return Buffer {
                data,
                len: 0,
                size,
                pool: Arc::clone(self),
            };
        }
        let spare = SPARE.with(|spare| {
            let mut spare = spare.try_borrow_mut().ok()?;
            let data = spare.lists.get_mut(class).and_then(Vec::pop)?;
            spare.bytes -= CLASS_MIN << class;
            SPARE_ALL.fetch_sub(CLASS_MIN << class, Ordering::AcqRel);
            Some(data)
        });
        Buffer {
            data: spare.unwrap_or_default(),
            len: 0,
            size,
            pool: Arc::clone(self),
        }
    }

    /// A buffer for `len` bytes, once the budget has room; `None` once the pool is closed.
    pub fn acquire(self: &Arc<BufferPool>, len: usize) -> Option<Buffer> {
        let (class, size) = class_of(len);
        loop {
            if self.take_room(size) {
                return Some(self.buffer(class, size));
            }
            let closed = self
                .wait_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if *closed {
                return None;
            }
            self.waiting.fetch_add(1, Ordering::AcqRel);
            // Room may have come between the failed take and the lock: look once more
            // before sleeping (a release notifies under this lock).
            if self.take_room(size) {
                self.waiting.fetch_sub(1, Ordering::AcqRel);
                return Some(self.buffer(class, size));
            }
            let closed = self
                .room
                .wait_timeout(closed, POLL)
                .map(|(closed, _)| closed)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            if *closed {
                return None;
            }
        }
    }

    /// A buffer for `len` bytes if the budget has room now.
    pub fn try_acquire(self: &Arc<BufferPool>, len: usize) -> Option<Buffer> {
        let (class, size) = class_of(len);
        self.take_room(size).then(|| self.buffer(class, size))
    }

    fn release(&self, data: Vec<u8>, size: usize) {
        self.used.fetch_sub(size, Ordering::AcqRel);
        let (class, _) = class_of(size);
        if size >= SHARED_FROM {
            if data.capacity() == size {
                let mut shared = SHARED_SPARES.lock().unwrap_or_else(PoisonError::into_inner);
                let kept: usize = shared.iter().map(Vec::capacity).sum();
                if kept + size <= SHARED_SPARES_MAX {
                    shared.push(data);
                }
            }
        } else {
            BufferPool::keep_small(data, size, class);
        }
        if self.waiting.load(Ordering::Acquire) > 0 {
            let _guard = self
                .wait_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            self.room.notify_all();
        }
    }

    /// Keeps a small buffer among this thread's spares, if there is room.
    fn keep_small(data: Vec<u8>, size: usize, class: usize) {
        SPARE.with(|spare| {
            let Ok(mut spare) = spare.try_borrow_mut() else {
                return;
            };
            if spare.bytes + size > SPARE_MAX {
                return;
            }
            if SPARE_ALL.fetch_add(size, Ordering::AcqRel) + size > SPARE_ALL_MAX {
                SPARE_ALL.fetch_sub(size, Ordering::AcqRel);
                return;
            }
            if spare.lists.len() <= class {
                spare.lists.resize_with(class + 1, Vec::new);
            }
            spare.lists[class].push(data);
            spare.bytes += size;
        });
    }

    /// Wakes and refuses every reader waiting for room: the run is over.
    pub fn close(&self) {
        *self
            .wait_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        self.room.notify_all();
    }
}

/// Results made by a reader or by a hashing job on its behalf, posted to the mailbox a
/// handful at a time while reads are fast (one lock for many files), and at once while they
/// wait on storage or before the reader sleeps. Until posted, they are in the reader's
/// [`Hands`], where the printing thread finds them if the reader is held up.
pub(crate) struct Outbox<'a, R> {
    shared: &'a Shared<R>,
    hands: Arc<Mutex<Hands>>,
    /// Post every result at once.
    pub immediate: bool,
}

/// Results an outbox holds before it posts them (it also posts when its reader runs out of
/// work, and at once while reads wait on storage). Each post takes the mailbox lock, which
/// the printing thread also takes: 16 cost a context switch every 20 files of a warm tree
/// of 4 KiB files, 64 one every 50, and the run 0.95 x the time (200,000 tiny files: 0.92 x);
/// 128 gained nothing more.
const OUTBOX: usize = 64;

impl<'a, R> Outbox<'a, R> {
    pub fn new(shared: &'a Shared<R>, hands: Arc<Mutex<Hands>>) -> Outbox<'a, R> {
        Outbox {
            shared,
            hands,
            immediate: false,
        }
    }

    /// The hands its results wait in.
    pub fn hands(&self) -> &Mutex<Hands> {
        &self.hands
    }

    /// Finishes item `seq` with `result`, as [`Shared::finish`] does, once posted.
    pub fn finish(&mut self, seq: u64, result: Result<Hashing, Failure>) {
        let full = {
            let mut hands = lock_hands(&self.hands);
            hands.done.push((seq, result));
            hands.done.len() >= OUTBOX
        };
        if self.immediate || full {
            self.flush();
        }
    }

    /// Posts what it holds.
    pub fn flush(&mut self) {
        let done = std::mem::take(&mut lock_hands(&self.hands).done);
        post_done(self.shared, done);
    }
}

impl<R> Drop for Outbox<'_, R> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Makes the results of `done` (each through its item's `then`) and posts them at once.
pub(crate) fn post_done<R>(shared: &Shared<R>, done: Vec<(u64, Result<Hashing, Failure>)>) {
    if done.is_empty() {
        return;
    }
    let mut results: Vec<(u64, R)> = Vec::with_capacity(done.len());
    for (seq, result) in done {
        // No `then`: the item was given up already (timed out).
        let then = shared.then_slot(seq).take();
        if let Some(then) = then {
            results.push((seq, then.call(result)));
        }
    }
    shared.mailbox.post_many(&mut results);
}

/// Bytes of a file read whole, counted against the [`BufferPool`]'s budget until dropped.
pub(crate) struct Buffer {
    data: Vec<u8>,
    len: usize,
    size: usize,
    /// The pool it came from, which gets the room back.
    pool: Arc<BufferPool>,
}

impl Buffer {
    /// The first `len` bytes (at most its size class), to be filled. Buffers keep their
    /// length when reused, so they are zeroed once, when first made, not at every file.
    pub fn fill(&mut self, len: usize) -> &mut [u8] {
        if self.data.len() < len {
            self.data.resize(len.max(self.size), 0);
        }
        self.len = len;
        &mut self.data[..len]
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        let data = std::mem::take(&mut self.data);
        self.pool.release(data, self.size);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::BufferPool;

    #[test]
    fn buffer_pool_keeps_to_its_budget() {
        let pool = Arc::new(BufferPool::new(64 << 10));
        // Sizes are rounded up to a power of two (30,000 takes 32 KiB).
        let a = pool.try_acquire(30_000).expect("room");
        let b = pool.try_acquire(32 << 10).expect("room");
        assert!(pool.try_acquire(1).is_none(), "the budget is full");
        drop(a);
        let c = pool.try_acquire(20_000).expect("room given back");
        assert!(pool.try_acquire(1).is_none());
        drop((b, c));
        // Any one buffer fits an empty budget, however large, so no file is refused.
        let huge = pool
            .try_acquire(1 << 20)
            .expect("an empty budget takes anything");
        assert!(pool.try_acquire(1).is_none());

        // A reader waiting for room gets it when a buffer is dropped...
        let waiter = {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || pool.acquire(4096).map(|mut b| b.fill(4096).len()))
        };
        std::thread::sleep(Duration::from_millis(50));
        drop(huge);
        assert_eq!(waiter.join().expect("no panic"), Some(4096));

        // ...and is refused, not left waiting, once the pool is closed.
        let full = pool.try_acquire(64 << 10).expect("room");
        let refused = {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || pool.acquire(4096).is_none())
        };
        std::thread::sleep(Duration::from_millis(50));
        pool.close();
        assert!(refused.join().expect("no panic"));
        drop(full);
    }
}
