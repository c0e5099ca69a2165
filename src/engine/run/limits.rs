//! What an unattended run is held to: a read rate (`--bwlimit`), and the page cache left as
//! it was found (`--nocache`). Both wrap each file a reader opens ([`wrap`]), so every read
//! of that file goes through them, on whichever thread reads it: its reader, or the worker
//! that maps it. (The time box, `--max-duration`, is the feeder's and the calling thread's.)
//!
//! **The rate** is a token bucket ([`Pace`]) shared by the run: a read of `n` bytes first
//! takes `n` tokens, and whoever takes more than there are leaves a debt the next taker
//! waits off; readers in flight queue in the order of their items (earliest first), and the
//! run as a whole reads at the rate. Each
//! read is at most [`policy::pace_piece`] bytes, and the bucket holds at most
//! [`policy::pace_burst`]: no one-second window reads more than 1.375 times the rate. A
//! paced file is never mapped, and the kernel is never asked to read ahead of what was paid
//! for: every byte comes through a paced read.
//!
//! **The page cache**: before a range of a file is read, or the kernel asked to read it
//! ahead, the pages of it that are not cached yet are learnt (a read that must not wait,
//! `RWF_NOWAIT`, tells it for free when the whole range is cached; otherwise `mincore(2)`
//! over an untouched mapping); once the range is read (or hashed, for a mapped window),
//! those pages, and only those, are dropped (`POSIX_FADV_DONTNEED`). What was cached before
//! the run stays cached; what the run brought in leaves as soon as it is used, not at close.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rustix::fs::Stat;

use crate::engine::policy;
use crate::engine::storage::{Handle, page_size};
use crate::signals;

/// What a run is held to besides its I/O policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes read per second, over the run (`--bwlimit`).
    pub bwlimit: Option<u64>,
    /// Drop from the page cache what this run brought into it, once used (`--nocache`).
    pub nocache: bool,
    /// When to start nothing more, and when to give up on what is in flight
    /// (`--max-duration`).
    pub deadline: Option<Deadline>,
}

/// The end of a time-boxed run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// No item is started after this.
    pub at: Instant,
    /// Items in flight at `at` are given up this long after it.
    pub grace: Duration,
    /// The whole box, from the start of the run to `at`.
    pub length: Duration,
}

/// Whether a file of `size` bytes, read at `rate` bytes per second, cannot be finished
/// before the grace after `deadline` is over if started `now`: `None` if it can (or there
/// is no rate or no deadline), `Some(true)` if even a whole box would not do.
pub(crate) fn out_of_time(
    size: u64,
    rate: Option<u64>,
    deadline: Option<&Deadline>,
    now: Instant,
) -> Option<bool> {
    let (rate, deadline) = (rate?, deadline?);
    let needs = Duration::from_secs_f64(size as f64 / rate.max(1) as f64);
    let left = (deadline.at + deadline.grace).saturating_duration_since(now);
    (needs > left).then(|| needs > deadline.length + deadline.grace)
}

/// The run's token bucket: see the module header.
pub(crate) struct Pace {
    /// Bytes per second.
    rate: f64,
    /// Most tokens the bucket holds.
    burst: f64,
    /// Most bytes one read may take.
    piece: usize,
    bucket: Mutex<Bucket>,
    /// Wakes the waiters when the first in line took its tokens, or the run ended.
    turn: Condvar,
    /// Set when the run ends: nobody waits any more.
    over: AtomicBool,
}

struct Bucket {
    /// Tokens now: negative when the last taker owes (the next one waits it off).
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
    /// The items whose readers wait for tokens, with how many wait for each: the lowest
    /// is served first.
    waiting: BTreeMap<u64, usize>,
}

impl Bucket {
    /// Adds the tokens earned since the last look, up to `burst`.
    fn refill(&mut self, now: Instant, rate: f64, burst: f64) {
        let earned = now.saturating_duration_since(self.at).as_secs_f64() * rate;
        self.tokens = (self.tokens + earned).min(burst);
        self.at = self.at.max(now);
    }

    fn leave(&mut self, seq: u64) {
        if let Some(count) = self.waiting.get_mut(&seq) {
            *count -= 1;
            if *count == 0 {
                self.waiting.remove(&seq);
            }
        }
    }
}

/// The longest one sleep of a paced read, between two looks at whether the run stops.
const NAP: Duration = Duration::from_millis(50);

