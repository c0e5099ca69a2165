//! sumpool checksums large trees of files with SHA-256 (or SHA-224/384/512) on a pool of
//! threads and prints lines byte-identical to GNU coreutils `sha256sum`, so its output can be
//! verified by `sha256sum -c`; it also verifies lists ([`check`]), compares a tree with a
//! manifest ([`audit`]) and merges shard manifests ([`merge`]).
//!
//! The crate is a library with a thin binary: `main` parses the command line into a
//! [`Config`] and calls [`run`]. The work is a pipeline: [`walk`] turns inputs into an ordered
//! stream of entries, [`pool`] hashes them on worker threads with [`lanes`] (several files at
//! once per core, through [`multibuf`]) and [`hash`] and hands results back in order, and the calling thread alone writes lines with [`output`] (or [`json`]) and
//! failures with [`report`]; [`manifest`] ties it together for `hash`.

pub mod audit;
pub mod check;
pub mod cli;
pub mod config;
pub mod digest;
pub mod hash;
pub mod json;
pub mod lanes;
pub mod manifest;
pub mod mapped;
pub mod merge;
pub mod multibuf;
pub mod output;
pub mod pool;
pub mod progress;
pub mod quote;
pub mod records;
pub mod report;
pub mod signals;
pub mod walk;

use std::io::{self, Write};

use anyhow::Context;

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
        .context("cannot start worker threads")?;
    match &config.command {
        Command::Hash(hash) => manifest::run(config, hash, &pool, out, err),
        Command::Audit(audit) => audit::run(config, audit, &pool, out, err),
        Command::Merge(merge) => {
            let mut report = Report::default();
            match merge::run_merge(&merge.inputs, merge.zero, out) {
                Ok(()) => {}
                Err(e) if is_broken_pipe(&e) => report.output_closed = true,
                Err(e) => return Err(e),
            }
            Ok(report)
        }
        Command::Check(check) => {
            let mut report = Report::default();
            match check::run_check(check, &pool, config.tuning, out, err) {
                Ok(check::CheckOutcome::Checked(true)) => {}
                // The lists' own warnings were printed; this only sets the exit status.
                Ok(check::CheckOutcome::Checked(false)) => report.failed += 1,
                Ok(check::CheckOutcome::Interrupted(signal)) => report.interrupted = Some(signal),
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => report.output_closed = true,
                Err(e) => return Err(e).context("standard output"),
            }
            Ok(report)
        }
    }
}

/// Whether any cause of `error` is a write into a pipe whose reader has gone.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
