//! `sumpool audit MANIFEST [PATH]...`: compare a tree with a manifest, and say what changed.
//!
//! `sha256sum -c` only looks at the files a manifest lists, so it cannot see files added to
//! a tree, and cannot tell a moved file from a lost one. `audit` walks and hashes the tree
//! (the same walk, pool, filters and failure rules as `hash`) and sorts every path into one of:
//! unchanged; changed (the digest differs); missing (listed, not on disk); new (on disk, not
//! listed); moved (a listed path that is gone, whose digest now appears at a path that is not
//! listed). A copy whose original is still in place is new, not moved.
//!
//! A line that carries a state record (`hash --update` writes them) says more about a changed
//! digest: if the file's size, times and inode are still those recorded, and were recorded
//! safely after the last write, no write that moves the times happened, and its bytes
//! changed anyway: it is *corrupt* (bit rot, or a write that bypassed the times: a second
//! write through a shared memory map, times set back; no tool that goes by a file's status
//! can tell those apart). Otherwise somebody wrote it: it is *modified*. Corrupt files come first in the
//! output, and set the exit status to 3.
//!
//! The manifest is read once, as a stream, into a compact [`Manifest`] (about 110 MB for a
//! million lines of 44-byte names, 165 MB with state records). The tree is then streamed past
//! it: a hashed file is looked up by name (binary search); one that is not listed is looked up
//! by digest, and counts as moved if a listed file with that digest is missing from the disk
//! right then. What remains unseen at the end is missing.
//!
//! Paths are compared as printed, with a leading `./` ignored on both sides; only the
//! manifest's lines under the walked PATHs (and not excluded) take part.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use crate::config::{AuditConfig, Config};
use crate::digest::{Algorithms, Digest};
use crate::engine::load::load_manifest;
use crate::engine::policy;
use crate::engine::read::{Hashed, Hashing};
use crate::engine::run::{self as pool, Completion, Engine, Plan, Sink, Then};
use crate::engine::source::{FileId, OwnFiles, Source};
use crate::engine::walk::{Entry, Scope, Walk};
use crate::format::json::{self, JsonPath};
use crate::format::line::path_bytes;
use crate::format::manifest::{Manifest, normalize};
use crate::format::quote::quote_name;
use crate::format::state::Trust;
use crate::progress::Progress;
use crate::report::{Failure, PROGRAM, Reason, Report, write_corrupt_warning};

/// What became of a listed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Not met (yet).
    No,
    /// Met in the tree.
    Yes,
    /// Gone, and found again under another name.
    MovedAway,
}

/// The kinds of difference, in the order the human output lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// The digest differs under a recorded stat that did not change.
    Corrupt,
    /// The digest differs; the line has no state to say why.
    Changed,
    /// The digest differs, and so does the recorded stat: somebody wrote the file.
    Modified,
    /// Listed under a name that is gone; found under one that is not listed.
    Moved,
    /// On disk, not listed.
    New,
    /// Listed, not on disk.
    Missing,
}

impl Class {
    const ORDER: [Class; 6] = [
        Class::Corrupt,
        Class::Changed,
        Class::Modified,
        Class::Moved,
        Class::New,
        Class::Missing,
    ];

    fn label(self) -> &'static str {
        match self {
            Class::Corrupt => "corrupt",
            Class::Changed => "changed",
            Class::Modified => "modified",
            Class::Moved => "moved",
            Class::New => "new",
            Class::Missing => "missing",
        }
    }
}

/// One difference between the tree and the manifest.
struct Difference {
    class: Class,
    /// The path on disk (for a moved file, where it is now).
    name: Vec<u8>,
    /// For a moved file, the listed path it was under.
    from: Option<Vec<u8>>,
    /// The digest the manifest lists.
    listed: Option<Vec<u8>>,
    /// The digest found on disk.
    found: Option<Digest>,
}

/// Counts of an audit, for the summary.
#[derive(Debug, Default, Serialize)]
struct Counts {
    unchanged: u64,
    corrupt: u64,
    changed: u64,
    modified: u64,
    moved: u64,
    new: u64,
    missing: u64,
    failed: u64,
    improperly_formatted: u64,
    seconds: f64,
}

impl Counts {
    fn differences(&self) -> u64 {
        self.corrupt + self.changed + self.modified + self.moved + self.new + self.missing
    }

