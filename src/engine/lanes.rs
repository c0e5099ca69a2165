//! The hashing workers: several files at once on each core, so that one core does the work
//! of nearly two.
//!
//! A single SHA-256 stream leaves the CPU's SHA unit waiting on its own latency; streams of
//! different files can fill those waits (`multibuf` has the figures). So each worker keeps up
//! to [`Tuning::lanes`](crate::engine::shared::Tuning) files *in flight*, compresses the whole
//! blocks they all have in one interleaved pass, and as soon as a file ends, hands its result
//! on and takes the next. Nothing is split inside a file, and results reach the printing
//! thread by sequence number, so the output order is unchanged.
//!
//! Workers never touch the file system: readers (`io`) hand them files read whole, and
//! large files as streams of chunks (mapped windows, or buffers) produced a few megabytes
//! ahead. A stuck read holds a reader, never a core. A worker takes the largest large file
//! waiting first, so that a large file anywhere in the window starts early and no core idles
//! at the end while it finishes, and then the rest in the order they were read. It takes no
//! more than its share while other workers wait, and at most [`STREAMS_PER_WORKER`] large
//! files at once (each holds two chunks of memory).
//!
//! Lanes interleave SHA-256 only. Other algorithms, and every file when lanes are off (a CPU
//! without SHA extensions), are hashed one at a time with the sha2 crate.
//!
//! The checks are those of `read`: a file read whole was checked by its reader; a streamed
//! file's status after its last chunk is hashed must be the one it had when opened, it must
//! hold as many bytes as its size said, and a mapped chunk that faults (the file was
//! truncated under it) makes the file "changed while being read".

use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError};
use std::time::Instant;

use rustix::fs::Stat;

use crate::digest::{Algorithms, Digests, Hasher};
use crate::engine::mapped::{Window, guarded};
use crate::engine::multibuf::{self, BLOCK_LEN, INITIAL_STATE, MAX_LANES};
use crate::engine::policy::maps_safely;
use crate::engine::read::{Hashed, Hashing, changed, fstat, regular_state};
use crate::engine::shared::{
    Buffer, Chunk, Outbox, POLL, Ready, ReadyKind, Shared, State, StreamSlot,
};
use crate::format::state::FileState;
use crate::report::{Failure, Reason};

/// Large files one worker streams at once.
pub const STREAMS_PER_WORKER: usize = 2;

/// Most blocks compressed in one step before the worker looks for new chunks and new files
/// again: 128 KiB a lane.
const STEP_BLOCKS: usize = 2048;

/// How a lane hashes.
enum LaneHash {
    /// SHA-256, interleaved with the other lanes: the state after the blocks so far.
    Multi([u32; 8]),
    /// Any algorithm, one lane at a time.
    Single(Box<Hasher>),
}

/// Where a lane's bytes are.
enum LaneData {
    /// The whole file, read by a reader.
    Whole { data: Buffer, pos: usize },
    /// A large file, chunk by chunk.
    Stream {
        file: Arc<File>,
        before: Stat,
        chunk: Option<Chunk>,
        pos: usize,
        /// No more chunks will come.
        ended: bool,
    },
}

/// One file in flight.
struct Lane {
    seq: u64,
    name: PathBuf,
    hash: LaneHash,
    /// Bytes hashed so far.
    total: u64,
    data: LaneData,
    state: Option<FileState>,
    /// What went wrong: the lane ends with it.
    failed: Option<Reason>,
}

/// The bytes of a lane available now, and the window they are in (if mapped).
fn available(data: &LaneData) -> (&[u8], Option<&Window>) {
    match data {
        LaneData::Whole { data, pos } => (&data.bytes()[*pos..], None),
        LaneData::Stream {
            chunk: Some(chunk),
            pos,
            ..
        } => match chunk {
            Chunk::Mapped(window) => (&window.bytes()[*pos..], Some(window)),
            Chunk::Read(buf) => (&buf[*pos..], None),
        },
        LaneData::Stream { chunk: None, .. } => (&[], None),
    }
}