impl Pace {
    pub(crate) fn new(rate: u64) -> Pace {
        Pace {
            rate: rate.max(1) as f64,
            burst: policy::pace_burst(rate) as f64,
            piece: policy::pace_piece(rate),
            bucket: Mutex::new(Bucket {
                tokens: 0.0,
                at: Instant::now(),
                waiting: BTreeMap::new(),
            }),
            turn: Condvar::new(),
            over: AtomicBool::new(false),
        }
    }

    /// Most bytes one read may take.
    pub(crate) fn piece(&self) -> usize {
        self.piece
    }

    /// Takes `n` tokens for item `seq`, waiting until the bucket is out of debt and no
    /// earlier item waits (or the run stops).
    ///
    /// Earlier items first, not each reader in turn: with a time box, readers sharing the
    /// rate evenly would each go slower than the box allows for a large file, and the same
    /// large files would be given up night after night. Served in order, the run finishes
    /// files at the rate, and a reader whose earlier item waits on storage (not on tokens)
    /// leaves the tokens to the next.
    pub(crate) fn take(&self, n: usize, seq: u64) {
        let mut bucket = lock(&self.bucket);
        *bucket.waiting.entry(seq).or_insert(0) += 1;
        loop {
            if self.over.load(Ordering::Relaxed) || signals::stop_requested().is_some() {
                break;
            }
            let now = Instant::now();
            bucket.refill(now, self.rate, self.burst);
            let first = bucket.waiting.keys().next() == Some(&seq);
            if first && bucket.tokens >= 0.0 {
                bucket.tokens -= n as f64;
                break;
            }
            let wait = if first {
                Duration::from_secs_f64(-bucket.tokens / self.rate)
            } else {
                NAP
            };
            bucket = match self
                .turn
                .wait_timeout(bucket, wait.clamp(Duration::from_micros(100), NAP))
            {
                Ok((bucket, _)) => bucket,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        bucket.leave(seq);
        drop(bucket);
        self.turn.notify_all();
    }

    /// Ends every wait: the run is over.
    pub(crate) fn end(&self) {
        self.over.store(true, Ordering::Relaxed);
        let _bucket = lock(&self.bucket);
        self.turn.notify_all();
    }
}

/// The handle a reader reads `handle` (of status `stat`) through, under the run's limits.
pub(crate) fn wrap(
    handle: Box<dyn Handle>,
    stat: &Stat,
    pace: Option<&Arc<Pace>>,
    nocache: bool,
    seq: u64,
) -> Box<dyn Handle> {
    let size = stat.st_size as u64;
    if pace.is_some() {
        // Every byte from the disk paid for: no read-ahead of the kernel's own either.
        handle.no_read_ahead();
    }
    // A size of 0 (an empty file, or one in /proc) leaves nothing to learn.
    let handle = if nocache && size > 0 {
        let dontcache = dontcache_works(&*handle);
        Box::new(Uncached {
            inner: handle,
            size,
            survey: Mutex::new(Survey::default()),
            dontcache,
        })
    } else {
        handle
    };
    match pace {
        Some(pace) => Box::new(Paced {
            inner: handle,
            pace: Arc::clone(pace),
            seq,
            size,
        }),
        None => handle,
    }
}

/// Standard input read at the run's rate.
pub(crate) struct PacedRead<'a, R>(pub R, pub &'a Pace, pub u64);

impl<R: std::io::Read> std::io::Read for PacedRead<'_, R> {
    /// Paid after: standard input has no size to charge before.
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.1.piece());
        let got = self.0.read(&mut buf[..n])?;
        self.1.take(got, self.2);
        Ok(got)
    }
}

/// Standard input, under `--nocache`: where it is a regular file (`sumpool hash - < FILE`),
/// read with `RWF_DONTCACHE` from its current offset, so that the pages the run brings in
/// leave the cache; elsewhere (a pipe, or a kernel without it), read as it is.
pub(crate) struct UncachedStdin<R> {
    inner: R,
    dontcache: bool,
}

impl<R: std::io::Read> UncachedStdin<R> {
    pub(crate) fn new(inner: R, nocache: bool) -> UncachedStdin<R> {
        let regular = nocache
            && rustix::fs::fstat(std::io::stdin())
                .is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_file());
        UncachedStdin {
            inner,
            dontcache: regular,
        }
    }
}

