//! The reader threads: they open and read files, so that many requests are in flight while
//! the cores hash. Everything here runs on a reader.
//!
//! A pool of threads rather than io_uring: a reader blocked in `open` (an inode to read from
//! a cold disk, a round trip to a file server) costs a thread, not a core, and the kernel
//! keeps every blocked reader's request in flight. Threads also degrade well: a read stuck
//! forever holds one reader, which the stall watchdog replaces. Readers are not joined: one
//! stuck in the kernel holds nothing but itself.
//!
//! A reader takes a few requests at a time from the queue (its fair share, in walk order or,
//! on a spinning disk, inode order) and, for each, in its own order:
//!
//! - if the command recorded a state for the file (`hash --update`), a stat first: the same
//!   state means the file is not opened at all;
//! - open it and take its status (a skipped file, the manifest being written, ends here);
//! - what the status says ([`FileKind`]): standard input, a FIFO or a device named on the
//!   command line is read to its end here; a small file is read and hashed here; a file up
//!   to 1 MiB is read whole and hashed in the reader's lanes, several at once; a larger one
//!   goes to a worker (`stream`): on a local file system the worker maps it while this
//!   reader keeps the kernel reading ahead of it; elsewhere this reader reads it in chunks,
//!   a few ahead, into a channel the worker hashes from. Then it goes on with the next
//!   request.
//!
//! Each file's first read is tried without waiting on storage (`RWF_NOWAIT`): a read the
//! page cache cannot serve at once is a cache miss, and a few in a row call the extra
//! readers in (`policy::Slowness`). Results are held and posted a handful at a time while
//! reads are fast, at once while they wait on storage.
//!
//! What a reader took and holds is in its [`Desk`], where the calling thread finds it when
//! the reader waits on storage for long (`supervisor::rescue`).

use std::io::{self as stdio, Read};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rustix::fs::{FileType, Stat};

use crate::digest::{Algorithms, Hasher};
use crate::engine::policy::{self, FileKind};
use crate::engine::read::{Hashed, Hashing, changed, hash_reader, regular_state};
use crate::engine::run::buffers::{PageBuf, Spares};
use crate::engine::run::limits::{self, PacedRead, UncachedStdin};
use crate::engine::run::state::{Busy, Desk, Request, Shared, StreamFlags, lock};
use crate::engine::source::{FileId, Source};
use crate::engine::storage::Handle;

use crate::report::{Failure, Reason};
use crate::signals;

mod stream;
mod whole;

pub(crate) use whole::hash_wholes;

/// Results a reader holds before it posts them (it also posts when it runs out of work,
/// and at once while reads wait on storage). Each post takes the results' lock, which the
/// calling thread also takes: 16 cost a context switch every 20 files of a warm tree of
/// 4 KiB files, 64 one every 50, and the run 0.95 x the time (200,000 tiny files: 0.92 x);
/// 128 gained nothing more.
const HELD_MAX: usize = 64;

/// The block buffer of a reader, for what it hashes a block at a time.
const BLOCK: usize = 64 << 10;

/// Files from this size up are announced to the kernel (`posix_fadvise`) before they are
/// read: a small file is one block, which the read itself fetches.
const ADVISE_MIN: u64 = 64 << 10;

/// Starts reader number `index`. Not joined: a reader stuck in the kernel must not hold the
/// run, and each one leaves when the run is over. A reader that cannot be started ends the
/// run (the calling thread sees it at once).
pub(crate) fn spawn<R: Send + 'static>(shared: Arc<Shared<R>>, index: usize) {
    let reader = Arc::clone(&shared);
    let spawned = std::thread::Builder::new()
        .name(format!("sumpool-reader-{index}"))
        .stack_size(256 << 10)
        .spawn(move || {
            // SAFETY: pthread_self has no preconditions.
            let me = unsafe { libc::pthread_self() };
            let registered = reader.readers().get_mut(index).map(|slot| {
                slot.thread = Some(me);
                (Arc::clone(&slot.desk), slot.core)
            });
            if let Some((desk, core)) = registered {
                Reader::new(&reader, index, desk, core).run();
            }
        });
    if let Err(e) = spawned {
        shared.thread_failed(&e);
    }
}