impl Lane {
    fn new(ready: Ready, multi: bool) -> Lane {
        let hash = if multi && ready.algorithm == Algorithms::SHA256 {
            LaneHash::Multi(INITIAL_STATE)
        } else {
            LaneHash::Single(Box::new(Hasher::new(ready.algorithm)))
        };
        let (data, state) = match ready.kind {
            ReadyKind::Whole { data, state } => (LaneData::Whole { data, pos: 0 }, state),
            ReadyKind::Large { file, before } => {
                let state = regular_state(&before);
                let data = LaneData::Stream {
                    file,
                    before,
                    chunk: None,
                    pos: 0,
                    ended: false,
                };
                (data, state)
            }
        };
        Lane {
            seq: ready.seq,
            name: ready.name,
            hash,
            total: 0,
            data,
            state,
            failed: None,
        }
    }

    fn is_stream(&self) -> bool {
        matches!(self.data, LaneData::Stream { .. })
    }

    fn advance(&mut self, n: usize) {
        self.total += n as u64;
        match &mut self.data {
            LaneData::Whole { pos, .. } | LaneData::Stream { pos, .. } => *pos += n,
        }
    }

    /// Whether the lane cannot go on with what it has: a stream whose chunk is used up (up
    /// to a tail of less than a block, which only the last chunk has), and whose end was not
    /// seen yet.
    fn wants_chunk(&self) -> bool {
        let LaneData::Stream { ended: false, .. } = &self.data else {
            return false;
        };
        let left = available(&self.data).0.len();
        match self.hash {
            LaneHash::Multi(_) => left < BLOCK_LEN,
            LaneHash::Single(_) => left == 0,
        }
    }

    /// Whether every byte that will come is here: what is left is the final tail.
    fn at_end(&self) -> bool {
        match &self.data {
            LaneData::Whole { .. } => true,
            LaneData::Stream { ended, .. } => *ended,
        }
    }

    /// Whether the lane is done: failed, or hashed up to its tail.
    fn is_done(&self) -> bool {
        if self.failed.is_some() {
            return true;
        }
        let left = available(&self.data).0.len();
        self.at_end()
            && match self.hash {
                LaneHash::Multi(_) => left < BLOCK_LEN,
                LaneHash::Single(_) => left == 0,
            }
    }
}

/// A hashing worker: takes prepared files and hashes them until the run is over.
pub(crate) fn work<R: Send + 'static>(shared: &Shared<R>) {
    let max = shared.tuning.lanes.clamp(1, MAX_LANES);
    let multi = max > 1;
    let mut lanes: Vec<Lane> = Vec::with_capacity(max);
    loop {
        if !fill(shared, &mut lanes, max, multi) {
            return;
        }
        if !step(
            &mut lanes,
            &mut |seq, result| shared.finish(seq, result),
            shared,
        ) {
            wait_for_chunks(shared, &lanes);
        }
    }
}

/// Hashes files read whole by a reader, in lanes, on the reader's thread: no hand-off, and no
/// wait (their bytes are all there).
pub(crate) fn hash_wholes<R: Send + 'static>(outbox: &mut Outbox<'_, R>, ready: Vec<Ready>) {
    let multi = ready.len() > 1;
    let mut lanes: Vec<Lane> = ready.into_iter().map(|r| Lane::new(r, multi)).collect();
    while !lanes.is_empty() {
        // Files read whole need no chunk: `take_chunks` finds nothing to do.
        let mut finish = |seq, result| outbox.finish(seq, result);
        let mut i = 0;
        compress(&mut lanes);
        while i < lanes.len() {
            if lanes[i].is_done() {
                let lane = lanes.swap_remove(i);
                let seq = lane.seq;
                finish(seq, finish_lane(lane));
            } else {
                i += 1;
            }
        }
    }
}

