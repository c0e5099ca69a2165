//! Running work on a rayon pool and handing the results back in input order.
//!
//! SHA-256 is sequential inside one file, so the only parallelism is across files: the unit of
//! dispatch is a *batch of items* (paths to hash, lines to verify), never a piece of a file.
//! One feeder thread pulls items from the input iterator (the walk, or a checksum list),
//! numbers them, groups them into batches and spawns each batch on the pool. Inside a batch
//! the items are a rayon parallel iterator, so an idle worker steals the rest of a batch whose
//! owner is stuck in a large file: a big file never leaves the other workers idle behind it.
//! Each result is sent, with its sequence number, to the calling thread, which puts results
//! back in order and hands them to `sink`, the one place that prints.
//!
//! Memory stays bounded whatever the number of items: the feeder never runs more than
//! `window` items ahead of the last result handed to `sink`, so at most `window` items and
//! results exist at once. There is no barrier per batch: while the oldest item is unfinished,
//! workers keep taking newer batches until the window is full.
//!
//! Batches trade dispatch cost against balance. A batch is closed when it holds `batch_size`
//! items, or earlier when fewer batches are in flight than there are workers, so workers are
//! never left waiting for a batch to fill while the feeder has items in hand. The default
//! sizes are explained at [`Tuning::default`].
//!
//! If `sink` fails (stdout closed or full) the run is cancelled: the feeder stops pulling,
//! workers skip what is queued, and the error is returned once every thread has stopped.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError, mpsc};

use rayon::ThreadPool;
use rayon::prelude::*;

/// Sizes that bound dispatch cost and memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// Most items in one batch.
    pub batch_size: usize,
    /// Most items dispatched but not yet handed to the sink.
    pub window: usize,
}

impl Default for Tuning {
    /// `batch_size` 64: a batch costs one rayon spawn and one wake-up, about a microsecond,
    /// which against files that take a few microseconds each (tiny files) must be shared by
    /// dozens of them; larger batches gained nothing measurable. `window` 4096 items: each
    /// waiting result is a path and a digest (about 150 bytes), so the window costs well under
    /// a megabyte, yet it lets the other workers hash gigabytes of 1 MiB files while one worker
    /// is inside a single large file.
    fn default() -> Tuning {
        Tuning {
            batch_size: 64,
            window: 4096,
        }
    }
}

/// Runs `work` on every item on `pool`, and calls `sink` with the results in the order the
/// items came from `items`. Stops early, and returns the error, if `sink` fails.
pub fn run_ordered<T, R, E, I, W, S>(
    pool: &ThreadPool,
    tuning: Tuning,
    items: I,
    work: W,
    mut sink: S,
) -> Result<(), E>
where
    T: Send,
    R: Send,
    I: Iterator<Item = T> + Send,
    W: Fn(T) -> R + Sync,
    S: FnMut(R) -> Result<(), E>,
{
    let batch_size = tuning.batch_size.max(1);
    // The feeder waits for room before dispatching a batch; a window smaller than a batch
    // could never make room for it.
    let window = tuning.window.max(batch_size);
    let gate = Gate::default();
    let (tx, rx) = mpsc::channel::<(u64, R)>();
    let workers = pool.current_num_threads();

    std::thread::scope(|scope| {
        let (gate, work) = (&gate, &work);
        scope.spawn(move || {
            // Owned here, so the channel closes once the last batch is done.
            let tx = tx;
            let tx = &tx;
            pool.in_place_scope(|s| {
                let mut batch = Vec::with_capacity(batch_size);
                let dispatch = |batch: Vec<(u64, T)>, end: u64| -> bool {
                    if !gate.wait_for_room(end, window) {
                        return false;
                    }
                    gate.in_flight.fetch_add(1, Ordering::SeqCst);
                    s.spawn(move |_| {
                        batch.into_par_iter().for_each(|(seq, item)| {
                            if !gate.is_cancelled() {
                                // The receiver only goes away after a sink error, when the
                                // result is no longer wanted.
                                let _ = tx.send((seq, work(item)));
                            }
                        });
                        gate.in_flight.fetch_sub(1, Ordering::SeqCst);
                    });
                    true
                };
                let mut seq = 0u64;
                for item in items {
                    if gate.is_cancelled() {
                        return;
                    }
                    batch.push((seq, item));
                    seq += 1;
                    let hungry = gate.in_flight.load(Ordering::SeqCst) < workers;
                    if batch.len() >= batch_size || hungry {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                        if !dispatch(full, seq) {
                            return;
                        }
                    }
                }
                if !batch.is_empty() {
                    dispatch(batch, seq);
                }
            });
        });

        let mut pending = Reorder::default();
        for (seq, result) in rx {
            pending.insert(seq, result);
            while let Some(result) = pending.pop_ready() {
                if let Err(err) = sink(result) {
                    gate.cancel();
                    return Err(err);
                }
            }
            gate.advance(pending.next);
        }
        Ok(())
    })
}

