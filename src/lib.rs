//! sumpool checksums large trees of files with SHA-256 on a pool of threads and prints lines
//! byte-identical to GNU coreutils `sha256sum`, so its output can be verified by
//! `sha256sum -c`.
//!
//! The crate is a library with a thin binary: `main` parses the command line into a
//! [`Config`] and calls [`run`]. The work is a pipeline: [`walk`] turns inputs into an ordered
//! stream of entries, [`pool`] hashes them on worker threads with [`hash`] and hands results
//! back in order, and the calling thread alone writes lines with [`output`] and failures with
//! [`report`].

pub mod check;
pub mod cli;
pub mod config;
pub mod hash;
pub mod mapped;
pub mod output;
pub mod pool;
pub mod quote;
pub mod report;
pub mod signals;
pub mod walk;

use std::io::{self, Write};

use anyhow::Context;

pub use crate::config::Config;
use crate::config::{Command, HashConfig};
use crate::hash::{Hashed, hash_source};
use crate::output::format_line;
use crate::report::{Failure, Report};
use crate::walk::{Entry, Skip, Walk};

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
        Command::Hash(hash) => run_hash(config, hash, &pool, out, err),
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

/// The result of one walk entry after the worker is done with it.
enum Outcome {
    Hashed(Hashed),
    Failed(Failure),
    Skipped(Skip),
}

fn run_hash(
    config: &Config,
    hash: &HashConfig,
    pool: &rayon::ThreadPool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Report> {
    let started = std::time::Instant::now();
    let walk = Walk::new(hash.inputs.clone(), hash.walk);
    let work = |entry: Entry| match entry {
        Entry::Hash(source) => match hash_source(source) {
            Ok(hashed) => Outcome::Hashed(hashed),
            Err(failure) => Outcome::Failed(failure),
        },
        Entry::Failed(failure) => Outcome::Failed(failure),
        Entry::Skipped(skip) => Outcome::Skipped(skip),
    };
    let mut report = Report::default();
    let mut line = Vec::with_capacity(256);
    let printed = pool::run_ordered(pool, config.tuning, walk, work, |outcome| {
        match outcome {
            Outcome::Hashed(hashed) => {
                line.clear();
                format_line(
                    &mut line,
                    &hash.format,
                    &hashed.digest,
                    output::path_bytes(&hashed.name),
                );
                out.write_all(&line)?;
                report.hashed += 1;
                report.bytes += hashed.bytes;
            }
            Outcome::Failed(failure) => {
                // Lines already printed must reach the reader before the message that
                // follows them, so a terminal shows both in order.
                out.flush()?;
                report.fail(err, &failure);
            }
            Outcome::Skipped(Skip::Symlink) => report.skipped_symlinks += 1,
            Outcome::Skipped(Skip::Special) => report.skipped_special += 1,
        }
        Ok::<(), io::Error>(())
    });
    match printed.and_then(|completion| out.flush().map(|()| completion)) {
        Ok(pool::Completion::Finished) => {}
        Ok(pool::Completion::Interrupted(signal)) => {
            report.interrupted = Some(signal);
            return Ok(report);
        }
        // The reader of stdout went away (`| head`): stop quietly, like ripgrep, keeping the
        // status earned so far.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => report.output_closed = true,
        Err(e) => return Err(e).context("standard output"),
    }
    if !report.output_closed {
        report.write_summary(err);
        if hash.verbose {
            report.write_verbose(err, started.elapsed());
        }
    }
    Ok(report)
}