/// Takes files into free lanes; waits while there are none at all. `false` when the run is
/// over (or cancelled: the files in flight are dropped).
fn fill<R>(shared: &Shared<R>, lanes: &mut Vec<Lane>, max: usize, multi: bool) -> bool {
    let mut state = shared.lock();
    loop {
        if state.cancelled || state.finished {
            abandon(&mut state, lanes);
            return false;
        }
        let mut streams = lanes.iter().filter(|l| l.is_stream()).count();
        let mut took_large = false;
        while lanes.len() < max {
            // Leave work for workers that have none.
            let waiting = state.whole.len() + state.large.len();
            if !lanes.is_empty() && waiting <= state.workers_waiting {
                break;
            }
            let Some(ready) = take_next(&mut state, streams < STREAMS_PER_WORKER) else {
                break;
            };
            if let ReadyKind::Large { file, before } = &ready.kind {
                streams += 1;
                took_large = true;
                state.streams.push(StreamSlot {
                    seq: ready.seq,
                    file: Arc::clone(file),
                    size: before.st_size as u64,
                    map: maps_safely(file),
                    next: 0,
                    producing: false,
                    chunks: Default::default(),
                    end: None,
                    progress: Instant::now(),
                    abandoned: false,
                });
            }
            lanes.push(Lane::new(ready, multi));
        }
        // Chunks are produced by the extra readers (asleep while reads are fast), so a
        // stream never waits for a reader busy with a batch of small files.
        if took_large {
            drop(state);
            shared.call_extras(false);
            return true;
        }
        if !lanes.is_empty() {
            return true;
        }
        state.workers_waiting += 1;
        state = shared
            .workers_cv
            .wait_timeout(state, POLL)
            .map(|(state, _)| state)
            .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        state.workers_waiting -= 1;
    }
}

/// The next file for a worker: the largest large file first (when it may stream another),
/// then files read whole, in the order they were read.
fn take_next(state: &mut State, may_stream: bool) -> Option<Ready> {
    if may_stream && !state.large.is_empty() {
        let largest = (0..state.large.len()).max_by_key(|&i| {
            let ready = &state.large[i];
            (ready.large_size(), std::cmp::Reverse(ready.seq))
        })?;
        return Some(state.large.swap_remove(largest));
    }
    state.whole.pop_front()
}

/// Drops the files in flight of a cancelled run, and tells readers to stop their streams.
fn abandon(state: &mut State, lanes: &mut Vec<Lane>) {
    for lane in lanes.drain(..) {
        if lane.is_stream() {
            if let Some(slot) = state.streams.iter_mut().find(|s| s.seq == lane.seq) {
                slot.abandoned = true;
            }
            state.streams.retain(|s| s.seq != lane.seq);
        }
    }
}

/// One round of work on the lanes: take the chunks that came, compress the blocks every
/// lane has, finish the files that ended. Whether anything moved.
fn step<R>(
    lanes: &mut Vec<Lane>,
    finish: &mut dyn FnMut(u64, Result<Hashing, Failure>),
    shared: &Shared<R>,
) -> bool {
    let mut progressed = take_chunks(shared, lanes);
    progressed |= compress(lanes);
    let mut i = 0;
    while i < lanes.len() {
        if lanes[i].is_done() {
            let lane = lanes.swap_remove(i);
            let seq = lane.seq;
            if lane.is_stream() {
                shared.lock().streams.retain(|s| s.seq != seq);
            }
            finish(seq, finish_lane(lane));
            progressed = true;
        } else {
            i += 1;
        }
    }
    progressed
}

