//! `sumpool hash`: walk the inputs, hash on the pool, and write the manifest.
//!
//! This module ties the pipeline together for one run: it builds the stream of inputs
//! (arguments, then `--files-from`), runs the walk through `pool` with `lanes` as the work, and
//! on the calling thread writes each result, in walk order, as a checksum line or a JSON
//! object, reports failures, keeps the [`Report`] and drives the progress bar. With `-o` the
//! manifest goes to a temporary file beside the target, renamed over it only when the run
//! completed ([`output`]), so a reader never sees half a manifest; the manifest is never
//! hashed into itself. With `--update`, [`update`] decides which files need reading and what
//! state each line records.

mod output;
pub mod update;

use std::fs;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use crate::config::{Config, Format, HashConfig, UpdateConfig};
use crate::digest::Algorithms;
use crate::engine::load::load_manifest;
use crate::engine::policy::{self, IoPolicy};
use crate::engine::pool::{self, Completion, Engine, Plan, Sink, Tagged, Then};
use crate::engine::read::{Hashed, Hashing};
use crate::engine::walk::{Entry, Input, Skip, Walk, WalkOptions, list_inputs};
use crate::format::json;
use crate::format::line::{LineFormat, format_line, path_bytes};
use crate::format::manifest::Manifest;
use crate::progress::{Counter, Progress, ProgressStderr, Totals};
use crate::report::{Failure, PROGRAM, Report, write_message};

use output::AtomicOutput;
use update::{Scan, Status, UpdateCounts, Updated, Updater};

/// The result of one walk entry after the worker is done with it.
enum Outcome {
    /// Hashed (plain `hash`).
    Hashed(Hashed),
    /// A line of the updated manifest (`--update`). Not boxed, although it is the largest
    /// (about 250 bytes): copying it on its way to the printing thread costs less than an
    /// allocation per file made on a reader and freed here, on another thread.
    Updated(Updated),
    Failed(Failure),
    Skipped(Skip),
}

/// The stream of inputs of a run: the arguments, then the `--files-from` list.
fn inputs(hash: &HashConfig) -> anyhow::Result<Box<dyn Iterator<Item = Input> + Send>> {
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

/// Runs `sumpool hash`: results to `out` (or the `-o` file), diagnostics to `err`.
pub fn run(
    config: &Config,
    hash: &HashConfig,
    pool: &rayon::ThreadPool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let target = match &hash.update {
        Some(update) => Some(update.manifest.as_path()),
        None => hash.output.as_deref(),
    };
    let atomic = target.map(AtomicOutput::create).transpose()?;
    let walk = Walk::new(inputs(hash)?, hash.walk.clone());
    let mut options = hash.hash.clone();
    if let Some(atomic) = &atomic {
        options.skip.extend(atomic.identities());
    }
    let updater = read_old_manifest(hash, atomic.as_ref(), pool, err)?;
    let mut file_out = atomic
        .as_ref()
        .map(|a| BufWriter::with_capacity(64 * 1024, a.temp.as_file()));
    let (lines, json) = sinks(hash, file_out.as_mut(), out);
    let stdout_shares_terminal = target.is_none() && io::stdout().is_terminal();
    let mut progress = Progress::start(hash.progress, stdout_shares_terminal, true, counter(hash));
    let mut printer = Printer {
        algorithms: options.algorithm,
        lines,
        json,
        failed_sink: None,
        err: progress.stderr(err),
        progress: &progress,
        report: Report::default(),
        counts: UpdateCounts::default(),
        line: Vec::with_capacity(512),
        scratch: Vec::with_capacity(512),
    };
    let engine = Engine {
        pool,
        tuning: config.tuning,
        io: io_policy(config, hash),
        skip: options.skip.clone(),
    };
    let printed = hash_all(
        &engine,
        walk,
        options.algorithm,
        updater.as_ref(),
        &mut printer,
    );
    let mut counts = printer.counts;
    if let Some(updater) = &updater {
        counts.dropped = (updater.manifest().len() as u64).saturating_sub(printer.listed_seen());
    }
    let report = match printed {
        Ok(report) => report,
        Err(e) => return Err(e).context(sink_name(hash, printer.failed_sink)),
    };
    if report.interrupted.is_some() || report.output_closed {
        // Dropping the temporary file deletes it: an interrupted run leaves no manifest.
        progress.finish();
        return Ok(report);
    }
    let update = updater.is_some().then_some(counts);
    if let Some(json) = &mut printer.json {
        json_summary(json, hash, &report, update, started)?;
    }
    drop(printer);
    progress.finish();
    drop(file_out);
    if let Some(atomic) = atomic {
        atomic.commit()?;
    }
    let verbose = hash.verbose.then_some((started, engine.io.reason.as_str()));
    write_end_messages(err, &report, update, verbose);
    if hash.verbose {
        write_algorithms(err, options.algorithm, config);
    }
    Ok(report)
}

/// The `-v` line naming the code each algorithm ran.
fn write_algorithms(err: &mut dyn Write, algorithms: Algorithms, config: &Config) {
    // The multi-buffer lanes run SHA-256 alone (`engine::lanes`).
    let lanes = if algorithms == Algorithms::SHA256 {
        config
            .tuning
            .lanes
            .clamp(1, crate::engine::multibuf::MAX_LANES)
    } else {
        1
    };
    super::write_implementations(err, algorithms.as_slice(), lanes);
}

/// The JSON summary line at the end of the run.
fn json_summary(
    json: &mut dyn Write,
    hash: &HashConfig,
    report: &Report,
    update: Option<UpdateCounts>,
    started: Instant,
) -> anyhow::Result<()> {
    let seconds = started.elapsed().as_secs_f64();
    match write_json_summary(json, report, update, seconds) {
        // With --update the manifest is the output that matters: a closed pipe is no error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe && hash.update.is_some() => Ok(()),
        written => written.with_context(|| sink_name(hash, Some(Destination::Json))),
    }
}

/// How to read: from the device of the first input, and the command line.
fn io_policy(config: &Config, hash: &HashConfig) -> IoPolicy {
    let probe = hash.inputs.first().map_or(Path::new("."), PathBuf::as_path);
    policy::for_path(probe, config.io.readers, config.io.stall_timeout)
}

/// Where checksum lines go (with their format), and where JSON objects go: stdout, or the
/// `-o` file; with `--update`, lines to the manifest and JSON (if asked for) to stdout.
fn sinks<'a>(
    hash: &HashConfig,
    file: Option<&'a mut BufWriter<&fs::File>>,
    out: &'a mut dyn Write,
) -> (Option<LineSink<'a>>, Option<&'a mut dyn Write>) {
    match (&hash.update, file, hash.format) {
        (Some(update), Some(file), Format::Json) => (Some((update.lines, file)), Some(out)),
        (Some(update), Some(file), Format::Text(_)) => (Some((update.lines, file)), None),
        (_, Some(file), Format::Text(format)) => (Some((format, file)), None),
        (_, Some(file), Format::Json) => (None, Some(file)),
        (_, None, Format::Text(format)) => (Some((format, out)), None),
        (_, None, Format::Json) => (None, Some(out)),
    }
}

