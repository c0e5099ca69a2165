//! The run's configuration: plain data, built once from the command line by `cli`.
//!
//! Every default is applied before a `Config` exists, so the code that runs the work never
//! sees clap and never has to guess a default.

use std::path::PathBuf;

use crate::output::LineFormat;
use crate::pool::Tuning;
use crate::walk::WalkOptions;

/// Everything a run needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// What to do.
    pub command: Command,
    /// Number of worker threads in the hashing pool.
    pub jobs: usize,
    /// Batch and window sizes of the pool.
    pub tuning: Tuning,
}

/// The subcommand and its own settings.
#[derive(Debug, Clone)]
pub enum Command {
    /// Hash files and print checksum lines.
    Hash(HashConfig),
    /// Verify files against checksum lists.
    Check(CheckConfig),
}

/// Settings of `sumpool hash`.
#[derive(Debug, Clone)]
pub struct HashConfig {
    /// Paths to hash in command-line order; `-` is standard input; empty means standard input.
    pub inputs: Vec<PathBuf>,
    /// How directories are walked.
    pub walk: WalkOptions,
    /// How each line is written.
    pub format: LineFormat,
    /// Print a summary of the run on stderr at the end.
    pub verbose: bool,
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
}