    fn count(&mut self, class: Class) {
        *match class {
            Class::Corrupt => &mut self.corrupt,
            Class::Changed => &mut self.changed,
            Class::Modified => &mut self.modified,
            Class::Moved => &mut self.moved,
            Class::New => &mut self.new,
            Class::Missing => &mut self.missing,
        } += 1;
    }
}

/// Runs `sumpool audit`.
pub fn run(
    config: &Config,
    audit: &AuditConfig,
    pool: &rayon::ThreadPool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let manifest_name = audit.manifest.display().to_string();
    let (manifest, skip) = read_manifest(audit, pool).with_context(|| manifest_name.clone())?;
    let mut audited = Audited {
        counts: Counts {
            improperly_formatted: manifest.bad_lines(),
            ..Counts::default()
        },
        seen: vec![Seen::No; manifest.len()],
        // Corrupt files come first in JSON too, so with state the rest waits for the end.
        stream_json: audit.json && !manifest.has_state(),
        manifest,
        differences: Vec::new(),
        report: Report::default(),
        json: audit.json,
    };
    let progress = Progress::start(audit.progress, false, true, None);
    let probe = audit.inputs.first().map_or(Path::new("."), |p| p.as_path());
    let engine = Engine::new(
        pool,
        config.tuning,
        policy::for_path(probe, config.io.readers, config.io.stall_timeout),
        OwnFiles::new(skip),
    )
    .with_limits(config.io.limits());
    let completion = {
        let err = &mut progress.stderr(err);
        let mut sink = AuditSink {
            audited: &mut audited,
            out,
            err,
            progress: &progress,
        };
        compare_tree(&engine, audit, &mut sink)
    };
    drop(progress);
    let mut report = std::mem::take(&mut audited.report);
    match completion {
        // No time box here.
        Ok(Completion::Finished | Completion::OutOfTime { .. }) => {}
        Ok(Completion::Interrupted(signal)) => {
            report.interrupted = Some(signal);
            return Ok(report);
        }
        Ok(Completion::NoThread(errno)) => return Err(pool::thread_error(errno).into()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            report.output_closed = true;
            return Ok(report);
        }
        Err(e) => return Err(e).context("standard output"),
    }
    audited.counts.seconds = started.elapsed().as_secs_f64();
    audited
        .write_results(out, &Scope::of(&audit.inputs, &audit.walk))
        .context("standard output")?;
    let counts = &audited.counts;
    warn_bad_lines(err, counts.improperly_formatted, &manifest_name);
    write_corrupt_warning(err, counts.corrupt);
    report.hashed = counts.unchanged + counts.corrupt + counts.changed + counts.modified;
    report.hashed += counts.moved + counts.new;
    report.corrupt = counts.corrupt;
    // Differences and bad lines make the exit status 1, like failures do.
    if counts.differences() > counts.corrupt || counts.improperly_formatted > 0 {
        report.failed += 1;
    }
    Ok(report)
}

/// Says how many lines of the manifest were improperly formatted (none for 0).
fn warn_bad_lines(err: &mut dyn Write, n: u64, manifest: &str) {
    if n > 0 {
        let lines = if n == 1 { "line is" } else { "lines are" };
        let _ = writeln!(
            err,
            "{PROGRAM}: WARNING: {n} {lines} improperly formatted in {manifest}"
        );
    }
}

/// Reads the manifest; also returns the manifest file's identity, so that the walk does not
/// audit it (it often lies in the tree it describes).
fn read_manifest(
    audit: &AuditConfig,
    pool: &rayon::ThreadPool,
) -> io::Result<(Manifest, Vec<FileId>)> {
    let mut skip = Vec::new();
    let mut manifest = if audit.manifest.as_os_str() == "-" {
        Manifest::read(io::stdin(), audit.algorithm, audit.zero)?
    } else {
        let file = File::open(&audit.manifest)?;
        skip.extend(FileId::of(&file));
        load_manifest(file, (audit.algorithm, audit.zero), pool, false)?
    };
    manifest.index_digests();
    Ok((manifest, skip))
}

/// Walks and hashes the tree, handing each result to `sink` in walk order.
fn compare_tree(
    engine: &Engine<'_>,
    audit: &AuditConfig,
    sink: &mut AuditSink<'_>,
) -> io::Result<Completion> {
    let walk = Walk::new(audit.inputs.clone().into_iter().map(Ok), audit.walk.clone());
    let algorithm = Algorithms::one(audit.algorithm);
    let plan = |entry: Entry| match entry {
        Entry::Hash(source) => Plan::Hash {
            source,
            algorithm,
            unless: None,
            then: Then::Own(Box::new(|hashed| hashed)),
        },
        // A temporary file of a sumpool run is never in a manifest; in a tree, it is a file
        // like any other, and an audit says so (new).
        Entry::Unfinished(path) => Plan::Hash {
            source: Source::Path(path),
            algorithm,
            unless: None,
            then: Then::Own(Box::new(|hashed| hashed)),
        },
        Entry::Failed(failure) => Plan::Done(Err(failure)),
        Entry::Skipped(_) => Plan::Done(Ok(Hashing::Skipped)),
    };
    pool::run(engine, walk, plan, sink)
}

