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
}