/// Gives each stream lane whose chunk is used up the next one, if it came, or the stream's
/// end. Whether any lane got something.
fn take_chunks<R>(shared: &Shared<R>, lanes: &mut [Lane]) -> bool {
    if !lanes.iter().any(Lane::wants_chunk) {
        return false;
    }
    let mut got = false;
    let mut state = shared.lock();
    for lane in lanes.iter_mut().filter(|l| l.wants_chunk()) {
        let Some(slot) = state.streams.iter_mut().find(|s| s.seq == lane.seq) else {
            lane.failed = Some(Reason::Io(std::io::Error::other("stream lost")));
            continue;
        };
        let LaneData::Stream {
            chunk, pos, ended, ..
        } = &mut lane.data
        else {
            continue;
        };
        let used_up = chunk.as_ref().is_none_or(|c| *pos >= c.len());
        // A tail of less than a block left in a chunk: it is the last chunk; only the end
        // can come.
        let next = if used_up {
            slot.chunks.pop_front()
        } else {
            None
        };
        if let Some(next) = next {
            *chunk = Some(next);
            *pos = 0;
            got = true;
        } else {
            match slot.end.take() {
                Some(Ok(())) => {
                    *ended = true;
                    slot.end = Some(Ok(()));
                    got = true;
                }
                Some(Err(reason)) => {
                    lane.failed = Some(reason);
                    got = true;
                }
                None => {}
            }
        }
    }
    drop(state);
    if got {
        shared.call_extras(false);
    }
    got
}

/// Hashes what the lanes have: the whole blocks every interleaved lane has, in one pass, and
/// what each one-at-a-time lane has. Whether anything was hashed.
fn compress(lanes: &mut [Lane]) -> bool {
    let mut progressed = false;
    // Interleaved SHA-256 lanes with at least one whole block.
    let multi: Vec<usize> = (0..lanes.len())
        .filter(|&i| {
            lanes[i].failed.is_none()
                && matches!(lanes[i].hash, LaneHash::Multi(_))
                && available(&lanes[i].data).0.len() >= BLOCK_LEN
        })
        .collect();
    if !multi.is_empty() {
        let n = multi.len();
        let blocks = multi
            .iter()
            .map(|&i| available(&lanes[i].data).0.len() / BLOCK_LEN)
            .min()
            .unwrap_or(0)
            .min(STEP_BLOCKS);
        let mut states = [INITIAL_STATE; MAX_LANES];
        for (k, &i) in multi.iter().enumerate() {
            if let LaneHash::Multi(state) = lanes[i].hash {
                states[k] = state;
            }
        }
        let mut faults = {
            let views: Vec<(&[u8], Option<&Window>)> =
                multi.iter().map(|&i| available(&lanes[i].data)).collect();
            let windows: Vec<Option<&Window>> = views.iter().map(|v| v.1).collect();
            let data: Vec<&[u8]> = views.iter().map(|v| v.0).collect();
            let ((), faults) = guarded(&windows, || {
                multibuf::compress(&mut states[..n], &data, blocks);
            });
            faults
        };
        for (k, &i) in multi.iter().enumerate() {
            lanes[i].hash = LaneHash::Multi(states[k]);
            lanes[i].advance(blocks * BLOCK_LEN);
            if let Some(reason) = faults.get_mut(k).and_then(Option::take) {
                lanes[i].failed = Some(reason);
            }
        }
        progressed |= blocks > 0;
    }
    // One-at-a-time lanes: everything they have, a step at a time.
    for lane in lanes.iter_mut() {
        if lane.failed.is_some() {
            continue;
        }
        let Lane { hash, data, .. } = &mut *lane;
        let LaneHash::Single(hasher) = hash else {
            continue;
        };
        let (bytes, window) = available(data);
        let take = bytes.len().min(STEP_BLOCKS * BLOCK_LEN);
        if take == 0 {
            continue;
        }
        let ((), mut faults) = guarded(&[window], || hasher.update(&bytes[..take]));
        lane.advance(take);
        if let Some(reason) = faults.get_mut(0).and_then(Option::take) {
            lane.failed = Some(reason);
        }
        progressed = true;
    }
    progressed
}

