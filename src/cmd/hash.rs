//! `sumpool hash`: walk the inputs, hash on the pool, and write the manifest.
//!
//! This module ties the pipeline together for one run: it builds the stream of inputs
//! (arguments, then `--files-from`), runs the walk through `pool` with `lanes` as the work, and
//! on the calling thread writes each result, in walk order, as a checksum line or a JSON
//! object, reports failures, keeps the [`Report`] and drives the progress bar. With `-o` the
//! manifest goes to a temporary file beside the target, renamed over it only when the run
//! completed, so a reader never sees half a manifest; the manifest is never hashed into itself.

use std::fs;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

use crate::config::{Config, Format, HashConfig};
use crate::digest::Algorithm;
use crate::engine::lanes::{HashJob, Plan};
use crate::engine::pool::{self, Completion};
use crate::engine::read::{HashOptions, Hashed};
use crate::engine::source::FileId;
use crate::engine::walk::{Entry, Input, Skip, Walk, WalkOptions, list_inputs};
use crate::format::json;
use crate::format::line::{format_line, path_bytes};
use crate::progress::{Counter, Progress, ProgressStderr, Totals};
use crate::report::{Failure, Report};

/// The result of one walk entry after the worker is done with it.
enum Outcome {
    Hashed(Hashed),
    Failed(Failure),
    Skipped(Skip),
}

/// The stream of inputs of a run: the arguments, then the `--files-from` list.
fn inputs(hash: &HashConfig) -> anyhow::Result<Box<dyn Iterator<Item = Input>>> {
    let args = hash.inputs.clone().into_iter().map(Ok);
    Ok(match &hash.files_from {
        Some(from) => {
            let listed = list_inputs(&from.list, from.null)
                .with_context(|| from.list.display().to_string())?;
            Box::new(args.chain(listed))
        }
        None => Box::new(args),
    })
}

