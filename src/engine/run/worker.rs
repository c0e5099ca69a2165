//! The hashing workers: large files, several at once on each core. Everything here runs on
//! a worker (one thread per `-j`, started by the run).
//!
//! A worker takes the largest large file waiting (`Shared::streams`) into a free lane, up to
//! its fair share while other workers have none, and hashes its bytes, interleaving the
//! lanes (`lanes`): four files of 512 MiB on two cores go two and two, and each core keeps
//! its SHA unit busy with two files. A large file anywhere in the window starts early (the
//! scout moved it ahead, `feeder`) and the largest first, so no core idles at the end while
//! it finishes.
//!
//! A file of a local file system is mapped here, a window at a time, its pages faulted in
//! (`mapped`): no copy; its reader keeps the kernel reading ahead of this worker, on its own
//! thread, so that the disk and the hashing overlap. That is the one way a worker touches storage, and only a
//! local disk's: a file of a network file system is read by its reader, whose chunks come
//! through a channel, so a stuck server holds a reader, never a core. What a worker waits
//! for (a chunk, a new file, the end of the run) is a channel, and it sleeps in a
//! [`Select`] over them.
//!
//! BLAKE3 alone, with one file and other workers idle, spreads each window over every core
//! (`Hasher::update_parallel`), as `b3sum` does.
//!
//! The checks are those of the readers: the file's status after its last byte was hashed
//! must be the one it had when opened, and it must hold as many bytes as its size said, or
//! it "changed while being read".

use std::sync::atomic::Ordering;

use crossbeam_channel::{Select, TryRecvError};
use rustix::fs::Stat;

use crate::digest::Digests;
use crate::engine::lanes::{self, LaneHash};
use crate::engine::mapped::{WIDE_WINDOW, WINDOW, Window, read_guarded};
use crate::engine::multibuf::BLOCK_LEN;
use crate::engine::read::{Hashed, Hashing, changed, regular_state};
use crate::engine::run::buffers::PageBuf;
use crate::engine::run::handoff::POLL;
use crate::engine::run::state::{Chunk, Feed, Shared, Stream, lock};
use crate::report::{Failure, Reason};

/// Large files one worker hashes at once, at most (its lanes, and memory).
const STREAMS_PER_WORKER: usize = 2;

/// The bytes a lane has now.
enum Piece {
    None,
    Chunk(PageBuf),
    Window(Window),
}

impl Piece {
    fn len(&self) -> usize {
        match self {
            Piece::None => 0,
            Piece::Chunk(chunk) => chunk.len(),
            Piece::Window(window) => window.len(),
        }
    }
}

/// One large file in flight.
struct Lane {
    stream: Stream,
    hash: LaneHash,
    piece: Piece,
    /// How far into the piece it hashed.
    pos: usize,
    /// Less than a block carried from the end of a piece to the next (interleaved lanes
    /// take whole blocks only; pieces are whole blocks but for the last).
    carry: Vec<u8>,
    /// Bytes hashed so far.
    total: u64,
    /// Where the next window of a mapped file starts.
    next: u64,
    /// Where the window it has now starts.
    window_at: u64,
    /// No more bytes: the status after the last.
    ended: Option<Box<Stat>>,
    failed: Option<Reason>,
}

impl Drop for Lane {
    /// Its last piece is done with too, however the file ended.
    fn drop(&mut self) {
        let piece = std::mem::replace(&mut self.piece, Piece::None);
        self.done_with(piece, self.window_at);
    }
}

impl Lane {
    fn new(stream: Stream, multi: bool) -> Lane {
        let hash = LaneHash::new(stream.algorithm, multi);
        Lane {
            stream,
            hash,
            piece: Piece::None,
            pos: 0,
            carry: Vec::new(),
            total: 0,
            next: 0,
            window_at: 0,
            ended: None,
            failed: None,
        }
    }

    fn left(&self) -> usize {
        self.piece.len() - self.pos
    }

    /// Whether it cannot go on with what it has, and more is to come.
    fn wants_more(&self) -> bool {
        self.failed.is_none() && self.ended.is_none() && self.hash.wants_more(self.left())
    }

    /// Whether it is done: failed, or hashed up to its tail.
    fn is_done(&self) -> bool {
        self.failed.is_some() || (self.ended.is_some() && self.hash.wants_more(self.left()))
    }

