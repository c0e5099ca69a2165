//! Looking after the readers: the stall timeout, taking over what a held-up reader holds,
//! and interrupting blocked reads on a stop. Everything here runs on the calling thread,
//! when it waited for the next result in vain (`run::print_in_order`).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::engine::run::buffers::Spares;
use crate::engine::run::handoff::POLL;
use crate::engine::run::reader::{self, hash_wholes};
use crate::engine::run::state::{Desk, ReaderSlot, Shared};
use crate::report::{Failure, Reason};
use crate::signals;

/// Gives up on what has made no progress for the stall timeout: the item fails as "timed
/// out", its reader is left to the kernel (and replaced), and the run goes on.
pub(crate) fn watch_stalls<R: Send + 'static>(shared: &Arc<Shared<R>>) {
    let Some(limit) = shared.io.stall_timeout else {
        return;
    };
    let now = Instant::now();
    let mut given_up = Vec::new();
    let mut replacements = Vec::new();
    {
        let mut readers = shared.readers();
        for slot in readers.iter_mut() {
            let Some(busy) = slot
                .busy
                .take_if(|busy| now.duration_since(busy.since) >= limit)
            else {
                continue;
            };
            if slot.abandoned {
                continue;
            }
            match &busy.stream {
                // Its worker ends the file at once, whatever chunks are still to come.
                Some(flags) => {
                    flags.timed_out.store(true, Ordering::Release);
                    for _ in 0..shared.workers {
                        shared.wake_a_worker();
                    }
                }
                None => given_up.push((busy.seq, busy.name)),
            }
            slot.abandoned = true;
            replacements.push(slot.core);
        }
        // Each replacement takes the place of the reader given up on: one that always takes
        // requests is replaced by one that does too.
        for &core in &replacements {
            readers.push(ReaderSlot::new(core));
        }
    }
    let first = shared.readers().len() - replacements.len();
    for index in first..first + replacements.len() {
        reader::spawn(Arc::clone(shared), index);
    }
    for (seq, name) in given_up {
        // The reader that holds the item may never come back: the failure is made here.
        shared.finish(seq, Err(Failure::new(name, Reason::TimedOut)));
    }
}

/// How long a reader may wait on one file while holding what others could finish.
const RESCUE_AFTER: Duration = POLL;

/// Takes over what readers hold while they wait on one file for long (or were given up on):
/// the requests they took and have not started go back to the front of the queue, the files
/// they read whole are hashed here, and their results are posted. So a reader stuck on one
/// file holds up that file only.
///
/// Taking too much is harmless (a reader that was merely busy finds its desk emptier than
/// it left it): every item is still finished exactly once, by whoever holds it.
pub(crate) fn rescue<R: Send + 'static>(shared: &Shared<R>) {
    let now = Instant::now();
    let desks: Vec<(Arc<Mutex<Desk>>, bool)> = shared
        .readers()
        .iter()
        .map(|slot| (Arc::clone(&slot.desk), slot.abandoned))
        .collect();
    let mut requests = Vec::new();
    let mut spares = Spares::default();
    for (desk, abandoned) in desks {
        // A reader working at its desk right now is not held up.
        let Ok(mut desk) = desk.try_lock() else {
            continue;
        };
        let held_up = abandoned
            || desk
                .since
                .is_some_and(|since| now.duration_since(since) >= RESCUE_AFTER);
        if !held_up || !desk.holds() {
            continue;
        }
        requests.extend(desk.taken.drain(..));
        let wholes = std::mem::take(&mut desk.wholes);
        let held = std::mem::take(&mut desk.held);
        drop(desk);
        shared.finish_many(held);
        shared.finish_many(hash_wholes(wholes, shared.lanes, &mut spares));
    }
    if requests.is_empty() {
        return;
    }
    let mut queue = shared.requests();
    // They were taken before what is still queued, and come first again.
    requests.sort_by_key(|request| request.seq);
    for request in requests.into_iter().rev() {
        queue.promoted += usize::from(request.promoted);
        queue.queue.push_front(request);
    }
    shared.queued.store(queue.queue.len(), Ordering::Relaxed);
    drop(queue);
    shared.requests_cv.notify_all();
}

/// Interrupts every reader blocked in a system call, where the file system allows it: a
/// signal aimed at the thread, without `SA_RESTART`, makes an interruptible wait return.
pub(crate) fn interrupt_readers<R>(shared: &Shared<R>) {
    if !signals::wake_installed() {
        return;
    }
    let threads: Vec<libc::pthread_t> = shared.readers().iter().filter_map(|r| r.thread).collect();
    for thread in threads {
        // SAFETY: the thread ids were taken by the threads themselves; a thread that ended
        // meanwhile makes pthread_kill fail (ESRCH with glibc), which is harmless here.
        unsafe {
            libc::pthread_kill(thread, signals::WAKE);
        }
    }
}
