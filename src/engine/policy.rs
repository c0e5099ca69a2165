//! What to do, given what the storage is and what the run sees: how many reads to keep in
//! flight and in which order, which requests a reader takes, when the extra readers come in,
//! how each file is read, how many large files stream at once, and whether SHA-256 lanes
//! pay on this CPU. Pure functions and constants, table-tested below; the facts come from
//! `device` (the storage) and from the run (`run::reader` counts cache misses), and the
//! threads of `run` ask these functions what to do. Changing the policy means editing this
//! file.
//!
//! The storage a tree lives on decides how reading should go:
//!
//! - a network or user-space file system (NFS, SMB, FUSE, 9P, Ceph...): every open and every
//!   read is a round trip, so many requests in flight hide the latency: [`NETWORK_READERS`];
//! - flash (SSD, NVMe), memory, or a virtual disk: the device serves tens of requests at once
//!   and wants them: [`FLASH_READERS`];
//! - a spinning disk: parallel readers make the head seek between files, and throughput
//!   collapses (published measurements: 100-120 MB/s sequential falling to 10-20 MB/s with
//!   four readers), while reading in inode order, which on ext4 and XFS is close to the
//!   order of the data on disk, gains several times over walk order. So few readers
//!   ([`ROTATIONAL_READERS`]), taking files in inode order within a short lookahead.
//!
//! `--io-threads N` overrides the count (1 reads strictly one file at a time); `-v` shows the
//! choice and why. The decision is taken once per run, from the first input.

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

pub(crate) use crate::engine::device::DeviceClass;
use crate::engine::device::{classify, descriptor_budget, facts_of};

/// Readers on a network or user-space file system. On a FUSE passthrough adding 10 ms to
/// every open and read, 1,000 files of 16 KiB took 0.77 s with `xargs -P64 cat` against
/// 1.5 s with `-P16`: round trips want many in flight.
pub const NETWORK_READERS: usize = 64;

/// Readers on flash, memory or a virtual disk. Chosen from `benches/cold.sh` on this
/// project's machines (2 cores, a virtio disk backed by flash): cold trees of 4 KiB files
/// read fastest with 32 requests in flight; 64 gained nothing more and cost memory.
pub const FLASH_READERS: usize = 32;

/// Readers on a spinning disk: one opening the next file while the other reads.
pub const ROTATIONAL_READERS: usize = 2;

/// How many requests, on a spinning disk, a reader looks ahead for the smallest inode.
pub const INODE_LOOKAHEAD: usize = 64;

/// In which order readers take files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOrder {
    /// The order of the walk (of the list).
    Walk,
    /// The smallest inode number first, among the next `lookahead` files.
    Inode {
        /// How far ahead to look.
        lookahead: usize,
    },
}

/// The I/O settings of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoPolicy {
    /// Reader threads: requests in flight.
    pub readers: usize,
    /// In which order they take files.
    pub order: ReadOrder,
    /// Give up on a file that makes no progress for this long (`--stall-timeout`).
    pub stall_timeout: Option<Duration>,
    /// A network file system: every open and read is a round trip, so every reader works
    /// all the time.
    pub network: bool,
    /// What the storage was taken for, and why, for `-v`.
    pub reason: String,
}

impl Default for IoPolicy {
    /// Flash-like: what a library caller gets without a device to look at.
    fn default() -> IoPolicy {
        IoPolicy {
            readers: FLASH_READERS,
            order: ReadOrder::Walk,
            stall_timeout: None,
            network: false,
            reason: "default".into(),
        }
    }
}

