//! The readers: the threads that open and read files, so that many requests are in flight
//! while the cores hash.
//!
//! A thread pool of readers, rather than io_uring: a reader blocked in `open` (an inode to
//! read from a cold disk, a round trip to a file server) costs a thread, not a core, and the
//! kernel already keeps every blocked reader's request in flight; `benches/cold.sh` measures
//! sumpool's readers against `xargs -P64 cat`, the same number of requests in flight through
//! the kernel's own paths, so what an io_uring ring could still gain is the per-request
//! system-call cost, a few percent of a cold read. Threads also degrade well: a read stuck
//! forever holds one reader, which the stall watchdog replaces, where a ring would hold its
//! slot. See the README's Performance section for the figures.
//!
//! What a reader does with one request (`shared::Request`), in the order the device policy
//! says (walk order; inode order on a spinning disk):
//!
//! - if the command recorded a state for the file (`hash --update`), a stat first: the same
//!   state means the file is not opened at all;
//! - open it and take its status (a skipped file, the manifest being written, ends here);
//! - a regular file smaller than [`LANE_MIN`] (and standard input, FIFOs and devices named on
//!   the command line): read and hash it here, one block at a time;
//! - a regular file up to [`WHOLE_MAX`]: read it whole into a buffer of the [`BufferPool`],
//!   check that it did not change while read, and hand it to the hashing workers;
//! - a larger one: tell the kernel to start reading it (`posix_fadvise`), and hand the open
//!   file to the workers; once a worker starts it, readers produce its chunks, a few
//!   megabytes ahead: mapped windows on a local file system (the pages are faulted in here,
//!   not on the hashing core), buffers read with `pread` elsewhere (a page fault on a network
//!   file system could stall a worker).
//!
//! Every reader finishes the items it can (`Shared::finish`); what it hands over, the workers
//! finish.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self as stdio, Read};
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rustix::fs::{Advice, FileType, Stat};

use crate::digest::{Algorithms, Hasher};
use crate::engine::lanes::hash_wholes;
use crate::engine::mapped::{WINDOW, Window};
use crate::engine::policy::{IoPolicy, ReadOrder};
use crate::engine::read::{
    Digested, Hashing, Opened, changed, fstat, hash_reader, open_source, outcome, regular_state,
    unchanged,
};
use crate::engine::shared::{
    Buffer, CHUNKS_AHEAD, Chunk, Hands, Outbox, POLL, Reader, Ready, ReadyKind, Request, Shared,
    State, lock_hands, post_done,
};
use crate::engine::source::Source;
use crate::report::{Failure, Reason};
use crate::signals;

/// Regular files smaller than this are hashed by the reader that read them: a block or two
/// leaves nothing to interleave, and handing them over would cost more than hashing them.
/// Measured on 2 cores, warm cache: 100,000 files of 4 KiB took 0.43 s in lanes and 0.49 s
/// without; 200,000 files of 0 to 100 bytes took the same either way.
pub const LANE_MIN: u64 = 1 << 10;

/// Regular files up to this size are read whole by a reader; larger ones are streamed in
/// chunks. One read of a whole 1 MiB file keeps a megabyte request in flight per reader.
pub const WHOLE_MAX: u64 = 1 << 20;

/// Bytes of files read whole, in flight at once (read, waiting for a worker, or in a lane).
/// With four lanes on two cores, eight 1 MiB files keep every lane full; more would only
/// raise the resident set (the target is 32 MiB in all). Files beyond it are already being
/// read ahead by the kernel, told by `posix_fadvise`, which costs no memory of ours.
pub const WHOLE_BUDGET: usize = 10 << 20;

/// Bytes of a large file the kernel is asked to read ahead when it is opened, and ahead of
/// each chunk while it is streamed.
const READ_AHEAD: u64 = 8 << 20;

/// Bytes of a chunk read with `pread` (where chunks are not mapped).
const READ_CHUNK: usize = 1 << 20;

/// The block buffer of a reader, for what it hashes itself.
const BLOCK: usize = 64 << 10;

/// Starts reader number `index`. Not joined: a reader stuck in the kernel must not hold the
/// run, and each one leaves when the run is over.
pub(crate) fn spawn_reader<R: Send + 'static>(shared: Arc<Shared<R>>, index: usize) {
    let reader = Arc::clone(&shared);
    let spawned = std::thread::Builder::new()
        .name(format!("sumpool-reader-{index}"))
        .stack_size(256 << 10)
        .spawn(move || {
            let shared = reader;
            // SAFETY: pthread_self has no preconditions.
            let me = unsafe { libc::pthread_self() };
            if let Some(slot) = shared.lock().readers.get_mut(index) {
                slot.thread = Some(me);
            }
            read_requests(&shared, index);
        });
    // Without this reader the others do its share; with none, the run still ends (the
    // calling thread sees no progress and the requests fail below).
    if spawned.is_err() {
        let mut state = shared.lock();
        if state.readers.iter().all(|r| r.thread.is_none()) {
            let requests: Vec<Request> = state.requests.drain(..).collect();
            drop(state);
            for request in requests {
                let name = request.source.into_name();
                let error = stdio::Error::other("cannot start a reader thread");
                shared.finish(request.seq, Err(Failure::new(name, error)));
            }
        }
    }
}

