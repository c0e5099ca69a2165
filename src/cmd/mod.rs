//! The subcommands, one module each: what the user asked for, start to finish.
//!
//! A command takes its settings from [`crate::config`], builds the stream of work (a walk, a
//! checksum list, shard manifests), runs it on the [`crate::engine`], and is the one place
//! that writes its results (with [`crate::format`]) and records failures (in a
//! [`crate::report::Report`]). Every command has the same entry point, `run`, returning the
//! report that decides the exit code.
//!
//! Commands never import each other: what two of them need (the checksum-line parser, the
//! walk, the pool) lives a floor below, in `engine` or `format`.

pub mod audit;
pub mod check;
pub mod hash;
pub mod merge;

use std::io::Write;

use crate::digest::Algorithm;
use crate::report::PROGRAM;

/// Writes the `-v` line that says which code computed each algorithm of the run, as
/// `--version` lists them for this CPU: `sumpool: algorithms: sha256 (SHA extensions, 4 files
/// per core), md5 (portable)`. `sha256_lanes` is how many files per core SHA-256 ran on the
/// multi-buffer lanes (1: none; only SHA-256 alone runs there).
pub fn write_implementations(err: &mut dyn Write, algorithms: &[Algorithm], sha256_lanes: usize) {
    let described: Vec<String> = algorithms
        .iter()
        .map(|&algorithm| {
            let lanes = if sha256_lanes > 1 && algorithm == Algorithm::Sha256 {
                format!(", {sha256_lanes} files per core")
            } else {
                String::new()
            };
            format!("{algorithm} ({}{lanes})", algorithm.implementation())
        })
        .collect();
    let _ = writeln!(err, "{PROGRAM}: algorithms: {}", described.join(", "));
}
