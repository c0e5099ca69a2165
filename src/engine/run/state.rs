//! What the threads of a run share, and the things they hand each other.
//!
//! Data only, and the small operations that keep it consistent; which thread does what with
//! it is in the thread's own module (`feeder`, `reader`, `worker`, `supervisor`, and
//! `mod.rs` for the calling thread).
//!
//! # Locks, and their order
//!
//! A thread holding a lock takes another only in this order (down the list), and never
//! makes a system call that may block (open, stat, statfs, read) while holding one:
//!
//! 1. [`Shared::requests`]: the queue of requests, what the feeder fed, the end of the run.
//! 2. [`Shared::readers`]: who the readers are and what each one is busy with.
//! 3. a reader's [`Desk`]: what it took and holds.
//!
//! These are leaves (nothing else is taken while one is held): a slot of
//! [`Shared::thens`], [`Shared::streams`], [`Shared::slowness`], the stream slots, the
//! [`Results`], the [`Budget`].
//!
//! # Waits
//!
//! Every wait but one (below) has a timeout only as a safety net
//! ([`POLL`](super::handoff::POLL)); what ends a wait is a notification from the thread that
//! made the work. A wait that times out and then finds its work ready is counted
//! ([`crate::engine::lost_wakeups`]).
//!
//! - core readers wait on [`Shared::requests_cv`] (requests queued, the end);
//! - extra readers on [`Shared::extras_cv`] (reads turned slow, the end);
//! - workers on a [`crossbeam_channel::Select`] over their streams' chunks, [`Shared::wake_workers`]
//!   (a stream queued, a stream failed) and the run's end;
//! - readers on [`Shared::stream_slots`] (a stream ended) and on the [`Budget`];
//! - the reader of a mapped file on the worker's ticks ([`Feed::Mapped`]: a window mapped);
//! - the reader of a chunked file on the chunk channel when it is full ([`Feed::Chunks`]):
//!   the one wait without a timeout, which ends when the worker takes a chunk or drops the
//!   file (every worker drops its files when the run is over);
//! - the calling thread on the [`Results`].

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use rustix::fs::Stat;

use crate::digest::Algorithms;
use crate::engine::policy::{IoPolicy, Slowness};
use crate::engine::read::Hashing;
use crate::engine::run::buffers::{Budget, Buffer, PageBuf};
use crate::engine::run::handoff::Results;
use crate::engine::run::limits::{Limits, Pace};
use crate::engine::run::{Then, Tuning};
use crate::engine::source::{OwnFiles, Source};
use crate::engine::storage::{Handle, Storage};
use crate::format::state::FileState;
use crate::report::{Failure, Reason};

/// Locks `mutex`, whatever a panic elsewhere left in it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A request for a reader: one file to open, read and hash (or hand on).
pub(crate) struct Request {
    pub seq: u64,
    pub source: Source,
    pub algorithm: Algorithms,
    /// Not read if a stat of it says this (`hash --update`).
    pub unless: Option<FileState>,
    /// Moved to the front of the queue by the scout: a large file to start early.
    pub promoted: bool,
}

/// The queue of requests and the life of the run, behind lock 1.
#[derive(Default)]
pub(crate) struct Requests {
    /// Requests waiting for a reader, in sequence order but for the promoted ones at the
    /// front.
    pub queue: VecDeque<Request>,
    /// Promoted requests still queued.
    pub promoted: usize,
    /// Items the feeder numbered so far.
    pub fed: u64,
    /// The feeder is done: no more items.
    pub feeding_done: bool,
    /// Stop: results are no longer wanted.
    pub cancelled: bool,
    /// The run is over: every thread leaves.
    pub finished: bool,
    /// Core readers asleep, waiting for requests.
    pub readers_waiting: usize,
}

/// A file read whole, waiting in a reader's lanes.
pub(crate) struct Whole {
    pub seq: u64,
    pub name: PathBuf,
    pub algorithm: Algorithms,
    pub data: Buffer,
    /// Its stat before the read.
    pub state: Option<FileState>,
}