/// The policy for a device class; `readers` (`--io-threads`) overrides the count.
pub fn policy(class: &DeviceClass, readers: Option<usize>, stall: Option<Duration>) -> IoPolicy {
    let (default, order, what) = match class {
        DeviceClass::Network(name) => (
            NETWORK_READERS,
            ReadOrder::Walk,
            format!("{name}: a network or user-space file system"),
        ),
        DeviceClass::Rotational(disk) => (
            ROTATIONAL_READERS,
            ReadOrder::Inode {
                lookahead: INODE_LOOKAHEAD,
            },
            format!("{disk}: a spinning disk"),
        ),
        DeviceClass::Flash(disk) => (
            FLASH_READERS,
            ReadOrder::Walk,
            format!("{disk}: flash (not rotational)"),
        ),
        DeviceClass::Virtual(disk) => (
            FLASH_READERS,
            ReadOrder::Walk,
            format!("{disk}: says rotational, but is a virtual disk: taken for flash"),
        ),
        DeviceClass::Other => (
            FLASH_READERS,
            ReadOrder::Walk,
            "no block device (memory or a virtual file system): taken for flash".into(),
        ),
    };
    let readers = readers.unwrap_or(default).max(1);
    let order_text = match order {
        ReadOrder::Walk => "walk order",
        ReadOrder::Inode { .. } => "inode order",
    };
    let count = match readers {
        1 => "1 reader (one file at a time)".to_string(),
        n => format!("{n} readers"),
    };
    IoPolicy {
        readers,
        order,
        stall_timeout: stall,
        network: matches!(class, DeviceClass::Network(_)),
        reason: format!("{count} in {order_text}; {what}"),
    }
}

/// The policy for the storage `path` is on, within the descriptors the process may open.
pub fn for_path(path: &Path, readers: Option<usize>, stall: Option<Duration>) -> IoPolicy {
    let budget = descriptor_budget();
    crate::engine::source::limit_dir_handles(dir_handles_for(budget));
    within_descriptors(policy(&classify(&facts_of(path)), readers, stall), budget)
}

/// Descriptors kept for what is not a reader's: the walk (walkdir keeps up to 10
/// directories open), the manifests of `-o` and `--update`, the signal watchdog's pipe.
const RESERVED_DESCRIPTORS: usize = 16;

/// Descriptors a reader may hold at once: the file it reads, a large file it handed over
/// and not yet closed, a directory handle.
const DESCRIPTORS_PER_READER: usize = 4;

/// `policy` with no more readers than `budget` descriptors (those the process may still
/// open) can serve: with `ulimit -n 32`, a run of 32 readers would fail files with "Too many
/// open files" where `sha256sum` works.
pub fn within_descriptors(mut policy: IoPolicy, budget: usize) -> IoPolicy {
    let most = (budget.saturating_sub(RESERVED_DESCRIPTORS) / DESCRIPTORS_PER_READER).max(1);
    if policy.readers > most {
        policy.readers = most;
        policy.reason = format!(
            "{}; {most} reader{} at most within the limit of open files",
            policy.reason,
            if most == 1 { "" } else { "s" }
        );
    }
    policy
}

/// Directory handles a walk may keep open within `budget` descriptors: at most 256, and
/// a quarter of what is left.
pub fn dir_handles_for(budget: usize) -> usize {
    (budget.saturating_sub(RESERVED_DESCRIPTORS) / 4).min(256)
}

/// How a reader treats one file, from what its status says (see `run::reader`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// Not a regular file (standard input, a FIFO or a device named on the command line):
    /// read to its end, one block at a time, by the reader.
    Sequential,
    /// Smaller than [`LANE_MIN`] (or of a size that reads 0, as in /proc): hashed by the
    /// reader, one block at a time.
    Small,
    /// Up to [`WHOLE_MAX`]: read whole into a buffer, hashed in the reader's lanes.
    Whole,
    /// Larger: streamed in chunks by the reader that opened it, hashed by a worker.
    Large,
}

/// Regular files smaller than this are hashed by the reader that read them: a block or two
/// leaves nothing to interleave, and handing them over would cost more than hashing them.
/// Measured on 2 cores, warm cache: 100,000 files of 4 KiB took 0.43 s in lanes and 0.49 s
/// without; 200,000 files of 0 to 100 bytes took the same either way.
pub(crate) const LANE_MIN: u64 = 1 << 10;

/// Regular files up to this size are read whole by a reader; larger ones are streamed. One
/// read of a whole 1 MiB file keeps a megabyte request in flight per reader.
pub(crate) const WHOLE_MAX: u64 = 1 << 20;

/// How a reader treats a file: regular or not, and its size.
pub(crate) fn kind_of(regular: bool, size: u64) -> FileKind {
    match (regular, size) {
        (false, _) => FileKind::Sequential,
        (true, s) if s < LANE_MIN => FileKind::Small,
        (true, s) if s <= WHOLE_MAX => FileKind::Whole,
        (true, _) => FileKind::Large,
    }
}

