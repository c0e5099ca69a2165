//! The feeder thread: numbers the items, plans each one, queues what needs reading, and
//! looks ahead for large files. Everything here runs on the feeder.
//!
//! It pulls items from the input (the walk, a checksum list) and plans each outside any
//! lock (a plan may look a name up in a manifest; the pull may wait on a cold directory or a
//! list on a pipe). It never runs more than [`Tuning::window`](super::Tuning) items ahead of
//! the output: it waits for room on [`Shared::room_cv`].
//!
//! While it waits for room, and once everything is queued, it is the *scout*: it looks
//! ahead in the queue for large files and moves them to the front, so that a large file
//! anywhere in the window starts early and no core is left to finish it alone at the end
//! (the workers then take the largest first). It costs a stat per file looked at, so it
//! looks only while the files opened so far are large on average (`policy::scout_wanted`).

use std::sync::atomic::Ordering;
use std::time::Duration;

use rustix::fs::FileType;

use crate::engine::count_lost_wakeup;
use crate::engine::policy::{self, WHOLE_MAX};
use crate::engine::run::Plan;
use crate::engine::run::handoff::POLL;
use crate::engine::run::state::{Request, Requests, Shared, lock};
use crate::engine::source::Source;

/// Requests the feeder gathers before it queues them, when the readers have enough to do:
/// one lock for many requests.
const FEED_BATCH: usize = 16;

/// Below this many requests queued, the readers may run dry: the feeder queues each request
/// at once. (When the input is slow to come, the readers drain the queue, so what the feeder
/// has is never held back waiting for more.)
const QUEUE_LOW: usize = 32;

/// Requests the scout looks at in one step.
const SCOUT_STEP: usize = 32;

/// Large files moved ahead and not yet streaming, at most (each holds a descriptor once
/// opened, and a place among the streams).
const PROMOTED_MAX: usize = 4;

/// How often the scout looks again when it has nothing to do yet (too few files opened to
/// judge, or no room to move a large file ahead).
const SCOUT_POLL: Duration = Duration::from_millis(5);