/// A piece of a large file, from the reader that streams it to the worker that hashes it.
pub(crate) enum Chunk {
    /// The next bytes.
    Data(PageBuf),
    /// No more bytes: the file's status after the last read.
    End(Box<Stat>),
    /// No more bytes: why.
    Failed(Reason),
}

/// What the reader of a stream, its worker and the calling thread share about it.
#[derive(Default)]
pub(crate) struct StreamFlags {
    /// Given up on by the supervisor (no progress for the stall timeout): the worker ends
    /// the file as timed out, whatever chunks are still to come.
    pub timed_out: AtomicBool,
    /// Bytes the worker mapped so far (a mapped file): its reader keeps the kernel reading
    /// ahead of it.
    pub mapped: AtomicU64,
}

/// A large file being hashed, as the worker that hashes it holds it.
pub(crate) struct Stream {
    pub seq: u64,
    pub name: PathBuf,
    pub algorithm: Algorithms,
    /// Its status when opened.
    pub before: Box<Stat>,
    /// Where its bytes come from.
    pub feed: Feed,
    pub flags: Arc<StreamFlags>,
    /// Its place among the streams of the run, given back when the worker is done.
    pub _slot: StreamSlot,
}

/// Where the bytes of a large file come from.
pub(crate) enum Feed {
    /// Read by its reader, chunk by chunk, [`crate::engine::policy::CHUNKS_AHEAD`] ahead;
    /// chunks hashed go back to the reader through `spent` to be filled again. Files of
    /// network file systems (a page fault there could wait for ever on a hashing core), and
    /// any storage that cannot map.
    Chunks {
        chunks: Receiver<Chunk>,
        spent: Sender<PageBuf>,
    },
    /// Mapped by the worker, window by window (`mapped`): files of local file systems. The
    /// worker ticks `mapped` after each window, which wakes the reader that reads ahead.
    Mapped {
        handle: Arc<dyn Handle>,
        mapped: Sender<()>,
    },
}

impl Stream {
    /// Its size when opened: the largest waiting goes first.
    pub fn size(&self) -> u64 {
        self.before.st_size as u64
    }
}

/// Places for large files streamed at once (`policy::streams_max`): a reader takes one
/// before it streams a file, and the worker gives it back when it is done with the file.
pub(crate) struct StreamSlots {
    free: Mutex<usize>,
    cv: Condvar,
}

impl StreamSlots {
    pub fn new(n: usize) -> Arc<StreamSlots> {
        Arc::new(StreamSlots {
            free: Mutex::new(n),
            cv: Condvar::new(),
        })
    }

    /// Takes a place, waiting for one while `go_on` holds; `None` when it no longer does.
    pub fn take(self: &Arc<StreamSlots>, go_on: impl Fn() -> bool) -> Option<StreamSlot> {
        let mut free = lock(&self.free);
        loop {
            if !go_on() {
                return None;
            }
            if *free > 0 {
                *free -= 1;
                return Some(StreamSlot(Arc::clone(self)));
            }
            let (woken, timeout) = self
                .cv
                .wait_timeout(free, super::handoff::POLL)
                .unwrap_or_else(PoisonError::into_inner);
            free = woken;
            crate::engine::count_lost_wakeup(timeout.timed_out(), *free > 0);
        }
    }

    /// Wakes the readers waiting for a place (the run is over: they leave).
    pub fn wake_all(&self) {
        let _free = lock(&self.free);
        self.cv.notify_all();
    }
}

/// A place taken among the streams; given back when dropped.
pub(crate) struct StreamSlot(Arc<StreamSlots>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        *lock(&self.0.free) += 1;
        self.0.cv.notify_one();
    }
}

/// What a reader works on now, for the stall watchdog: set only while the reader is in a
/// call to storage (a reader waiting for a worker to take its chunks is not stalled).
#[derive(Clone)]
pub(crate) struct Busy {
    pub seq: u64,
    pub name: PathBuf,
    /// Since when: the start of the call.
    pub since: Instant,
    /// The stream it reads, if the item is a large file.
    pub stream: Option<Arc<StreamFlags>>,
}