/// What a reader takes from the shared state.
enum Work {
    /// Hash the files it holds: nothing else to do now.
    Flush,
    /// Produce the next chunk of the stream of item `seq`.
    Chunk(u64),
    /// Open and prepare the files it took (in its hands).
    Requests,
}

/// What one reader is, and what it holds.
struct ReaderSelf<'a, R> {
    index: usize,
    /// Whether it always takes requests (else only while reads wait on storage).
    core: bool,
    /// Files it hashes together, at most.
    lanes: usize,
    /// Its results, in its hands (with the requests it took and the files it read).
    outbox: Outbox<'a, R>,
}

impl<R: Send + 'static> ReaderSelf<'_, R> {
    /// The next request it took, marked as started now.
    fn next_request(&self) -> Option<Request> {
        let mut hands = lock_hands(self.outbox.hands());
        let request = hands.pending.pop_front()?;
        hands.since = Some(Instant::now());
        Some(request)
    }

    /// Holds a file read whole; `true` once a lane's worth is held.
    fn hold(&self, ready: Ready) -> bool {
        let mut hands = lock_hands(self.outbox.hands());
        hands.whole.push(ready);
        hands.whole.len() >= self.lanes
    }

    /// Hashes the files it holds, in its lanes.
    fn hash_held(&mut self) {
        hash_held(&mut self.outbox);
    }
}

/// Hashes the files the hands of `outbox` hold, in lanes, on this thread.
fn hash_held<R: Send + 'static>(outbox: &mut Outbox<'_, R>) {
    let whole = std::mem::take(&mut lock_hands(outbox.hands()).whole);
    if !whole.is_empty() {
        hash_wholes(outbox, whole);
    }
}

fn read_requests<R: Send + 'static>(shared: &Shared<R>, index: usize) {
    let core = core_readers(&shared.io);
    let Some((hands, is_core)) = shared
        .lock()
        .readers
        .get(index)
        .map(|slot| (Arc::clone(&slot.hands), slot.core))
    else {
        return;
    };
    let mut me = ReaderSelf {
        index,
        core: is_core,
        lanes: shared
            .tuning
            .lanes
            .clamp(1, crate::engine::multibuf::MAX_LANES),
        outbox: Outbox::new(shared, hands),
    };
    loop {
        let Some(work) = next_work(shared, &mut me, core) else {
            return;
        };
        match work {
            Work::Flush => {
                me.hash_held();
                me.outbox.flush();
            }
            Work::Chunk(seq) => {
                if !mark_busy(shared, index, || (seq, std::path::PathBuf::new(), true)) {
                    unclaim_chunk(shared, seq);
                    return;
                }
                produce_chunk(shared, seq);
            }
            Work::Requests => {
                loop {
                    // A stream waiting for its next chunk comes before the rest of the batch
                    // (when no extra reader is there to produce it). The requests stay in
                    // its hands meanwhile, where others find them if the chunk takes long.
                    if me.core && shared.io.readers <= core && !produce_wanted_chunks(shared, index)
                    {
                        return;
                    }
                    let Some(request) = me.next_request() else {
                        break;
                    };
                    let busy = || (request.seq, request.source.name().to_path_buf(), false);
                    if !mark_busy(shared, index, busy) {
                        // Given up on while it waited: what it took goes back (`rescue`).
                        lock_hands(me.outbox.hands()).pending.push_front(request);
                        return;
                    }
                    let misses = shared.misses.load(Ordering::Relaxed);
                    if let Some(ready) = prepare(shared, request, &mut me.outbox)
                        && me.hold(ready)
                    {
                        me.hash_held();
                    }
                    // That read waited on storage: the next may too, so what is done goes
                    // out now.
                    if shared.misses.load(Ordering::Relaxed) != misses {
                        me.outbox.immediate = true;
                        me.outbox.flush();
                    }
                }
            }
        }
        if !mark_idle(shared, index) {
            return;
        }
    }
}