/// Feeds `items` through `plan` into the run.
pub(crate) fn feed<T, R: Send + 'static>(
    shared: &Shared<R>,
    items: impl Iterator<Item = T>,
    plan: &(impl Fn(T) -> Plan<R> + Sync),
) {
    let window = shared.thens.len() as u64;
    let mut gathered: Vec<Request> = Vec::with_capacity(FEED_BATCH);
    let mut scout = Scout::default();
    let mut seq = 0u64;
    for item in items {
        // Room in the window for one more; first queue what was gathered, so the readers
        // can make the room.
        if seq >= shared.printed.load(Ordering::Acquire) + window
            && !(queue(shared, &mut gathered, seq) && wait_for_room(shared, seq, &mut scout))
        {
            return;
        }
        match plan(item) {
            Plan::Done(result) => shared.results.post(seq, result),
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
        // Few requests queued: the readers may run dry, so each one goes at once.
        let low = shared.queued.load(Ordering::Relaxed) < QUEUE_LOW;
        if (gathered.len() >= FEED_BATCH || low) && !queue(shared, &mut gathered, seq) {
            return;
        }
    }
    queue(shared, &mut gathered, seq);
    shared.requests().feeding_done = true;
    shared.requests_cv.notify_all();
    shared.extras_cv.notify_all();
    shared.results.wake();
    scout_the_rest(shared, &mut scout);
}

/// Queues the requests gathered, with `fed` items numbered so far, and wakes readers that
/// sleep. `false` if the run was cancelled.
fn queue<R>(shared: &Shared<R>, gathered: &mut Vec<Request>, fed: u64) -> bool {
    let mut requests = shared.requests();
    if requests.cancelled {
        return false;
    }
    requests.fed = fed;
    if gathered.is_empty() {
        return true;
    }
    requests.queue.extend(gathered.drain(..));
    shared.queued.store(requests.queue.len(), Ordering::Relaxed);
    if requests.readers_waiting > 0 {
        shared.requests_cv.notify_all();
    }
    true
}

/// Waits until item `seq` fits in the window, scouting meanwhile. `false` if the run was
/// cancelled.
fn wait_for_room<R>(shared: &Shared<R>, seq: u64, scout: &mut Scout) -> bool {
    let window = shared.thens.len() as u64;
    let room = || seq < shared.printed.load(Ordering::Acquire) + window;
    let mut requests = shared.requests();
    while !requests.cancelled && !room() {
        if scout.wanted(shared, &requests) {
            drop(requests);
            scout.step(shared);
            requests = shared.requests();
            continue;
        }
        requests.feeder_waiting = true;
        let (woken, timeout) = shared
            .room_cv
            .wait_timeout(requests, POLL)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        requests = woken;
        requests.feeder_waiting = false;
        count_lost_wakeup(timeout.timed_out(), room());
    }
    !requests.cancelled
}

/// Once everything is queued: the scout looks through what the readers have not taken yet.
fn scout_the_rest<R>(shared: &Shared<R>, scout: &mut Scout) {
    let mut requests = shared.requests();
    while !(requests.cancelled || requests.finished) && scout.pending(&requests) {
        if scout.wanted(shared, &requests) {
            drop(requests);
            scout.step(shared);
            requests = shared.requests();
        } else {
            // A poll, not a wait for a wake-up: what it waits for is the files opened so
            // far, which no one announces.
            requests = shared
                .room_cv
                .wait_timeout(requests, SCOUT_POLL)
                .map(|(requests, _)| requests)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
    }
}

/// The scout's memory: how far it looked, and what it found.
#[derive(Default)]
struct Scout {
    /// Requests up to this sequence number were looked at.
    next: u64,
    /// Large files found and not moved yet: size and sequence number.
    found: Vec<(u64, u64)>,
}

impl Scout {
    /// Whether looking ahead is worth it now, and there is something to look at or move.
    fn wanted<R>(&self, shared: &Shared<R>, requests: &Requests) -> bool {
        let files = shared.counters.opened_files.load(Ordering::Relaxed);
        let bytes = shared.counters.opened_bytes.load(Ordering::Relaxed);
        if !policy::scout_wanted(files, bytes) {
            return false;
        }
        let unseen = requests.queue.back().is_some_and(|r| r.seq >= self.next);
        let movable = !self.found.is_empty() && self.room(shared, requests) > 0;
        unseen || movable
    }

    /// Whether anything queued is left to look at or to move.
    fn pending(&self, requests: &Requests) -> bool {
        let unseen = requests.queue.back().is_some_and(|r| r.seq >= self.next);
        unseen || (!self.found.is_empty() && !requests.queue.is_empty())
    }

    /// How many more large files may be moved ahead now.
    fn room<R>(&self, shared: &Shared<R>, requests: &Requests) -> usize {
        let waiting = lock(&shared.streams).len();
        PROMOTED_MAX.saturating_sub(requests.promoted + waiting)
    }

    /// Looks at the next few requests (a stat each, outside the lock), and moves the
    /// largest files found to the front while there is room.
    fn step<R>(&mut self, shared: &Shared<R>) {
        let batch: Vec<(u64, Source)> = shared
            .requests()
            .queue
            .iter()
            .filter(|r| r.seq >= self.next && !r.promoted)
            .take(SCOUT_STEP)
            .map(|r| (r.seq, r.source.clone()))
            .collect();
        if let Some(&(last, _)) = batch.last() {
            self.next = last + 1;
        }
        for (seq, source) in batch {
            if let Ok(stat) = shared.storage.stat(&source) {
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
        let mut requests = shared.requests();
        let mut moved = false;
        while self.room(shared, &requests) > 0 {
            let Some((_, seq)) = self.found.pop() else {
                break;
            };
            // Not queued any more: a reader took it in its turn.
            let Some(at) = requests.queue.iter().position(|r| r.seq == seq) else {
                continue;
            };
            if let Some(mut request) = requests.queue.remove(at) {
                request.promoted = true;
                requests.promoted += 1;
                requests.queue.push_front(request);
                moved = true;
            }
        }
        drop(requests);
        if moved {
            shared.requests_cv.notify_all();
        }
    }
}