/// Where the results of the walk go, in walk order: into the [`Audited`] tally.
struct AuditSink<'a> {
    audited: &'a mut Audited,
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    progress: &'a Progress,
}

impl Sink<Result<Hashing, Failure>> for AuditSink<'_> {
    type Error = io::Error;

    fn put(&mut self, result: Result<Hashing, Failure>) -> io::Result<()> {
        self.audited
            .record(result, self.out, self.err, self.progress)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// What an audit has found so far, kept by the thread that prints.
struct Audited {
    manifest: Manifest,
    /// What became of each listed file, by entry.
    seen: Vec<Seen>,
    counts: Counts,
    /// Differences held until the walk ends, to be grouped.
    differences: Vec<Difference>,
    report: Report,
    json: bool,
    /// JSON objects are written as they come (no corrupt file can come first).
    stream_json: bool,
}

impl Audited {
    /// Sorts one result of the walk: a hashed file into its class, a failure reported.
    fn record(
        &mut self,
        result: Result<Hashing, Failure>,
        out: &mut dyn Write,
        err: &mut dyn Write,
        progress: &Progress,
    ) -> io::Result<()> {
        match result {
            Ok(Hashing::Hashed(hashed)) => {
                progress.advance(hashed.bytes);
                if let Some(difference) = self.classify(&hashed) {
                    self.counts.count(difference.class);
                    if self.stream_json {
                        write_json(out, &difference)?;
                    } else {
                        self.differences.push(difference);
                    }
                } else {
                    self.counts.unchanged += 1;
                }
            }
            Ok(
                Hashing::Skipped
                | Hashing::Unchanged { .. }
                | Hashing::NotReached
                | Hashing::TooLong { .. },
            ) => {}
            Err(failure) => {
                progress.advance(0);
                out.flush()?;
                self.report.fail(err, &failure);
                self.counts.failed += 1;
                // A file that is there but cannot be read is not missing.
                let gone =
                    matches!(&failure.reason, Reason::Io(e) if e.kind() == io::ErrorKind::NotFound);
                let listed_at = self.manifest.find(path_bytes(&failure.path));
                if let (false, Some(i)) = (gone, listed_at) {
                    self.seen[i] = Seen::Yes;
                }
            }
        }
        Ok(())
    }

    /// Sorts one hashed file: `None` if unchanged, else the difference.
    fn classify(&mut self, hashed: &Hashed) -> Option<Difference> {
        let manifest = &self.manifest;
        let name = normalize(path_bytes(&hashed.name));
        // An audit compares with a manifest of one algorithm: the run's only digest.
        let found = Some(*hashed.digest.first());
        if let Some(i) = manifest.find(name) {
            self.seen[i] = Seen::Yes;
            if manifest.digest(i) == hashed.digest.first().as_bytes() {
                return None;
            }
            let class = match manifest.state(i) {
                // Trusted, and the stat before the read is still the recorded one: nobody
                // wrote the file since its digest was taken.
                Some(record)
                    if record.trust != Trust::Racy && hashed.state == Some(record.state) =>
                {
                    Class::Corrupt
                }
                Some(_) => Class::Modified,
                None => Class::Changed,
            };
            let listed = Some(manifest.digest(i).to_vec());
            let (name, from) = (name.to_vec(), None);
            return Some(Difference {
                class,
                name,
                from,
                listed,
                found,
            });
        }
        // Not listed: moved here, if a listed file with this content is gone from the disk.
        let gone = manifest
            .with_digest(hashed.digest.first().as_bytes())
            .find(|&i| {
                self.seen[i] == Seen::No
                    && fs::symlink_metadata(Path::new(OsStr::from_bytes(manifest.name(i))))
                        .is_err_and(|e| e.kind() == io::ErrorKind::NotFound)
            });
        let (class, from) = match gone {
            Some(i) => {
                self.seen[i] = Seen::MovedAway;
                (Class::Moved, Some(manifest.name(i).to_vec()))
            }
            None => (Class::New, None),
        };
        let name = name.to_vec();
        Some(Difference {
            class,
            name,
            from,
            listed: None,
            found,
        })
    }

    /// Writes what the walk left to say: the held differences, grouped (corrupt first), then
    /// what the walk covered and never met, which is missing, straight from the manifest (it
    /// is often the largest group, and is not copied), then the summary.
    fn write_results(&mut self, out: &mut dyn Write, scope: &Scope) -> io::Result<()> {
        if self.json {
            // Corrupt files first; the rest in walk order.
            let corrupt = |d: &&Difference| d.class == Class::Corrupt;
            for difference in self.differences.iter().filter(corrupt) {
                write_json(out, difference)?;
            }
            for difference in self.differences.iter().filter(|d| !corrupt(d)) {
                write_json(out, difference)?;
            }
        } else {
            for class in Class::ORDER {
                for difference in self.differences.iter().filter(|d| d.class == class) {
                    write_human(out, difference)?;
                }
            }
        }
        let manifest = &self.manifest;
        for i in 0..manifest.len() {
            if self.seen[i] == Seen::No && scope.contains(manifest.name(i)) {
                self.counts.missing += 1;
                let missing = Difference {
                    class: Class::Missing,
                    name: manifest.name(i).to_vec(),
                    from: None,
                    listed: Some(manifest.digest(i).to_vec()),
                    found: None,
                };
                if self.json {
                    write_json(out, &missing)?;
                } else {
                    write_human(out, &missing)?;
                }
            }
        }
        if self.json {
            write_summary_json(out, &self.counts)?;
        } else {
            write_summary(out, &self.counts, manifest.has_state())?;
        }
        out.flush()
    }
}

/// One line of the human output: the class, padded, and the name (or `from -> to`).
fn write_human(out: &mut dyn Write, difference: &Difference) -> io::Result<()> {
    let mut line = format!("{:<8} ", difference.class.label()).into_bytes();
    if let Some(from) = &difference.from {
        line.extend_from_slice(&quote_name(from));
        line.extend_from_slice(b" -> ");
    }
    line.extend_from_slice(&quote_name(&difference.name));
    line.push(b'\n');
    out.write_all(&line)
}

/// The one-line count summary of the human output. Corrupt and modified files are counted
/// only for a manifest with state, the only kind that can tell them.
fn write_summary(out: &mut dyn Write, counts: &Counts, with_state: bool) -> io::Result<()> {
    let summary = if counts.differences() == 0 {
        format!("no differences: {} unchanged", counts.unchanged)
    } else {
        let stated = if with_state {
            format!("{} corrupt, {} modified, ", counts.corrupt, counts.modified)
        } else {
            String::new()
        };
        format!(
            "{} differences: {stated}{} changed, {} moved, {} new, {} missing; {} unchanged",
            counts.differences(),
            counts.changed,
            counts.moved,
            counts.new,
            counts.missing,
            counts.unchanged
        )
    };
    let failed = if counts.failed > 0 {
        format!("; {} could not be read", counts.failed)
    } else {
        String::new()
    };
    writeln!(out, "{summary}{failed}")
}

fn write_json(out: &mut dyn Write, difference: &Difference) -> io::Result<()> {
    #[derive(Serialize)]
    struct Line {
        r#type: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<JsonPath>,
        #[serde(skip_serializing_if = "Option::is_none")]
        from: Option<JsonPath>,
        #[serde(skip_serializing_if = "Option::is_none")]
        to: Option<JsonPath>,
        #[serde(skip_serializing_if = "Option::is_none")]
        listed: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        found: Option<String>,
    }
    let (path, from, to) = match &difference.from {
        Some(from) => (
            None,
            Some(JsonPath::new(from)),
            Some(JsonPath::new(&difference.name)),
        ),
        None => (Some(JsonPath::new(&difference.name)), None, None),
    };
    json::write_line(
        out,
        &Line {
            r#type: difference.class.label(),
            path,
            from,
            to,
            listed: difference.listed.as_ref().map(hex::encode),
            found: difference.found.map(|d| hex::encode(d.as_bytes())),
        },
    )
}

fn write_summary_json(out: &mut dyn Write, counts: &Counts) -> io::Result<()> {
    #[derive(Serialize)]
    struct Line<'a> {
        r#type: &'static str,
        #[serde(flatten)]
        counts: &'a Counts,
    }
    json::write_line(
        out,
        &Line {
            r#type: "summary",
            counts,
        },
    )
}
