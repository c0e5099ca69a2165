//! Memory for files read whole: a budget in bytes, and the spare buffers a reader reuses.
//!
//! Runs on readers (who take room and fill buffers) and on whoever drops a buffer (the
//! reader that hashed it, or the calling thread after a rescue), which gives its room back.
//! A reader waits for room when the budget is spent, so memory stays bounded however many
//! readers read at once. The budget belongs to one run; so do the spares, which live in
//! each reader's own [`Spares`] (no process-wide state).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use crate::engine::count_lost_wakeup;
use crate::engine::run::handoff::POLL;

/// Where a buffer starts: the kernel copies a cached file into a buffer that starts on a
/// page faster. Measured on an AMD EPYC (2 cores, warm cache, 2,000 files of 1 MiB read
/// into four rotating buffers and hashed): 0.15 to 0.20 s of system time into page-aligned
/// buffers, 0.27 to 0.30 s into what `malloc` gives a large allocation (16 bytes past a
/// page).
const PAGE: usize = 4096;

/// Bytes that start on a page. Moving it moves no bytes, so the start stays aligned.
#[derive(Default)]
pub(crate) struct PageBuf {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl PageBuf {
    /// `len` zeroed bytes.
    pub(crate) fn zeroed(len: usize) -> PageBuf {
        let raw = vec![0u8; len + PAGE - 1];
        let start = raw.as_ptr().align_offset(PAGE).min(PAGE - 1);
        PageBuf { raw, start, len }
    }

    /// Its length made `len`, within what it holds, or a new buffer if it holds less.
    pub(crate) fn resized(self, len: usize) -> PageBuf {
        if self.raw.len() >= self.start + len {
            PageBuf { len, ..self }
        } else {
            PageBuf::zeroed(len)
        }
    }
}

impl std::ops::Deref for PageBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }
}

impl std::ops::DerefMut for PageBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + self.len]
    }
}

/// Bytes of files read whole, in flight at once (read, or waiting in a reader's lanes).
/// With four lanes on two cores, eight 1 MiB files keep every lane full; more would only
/// raise the resident set (the target is 32 MiB in all).
pub(crate) const WHOLE_BUDGET: usize = 10 << 20;

/// The run's budget of bytes for files read whole.
pub(crate) struct Budget {
    /// Bytes taken. An atomic: taking and giving back room is an atomic operation per file,
    /// no lock (two readers sharing a lock per file switched contexts several times per file
    /// on trees of small files).
    used: AtomicUsize,
    limit: usize,
    /// Readers waiting for room, and the lock and condition they wait on (the lock guards
    /// whether the budget is closed).
    waiting: AtomicUsize,
    closed: Mutex<bool>,
    room: Condvar,
    /// Spare buffers of [`SHARED_FROM`] bytes or more, kept for any reader (their bytes at
    /// most the budget's): a reader rarely reads two large files in a row, so spares of its
    /// own would pile up on every reader (32 readers of 1 MiB files kept 32 MiB), and a
    /// fresh megabyte is a fresh mapping whose pages the kernel zeroes, in system time.
    large: Mutex<Vec<PageBuf>>,
}

/// Buffers from this size up are shared by the readers of a run ([`Budget`]); smaller ones
/// stay with the reader that used them ([`Spares`]). A lock per file is nothing beside
/// reading 128 KiB or more.
const SHARED_FROM: usize = 128 << 10;

impl Budget {
    pub(crate) fn new(limit: usize) -> Budget {
        Budget {
            used: AtomicUsize::new(0),
            limit,
            waiting: AtomicUsize::new(0),
            closed: Mutex::new(false),
            room: Condvar::new(),
            large: Mutex::new(Vec::new()),
        }
    }

    /// A spare buffer of `size` bytes, if one is kept.
    fn spare(&self, size: usize) -> Option<PageBuf> {
        let mut large = self.large.lock().unwrap_or_else(PoisonError::into_inner);
        let found = large.iter().rposition(|b| b.len() == size)?;
        Some(large.swap_remove(found))
    }