/// Waits for the next thing for reader `me` to do; `None` when it must leave.
fn next_work<R>(shared: &Shared<R>, me: &mut ReaderSelf<'_, R>, core: usize) -> Option<Work> {
    let readers = shared.io.readers.max(1);
    let batch = shared.tuning.batch_size.max(1);
    let mut state = shared.lock();
    loop {
        if state.finished || state.readers.get(me.index).is_none_or(|r| r.abandoned) {
            return None;
        }
        let slow = state.slow_until.is_some_and(|until| Instant::now() < until);
        if !state.cancelled {
            if let Some(seq) = stream_wanting_chunk(&mut state) {
                return Some(Work::Chunk(seq));
            }
            if !state.requests.is_empty() && (me.core || slow) {
                // No more than a fair share of what is queued, so that every active reader
                // has something in flight.
                let active = if slow { readers } else { core };
                let share = state.requests.len().div_ceil(active).clamp(1, batch);
                let mut taken = take_requests(&mut state.requests, share, shared.io.order);
                for request in taken.iter_mut().filter(|r| r.promoted) {
                    request.promoted = false;
                    state.promoted -= 1;
                }
                shared.queued.store(state.requests.len(), Ordering::Relaxed);
                lock_hands(me.outbox.hands()).pending.extend(taken);
                return Some(Work::Requests);
            }
        }
        // Before sleeping: the files held for lanes are hashed now, results held are posted,
        // and files read and not yet taken must not wait for the next one.
        if lock_hands(me.outbox.hands()).holds() && !state.cancelled {
            return Some(Work::Flush);
        }
        // While reads wait on storage, each result goes out as soon as it exists.
        me.outbox.immediate = slow;
        if state.workers_waiting > 0 && !(state.whole.is_empty() && state.large.is_empty()) {
            shared.workers_cv.notify_one();
        }
        let cv = if me.core {
            &shared.readers_cv
        } else {
            &shared.extra_cv
        };
        // A few requests queued, not yet worth a wake-up: a reader that always takes requests
        // looks again soon anyway, in case the input is slow to bring more. The extra readers
        // are woken when they are wanted.
        let nap = if me.core && !state.requests.is_empty() {
            NAP
        } else {
            POLL
        };
        state.readers_waiting += usize::from(me.core);
        state = cv
            .wait_timeout(state, nap)
            .map(|(state, _)| state)
            .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        state.readers_waiting -= usize::from(me.core);
    }
}

/// How long the extra readers stay in after the last read that had to wait on storage.
const SLOW_HOLD: std::time::Duration = std::time::Duration::from_millis(50);

/// Readers that always take requests: as many as there are cores (at least two); on a
/// network file system, all of them. The others take requests only while reads wait on
/// storage.
///
/// Reads from the page cache are CPU work: more threads than cores only switch between
/// themselves (a warm tree of 100,000 files of 4 KiB took 0.35 s with two readers and over a
/// second with 32 always active, 2.4 context switches per file). Reads from storage wait:
/// there every reader should have a request in flight. Whether a read waits is asked of the
/// kernel: each file's first read is tried without waiting (`RWF_NOWAIT`), and a read the
/// page cache cannot serve at once is a cache miss. [`MISSES_IN_A_ROW`] misses, each within
/// [`SLOW_HOLD`] of the one before, call the extra readers in; [`SLOW_HOLD`] after the last
/// one, they go back to sleep. (Timing the reads instead misfires on a busy machine, where a
/// reader that loses its core looks just like one that waits on a disk.)
pub(crate) fn core_readers(io: &IoPolicy) -> usize {
    if io.network {
        return io.readers.max(1);
    }
    // Asked once: the standard library reads the cgroup's CPU quota from /proc and /sys at
    // every call (nine system calls), and every reader asks.
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    io.readers.clamp(1, cores.max(2))
}

/// The first read of a file, at offset 0: without waiting on storage where the kernel
/// allows it, to learn whether the file is in the page cache.
fn first_read<R>(shared: &Shared<R>, file: &File, buf: &mut [u8]) -> stdio::Result<usize> {
    if !shared.nowait_unsupported.load(Ordering::Relaxed) {
        let mut slices = [stdio::IoSliceMut::new(buf)];
        match rustix::io::preadv2(file, &mut slices, 0, rustix::io::ReadWriteFlags::NOWAIT) {
            Ok(n) => return Ok(n),
            Err(rustix::io::Errno::AGAIN) => cache_miss(shared),
            // No way to ask (a file system or kernel without it): count every file as a
            // miss, so all readers work, as they must where reads may wait.
            Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::INVAL) => {
                shared.nowait_unsupported.store(true, Ordering::Relaxed);
            }
            Err(e) => return Err(e.into()),
        }
    }
    if shared.nowait_unsupported.load(Ordering::Relaxed) {
        cache_miss(shared);
    }
    file.read_at(buf, 0)
}

/// Counts a read that had to wait on storage; calls in the extra readers after a few.
fn cache_miss<R>(shared: &Shared<R>) {
    shared.misses.fetch_add(1, Ordering::Relaxed);
    let mut state = shared.lock();
    let now = Instant::now();
    let recent = state
        .last_slow
        .is_some_and(|last| now.duration_since(last) < SLOW_HOLD);
    state.slow_count = if recent { state.slow_count + 1 } else { 1 };
    state.last_slow = Some(now);
    if state.slow_count < MISSES_IN_A_ROW {
        return;
    }
    let was_slow = state.slow_until.is_some_and(|until| now < until);
    state.slow_until = Some(now + SLOW_HOLD);
    if !was_slow {
        drop(state);
        shared.call_extras(true);
    }
}

/// How long a reader sleeps with a few requests queued before it takes them anyway.
const NAP: std::time::Duration = std::time::Duration::from_millis(1);

/// Cache misses in a row that call the extra readers in.
const MISSES_IN_A_ROW: u32 = 4;

/// Records what reader `index` works on, when a stall timeout watches readers. Returns
/// `false` if the reader was given up on and must leave.
fn mark_busy<R>(
    shared: &Shared<R>,
    index: usize,
    busy: impl FnOnce() -> (u64, std::path::PathBuf, bool),
) -> bool {
    if !shared.watched.load(Ordering::Relaxed) {
        return true;
    }
    let (seq, name, stream) = busy();
    let mut state = shared.lock();
    let Some(slot) = state.readers.get_mut(index) else {
        return false;
    };
    if slot.abandoned {
        return false;
    }
    slot.busy = Some((seq, name, stream, Instant::now()));
    true
}

