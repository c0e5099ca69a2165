//! What an update did, counted on the calling thread as the printer goes, for the summary
//! lines, `-v` and the JSON summary.

use std::io::Write;

use crate::config::UpdateConfig;
use crate::report::PROGRAM;

/// What an update did, for `-v` and the JSON summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, serde::Serialize)]
pub struct UpdateCounts {
    /// Files whose recorded digest was kept without reading them.
    pub reused: u64,
    /// Files read because the manifest did not list them.
    pub new: u64,
    /// Files read because their stat changed.
    pub modified: u64,
    /// Files read because their record was racy.
    pub racy: u64,
    /// Files read because their line had no state record.
    pub without_state: u64,
    /// Files read by the scrub (or as corrupt last time) that still matched.
    pub scrubbed: u64,
    /// Files found corrupt.
    pub corrupt: u64,
    /// Lines of the old manifest for files outside this run's scope (other paths, excluded
    /// names, other shards), kept as they were.
    pub out_of_scope: u64,
    /// Lines kept as they were for files in the scope that this run did not read: it could
    /// not (each one is reported), or did not reach them (another file system with `-x`, a
    /// directory it could not list) while they are still there.
    pub unread: u64,
    /// Lines dropped: their files are gone (or are no regular files any more).
    pub dropped: u64,
    /// Lines outside the scope dropped on request (`--prune`).
    pub pruned: u64,
    /// Lines of files in the scope that the run's time did not reach (`--max-duration`),
    /// kept as they were: the next run starts with them.
    pub not_reached: u64,
    /// Files given up in flight when the time was up (their lines kept as they were, and
    /// counted in `not_reached` too).
    pub abandoned: u64,
    /// The run's time was up before it had been through the tree (`--max-duration`).
    pub time_up: bool,
    /// Files were left for the next run: too long for the time left at the rate.
    #[serde(skip)]
    pub deferred: bool,
    /// Checkpoints put in place while the run went (`--checkpoint`).
    pub checkpoints: u64,
    /// The longest time one of them took to write, in seconds.
    pub checkpoint_seconds: f64,
}

impl UpdateCounts {
    /// Counts one file.
    pub fn count(&mut self, status: Status) {
        *match status {
            Status::Reused => &mut self.reused,
            Status::New => &mut self.new,
            Status::Modified => &mut self.modified,
            Status::Racy => &mut self.racy,
            Status::Stateless => &mut self.without_state,
            Status::Scrubbed => &mut self.scrubbed,
            Status::Corrupt => &mut self.corrupt,
        } += 1;
    }

    /// Files read for a reason other than the scrub.
    pub fn hashed(&self) -> u64 {
        self.new + self.modified + self.racy + self.without_state
    }

    /// Files whose line this run vouches for: read, or found unchanged.
    pub fn checked(&self) -> u64 {
        self.reused + self.hashed() + self.scrubbed + self.corrupt
    }

    /// All files in the new manifest.
    pub fn files(&self) -> u64 {
        self.checked() + self.out_of_scope + self.unread + self.not_reached
    }
}

/// Why a file was or was not read, as `-v` and `--format json` report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not read: its stat is the recorded one.
    Reused,
    /// Read: the manifest had no line for it.
    New,
    /// Read: its stat was not the recorded one.
    Modified,
    /// Read: its record was racy.
    Racy,
    /// Read: its line had no state record (a plain manifest).
    Stateless,
    /// Read although it could have been skipped (`--scrub`, or corrupt last time), and its
    /// bytes still have the recorded digest.
    Scrubbed,
    /// Read: its bytes changed under an unchanged, trusted stat. The recorded digest is kept.
    Corrupt,
}

impl Status {
    /// The word in JSON output.
    pub fn word(self) -> &'static str {
        match self {
            Status::Reused => "reused",
            Status::New => "new",
            Status::Modified => "modified",
            Status::Racy => "racy",
            Status::Stateless => "without_state",
            Status::Scrubbed => "scrubbed",
            Status::Corrupt => "corrupt",
        }
    }
}

/// The line that says a run's time was up, and what it left for the next one.
pub(super) fn write_time_up(err: &mut dyn Write, c: &UpdateCounts, update: &UpdateConfig) {
    if !c.time_up {
        return;
    }
    let abandoned = match c.abandoned {
        0 => String::new(),
        n => format!(" ({n} of them given up in flight)"),
    };
    let _ = writeln!(
        err,
        "{PROGRAM}: {}: time is up (--max-duration): {} files checked ({} read), {} not reached{abandoned}; their lines are kept as they were, and the next run starts with them",
        update.manifest.display(),
        c.checked(),
        c.hashed() + c.scrubbed + c.corrupt,
        c.not_reached,
    );
}

/// The `-v` line of an update: why files were or were not read. (The line after it counts
/// every file of the new manifest as hashed, and the bytes actually read.)
pub(super) fn write_update_verbose(err: &mut dyn Write, c: &UpdateCounts) {
    let _ = writeln!(
        err,
        "{PROGRAM}: update: {} files: {} reused, {} hashed ({} new, {} modified, {} racy, {} without state), {} scrubbed, {} corrupt; {} kept out of scope, {} kept unread; {} dropped (gone), {} pruned{}",
        c.files(),
        c.reused,
        c.hashed(),
        c.new,
        c.modified,
        c.racy,
        c.without_state,
        c.scrubbed,
        c.corrupt,
        c.out_of_scope,
        c.unread,
        c.dropped,
        c.pruned,
        match c.checkpoints {
            0 => String::new(),
            n => format!(
                "; {n} checkpoints (the longest {:.2} s)",
                c.checkpoint_seconds
            ),
        }
    );
}