impl<R: std::io::Read> std::io::Read for UncachedStdin<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.dontcache {
            return self.inner.read(buf);
        }
        let iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        loop {
            // SAFETY: one iovec over `buf`, valid and writable for its length; offset -1
            // reads at the descriptor's offset and moves it, as read(2) does.
            let n = unsafe { libc::preadv2(0, &iov, 1, -1, libc::RWF_DONTCACHE) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EOPNOTSUPP | libc::EINVAL) => {
                    self.dontcache = false;
                    return self.inner.read(buf);
                }
                _ => return Err(e),
            }
        }
    }
}

/// A file read at the run's rate.
struct Paced {
    inner: Box<dyn Handle>,
    pace: Arc<Pace>,
    /// The item it is read for: its place in the bucket's line.
    seq: u64,
    /// Its size when opened: a read is charged what is left of it, not its buffer.
    size: u64,
}

impl Paced {
    /// Takes the tokens for a read of `n` bytes at `offset` before it (what the file has
    /// there, at most), and reads; a file that grew pays the rest after.
    fn paced(
        &self,
        n: usize,
        offset: u64,
        read: impl FnOnce(usize) -> std::io::Result<usize>,
    ) -> std::io::Result<usize> {
        let n = n.min(self.pace.piece());
        let expected = (self.size.saturating_sub(offset)).min(n as u64) as usize;
        if expected > 0 {
            self.pace.take(expected, self.seq);
        }
        let got = read(n)?;
        if got > expected {
            self.pace.take(got - expected, self.seq);
        }
        Ok(got)
    }
}

impl Handle for Paced {
    fn stat(&self) -> std::io::Result<Stat> {
        self.inner.stat()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.paced(buf.len(), offset, |n| {
            self.inner.read_at(&mut buf[..n], offset)
        })
    }

    /// Paid after: only what was there to read counts.
    fn read_at_nowait(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        let n = buf.len().min(self.pace.piece());
        let read = self.inner.read_at_nowait(&mut buf[..n], offset)?;
        self.pace.take(read, self.seq);
        Ok(read)
    }

    /// Paid after: a FIFO or a device has no size to charge before.
    fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.pace.piece());
        let got = self.inner.read(&mut buf[..n])?;
        self.pace.take(got, self.seq);
        Ok(got)
    }

    /// Nothing: the kernel would read ahead of what was paid for.
    fn will_need(&self, _offset: u64, _len: u64) {}

    /// Never mapped: a mapped file is read by page faults, which no rate can hold.
    fn mappable(&self) -> Option<&std::fs::File> {
        None
    }

    fn cached_pages(&self, offset: u64, len: u64) -> Option<Vec<u8>> {
        self.inner.cached_pages(offset, len)
    }

    fn wont_need(&self, offset: u64, len: u64) {
        self.inner.wont_need(offset, len);
    }

    fn will_touch(&self, offset: u64, len: u64) {
        self.inner.will_touch(offset, len);
    }

    fn done_with(&self, offset: u64, len: u64) {
        self.inner.done_with(offset, len);
    }
}

/// How far past what is about to be read the cache is looked at: the kernel reads ahead of
/// a read or a page fault on its own (128 KiB by default, a few MiB where an administrator
/// raised `read_ahead_kb`, and up to twice that with its asynchronous window), and a page
/// it brought in that way, looked at only afterwards,
/// would pass for one cached before the run and stay.
const LEARN_AHEAD: u64 = 32 << 20;

/// A file whose pages this run brings into the page cache leave it once used.
///
/// Two ways. Where the kernel and the file system can (`RWF_DONTCACHE`, Linux 6.14 and
/// later: ext4, XFS, btrfs...), every read asks the kernel itself to drop the pages it brings
/// in once they are copied out, and to leave those cached before; the file is then never
/// mapped, nor read ahead by `posix_fadvise` (both would bring pages in the ordinary way).
/// Measured cold on 2 cores (docs/benchmarks.md, unattended runs): the other way's
/// `POSIX_FADV_DONTNEED` after each use made the run 1.37 times as long on 2,000 files of
/// 1 MiB, since each call that finds pages still in another CPU's LRU batch drains every
/// CPU's, under a lock of the whole kernel. Elsewhere, the survey and `DONTNEED` below.
struct Uncached {
    inner: Box<dyn Handle>,
    /// Its size when opened.
    size: u64,
    survey: Mutex<Survey>,
    /// The kernel drops what the reads bring in (`RWF_DONTCACHE`); the survey is unused.
    dontcache: bool,
}