    /// Gets the next bytes: maps the next window, or takes the chunk its reader sent.
    /// `true` if it got something (bytes, the end, a failure).
    fn fetch(&mut self) -> bool {
        if self.stream.flags.timed_out.load(Ordering::Acquire) {
            // Given up on by the stall watchdog, its reader stuck.
            self.failed = Some(Reason::TimedOut);
            return true;
        }
        // Where the window it holds now starts: mapping the next one moves `window_at`.
        let old_at = self.window_at;
        let fetched = match &self.stream.feed {
            Feed::Mapped { .. } => Some(self.map_next()),
            Feed::Chunks { chunks, .. } => match chunks.try_recv() {
                Ok(Chunk::Data(data)) => Some(Ok(Fetched::Piece(Piece::Chunk(data)))),
                Ok(Chunk::End(after)) => Some(Ok(Fetched::End(after))),
                Ok(Chunk::Failed(reason)) => Some(Err(reason)),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => Some(Err(Reason::Io(std::io::Error::other(
                    "the reader of this file stopped",
                )))),
            },
        };
        match fetched {
            None => false,
            Some(Ok(Fetched::Piece(piece))) => {
                if let Err(reason) = self.keep_tail() {
                    self.failed = Some(reason);
                    return true;
                }
                let old = std::mem::replace(&mut self.piece, piece);
                self.done_with(old, old_at);
                self.pos = 0;
                if let Err(reason) = self.absorb_carry() {
                    self.failed = Some(reason);
                }
                true
            }
            Some(Ok(Fetched::End(after))) => {
                self.ended = Some(after);
                true
            }
            Some(Err(reason)) => {
                self.failed = Some(reason);
                true
            }
        }
    }

    /// Gives back a piece it hashed: a chunk to its reader, to fill again; a window's pages
    /// to the storage (where `--nocache` drops them).
    fn done_with(&self, piece: Piece, window_at: u64) {
        match (piece, &self.stream.feed) {
            (Piece::Chunk(chunk), Feed::Chunks { spent, .. }) => {
                let _ = spent.send(chunk);
            }
            (Piece::Window(window), Feed::Mapped { handle, .. }) => {
                let len = window.len() as u64;
                drop(window);
                handle.done_with(window_at, len);
            }
            _ => {}
        }
    }

    /// Maps the next window of a mapped file, or, past its last byte, takes its status.
    fn map_next(&mut self) -> Result<Fetched, Reason> {
        let Feed::Mapped { handle, mapped } = &self.stream.feed else {
            return Err(Reason::Io(std::io::Error::other("not a mapped file")));
        };
        let size = self.stream.size();
        if self.next >= size {
            return Ok(Fetched::End(Box::new(handle.stat()?)));
        }
        // A window spread over every core is wider, and faulted in by the threads that hash it.
        let wide = matches!(&self.hash, LaneHash::Single(h) if h.parallel_unit().is_some());
        let window = if wide { WIDE_WINDOW } else { WINDOW };
        let len = (size - self.next).min(window as u64) as usize;
        let offset = self.next;
        self.next += len as u64;
        // Its reader keeps the kernel reading ahead of this.
        self.stream.flags.mapped.store(self.next, Ordering::Release);
        let _ = mapped.try_send(());
        // Before anything touches it (`--nocache` learns here what was cached before).
        handle.will_touch(offset, len as u64);
        if let Some(file) = handle.mappable()
            && let Some(window) = Window::map(file, offset, len, !wide)?
        {
            self.window_at = offset;
            return Ok(Fetched::Piece(Piece::Window(window)));
        }
        // Every guard slot of the process taken: read this window instead.
        let mut buf = PageBuf::zeroed(len);
        let mut done = 0;
        while done < len {
            match handle.read_at(&mut buf[done..], offset + done as u64)? {
                0 => return Err(Reason::Changed),
                n => done += n,
            }
        }
        Ok(Fetched::Piece(Piece::Chunk(buf)))
    }

    /// Moves what is left of the piece (less than a block) to the carry.
    fn keep_tail(&mut self) -> Result<(), Reason> {
        let tail = self.tail()?;
        self.carry.extend_from_slice(&tail);
        self.pos = self.piece.len();
        Ok(())
    }

    /// The bytes of the piece not hashed yet (read inside the guard for a window).
    fn tail(&self) -> Result<Vec<u8>, Reason> {
        match &self.piece {
            Piece::None => Ok(Vec::new()),
            Piece::Chunk(chunk) => Ok(chunk[self.pos..].to_vec()),
            Piece::Window(window) => {
                let (tail, mut faults) = read_guarded(&[(window, self.pos)], |s| s[0].to_vec());
                match faults.pop().flatten() {
                    Some(reason) => Err(reason),
                    None => Ok(tail),
                }
            }
        }
    }

