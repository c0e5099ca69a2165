//! Hashing several files at once on each worker, so that one core does the work of nearly two.
//!
//! A single SHA-256 stream leaves the CPU's SHA unit waiting on its own latency; streams of
//! different files can fill those waits (`multibuf` has the figures). So each worker keeps up
//! to [`Tuning::lanes`](crate::engine::pool::Tuning) files of its batch *in flight*: it reads a
//! chunk of each into a buffer of its own, compresses the whole blocks they all have in one
//! interleaved pass, refills the lanes that ran dry, and as soon as a file ends, posts its
//! result and claims the next item. Nothing is split inside a file, and results still reach the
//! printing thread by sequence number, so the output order is unchanged.
//!
//! Only SHA-256 regular files of at least [`LANE_MIN`] bytes go into lanes, and files over
//! [`LARGE`] only in company. The rest are hashed one at a time exactly as `read` hashes them:
//! standard input, FIFOs and devices (whose reads may block), other algorithms, tiny files (a
//! block or two leaves nothing to interleave), and a large file with no other file to share the
//! core with, which goes faster through memory maps. Without the SHA extensions, `lanes` is 1
//! and every file takes that path.
//!
//! A worker holds only the items of its current batch, and no more than its share of them
//! ([`Claims::fair_to_take`]): four large files on two workers go two and two, not four on one
//! while the other waits.
//!
//! The commands describe their items with a [`Plan`]: either a result already known, or a
//! source to hash and what to make of the outcome. The checks are those of `read`: the status
//! of each file before the first read and after the last must agree, or the file is reported as
//! changed while being read.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Read};

use rustix::fs::{FileType, Stat};

use crate::digest::{Algorithm, Digest};
use crate::engine::mapped::Active;
use crate::engine::multibuf::{self, BLOCK_LEN, INITIAL_STATE, MAX_LANES};
use crate::engine::pool::{Claims, Job};
use crate::engine::read::{
    Digested, Hashing, Opened, changed, fstat, hash_opened, open_source, outcome, regular_state,
};
use crate::engine::source::{FileId, Source};
use crate::format::state::FileState;
use crate::report::{Failure, Reason};
use crate::signals;

/// Files smaller than this are hashed alone: a file of a block or two leaves nothing to
/// interleave. Measured on 2 cores, warm cache: 100,000 files of 4 KiB took 0.43 s in lanes
/// and 0.49 s without; 200,000 files of 0 to 100 bytes took the same either way.
pub const LANE_MIN: u64 = 1 << 10;

/// Files larger than this go into a lane only in company: when the worker already holds other
/// lanes or its batch holds more than one item per worker. Alone, a large file is hashed
/// through memory maps, with a helper thread when a core is idle, which a lane cannot match (1
/// GiB: 0.62 s mapped, 0.69-0.75 s alone in a lane); in company, lanes win (4 files of 512 MiB
/// on 2 cores: 0.56 s in lanes, 0.70 s mapped one by one).
pub const LARGE: u64 = 64 << 20;

/// Bytes read into a lane at a time. Four lanes of this fit a core's L2 cache with room to
/// spare; 64 KiB and 128 KiB reads measured alike, 1 MiB reads 5% slower.
const CHUNK: usize = 128 << 10;

/// What the command makes of an item's hash, given the outcome.
pub type Then<R> = Box<dyn FnOnce(Result<Hashing, Failure>) -> R + Send>;

/// What to do with one item.
pub enum Plan<R> {
    /// The result is known without hashing anything.
    Done(R),
    /// Hash `source` with `algorithm`, then make the result with `then`.
    Hash {
        /// What to hash.
        source: Source,
        /// With which algorithm.
        algorithm: Algorithm,
        /// Do not read it if a stat of it, taken first, says this: the state recorded with
        /// its digest (`hash --update`). The result is then [`Hashing::Unchanged`].
        unless: Option<FileState>,
        /// The result, from the outcome.
        then: Then<R>,
    },
}

/// The job that hashes the items of a batch in lanes; see the module header.
pub struct HashJob<'a, F> {
    plan: F,
    skip: &'a [FileId],
    lanes: usize,
}