/// One reader, as the run knows it (behind lock 2).
pub(crate) struct ReaderSlot {
    /// The thread, to aim a signal at it.
    pub thread: Option<libc::pthread_t>,
    pub busy: Option<Busy>,
    /// Given up on (stuck past the stall timeout): when it comes back, it leaves.
    pub abandoned: bool,
    /// It always takes requests (else only while reads are slow).
    pub core: bool,
    /// What it holds.
    pub desk: Arc<Mutex<Desk>>,
}

impl ReaderSlot {
    pub fn new(core: bool) -> ReaderSlot {
        ReaderSlot {
            thread: None,
            busy: None,
            abandoned: false,
            core,
            desk: Arc::default(),
        }
    }
}

/// What a reader holds between files (lock 3): requests it took and has not started, files
/// read whole waiting for its lanes, results not posted yet. Behind a lock of its own,
/// which only the reader takes while it works, so that the calling thread can take them
/// over when the reader waits on storage for long (`supervisor::rescue`): requests go back
/// to the queue, files read are hashed, results posted.
#[derive(Default)]
pub(crate) struct Desk {
    pub taken: VecDeque<Request>,
    pub wholes: Vec<Whole>,
    pub held: Vec<(u64, Result<Hashing, Failure>)>,
    /// When the reader started its current request.
    pub since: Option<Instant>,
}

impl Desk {
    /// Whether it holds anything another thread could finish.
    pub fn holds(&self) -> bool {
        !(self.taken.is_empty() && self.wholes.is_empty() && self.held.is_empty())
    }
}

/// Counters of a run, for the policy and for `-v`.
#[derive(Default)]
pub(crate) struct Counters {
    /// Reads that had to wait on storage.
    pub misses: AtomicU64,
    /// The storage cannot say whether a read would wait.
    pub nowait_unsupported: AtomicBool,
    /// Regular files opened, and their bytes (the scout looks ahead when they are large).
    pub opened_files: AtomicU64,
    pub opened_bytes: AtomicU64,
}

/// Everything the threads of a run share. `'static` behind an `Arc`: readers are not joined,
/// and one may be stuck in the kernel after the run ended.
pub(crate) struct Shared<R> {
    /// Lock 1.
    pub requests: Mutex<Requests>,
    /// Wakes core readers: requests queued, the end.
    pub requests_cv: Condvar,
    /// Wakes extra readers: reads turned slow, the end.
    pub extras_cv: Condvar,
    /// Lock 2.
    pub readers: Mutex<Vec<ReaderSlot>>,
    /// Starts the extra readers, the first time they are called for. Until then only the
    /// core readers run: a run over the page cache never needs the others, and starting
    /// thirty threads took 2.7 ms, half the time of a run over one small file.
    pub start_extras: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    pub extras_started: AtomicBool,
    /// Whether reads wait on storage now (a leaf lock).
    pub slowness: Mutex<Slowness>,
    /// Large files opened and streaming, waiting for a worker (a leaf lock).
    pub streams: Mutex<Vec<Stream>>,
    pub stream_slots: Arc<StreamSlots>,
    /// A token per stream queued (or failed): wakes a worker.
    pub wake_workers: (Sender<()>, Receiver<()>),
    /// Never sent to; disconnected when the run ends, which wakes every worker.
    pub run_over: Receiver<()>,
    pub results: Results<R>,
    /// What each item in the window makes of its outcome, in slot `seq % window`; set by the
    /// feeder, taken by whoever finishes the item. A lock per slot: finishing an item takes
    /// no lock any other thread wants.
    pub thens: Box<[Mutex<Option<Then<R>>>]>,
    /// Results handed to the sink so far.
    pub printed: AtomicU64,
    /// Requests queued (the queue's length, readable without lock 1).
    pub queued: AtomicUsize,
    /// The `errno` of a thread that could not be started, or 0: the run stops.
    pub no_thread: AtomicI32,
    pub budget: Arc<Budget>,
    pub counters: Counters,
    pub storage: Arc<dyn Storage>,
    pub skip: Arc<OwnFiles>,
    pub limits: Limits,
    /// The run's read rate (`--bwlimit`).
    pub pace: Option<Arc<Pace>>,
    /// The time is up: no item is started any more (`--max-duration`).
    pub cut: AtomicBool,
    pub tuning: Tuning,
    pub io: IoPolicy,
    /// Readers that always take requests; the others are extras.
    pub core_readers: usize,
    /// Files a reader or worker hashes at once (1: no interleaving).
    pub lanes: usize,
    /// Readers streaming a large file now: while any is, the extra readers take requests
    /// too, so that a core reader busy with one file leaves no request waiting.
    pub streaming: AtomicUsize,
    /// Workers hashing streams, and how many of them have nothing to do.
    pub workers: usize,
    pub idle_workers: AtomicUsize,
}

