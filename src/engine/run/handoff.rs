//! The hand-off of results to the thread that prints, and their order.
//!
//! Runs on two sides: readers and workers [`Results::post`] what they finished (a reader
//! a handful at a time, see `reader`); the calling thread collects them
//! ([`Results::collect_into`]) and puts them back in input order with a [`Reorder`].
//!
//! Each result is posted as soon as it exists, so a slow item (a huge file, a FIFO) never
//! holds back results finished before it. The calling thread is woken only when the result
//! it waits for arrives, not for every result: on trees of tiny files, a wake-up per file
//! cost more than the file. That is why this is a lock and a condition variable rather than
//! a channel: a channel wakes its receiver for every message.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use crate::engine::count_lost_wakeup;

/// Longest wait for results before the calling thread looks for a stop request again,
/// flushes what it printed and looks at the readers (`supervisor`). A safety net and a
/// clock, never what wakes it for a result.
pub(crate) const POLL: Duration = Duration::from_millis(100);

/// Where results wait for the calling thread.
pub(crate) struct Results<R> {
    state: Mutex<Posted<R>>,
    arrived: Condvar,
}

struct Posted<R> {
    results: Vec<(u64, R)>,
    /// The sequence number the calling thread waits for, and whether it came.
    awaited: u64,
    awaited_arrived: bool,
    /// The calling thread sleeps in `collect`.
    sleeping: bool,
    /// Wake it whatever it waits for.
    poke: bool,
}

impl<R> Default for Results<R> {
    fn default() -> Self {
        Results {
            state: Mutex::new(Posted {
                results: Vec::new(),
                awaited: 0,
                awaited_arrived: false,
                sleeping: false,
                poke: false,
            }),
            arrived: Condvar::new(),
        }
    }
}

impl<R> Results<R> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Posted<R>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Posts the result of item `seq`.
    pub(crate) fn post(&self, seq: u64, result: R) {
        let mut posted = self.lock();
        posted.results.push((seq, result));
        if seq == posted.awaited {
            posted.awaited_arrived = true;
            if posted.sleeping {
                self.arrived.notify_one();
            }
        }
    }

    /// Posts several results at once: one lock.
    pub(crate) fn post_many(&self, results: &mut Vec<(u64, R)>) {
        if results.is_empty() {
            return;
        }
        let mut posted = self.lock();
        let awaited = posted.awaited;
        if results.iter().any(|(seq, _)| *seq == awaited) {
            posted.awaited_arrived = true;
            if posted.sleeping {
                self.arrived.notify_one();
            }
        }
        posted.results.append(results);
    }

    /// Wakes the calling thread, whatever it waits for.
    pub(crate) fn wake(&self) {
        let mut posted = self.lock();
        posted.poke = true;
        self.arrived.notify_one();
    }

    /// Takes every result posted so far into `into` (empty; its room is given to the
    /// posters for the next results), first sleeping (at most [`POLL`]) until result
    /// `awaited` is among them. Whether it waited in vain.
    pub(crate) fn collect_into(&self, awaited: u64, into: &mut Vec<(u64, R)>) -> bool {
        let (got, waited) = self.collect_with(awaited, std::mem::take(into));
        *into = got;
        waited
    }

    /// Takes every result posted so far into `into` (empty), without waiting.
    pub(crate) fn take_into(&self, into: &mut Vec<(u64, R)>) {
        let mut posted = self.lock();
        if !posted.results.is_empty() {
            std::mem::swap(&mut posted.results, into);
        }
        posted.poke = false;
    }

    /// Takes every result posted so far, first sleeping (at most [`POLL`]) until result
    /// `awaited` is among them. Also says whether it waited in vain.
    #[cfg(test)]
    pub(crate) fn collect(&self, awaited: u64) -> (Vec<(u64, R)>, bool) {
        self.collect_with(awaited, Vec::new())
    }

    fn collect_with(&self, awaited: u64, spare: Vec<(u64, R)>) -> (Vec<(u64, R)>, bool) {
        let mut posted = self.lock();
        if posted.awaited != awaited {
            posted.awaited = awaited;
            posted.awaited_arrived = posted.results.iter().any(|(seq, _)| *seq == awaited);
        }
        let mut waited = false;
        if !posted.awaited_arrived && !posted.poke {
            posted.sleeping = true;
            let (woken, timeout) = self
                .arrived
                .wait_timeout(posted, POLL)
                .unwrap_or_else(PoisonError::into_inner);
            posted = woken;
            posted.sleeping = false;
            waited = timeout.timed_out();
            count_lost_wakeup(waited, posted.awaited_arrived);
        }
        posted.awaited_arrived = false;
        posted.poke = false;
        (std::mem::replace(&mut posted.results, spare), waited)
    }
}