/// Records that reader `index` is between items; `false` if it must leave.
fn mark_idle<R>(shared: &Shared<R>, index: usize) -> bool {
    if !shared.watched.load(Ordering::Relaxed) {
        return true;
    }
    let mut state = shared.lock();
    match state.readers.get_mut(index) {
        Some(slot) if !slot.abandoned => {
            slot.busy = None;
            true
        }
        _ => false,
    }
}

/// Takes up to `n` requests: the first ones, or on a spinning disk the ones with the
/// smallest inode numbers among the next few, so the disk's head sweeps rather than seeks
/// (files of one directory were mostly created in inode order, their data near their
/// inodes).
pub(crate) fn take_requests(
    requests: &mut VecDeque<Request>,
    n: usize,
    order: ReadOrder,
) -> Vec<Request> {
    match order {
        ReadOrder::Walk => requests.drain(..n.min(requests.len())).collect(),
        ReadOrder::Inode { lookahead } => {
            let mut taken = Vec::with_capacity(n);
            while taken.len() < n && !requests.is_empty() {
                let horizon = lookahead.max(1).min(requests.len());
                let pick = (0..horizon)
                    .min_by_key(|&i| (requests[i].source.ino().unwrap_or(u64::MAX), i))
                    .unwrap_or(0);
                if let Some(request) = requests.remove(pick) {
                    taken.push(request);
                }
            }
            taken
        }
    }
}

/// The scout: looks ahead in the queue of requests for large files, and moves them to the
/// front, so that a large file anywhere in the window starts early and no core is left to
/// finish it alone at the end (the workers then take the largest first).
///
/// It costs a stat per file looked at, so it looks only while the files opened so far
/// average [`SCOUT_MIN_AVERAGE`] bytes or more: there a stat is a few percent of the work of
/// a file, and the window (4096 files) holds seconds of work, time enough for a large file
/// to finish beside the rest. On trees of small files the window holds a few milliseconds of
/// work, and looking ahead could not help. The feeder runs it while it waits for room in the
/// window, which is when the readers are behind.
#[derive(Default)]
pub(crate) struct Scout {
    /// Requests up to this sequence number were looked at.
    next: u64,
    /// Large files found and not moved yet: size and sequence number.
    found: Vec<(u64, u64)>,
}

/// Average size of the files opened, from which the scout looks ahead.
const SCOUT_MIN_AVERAGE: u64 = 64 << 10;

/// Requests the scout looks at in one step.
const SCOUT_STEP: usize = 32;

/// Large files moved ahead and not yet started, at most (each holds a descriptor once
/// opened; the workers stream two each at most).
const PROMOTED_MAX: usize = 4;

impl Scout {
    /// Whether looking ahead is worth it now, and there is something to look at or move.
    pub fn wanted<R>(&self, shared: &Shared<R>, state: &State) -> bool {
        let files = shared.opened_files.load(Ordering::Relaxed);
        let bytes = shared.opened_bytes.load(Ordering::Relaxed);
        if files < 8 || bytes / files < SCOUT_MIN_AVERAGE {
            return false;
        }
        // The queue is in sequence order but for a few requests moved to its front.
        let unseen = state.requests.back().is_some_and(|r| r.seq >= self.next);
        let movable = !self.found.is_empty() && self.room(state) > 0;
        unseen || movable
    }

    /// Whether anything queued is left to look at or to move.
    pub fn pending(&self, state: &State) -> bool {
        let unseen = state.requests.back().is_some_and(|r| r.seq >= self.next);
        unseen || (!self.found.is_empty() && !state.requests.is_empty())
    }

    /// How many more large files may be moved ahead now.
    fn room(&self, state: &State) -> usize {
        PROMOTED_MAX.saturating_sub(state.promoted + state.large.len())
    }

    /// Looks at the next few requests, and moves the largest files found to the front while
    /// there is room.
    pub fn step<R>(&mut self, shared: &Shared<R>) {
        let batch: Vec<(u64, Source)> = {
            let state = shared.lock();
            state
                .requests
                .iter()
                .filter(|r| r.seq >= self.next && !r.promoted)
                .take(SCOUT_STEP)
                .map(|r| (r.seq, r.source.clone()))
                .collect()
        };
        if let Some(&(last, _)) = batch.last() {
            self.next = last + 1;
        }
        for (seq, source) in batch {
            if let Some(Ok(stat)) = source.stat() {
                let regular = FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile;
                if regular && stat.st_size as u64 > WHOLE_MAX {
                    self.found.push((stat.st_size as u64, seq));
                }
            }
        }
        self.promote(shared);
    }

