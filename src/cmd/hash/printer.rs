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

use super::checkpoint::{Checkpoints, Snapshot};
use super::kept::NewLines;
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
    /// The update's checkpoints (`--checkpoint`).
    pub(super) checkpoints: Option<Checkpoints>,
    /// Where the lines of the walk's second pass start in the new lines (`resume`).
    pub(super) wrapped_at: Option<u64>,
    /// The temporary file the new lines go to (`--update`), to say how long they are.
    pub(super) temp: Option<std::fs::File>,
}

impl Sink<Outcome> for Printer<'_> {
    type Error = io::Error;

    fn put(&mut self, outcome: Outcome) -> io::Result<()> {
        self.print(outcome)?;
        self.checkpoint();
        Ok(())
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
            checkpoints: None,
            wrapped_at: None,
            temp: None,
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
            // Its old line stays, unmet; a new file waits for the next run.
            Outcome::NotReached => self.counts.deferred = true,
            Outcome::TooLong { name, bytes } => {
                self.counts.deferred = true;
                self.flush()?;
                let why = format!(
                    "not read: {bytes} bytes at the --bwlimit rate take longer than the whole --max-duration, so no run held to both verifies it (its line is kept as it was)"
                );
                write_message(&mut self.err, &name, &why);
            }
            Outcome::Wrapped => self.wrapped_at = Some(self.lines_written()?),
            Outcome::Skipped(Skip::Symlink) => self.report.skipped_symlinks += 1,
            Outcome::Skipped(Skip::Special) => self.report.skipped_special += 1,
            Outcome::Skipped(Skip::Excluded) => self.report.excluded += 1,
        }
        Ok(())
    }

    /// Flushes the new lines, and says how many bytes of them the temporary file holds.
    fn lines_written(&mut self) -> io::Result<u64> {
        self.flush()?;
        match &self.temp {
            Some(temp) => Ok(temp.metadata()?.len()),
            None => Ok(0),
        }
    }

    /// Starts a checkpoint if one is due; says so if the last one failed.
    fn checkpoint(&mut self) {
        let Some(mut checkpoints) = self.checkpoints.take() else {
            return;
        };
        let ticked = checkpoints.tick(|| {
            let len = self.lines_written()?;
            Ok(Snapshot {
                lines: NewLines {
                    len,
                    wrapped_at: self.wrapped_at,
                },
                met: self.met.clone(),
            })
        });
        if let Err(e) = ticked {
            self.checkpoint_failed(&checkpoints, &e);
        }
        self.checkpoints = Some(checkpoints);
    }

    /// Waits for the checkpoint being written, if one is.
    pub(super) fn finish_checkpoints(&mut self) {
        if let Some(mut checkpoints) = self.checkpoints.take() {
            if let Err(e) = checkpoints.finish() {
                self.checkpoint_failed(&checkpoints, &e);
            }
            self.counts.checkpoints = checkpoints.written;
            self.counts.checkpoint_seconds = checkpoints.longest.as_secs_f64();
        }
    }

    fn checkpoint_failed(&mut self, checkpoints: &Checkpoints, e: &anyhow::Error) {
        let _ = self.flush();
        let why = format!("checkpoint not written ({e:#}); the run goes on");
        write_message(&mut self.err, &checkpoints.manifest, &why);
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