/// Bytes of a large file read at a time, into one chunk for the worker that hashes it.
/// Large reads keep the system calls few (a 1 GiB file is 1,024 reads); the chunk is
/// hashed by another core than the one that read it, so fitting a core's cache gains
/// nothing here.
pub(crate) const CHUNK: usize = 1 << 20;

/// Chunks a stream reads ahead of the worker that hashes it: one being filled, one waiting
/// while the worker hashes a third.
pub(crate) const CHUNKS_AHEAD: usize = 2;

/// Bytes of a large file the kernel is asked to read ahead of the chunk being read
/// (`posix_fadvise(WILLNEED)`), so that the device always has a deep queue, whatever the
/// kernel's own read-ahead window: on a virtual disk reading 4 GB/s, two requests of a
/// megabyte in flight per file leave it idle half the time.
pub(crate) const READ_AHEAD: u64 = 16 << 20;

/// How far ahead of the worker that maps a large file its reader keeps the kernel reading
/// (`posix_fadvise(WILLNEED)`, [`PREFETCH_STEP`] at a time). Measured cold on a 1 GiB file:
/// a worker that asked for read-ahead itself, between windows, waited on the disk for most
/// of each window (1.01 s); a reader asking 32 MiB ahead, on its own thread, overlapped the
/// reading with the hashing (0.77 s, as reading with `cat`).
pub(crate) const PREFETCH_AHEAD: u64 = 32 << 20;

/// How much a reader asks to be read ahead at a time.
pub(crate) const PREFETCH_STEP: u64 = 4 << 20;

/// Large files streamed at once, all workers together: two per worker (each takes the
/// largest waiting), so that every core has a second file to interleave with the first,
/// and memory stays bounded (each stream holds [`CHUNKS_AHEAD`] + 1 chunks).
pub(crate) fn streams_max(workers: usize) -> usize {
    (2 * workers).clamp(2, 16)
}

/// Readers that always take requests: as many as there are cores (at least two); on a
/// network file system, all of them. The others take requests only while reads wait on
/// storage ([`Slowness`]).
///
/// Reads from the page cache are CPU work: more threads than cores only switch between
/// themselves (a warm tree of 100,000 files of 4 KiB took 0.35 s with two readers and over a
/// second with 32 always active, 2.4 context switches per file). Reads from storage wait:
/// there every reader should have a request in flight.
pub(crate) fn core_readers(io: &IoPolicy, cores: usize) -> usize {
    if io.network {
        return io.readers.max(1);
    }
    io.readers.clamp(1, cores.max(2))
}

/// How many requests a reader takes at once from `queued`: no more than a fair share among
/// the `active` readers, so that every reader has something in flight, and at most `batch`
/// (one lock for many tiny files).
pub(crate) fn share(queued: usize, active: usize, batch: usize) -> usize {
    queued.div_ceil(active.max(1)).clamp(1, batch.max(1))
}

/// Takes up to `n` items from the front of `queue`: the first ones, or, in inode order, the
/// one with the smallest inode number among the next `lookahead` each time, so that a
/// spinning disk's head sweeps rather than seeks (files of one directory were mostly created
/// in inode order, their data near their inodes). Items without an inode go last within
/// the lookahead; ties keep their order.
pub(crate) fn take_in_order<T>(
    queue: &mut VecDeque<T>,
    n: usize,
    order: ReadOrder,
    ino: impl Fn(&T) -> Option<u64>,
) -> Vec<T> {
    match order {
        ReadOrder::Walk => queue.drain(..n.min(queue.len())).collect(),
        ReadOrder::Inode { lookahead } => {
            let mut taken = Vec::with_capacity(n.min(queue.len()));
            while taken.len() < n && !queue.is_empty() {
                let horizon = lookahead.max(1).min(queue.len());
                let pick = (0..horizon)
                    .min_by_key(|&i| (ino(&queue[i]).unwrap_or(u64::MAX), i))
                    .unwrap_or(0);
                if let Some(item) = queue.remove(pick) {
                    taken.push(item);
                }
            }
            taken
        }
    }
}

/// Whether reads wait on storage, from the cache misses the readers meet: [`MISSES_IN_A_ROW`]
/// misses, each within [`SLOW_HOLD`] of the one before, make reads slow until [`SLOW_HOLD`]
/// after the last one. While they are, the extra readers take requests too. Whether a read
/// waits is asked of the kernel (each file's first read is tried with `RWF_NOWAIT`); timing
/// the reads instead misfires on a busy machine, where a reader that loses its core looks
/// just like one that waits on a disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Slowness {
    in_a_row: u32,
    last: Option<Instant>,
    until: Option<Instant>,
}

