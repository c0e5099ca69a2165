//! `hash --update --checkpoint`: the manifest replaced, while the run goes, by what is known
//! so far. Decided on the calling thread, between two prints; written on a thread of its own.
//!
//! A checkpoint is the manifest the run would write if its time ended now: the new lines
//! printed so far (the files verified, the new files found, the old lines of files that
//! could not be read) merged, in walk order, with every line of the old manifest not
//! reached yet, as it was (`kept::merge`). It is written to a temporary file beside the
//! manifest and renamed over it, as at the end, so the file on disk is always the old
//! manifest or a complete new one. A run killed at any moment (SIGKILL, a power cut) loses
//! at most one interval of hashing, and the next update reads none of what was verified
//! before the last checkpoint again: those lines carry their new state.
//!
//! The writing thread reads the new lines back from the first temporary file while the
//! calling thread goes on appending to it (only the bytes flushed before the checkpoint are
//! read), and the old lines from the old manifest's file, open since the start (its name
//! may already point at a checkpoint). The checkpoint's file joins the run's own files
//! before it takes the manifest's name, so the walk never hashes it.
//!
//! How often: every [`CHECKPOINT_DEFAULT`](crate::config::CHECKPOINT_DEFAULT) unless told,
//! never sooner after the start of the last one than [`SPACING`] times what it took, and the
//! first no sooner than [`SPACING`] times what reading the old manifest took. Measured on
//! 2 cores (`benches/nightly.sh`, docs/benchmarks.md): a checkpoint of a manifest of
//! 1,102,004 entries (118 MB) took 1.15 s on its thread; so its cost stays under 2% of one
//! core whatever the interval asked, and a run of a few seconds with that manifest writes
//! none.

use std::fs;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::engine::source::OwnFiles;

use super::kept::{self, NewLines};
use super::output::{AtomicOutput, Place};
use super::update::Updater;

/// A checkpoint starts no sooner after the last one started than this many times what the
/// last one took: its cost stays under 1/SPACING of the run.
const SPACING: u32 = 50;

/// What writing a checkpoint is taken to cost before one was written: a pass over the old
/// manifest's `bytes` at [`WRITE_RATE`], or what reading it took (`loaded`), if longer.
fn first_cost(bytes: u64, loaded: Duration) -> Duration {
    loaded.max(Duration::from_secs_f64(bytes as f64 / WRITE_RATE))
}

/// Bytes per second a checkpoint is taken to write, before one was measured: a manifest of
/// 118 MB took 1.15 s on a quiet machine, and 5.4 s while the run read the disk at its rate
/// (`benches/nightly.sh`). Reading it in parts on every core took far less, no measure.
const WRITE_RATE: f64 = 100e6;

/// When the first checkpoint is due: after `every`, and no sooner than [`SPACING`] times
/// what it is taken to cost ([`first_cost`]). A short run with a large manifest is thus
/// spared a checkpoint that would cost more than the hashing it protects.
fn first_after(every: Duration, cost: Duration) -> Duration {
    every.max(cost.saturating_mul(SPACING))
}

/// The least time between two looks at whether a checkpoint is due. Each print reads the
/// coarse clock (a few nanoseconds, in the vDSO), so a run of a few large files, printing a
/// line a minute, is checkpointed as surely as one of millions of small ones.
const LOOK_EVERY: Duration = Duration::from_millis(10);

/// The coarse monotonic clock (the last timer tick's time), in nanoseconds.
fn coarse_nanos() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    (now.tv_sec as u64).saturating_mul(1_000_000_000) + now.tv_nsec as u64
}

/// The checkpoints of one update.
pub struct Checkpoints {
    every: Duration,
    /// When the next one is due.
    due: Instant,
    /// The one being written, and when it started.
    writing: Option<(JoinHandle<anyhow::Result<()>>, Instant)>,
    /// The first temporary file, where the new lines are.
    new: fs::File,
    place: Arc<Place>,
    updater: Arc<Updater>,
    own: Arc<OwnFiles>,
    zero: bool,
    /// Checkpoints put in place so far.
    pub written: u64,
    /// The longest time one took to write, start to rename.
    pub longest: Duration,
    /// The manifest, as named, for messages.
    pub manifest: PathBuf,
    /// The coarse clock's time of the next look ([`coarse_nanos`]).
    next_look: u64,
}