impl<'a, F> HashJob<'a, F> {
    /// A job that plans each item with `plan`, never hashes the files in `skip`, and keeps
    /// up to `lanes` files in flight per worker (at most [`MAX_LANES`]).
    pub fn new(plan: F, skip: &'a [FileId], lanes: usize) -> HashJob<'a, F> {
        HashJob {
            plan,
            skip,
            lanes: lanes.clamp(1, MAX_LANES),
        }
    }
}

impl<T, R, F> Job<T, R> for HashJob<'_, F>
where
    F: Fn(T) -> Plan<R> + Sync,
{
    fn run(&self, claims: &mut dyn Claims<T>, post: &mut dyn FnMut(u64, R)) {
        let mut lanes: Vec<Lane<R>> = Vec::with_capacity(self.lanes);
        let mut more = true;
        // Counts this worker as busy hashing while it holds lanes, so a large mapped file on
        // another worker does not take a core for a helper thread that this one needs.
        let mut active = None;
        loop {
            while more
                && lanes.len() < self.lanes
                && (lanes.is_empty() || claims.fair_to_take(lanes.len()))
            {
                let Some((seq, item)) = claims.next() else {
                    more = false;
                    break;
                };
                match (self.plan)(item) {
                    Plan::Done(result) => post(seq, result),
                    Plan::Hash {
                        source,
                        unless: Some(recorded),
                        then,
                        ..
                    } if unchanged(&source, &recorded) => {
                        let name = source.into_name();
                        post(
                            seq,
                            then(Ok(Hashing::Unchanged {
                                name,
                                state: recorded,
                            })),
                        );
                    }
                    Plan::Hash {
                        source,
                        algorithm,
                        then,
                        ..
                    } => match self.admit(
                        &source,
                        algorithm,
                        !lanes.is_empty() || claims.fair_to_take(1),
                    ) {
                        Admitted::Lane(file, before) => {
                            lanes.push(Lane::new(seq, source, then, file, before));
                        }
                        Admitted::Alone(opened) => {
                            // A read that may block (standard input, a FIFO, a device) must
                            // not hold the files already in lanes hostage: their results
                            // come first in the output, so they are finished first. (Opening
                            // a FIFO named on the command line already waits for a writer,
                            // as it always did; a FIFO met in a walk is never opened.)
                            if may_block(&opened) {
                                while !lanes.is_empty() {
                                    step(&mut lanes, post);
                                }
                            }
                            let result = hash_opened(opened, algorithm);
                            post(seq, then(outcome(source, result)));
                        }
                        Admitted::Failed(reason) => post(seq, then(outcome(source, Err(reason)))),
                    },
                }
            }
            // Stdout closed or full: nobody wants the files in flight any more.
            if lanes.is_empty() || claims.cancelled() {
                break;
            }
            active.get_or_insert_with(Active::enter);
            step(&mut lanes, post);
            if lanes.is_empty() {
                active = None;
            }
        }
    }
}

/// Where a source goes.
enum Admitted {
    /// Into a lane: an open regular file and its status.
    Lane(File, Stat),
    /// Hashed alone.
    Alone(Opened),
    /// Nowhere: it could not be opened.
    Failed(Reason),
}

impl<F> HashJob<'_, F> {
    /// Opens `source` and decides whether it goes into a lane. `company` tells whether other
    /// files are, or will be, in this worker's lanes.
    fn admit(&self, source: &Source, algorithm: Algorithm, company: bool) -> Admitted {
        match open_source(source, self.skip) {
            Ok(Opened::File(file, before))
                if self.lanes > 1
                    && algorithm == Algorithm::Sha256
                    && fits_a_lane(&before, company) =>
            {
                Admitted::Lane(file, before)
            }
            Ok(opened) => Admitted::Alone(opened),
            Err(reason) => Admitted::Failed(reason),
        }
    }
}

/// Whether a stat of `source` is `recorded`, for a regular file. A stat that fails says
/// nothing: the file is opened, and the open reports what went wrong.
fn unchanged(source: &Source, recorded: &FileState) -> bool {
    match source.stat() {
        Some(Ok(stat)) => regular_state(&stat).is_some_and(|state| state == *recorded),
        Some(Err(_)) | None => false,
    }
}

/// Whether reading `opened` may wait on something else than the disk.
fn may_block(opened: &Opened) -> bool {
    match opened {
        Opened::File(_, stat) => FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile,
        Opened::Stdin => true,
        Opened::Skipped => false,
    }
}