/// Cache misses in a row that call the extra readers in.
pub(crate) const MISSES_IN_A_ROW: u32 = 4;

/// How long the extra readers stay in after the last read that had to wait on storage.
pub(crate) const SLOW_HOLD: Duration = Duration::from_millis(50);

impl Slowness {
    /// Counts a cache miss at `now`; `true` when it turns reads slow (call the extras in).
    pub(crate) fn miss(&mut self, now: Instant) -> bool {
        let recent = self
            .last
            .is_some_and(|last| now.duration_since(last) < SLOW_HOLD);
        self.in_a_row = if recent { self.in_a_row + 1 } else { 1 };
        self.last = Some(now);
        if self.in_a_row < MISSES_IN_A_ROW {
            return false;
        }
        let was_slow = self.is_slow(now);
        self.until = Some(now + SLOW_HOLD);
        !was_slow
    }

    /// Whether reads count as slow at `now`.
    pub(crate) fn is_slow(&self, now: Instant) -> bool {
        self.until.is_some_and(|until| now < until)
    }
}

/// Cache hits in a row (on one reader) after which it asks whether a read would wait only
/// for one file in [`PROBE_EVERY`]: the question (`RWF_NOWAIT`) costs a system call when
/// the answer is no, and on a warm tree of tiny files every file answering "in the cache"
/// cost 3% of the run. A miss makes it ask for every file again.
pub(crate) const PROBE_ALWAYS: u32 = 256;

/// See [`PROBE_ALWAYS`].
pub(crate) const PROBE_EVERY: u32 = 16;

/// Whether a reader that has had `hits` cache hits in a row asks about the next file.
pub(crate) fn probe(hits: u32) -> bool {
    hits < PROBE_ALWAYS || hits.is_multiple_of(PROBE_EVERY)
}

/// Most tokens the bucket of `--bwlimit RATE` saves while nothing reads: a quarter of a
/// second's worth. With reads of at most [`pace_piece`] bytes, any one-second window reads
/// at most the rate, plus this, plus one piece: 1.375 times the rate (the promise is 1.5).
pub(crate) fn pace_burst(rate: u64) -> u64 {
    rate / 4
}

/// Most bytes one read takes under `--bwlimit RATE`: an eighth of a second's worth, in
/// sectors of 512 bytes, from one to [`CHUNK`]. A read is paid for before it is made: a
/// larger one would read a whole burst at once. (`cli` takes no rate below 4 KiB/s, where
/// one sector would be more than an eighth.)
pub(crate) fn pace_piece(rate: u64) -> usize {
    let piece = usize::try_from(rate / 8).unwrap_or(CHUNK).clamp(512, CHUNK);
    piece - piece % 512
}

/// Average size of the files opened so far from which the scout looks ahead for large
/// files: there a stat per file is a few percent of the work of a file, and the window
/// holds seconds of work, time enough for a large file to finish beside the rest. On trees
/// of small files the window holds a few milliseconds of work, and looking ahead could not
/// help.
pub(crate) const SCOUT_MIN_AVERAGE: u64 = 64 << 10;

/// Whether the scout should look ahead, after `files` opened of `bytes` in all.
pub(crate) fn scout_wanted(files: u64, bytes: u64) -> bool {
    files >= 8 && bytes / files >= SCOUT_MIN_AVERAGE
}

/// Interleaved SHA-256 lanes are used when, measured on this CPU, four lanes hash at least
/// this much faster than one: below it the gain is noise, and one lane at a time through
/// the sha2 crate is the simpler path.
pub(crate) const LANES_GAIN_MIN: f64 = 1.10;