/// What the calling thread hands a checkpoint: where the new lines are, and which lines of
/// the old manifest were met.
pub struct Snapshot {
    pub lines: NewLines,
    pub met: Vec<bool>,
}

impl Checkpoints {
    /// Checkpoints every `every` for the update writing to `atomic`.
    pub fn new(
        (every, loaded, bytes): (Duration, Duration, u64),
        atomic: &AtomicOutput,
        updater: Arc<Updater>,
        own: Arc<OwnFiles>,
        (zero, manifest): (bool, &Path),
    ) -> anyhow::Result<Checkpoints> {
        Ok(Checkpoints {
            every,
            due: Instant::now() + first_after(every, first_cost(bytes, loaded)),
            writing: None,
            new: atomic.file().try_clone()?,
            place: Arc::new(atomic.place()?),
            updater,
            own,
            zero,
            written: 0,
            longest: Duration::ZERO,
            manifest: manifest.to_path_buf(),
            next_look: 0,
        })
    }

    /// Called after each print. When a checkpoint is due (and none is being written),
    /// `snapshot` flushes the new lines and says where they are, and one starts. A
    /// checkpoint that failed comes back as the error (the run goes on: the next one may
    /// work, and the end of the run writes the manifest in any case).
    pub fn tick(
        &mut self,
        snapshot: impl FnOnce() -> io::Result<Snapshot>,
    ) -> Result<(), anyhow::Error> {
        let coarse = coarse_nanos();
        if coarse < self.next_look {
            return Ok(());
        }
        self.next_look = coarse + LOOK_EVERY.as_nanos() as u64;
        let now = Instant::now();
        let finished = self
            .writing
            .as_ref()
            .is_some_and(|(thread, _)| thread.is_finished());
        if finished {
            self.join()?;
        }
        if self.writing.is_some() || now < self.due {
            return Ok(());
        }
        let snapshot = snapshot()?;
        let job = Job {
            new: self.new.try_clone()?,
            place: Arc::clone(&self.place),
            updater: Arc::clone(&self.updater),
            own: Arc::clone(&self.own),
            zero: self.zero,
        };
        let thread = std::thread::Builder::new()
            .name("sumpool-checkpoint".into())
            .spawn(move || job.write(snapshot))
            .context("cannot start a thread")?;
        self.writing = Some((thread, now));
        self.due = now + self.every;
        Ok(())
    }

    /// Waits for the checkpoint being written, if one is: the end of the run writes the
    /// manifest after it.
    pub fn finish(&mut self) -> Result<(), anyhow::Error> {
        self.join()
    }

    fn join(&mut self) -> Result<(), anyhow::Error> {
        let Some((thread, started)) = self.writing.take() else {
            return Ok(());
        };
        let written = thread
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the checkpoint's thread panicked")));
        let took = started.elapsed();
        self.longest = self.longest.max(took);
        self.due = self.due.max(started + took * SPACING);
        written.map(|()| self.written += 1)
    }
}

/// One checkpoint, on its thread.
struct Job {
    new: fs::File,
    place: Arc<Place>,
    updater: Arc<Updater>,
    own: Arc<OwnFiles>,
    zero: bool,
}

impl Job {
    fn write(self, snapshot: Snapshot) -> anyhow::Result<()> {
        let out = self.place.temp()?;
        if let Some(id) = out.id() {
            self.own.add(id);
        }
        // Every line not met yet stays, as it was, where it was.
        let manifest = self.updater.manifest();
        let mut kept: Vec<usize> = (0..manifest.len())
            .filter(|&i| !snapshot.met.get(i).copied().unwrap_or(false))
            .collect();
        kept.sort_by_key(|&i| manifest.span(i).map_or(0, |s| s.start));
        let mut writer = BufWriter::with_capacity(256 << 10, out.file());
        kept::merge(
            &self.new,
            snapshot.lines,
            &kept,
            &self.updater,
            self.zero,
            &mut writer,
        )?;
        drop(writer);
        out.put_in_place()
    }
}