impl<R> Shared<R> {
    pub fn requests(&self) -> MutexGuard<'_, Requests> {
        lock(&self.requests)
    }

    pub fn readers(&self) -> MutexGuard<'_, Vec<ReaderSlot>> {
        lock(&self.readers)
    }

    /// The slot of item `seq`'s `then`.
    pub fn then_slot(&self, seq: u64) -> MutexGuard<'_, Option<Then<R>>> {
        lock(&self.thens[(seq % self.thens.len() as u64) as usize])
    }

    /// Finishes item `seq` with `result`: its `then` makes the command's result, posted for
    /// the calling thread. Nothing if the item was given up already (timed out).
    pub fn finish(&self, seq: u64, result: Result<Hashing, Failure>) {
        let then = self.then_slot(seq).take();
        if let Some(then) = then {
            self.results.post(seq, then.call(result));
        }
    }

    /// Makes the results of `done` (each through its item's `then`) and posts them at once.
    pub fn finish_many(&self, done: Vec<(u64, Result<Hashing, Failure>)>) {
        let mut done = done;
        self.finish_from(&mut done, &mut Vec::new());
    }

    /// [`Shared::finish_many`], draining `done` and making the results in `scratch`, both
    /// kept for the next time (a reader posts every few dozen files: its vectors are reused
    /// rather than made and freed each time).
    pub fn finish_from(
        &self,
        done: &mut Vec<(u64, Result<Hashing, Failure>)>,
        scratch: &mut Vec<(u64, R)>,
    ) {
        if done.is_empty() {
            return;
        }
        for (seq, result) in done.drain(..) {
            // No `then`: the item was given up already (timed out).
            let then = self.then_slot(seq).take();
            if let Some(then) = then {
                scratch.push((seq, then.call(result)));
            }
        }
        self.results.post_many(scratch);
    }

    /// Whether results are no longer wanted, or the run is over.
    pub fn stopping(&self) -> bool {
        let requests = self.requests();
        requests.cancelled || requests.finished
    }

    /// Records that a thread could not be started: the calling thread ends the run.
    pub fn thread_failed(&self, error: &std::io::Error) {
        let errno = error.raw_os_error().unwrap_or(libc::EAGAIN);
        let _ = self
            .no_thread
            .compare_exchange(0, errno, Ordering::SeqCst, Ordering::SeqCst);
        self.results.wake();
    }

    /// The `errno` of a thread that could not be started, if one could not.
    pub fn thread_failure(&self) -> Option<i32> {
        match self.no_thread.load(Ordering::SeqCst) {
            0 => None,
            errno => Some(errno),
        }
    }

    /// Wakes one worker (a stream was queued or failed).
    pub fn wake_a_worker(&self) {
        let _ = self.wake_workers.0.try_send(());
    }

    /// Wakes the extra readers (`all`: every one, else one), starting them first if none
    /// runs yet.
    pub fn call_extras(&self, all: bool) {
        if !self.extras_started.load(Ordering::Acquire) {
            let start = lock(&self.start_extras).take();
            if let Some(start) = start {
                start();
            }
            self.extras_started.store(true, Ordering::Release);
        }
        let _requests = self.requests();
        if all {
            self.extras_cv.notify_all();
        } else {
            self.extras_cv.notify_one();
        }
    }
}
