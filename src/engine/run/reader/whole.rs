//! Files of up to [`WHOLE_MAX`](crate::engine::policy::WHOLE_MAX) bytes: read whole into a
//! buffer of the run's budget by a reader, which hashes them in lanes, several at once, on its
//! own thread. (The calling thread hashes the ones it takes over from a held-up reader:
//! `supervisor::rescue`.)

use std::sync::Arc;

use rustix::fs::Stat;

use crate::digest::Algorithms;
use crate::engine::lanes;
use crate::engine::read::{Hashed, Hashing, changed, regular_state};
use crate::engine::run::buffers::{Spares, WHOLE_BUDGET};
use crate::engine::run::state::{Whole, lock};
use crate::engine::source::Source;
use crate::engine::storage::Handle;
use crate::report::{Failure, Reason};

use super::{ADVISE_MIN, HELD_MAX, Reader, fill, outcome};

impl<R: Send + 'static> Reader<'_, R> {
    /// Hashes the files it read whole, in lanes.
    pub(super) fn hash_wholes(&mut self) {
        let wholes = std::mem::take(&mut lock(&self.desk).wholes);
        if wholes.is_empty() {
            return;
        }
        let results = hash_wholes(wholes, self.shared.lanes, &mut self.spares);
        let full = {
            let mut desk = lock(&self.desk);
            desk.held.extend(results);
            desk.held.len() >= HELD_MAX
        };
        if full || self.immediate {
            self.post_held();
        }
    }

    /// Reads a regular file whole into a buffer of the budget, for this reader's lanes.
    pub(super) fn read_whole(
        &mut self,
        (seq, source, algorithm): (u64, Source, Algorithms),
        handle: &dyn Handle,
        before: &Stat,
    ) {
        let size = before.st_size as usize;
        if size as u64 >= ADVISE_MIN {
            // Let the storage start on it now: the wait for room in the budget can overlap.
            handle.will_need(0, size as u64);
        }
        let budget = Arc::clone(&self.shared.budget);
        let needed = Spares::size_for(size).min(WHOLE_BUDGET);
        // No room: the files this reader holds for its lanes are hashed first, which gives
        // their room back (every reader waiting with full hands would wait forever).
        let room = match budget.try_room(needed) {
            Some(room) => room,
            None => {
                self.flush();
                match budget.room(needed) {
                    Some(room) => room,
                    // The run was cancelled.
                    None => return,
                }
            }
        };
        let mut data = self.spares.take(size, room);
        let read = fill(data.fill(), |buf, done| {
            if done == 0 {
                self.first_read(handle, buf)
            } else {
                handle.read_at(buf, done as u64)
            }
        })
        .and_then(|()| {
            // Read as far as the size it had: no read is needed to see its end. If it grew
            // meanwhile, the status says so.
            if changed(before, &handle.stat()?) {
                return Err(Reason::Changed);
            }
            Ok(())
        });
        if let Err(reason) = read {
            self.done(seq, outcome(source, Err(reason)));
            return;
        }
        let whole = Whole {
            seq,
            name: source.into_name(),
            algorithm,
            data,
            state: regular_state(before),
        };
        let lanes = {
            let mut desk = lock(&self.desk);
            desk.wholes.push(whole);
            desk.wholes.len()
        };
        if lanes >= self.shared.lanes {
            self.hash_wholes();
        }
    }
}

/// Hashes files read whole, in lanes of `lanes` (1: one at a time), and gives their buffers
/// back to `spares`. Also used by the calling thread for what it rescues.
pub(crate) fn hash_wholes(
    wholes: Vec<Whole>,
    lanes: usize,
    spares: &mut Spares,
) -> Vec<(u64, Result<Hashing, Failure>)> {
    let mut results = Vec::with_capacity(wholes.len());
    let mut digests = Vec::with_capacity(crate::engine::multibuf::MAX_LANES);
    let mut rest = wholes.into_iter().peekable();
    let width = lanes.clamp(1, crate::engine::multibuf::MAX_LANES);
    while let Some(first) = rest.next() {
        // A batch of files of one algorithm (a run has one, but for stragglers of another).
        let algorithm = first.algorithm;
        let mut batch = vec![first];
        while batch.len() < width
            && let Some(next) = rest.next_if(|w| w.algorithm == algorithm)
        {
            batch.push(next);
        }
        let mut data: [&[u8]; crate::engine::multibuf::MAX_LANES] =
            [&[]; crate::engine::multibuf::MAX_LANES];
        for (slot, whole) in data.iter_mut().zip(&batch) {
            *slot = whole.data.bytes();
        }
        digests.clear();
        lanes::hash_all(algorithm, width > 1, &data[..batch.len()], &mut digests);
        for (whole, digest) in batch.into_iter().zip(digests.drain(..)) {
            let hashed = Hashed {
                name: whole.name,
                digest,
                bytes: whole.data.bytes().len() as u64,
                state: whole.state,
            };
            results.push((whole.seq, Ok(Hashing::Hashed(hashed))));
            whole.data.recycle(spares);
        }
    }
    results
}