    /// Moves the largest files found to the front of the queue, while there is room.
    fn promote<R>(&mut self, shared: &Shared<R>) {
        if self.found.is_empty() {
            return;
        }
        self.found.sort_unstable();
        let mut state = shared.lock();
        let mut moved = false;
        while self.room(&state) > 0 {
            let Some((_, seq)) = self.found.pop() else {
                break;
            };
            // Not queued any more: a reader took it in its turn.
            let Some(at) = state.requests.iter().position(|r| r.seq == seq) else {
                continue;
            };
            if let Some(mut request) = state.requests.remove(at) {
                request.promoted = true;
                state.promoted += 1;
                state.requests.push_front(request);
                moved = true;
            }
        }
        drop(state);
        if moved {
            shared.readers_cv.notify_all();
        }
    }
}

/// Files from this size up are announced to the kernel (`posix_fadvise`) before they are
/// read: a small file is one block, which the read itself fetches.
const FADVISE_MIN: u64 = 64 << 10;

/// Opens and prepares one file: see the module header. A file read whole comes back, for the
/// reader's own lanes.
fn prepare<R: Send + 'static>(
    shared: &Shared<R>,
    request: Request,
    outbox: &mut Outbox<'_, R>,
) -> Option<Ready> {
    let Request {
        seq,
        source,
        algorithm,
        unless,
        ..
    } = request;
    if let Some(recorded) = unless
        && unchanged(&source, &recorded)
    {
        let name = source.into_name();
        let unchanged = Hashing::Unchanged {
            name,
            state: recorded,
        };
        outbox.finish(seq, Ok(unchanged));
        return None;
    }
    // A source named on the command line may be a FIFO, whose open waits for a writer, or
    // standard input, whose reads may wait for ever: what this reader holds is finished
    // first, since it comes before in the output.
    if !matches!(source, Source::InDir { .. }) {
        hash_held(outbox);
        outbox.flush();
    }
    let opened = match open_source(&source, &shared.skip) {
        Ok(opened) => opened,
        Err(reason) => {
            outbox.finish(seq, outcome(source, Err(reason)));
            return None;
        }
    };
    let (file, before) = match opened {
        Opened::Skipped => {
            outbox.finish(seq, Ok(Hashing::Skipped));
            return None;
        }
        Opened::Stdin => {
            let hashed = hash_stream(&mut stdio::stdin().lock(), algorithm);
            outbox.finish(seq, outcome(source, hashed.map(Some)));
            return None;
        }
        Opened::File(file, before) => (file, before),
    };
    let size = before.st_size as u64;
    let regular = FileType::from_raw_mode(before.st_mode) == FileType::RegularFile;
    if regular {
        shared.count_opened(size);
    } else {
        // FIFOs and devices named on the command line: hashed here.
        let hashed = hash_stream(&mut &file, algorithm);
        outbox.finish(seq, outcome(source, hashed.map(Some)));
        return None;
    }
    if size < LANE_MIN {
        // Small files, and /proc files whose size reads 0: hashed here.
        let hashed = hash_small(shared, &file, &before, algorithm);
        outbox.finish(seq, outcome(source, hashed.map(Some)));
        return None;
    }
    if size <= WHOLE_MAX {
        return read_for_lanes(shared, (seq, source, algorithm), file, before, outbox);
    }
    let ahead = std::num::NonZeroU64::new(size.min(READ_AHEAD));
    let _ = rustix::fs::fadvise(&file, 0, ahead, Advice::WillNeed);
    let file = Arc::new(file);
    hand_over(
        shared,
        seq,
        source,
        algorithm,
        ReadyKind::Large { file, before },
    );
    None
}

/// Reads a regular file whole into a buffer of the budget, for this reader's lanes.
fn read_for_lanes<R: Send + 'static>(
    shared: &Shared<R>,
    (seq, source, algorithm): (u64, Source, Algorithms),
    file: File,
    before: Stat,
    outbox: &mut Outbox<'_, R>,
) -> Option<Ready> {
    let size = before.st_size as u64;
    if size >= FADVISE_MIN {
        // Let the kernel start on it now: the wait for room in the budget can overlap.
        let len = std::num::NonZeroU64::new(size);
        let _ = rustix::fs::fadvise(&file, 0, len, Advice::WillNeed);
    }
    // No room in the budget: the files this reader holds for its lanes are hashed first,
    // which gives their room back (every reader waiting with full hands would wait forever).
    let mut data = match shared.buffers.try_acquire(size as usize) {
        Some(data) => data,
        None => {
            hash_held(outbox);
            // `None`: the run was cancelled.
            shared.buffers.acquire(size as usize)?
        }
    };
    match read_whole(shared, &file, &before, &mut data) {
        Ok(()) => {
            let state = regular_state(&before);
            Some(Ready {
                seq,
                name: source.into_name(),
                algorithm,
                kind: ReadyKind::Whole { data, state },
            })
        }
        Err(reason) => {
            outbox.finish(seq, outcome(source, Err(reason)));
            None
        }
    }
}

/// Queues a prepared file for the hashing workers.
fn hand_over<R>(
    shared: &Shared<R>,
    seq: u64,
    source: Source,
    algorithm: Algorithms,
    kind: ReadyKind,
) {
    let ready = Ready {
        seq,
        name: source.into_name(),
        algorithm,
        kind,
    };
    let mut state = shared.lock();
    let large = matches!(ready.kind, ReadyKind::Large { .. });
    match ready.kind {
        ReadyKind::Whole { .. } => state.whole.push_back(ready),
        ReadyKind::Large { .. } => state.large.push(ready),
    }
    if state.workers_waiting > 0 && large {
        shared.workers_cv.notify_one();
    }
}