    /// Keeps `data` for another reader, while the spares are fewer bytes than the budget.
    fn keep(&self, data: PageBuf) {
        let mut large = self.large.lock().unwrap_or_else(PoisonError::into_inner);
        let kept: usize = large.iter().map(|b| b.len()).sum();
        if kept + data.len() <= self.limit {
            large.push(data);
        }
    }

    /// Takes `size` bytes if there is room (any size fits an empty budget).
    fn take(&self, size: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used == 0 || used + size <= self.limit).then_some(used + size)
            })
            .is_ok()
    }

    fn give(&self, size: usize) {
        self.used.fetch_sub(size, Ordering::AcqRel);
        if self.waiting.load(Ordering::Acquire) > 0 {
            let _closed = self.closed.lock().unwrap_or_else(PoisonError::into_inner);
            self.room.notify_all();
        }
    }

    /// Room for `size` bytes if the budget has it now.
    pub(crate) fn try_room(self: &Arc<Budget>, size: usize) -> Option<Room> {
        self.take(size).then(|| Room {
            budget: Arc::clone(self),
            size,
        })
    }

    /// Room for `size` bytes once the budget has it; `None` once it is closed.
    pub(crate) fn room(self: &Arc<Budget>, size: usize) -> Option<Room> {
        loop {
            if let Some(room) = self.try_room(size) {
                return Some(room);
            }
            let closed = self.closed.lock().unwrap_or_else(PoisonError::into_inner);
            if *closed {
                return None;
            }
            self.waiting.fetch_add(1, Ordering::AcqRel);
            // Room may have come between the failed take and the lock: look once more
            // before sleeping (a release notifies under this lock).
            if let Some(room) = self.try_room(size) {
                self.waiting.fetch_sub(1, Ordering::AcqRel);
                return Some(room);
            }
            let (closed, timeout) = self
                .room
                .wait_timeout(closed, POLL)
                .unwrap_or_else(PoisonError::into_inner);
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            if *closed {
                return None;
            }
            let fits = {
                let used = self.used.load(Ordering::Acquire);
                used == 0 || used + size <= self.limit
            };
            count_lost_wakeup(timeout.timed_out(), fits);
        }
    }

    /// Wakes and refuses every reader waiting for room: the run is over.
    pub(crate) fn close(&self) {
        *self.closed.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.room.notify_all();
    }
}

/// Bytes taken from a [`Budget`], given back when dropped.
pub(crate) struct Room {
    budget: Arc<Budget>,
    size: usize,
}

impl Drop for Room {
    fn drop(&mut self) {
        self.budget.give(self.size);
    }
}

/// The bytes of a file read whole, and the room they take.
pub(crate) struct Buffer {
    data: PageBuf,
    len: usize,
    _room: Room,
}

impl Buffer {
    /// The bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.data[..self.len]
    }

    /// Gives the memory back to `spares` (the room goes back to the budget).
    pub(crate) fn recycle(self, spares: &mut Spares) {
        if self.data.len() >= SHARED_FROM {
            self._room.budget.keep(self.data);
        } else {
            spares.keep(self.data);
        }
    }
}

/// Smallest size class of a buffer.
const CLASS_MIN: usize = 4 << 10;

/// Most bytes of spare buffers one reader keeps: enough for a lane's worth of the small
/// files it reads most, little enough that tens of readers keep few megabytes in all.
const SPARES_MAX: usize = 1 << 20;

/// The spare buffers of one reader, by size class (powers of two from 4 KiB): a buffer is
/// filled and dropped mostly by the same reader, so no lock is needed to reuse it. Buffers
/// keep their length when reused, so they are zeroed once, when first made.
#[derive(Default)]
pub(crate) struct Spares {
    lists: Vec<Vec<PageBuf>>,
    bytes: usize,
}

fn class_of(len: usize) -> (usize, usize) {
    let size = len.next_power_of_two().max(CLASS_MIN);
    (
        size.trailing_zeros() as usize - CLASS_MIN.trailing_zeros() as usize,
        size,
    )
}

