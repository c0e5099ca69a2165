//! sumpool checksums large trees of files with SHA-256 (or MD5, SHA-1, SHA-2, SHA-3, BLAKE2b,
//! BLAKE3, several from one read) on a pool of threads and prints lines byte-identical to GNU
//! coreutils `sha256sum` (`md5sum`, `b2sum`, `cksum -a`, and `b3sum`), so its output can be
//! verified by those tools; it also verifies lists (`check`), compares a tree with a manifest
//! (`audit`) and merges shard manifests (`merge`).
//!
//! # The pipeline
//!
//! `main` parses the command line with [`cli`] into a [`Config`] (plain data, every default
//! applied) and calls [`run`], which hands it to one command of [`cmd`]. A command turns its inputs
//! into an ordered stream of work and drives the [`engine`]: the walk lists the tree, the pool
//! hashes on worker threads (several files at once per core), and results come back in input order
//! to the calling thread, the only one that writes. It writes them with [`format`](mod@format)
//! (checksum lines, JSON) and records failures in a [`report`], which also decides the exit code.
//!
//! # The layout, and why these names
//!
//! The folders name the stages, the way fd's `src/` has `exec/`, `filter/` and `fmt/`:
//!
//! - [`cmd`]: one module per subcommand (`hash`, `check`, `audit`, `merge`). "cmd" because that is
//!   what a user types; each module is the whole story of one command, and no command reaches into
//!   another.
//! - [`engine`]: everything between a list of inputs and a stream of digests: walking, scheduling,
//!   reading, the SHA-256 lanes. "engine" because it has no opinion on what the digests are for;
//!   all four commands run on it.
//! - [`format`](mod@format): bytes in and out: the GNU line writer and escaping, the checksum-line
//!   parser, JSON Lines, the quoting of names in messages, the record reader. Pure functions over
//!   bytes; nothing in it touches a file system or a thread.
//! - Flat at the top, what every stage shares: [`config`] (the settings, one type per command),
//!   [`report`] (failures, the tally, exit codes), [`progress`] (the bar), [`signals`] (the orderly
//!   stop), [`digest`] (the algorithms, their digests and the one hasher the engine calls).
//!
//! Imports go one way, down this list: `cli`, `cmd`, `config`, `engine`, `progress`, `report`,
//!   `format`, then `digest` and `signals`. `cli` and `cmd` both read `config` (it is the contract
//!   between them) and never each other. `tests/architecture.rs` checks the rule, that there is no
//!   import circle, and that no function runs past 80 lines without a reason written beside it.
//!   `ARCHITECTURE.md` says, for each folder, what it owns and what it must not touch.

pub mod cli;
pub mod cmd;
pub mod config;
pub mod digest;
pub mod engine;
pub mod format;
pub mod progress;
pub mod report;
pub mod signals;

use std::io::Write;

use crate::config::Command;
pub use crate::config::Config;
use crate::report::Report;

/// Runs the command in `config`, writing results to `out` and diagnostics to `err`.
///
/// Per-file failures are reported on `err` and counted in the returned [`Report`]; an `Err`
/// means the run itself could not go on (for example `out` cannot be written).
pub fn run(config: &Config, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<Report> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(config.jobs)
        .thread_name(|i| format!("sumpool-worker-{i}"))
        .build()
        .map_err(|e| {
            // rayon's message already quotes the OS error, which is also its source.
            let why = std::error::Error::source(&e)
                .and_then(|source| source.downcast_ref::<std::io::Error>())
                .map_or_else(|| e.to_string(), report::io_reason);
            anyhow::anyhow!("cannot start worker threads: {why}")
        })?;
    match &config.command {
        Command::Hash(hash) => cmd::hash::run(config, hash, &pool, out, err),
        Command::Check(check) => cmd::check::run(config, check, &pool, out, err),
        Command::Audit(audit) => cmd::audit::run(config, audit, &pool, out, err),
        Command::Merge(merge) => cmd::merge::run(merge, out, err),
    }
}