/// The JSON summary object, and a flush.
fn write_json_summary(
    json: &mut dyn Write,
    report: &Report,
    update: Option<UpdateCounts>,
    seconds: f64,
) -> io::Result<()> {
    let summary = json::HashSummary {
        files: report.hashed,
        bytes: report.bytes,
        failed: report.failed,
        skipped_symlinks: report.skipped_symlinks,
        skipped_special: report.skipped_special,
        excluded: report.excluded,
        seconds,
        update,
    };
    json::write_hash_summary(json, &summary)?;
    json.flush()
}

/// What stderr says at the end: the failure summary, corruption, and with `-v` (given the
/// start of the run and how it read) the counts.
fn write_end_messages(
    err: &mut dyn Write,
    report: &Report,
    update: Option<UpdateCounts>,
    verbose: Option<(Instant, &str)>,
) {
    report.write_summary(err);
    if report.corrupt > 0 {
        let n = report.corrupt;
        let (files, are) = if n == 1 {
            ("file", "is")
        } else {
            ("files", "are")
        };
        let _ = writeln!(
            err,
            "{PROGRAM}: WARNING: {n} {files} {are} corrupt: bytes changed under an unchanged size, time and inode"
        );
    }
    if let Some((started, io)) = verbose {
        if let Some(counts) = &update {
            write_update_verbose(err, counts);
        }
        report.write_verbose(err, started.elapsed());
        let _ = writeln!(err, "{PROGRAM}: I/O: {io}");
    }
}

/// Reads the manifest `--update` starts from (none yet is an empty one) and prepares the
/// decisions. The scan starts now, as the clock and the manifest's file system tell it.
fn read_old_manifest(
    hash: &HashConfig,
    atomic: Option<&AtomicOutput>,
    pool: &rayon::ThreadPool,
    err: &mut dyn Write,
) -> anyhow::Result<Option<Arc<Updater>>> {
    let (Some(update), Some(atomic)) = (&hash.update, atomic) else {
        return Ok(None);
    };
    let name = || update.manifest.display().to_string();
    let scan = Scan::begin(atomic.created());
    // `cli` lets --update keep one algorithm only.
    let algorithm = hash.hash.algorithm.first();
    let manifest = match fs::File::open(&update.manifest) {
        Ok(file) => load_manifest(file, algorithm, update.lines.zero, pool).with_context(name)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Manifest::empty(algorithm),
        Err(e) => return Err(e).with_context(name),
    };
    let updater = Updater::new(manifest, update.scrub, scan);
    warn_bad_lines(&updater, update, err);
    Ok(Some(Arc::new(updater)))
}