impl Spares {
    /// A buffer of `len` bytes in `room`, to be filled through [`Buffer::fill`].
    pub(crate) fn take(&mut self, len: usize, room: Room) -> Buffer {
        let (class, size) = class_of(len);
        let shared = if size >= SHARED_FROM {
            room.budget.spare(size)
        } else {
            None
        };
        let mut data = shared
            .or_else(|| {
                self.lists
                    .get_mut(class)
                    .and_then(Vec::pop)
                    .inspect(|_| self.bytes -= size)
            })
            .unwrap_or_default();
        if data.len() < size {
            data = PageBuf::zeroed(size);
        }
        Buffer {
            data,
            len,
            _room: room,
        }
    }

    fn keep(&mut self, data: PageBuf) {
        let (class, size) = class_of(data.len());
        if data.len() != size || self.bytes + size > SPARES_MAX {
            return;
        }
        if self.lists.len() <= class {
            self.lists.resize_with(class + 1, Vec::new);
        }
        self.lists[class].push(data);
        self.bytes += size;
    }

    /// The room a file of `len` bytes takes in the budget.
    pub(crate) fn size_for(len: usize) -> usize {
        class_of(len).1
    }
}

impl Buffer {
    /// The bytes to fill.
    pub(crate) fn fill(&mut self) -> &mut [u8] {
        &mut self.data[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::{Budget, PAGE, PageBuf, Spares};

    #[test]
    fn page_buffers_start_on_a_page_and_keep_their_bytes() {
        for len in [0, 1, 4095, 4096, 65_537, 1 << 20] {
            let mut buf = PageBuf::zeroed(len);
            assert_eq!(buf.len(), len);
            assert_eq!(buf.as_ptr() as usize % PAGE, 0, "{len}");
            buf.iter_mut().for_each(|b| *b = 7);
            let moved = vec![buf];
            let buf = moved.into_iter().next().unwrap();
            assert_eq!(buf.as_ptr() as usize % PAGE, 0);
            let shorter = buf.resized(len / 2);
            assert_eq!(shorter.len(), len / 2);
            assert!(
                shorter.iter().all(|&b| b == 7),
                "resizing within keeps the bytes"
            );
            let longer = shorter.resized(len + 1);
            assert_eq!(longer.len(), len + 1);
            assert_eq!(longer.as_ptr() as usize % PAGE, 0);
        }
    }

    #[test]
    fn the_budget_is_kept_and_closing_it_refuses_waiters() {
        let budget = Arc::new(Budget::new(64 << 10));
        let mut spares = Spares::default();
        let a = spares.take(
            30_000,
            budget.try_room(Spares::size_for(30_000)).expect("room"),
        );
        let b = budget.try_room(32 << 10).expect("room");
        assert!(budget.try_room(1).is_none(), "the budget is full");
        a.recycle(&mut spares);
        let c = budget.try_room(20_000).expect("room given back");
        drop((b, c));
        // Any one buffer fits an empty budget, however large.
        let huge = budget
            .try_room(1 << 20)
            .expect("an empty budget takes anything");
        let waiter = {
            let budget = Arc::clone(&budget);
            std::thread::spawn(move || budget.room(4096).is_some())
        };
        std::thread::sleep(Duration::from_millis(30));
        drop(huge);
        assert!(waiter.join().unwrap());
        let full = budget.try_room(64 << 10).expect("room");
        let refused = {
            let budget = Arc::clone(&budget);
            std::thread::spawn(move || budget.room(4096).is_none())
        };
        std::thread::sleep(Duration::from_millis(30));
        budget.close();
        assert!(refused.join().unwrap());
        drop(full);
        // A recycled buffer is reused, whole.
        let reused = spares.take(20_000, budget.try_room(Spares::size_for(20_000)).unwrap());
        assert_eq!(reused.bytes().len(), 20_000);
    }
}