    /// Hashes the carry with the first bytes of the new piece, as one block.
    fn absorb_carry(&mut self) -> Result<(), Reason> {
        if self.carry.is_empty() {
            return Ok(());
        }
        let need = BLOCK_LEN - self.carry.len();
        let head = self.tail()?;
        let take = need.min(head.len());
        self.carry.extend_from_slice(&head[..take]);
        self.pos = take;
        if self.carry.len() == BLOCK_LEN {
            let block = std::mem::take(&mut self.carry);
            self.total += lanes::step_one(&mut self.hash, &block) as u64;
        }
        Ok(())
    }

    /// The outcome once done.
    fn finish(mut self) -> (u64, Result<Hashing, Failure>) {
        let seq = self.stream.seq;
        let name = self.stream.name.clone();
        let tail = self.tail();
        let failed = self
            .failed
            .take()
            .or_else(|| tail.as_ref().err().map(clone_reason));
        if let Some(reason) = failed {
            return (seq, Err(Failure::new(name, reason)));
        }
        let mut last = std::mem::take(&mut self.carry);
        last.extend_from_slice(&tail.unwrap_or_default());
        let bytes = self.total + last.len() as u64;
        // (Replaced by a fresh one: a lane gives its last piece back when dropped.)
        let fresh = LaneHash::new(self.stream.algorithm, false);
        let digest: Digests = std::mem::replace(&mut self.hash, fresh).finish(&last, bytes);
        let before = &self.stream.before;
        // Fewer bytes than its size: it shrank while being read; a status that moved: it was
        // written meanwhile.
        let moved = self
            .ended
            .as_deref()
            .is_none_or(|after| changed(before, after));
        if bytes < before.st_size as u64 || moved {
            return (seq, Err(Failure::new(name, Reason::Changed)));
        }
        let hashed = Hashed {
            name,
            digest,
            bytes,
            state: regular_state(before),
        };
        (seq, Ok(Hashing::Hashed(hashed)))
    }
}

/// What a lane fetched.
enum Fetched {
    Piece(Piece),
    End(Box<Stat>),
}

/// A reason again (the only ones a tail read gives: no I/O error value to share).
fn clone_reason(reason: &Reason) -> Reason {
    match reason {
        Reason::Changed => Reason::Changed,
        Reason::TimedOut => Reason::TimedOut,
        other => Reason::Io(std::io::Error::other(other.to_string())),
    }
}

/// A hashing worker: takes large files and hashes them until the run is over.
pub(crate) fn work<R: Send + 'static>(shared: &Shared<R>) {
    let multi = shared.lanes > 1;
    let max = shared.lanes.clamp(1, STREAMS_PER_WORKER);
    let mut lanes: Vec<Lane> = Vec::with_capacity(max);
    let mut idle = false;
    loop {
        if shared.stopping() {
            // The files in flight are dropped: their readers see the channel close.
            return;
        }
        let took = take_streams(shared, &mut lanes, max, multi);
        if idle && !lanes.is_empty() {
            shared.idle_workers.fetch_sub(1, Ordering::AcqRel);
            idle = false;
        }
        let mut progressed = took;
        for lane in lanes.iter_mut().filter(|l| l.wants_more()) {
            progressed |= lane.fetch();
        }
        progressed |= compress(shared, &mut lanes);
        let mut i = 0;
        while i < lanes.len() {
            if lanes[i].is_done() {
                let (seq, result) = lanes.swap_remove(i).finish();
                shared.finish(seq, result);
                progressed = true;
            } else {
                i += 1;
            }
        }
        if progressed {
            continue;
        }
        if lanes.is_empty() && !idle {
            shared.idle_workers.fetch_add(1, Ordering::AcqRel);
            idle = true;
        }
        wait(shared, &lanes, lanes.len() < max);
    }
}

/// Takes large files into free lanes, the largest first: while it has none, or more wait
/// than there are idle workers. Whether it took any.
fn take_streams<R>(shared: &Shared<R>, lanes: &mut Vec<Lane>, max: usize, multi: bool) -> bool {
    let mut took = false;
    let mut waiting = lock(&shared.streams);
    while lanes.len() < max && !waiting.is_empty() {
        let idle = shared.idle_workers.load(Ordering::Acquire);
        if !lanes.is_empty() && waiting.len() <= idle {
            break;
        }
        let largest = (0..waiting.len())
            .max_by_key(|&i| (waiting[i].size(), std::cmp::Reverse(waiting[i].seq)))
            .unwrap_or(0);
        lanes.push(Lane::new(waiting.swap_remove(largest), multi));
        took = true;
    }
    // More waiting than this worker took: another worker may take them.
    if !waiting.is_empty() {
        shared.wake_a_worker();
    }
    took
}