/// Reads a regular file of `before.st_size` bytes whole into `data`, and checks that it did
/// not change meanwhile: it ended early (it shrank), or its status moved.
fn read_whole<R>(
    shared: &Shared<R>,
    file: &File,
    before: &Stat,
    data: &mut Buffer,
) -> Result<(), Reason> {
    let size = before.st_size as usize;
    // Ending before the size it had, it shrank while being read (and may have grown back
    // within one timestamp tick, so the status check alone could miss it).
    fill(data.fill(size), |buf, done| {
        if done == 0 {
            first_read(shared, file, buf)
        } else {
            file.read_at(buf, done as u64)
        }
    })?;
    // Read as far as the size it had: no read is needed to see its end. If it grew
    // meanwhile, the status says so.
    if changed(before, &fstat(file)?) {
        return Err(Reason::Changed);
    }
    Ok(())
}

thread_local! {
    /// The block buffer of this reader, reused for every file it hashes itself.
    static BLOCK_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's block buffer (or a fresh one, if `f` is somehow re-entered).
fn with_block<T>(f: impl FnOnce(&mut [u8]) -> T) -> T {
    BLOCK_BUF.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() != BLOCK {
                buf.resize(BLOCK, 0);
            }
            f(&mut buf)
        }
        Err(_) => f(&mut vec![0; BLOCK]),
    })
}