/// What a reader takes from the shared state.
enum Work {
    /// Hash the files it holds and post its results: nothing else to do now.
    Flush,
    /// Open and read the requests it took (on its desk).
    Requests,
}

/// One reader, and what it keeps between files.
struct Reader<'a, R> {
    shared: &'a Shared<R>,
    index: usize,
    /// It always takes requests (else only while reads are slow).
    core: bool,
    desk: Arc<Mutex<Desk>>,
    spares: Spares,
    block: PageBuf,
    /// Post each result at once (reads wait on storage).
    immediate: bool,
    /// Its item is watched by the stall timeout (`--stall-timeout`).
    watched: bool,
    /// Vectors kept from post to post (held results, and the results made of them).
    spare_held: Vec<(u64, Result<Hashing, Failure>)>,
    posting: Vec<(u64, R)>,
    /// Cache hits in a row (`policy::probe`).
    hits: std::cell::Cell<u32>,
}

impl<'a, R: Send + 'static> Reader<'a, R> {
    fn new(shared: &'a Shared<R>, index: usize, desk: Arc<Mutex<Desk>>, core: bool) -> Self {
        Reader {
            shared,
            index,
            core,
            desk,
            spares: Spares::default(),
            block: PageBuf::default(),
            immediate: false,
            watched: shared.io.stall_timeout.is_some(),
            spare_held: Vec::new(),
            posting: Vec::new(),
            hits: std::cell::Cell::new(0),
        }
    }

    fn run(mut self) {
        loop {
            let Some(work) = self.next_work() else {
                return;
            };
            match work {
                Work::Flush => {
                    self.hash_wholes();
                    self.post_held();
                }
                Work::Requests => {
                    if !self.read_taken() {
                        return;
                    }
                }
            }
        }
    }

    /// Waits for the next thing to do; `None` when the reader must leave.
    fn next_work(&mut self) -> Option<Work> {
        let shared = self.shared;
        let mut requests = shared.requests();
        loop {
            let abandoned = || shared.readers().get(self.index).is_none_or(|r| r.abandoned);
            if requests.finished || abandoned() {
                return None;
            }
            let slow = lock(&shared.slowness).is_slow(Instant::now());
            let streaming = shared.streaming.load(Ordering::Acquire);
            let may_take = self.may_take(slow, streaming);
            if !requests.cancelled && !requests.queue.is_empty() && may_take {
                let active = if slow {
                    shared.io.readers
                } else {
                    (shared.core_readers + streaming).min(shared.io.readers)
                };
                let n = policy::share(requests.queue.len(), active, shared.tuning.batch_size);
                let mut taken =
                    policy::take_in_order(&mut requests.queue, n, shared.io.order, |r| {
                        r.source.ino()
                    });
                for request in taken.iter_mut().filter(|r| r.promoted) {
                    request.promoted = false;
                    requests.promoted -= 1;
                }
                shared.queued.store(requests.queue.len(), Ordering::Relaxed);
                lock(&self.desk).taken.extend(taken);
                return Some(Work::Requests);
            }
            // Before sleeping: the files held for lanes are hashed now, and results held are
            // posted.
            if lock(&self.desk).holds() && !requests.cancelled {
                return Some(Work::Flush);
            }
            self.immediate = slow;
            let cv = if self.core {
                &shared.requests_cv
            } else {
                &shared.extras_cv
            };
            requests.readers_waiting += usize::from(self.core);
            let (woken, timeout) = cv
                .wait_timeout(requests, super::handoff::POLL)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            requests = woken;
            requests.readers_waiting -= usize::from(self.core);
            let work_ready = !requests.queue.is_empty() && !requests.cancelled;
            let may_take = self.may_take(
                lock(&shared.slowness).is_slow(Instant::now()),
                shared.streaming.load(Ordering::Acquire),
            );
            crate::engine::count_lost_wakeup(timeout.timed_out(), work_ready && may_take);
        }
    }

    /// Whether this reader takes requests now: a core reader always; an extra one while
    /// reads are slow, or in the place of a core reader busy streaming a large file (the
    /// first extras, one for each reader streaming: more would only take each other's
    /// requests and hash them alone rather than in lanes).
    fn may_take(&self, slow: bool, streaming: usize) -> bool {
        self.core || slow || self.index < self.shared.core_readers + streaming
    }

    /// Reads the requests on its desk, one after the other; `false` if the reader was given
    /// up on meanwhile and must leave.
    fn read_taken(&mut self) -> bool {
        loop {
            let request = {
                let mut desk = lock(&self.desk);
                let Some(request) = desk.taken.pop_front() else {
                    return true;
                };
                desk.since = Some(Instant::now());
                request
            };
            let misses = self.shared.counters.misses.load(Ordering::Relaxed);
            if !self.read_one(request) {
                return false;
            }
            // That read waited on storage: the next may too, so what is done goes out now.
            if self.shared.counters.misses.load(Ordering::Relaxed) != misses {
                self.immediate = true;
                self.post_held();
            }
        }
    }

    /// Opens and reads one file: see the module header. `false` if the reader was given up
    /// on and must leave.
    fn read_one(&mut self, request: Request) -> bool {
        let Request {
            seq,
            source,
            algorithm,
            unless,
            ..
        } = request;
        // The time is up (`--max-duration`): nothing more is started.
        if self.shared.cut.load(Ordering::Acquire) {
            self.done(seq, Ok(Hashing::NotReached));
            return true;
        }
        if let Some(recorded) = unless {
            let stat = self.in_storage(seq, &source, || self.shared.storage.stat(&source));
            if stat.as_ref().ok().and_then(regular_state) == Some(recorded) {
                let name = source.into_name();
                let unchanged = Hashing::Unchanged {
                    name,
                    state: recorded,
                };
                self.done(seq, Ok(unchanged));
                return self.out_of_storage();
            }
        }
        // Standard input's reads may wait for ever: what this reader holds is finished
        // first, since it comes before in the output. (A FIFO named on the command line is
        // flushed for once its open returned, as a file that is not regular; an open that
        // waits meanwhile is the supervisor's to rescue. Flushing before every named path
        // would hash the files of a `check`, all named, one at a time: twice the CPU of
        // `hash` on a tree of 1 MiB files, where they interleave in lanes.)
        if matches!(source, Source::Stdin) {
            self.flush();
        }
        if matches!(source, Source::Stdin) {
            let stdin = UncachedStdin::new(stdio::stdin().lock(), self.shared.limits.nocache);
            let hashed = match self.shared.pace.clone() {
                Some(pace) => self.hash_sequential(&mut PacedRead(stdin, &pace, seq), algorithm),
                None => self.hash_sequential(&mut { stdin }, algorithm),
            };
            self.done(seq, outcome(source, hashed));
            return true;
        }
        let Some((source, handle, before)) = self.open(seq, source) else {
            return self.out_of_storage();
        };
        let regular = FileType::from_raw_mode(before.st_mode) == FileType::RegularFile;
        let size = before.st_size as u64;
        if let Some(unread) = self.no_time_for(regular, size, &source) {
            self.done(seq, Ok(unread));
            return self.out_of_storage();
        }
        if regular {
            let counters = &self.shared.counters;
            counters.opened_files.fetch_add(1, Ordering::Relaxed);
            counters.opened_bytes.fetch_add(size, Ordering::Relaxed);
        }
        let file = (seq, source, algorithm);
        match policy::kind_of(regular, size) {
            FileKind::Sequential => {
                self.flush();
                let mut stream = HandleReader(&*handle);
                let hashed = self.hash_sequential(&mut stream, file.2);
                self.done(seq, outcome(file.1, hashed));
            }
            FileKind::Small => {
                let hashed = self.hash_small(&*handle, &before, file.2);
                self.done(seq, outcome(file.1, hashed.map(Some)));
            }
            FileKind::Whole => self.read_whole(file, &*handle, &before),
            FileKind::Large => return self.stream(file, handle, before),
        }
        self.out_of_storage()
    }

    /// Under a rate and a time box, a file that cannot be read in the time left is not
    /// started: the rate would go to it, and the files behind it would be given up with it
    /// at the end, night after night. Left for the next run, which starts with it; said
    /// (`TooLong`), if even a whole box is too short for it.
    fn no_time_for(&self, regular: bool, size: u64, source: &Source) -> Option<Hashing> {
        let limits = &self.shared.limits;
        // Most runs have neither: no clock read per file for them.
        limits.bwlimit.and(limits.deadline)?;
        let deadline = limits.deadline.as_ref();
        match limits::out_of_time(size, limits.bwlimit, deadline, Instant::now())? {
            _ if !regular => None,
            true => Some(Hashing::TooLong {
                name: source.name().to_path_buf(),
                bytes: size,
            }),
            false => Some(Hashing::NotReached),
        }
    }

    /// Opens `source` under the run's limits and takes its status; `None` once the item is
    /// finished: the open failed, or the file is one of the run's own.
    fn open(&mut self, seq: u64, source: Source) -> Option<(Source, Box<dyn Handle>, Stat)> {
        let opened = self.in_storage(seq, &source, || -> stdio::Result<_> {
            let handle = self.shared.storage.open(&source)?;
            let stat = handle.stat()?;
            Ok((handle, stat))
        });
        let (handle, before) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                self.done(seq, outcome(source, Err(e.into())));
                return None;
            }
        };
        let id = FileId {
            dev: before.st_dev,
            ino: before.st_ino,
        };
        if self.shared.skip.contains(&id) {
            self.done(seq, Ok(Hashing::Skipped));
            return None;
        }
        let (pace, nocache) = (self.shared.pace.as_ref(), self.shared.limits.nocache);
        Some((
            source,
            limits::wrap(handle, &before, pace, nocache, seq),
            before,
        ))
    }

    /// Runs `call`, a call to storage for item `seq`, marked busy for the stall watchdog.
    fn in_storage<T>(&self, seq: u64, source: &Source, call: impl FnOnce() -> T) -> T {
        if self.watched {
            self.mark_busy(seq, source.name().to_path_buf(), None);
        }
        call()
    }

    fn mark_busy(&self, seq: u64, name: PathBuf, stream: Option<Arc<StreamFlags>>) {
        if let Some(slot) = self.shared.readers().get_mut(self.index) {
            slot.busy = Some(Busy {
                seq,
                name,
                since: Instant::now(),
                stream,
            });
        }
    }

    /// Out of storage calls: `false` if the reader was given up on meanwhile (it leaves; a
    /// replacement took its place).
    fn out_of_storage(&self) -> bool {
        if !self.watched {
            return true;
        }
        match self.shared.readers().get_mut(self.index) {
            Some(slot) if !slot.abandoned => {
                slot.busy = None;
                true
            }
            _ => false,
        }
    }

    /// Records the outcome of item `seq`, posting held results when they are many or reads
    /// are slow.
    fn done(&mut self, seq: u64, result: Result<Hashing, Failure>) {
        let full = {
            let mut desk = lock(&self.desk);
            desk.held.push((seq, result));
            desk.held.len() >= HELD_MAX
        };
        if full || self.immediate {
            self.post_held();
        }
    }

    fn post_held(&mut self) {
        let mut held = std::mem::take(&mut self.spare_held);
        std::mem::swap(&mut held, &mut lock(&self.desk).held);
        self.shared.finish_from(&mut held, &mut self.posting);
        self.spare_held = held;
    }

    /// Finishes what it holds: before a read that may wait for long.
    fn flush(&mut self) {
        self.hash_wholes();
        self.post_held();
    }

    /// The first read of a file, at offset 0: without waiting on storage where the storage
    /// allows it, to learn whether the file is in the page cache.
    fn first_read(&self, handle: &dyn Handle, buf: &mut [u8]) -> stdio::Result<usize> {
        let counters = &self.shared.counters;
        let hits = self.hits.get();
        // `--nocache` asks every time: a read that does not wait tells which pages were
        // cached before, for nothing.
        let ask = self.shared.limits.nocache || policy::probe(hits);
        if !counters.nowait_unsupported.load(Ordering::Relaxed) && ask {
            match handle.read_at_nowait(buf, 0) {
                Ok(n) => {
                    self.hits.set(hits.saturating_add(1));
                    return Ok(n);
                }
                Err(e) if e.kind() == stdio::ErrorKind::WouldBlock => {
                    self.hits.set(0);
                    self.cache_miss();
                }
                // No way to ask: count every file as a miss, so that all readers work, as
                // they must where reads may wait.
                Err(e) if e.kind() == stdio::ErrorKind::Unsupported => {
                    counters.nowait_unsupported.store(true, Ordering::Relaxed);
                }
                Err(e) if e.kind() == stdio::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if counters.nowait_unsupported.load(Ordering::Relaxed) {
            self.cache_miss();
        } else {
            self.hits.set(hits.saturating_add(1));
        }
        handle.read_at(buf, 0)
    }

    /// Counts a read that had to wait on storage; calls in the extra readers after a few.
    fn cache_miss(&self) {
        self.shared.counters.misses.fetch_add(1, Ordering::Relaxed);
        let turned_slow = lock(&self.shared.slowness).miss(Instant::now());
        if turned_slow {
            self.shared.call_extras(true);
        }
    }

    /// Hashes a regular file of `before.st_size` bytes (to its end, if its size reads 0, as
    /// in /proc), one block at a time, and checks that it did not change meanwhile.
    fn hash_small(
        &mut self,
        handle: &dyn Handle,
        before: &Stat,
        algorithm: Algorithms,
    ) -> Result<Hashed, Reason> {
        let size = before.st_size as u64;
        let mut hasher = Hasher::new(algorithm);
        let mut total = 0u64;
        let mut block = self.take_block();
        let read = loop {
            let n = if total == 0 {
                self.first_read(handle, &mut block)
            } else {
                handle.read_at(&mut block, total)
            };
            match n {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    hasher.update(&block[..n]);
                    total += n as u64;
                    // Read to its size: no read is needed to see its end. If it grew
                    // meanwhile, the status check below says so.
                    if size > 0 && total == size {
                        break Ok(());
                    }
                }
                Err(e) if e.kind() == stdio::ErrorKind::Interrupted => {
                    if signals::stop_requested().is_some() {
                        break Err(Reason::from(e));
                    }
                }
                Err(e) => break Err(e.into()),
            }
        };
        self.block = block;
        read?;
        // Fewer bytes than its size: it shrank while being read.
        if total < size || changed(before, &handle.stat()?) {
            return Err(Reason::Changed);
        }
        Ok(Hashed {
            name: PathBuf::new(),
            digest: hasher.finalize(),
            bytes: total,
            state: regular_state(before),
        })
    }

    /// Its block buffer, made on first use (an extra reader may never need one).
    fn take_block(&mut self) -> PageBuf {
        let mut block = std::mem::take(&mut self.block);
        if block.len() != BLOCK {
            block = PageBuf::zeroed(BLOCK);
        }
        block
    }

    /// Hashes everything `reader` yields until its end: standard input, a FIFO, a device.
    fn hash_sequential(
        &mut self,
        reader: &mut impl Read,
        algorithm: Algorithms,
    ) -> Result<Option<Hashed>, Reason> {
        let mut block = self.take_block();
        let hashed = hash_reader(algorithm, reader, &mut block);
        self.block = block;
        let (digest, bytes) = hashed?;
        Ok(Some(Hashed {
            name: PathBuf::new(),
            digest,
            bytes,
            state: None,
        }))
    }

    /// Puts the requests it took and has not started back at the front of the queue, for
    /// the other readers.
    fn give_back_taken(&self) {
        let taken = std::mem::take(&mut lock(&self.desk).taken);
        if taken.is_empty() {
            return;
        }
        let mut requests = self.shared.requests();
        for request in taken.into_iter().rev() {
            requests.promoted += usize::from(request.promoted);
            requests.queue.push_front(request);
        }
        self.shared
            .queued
            .store(requests.queue.len(), Ordering::Relaxed);
        drop(requests);
        self.shared.requests_cv.notify_all();
    }
}

/// A file read on from where it is, for [`hash_reader`].
struct HandleReader<'a>(&'a dyn Handle);

impl Read for HandleReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> stdio::Result<usize> {
        self.0.read(buf)
    }
}

/// The result of hashing `source`, named as it is printed.
fn outcome(source: Source, result: Result<Option<Hashed>, Reason>) -> Result<Hashing, Failure> {
    match result {
        Ok(Some(mut hashed)) => {
            hashed.name = source.into_name();
            Ok(Hashing::Hashed(hashed))
        }
        Ok(None) => Ok(Hashing::Skipped),
        Err(reason) => Err(Failure::new(source.into_name(), reason)),
    }
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