/// The outcome of a lane that is done: its digest, if it did not fail and did not change
/// while it was read.
fn finish_lane(lane: Lane) -> Result<Hashing, Failure> {
    let Lane {
        name,
        hash,
        total,
        data,
        state,
        failed,
        ..
    } = lane;
    if let Some(reason) = failed {
        return Err(Failure::new(name, reason));
    }
    let (rest, window) = available(&data);
    let mut tail = [0u8; BLOCK_LEN];
    let tail_len = rest.len().min(BLOCK_LEN - 1);
    let ((), faults) = guarded(&[window], || {
        tail[..tail_len].copy_from_slice(&rest[..tail_len])
    });
    if let Some(reason) = faults.into_iter().flatten().next() {
        return Err(Failure::new(name, reason));
    }
    let bytes = total + tail_len as u64;
    let digest = match hash {
        LaneHash::Multi(sha) => Digests::from(multibuf::finish(sha, bytes, &tail[..tail_len])),
        LaneHash::Single(hasher) => hasher.finalize(),
    };
    if let LaneData::Stream { file, before, .. } = &data {
        // Fewer bytes than its size: it shrank while being read; a status that moved: it was
        // written meanwhile.
        let after = fstat(file).map_err(|e| Failure::new(name.clone(), e))?;
        if bytes < before.st_size as u64 || changed(before, &after) {
            return Err(Failure::new(name, Reason::Changed));
        }
    }
    Ok(Hashing::Hashed(Hashed {
        name,
        digest,
        bytes,
        state,
    }))
}

/// Waits (at most [`POLL`]) until a chunk or an end comes for one of the lanes, or the run
/// is over.
fn wait_for_chunks<R>(shared: &Shared<R>, lanes: &[Lane]) {
    let state = shared.lock();
    let arrived = state.cancelled
        || state.finished
        || lanes.iter().any(|lane| {
            state
                .streams
                .iter()
                .find(|s| s.seq == lane.seq)
                .is_some_and(|s| !s.chunks.is_empty() || s.end.is_some())
        });
    if !arrived {
        let _ = shared
            .workers_cv
            .wait_timeout(state, POLL)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use super::take_next;
    use crate::digest::Algorithms;
    use crate::engine::shared::{BufferPool, Ready, ReadyKind, State};

    fn large(seq: u64, size: u64) -> Ready {
        let file = tempfile::tempfile().expect("a temporary file");
        let mut before = rustix::fs::fstat(&file).expect("fstat");
        before.st_size = size as _;
        Ready {
            seq,
            name: PathBuf::from(format!("f{seq}")),
            algorithm: Algorithms::SHA256,
            kind: ReadyKind::Large {
                file: Arc::new(file),
                before,
            },
        }
    }

    fn whole(pool: &Arc<BufferPool>, seq: u64) -> Ready {
        Ready {
            seq,
            name: PathBuf::from(format!("f{seq}")),
            algorithm: Algorithms::SHA256,
            kind: ReadyKind::Whole {
                data: pool.try_acquire(16).expect("room"),
                state: None,
            },
        }
    }

    fn seqs(state: &mut State, may_stream: bool) -> Vec<u64> {
        std::iter::from_fn(|| take_next(state, may_stream))
            .map(|r| r.seq)
            .collect()
    }

    #[test]
    fn the_largest_file_goes_first_then_whole_files_in_read_order() {
        let pool = Arc::new(BufferPool::new(1 << 20));
        let mut state = State::new(Vec::new());
        state.large = vec![large(7, 10 << 20), large(2, 1 << 30), large(5, 1 << 30)];
        state.large.push(large(9, 600 << 20));
        state.whole = [4, 1, 8].map(|seq| whole(&pool, seq)).into();
        // Largest first; of two the same size, the earlier in the walk.
        assert_eq!(seqs(&mut state, true), [2, 5, 9, 7, 4, 1, 8]);

        // A worker that may not stream another large file takes whole files only.
        let mut state = State::new(Vec::new());
        state.large = vec![large(3, 1 << 30)];
        state.whole = [1, 2].map(|seq| whole(&pool, seq)).into();
        assert_eq!(seqs(&mut state, false), [1, 2]);
        assert_eq!(state.large.len(), 1);
    }
}
