//! The printing side of `sumpool hash`, on the calling thread: each outcome, in walk order,
//! becomes a checksum line (with its state line, for `--update`) and a JSON object, and the
//! report keeps count.

use std::io::{self, Write};
use std::sync::Arc;

use crate::digest::Algorithms;
use crate::engine::read::Hashed;
use crate::engine::run::Sink;
use crate::engine::walk::Skip;
use crate::format::json;
use crate::format::line::{format_line, path_bytes};
use crate::progress::{Progress, ProgressStderr};
use crate::report::{CORRUPT_MEANS, Failure, Report, write_message};

use super::update::{Status, UpdateCounts, Updated, Updater};
use super::{Destination, LineSink, Outcome};

/// Writes each outcome, in walk order, as a checksum line (with its state line, for
/// `--update`) and as a JSON object, and keeps the report: the one place where `hash` prints.
pub(super) struct Printer<'a> {
    /// The run's algorithms: one line each per file, in this order.
    pub(super) algorithms: Algorithms,
    /// Where checksum lines go, and their format.
    pub(super) lines: Option<LineSink<'a>>,
    /// Where JSON objects go.
    pub(super) json: Option<&'a mut dyn Write>,
    /// The output whose write failed, to name it.
    pub(super) failed_sink: Option<Destination>,
    pub(super) err: ProgressStderr<'a>,
    pub(super) progress: &'a Progress,
    pub(super) report: Report,
    /// Why files were or were not read (`--update`).
    pub(super) counts: UpdateCounts,
    /// Which entries of the old manifest the walk met (`--update`).
    pub(super) met: Vec<bool>,
    /// The update's decisions, for the old lines it keeps.
    pub(super) updater: Option<Arc<Updater>>,
    /// The line being written, reused.
    pub(super) line: Vec<u8>,
    /// The digest line a state line is bound to, reused (`--update`).
    pub(super) scratch: Vec<u8>,
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

impl<'a> Printer<'a> {
    pub(super) fn new(
        algorithms: Algorithms,
        (lines, json): (Option<LineSink<'a>>, Option<&'a mut dyn Write>),
        progress: &'a Progress,
        err: &'a mut dyn Write,
        updater: Option<Arc<Updater>>,
    ) -> Printer<'a> {
        Printer {
            algorithms,
            lines,
            json,
            failed_sink: None,
            err: progress.stderr(err),
            progress,
            report: Report::default(),
            counts: UpdateCounts::default(),
            met: vec![false; updater.as_ref().map_or(0, |u| u.manifest().len())],
            updater,
            line: Vec::with_capacity(512),
            scratch: Vec::with_capacity(512),
        }
    }

    fn print(&mut self, outcome: Outcome) -> io::Result<()> {
        match outcome {
            Outcome::Hashed(hashed) => self.print_hashed(&hashed)?,
            Outcome::Updated(updated) => self.print_updated(&updated)?,
            Outcome::Failed(failure) => self.print_failure(&failure)?,
            Outcome::Unread { failure, entry } => {
                self.print_failure(&failure)?;
                self.keep_old_line(entry)?;
            }
            Outcome::Dropped { entry } => self.meet(entry),
            Outcome::Unfinished(path) => {
                self.flush()?;
                let why = "not hashed: a temporary file of sumpool (a manifest being written, or left by a run that was killed; delete it if no sumpool run writes it)";
                write_message(&mut self.err, &path, &why);
                self.report.excluded += 1;
            }
            Outcome::Skipped(Skip::Symlink) => self.report.skipped_symlinks += 1,
            Outcome::Skipped(Skip::Special) => self.report.skipped_special += 1,
            Outcome::Skipped(Skip::Excluded) => self.report.excluded += 1,
        }
        Ok(())
    }

    fn print_failure(&mut self, failure: &Failure) -> io::Result<()> {
        // Lines already printed must reach the reader before the message that follows
        // them, so a terminal shows both in order.
        self.flush()?;
        self.report.fail(&mut self.err, failure);
        if let Some(json) = &mut self.json {
            let (kind, message) = (failure.reason.kind(), failure.reason.to_string());
            json::write_failure(*json, &failure.path, kind, message)
                .inspect_err(|_| self.failed_sink = Some(Destination::Json))?;
        }
        self.progress.advance(0);
        Ok(())
    }

    /// Marks entry `entry` of the old manifest as met by the walk.
    fn meet(&mut self, entry: u64) {
        if let Some(met) = usize::try_from(entry)
            .ok()
            .and_then(|i| self.met.get_mut(i))
        {
            *met = true;
        }
    }

    /// Writes the old manifest's lines for entry `entry`, as they were: its file could not
    /// be read.
    fn keep_old_line(&mut self, entry: u64) -> io::Result<()> {
        self.meet(entry);
        let (Some(updater), Some((_, out))) = (&self.updater, &mut self.lines) else {
            return Ok(());
        };
        let Ok(i) = usize::try_from(entry) else {
            return Ok(());
        };
        self.line.clear();
        updater.copy_entry(i, &mut self.line)?;
        out.write_all(&self.line)
            .inspect_err(|_| self.failed_sink = Some(Destination::Lines))?;
        self.counts.unread += 1;
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
        self.meet(updated.entry);
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
            let message = format!("corrupt: {CORRUPT_MEANS}; the recorded digest is kept");
            write_message(&mut self.err, &updated.name, &message);
            self.report.corrupt += 1;
        }
        self.counts.count(updated.status);
        self.report.hashed += 1;
        self.report.bytes += updated.bytes;
        self.progress.advance(updated.size);
        Ok(())
    }

    pub(super) fn flush(&mut self) -> io::Result<()> {
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
