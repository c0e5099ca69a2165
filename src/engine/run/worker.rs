//! The hashing workers: large files, several at once on each core. Everything here runs on
//! a worker (a thread of the run's rayon pool, one per core).
//!
//! A worker takes the largest large file waiting (`Shared::streams`) into a free lane, up to
//! its fair share while other workers have none, and hashes the chunks its reader sends
//! (`reader`), interleaving the lanes (`lanes`): four files of 512 MiB on two cores go two
//! and two, and each core keeps its SHA unit busy with two files. A large file anywhere in
//! the window starts early (the scout moved it ahead, `feeder`) and the largest first, so no
//! core idles at the end while it finishes.
//!
//! Workers never touch the file system: a stuck read holds its reader, never a core. What a
//! worker waits for (a chunk of one of its files, a new file, the end of the run) is a
//! channel, and it sleeps in a [`Select`] over them.
//!
//! The checks are those of the readers: the file's status after its last chunk (taken by
//! its reader) must be the one it had when opened, and it must hold as many bytes as its
//! size said, or it "changed while being read".

use std::sync::atomic::Ordering;

use crossbeam_channel::{Select, TryRecvError};
use rustix::fs::Stat;

use crate::digest::Digests;
use crate::engine::lanes::{self, LaneHash};
use crate::engine::multibuf::BLOCK_LEN;
use crate::engine::read::{Hashed, Hashing, changed, regular_state};
use crate::engine::run::handoff::POLL;
use crate::engine::run::state::{Chunk, Shared, Stream, lock};
use crate::report::{Failure, Reason};

/// Large files one worker hashes at once, at most (its lanes, and memory: each stream holds
/// a few chunks).
const STREAMS_PER_WORKER: usize = 2;

/// One large file in flight.
struct Lane {
    stream: Stream,
    hash: LaneHash,
    /// The chunk being hashed, and how far.
    chunk: Option<Vec<u8>>,
    pos: usize,
    /// Less than a block carried from the end of a chunk to the next (interleaved lanes
    /// take whole blocks only; chunks are whole blocks but for the last).
    carry: Vec<u8>,
    /// Bytes hashed so far.
    total: u64,
    /// No more chunks: the status after the last one.
    ended: Option<Box<Stat>>,
    failed: Option<Reason>,
}

impl Lane {
    fn new(stream: Stream, multi: bool) -> Lane {
        let hash = LaneHash::new(stream.algorithm, multi);
        Lane {
            stream,
            hash,
            chunk: None,
            pos: 0,
            carry: Vec::new(),
            total: 0,
            ended: None,
            failed: None,
        }
    }

    /// The bytes of the chunk not hashed yet.
    fn available(&self) -> &[u8] {
        self.chunk.as_deref().map_or(&[], |c| &c[self.pos..])
    }

    /// Whether it cannot go on with what it has, and more is to come.
    fn wants_chunk(&self) -> bool {
        self.failed.is_none()
            && self.ended.is_none()
            && self.hash.wants_more(self.available().len())
    }

    /// Whether it is done: failed, or hashed up to its tail.
    fn is_done(&self) -> bool {
        self.failed.is_some()
            || (self.ended.is_some() && self.hash.wants_more(self.available().len()))
    }

    /// Takes what its reader sent, if anything: `true` if it got something.
    fn take_chunk(&mut self) -> bool {
        match self.stream.chunks.try_recv() {
            Ok(Chunk::Data(data)) => {
                self.keep_tail();
                if let Some(old) = self.chunk.replace(data) {
                    let _ = self.stream.spent.send(old);
                }
                self.pos = 0;
                self.absorb_carry();
                true
            }
            Ok(Chunk::End(after)) => {
                self.ended = Some(after);
                true
            }
            Ok(Chunk::Failed(reason)) => {
                self.failed = Some(reason);
                true
            }
            // Given up on by the stall watchdog, its reader stuck.
            Err(TryRecvError::Empty) if self.stream.flags.timed_out.load(Ordering::Acquire) => {
                self.failed = Some(Reason::TimedOut);
                true
            }
            Err(TryRecvError::Empty) => false,
            Err(TryRecvError::Disconnected) => {
                let gone = std::io::Error::other("the reader of this file stopped");
                self.failed = Some(Reason::Io(gone));
                true
            }
        }
    }

