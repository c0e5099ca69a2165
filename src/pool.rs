//! Running work on a rayon pool and handing the results back in input order.
//!
//! SHA-256 is sequential inside one file, so the only parallelism is across files: the unit of
//! dispatch is a *batch of items* (paths to hash, lines to verify), never a piece of a file.
//!
//! The calling thread does all the sequential work: it pulls items from the input iterator
//! (the walk, or a checksum list), numbers them, groups them into batches, spawns each batch
//! on the pool, and puts the results that come back in order before handing them to `sink`,
//! the one place that prints. Keeping the feeding and the printing on one thread means no
//! hand-off between them: on trees of tiny files, where a file costs a few microseconds,
//! waking a separate feeder for every result cost more than the walk itself.
//!
//! A batch is spawned as one job per worker; the jobs claim the batch's items one at a time.
//! An idle worker thus takes over the rest of a batch whose first owner is stuck in a large
//! file: a big file never leaves the other workers idle behind it. No job ever waits for
//! another job (rayon's `join` would let a waiting worker start further batches on top of its
//! own stack, without bound, on trees of many small files).
//!
//! Memory stays bounded whatever the number of items: at most `window` items are dispatched
//! and not yet handed to `sink`. There is no barrier per batch: while the oldest item is
//! unfinished, the workers keep taking newer batches until the window is full.
//!
//! A batch is closed when it holds `batch_size` items, or earlier when fewer batches are in
//! flight than there are workers, so workers never wait for a batch to fill while the walk has
//! items in hand. The default sizes are explained at [`Tuning::default`].
//!
//! If `sink` fails (stdout closed or full) the run is cancelled: no more items are pulled,
//! workers skip what is queued, and the error is returned once every job has stopped. A stop
//! asked for by SIGINT or SIGTERM (`signals`) cancels the run the same way, within
//! [`POLL`], and no result is handed to `sink` after it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use rayon::ThreadPool;

use crate::signals;

/// Longest wait for results before the run loop looks for a stop request again.
pub const POLL: Duration = Duration::from_millis(100);

/// How a run ended when `sink` did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Every item was processed and handed to `sink`.
    Finished,
    /// A signal asked to stop; results after the stop were dropped.
    Interrupted(i32),
}

/// Sizes that bound dispatch cost and memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// Most items in one batch.
    pub batch_size: usize,
    /// Most items dispatched but not yet handed to the sink.
    pub window: usize,
}

impl Default for Tuning {
    /// Both sizes come from `benches/compare.sh`-style runs on 2 cores with a warm cache
    /// (medians; the README's Performance section has the full table).
    ///
    /// `batch_size` 256. A batch costs a few rayon spawns and wake-ups and one channel message
    /// per job; on trees of tiny files, where a file costs a few microseconds, that overhead
    /// must be shared by many files. 200,000 files of 0-100 bytes took 830 ms with batches of
    /// 16, 774 ms with 64, and 620-690 ms anywhere from 128 to 1024 (system time fell from
    /// 1.34 s to 1.03 s: fewer wake-ups); 100,000 files of 4 KiB: 554, 510, then 426-483 ms.
    /// Large batches cost nothing on large files, since every worker claims from every batch.
    ///
    /// `window` 4096 items. While one worker is inside a large file, the others go on only
    /// as far as the window reaches: for 1 GiB plus 2,000 files of 1 MiB, a window of 256
    /// took 1.37 s, one of 1024 or more 1.13-1.17 s (the other core hashes about 1,000 MiB
    /// while the big file takes 0.62 s). Each waiting result is a path and a digest, about
    /// 150 bytes, so 4096 of them cost well under a megabyte.
    fn default() -> Tuning {
        Tuning {
            batch_size: 256,
            window: 4096,
        }
    }
}

/// Runs `work` on every item on `pool`, and calls `sink` with the results in the order the
/// items came from `items`. Stops early, and returns the error, if `sink` fails; stops early
/// with [`Completion::Interrupted`] if a signal asks to.
pub fn run_ordered<T, R, E, I, W, S>(
    pool: &ThreadPool,
    tuning: Tuning,
    items: I,
    work: W,
    mut sink: S,
) -> Result<Completion, E>
where
    T: Send,
    R: Send,
    I: Iterator<Item = T>,
    W: Fn(T) -> R + Sync,
    S: FnMut(R) -> Result<(), E>,
{
    let batch_size = tuning.batch_size.max(1);
    // A window smaller than a batch could never make room for a full batch.
    let window = tuning.window.max(batch_size) as u64;
    let workers = pool.current_num_threads();
    let cancelled = AtomicBool::new(false);
    let in_flight = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<Vec<(u64, R)>>();
    let (work, cancelled, in_flight, tx) = (&work, &cancelled, &in_flight, &tx);

    pool.in_place_scope(|scope| {
        let mut items = items.fuse();
        let mut exhausted = false;
        // Sequence number of the next item pulled.
        let mut next_in = 0u64;
        let mut pending = Reorder::default();
        let mut result = Ok(Completion::Finished);

        loop {
            if let Some(signal) = signals::stop_requested() {
                result = Ok(Completion::Interrupted(signal));
                break;
            }
            // Pull and dispatch while there is room in the window.
            while !exhausted
                && next_in < pending.next + window
                && signals::stop_requested().is_none()
            {
                let room = (pending.next + window - next_in) as usize;
                let mut batch = Vec::with_capacity(batch_size.min(room));
                while batch.len() < batch_size.min(room) {
                    let Some(item) = items.next() else {
                        exhausted = true;
                        break;
                    };
                    batch.push((next_in, item));
                    next_in += 1;
                    if in_flight.load(Ordering::Acquire) < workers {
                        break;
                    }
                }
                if !batch.is_empty() {
                    spawn_batch(scope, batch, workers, work, cancelled, in_flight, tx);
                }
                // Print what is ready, without waiting, between batches.
                if let Err(e) = drain(&rx, &mut pending, &mut sink, false) {
                    result = Err(e);
                    break;
                }
            }
            if result.is_err() || (pending.next == next_in && exhausted) {
                break;
            }
            // Window full or input exhausted: wait for results.
            if let Err(e) = drain(&rx, &mut pending, &mut sink, true) {
                result = Err(e);
                break;
            }
        }
        if !matches!(result, Ok(Completion::Finished)) {
            cancelled.store(true, Ordering::SeqCst);
        }
        result
    })
}