/// How many SHA-256 lanes a worker runs, from the throughput measured here of one lane and
/// of four interleaved (bytes per second; `None` where the CPU cannot interleave), and why.
pub(crate) fn choose_lanes(one: f64, four: Option<f64>) -> (usize, String) {
    let Some(four) = four else {
        return (
            1,
            "one file at a time per core (no SHA extensions: nothing to interleave)".into(),
        );
    };
    let gain = if one > 0.0 { four / one } else { 0.0 };
    let measured = format!(
        "one lane {:.2} GB/s, four lanes {:.2} GB/s per core: {gain:.2} x",
        one / 1e9,
        four / 1e9
    );
    if gain >= LANES_GAIN_MIN {
        (
            4,
            format!("SHA extensions, 4 files interleaved per core ({measured})"),
        )
    } else {
        (
            1,
            format!(
                "SHA extensions, one file at a time per core (interleaving gains nothing here: {measured})"
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_and_the_override() {
        let hdd = policy(&DeviceClass::Rotational("sda".into()), None, None);
        assert_eq!(hdd.readers, ROTATIONAL_READERS);
        assert!(matches!(hdd.order, ReadOrder::Inode { .. }));
        let vda = policy(&DeviceClass::Virtual("vda".into()), None, None);
        assert_eq!((vda.readers, vda.order), (FLASH_READERS, ReadOrder::Walk));
        let nfs = policy(&DeviceClass::Network("NFS"), None, None);
        assert_eq!(nfs.readers, NETWORK_READERS);
        let one = policy(&DeviceClass::Flash("nvme0n1".into()), Some(1), None);
        assert_eq!(one.readers, 1);
        assert!(
            one.reason
                .starts_with("1 reader (one file at a time) in walk order"),
            "{}",
            one.reason
        );
        assert!(vda.reason.contains("vda"), "{}", vda.reason);
    }

    #[test]
    fn kinds_by_size() {
        assert_eq!(kind_of(false, 5 << 20), FileKind::Sequential);
        assert_eq!(kind_of(true, 0), FileKind::Small);
        assert_eq!(kind_of(true, LANE_MIN - 1), FileKind::Small);
        assert_eq!(kind_of(true, LANE_MIN), FileKind::Whole);
        assert_eq!(kind_of(true, WHOLE_MAX), FileKind::Whole);
        assert_eq!(kind_of(true, WHOLE_MAX + 1), FileKind::Large);
    }

    #[test]
    fn core_readers_and_shares() {
        let flash = policy(&DeviceClass::Flash("nvme0n1".into()), None, None);
        assert_eq!(core_readers(&flash, 2), 2);
        assert_eq!(core_readers(&flash, 1), 2);
        assert_eq!(core_readers(&flash, 8), 8);
        let one = policy(&DeviceClass::Flash("nvme0n1".into()), Some(1), None);
        assert_eq!(core_readers(&one, 8), 1);
        let nfs = policy(&DeviceClass::Network("NFS"), None, None);
        assert_eq!(core_readers(&nfs, 2), NETWORK_READERS);
        assert_eq!(share(100, 2, 64), 50);
        assert_eq!(share(1000, 2, 64), 64);
        assert_eq!(share(3, 32, 64), 1);
        assert_eq!(share(0, 0, 0), 1);
        assert_eq!(streams_max(2), 4);
        assert_eq!(streams_max(64), 16);
    }

    #[test]
    fn misses_in_a_row_make_reads_slow_for_a_while() {
        let mut slow = Slowness::default();
        let t = Instant::now();
        let ms = |n| t + Duration::from_millis(n);
        assert!(!slow.miss(ms(0)));
        assert!(!slow.miss(ms(10)));
        assert!(!slow.miss(ms(20)));
        // The fourth in a row turns reads slow, once.
        assert!(slow.miss(ms(30)));
        assert!(slow.is_slow(ms(40)));
        assert!(!slow.miss(ms(40)));
        // SLOW_HOLD after the last miss, they are fast again.
        assert!(!slow.is_slow(ms(40) + SLOW_HOLD));
        // Misses far apart never add up.
        let mut apart = Slowness::default();
        for i in 0..10 {
            assert!(!apart.miss(ms(i * 100)));
        }
    }

    #[test]
    fn probes_thin_out_after_many_hits_in_a_row() {
        assert!((0..PROBE_ALWAYS).all(probe));
        let later: Vec<u32> = (PROBE_ALWAYS..PROBE_ALWAYS + 64)
            .filter(|&h| probe(h))
            .collect();
        assert_eq!(later.len(), 64 / PROBE_EVERY as usize);
    }

    #[test]
    fn the_scout_looks_ahead_only_among_large_files() {
        assert!(!scout_wanted(0, 0));
        assert!(!scout_wanted(7, 7 << 30));
        assert!(!scout_wanted(100, 100 * 4096));
        assert!(scout_wanted(8, 8 * SCOUT_MIN_AVERAGE));
    }

    #[test]
    fn lanes_only_where_they_gain() {
        assert_eq!(choose_lanes(1.14e9, Some(1.17e9)).0, 1);
        assert_eq!(choose_lanes(1.80e9, Some(3.25e9)).0, 4);
        assert_eq!(choose_lanes(1.0e9, None).0, 1);
        let (_, why) = choose_lanes(1.80e9, Some(3.25e9));
        assert!(why.contains("1.80 GB/s") && why.contains("1.81 x"), "{why}");
    }

    fn queue(inodes: &[Option<u64>]) -> VecDeque<(usize, Option<u64>)> {
        inodes.iter().copied().enumerate().collect()
    }

    fn taken(q: &mut VecDeque<(usize, Option<u64>)>, n: usize, order: ReadOrder) -> Vec<usize> {
        take_in_order(q, n, order, |item| item.1)
            .into_iter()
            .map(|item| item.0)
            .collect()
    }

    #[test]
    fn walk_order_takes_the_first() {
        let mut q = queue(&[Some(50), Some(10), Some(40), Some(20), Some(30)]);
        assert_eq!(taken(&mut q, 2, ReadOrder::Walk), [0, 1]);
        assert_eq!(taken(&mut q, 10, ReadOrder::Walk), [2, 3, 4]);
        assert!(q.is_empty());
    }

    #[test]
    fn inode_order_sweeps_within_the_lookahead_only() {
        // Lookahead 3: each pick is the smallest inode among the first 3 still queued.
        let mut q = queue(&[Some(50), Some(10), Some(40), Some(20), Some(30), Some(5)]);
        let order = ReadOrder::Inode { lookahead: 3 };
        assert_eq!(taken(&mut q, 6, order), [1, 3, 4, 5, 2, 0]);
        // Ties keep walk order; a lookahead of the whole queue sorts it.
        let mut q = queue(&[Some(7), Some(3), Some(7), Some(1), Some(3)]);
        let all = ReadOrder::Inode { lookahead: 64 };
        assert_eq!(taken(&mut q, 5, all), [3, 1, 4, 0, 2]);
        // A lookahead of 1 (or 0) is walk order; no inode goes last.
        let mut q = queue(&[Some(9), Some(8), Some(7)]);
        assert_eq!(
            taken(&mut q, 3, ReadOrder::Inode { lookahead: 0 }),
            [0, 1, 2]
        );
        let mut q = queue(&[None, Some(4), Some(2)]);
        assert_eq!(
            taken(&mut q, 3, ReadOrder::Inode { lookahead: 8 }),
            [2, 1, 0]
        );
    }

    #[test]
    fn readers_fit_in_the_descriptors_left() {
        let flash = || policy(&DeviceClass::Flash("nvme0n1".into()), None, None);
        assert_eq!(within_descriptors(flash(), 1 << 20).readers, FLASH_READERS);
        // ulimit -n 64: 60 left, 16 reserved, 4 per reader.
        let at_64 = within_descriptors(flash(), 60);
        assert_eq!(at_64.readers, 11);
        assert!(
            at_64.reason.contains("limit of open files"),
            "{}",
            at_64.reason
        );
        // However few are left, one reader reads (as sha256sum does, one file at a time).
        assert_eq!(within_descriptors(flash(), 20).readers, 1);
        assert_eq!(within_descriptors(flash(), 0).readers, 1);
        assert_eq!(dir_handles_for(1 << 20), 256);
        assert_eq!(dir_handles_for(28), 3);
        assert_eq!(dir_handles_for(10), 0);
    }

    #[test]
    fn paced_reads_are_small_enough_for_the_one_second_promise() {
        for (rate, piece) in [
            (4u64 << 10, 512),
            (100 << 10, 12_800),
            (200 << 20, CHUNK),
            (u64::MAX, CHUNK),
        ] {
            assert_eq!(pace_piece(rate), piece, "{rate}");
        }
        for rate in [4u64 << 10, 5000, 64 << 10, 1 << 20, 200 << 20, 10 << 30] {
            let worst = rate + pace_burst(rate) + pace_piece(rate) as u64;
            assert!(worst as f64 <= 1.5 * rate as f64, "{rate}");
        }
    }
}