    /// Moves what is left of the chunk (less than a block) to the carry.
    fn keep_tail(&mut self) {
        let rest = self.available().to_vec();
        self.carry.extend_from_slice(&rest);
        self.pos = self.chunk.as_ref().map_or(0, Vec::len);
    }

    /// Hashes the carry with the first bytes of the new chunk, as one block.
    fn absorb_carry(&mut self) {
        if self.carry.is_empty() {
            return;
        }
        let need = BLOCK_LEN - self.carry.len();
        let Some(chunk) = &self.chunk else { return };
        let take = need.min(chunk.len());
        self.carry.extend_from_slice(&chunk[..take]);
        self.pos = take;
        if self.carry.len() == BLOCK_LEN {
            let block = std::mem::take(&mut self.carry);
            let taken = lanes::step(&mut [&mut self.hash], &[&block]);
            self.total += taken[0] as u64;
        }
    }

    /// The outcome once done.
    fn finish(self) -> (u64, Result<Hashing, Failure>) {
        let seq = self.stream.seq;
        let name = self.stream.name.clone();
        if let Some(reason) = self.failed {
            return (seq, Err(Failure::new(name, reason)));
        }
        let mut tail = self.carry;
        tail.extend_from_slice(self.chunk.as_deref().map_or(&[], |c| &c[self.pos..]));
        let bytes = self.total + tail.len() as u64;
        let digest: Digests = self.hash.finish(&tail, bytes);
        let before = &self.stream.before;
        let after = self.ended.as_deref();
        // Fewer bytes than its size: it shrank while being read; a status that moved: it was
        // written meanwhile.
        let moved = after.is_none_or(|after| changed(before, after));
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
        for lane in lanes.iter_mut().filter(|l| l.wants_chunk()) {
            progressed |= lane.take_chunk();
        }
        progressed |= compress(&mut lanes);
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

/// Hashes what the lanes have. Whether anything was hashed.
fn compress(lanes: &mut [Lane]) -> bool {
    let ready: Vec<usize> = (0..lanes.len())
        .filter(|&i| {
            lanes[i].failed.is_none() && !lanes[i].hash.wants_more(lanes[i].available().len())
        })
        .collect();
    if ready.is_empty() {
        return false;
    }
    let taken = {
        let mut hashes: Vec<&mut LaneHash> = Vec::with_capacity(ready.len());
        let mut views: Vec<&[u8]> = Vec::with_capacity(ready.len());
        for (i, lane) in lanes.iter_mut().enumerate() {
            if ready.contains(&i) {
                let Lane {
                    hash, chunk, pos, ..
                } = lane;
                hashes.push(hash);
                views.push(chunk.as_deref().map_or(&[], |c| &c[*pos..]));
            }
        }
        lanes::step(&mut hashes, &views)
    };
    for (k, &i) in ready.iter().enumerate() {
        lanes[i].pos += taken[k];
        lanes[i].total += taken[k] as u64;
    }
    taken.iter().any(|&n| n > 0)
}

/// Sleeps until a chunk comes for a lane that wants one, a new file is queued (when
/// `may_take`), or the run ends; at most [`POLL`].
fn wait<R>(shared: &Shared<R>, lanes: &[Lane], may_take: bool) {
    let mut select = Select::new();
    let mut watched = Vec::new();
    for (i, lane) in lanes.iter().enumerate() {
        if lane.wants_chunk() {
            select.recv(&lane.stream.chunks);
            watched.push(i);
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
    let chunk_waiting = watched.iter().any(|&i| !lanes[i].stream.chunks.is_empty());
    let stream_waiting = may_take && !lock(&shared.streams).is_empty();
    crate::engine::count_lost_wakeup(timed_out, chunk_waiting || stream_waiting);
}