/// Hashes an open regular file of `before.st_size` bytes (to its end, if its size reads 0,
/// as in /proc), and checks that it did not change meanwhile.
fn hash_small<R>(
    shared: &Shared<R>,
    file: &File,
    before: &Stat,
    algorithm: Algorithms,
) -> Result<Digested, Reason> {
    let size = before.st_size as u64;
    let (digest, bytes) = with_block(|buf| {
        let mut hasher = Hasher::new(algorithm);
        let mut total = 0u64;
        loop {
            let read = if total == 0 {
                first_read(shared, file, buf)
            } else {
                file.read_at(buf, total)
            };
            match read {
                Ok(0) => break,
                Ok(n) => {
                    hasher.update(&buf[..n]);
                    total += n as u64;
                    // Read to its size: no read is needed to see its end. If it grew
                    // meanwhile, the status check below says so.
                    if size > 0 && total == size {
                        break;
                    }
                }
                Err(e) if e.kind() == stdio::ErrorKind::Interrupted => {
                    if signals::stop_requested().is_some() {
                        return Err(Reason::from(e));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok((hasher.finalize(), total))
    })?;
    // Fewer bytes than its size: it shrank while being read.
    if bytes < size || changed(before, &fstat(file)?) {
        return Err(Reason::Changed);
    }
    Ok(Digested {
        digest,
        bytes,
        state: regular_state(before),
    })
}

/// Hashes everything `reader` yields until its end: standard input, a FIFO, a device.
fn hash_stream(reader: &mut impl Read, algorithm: Algorithms) -> Result<Digested, Reason> {
    let (digest, bytes) = with_block(|buf| hash_reader(algorithm, reader, buf))?;
    Ok(Digested {
        digest,
        bytes,
        state: None,
    })
}

/// The stream of `seq` if it wants a chunk and no reader is producing one: marks it taken.
fn stream_wanting_chunk(state: &mut State) -> Option<u64> {
    let slot = state.streams.iter_mut().find(|s| {
        !s.producing && s.end.is_none() && !s.abandoned && s.chunks.len() < CHUNKS_AHEAD
    })?;
    slot.producing = true;
    Some(slot.seq)
}

/// Produces the chunks streams want now, if any stream is open, as reader `index`. `false`
/// if the reader was given up on meanwhile and must leave.
fn produce_wanted_chunks<R>(shared: &Shared<R>, index: usize) -> bool {
    loop {
        let seq = {
            let mut state = shared.lock();
            if state.streams.is_empty() {
                return true;
            }
            match stream_wanting_chunk(&mut state) {
                Some(seq) => seq,
                None => return true,
            }
        };
        if !mark_busy(shared, index, || (seq, std::path::PathBuf::new(), true)) {
            unclaim_chunk(shared, seq);
            return false;
        }
        produce_chunk(shared, seq);
    }
}

/// Gives back the chunk of stream `seq` that this reader claimed and will not produce.
fn unclaim_chunk<R>(shared: &Shared<R>, seq: u64) {
    if let Some(slot) = shared.lock().streams.iter_mut().find(|s| s.seq == seq) {
        slot.producing = false;
    }
    shared.readers_cv.notify_all();
}

/// Produces the next chunk of the stream of item `seq`.
fn produce_chunk<R>(shared: &Shared<R>, seq: u64) {
    let Some((file, offset, size, map)) = ({
        let state = shared.lock();
        state
            .streams
            .iter()
            .find(|s| s.seq == seq)
            .map(|s| (Arc::clone(&s.file), s.next, s.size, s.map))
    }) else {
        return;
    };
    let len = (size - offset).min(if map { WINDOW } else { READ_CHUNK } as u64) as usize;
    // Keep the kernel reading ahead of the chunk after this one.
    let ahead = std::num::NonZeroU64::new((size - offset).min(READ_AHEAD));
    let _ = rustix::fs::fadvise(&*file, offset, ahead, Advice::WillNeed);
    let produced = if map {
        Window::map(&file, offset, len)
            .map(Chunk::Mapped)
            .map_err(Reason::from)
    } else {
        read_chunk(&file, offset, len).map(Chunk::Read)
    };
    let mut state = shared.lock();
    if let Some(slot) = state.streams.iter_mut().find(|s| s.seq == seq) {
        slot.producing = false;
        slot.progress = Instant::now();
        match produced {
            Ok(chunk) => {
                slot.next += chunk.len() as u64;
                slot.chunks.push_back(chunk);
                if slot.next >= slot.size {
                    slot.end = Some(Ok(()));
                }
            }
            Err(reason) => slot.end = Some(Err(reason)),
        }
    }
    drop(state);
    shared.workers_cv.notify_all();
}

/// Reads `len` bytes at `offset`; a file that ends before is reported as changed (it shrank
/// while being read).
fn read_chunk(file: &File, offset: u64, len: usize) -> Result<Vec<u8>, Reason> {
    let mut buf = vec![0u8; len];
    fill(&mut buf, |rest, done| {
        file.read_at(rest, offset + done as u64)
    })?;
    Ok(buf)
}

/// Fills `buf` with `read(rest, done)`, which reads into `rest` the bytes from `done` on. A
/// read that ends early is a file that shrank while being read; EINTR is retried unless the
/// run is stopping.
fn fill(
    buf: &mut [u8],
    mut read: impl FnMut(&mut [u8], usize) -> stdio::Result<usize>,
) -> Result<(), Reason> {
    let mut done = 0;
    while done < buf.len() {
        match read(&mut buf[done..], done) {
            Ok(0) => return Err(Reason::Changed),
            Ok(n) => done += n,
            Err(e) if e.kind() == stdio::ErrorKind::Interrupted => {
                if signals::stop_requested().is_some() {
                    return Err(e.into());
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Gives up on what has made no progress for the stall timeout: the item fails as "timed
/// out", its reader is left to the kernel (and replaced), and the run goes on.
pub(crate) fn watch_stalls<R: Send + 'static>(shared: &Arc<Shared<R>>) {
    let Some(limit) = shared.io.stall_timeout else {
        return;
    };
    let mut given_up = Vec::new();
    let mut replacements = Vec::new();
    {
        let mut state = shared.lock();
        let now = Instant::now();
        for index in 0..state.readers.len() {
            let slot = &state.readers[index];
            let Some((seq, name, stream, since)) = slot.busy.clone() else {
                continue;
            };
            if slot.abandoned || now.duration_since(since) < limit {
                continue;
            }
            // A stream's progress is its last chunk.
            if stream {
                let progressed = state
                    .streams
                    .iter()
                    .find(|s| s.seq == seq)
                    .is_some_and(|s| now.duration_since(s.progress) < limit);
                if progressed {
                    continue;
                }
                if let Some(s) = state.streams.iter_mut().find(|s| s.seq == seq) {
                    s.end = Some(Err(Reason::TimedOut));
                    s.producing = false;
                }
            } else if let Some(then) = shared.then_slot(seq).take() {
                given_up.push((seq, name, then));
            }
            let slot = &mut state.readers[index];
            slot.abandoned = true;
            slot.busy = None;
            replacements.push(slot.core);
        }
        // Workers waiting on a chunk that will not come see the end now.
        shared.workers_cv.notify_all();
        // Each replacement takes the place of the reader given up on: one that always takes
        // requests is replaced by one that does too.
        for &core in &replacements {
            state.readers.push(Reader {
                core,
                ..Reader::default()
            });
        }
    }
    let first = shared.lock().readers.len() - replacements.len();
    for index in first..first + replacements.len() {
        spawn_reader(Arc::clone(shared), index);
    }
    for (seq, name, then) in given_up {
        // The reader that holds the item may never come back: the failure is made here.
        shared
            .mailbox
            .post(seq, then.call(Err(Failure::new(name, Reason::TimedOut))));
    }
}

/// How long a reader may wait on one file while holding what others could finish.
const RESCUE_AFTER: std::time::Duration = POLL;

/// Takes over what readers hold while they wait on one file for long (or were given up on):
/// the requests they took and have not started go back to the front of the queue, the files
/// they read whole go to the hashing workers, and their results to the mailbox. Called by the
/// printing thread when it waited for the next result in vain, so that a reader stuck on one
/// file holds up that file only.
///
/// Taking too much is harmless (a reader that was merely busy finds its hands emptier than it
/// left them): every item is still finished exactly once, by whoever holds it.
pub(crate) fn rescue<R: Send + 'static>(shared: &Shared<R>) {
    let now = Instant::now();
    let readers: Vec<(Arc<Mutex<Hands>>, bool)> = shared
        .lock()
        .readers
        .iter()
        .map(|slot| (Arc::clone(&slot.hands), slot.abandoned))
        .collect();
    let mut requests = Vec::new();
    let mut whole = Vec::new();
    for (hands, abandoned) in readers {
        // A reader working with its hands right now is not held up.
        let Ok(mut hands) = hands.try_lock() else {
            continue;
        };
        let held_up = abandoned
            || hands
                .since
                .is_some_and(|since| now.duration_since(since) >= RESCUE_AFTER);
        if !held_up || !hands.holds() {
            continue;
        }
        requests.extend(hands.pending.drain(..));
        whole.append(&mut hands.whole);
        let done = std::mem::take(&mut hands.done);
        drop(hands);
        post_done(shared, done);
    }
    if requests.is_empty() && whole.is_empty() {
        return;
    }
    let mut state = shared.lock();
    // They were taken before what is still queued, and come first again.
    requests.sort_by_key(|request| request.seq);
    for request in requests.into_iter().rev() {
        state.requests.push_front(request);
    }
    shared.queued.store(state.requests.len(), Ordering::Relaxed);
    for ready in whole.into_iter().rev() {
        state.whole.push_front(ready);
    }
    drop(state);
    shared.readers_cv.notify_all();
    shared.workers_cv.notify_all();
}

/// Interrupts every reader blocked in a system call, where the file system allows it: a
/// signal aimed at the thread, without `SA_RESTART`, makes an interruptible wait return.
pub(crate) fn interrupt_readers<R>(shared: &Shared<R>) {
    if !signals::wake_installed() {
        return;
    }
    let threads: Vec<libc::pthread_t> = shared
        .lock()
        .readers
        .iter()
        .filter_map(|r| r.thread)
        .collect();
    for thread in threads {
        // SAFETY: the thread ids were taken by the threads themselves; a thread that ended
        // meanwhile makes pthread_kill fail (ESRCH with glibc), which is harmless here.
        unsafe {
            libc::pthread_kill(thread, signals::WAKE);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::path::{Path, PathBuf};

    use super::take_requests;
    use crate::digest::Algorithms;
    use crate::engine::policy::ReadOrder;
    use crate::engine::shared::Request;
    use crate::engine::source::{DirHandle, Source};

    /// Requests in sequence order, with these inode numbers.
    fn queue(inodes: &[u64]) -> VecDeque<Request> {
        let dir = DirHandle::open(Path::new(".")).expect("the working directory opens");
        inodes
            .iter()
            .enumerate()
            .map(|(seq, &ino)| Request {
                seq: seq as u64,
                source: Source::InDir {
                    path: PathBuf::from(format!("f{seq}")),
                    dir: dir.clone(),
                    ino,
                },
                algorithm: Algorithms::SHA256,
                unless: None,
                promoted: false,
            })
            .collect()
    }

    fn inodes(taken: &[Request]) -> Vec<u64> {
        taken.iter().map(|r| r.source.ino().unwrap_or(0)).collect()
    }

    #[test]
    fn walk_order_takes_the_first_requests() {
        let mut q = queue(&[50, 10, 40, 20, 30]);
        let taken = take_requests(&mut q, 2, ReadOrder::Walk);
        assert_eq!(inodes(&taken), [50, 10]);
        let rest = take_requests(&mut q, 10, ReadOrder::Walk);
        assert_eq!(inodes(&rest), [40, 20, 30]);
        assert!(q.is_empty());
    }

    #[test]
    fn inode_order_sweeps_within_the_lookahead_only() {
        // Lookahead 3: each pick is the smallest inode among the first 3 requests still
        // queued (never one further back), and every request is taken exactly once.
        let mut q = queue(&[50, 10, 40, 20, 30, 5]);
        let order = ReadOrder::Inode { lookahead: 3 };
        let taken = take_requests(&mut q, 6, order);
        assert_eq!(inodes(&taken), [10, 20, 30, 5, 40, 50]);
        assert!(q.is_empty());

        // Ties keep walk order; a lookahead of the whole queue sorts it.
        let mut q = queue(&[7, 3, 7, 1, 3]);
        let taken = take_requests(&mut q, 5, ReadOrder::Inode { lookahead: 64 });
        assert_eq!(inodes(&taken), [1, 3, 3, 7, 7]);
        let seqs: Vec<u64> = taken.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [3, 1, 4, 0, 2]);

        // A lookahead of 1 (or 0) is walk order.
        let mut q = queue(&[9, 8, 7]);
        let taken = take_requests(&mut q, 3, ReadOrder::Inode { lookahead: 0 });
        assert_eq!(inodes(&taken), [9, 8, 7]);
    }

    #[test]
    fn sources_without_an_inode_go_last_within_the_lookahead() {
        let mut q = queue(&[4, 2]);
        q.push_front(Request {
            seq: 99,
            source: Source::Path(PathBuf::from("named")),
            algorithm: Algorithms::SHA256,
            unless: None,
            promoted: false,
        });
        let taken = take_requests(&mut q, 3, ReadOrder::Inode { lookahead: 8 });
        let seqs: Vec<u64> = taken.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [1, 0, 99]);
    }
}
