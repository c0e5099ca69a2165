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
//! A batch is spawned as one job per worker; the jobs claim the batch's items one at a time,
//! and post each result as soon as it exists (see `Mailbox` for how that stays cheap). A
//! [`Job`] may hold a few claimed items at once and post their results in any order: `lanes`
//! hashes several files together on one core that way.
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
//! items in hand; with lanes, such an early batch still holds enough items to fill every
//! worker's lanes. The default sizes are explained at [`Tuning::default`].
//!
//! If `sink` fails (stdout closed or full) the run is cancelled: no more items are pulled,
//! workers skip what is queued, and the error is returned once every job has stopped. A stop
//! asked for by SIGINT or SIGTERM (`signals`) cancels the run the same way, within
//! [`POLL`], and no result is handed to `sink` after it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
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
    /// Files each worker hashes at once (`lanes`); 1 where the CPU gains nothing from more.
    pub lanes: usize,
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
            lanes: crate::engine::multibuf::default_lanes(),
        }
    }
}

/// What a worker does with the items of a batch: it claims them one at a time from `claims`
/// and hands each result to `post` with the item's number. It may hold several items before
/// posting, and post in any order.
pub trait Job<T, R>: Sync {
    /// Works through the items of one batch.
    fn run(&self, claims: &mut dyn Claims<T>, post: &mut dyn FnMut(u64, R));
}

/// The items of one batch, as one of the jobs sharing it sees them.
pub trait Claims<T> {
    /// The next item and its number; `None` once the batch is used up or the run cancelled.
    fn next(&mut self) -> Option<(u64, T)>;

    /// Whether a job already holding `held` items may take another without taking more than
    /// its share of the batch: a job that keeps several items in flight must not take a whole
    /// small batch (a few large files) while the other workers stay idle. A job holding
    /// nothing may always take the next item.
    fn fair_to_take(&self, held: usize) -> bool;

    /// Whether the run was cancelled: results are no longer wanted, and a job holding items
    /// may drop them.
    fn cancelled(&self) -> bool;
}

/// The plain job: one item at a time, through a function.
pub struct Each<F>(pub F);

