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

mod checkpoint;
mod counts;
mod kept;
mod output;
mod printer;
mod resume;
pub mod update;

use std::fs;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::config::{Config, Format, HashConfig};
use crate::digest::Algorithms;
use crate::engine::load::load_manifest;
use crate::engine::policy::{self, IoPolicy};
use crate::engine::read::{Hashed, Hashing};
use crate::engine::run::{self as pool, Completion, Deadline, Engine, Limits, Plan, Tagged, Then};
use crate::engine::source::OwnFiles;
use crate::engine::walk::{Entry, Input, Scope, Skip, Walk, WalkOptions, list_inputs};
use crate::format::entries::shard_line;
use crate::format::json;
use crate::format::line::LineFormat;
use crate::format::manifest::Manifest;
use crate::progress::{Counter, Progress, Totals};
use crate::report::{Failure, PROGRAM, Report, write_corrupt_warning};

use checkpoint::Checkpoints;
use kept::NewLines;
use output::{AtomicOutput, Purpose, Target};
use printer::Printer;
use resume::Item;
use update::{Scan, UNLISTED, UpdateCounts, Updated, Updater};

/// The result of one walk entry after the worker is done with it.
enum Outcome {
    /// Hashed (plain `hash`).
    Hashed(Hashed),
    /// A line of the updated manifest (`--update`). Not boxed, although it is the largest
    /// (about 250 bytes): copying it on its way to the printing thread costs less than an
    /// allocation per file made on a reader and freed here, on another thread.
    Updated(Updated),
    Failed(Failure),
    /// A file of the old manifest that could not be read (`--update`): the failure is
    /// reported, and its old line kept.
    Unread {
        failure: Failure,
        entry: u64,
    },
    /// A file of the old manifest never to hash (the manifest itself): its line goes.
    Dropped {
        entry: u64,
    },
    /// A temporary file of another sumpool run, met in the walk: said, not hashed.
    Unfinished(PathBuf),
    /// Not started: the run's time was up (`--max-duration`). Its old line, if any, is kept.
    NotReached,
    /// Not started: too long to read in a whole time box at the rate; said, and its old
    /// line, if any, kept.
    TooLong {
        name: PathBuf,
        bytes: u64,
    },
    /// The walk's first pass ended (`resume`).
    Wrapped,
    Skipped(Skip),
}