/// Whether reads of `handle` can leave the page cache as they found it on their own: a
/// read of one byte that must not wait answers (it fetches nothing for the page cache to
/// keep: what it starts reading is marked to leave as well).
fn dontcache_works(handle: &dyn Handle) -> bool {
    match handle.read_at_uncached(&mut [0u8; 1], 0, true) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
    }
}

/// What is known of a file's pages, from its start.
#[derive(Default)]
struct Survey {
    /// Pages before this offset were looked at (a multiple of the page size).
    to: u64,
    /// Ranges, in order and page-aligned, that were not cached when looked at and are not
    /// dropped yet: this run's.
    ours: Vec<(u64, u64)>,
}

/// Locks `mutex`, whatever a panic elsewhere left in it. (`state::lock`, which this module
/// cannot import: `state` holds the [`Limits`].)
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `at` rounded down to a page.
fn page_floor(at: u64) -> u64 {
    at - at % page_size()
}

/// `at` rounded up to a page.
fn page_ceil(at: u64) -> u64 {
    at.div_ceil(page_size()) * page_size()
}

impl Uncached {
    /// Learns which pages before `end` were not cached yet (before anything of this run
    /// reads them or asks for them).
    fn learn(&self, survey: &mut Survey, end: u64) {
        let end = page_ceil(end.saturating_add(LEARN_AHEAD).min(self.size));
        if survey.to >= end {
            return;
        }
        let from = survey.to;
        let page = page_size();
        match self.inner.cached_pages(from, end - from) {
            Some(pages) => {
                let mut run: Option<u64> = None;
                for (i, &state) in pages.iter().enumerate() {
                    let at = from + i as u64 * page;
                    match (state & 1 == 0, run) {
                        (true, None) => run = Some(at),
                        (false, Some(start)) => {
                            add_range(&mut survey.ours, start, at);
                            run = None;
                        }
                        _ => {}
                    }
                }
                if let Some(start) = run {
                    add_range(&mut survey.ours, start, end);
                }
            }
            // No way to tell: everything read from here on is taken as this run's.
            None => add_range(&mut survey.ours, from, end),
        }
        survey.to = end;
    }

    /// Drops this run's pages in `from..to`.
    fn release(&self, from: u64, to: u64) {
        if from >= to {
            return;
        }
        let dropped = {
            let mut survey = lock(&self.survey);
            take_ranges(&mut survey.ours, from, to)
        };
        for (start, end) in dropped {
            self.inner.wont_need(start, end - start);
        }
    }

    /// The end of what a use ending at `end` is done with: whole pages, or the file's end.
    fn used_to(&self, end: u64) -> u64 {
        if end >= self.size {
            u64::MAX
        } else {
            page_floor(end)
        }
    }
}

impl Handle for Uncached {
    fn stat(&self) -> std::io::Result<Stat> {
        self.inner.stat()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        if self.dontcache {
            return self.inner.read_at_uncached(buf, offset, false);
        }
        self.learn(&mut lock(&self.survey), offset + buf.len() as u64);
        let n = self.inner.read_at(buf, offset)?;
        self.release(page_floor(offset), self.used_to(offset + n as u64));
        Ok(n)
    }

    /// A read that did not wait found its bytes cached: where nothing was learnt yet, they
    /// were cached before (learnt for free); where they are this run's (the kernel read them
    /// on an earlier request), they are used now, and dropped.
    fn read_at_nowait(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        if self.dontcache {
            return self.inner.read_at_uncached(buf, offset, true);
        }
        // Looked at first: a read that must not wait still starts the kernel reading.
        self.learn(&mut lock(&self.survey), offset + buf.len() as u64);
        let n = self.inner.read_at_nowait(buf, offset)?;
        let end = offset + n as u64;
        {
            let mut survey = lock(&self.survey);
            if survey.to >= page_floor(offset) && survey.to < end {
                survey.to = if end >= self.size {
                    page_ceil(self.size)
                } else {
                    page_floor(end)
                };
            }
        }
        self.release(page_floor(offset), self.used_to(end));
        Ok(n)
    }

    fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }

    fn will_need(&self, offset: u64, len: u64) {
        if self.dontcache {
            return;
        }
        self.learn(&mut lock(&self.survey), offset + len);
        self.inner.will_need(offset, len);
    }

    fn mappable(&self) -> Option<&std::fs::File> {
        if self.dontcache {
            return None;
        }
        self.inner.mappable()
    }

    fn cached_pages(&self, offset: u64, len: u64) -> Option<Vec<u8>> {
        self.inner.cached_pages(offset, len)
    }

    fn wont_need(&self, offset: u64, len: u64) {
        self.inner.wont_need(offset, len);
    }

    fn will_touch(&self, offset: u64, len: u64) {
        if !self.dontcache {
            self.learn(&mut lock(&self.survey), offset + len);
        }
    }

    fn done_with(&self, offset: u64, len: u64) {
        if !self.dontcache {
            self.release(page_floor(offset), self.used_to(offset + len));
        }
    }

    fn read_at_uncached(
        &self,
        buf: &mut [u8],
        offset: u64,
        nowait: bool,
    ) -> std::io::Result<usize> {
        self.inner.read_at_uncached(buf, offset, nowait)
    }
}

/// Adds `start..end` to the ordered ranges, joining it to the last one where they touch.
fn add_range(ranges: &mut Vec<(u64, u64)>, start: u64, end: u64) {
    match ranges.last_mut() {
        Some(last) if last.1 >= start => last.1 = last.1.max(end),
        _ => ranges.push((start, end)),
    }
}

/// Removes from the ordered ranges what lies in `from..to`, and returns it.
fn take_ranges(ranges: &mut Vec<(u64, u64)>, from: u64, to: u64) -> Vec<(u64, u64)> {
    let mut taken = Vec::new();
    let mut kept = Vec::with_capacity(ranges.len() + 1);
    for &(start, end) in ranges.iter() {
        let (a, b) = (start.max(from), end.min(to));
        if a >= b {
            kept.push((start, end));
            continue;
        }
        taken.push((a, b));
        if start < a {
            kept.push((start, a));
        }
        if b < end {
            kept.push((b, end));
        }
    }
    *ranges = kept;
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_taken_where_they_overlap_and_kept_elsewhere() {
        let mut ranges = Vec::new();
        add_range(&mut ranges, 0, 10);
        add_range(&mut ranges, 10, 20);
        add_range(&mut ranges, 30, 40);
        assert_eq!(ranges, vec![(0, 20), (30, 40)]);
        assert_eq!(take_ranges(&mut ranges, 5, 35), vec![(5, 20), (30, 35)]);
        assert_eq!(ranges, vec![(0, 5), (35, 40)]);
        assert_eq!(
            take_ranges(&mut ranges, 0, u64::MAX),
            vec![(0, 5), (35, 40)]
        );
        assert!(ranges.is_empty());
    }

    #[test]
    fn the_bucket_earns_at_the_rate_and_never_saves_more_than_the_burst() {
        let rate = 4u64 << 20;
        let pace = Pace::new(rate);
        let mut bucket = lock(&pace.bucket);
        let start = bucket.at;
        bucket.tokens = -(rate as f64);
        bucket.refill(start + Duration::from_millis(500), rate as f64, pace.burst);
        assert!(
            (bucket.tokens + rate as f64 / 2.0).abs() < 1.0,
            "{}",
            bucket.tokens
        );
        // An hour idle saves no more than the burst.
        bucket.refill(start + Duration::from_secs(3600), rate as f64, pace.burst);
        assert_eq!(bucket.tokens, policy::pace_burst(rate) as f64);
    }

    #[test]
    fn the_earliest_item_waiting_is_served_first() {
        let pace = Arc::new(Pace::new(1 << 20));
        // One second of debt: both takers below wait, the later item having come first.
        lock(&pace.bucket).tokens = -f64::from(1 << 20);
        let served = Arc::new(Mutex::new(Vec::new()));
        let taker = |seq: u64| {
            let (pace, served) = (Arc::clone(&pace), Arc::clone(&served));
            std::thread::spawn(move || {
                pace.take(1000, seq);
                lock(&served).push(seq);
            })
        };
        let late = taker(9);
        while lock(&pace.bucket).waiting.is_empty() {
            std::thread::yield_now();
        }
        let early = taker(3);
        late.join().unwrap();
        early.join().unwrap();
        assert_eq!(*lock(&served), vec![3, 9]);
        assert!(lock(&pace.bucket).waiting.is_empty());
    }

    #[test]
    fn an_ended_run_waits_for_nothing() {
        let pace = Pace::new(1);
        pace.end();
        // A debt of 100 MiB at 1 byte per second: taken at once once the run is over.
        pace.take(100 << 20, 0);
        pace.take(100 << 20, 1);
    }
}