/// Flow control between the feeder and the sink.
#[derive(Default)]
struct Gate {
    /// Sequence number of the next result the sink will take.
    next_out: Mutex<u64>,
    moved: Condvar,
    cancelled: AtomicBool,
    /// Batches spawned and not yet finished.
    in_flight: AtomicUsize,
}

impl Gate {
    /// Blocks until items below `end` fit in the window; false if the run was cancelled.
    fn wait_for_room(&self, end: u64, window: usize) -> bool {
        let mut next_out = self.next_out.lock().unwrap_or_else(PoisonError::into_inner);
        while end > *next_out + window as u64 && !self.is_cancelled() {
            next_out = self
                .moved
                .wait(next_out)
                .unwrap_or_else(PoisonError::into_inner);
        }
        !self.is_cancelled()
    }

    fn advance(&self, next_out: u64) {
        let mut guard = self.next_out.lock().unwrap_or_else(PoisonError::into_inner);
        if *guard != next_out {
            *guard = next_out;
            self.moved.notify_all();
        }
    }

    fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        // Take the lock so a feeder between its check and its wait cannot miss the wake-up.
        let _guard = self.next_out.lock().unwrap_or_else(PoisonError::into_inner);
        self.moved.notify_all();
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

/// Results that arrived early, waiting for the ones before them.
struct Reorder<R> {
    /// Sequence number of `slots[0]`.
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
    fn insert(&mut self, seq: u64, result: R) {
        let index = (seq - self.next) as usize;
        if index >= self.slots.len() {
            self.slots.resize_with(index + 1, || None);
        }
        self.slots[index] = Some(result);
    }

    fn pop_ready(&mut self) -> Option<R> {
        if let Some(Some(_)) = self.slots.front() {
            self.next += 1;
            self.slots.pop_front().flatten()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pool(threads: usize) -> ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    fn collect(threads: usize, tuning: Tuning, n: u64) -> Vec<u64> {
        let mut out = Vec::new();
        let work = |i: u64| {
            // Uneven work, so results finish out of order.
            if i.is_multiple_of(7) {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            i * 3
        };
        run_ordered::<_, _, (), _, _, _>(&pool(threads), tuning, 0..n, work, |r| {
            out.push(r);
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn results_come_back_in_input_order() {
        let want: Vec<u64> = (0..1000).map(|i| i * 3).collect();
        for threads in [1, 2, 8] {
            assert_eq!(collect(threads, Tuning::default(), 1000), want);
        }
    }

    #[test]
    fn sink_error_stops_the_run() {
        let mut seen = 0;
        let result = run_ordered(
            &pool(2),
            Tuning {
                batch_size: 4,
                window: 8,
            },
            0..u64::MAX,
            |i| i,
            |_| {
                seen += 1;
                if seen == 100 { Err("closed") } else { Ok(()) }
            },
        );
        assert_eq!(result, Err("closed"));
        assert_eq!(seen, 100);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn order_holds_for_any_threads_batch_and_window(
            threads in 1usize..6, batch_size in 1usize..50, window in 0usize..200, n in 0u64..400
        ) {
            let want: Vec<u64> = (0..n).map(|i| i * 3).collect();
            prop_assert_eq!(collect(threads, Tuning { batch_size, window }, n), want);
        }
    }
}