/// The stream of inputs of a run: the arguments, then the `--files-from` list; each one
/// recorded in `roots` as it is taken.
fn inputs(
    hash: &HashConfig,
    roots: Option<Roots>,
) -> anyhow::Result<Box<dyn Iterator<Item = Input> + Send>> {
    let args = hash.inputs.clone().into_iter().map(Ok);
    let all: Box<dyn Iterator<Item = Input> + Send> = match &hash.files_from {
        Some(from) => {
            let listed = list_inputs(&from.list, from.null)
                .with_context(|| from.list.display().to_string())?;
            Box::new(args.chain(listed))
        }
        None => Box::new(args),
    };
    Ok(match roots {
        Some(roots) => Box::new(all.inspect(move |input| roots.record(input))),
        None => all,
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
        let Ok(inputs) = inputs(&hash, None) else {
            return;
        };
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
    let target = open_target(hash)?;
    let own = OwnFiles::new(target.as_ref().map_or_else(Vec::new, Target::identities));
    let roots = Roots::default();
    let atomic = match &target {
        Some(Target::Atomic(atomic)) => Some(atomic),
        _ => None,
    };
    let updater = read_old_manifest(hash, atomic, pool)?;
    let loaded = started.elapsed();
    let items = items(hash, &own, &roots, updater.as_deref())?;
    let checkpoints = checkpoints(hash, atomic, updater.as_ref(), &own, loaded)?;
    let mut file_out = target.as_ref().and_then(Target::writer);
    let (lines, json) = sinks(hash, file_out.as_mut(), out);
    let to_stdout = matches!(target, None | Some(Target::Stdout));
    let stdout_shares_terminal = to_stdout && io::stdout().is_terminal();
    let mut progress = Progress::start(hash.progress, stdout_shares_terminal, true, counter(hash));
    let algorithm = hash.hash.algorithm;
    let mut printer = Printer::new(algorithm, (lines, json), &progress, err, updater.clone());
    printer.checkpoints = checkpoints;
    printer.temp = match (&hash.update, atomic) {
        (Some(_), Some(atomic)) => Some(atomic.file().try_clone()?),
        _ => None,
    };
    let engine = Engine::new(
        pool,
        config.tuning,
        io_policy(config, hash),
        Arc::clone(&own),
    )
    .with_limits(limits(config, hash, started));
    let printed = write_shard_line(hash, &mut printer)
        .and_then(|()| hash_all(&engine, items, algorithm, updater.as_ref(), &mut printer));
    let report = match printed {
        Ok(report) => report,
        Err(e) if pool::is_thread_error(&e) => return Err(e.into()),
        Err(e) => return Err(e).context(sink_name(hash, printer.failed_sink)),
    };
    // A checkpoint still being written goes in place before the end's manifest does.
    printer.finish_checkpoints();
    if report.interrupted.is_some() || report.output_closed {
        // Dropping the temporary file deletes it: an interrupted run leaves no manifest
        // (beyond its last checkpoint).
        progress.finish();
        return Ok(report);
    }
    let mut counts = printer.counts;
    let leftovers = leftovers(hash, updater.as_deref(), &printer.met, &roots, &mut counts);
    let update = updater.is_some().then_some(counts);
    if let Some(json) = &mut printer.json {
        json_summary(json, hash, &report, update, started)?;
    }
    let wrapped_at = printer.wrapped_at;
    drop(printer);
    progress.finish();
    drop(file_out);
    if let Some(Target::Atomic(atomic)) = target {
        commit(atomic, updater.as_deref(), leftovers, hash, wrapped_at)?;
    }
    let verbose = hash.verbose.then_some((started, engine.io.reason.as_str()));
    write_end_messages(err, &report, update, verbose);
    if let (Some(counts), Some(update)) = (&update, &hash.update) {
        counts::write_time_up(err, counts, update);
    }
    if hash.verbose {
        write_algorithms(err, algorithm, config);
        write_limits(err, &engine.limits, &report, started);
    }
    Ok(report)
}

/// What the run feeds the engine: the walk, from where the last time-boxed run stopped if
/// this one is time-boxed too (`resume`).
fn items(
    hash: &HashConfig,
    own: &Arc<OwnFiles>,
    roots: &Roots,
    updater: Option<&Updater>,
) -> anyhow::Result<Box<dyn Iterator<Item = Item> + Send>> {
    let options = WalkOptions {
        own: Arc::clone(own),
        ..hash.walk.clone()
    };
    let first = Walk::new(inputs(hash, Some(roots.clone()))?, options.clone());
    let timed = hash
        .update
        .as_ref()
        .is_some_and(|u| u.max_duration.is_some());
    // A list on standard input cannot be read twice.
    let list_on_stdin = hash
        .files_from
        .as_ref()
        .is_some_and(|from| from.list.as_os_str() == "-");
    let start = updater
        .filter(|_| timed && !list_on_stdin)
        .and_then(|updater| resume::resume_point(updater.manifest()));
    let Some(start) = start else {
        return Ok(Box::new(first.map(Item::Entry)));
    };
    let (hash, roots) = (hash.clone(), roots.clone());
    let again = move || match inputs(&hash, Some(roots.clone())) {
        Ok(inputs) => Ok(Walk::new(inputs, options.clone())),
        Err(e) => {
            let list = hash.files_from.as_ref().map(|f| f.list.clone());
            let reason = std::io::Error::other(format!("{e:#}"));
            Err(Failure::new(list.unwrap_or_default(), reason))
        }
    };
    Ok(Box::new(resume::Rotated::new(first, again, start)))
}

/// The checkpoints of an update that writes a manifest file, unless turned off.
fn checkpoints(
    hash: &HashConfig,
    atomic: Option<&AtomicOutput>,
    updater: Option<&Arc<Updater>>,
    own: &Arc<OwnFiles>,
    loaded: Duration,
) -> anyhow::Result<Option<Checkpoints>> {
    let (Some(update), Some(atomic), Some(updater)) = (&hash.update, atomic, updater) else {
        return Ok(None);
    };
    let Some(every) = update.checkpoint else {
        return Ok(None);
    };
    // The old manifest's size: what a checkpoint will write, about.
    let bytes = fs::metadata(&update.manifest).map_or(0, |m| m.len());
    let checkpoints = Checkpoints::new(
        (every, loaded, bytes),
        atomic,
        Arc::clone(updater),
        Arc::clone(own),
        (update.lines.zero, &update.manifest),
    )
    .with_context(|| update.manifest.display().to_string())?;
    Ok(Some(checkpoints))
}

/// The engine's limits: the I/O settings', and the time box of `--max-duration`.
fn limits(config: &Config, hash: &HashConfig, started: Instant) -> Limits {
    let most = hash.update.as_ref().and_then(|u| u.max_duration);
    Limits {
        deadline: most.map(|most| Deadline {
            at: started + most,
            grace: grace_for(most),
            length: most,
        }),
        ..config.io.limits()
    }
}

/// How long files in flight may finish once the time of `--max-duration` is up: 5% of it,
/// from 1 s to 1 min.
fn grace_for(most: Duration) -> Duration {
    (most / 20).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// The `-v` line of the limits in force, with the rate achieved.
fn write_limits(err: &mut dyn Write, limits: &Limits, report: &Report, started: Instant) {
    if limits.bwlimit.is_none() && !limits.nocache {
        return;
    }
    let mut said = Vec::new();
    if let Some(rate) = limits.bwlimit {
        let seconds = started.elapsed().as_secs_f64().max(1e-3);
        said.push(format!(
            "--bwlimit {:.1} MiB/s, hashed at {:.1} MiB/s",
            rate as f64 / (1 << 20) as f64,
            report.bytes as f64 / seconds / (1 << 20) as f64
        ));
    }
    if limits.nocache {
        said.push("--nocache: pages this run brought into the page cache were dropped".into());
    }
    let _ = writeln!(err, "{PROGRAM}: limits: {}", said.join("; "));
}

/// The lines of the old manifest an update did not meet, sorted into kept and dropped.
fn leftovers(
    hash: &HashConfig,
    updater: Option<&Updater>,
    met: &[bool],
    roots: &Roots,
    counts: &mut UpdateCounts,
) -> Option<kept::Leftovers> {
    let (updater, update) = (updater?, hash.update.as_ref()?);
    let scope = roots.scope(&hash.walk);
    let cut = counts.time_up || counts.deferred;
    Some(kept::leftovers(
        updater,
        met,
        &scope,
        (update.prune, cut),
        counts,
    ))
}

/// Where `-o` or `--update` sends the manifest, if either is given.
fn open_target(hash: &HashConfig) -> anyhow::Result<Option<Target>> {
    Ok(match (&hash.update, &hash.output) {
        (Some(update), _) => Some(Target::open(&update.manifest, Purpose::Update)?),
        (None, Some(output)) => Some(Target::open(output, Purpose::Output)?),
        (None, None) => None,
    })
}

/// Puts the manifest in place: the new lines alone, or merged with the old lines an update
/// keeps (`kept`) into a second temporary file.
fn commit(
    atomic: AtomicOutput,
    updater: Option<&Updater>,
    leftovers: Option<kept::Leftovers>,
    hash: &HashConfig,
    wrapped_at: Option<u64>,
) -> anyhow::Result<()> {
    let (Some(updater), Some(leftovers), Some(update)) = (updater, leftovers, &hash.update) else {
        return atomic.commit();
    };
    // Nothing to merge in, and the lines in walk order: they are the manifest.
    if leftovers.kept.is_empty() && wrapped_at.is_none() {
        return atomic.commit();
    }
    let name = || update.manifest.display().to_string();
    let merged = atomic.replacement()?;
    let len = atomic.file().metadata().with_context(name)?.len();
    let mut out = BufWriter::with_capacity(64 * 1024, merged.file());
    kept::merge(
        atomic.file(),
        NewLines { len, wrapped_at },
        &leftovers.kept,
        updater,
        update.lines.zero,
        &mut out,
    )
    .with_context(name)?;
    drop(out);
    drop(atomic);
    merged.commit()
}

/// The first line of a shard manifest: the shard it is, for `merge` (a comment to checksum
/// tools). Not in an `--update` manifest, which also keeps other shards' lines.
fn write_shard_line(hash: &HashConfig, printer: &mut Printer<'_>) -> io::Result<()> {
    let (Some(shard), None) = (hash.walk.shard, &hash.update) else {
        return Ok(());
    };
    if let Some((format, out)) = &mut printer.lines {
        let end = if format.zero { b'\0' } else { b'\n' };
        out.write_all(&shard_line(shard.index, shard.count, end))
            .inspect_err(|_| printer.failed_sink = Some(Destination::Lines))?;
    }
    Ok(())
}

/// The inputs a run walked, as they come (`--files-from` lists arrive while the run goes):
/// an update's scope.
#[derive(Clone, Default)]
struct Roots(Arc<Mutex<Vec<PathBuf>>>);

impl Roots {
    fn record(&self, input: &Input) {
        if let Ok(path) = input {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(path.clone());
        }
    }

    fn scope(&self, options: &WalkOptions) -> Scope {
        let roots = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Scope::of(&roots, options)
    }
}

/// The `-v` line naming the code each algorithm ran.
fn write_algorithms(err: &mut dyn Write, algorithms: Algorithms, config: &Config) {
    // The multi-buffer lanes run SHA-256 alone (`engine::lanes`).
    let lanes = if algorithms == Algorithms::SHA256 {
        crate::engine::calibrate::lanes(config.tuning.lanes)
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
    write_corrupt_warning(err, report.corrupt);
    if let Some((started, io)) = verbose {
        if let Some(counts) = &update {
            counts::write_update_verbose(err, counts);
        }
        report.write_verbose(err, started.elapsed());
        let _ = writeln!(err, "{PROGRAM}: I/O: {io}");
    }
}

/// Reads the manifest `--update` starts from (none yet is an empty one) and prepares the
/// decisions. The scan starts now, as the clock and the manifest's file system tell it. A
/// file that is not a manifest (no line of it a checksum line of the algorithm) is refused,
/// and so is a PATH spelled otherwise than the manifest spells it.
fn read_old_manifest(
    hash: &HashConfig,
    atomic: Option<&AtomicOutput>,
    pool: &rayon::ThreadPool,
) -> anyhow::Result<Option<Arc<Updater>>> {
    let (Some(update), Some(atomic)) = (&hash.update, atomic) else {
        return Ok(None);
    };
    let name = || update.manifest.display().to_string();
    let scan = Scan::begin(atomic.created());
    // `cli` lets --update keep one algorithm only.
    let algorithm = hash.hash.algorithm.first();
    let (manifest, old) = match fs::File::open(&update.manifest) {
        Ok(file) => {
            let len = file.metadata().with_context(name)?.len();
            let reader = file.try_clone().with_context(name)?;
            let manifest = load_manifest(reader, (algorithm, update.lines.zero), pool, true)
                .with_context(name)?;
            if !manifest.is_manifest(len) {
                let n = manifest.bad_lines();
                let lines = if n == 1 { "line is" } else { "lines are" };
                bail!(
                    "{}: not a {algorithm} manifest: {n} {lines} neither {algorithm} checksum lines nor comments; refusing to replace it (remove those lines, or name a new or empty file to start a manifest)",
                    name()
                );
            }
            (manifest, Some(file))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => (Manifest::empty(algorithm), None),
        Err(e) => return Err(e).with_context(name),
    };
    kept::check_spelling(&manifest, &hash.inputs)?;
    let updater = Updater::new(manifest, old, update.scrub, scan);
    Ok(Some(Arc::new(updater)))
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
    let file = file.filter(|f| f.as_os_str() != "-");
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
    items: Box<dyn Iterator<Item = Item> + Send>,
    algorithm: Algorithms,
    updater: Option<&Arc<Updater>>,
    printer: &mut Printer,
) -> io::Result<Report> {
    let update = updater.map(|updater| {
        let shared = Arc::clone(updater);
        let decide: Tagged<Outcome> = Arc::new(move |tag, result| {
            let result = match result {
                Ok(Hashing::NotReached) => return Outcome::NotReached,
                Ok(Hashing::TooLong { name, bytes }) => return Outcome::TooLong { name, bytes },
                result => result,
            };
            match shared.decide(tag, result) {
                Ok(Some(updated)) => Outcome::Updated(updated),
                Ok(None) if tag == UNLISTED => Outcome::Skipped(Skip::Excluded),
                Ok(None) => Outcome::Dropped { entry: tag },
                Err(failure) if tag == UNLISTED => Outcome::Failed(failure),
                Err(failure) => Outcome::Unread {
                    failure,
                    entry: tag,
                },
            }
        });
        (updater, decide)
    });
    let plan = |item: Item| match item {
        Item::Wrapped => Plan::Done(Outcome::Wrapped),
        Item::Entry(Entry::Hash(source)) => match &update {
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
                    Ok(Hashing::NotReached | Hashing::TooLong { .. }) => Outcome::NotReached,
                    Err(failure) => Outcome::Failed(failure),
                })),
            },
        },
        Item::Entry(Entry::Failed(failure)) => Plan::Done(Outcome::Failed(failure)),
        Item::Entry(Entry::Skipped(skip)) => Plan::Done(Outcome::Skipped(skip)),
        Item::Entry(Entry::Unfinished(path)) => Plan::Done(Outcome::Unfinished(path)),
    };
    let printed = pool::run(engine, items, plan, printer);
    let mut report = std::mem::take(&mut printer.report);
    match printed.and_then(|completion| printer.flush().map(|()| completion)) {
        Ok(Completion::Finished) => {}
        Ok(Completion::Interrupted(signal)) => report.interrupted = Some(signal),
        Ok(Completion::NoThread(errno)) => return Err(pool::thread_error(errno)),
        Ok(Completion::OutOfTime { abandoned }) => {
            printer.counts.time_up = true;
            printer.counts.abandoned = abandoned;
        }
        // The reader of stdout went away (`| head`): stop quietly, like ripgrep, keeping the
        // status earned so far.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => report.output_closed = true,
        Err(e) => return Err(e),
    }
    Ok(report)
}
