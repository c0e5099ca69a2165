//! Feeding the run: numbering the items, planning each one, queueing what needs reading,
//! and looking ahead for large files. Runs on the calling thread, between its prints
//! (`run::print_in_order`).
//!
//! The calling thread pulls items from the input (the walk, a checksum list) and plans each
//! (a plan may look a name up in a manifest), never more than [`Tuning::window`](super::Tuning)
//! items ahead of the output. Feeding and printing on one thread, as the engine did before
//! it had readers, saves a thread that both other sides must wake, and keeps each item's
//! allocations on the thread that frees them (a separate feeder made warm trees of small
//! files 10 to 15% slower: 5,900 context switches against 2,300 for 100,000 files, and
//! glibc's arena lock between the threads). The walk may wait on a cold directory, or a
//! list on a pipe: then the output waits too, which it would anyway, for the next item.
//!
//! While the window is full, and once everything is queued, the calling thread is also the
//! *scout*: it looks ahead in the queue for large files and moves them to the front, so
//! that a large file anywhere in the window starts early and no core is left to finish it
//! alone at the end (the workers then take the largest first). It costs a stat per file
//! looked at, so it looks only while the files opened so far are large on average
//! (`policy::scout_wanted`).

use std::sync::atomic::Ordering;
use std::time::Instant;

use rustix::fs::FileType;

use crate::engine::policy::{self, WHOLE_MAX};
use crate::engine::read::Hashing;
use crate::engine::run::Plan;
use crate::engine::run::state::{Request, Requests, Shared, lock};
use crate::engine::source::Source;

/// Requests gathered before they are queued, when the readers have enough to do: one lock
/// for many requests.
const FEED_BATCH: usize = 16;

/// Below this many requests queued, the readers may run dry: each request is queued at once.
/// (When the input is slow to come, the readers drain the queue, so what is fed is never
/// held back waiting for more.)
const QUEUE_LOW: usize = 32;

/// Items pulled at most between two looks at the results.
const FEED_STEP: usize = 256;

/// Requests the scout looks at in one step.
const SCOUT_STEP: usize = 32;

/// Large files moved ahead and not yet streaming, at most (each holds a descriptor once
/// opened, and a place among the streams).
const PROMOTED_MAX: usize = 4;

/// What feeding did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fed {
    /// Pulled this many items (maybe 0 with the window full).
    Some(usize),
    /// The input is at its end: every item was fed.
    Done,
    /// The run was cancelled.
    Cancelled,
}

/// The feeding side of the calling thread.
pub(crate) struct Feeder<I, P> {
    items: I,
    plan: P,
    /// Items numbered so far.
    pub(crate) seq: u64,
    gathered: Vec<Request>,
    done: bool,
    scout: Scout,
}

impl<T, I: Iterator<Item = T>, P> Feeder<I, P> {
    pub(crate) fn new(items: I, plan: P) -> Self {
        Feeder {
            items,
            plan,
            seq: 0,
            gathered: Vec::with_capacity(FEED_BATCH),
            done: false,
            scout: Scout::default(),
        }
    }

    /// Pulls and plans items while the window has room (`printed` results handed out so
    /// far), at most [`FEED_STEP`].
    pub(crate) fn feed<R: Send + 'static>(&mut self, shared: &Shared<R>, printed: u64) -> Fed
    where
        P: Fn(T) -> Plan<R>,
    {
        // The time box is looked at first: a run whose every item was fed early still has
        // queued requests the readers have not started, and they must come back unread.
        if !shared.cut.load(Ordering::Acquire)
            && shared
                .limits
                .deadline
                .is_some_and(|deadline| Instant::now() >= deadline.at)
        {
            return self.cut(shared);
        }
        if self.done {
            return Fed::Done;
        }
        let window = shared.thens.len() as u64;
        let mut pulled = 0;
        while pulled < FEED_STEP && self.seq < printed + window {
            let Some(item) = self.items.next() else {
                if !queue(shared, &mut self.gathered, self.seq) {
                    return Fed::Cancelled;
                }
                self.done = true;
                shared.requests().feeding_done = true;
                shared.requests_cv.notify_all();
                shared.extras_cv.notify_all();
                return Fed::Done;
            };
            let seq = self.seq;
            match (self.plan)(item) {
                Plan::Done(result) => shared.results.post(seq, result),
                Plan::Hash {
                    source,
                    algorithm,
                    unless,
                    then,
                } => {
                    *shared.then_slot(seq) = Some(then);
                    self.gathered.push(Request {
                        seq,
                        source,
                        algorithm,
                        unless,
                        promoted: false,
                    });
                }
            }
            self.seq += 1;
            pulled += 1;
            // Few requests queued: the readers may run dry, so each one goes at once.
            let low = shared.queued.load(Ordering::Relaxed) < QUEUE_LOW;
            if (self.gathered.len() >= FEED_BATCH || low)
                && !queue(shared, &mut self.gathered, self.seq)
            {
                return Fed::Cancelled;
            }
        }
        if !queue(shared, &mut self.gathered, self.seq) {
            return Fed::Cancelled;
        }
        Fed::Some(pulled)
    }

    /// The time is up: nothing more is fed, and what is queued comes back unread
    /// ([`Hashing::NotReached`]); readers start nothing more either.
    fn cut<R: Send + 'static>(&mut self, shared: &Shared<R>) -> Fed {
        shared.cut.store(true, Ordering::Release);
        if !queue(shared, &mut self.gathered, self.seq) {
            return Fed::Cancelled;
        }
        let unread: Vec<Request> = {
            let mut requests = shared.requests();
            requests.promoted = 0;
            requests.feeding_done = true;
            let unread = requests.queue.drain(..).collect();
            shared.queued.store(0, Ordering::Relaxed);
            unread
        };
        shared.requests_cv.notify_all();
        shared.extras_cv.notify_all();
        shared.finish_many(
            unread
                .into_iter()
                .map(|request| (request.seq, Ok(Hashing::NotReached)))
                .collect(),
        );
        self.done = true;
        Fed::Done
    }

    /// Whether the input is at its end.
    pub(crate) fn feed_state(&self) -> Fed {
        if self.done { Fed::Done } else { Fed::Some(0) }
    }

    /// One step of the scout, if it is worth one now: `true` if it looked.
    pub(crate) fn scout<R>(&mut self, shared: &Shared<R>) -> bool {
        let wanted = self.scout.wanted(shared, &shared.requests());
        if wanted {
            self.scout.step(shared);
        }
        wanted
    }
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
    let added = gathered.len();
    requests.queue.extend(gathered.drain(..));
    shared.queued.store(requests.queue.len(), Ordering::Relaxed);
    // As many readers as there are requests to share, at most: a reader woken for nothing
    // costs two switches, and when the readers are faster than the walk (a warm tree of
    // small files) each request comes alone.
    match requests.readers_waiting {
        0 => {}
        waiting if added >= waiting => shared.requests_cv.notify_all(),
        _ => {
            for _ in 0..added {
                shared.requests_cv.notify_one();
            }
        }
    }
    true
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