fn fits_a_lane(stat: &Stat, company: bool) -> bool {
    let size = stat.st_size as u64;
    FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile
        && size >= LANE_MIN
        && (size <= LARGE || company)
}

/// One file in flight.
struct Lane<R> {
    seq: u64,
    source: Source,
    then: Then<R>,
    file: File,
    before: Stat,
    /// SHA-256 state after the blocks before `buf[start..]`.
    state: [u32; 8],
    /// Bytes read from the file so far.
    read: u64,
    /// Bytes read and not yet compressed are `buf[start..end]`.
    buf: LaneBuffer,
    start: usize,
    end: usize,
    /// No more bytes will be read.
    eof: bool,
}

impl<R> Lane<R> {
    fn new(seq: u64, source: Source, then: Then<R>, file: File, before: Stat) -> Lane<R> {
        Lane {
            seq,
            source,
            then,
            file,
            before,
            state: INITIAL_STATE,
            read: 0,
            buf: LaneBuffer::take(),
            start: 0,
            end: 0,
            eof: false,
        }
    }

    /// Reads until at least one whole block is waiting, or the file has ended.
    fn fill(&mut self) -> Result<(), Reason> {
        while self.end - self.start < BLOCK_LEN && !self.eof {
            // Fewer than a block is left: move it to the front and read behind it.
            self.buf.0.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            match self.file.read(&mut self.buf.0[self.end..]) {
                // It ends before the size it had: it shrank while being read. Say so even if
                // it grew back and its status looks untouched (timestamps are coarser than
                // a truncate-and-rewrite), since what was read is no state the file ever had.
                Ok(0) if self.read < self.before.st_size as u64 => return Err(Reason::Changed),
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.end += n;
                    self.read += n as u64;
                    // Read as far as the size it had: no read is needed to see its end. If
                    // it grew meanwhile, the status check at the end says so.
                    self.eof = self.read == self.before.st_size as u64;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {
                    if signals::stop_requested().is_some() {
                        return Err(err.into());
                    }
                }
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    /// Whole blocks waiting to be compressed.
    fn blocks(&self) -> usize {
        (self.end - self.start) / BLOCK_LEN
    }

    /// Whether everything is read and every whole block compressed.
    fn is_done(&self) -> bool {
        self.eof && self.blocks() == 0
    }

    /// The digest, if the file did not change while it was read.
    fn digest(&self) -> Result<Digested, Reason> {
        let tail = &self.buf.0[self.start..self.end];
        let digest = multibuf::finish(self.state, self.read, tail);
        if changed(&self.before, &fstat(&self.file)?) {
            return Err(Reason::Changed);
        }
        Ok(Digested {
            digest: Digest::from(digest),
            bytes: self.read,
            state: regular_state(&self.before),
        })
    }

    /// Ends the lane and returns its item's number and result.
    fn end(self, result: Result<Digested, Reason>) -> (u64, R) {
        (
            self.seq,
            (self.then)(outcome(self.source, result.map(Some))),
        )
    }
}

/// One round of work on the lanes: refill, post the files that ended, compress the blocks
/// every remaining lane has.
fn step<R>(lanes: &mut Vec<Lane<R>>, post: &mut dyn FnMut(u64, R)) {
    // A stop request abandons every file in flight, as `hash` abandons a file at its next
    // block.
    if signals::stop_requested().is_some() {
        for lane in lanes.drain(..) {
            let (seq, result) = lane.end(Err(io::Error::from(io::ErrorKind::Interrupted).into()));
            post(seq, result);
        }
        return;
    }
    let mut i = 0;
    while i < lanes.len() {
        let filled = lanes[i].fill();
        let finished = match filled {
            Err(reason) => Some(Err(reason)),
            Ok(()) if lanes[i].is_done() => Some(lanes[i].digest()),
            Ok(()) => None,
        };
        match finished {
            Some(result) => {
                let (seq, result) = lanes.swap_remove(i).end(result);
                post(seq, result);
            }
            None => i += 1,
        }
    }
    let n = lanes.len();
    let Some(blocks) = lanes.iter().map(Lane::blocks).min() else {
        return;
    };
    let mut states = [INITIAL_STATE; MAX_LANES];
    let mut data: [&[u8]; MAX_LANES] = [&[]; MAX_LANES];
    for (i, lane) in lanes.iter().enumerate() {
        states[i] = lane.state;
        data[i] = &lane.buf.0[lane.start..lane.end];
    }
    multibuf::compress(&mut states[..n], &data[..n], blocks);
    for (lane, state) in lanes.iter_mut().zip(states) {
        lane.state = state;
        lane.start += blocks * BLOCK_LEN;
    }
}

thread_local! {
    /// Lane buffers no lane holds, kept for the next files this thread hashes.
    static SPARE: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

/// A lane's read buffer: a chunk and the part of a block left over from the one before.
/// Taken from this thread's spares and given back on drop, so a worker allocates its lane
/// buffers once, not once per file or per batch.
struct LaneBuffer(Box<[u8]>);

impl LaneBuffer {
    fn take() -> LaneBuffer {
        let spare = SPARE.with(|spare| spare.borrow_mut().pop());
        LaneBuffer(spare.unwrap_or_else(|| vec![0; CHUNK + BLOCK_LEN].into_boxed_slice()))
    }
}

impl Drop for LaneBuffer {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.0);
        SPARE.with(|spare| {
            let mut spare = spare.borrow_mut();
            if spare.len() < MAX_LANES {
                spare.push(buf);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::path::PathBuf;

    use sha2::Digest as _;

    use crate::engine::pool::{Completion, Tuning, run_ordered};
    use crate::engine::read::Hashed;

    /// Hashes `paths` with a `HashJob` of `lanes` lanes on `threads` threads.
    fn hash_all(paths: &[PathBuf], threads: usize, lanes: usize) -> Vec<Result<Hashed, String>> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let plan = |path: PathBuf| -> Plan<Result<Hashed, String>> {
            Plan::Hash {
                source: Source::Path(path),
                algorithm: Algorithm::Sha256,
                unless: None,
                then: Box::new(|outcome| match outcome {
                    Ok(Hashing::Hashed(hashed)) => Ok(hashed),
                    Ok(Hashing::Skipped | Hashing::Unchanged { .. }) => Err("skipped".into()),
                    Err(failure) => Err(failure.reason.to_string()),
                }),
            }
        };
        let tuning = Tuning {
            batch_size: 7,
            window: 64,
            lanes,
        };
        let mut out = Vec::new();
        let job = HashJob::new(plan, &[], lanes);
        let done =
            run_ordered::<_, _, (), _, _, _>(&pool, tuning, paths.iter().cloned(), job, |r| {
                out.push(r);
                Ok(())
            });
        assert_eq!(done, Ok(Completion::Finished));
        out
    }

    #[test]
    fn files_of_every_shape_hash_as_sha2_hashes_them_in_any_lane_count() {
        let dir = tempfile::tempdir().unwrap();
        // Sizes around the lane limits, block and chunk boundaries, so lanes of unequal
        // lengths end at different steps; and one missing file among them.
        let sizes = [
            0,
            1,
            63,
            64,
            65,
            LANE_MIN as usize - 1,
            LANE_MIN as usize,
            5000,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            CHUNK + 55,
            3 * CHUNK + 64,
            300_000,
            1 << 20,
        ];
        let mut paths = Vec::new();
        let mut want = Vec::new();
        for (i, size) in sizes.iter().enumerate() {
            let data: Vec<u8> = (0..*size)
                .map(|j| (j * 7 + i * 31 + j / 251) as u8)
                .collect();
            let path = dir.path().join(format!("f{i}"));
            std::fs::write(&path, &data).unwrap();
            want.push(Ok(hex::encode(sha2::Sha256::digest(&data))));
            paths.push(path);
            if i == 6 {
                paths.push(dir.path().join("missing"));
                want.push(Err("No such file or directory".to_string()));
            }
        }
        for threads in [1, 2] {
            for lanes in 1..=MAX_LANES {
                let got: Vec<Result<String, String>> = hash_all(&paths, threads, lanes)
                    .into_iter()
                    .map(|r| r.map(|h| hex::encode(h.digest.as_bytes())))
                    .collect();
                assert_eq!(got, want, "{threads} threads, {lanes} lanes");
            }
        }
    }
}
