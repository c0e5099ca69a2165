//! The run's configuration: plain data, built once from the command line by `cli`.
//!
//! Every default is applied before a `Config` exists, so the code that runs the work never
//! sees clap and never has to guess a default. Each command's settings are one type here
//! (`HashConfig`, `CheckConfig`, `AuditConfig`, `MergeConfig`): this module is the contract
//! between `cli`, which fills it, and `cmd`, which reads it, and imports neither. The option
//! types of the stages below (`WalkOptions`, `Tuning`, `LineFormat`) are used as they are.

use std::path::PathBuf;
use std::time::Duration;

use crate::digest::{Algorithm, Selector};
use crate::engine::Tuning;
use crate::engine::read::HashOptions;
use crate::engine::walk::WalkOptions;
use crate::format::line::LineFormat;
use crate::progress::ProgressMode;

/// Everything a run needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// What to do.
    pub command: Command,
    /// Number of worker threads in the hashing pool.
    pub jobs: usize,
    /// Batch and window sizes of the pool.
    pub tuning: Tuning,
    /// Reads in flight and the stall timeout, as given on the command line (the device
    /// decides what is not given).
    pub io: IoSettings,
}

/// How often `--update` replaces the manifest with what is known so far, unless told. A
/// crash then costs at most five minutes of reading again; a checkpoint of a manifest of a
/// million entries took 1.15 s on its own thread (`cmd::hash::checkpoint`), 0.4% of one
/// core every five minutes, and a manifest ten times larger is held to 2% by the spacing
/// rule. A minute would cost 2% at a million entries for little gain in a run of hours.
pub const CHECKPOINT_DEFAULT: Duration = Duration::from_secs(300);

/// The I/O options of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoSettings {
    /// Reader threads (`--io-threads`); `None` lets the device policy decide.
    pub readers: Option<usize>,
    /// Give up on a file that makes no progress for this long (`--stall-timeout`).
    pub stall_timeout: Option<Duration>,
    /// Most bytes read per second (`--bwlimit`).
    pub bwlimit: Option<u64>,
    /// Leave the page cache as it was found (`--nocache`).
    pub nocache: bool,
}

impl IoSettings {
    /// The engine's limits for these settings (no time box: only `hash --update` has one).
    pub fn limits(&self) -> crate::engine::run::Limits {
        crate::engine::run::Limits {
            bwlimit: self.bwlimit,
            nocache: self.nocache,
            deadline: None,
        }
    }
}

/// The subcommand and its own settings.
#[derive(Debug, Clone)]
pub enum Command {
    /// Hash files and print checksum lines.
    Hash(HashConfig),
    /// Verify files against checksum lists.
    Check(CheckConfig),
    /// Compare a tree with a manifest.
    Audit(AuditConfig),
    /// Merge shard manifests.
    Merge(MergeConfig),
}

/// Settings of `sumpool audit`.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// The manifest to compare with (`-` for standard input).
    pub manifest: PathBuf,
    /// The trees to walk, in order.
    pub inputs: Vec<PathBuf>,
    /// How to walk them.
    pub walk: WalkOptions,
    /// The manifest's algorithm; lines of another are improperly formatted.
    pub algorithm: Algorithm,
    /// The manifest's lines end in NUL.
    pub zero: bool,
    /// Write the differences as JSON Lines.
    pub json: bool,
    /// When to show a progress bar.
    pub progress: ProgressMode,
}

/// Settings of `sumpool merge`.
#[derive(Debug, Clone)]
pub struct MergeConfig {
    /// The shard manifests, in any order.
    pub inputs: Vec<PathBuf>,
    /// Their lines end in NUL (`hash -z`).
    pub zero: bool,
}

/// How results are written on stdout (or to `-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// sha256sum-compatible lines (hash) or GNU check results (check).
    Text(LineFormat),
    /// JSON Lines (see `json`).
    Json,
}

/// A list of inputs to read (`--files-from`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilesFrom {
    /// The list file; `-` is standard input.
    pub list: PathBuf,
    /// Records end in NUL instead of newline (`-0`).
    pub null: bool,
}

/// Settings of `sumpool hash`.
#[derive(Debug, Clone)]
pub struct HashConfig {
    /// Paths to hash in command-line order; `-` is standard input.
    pub inputs: Vec<PathBuf>,
    /// More inputs, read from a list after `inputs`.
    pub files_from: Option<FilesFrom>,
    /// How directories are walked.
    pub walk: WalkOptions,
    /// How results are written.
    pub format: Format,
    /// The algorithm, and files never to hash.
    pub hash: HashOptions,
    /// Write the manifest to this file, atomically, instead of stdout.
    pub output: Option<PathBuf>,
    /// Bring this manifest up to date instead (`--update`).
    pub update: Option<UpdateConfig>,
    /// Print a summary of the run on stderr at the end.
    pub verbose: bool,
    /// When to show a progress bar on stderr.
    pub progress: ProgressMode,
}

/// Settings of `sumpool hash --update MANIFEST`.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateConfig {
    /// The manifest read, then replaced atomically.
    pub manifest: PathBuf,
    /// How its lines are written (the manifest is text even with `--format json`, which
    /// then goes to stdout).
    pub lines: LineFormat,
    /// Percentage (0 to 100) of the files that could be skipped to read again anyway, those
    /// verified longest ago first (`--scrub`).
    pub scrub: f64,
    /// Drop the lines of files outside this run's scope instead of keeping them (`--prune`).
    pub prune: bool,
    /// Replace the manifest with what is known so far this often (`--checkpoint`); `None`
    /// never.
    pub checkpoint: Option<Duration>,
    /// Start no file after this long, and write the manifest (`--max-duration`).
    pub max_duration: Option<Duration>,
}

/// Which of GNU's mutually exclusive output options is in force (the last one given wins).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Verbosity {
    /// Print every result and the warnings.
    #[default]
    Normal,
    /// `--quiet`: do not print OK lines.
    Quiet,
    /// `--status`: print no results and no warnings; the exit status tells.
    Status,
    /// `-w/--warn`: also warn about each improperly formatted line.
    Warn,
}

/// Settings of `sumpool check`.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    /// Checksum lists in command-line order; `-` or empty means standard input.
    pub lists: Vec<PathBuf>,
    /// Output option in force.
    pub verbosity: Verbosity,
    /// Fail when a line is improperly formatted.
    pub strict: bool,
    /// Do not fail or report status for listed files that do not exist.
    pub ignore_missing: bool,
    /// Lists are NUL-terminated records (as `sumpool hash -z` writes them).
    pub zero: bool,
    /// Accept only lines of this algorithm (or family), as `cksum -a ALGORITHM -c` does;
    /// `None` takes a tagged line's algorithm from its tag, and an untagged line's (SHA-2)
    /// from its digest length.
    pub algorithm: Option<Selector>,
    /// Write results as JSON Lines instead of GNU's text.
    pub json: bool,
    /// Print a summary of the run on stderr at the end.
    pub verbose: bool,
    /// When to show a progress bar on stderr.
    pub progress: ProgressMode,
}
