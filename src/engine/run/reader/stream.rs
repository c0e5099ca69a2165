//! Handing one large file to a worker. Runs on a reader thread.
//!
//! A file of a local file system goes to a worker as it is, open: the worker maps it window
//! by window (`mapped`), which reads the page cache without a copy (measured on 4 files of
//! 512 MiB on 2 cores: the copy of reading made hashing 15% slower warm). The reader asks
//! the kernel to start reading ahead, and is free at once.
//!
//! Any other file (a network file system, where a page fault on a hashing core could wait
//! for ever) is read by the reader that opened it, to its end, [`CHUNK`] at a time,
//! [`CHUNKS_AHEAD`] ahead of the worker that hashes it, asking the storage to read
//! [`READ_AHEAD`] further ahead still. While it streams, what it held goes on without it:
//! its results are posted, the files it read whole hashed, the requests it took put back in
//! the queue, and an extra reader called in.
//!
//! The chunks go through a bounded channel to the worker, and come back through another
//! to be filled again: a stream allocates at most [`CHUNKS_AHEAD`] + 2 chunks. A reader
//! blocked on a full channel waits for a worker, not for storage: it is not marked busy,
//! and the stall timeout does not count that wait.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crossbeam_channel::{TryRecvError, bounded, unbounded};
use rustix::fs::Stat;

use crate::digest::Algorithms;
use crate::engine::policy::{CHUNK, CHUNKS_AHEAD, PREFETCH_AHEAD, PREFETCH_STEP, READ_AHEAD};
use crate::engine::run::buffers::PageBuf;
use crate::engine::run::state::{Chunk, Feed, Stream, StreamFlags, lock};
use crate::engine::source::Source;
use crate::engine::storage::Handle;

use super::{Reader, fill};

impl<R: Send + 'static> Reader<'_, R> {
    /// Hands a large file to a worker: see the module header. `false` if the reader was
    /// given up on and must leave.
    pub(super) fn stream(
        &mut self,
        (seq, source, algorithm): (u64, Source, Algorithms),
        handle: Box<dyn Handle>,
        before: Stat,
    ) -> bool {
        // Not in storage while it waits for a place among the streams.
        if !self.out_of_storage() {
            return false;
        }
        let shared = self.shared;
        let go_on = || !shared.stopping();
        let size = before.st_size as u64;
        let name = source.into_name();
        let flags = Arc::new(StreamFlags::default());
        // A file of a local file system is mapped by its worker; this reader keeps the
        // kernel reading ahead of it.
        if handle.mappable().is_some() {
            return self.read_ahead_of_worker((seq, name, algorithm), handle, before, flags);
        }
        // This reader is busy with one file for a while: what it holds and the requests it
        // took go on without it, and an extra reader takes its place.
        self.flush();
        self.give_back_taken();
        shared.streaming.fetch_add(1, Ordering::AcqRel);
        let _streaming = Streaming(&shared.streaming);
        if shared.queued.load(Ordering::Relaxed) > 0 {
            shared.call_extras(false);
        }
        let Some(slot) = shared.stream_slots.take(go_on) else {
            return true;
        };
        let (chunks, from_reader) = bounded(CHUNKS_AHEAD);
        let (spent, to_reader) = unbounded();
        lock(&shared.streams).push(Stream {
            seq,
            name: name.clone(),
            algorithm,
            before: Box::new(before),
            feed: Feed::Chunks {
                chunks: from_reader,
                spent,
            },
            flags: Arc::clone(&flags),
            _slot: slot,
        });
        shared.wake_a_worker();
        handle.will_need(0, size.min(READ_AHEAD));
        let mut advised = READ_AHEAD;
        let mut offset = 0u64;
        while offset < size {
            if flags.timed_out.load(Ordering::Acquire) {
                break;
            }
            let len = (size - offset).min(CHUNK as u64) as usize;
            if advised < size && offset + READ_AHEAD / 2 >= advised {
                handle.will_need(advised, READ_AHEAD.min(size - advised));
                advised += READ_AHEAD;
            }
            let mut buf = match to_reader.try_recv() {
                Ok(buf) => buf,
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => PageBuf::zeroed(CHUNK),
            }
            .resized(len);
            if self.watched {
                self.mark_busy(seq, name.clone(), Some(Arc::clone(&flags)));
            }
            let read = fill(&mut buf, |rest, done| {
                handle.read_at(rest, offset + done as u64)
            });
            if !self.out_of_storage() {
                return false;
            }
            let chunk = match read {
                Ok(()) => Chunk::Data(buf),
                Err(reason) => Chunk::Failed(reason),
            };
            let failed = matches!(chunk, Chunk::Failed(_));
            // Waits while the worker is CHUNKS_AHEAD behind; fails once it gave up the file.
            if chunks.send(chunk).is_err() || failed {
                return true;
            }
            offset += len as u64;
        }
        let end = match handle.stat() {
            Ok(after) => Chunk::End(Box::new(after)),
            Err(e) => Chunk::Failed(e.into()),
        };
        let _ = chunks.send(end);
        true
    }

    /// Hands a mapped file to a worker, and keeps the kernel reading [`PREFETCH_AHEAD`]
    /// ahead of it until its end (or until the worker drops it). `false` if the reader was
    /// given up on and must leave.
    fn read_ahead_of_worker(
        &mut self,
        (seq, name, algorithm): (u64, std::path::PathBuf, Algorithms),
        handle: Box<dyn Handle>,
        before: Stat,
        flags: Arc<StreamFlags>,
    ) -> bool {
        let shared = self.shared;
        self.flush();
        self.give_back_taken();
        shared.streaming.fetch_add(1, Ordering::AcqRel);
        let _streaming = Streaming(&shared.streaming);
        if shared.queued.load(Ordering::Relaxed) > 0 {
            shared.call_extras(false);
        }
        let Some(slot) = shared.stream_slots.take(|| !shared.stopping()) else {
            return true;
        };
        let size = before.st_size as u64;
        let (ticks, mapped) = bounded(1);
        // The first step at once, before the worker maps its first window.
        let handle: Arc<dyn Handle> = Arc::from(handle);
        handle.will_need(0, size.min(PREFETCH_STEP));
        lock(&shared.streams).push(Stream {
            seq,
            name: name.clone(),
            algorithm,
            before: Box::new(before),
            feed: Feed::Mapped {
                handle: Arc::clone(&handle),
                mapped: ticks,
            },
            flags: Arc::clone(&flags),
            _slot: slot,
        });
        shared.wake_a_worker();
        let mut at = size.min(PREFETCH_STEP);
        while at < size {
            // Far enough ahead: wait for the worker to map more (or to drop the file).
            while at >= flags.mapped.load(Ordering::Acquire) + PREFETCH_AHEAD {
                match mapped.recv_timeout(crate::engine::run::handoff::POLL) {
                    Ok(()) => {}
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                        let behind = at < flags.mapped.load(Ordering::Acquire) + PREFETCH_AHEAD;
                        crate::engine::count_lost_wakeup(true, behind && !mapped.is_empty());
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return true,
                }
            }
            if flags.timed_out.load(Ordering::Acquire) || shared.stopping() {
                return true;
            }
            let step = (size - at).min(PREFETCH_STEP);
            if self.watched {
                self.mark_busy(seq, name.clone(), Some(Arc::clone(&flags)));
            }
            handle.will_need(at, step);
            if !self.out_of_storage() {
                return false;
            }
            at += step;
        }
        true
    }
}

/// Counts a reader streaming while it lives.
struct Streaming<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Streaming<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