/// Where a lane's bytes are, while they are hashed.
enum View<'a> {
    Chunk(&'a [u8]),
    /// The window at this index of the guarded ones.
    Window(usize),
}

/// Hashes what the lanes have. Whether anything was hashed.
fn compress<R>(shared: &Shared<R>, lanes: &mut [Lane]) -> bool {
    if let [lane] = lanes
        && parallel(shared, lane)
    {
        return compress_parallel(lane);
    }
    let mut hashes: lanes::Lanes<'_> = Default::default();
    let mut views: Vec<View<'_>> = Vec::with_capacity(lanes.len());
    let mut windows: Vec<(&Window, usize)> = Vec::new();
    let mut ready: Vec<usize> = Vec::new();
    for (i, lane) in lanes.iter_mut().enumerate() {
        let left = lane.piece.len() - lane.pos;
        if lane.failed.is_some() || lane.hash.wants_more(left) {
            continue;
        }
        let Lane {
            hash, piece, pos, ..
        } = lane;
        match piece {
            Piece::None => continue,
            Piece::Chunk(chunk) => views.push(View::Chunk(&chunk[*pos..])),
            Piece::Window(window) => {
                views.push(View::Window(windows.len()));
                windows.push((window, *pos));
            }
        }
        hashes[ready.len()] = Some(hash);
        ready.push(i);
    }
    if ready.is_empty() {
        return false;
    }
    let (taken, faults) = read_guarded(&windows, |mapped| {
        let mut data: [&[u8]; crate::engine::multibuf::MAX_LANES] =
            [&[]; crate::engine::multibuf::MAX_LANES];
        for (k, view) in views.iter().enumerate() {
            data[k] = match view {
                View::Chunk(bytes) => bytes,
                View::Window(w) => mapped[*w],
            };
        }
        lanes::step(&mut hashes, &data)
    });
    let mut faults = faults.into_iter();
    for (k, &i) in ready.iter().enumerate() {
        let lane = &mut lanes[i];
        if matches!(lane.piece, Piece::Window(_))
            && let Some(Some(reason)) = faults.next()
        {
            lane.failed = Some(reason);
        }
        lane.pos += taken[k];
        lane.total += taken[k] as u64;
    }
    taken.iter().any(|&n| n > 0)
}

/// Whether this lane, alone on its worker, is hashed over every core: BLAKE3 alone, a
/// window, more than one worker and another one idle.
fn parallel<R>(shared: &Shared<R>, lane: &Lane) -> bool {
    let LaneHash::Single(hasher) = &lane.hash else {
        return false;
    };
    hasher.parallel_unit().is_some()
        && matches!(lane.piece, Piece::Window(_))
        && lane.pos == 0
        && lane.carry.is_empty()
        && shared.workers > 1
        && shared.idle_workers.load(Ordering::Acquire) > 0
}

/// Hashes the whole window of a lane over every core.
fn compress_parallel(lane: &mut Lane) -> bool {
    let (LaneHash::Single(hasher), Piece::Window(window)) = (&mut lane.hash, &lane.piece) else {
        return false;
    };
    let len = window.len();
    let ((), mut faults) = read_guarded(&[(window, 0)], |mapped| {
        hasher.update_parallel(mapped[0]);
    });
    if let Some(reason) = faults.pop().flatten() {
        lane.failed = Some(reason);
    }
    lane.pos = len;
    lane.total += len as u64;
    true
}

/// Sleeps until a chunk comes for a lane that wants one, a new file is queued (when
/// `may_take`), or the run ends; at most [`POLL`].
fn wait<R>(shared: &Shared<R>, lanes: &[Lane], may_take: bool) {
    let mut select = Select::new();
    let mut watched = Vec::new();
    for lane in lanes.iter().filter(|l| l.wants_more()) {
        if let Feed::Chunks { chunks, .. } = &lane.stream.feed {
            select.recv(chunks);
            watched.push(chunks);
        }
    }
    if may_take {
        select.recv(&shared.wake_workers.1);
    }
    select.recv(&shared.run_over);
    let ready = select.ready_timeout(POLL);
    // Consume the wake-up token if that is what woke it (the queue itself is looked at
    // next round).
    if may_take {
        let _ = shared.wake_workers.1.try_recv();
    }
    let timed_out = ready.is_err();
    let chunk_waiting = watched.iter().any(|chunks| !chunks.is_empty());
    let stream_waiting = may_take && !lock(&shared.streams).is_empty();
    crate::engine::count_lost_wakeup(timed_out, chunk_waiting || stream_waiting);
}