/// Says how many lines of the old manifest could not be read (their files are hashed anew).
fn warn_bad_lines(updater: &Updater, update: &UpdateConfig, err: &mut dyn Write) {
    let n = updater.manifest().bad_lines();
    if n > 0 {
        let lines = if n == 1 { "line is" } else { "lines are" };
        let _ = writeln!(
            err,
            "{PROGRAM}: WARNING: {n} {lines} improperly formatted or of another algorithm in {}; its files are hashed anew",
            update.manifest.display()
        );
    }
}

/// The `-v` line of an update: why files were or were not read. (The line after it counts
/// every file of the new manifest as hashed, and the bytes actually read.)
fn write_update_verbose(err: &mut dyn Write, c: &UpdateCounts) {
    let _ = writeln!(
        err,
        "{PROGRAM}: update: {} files: {} reused, {} hashed ({} new, {} modified, {} racy, {} without state), {} scrubbed, {} corrupt; {} dropped",
        c.files(),
        c.reused,
        c.hashed(),
        c.new,
        c.modified,
        c.racy,
        c.without_state,
        c.scrubbed,
        c.corrupt,
        c.dropped
    );
}

/// Where checksum lines go, and their format.
type LineSink<'a> = (LineFormat, &'a mut dyn Write);

/// Where output goes, to name it in an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Destination {
    Lines,
    Json,
}

/// How the destination that failed is named in messages.
fn sink_name(hash: &HashConfig, sink: Option<Destination>) -> String {
    let file = match (&hash.update, &hash.output) {
        (Some(update), _) => Some(&update.manifest),
        (None, Some(output)) => Some(output),
        (None, None) => None,
    };
    let to_stdout = match sink {
        Some(Destination::Json) => hash.update.is_some() || file.is_none(),
        _ => file.is_none(),
    };
    match file {
        Some(file) if !to_stdout => file.display().to_string(),
        _ => "standard output".to_owned(),
    }
}

/// The pipeline itself: walk, hash, write in order.
fn hash_all(
    engine: &Engine<'_>,
    walk: Walk,
    algorithm: Algorithms,
    updater: Option<&Arc<Updater>>,
    printer: &mut Printer,
) -> io::Result<Report> {
    let update = updater.map(|updater| {
        let shared = Arc::clone(updater);
        let decide: Tagged<Outcome> =
            Arc::new(move |tag, result| match shared.decide(tag, result) {
                Ok(Some(updated)) => Outcome::Updated(updated),
                Ok(None) => Outcome::Skipped(Skip::Excluded),
                Err(failure) => Outcome::Failed(failure),
            });
        (updater, decide)
    });
    let plan = |entry: Entry| match entry {
        Entry::Hash(source) => match &update {
            Some((updater, decide)) => {
                let (unless, tag) = updater.prepare(&source);
                Plan::Hash {
                    source,
                    algorithm,
                    unless,
                    then: Then::Tagged(Arc::clone(decide), tag),
                }
            }
            None => Plan::Hash {
                source,
                algorithm,
                unless: None,
                then: Then::Own(Box::new(|hashed| match hashed {
                    Ok(Hashing::Hashed(hashed)) => Outcome::Hashed(hashed),
                    // The manifest being written, met in the walk (and no state is recorded).
                    Ok(Hashing::Skipped | Hashing::Unchanged { .. }) => {
                        Outcome::Skipped(Skip::Excluded)
                    }
                    Err(failure) => Outcome::Failed(failure),
                })),
            },
        },
        Entry::Failed(failure) => Plan::Done(Outcome::Failed(failure)),
        Entry::Skipped(skip) => Plan::Done(Outcome::Skipped(skip)),
    };
    let printed = pool::run(engine, walk, plan, printer);
    let mut report = std::mem::take(&mut printer.report);
    match printed.and_then(|completion| printer.flush().map(|()| completion)) {
        Ok(Completion::Finished) => {}
        Ok(Completion::Interrupted(signal)) => report.interrupted = Some(signal),
        // The reader of stdout went away (`| head`): stop quietly, like ripgrep, keeping the
        // status earned so far.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => report.output_closed = true,
        Err(e) => return Err(e),
    }
    Ok(report)
}