impl<T, R, F: Fn(T) -> R + Sync> Job<T, R> for Each<F> {
    fn run(&self, claims: &mut dyn Claims<T>, post: &mut dyn FnMut(u64, R)) {
        while let Some((seq, item)) = claims.next() {
            post(seq, (self.0)(item));
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
    W: Job<T, R>,
    S: FnMut(R) -> Result<(), E>,
{
    let batch_size = tuning.batch_size.max(1);
    // A window smaller than a batch could never make room for a full batch.
    let window = tuning.window.max(batch_size) as u64;
    let workers = pool.current_num_threads();
    // A batch sent early to idle workers holds enough items to fill every worker's lanes:
    // jobs of one batch share only its items, so a batch of one file per worker would leave
    // the lanes empty.
    let early = if tuning.lanes > 1 {
        tuning.lanes * workers
    } else {
        1
    };
    let cancelled = AtomicBool::new(false);
    let in_flight = AtomicUsize::new(0);
    let mailbox = Mailbox::default();
    let (work, cancelled, in_flight, mailbox) = (&work, &cancelled, &in_flight, &mailbox);

    pool.in_place_scope(|scope| {
        let mut feed = Feed {
            items: items.fuse(),
            exhausted: false,
            next_in: 0,
        };
        let mut pending = Reorder::default();
        let mut result = Ok(Completion::Finished);

        loop {
            if let Some(signal) = signals::stop_requested() {
                result = Ok(Completion::Interrupted(signal));
                break;
            }
            // Pull and dispatch while there is room in the window.
            while !feed.exhausted
                && feed.next_in < pending.next + window
                && signals::stop_requested().is_none()
            {
                let room = (pending.next + window - feed.next_in) as usize;
                let idle = || in_flight.load(Ordering::Acquire) < workers;
                let batch = feed.next_batch(batch_size.min(room), early, idle);
                if !batch.is_empty() {
                    spawn_batch(scope, batch, workers, work, cancelled, in_flight, mailbox);
                }
                // Print what is ready, without waiting, between batches.
                if let Err(e) = drain(mailbox, &mut pending, &mut sink, None) {
                    result = Err(e);
                    break;
                }
            }
            if result.is_err() || (pending.next == feed.next_in && feed.exhausted) {
                break;
            }
            // Window full or input exhausted: wait for results.
            let wake_at = pending.wake_at(batch_size / 2, feed.next_in);
            if let Err(e) = drain(mailbox, &mut pending, &mut sink, Some(wake_at)) {
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

/// The items not yet dispatched, numbered in input order.
struct Feed<I> {
    items: std::iter::Fuse<I>,
    /// The input has no more items.
    exhausted: bool,
    /// Sequence number of the next item pulled.
    next_in: u64,
}

impl<T, I: Iterator<Item = T>> Feed<I> {
    /// Pulls up to `most` items. The batch is closed early, once it holds `early` items, if
    /// `idle()` says a worker has nothing to do: workers never wait for a batch to fill while
    /// the walk has items in hand.
    fn next_batch(&mut self, most: usize, early: usize, idle: impl Fn() -> bool) -> Vec<(u64, T)> {
        let mut batch = Vec::with_capacity(most);
        while batch.len() < most {
            let Some(item) = self.items.next() else {
                self.exhausted = true;
                break;
            };
            batch.push((self.next_in, item));
            self.next_in += 1;
            if batch.len() >= early && idle() {
                break;
            }
        }
        batch
    }
}

/// Hands every ready result to `sink`; with `wait_for`, first waits up to [`POLL`] for that
/// result to arrive. Hands nothing once a stop was requested.
fn drain<R, E>(
    mailbox: &Mailbox<R>,
    pending: &mut Reorder<R>,
    sink: &mut impl FnMut(R) -> Result<(), E>,
    wait_for: Option<u64>,
) -> Result<(), E> {
    for (seq, result) in mailbox.collect(wait_for) {
        pending.insert(seq, result);
    }
    while signals::stop_requested().is_none() {
        let Some(result) = pending.pop_ready() else {
            break;
        };
        sink(result)?;
    }
    Ok(())
}

/// Where workers leave results, one at a time, for the thread that prints.
///
/// Each result is posted as soon as it exists, so a slow item (a huge file, a FIFO) never
/// holds back results finished before it. The printing thread is woken only when the result
/// it waits for arrives, not for every result: on trees of tiny files, a wake-up per file
/// cost more than the file (the run loop asks to be woken for a result half a batch ahead).
struct Mailbox<R> {
    state: Mutex<MailboxState<R>>,
    arrived: Condvar,
}

struct MailboxState<R> {
    results: Vec<(u64, R)>,
    /// The sequence number the printing thread waits for.
    awaited: u64,
    /// Whether that result is among `results`.
    awaited_arrived: bool,
    /// Whether the printing thread sleeps until it arrives.
    sleeping: bool,
}

impl<R> Default for Mailbox<R> {
    fn default() -> Self {
        let state = MailboxState {
            results: Vec::new(),
            awaited: 0,
            awaited_arrived: false,
            sleeping: false,
        };
        Mailbox {
            state: Mutex::new(state),
            arrived: Condvar::new(),
        }
    }
}

impl<R> Mailbox<R> {
    fn post(&self, seq: u64, result: R) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.results.push((seq, result));
        if seq == state.awaited {
            state.awaited_arrived = true;
            if state.sleeping {
                self.arrived.notify_one();
            }
        }
    }

    /// Takes every result posted so far. With `wait_for`, first sleeps (at most [`POLL`])
    /// until that result is among them.
    fn collect(&self, wait_for: Option<u64>) -> Vec<(u64, R)> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(awaited) = wait_for else {
            return std::mem::take(&mut state.results);
        };
        if state.awaited != awaited {
            state.awaited = awaited;
            state.awaited_arrived = state.results.iter().any(|(seq, _)| *seq == awaited);
        }
        if !state.awaited_arrived {
            state.sleeping = true;
            state = self
                .arrived
                .wait_timeout(state, POLL)
                .map(|(state, _)| state)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
            state.sleeping = false;
        }
        state.awaited_arrived = false;
        std::mem::take(&mut state.results)
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
    mailbox: &'scope Mailbox<R>,
) where
    T: Send + 'scope,
    R: Send + 'scope,
    W: Job<T, R>,
{
    let sharers = workers.min(batch.len());
    in_flight.fetch_add(1, Ordering::AcqRel);
    let shared = Arc::new(SharedBatch {
        share: batch.len().div_ceil(sharers),
        items: Mutex::new(batch.into_iter()),
        sharers: AtomicUsize::new(sharers),
    });
    for _ in 0..sharers {
        let shared = Arc::clone(&shared);
        scope.spawn(move |_| {
            let mut claims = Claim {
                batch: &shared,
                cancelled,
            };
            let mut post = |seq, result| {
                if !cancelled.load(Ordering::Relaxed) {
                    mailbox.post(seq, result);
                }
            };
            work.run(&mut claims, &mut post);
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
    /// Items each job may hold at once before the others had their share: the batch's
    /// length divided among its jobs, rounded up.
    share: usize,
}

/// One job's view of a shared batch.
struct Claim<'a, T> {
    batch: &'a SharedBatch<T>,
    cancelled: &'a AtomicBool,
}

impl<T> Claims<T> for Claim<'_, T> {
    fn next(&mut self) -> Option<(u64, T)> {
        if self.cancelled.load(Ordering::Relaxed) {
            return None;
        }
        self.batch
            .items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .next()
    }

    fn fair_to_take(&self, held: usize) -> bool {
        held < self.batch.share
    }

    fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
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

    /// The first sequence number, `offset` or more past the next one, not received yet.
    fn first_missing_from(&self, offset: usize) -> u64 {
        let missing = self.slots.iter().skip(offset).position(Option::is_none);
        self.next + (offset + missing.unwrap_or(self.slots.len().saturating_sub(offset))) as u64
    }

    /// The result to sleep until, once `dispatched` items are out. Wake up for a good
    /// handful of results, not for each one: a result `ahead` past the next one arrives about
    /// when the ones before it are in, as workers go through batches in order. Only for one
    /// not received and already dispatched; else for the next one the sink needs. At worst
    /// the wait ends after [`POLL`].
    fn wake_at(&self, ahead: usize, dispatched: u64) -> u64 {
        let ahead = self.first_missing_from(ahead);
        if ahead < dispatched { ahead } else { self.next }
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
            run_ordered::<_, _, (), _, _, _>(&pool(threads), tuning, 0..n, Each(work), |r| {
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
            ..Tuning::default()
        };
        let result = run_ordered(&pool(2), tuning, 0..u64::MAX, Each(|i| i), |_| {
            seen += 1;
            if seen == 100 { Err("closed") } else { Ok(()) }
        });
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
            ..Tuning::default()
        };
        let work = |_: u64| started.fetch_add(1, Ordering::SeqCst);
        run_ordered::<_, _, (), _, _, _>(&pool(4), tuning, 0..5000, Each(work), |_| {
            printed += 1;
            assert!(started.load(Ordering::SeqCst) <= printed - 1 + 32);
            Ok(())
        })
        .unwrap();
        assert_eq!(printed, 5000);
    }

    /// A job that holds items as long as its share allows, then posts them all.
    struct Hoarder<'a> {
        most_held: &'a AtomicUsize,
    }

    impl Job<u64, u64> for Hoarder<'_> {
        fn run(&self, claims: &mut dyn Claims<u64>, post: &mut dyn FnMut(u64, u64)) {
            let mut held = Vec::new();
            loop {
                while held.is_empty() || claims.fair_to_take(held.len()) {
                    match claims.next() {
                        Some(item) => held.push(item),
                        None => break,
                    }
                }
                if held.is_empty() {
                    return;
                }
                self.most_held.fetch_max(held.len(), Ordering::SeqCst);
                for (seq, item) in held.drain(..) {
                    post(seq, item);
                }
            }
        }
    }

    #[test]
    fn a_job_takes_no_more_than_its_share_of_a_small_batch() {
        // Four items, two workers with four lanes: one batch, shared two and two.
        let most_held = AtomicUsize::new(0);
        let tuning = Tuning {
            lanes: 4,
            ..Tuning::default()
        };
        let mut out = Vec::new();
        let job = Hoarder {
            most_held: &most_held,
        };
        run_ordered::<_, _, (), _, _, _>(&pool(2), tuning, 0..4, job, |r| {
            out.push(r);
            Ok(())
        })
        .unwrap();
        assert_eq!(out, vec![0, 1, 2, 3]);
        assert_eq!(most_held.load(Ordering::SeqCst), 2);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn order_holds_for_any_threads_batch_and_window(
            threads in 1usize..6, batch_size in 1usize..50, window in 0usize..200, n in 0u64..400
        ) {
            let want: Vec<u64> = (0..n).map(|i| i * 3).collect();
            prop_assert_eq!(collect(threads, Tuning { batch_size, window, lanes: 1 }, n), want);
        }
    }
}