/// Results that arrived early, waiting for the ones before them (on the calling thread).
pub(crate) struct Reorder<R> {
    /// Sequence number of `slots[0]`: the next result the sink will take.
    next: u64,
    slots: VecDeque<Option<R>>,
}

impl<R> Default for Reorder<R> {
    fn default() -> Self {
        Reorder {
            next: 0,
            slots: VecDeque::new(),
        }
    }
}

impl<R> Reorder<R> {
    /// The next sequence number the sink will take.
    pub(crate) fn next(&self) -> u64 {
        self.next
    }

    pub(crate) fn insert(&mut self, seq: u64, result: R) {
        let Some(index) = seq.checked_sub(self.next) else {
            return;
        };
        let index = index as usize;
        if index >= self.slots.len() {
            self.slots.resize_with(index + 1, || None);
        }
        self.slots[index] = Some(result);
    }

    /// The first sequence number, `offset` or more past the next one, not received yet.
    pub(crate) fn first_missing_from(&self, offset: usize) -> u64 {
        let missing = self.slots.iter().skip(offset).position(Option::is_none);
        self.next + (offset + missing.unwrap_or(self.slots.len().saturating_sub(offset))) as u64
    }

    pub(crate) fn pop_ready(&mut self) -> Option<R> {
        if let Some(Some(_)) = self.slots.front() {
            self.next += 1;
            self.slots.pop_front().flatten()
        } else {
            None
        }
    }

    /// Gives up waiting for the next result: it, if it came, and the sequence number moves
    /// on either way.
    pub(crate) fn pop_given_up(&mut self) -> Option<R> {
        self.next += 1;
        self.slots.pop_front().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::{Reorder, Results};

    #[test]
    fn reorder_hands_results_back_in_sequence_order() {
        let mut reorder = Reorder::default();
        for seq in [3u64, 1, 4, 0, 2, 6] {
            reorder.insert(seq, seq * 10);
        }
        let mut out = Vec::new();
        while let Some(r) = reorder.pop_ready() {
            out.push(r);
        }
        // 5 has not come: 6 waits behind it.
        assert_eq!(out, [0, 10, 20, 30, 40]);
        assert_eq!(reorder.first_missing_from(0), 5);
        assert_eq!(reorder.first_missing_from(1), 7);
        reorder.insert(5, 50);
        // A result for a sequence number already handed out is ignored.
        reorder.insert(2, 99);
        assert_eq!(reorder.pop_ready(), Some(50));
        assert_eq!(reorder.pop_ready(), Some(60));
        assert_eq!(reorder.pop_ready(), None);
        assert_eq!(reorder.first_missing_from(0), 7);
        // Given up on 7: 8 comes next.
        reorder.insert(8, 80);
        assert_eq!(reorder.pop_given_up(), None);
        assert_eq!(reorder.pop_given_up(), Some(80));
        assert_eq!(reorder.next(), 9);
    }

    #[test]
    fn the_awaited_result_wakes_the_collector_and_others_do_not_need_to() {
        let results = std::sync::Arc::new(Results::default());
        let poster = {
            let results = std::sync::Arc::clone(&results);
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(20));
                let mut batch = vec![(1u64, 'b'), (0, 'a')];
                results.post_many(&mut batch);
            })
        };
        let (got, waited) = results.collect(0);
        poster.join().unwrap();
        assert!(!waited);
        let mut seqs: Vec<u64> = got.iter().map(|r| r.0).collect();
        seqs.sort();
        assert_eq!(seqs, [0, 1]);
    }
}