/// Writes each outcome, in walk order, as a checksum line (with its state line, for
/// `--update`) and as a JSON object, and keeps the report: the one place where `hash` prints.
struct Printer<'a> {
    /// The run's algorithms: one line each per file, in this order.
    algorithms: Algorithms,
    /// Where checksum lines go, and their format.
    lines: Option<LineSink<'a>>,
    /// Where JSON objects go.
    json: Option<&'a mut dyn Write>,
    /// The output whose write failed, to name it.
    failed_sink: Option<Destination>,
    err: ProgressStderr<'a>,
    progress: &'a Progress,
    report: Report,
    /// Why files were or were not read (`--update`).
    counts: UpdateCounts,
    /// The line being written, reused.
    line: Vec<u8>,
    /// The digest line a state line is bound to, reused (`--update`).
    scratch: Vec<u8>,
}

impl Sink<Outcome> for Printer<'_> {
    type Error = io::Error;

    fn put(&mut self, outcome: Outcome) -> io::Result<()> {
        self.print(outcome)
    }

    fn flush(&mut self) -> io::Result<()> {
        Printer::flush(self)
    }
}

impl Printer<'_> {
    fn print(&mut self, outcome: Outcome) -> io::Result<()> {
        match outcome {
            Outcome::Hashed(hashed) => self.print_hashed(&hashed)?,
            Outcome::Updated(updated) => self.print_updated(&updated)?,
            Outcome::Failed(failure) => {
                // Lines already printed must reach the reader before the message that
                // follows them, so a terminal shows both in order.
                self.flush()?;
                self.report.fail(&mut self.err, &failure);
                if let Some(json) = &mut self.json {
                    let (kind, message) = (failure.reason.kind(), failure.reason.to_string());
                    json::write_failure(*json, &failure.path, kind, message)
                        .inspect_err(|_| self.failed_sink = Some(Destination::Json))?;
                }
                self.progress.advance(0);
            }
            Outcome::Skipped(Skip::Symlink) => self.report.skipped_symlinks += 1,
            Outcome::Skipped(Skip::Special) => self.report.skipped_special += 1,
            Outcome::Skipped(Skip::Excluded) => self.report.excluded += 1,
        }
        Ok(())
    }

    fn print_hashed(&mut self, hashed: &Hashed) -> io::Result<()> {
        if let Some((format, out)) = &mut self.lines {
            self.line.clear();
            let name = path_bytes(&hashed.name);
            for (algorithm, digest) in hashed.digest.iter() {
                format_line(&mut self.line, format, algorithm, digest, name);
            }
            out.write_all(&self.line)
                .inspect_err(|_| self.failed_sink = Some(Destination::Lines))?;
        }
        if let Some(json) = &mut self.json {
            json::write_file(*json, &hashed.name, &hashed.digest, hashed.bytes)
                .inspect_err(|_| self.failed_sink = Some(Destination::Json))?;
        }
        self.report.hashed += 1;
        self.report.bytes += hashed.bytes;
        self.progress.advance(hashed.bytes);
        Ok(())
    }

    /// A line of the updated manifest: its state line first, bound to it.
    fn print_updated(&mut self, updated: &Updated) -> io::Result<()> {
        if let Some((format, out)) = &mut self.lines {
            self.line.clear();
            let algorithm = self.algorithms.first();
            updated.write_lines(format, algorithm, &mut self.scratch, &mut self.line);
            out.write_all(&self.line)
                .inspect_err(|_| self.failed_sink = Some(Destination::Lines))?;
        }
        if let Some(json) = &mut self.json {
            let status = updated.status.word();
            let file = json::UpdatedFile {
                path: &updated.name,
                algorithm: self.algorithms.first(),
                digest: &updated.digest,
                size: updated.size,
                status,
                found: updated.found.as_ref(),
            };
            json::write_updated(*json, &file)
                .inspect_err(|_| self.failed_sink = Some(Destination::Json))?;
        }
        if updated.status == Status::Corrupt {
            self.flush()?;
            let message = "corrupt: its bytes changed while its size, times and inode did not; the recorded digest is kept";
            write_message(&mut self.err, &updated.name, &message);
            self.report.corrupt += 1;
        }
        self.counts.count(updated.status);
        self.report.hashed += 1;
        self.report.bytes += updated.bytes;
        self.progress.advance(updated.size);
        Ok(())
    }

    /// How many files of the old manifest the walk met: every line written, since each name
    /// appears once in a walk.
    fn listed_seen(&self) -> u64 {
        self.counts.reused
            + self.counts.modified
            + self.counts.racy
            + self.counts.without_state
            + self.counts.scrubbed
            + self.counts.corrupt
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some((_, out)) = &mut self.lines {
            out.flush()
                .inspect_err(|_| self.failed_sink = Some(Destination::Lines))?;
        }
        if let Some(json) = &mut self.json {
            json.flush()
                .inspect_err(|_| self.failed_sink = Some(Destination::Json))?;
        }
        Ok(())
    }
}