/// Hands every ready result to `sink`; if `wait`, first waits up to [`POLL`] for a message.
/// Hands nothing once a stop was requested.
fn drain<R, E>(
    rx: &mpsc::Receiver<Vec<(u64, R)>>,
    pending: &mut Reorder<R>,
    sink: &mut impl FnMut(R) -> Result<(), E>,
    wait: bool,
) -> Result<(), E> {
    let mut first = if wait {
        rx.recv_timeout(POLL).ok()
    } else {
        None
    };
    loop {
        let Some(results) = first.take().or_else(|| rx.try_recv().ok()) else {
            return Ok(());
        };
        for (seq, result) in results {
            pending.insert(seq, result);
        }
        while signals::stop_requested().is_none() {
            let Some(result) = pending.pop_ready() else {
                break;
            };
            sink(result)?;
        }
    }
}

/// Spawns the jobs that share `batch`.
fn spawn_batch<'scope, T, R, W>(
    scope: &rayon::Scope<'scope>,
    batch: Vec<(u64, T)>,
    workers: usize,
    work: &'scope W,
    cancelled: &'scope AtomicBool,
    in_flight: &'scope AtomicUsize,
    tx: &'scope mpsc::Sender<Vec<(u64, R)>>,
) where
    T: Send + 'scope,
    R: Send + 'scope,
    W: Fn(T) -> R + Sync,
{
    let sharers = workers.min(batch.len());
    in_flight.fetch_add(1, Ordering::AcqRel);
    let shared = Arc::new(SharedBatch {
        items: Mutex::new(batch.into_iter()),
        sharers: AtomicUsize::new(sharers),
    });
    for _ in 0..sharers {
        let shared = Arc::clone(&shared);
        scope.spawn(move |_| {
            let mut results = Vec::new();
            while let Some((seq, item)) = shared.claim() {
                if !cancelled.load(Ordering::Relaxed) {
                    results.push((seq, work(item)));
                }
            }
            // Results go back once per job, not per item: one wake-up of the printing
            // thread per job is what keeps tiny files cheap.
            if !results.is_empty() {
                // The receiver is gone only when the run was abandoned.
                let _ = tx.send(results);
            }
            if shared.sharers.fetch_sub(1, Ordering::AcqRel) == 1 {
                in_flight.fetch_sub(1, Ordering::AcqRel);
            }
        });
    }
}

/// One batch, shared by the jobs that work on it.
struct SharedBatch<T> {
    items: Mutex<std::vec::IntoIter<(u64, T)>>,
    /// Jobs still working on this batch.
    sharers: AtomicUsize,
}

impl<T> SharedBatch<T> {
    fn claim(&self) -> Option<(u64, T)> {
        self.items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .next()
    }
}

/// Results that arrived early, waiting for the ones before them.
struct Reorder<R> {
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
        let completion =
            run_ordered::<_, _, (), _, _, _>(&pool(threads), tuning, 0..n, work, |r| {
                out.push(r);
                Ok(())
            });
        assert_eq!(completion, Ok(Completion::Finished));
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
        let tuning = Tuning {
            batch_size: 4,
            window: 8,
        };
        let result = run_ordered(
            &pool(2),
            tuning,
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

    #[test]
    fn in_flight_items_never_exceed_the_window() {
        let started = AtomicUsize::new(0);
        let mut printed = 0usize;
        let tuning = Tuning {
            batch_size: 8,
            window: 32,
        };
        let work = |_: u64| started.fetch_add(1, Ordering::SeqCst);
        run_ordered::<_, _, (), _, _, _>(&pool(4), tuning, 0..5000, work, |_| {
            printed += 1;
            assert!(started.load(Ordering::SeqCst) <= printed - 1 + 32);
            Ok(())
        })
        .unwrap();
        assert_eq!(printed, 5000);
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