/// Counts files and bytes ahead of the run, for the progress bar's ETA; `None` when the
/// inputs cannot be read twice (standard input).
fn counter(hash: &HashConfig) -> Option<Counter> {
    if hash
        .files_from
        .as_ref()
        .is_some_and(|from| from.list.as_os_str() == "-")
    {
        return None;
    }
    let hash = hash.clone();
    Some(Box::new(move |totals: &Totals| {
        let Ok(inputs) = inputs(&hash) else { return };
        // The counting walk must not take directory handles from the real one.
        let options = WalkOptions {
            dir_handles: false,
            ..hash.walk.clone()
        };
        for entry in Walk::new(inputs, options) {
            if let Entry::Hash(source) = entry {
                totals
                    .files
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if let Ok(meta) = fs::metadata(source.name()) {
                    totals
                        .bytes
                        .fetch_add(meta.len(), std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    }))
}

/// The manifest being written with `-o`: a temporary file in the target's directory.
struct AtomicOutput {
    temp: tempfile::NamedTempFile,
    target: PathBuf,
}

impl AtomicOutput {
    fn create(target: &Path) -> anyhow::Result<AtomicOutput> {
        let dir = match target.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let temp = tempfile::Builder::new()
            .prefix(".sumpool-")
            .suffix(".tmp")
            // As a plain `create` would make it, before the umask.
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .tempfile_in(dir)
            .with_context(|| target.display().to_string())?;
        Ok(AtomicOutput {
            temp,
            target: target.to_path_buf(),
        })
    }

    /// The files the run must not hash: the temporary file, and the target if it exists.
    fn identities(&self) -> Vec<FileId> {
        let mut ids = Vec::new();
        if let Ok(id) = FileId::of(self.temp.as_file()) {
            ids.push(id);
        }
        if let Ok(id) = fs::File::open(&self.target).and_then(|file| FileId::of(&file)) {
            ids.push(id);
        }
        ids
    }

    /// Makes the manifest durable, then puts it in place in one rename.
    fn commit(self) -> anyhow::Result<()> {
        let target = self.target.display().to_string();
        self.temp
            .as_file()
            .sync_all()
            .with_context(|| target.clone())?;
        self.temp
            .persist(&self.target)
            .map_err(|e| e.error)
            .with_context(|| target)?;
        Ok(())
    }
}

/// Runs `sumpool hash`: results to `out` (or the `-o` file), diagnostics to `err`.
pub fn run(
    config: &Config,
    hash: &HashConfig,
    pool: &rayon::ThreadPool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let atomic = hash
        .output
        .as_deref()
        .map(AtomicOutput::create)
        .transpose()?;
    let mut options = hash.hash.clone();
    if let Some(atomic) = &atomic {
        options.skip.extend(atomic.identities());
    }
    let mut file_out = atomic
        .as_ref()
        .map(|a| BufWriter::with_capacity(64 * 1024, a.temp.as_file()));
    let out: &mut dyn Write = match &mut file_out {
        Some(file_out) => file_out,
        None => out,
    };
    let stdout_shares_terminal = atomic.is_none() && io::stdout().is_terminal();
    let mut progress = Progress::start(hash.progress, stdout_shares_terminal, true, counter(hash));
    let printed = hash_all(config, hash, &options, pool, out, err, &progress);
    progress.finish();
    let report = printed?;
    if report.interrupted.is_some() || report.output_closed {
        // Dropping the temporary file deletes it: an interrupted run leaves no manifest.
        return Ok(report);
    }
    if hash.format == Format::Json {
        let summary = json::HashSummary {
            files: report.hashed,
            bytes: report.bytes,
            failed: report.failed,
            skipped_symlinks: report.skipped_symlinks,
            skipped_special: report.skipped_special,
            excluded: report.excluded,
            seconds: started.elapsed().as_secs_f64(),
        };
        json::write_hash_summary(out, &summary)
            .and_then(|()| out.flush())
            .with_context(|| output_name(hash))?;
    }
    drop(file_out);
    if let Some(atomic) = atomic {
        atomic.commit()?;
    }
    report.write_summary(err);
    if hash.verbose {
        report.write_verbose(err, started.elapsed());
    }
    Ok(report)
}

/// How the destination of the manifest is named in messages.
fn output_name(hash: &HashConfig) -> String {
    hash.output
        .as_ref()
        .map_or("standard output".to_owned(), |p| p.display().to_string())
}

/// The pipeline itself: walk, hash, write in order.
fn hash_all(
    config: &Config,
    hash: &HashConfig,
    options: &HashOptions,
    pool: &rayon::ThreadPool,
    out: &mut dyn Write,
    err: &mut dyn Write,
    progress: &Progress,
) -> anyhow::Result<Report> {
    let walk = Walk::new(inputs(hash)?, hash.walk.clone());
    let plan = |entry: Entry| match entry {
        Entry::Hash(source) => Plan::Hash {
            source,
            algorithm: options.algorithm,
            then: Box::new(|hashed| match hashed {
                Ok(Some(hashed)) => Outcome::Hashed(hashed),
                // The manifest being written, met in the walk.
                Ok(None) => Outcome::Skipped(Skip::Excluded),
                Err(failure) => Outcome::Failed(failure),
            }),
        },
        Entry::Failed(failure) => Plan::Done(Outcome::Failed(failure)),
        Entry::Skipped(skip) => Plan::Done(Outcome::Skipped(skip)),
    };
    let work = HashJob::new(plan, &options.skip, config.tuning.lanes);
    // Messages must not be overwritten by the bar: when it is shown, they go around it.
    let mut printer = Printer {
        format: hash.format,
        algorithm: options.algorithm,
        out: &mut *out,
        err: progress.stderr(err),
        progress,
        report: Report::default(),
        line: Vec::with_capacity(256),
    };
    let printed = pool::run_ordered(pool, config.tuning, walk, work, |outcome| {
        printer.print(outcome)
    });
    let mut report = printer.report;
    match printed.and_then(|completion| out.flush().map(|()| completion)) {
        Ok(Completion::Finished) => {}
        Ok(Completion::Interrupted(signal)) => report.interrupted = Some(signal),
        // The reader of stdout went away (`| head`): stop quietly, like ripgrep, keeping the
        // status earned so far.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => report.output_closed = true,
        Err(e) => return Err(e).context(output_name(hash)),
    }
    Ok(report)
}

/// Writes each outcome, in walk order, as a checksum line or a JSON object, and keeps the
/// report: the one place where `hash` prints.
struct Printer<'a> {
    format: Format,
    algorithm: Algorithm,
    out: &'a mut dyn Write,
    err: ProgressStderr<'a>,
    progress: &'a Progress,
    report: Report,
    /// The line being written, reused.
    line: Vec<u8>,
}

impl Printer<'_> {
    fn print(&mut self, outcome: Outcome) -> io::Result<()> {
        let report = &mut self.report;
        match outcome {
            Outcome::Hashed(hashed) => {
                match &self.format {
                    Format::Text(format) => {
                        self.line.clear();
                        format_line(
                            &mut self.line,
                            format,
                            hashed.digest.as_bytes(),
                            path_bytes(&hashed.name),
                        );
                        self.out.write_all(&self.line)?;
                    }
                    Format::Json => json::write_file(
                        self.out,
                        &hashed.name,
                        self.algorithm,
                        &hashed.digest,
                        hashed.bytes,
                    )?,
                }
                report.hashed += 1;
                report.bytes += hashed.bytes;
                self.progress.advance(hashed.bytes);
            }
            Outcome::Failed(failure) => {
                // Lines already printed must reach the reader before the message that
                // follows them, so a terminal shows both in order.
                self.out.flush()?;
                report.fail(&mut self.err, &failure);
                if self.format == Format::Json {
                    let (kind, message) = (failure.reason.kind(), failure.reason.to_string());
                    json::write_failure(self.out, &failure.path, kind, message)?;
                }
                self.progress.advance(0);
            }
            Outcome::Skipped(Skip::Symlink) => report.skipped_symlinks += 1,
            Outcome::Skipped(Skip::Special) => report.skipped_special += 1,
            Outcome::Skipped(Skip::Excluded) => report.excluded += 1,
        }
        Ok(())
    }
}
