//! `sumpool check`: read checksum lists and verify the files they name, as `sha256sum -c` and
//! `cksum -c`.
//!
//! The lines are parsed by `format::parse` (pure, table-tested, and differential-tested against the
//! real `sha256sum -c` in `tests/check.rs` and `cksum -c` in `tests/algorithms/`). A tagged line
//! names its own algorithm, so one list may mix MD5, SHA-256 and BLAKE2b-256 lines; each line is
//! verified with its algorithm (a file listed under two algorithms is read once per line, as
//! `cksum -c` reads it). [`run`] streams each list through the same pool as
//! `hash`, verifies the named files and prints results, warnings and the exit status the way GNU
//! does. Hashing itself is the engine's job; quoting and escaping of names is `format`'s.
//!
//! Lists are read record by record and never held whole: memory is one record (at most
//! [`MAX_RECORD`] bytes; a longer record is skipped in pieces and counted as improperly formatted)
//! plus the pool's bounded window of entries in flight.
//!
//! [`MAX_RECORD`]: crate::format::records::MAX_RECORD

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use std::io::IsTerminal;
use std::time::Instant;

use anyhow::Context;

use crate::config::{CheckConfig, Config, Verbosity};
use crate::digest::{Algorithm, Algorithms};
use crate::engine::policy;
use crate::engine::read::Hashing;
use crate::engine::run::{self as pool, Engine, Plan, Sink, Then};
use crate::engine::source::{OwnFiles, Source};
use crate::format::json;
use crate::format::line::escape_check_name;
use crate::format::parse::{Accept, Entry, Layout, parse_line, tag_name, trim_record};
use crate::format::records::{Record, RecordReader};
use crate::progress::{Counter, Progress, ProgressStderr, Totals};
use crate::report::{Failure, PROGRAM, Reason, Report, write_message};

/// What the feeder hands to the workers for one record.
enum Item {
    /// A well-formed line to verify.
    Verify(Entry),
    /// An improperly formatted line, by line number, and the digest type GNU names in its
    /// warning.
    Bad(u64, String),
    /// The list could not be read further. GNU 9.1 reports only "read error", without the
    /// cause, so the cause is not carried.
    ReadError,
}

/// What a worker found for one item.
enum Verdict {
    /// The file was read; `matched` tells whether its digest is the listed one.
    Verified {
        name: Vec<u8>,
        algorithm: Algorithm,
        matched: bool,
        bytes: u64,
    },
    /// The file does not exist and `--ignore-missing` is on.
    Missing { name: Vec<u8>, algorithm: Algorithm },
    /// The file could not be opened or read.
    Unreadable {
        name: Vec<u8>,
        algorithm: Algorithm,
        reason: Reason,
    },
    /// Passed through from [`Item::Bad`].
    Bad(u64, String),
    /// Passed through from [`Item::ReadError`].
    ReadError,
}

/// Counts for one list, as GNU keeps them.
#[derive(Default)]
struct Tally {
    misformatted: u64,
    unreadable: u64,
    mismatched: u64,
    matched: u64,
    missing: u64,
    formatted_any: bool,
    bytes: u64,
    /// The list could not be read to its end.
    read_error: bool,
}

/// How a `check` run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOutcome {
    /// Every list was read; `true` when every one verified completely (GNU's status 0).
    Checked(bool),
    /// A signal stopped the run; the output holds only whole lines.
    Interrupted(i32),
}

/// One checksum list and how to name it in messages.
struct ListSource<'a> {
    reader: Box<dyn Read + Send>,
    is_stdin: bool,
    name: &'a Path,
}

impl ListSource<'_> {
    /// The name GNU uses in messages: "standard input" for `-`.
    fn shown(&self) -> &Path {
        if self.is_stdin {
            Path::new("standard input")
        } else {
            self.name
        }
    }
}

/// Everything one `check` run shares across its lists.
struct Checker<'a> {
    config: &'a CheckConfig,
    engine: Engine<'a>,
    /// GNU keeps the untagged layout across all the lists of one run.
    layout: Layout,
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    progress: Progress,
    /// Totals over all lists, for `-v` and the JSON summary.
    total: json::CheckSummary,
    /// The algorithms of the lines verified, in the order first met, for `-v`.
    algorithms: Vec<Algorithm>,
}

/// Runs `sumpool check`: verifies every list, writing results to `out` and diagnostics to
/// `err`. The lists' own warnings are printed as GNU prints them; the report carries only
/// the exit status they earn.
pub fn run(
    config: &Config,
    check: &CheckConfig,
    pool: &rayon::ThreadPool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Report> {
    let mut report = Report::default();
    // The listed names are usually relative to the current directory: its device decides.
    let engine = Engine::new(
        pool,
        config.tuning,
        policy::for_path(Path::new("."), config.io.readers, config.io.stall_timeout),
        OwnFiles::new(Vec::new()),
    )
    .with_limits(config.io.limits());
    match check_lists(check, engine, out, err) {
        Ok(CheckOutcome::Checked(true)) => {}
        Ok(CheckOutcome::Checked(false)) => report.failed += 1,
        Ok(CheckOutcome::Interrupted(signal)) => report.interrupted = Some(signal),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => report.output_closed = true,
        Err(e) if pool::is_thread_error(&e) => return Err(e.into()),
        Err(e) => return Err(e).context("standard output"),
    }
    Ok(report)
}

/// Verifies every list in `config`, writing results to `out` and diagnostics to `err`.
fn check_lists(
    config: &CheckConfig,
    engine: Engine<'_>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<CheckOutcome> {
    let started = Instant::now();
    let stdin = [PathBuf::from("-")];
    let lists = if config.lists.is_empty() {
        &stdin[..]
    } else {
        &config.lists[..]
    };
    let stdout_shares_terminal = io::stdout().is_terminal();
    let progress = Progress::start(
        config.progress,
        stdout_shares_terminal,
        false,
        counter(lists, config.zero),
    );
    let mut checker = Checker {
        config,
        engine,
        layout: Layout::default(),
        out,
        err,
        progress,
        total: json::CheckSummary::default(),
        algorithms: Vec::new(),
    };
    let mut all_ok = true;
    for list in lists {
        let is_stdin = list.as_os_str() == "-";
        let reader: Box<dyn Read + Send> = if is_stdin {
            Box::new(io::stdin())
        } else {
            match File::open(list) {
                Ok(file) => Box::new(file),
                Err(e) => {
                    checker.out.flush()?;
                    checker.message(list, &crate::report::io_reason(&e));
                    all_ok = false;
                    continue;
                }
            }
        };
        match checker.check_list(ListSource {
            reader,
            is_stdin,
            name: list,
        })? {
            CheckOutcome::Checked(ok) => all_ok &= ok,
            interrupted @ CheckOutcome::Interrupted(_) => {
                checker.progress.finish();
                return Ok(interrupted);
            }
        }
    }
    checker.progress.finish();
    checker.total.seconds = started.elapsed().as_secs_f64();
    if config.json {
        json::write_check_summary(checker.out, &checker.total)?;
        checker.out.flush()?;
    }
    if config.verbose {
        checker.write_verbose();
    }
    Ok(CheckOutcome::Checked(all_ok))
}

/// Counts the lines of the lists ahead of the run, for the progress bar; `None` when a list
/// is standard input, which cannot be read twice.
fn counter(lists: &[PathBuf], zero: bool) -> Option<Counter> {
    if lists.iter().any(|list| list.as_os_str() == "-") {
        return None;
    }
    let lists = lists.to_vec();
    Some(Box::new(move |totals: &Totals| {
        let delim = if zero { b'\0' } else { b'\n' };
        for list in lists {
            let Ok(file) = File::open(&list) else {
                continue;
            };
            let mut records = RecordReader::new(file, delim);
            let mut buf = Vec::new();
            while let Ok(Some(_)) = records.next_record(&mut buf) {
                totals
                    .files
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }))
}

impl Checker<'_> {
    /// Writes `sumpool: <name>: <text>` on stderr, clear of the progress bar.
    fn message(&mut self, name: &Path, text: &dyn std::fmt::Display) {
        write_message(&mut self.progress.stderr(self.err), name, text);
    }

    /// Writes a whole line on stderr, clear of the progress bar.
    fn stderr_line(&mut self, line: &str) {
        let _ = self.progress.stderr(self.err).write_all(line.as_bytes());
    }

    /// The `-v` lines: counts, how the lists were read, and the code of each algorithm met.
    fn write_verbose(&mut self) {
        self.write_counts();
        let io = format!("{PROGRAM}: I/O: {}\n", self.engine.io.reason);
        self.stderr_line(&io);
        if !self.algorithms.is_empty() {
            // Each line is hashed with its algorithm alone: SHA-256 lines run on the lanes.
            let lanes = crate::engine::calibrate::lanes(self.engine.tuning.lanes);
            let mut line = Vec::new();
            super::write_implementations(&mut line, &self.algorithms, lanes);
            self.stderr_line(&String::from_utf8_lossy(&line));
        }
    }

    fn write_counts(&mut self) {
        let t = &self.total;
        let rate = if t.seconds > 0.0 {
            t.bytes as f64 / t.seconds / 1e6
        } else {
            0.0
        };
        let line = format!(
            "{PROGRAM}: {} files verified, {} bytes in {:.3} s ({rate:.1} MB/s); {} OK, {} FAILED, {} unreadable, {} missing, {} improperly formatted lines\n",
            t.ok + t.failed,
            t.bytes,
            t.seconds,
            t.ok,
            t.failed,
            t.unreadable,
            t.missing,
            t.improperly_formatted,
        );
        self.stderr_line(&line);
    }

    /// Verifies one list and prints its results and warnings; `Checked(true)` when it
    /// verified completely.
    fn check_list(&mut self, source: ListSource<'_>) -> io::Result<CheckOutcome> {
        let config = self.config;
        let shown = source.shown().to_path_buf();
        let items = ListItems {
            records: RecordReader::new(source.reader, if config.zero { b'\0' } else { b'\n' }),
            buf: Vec::new(),
            line_no: 0,
            done: false,
            zero: config.zero,
            is_stdin: source.is_stdin,
            accept: config.algorithm.map_or(Accept::ANY, Accept::only),
            type_name: config
                .algorithm
                .map_or_else(|| Algorithm::Sha256.tag(), |s| s.type_name()),
            fixed_type: config.algorithm.is_some(),
            layout: &mut self.layout,
        };
        let ignore_missing = config.ignore_missing;
        let plan = |item: Item| match item {
            Item::Verify(entry) => verify(entry, ignore_missing),
            Item::Bad(n, type_name) => Plan::Done(Verdict::Bad(n, type_name)),
            Item::ReadError => Plan::Done(Verdict::ReadError),
        };
        let mut printer = ListPrinter {
            config,
            shown: &shown,
            out: &mut *self.out,
            err: self.progress.stderr(&mut *self.err),
            progress: &self.progress,
            tally: Tally::default(),
            line: Vec::with_capacity(256),
            algorithms: &mut self.algorithms,
        };
        let completion = pool::run(&self.engine, items, plan, &mut printer)?;
        let tally = printer.tally;
        self.out.flush()?;
        match completion {
            pool::Completion::Interrupted(signal) => {
                return Ok(CheckOutcome::Interrupted(signal));
            }
            pool::Completion::NoThread(errno) => return Err(pool::thread_error(errno)),
            // No time box here.
            pool::Completion::Finished | pool::Completion::OutOfTime { .. } => {}
        }
        self.total.ok += tally.matched;
        self.total.failed += tally.mismatched;
        self.total.unreadable += tally.unreadable;
        self.total.missing += tally.missing;
        self.total.improperly_formatted += tally.misformatted;
        self.total.bytes += tally.bytes;
        Ok(CheckOutcome::Checked(self.finish_list(&tally, &shown)))
    }

    /// Prints the end-of-list warnings as GNU does; whether the list verified completely.
    fn finish_list(&mut self, tally: &Tally, shown: &Path) -> bool {
        let config = self.config;
        if tally.read_error {
            self.message(shown, &"read error");
            return false;
        }
        if !tally.formatted_any {
            self.message(shown, &"no properly formatted checksum lines found");
            return false;
        }
        if config.verbosity != Verbosity::Status {
            let warnings = [
                (
                    tally.misformatted,
                    "line is",
                    "lines are",
                    "improperly formatted",
                ),
                (
                    tally.unreadable,
                    "listed file",
                    "listed files",
                    "could not be read",
                ),
                (
                    tally.mismatched,
                    "computed checksum",
                    "computed checksums",
                    "did NOT match",
                ),
            ];
            for (n, one, many, what) in warnings {
                if n > 0 {
                    let noun = if n == 1 { one } else { many };
                    self.stderr_line(&format!("{PROGRAM}: WARNING: {n} {noun} {what}\n"));
                }
            }
            if config.ignore_missing && tally.matched == 0 {
                self.message(shown, &"no file was verified");
            }
        }
        tally.matched > 0
            && tally.mismatched == 0
            && tally.unreadable == 0
            && (!config.strict || tally.misformatted == 0)
    }
}

/// The items of one list: its records, numbered, parsed, in list order. Comments and blank
/// lines are passed over (and counted as lines, as GNU numbers them).
struct ListItems<'a, R> {
    records: RecordReader<R>,
    buf: Vec<u8>,
    line_no: u64,
    /// A read error ended the list.
    done: bool,
    zero: bool,
    /// The list is standard input, so a line naming `-` is improperly formatted.
    is_stdin: bool,
    /// Which lines `-a` lets through.
    accept: Accept,
    /// The digest type named in warnings about improperly formatted lines: `-a`'s, or
    /// without it, as `cksum -c` names it, the last tag met (this line's included; SHA256,
    /// sumpool's default, before any).
    type_name: String,
    /// `-a` was given: the type never changes.
    fixed_type: bool,
    /// GNU keeps the untagged layout across all the lists of one run.
    layout: &'a mut Layout,
}

impl<R> ListItems<'_, R> {
    /// An improperly formatted line, with the digest type its warning names.
    fn bad(&self) -> Item {
        Item::Bad(self.line_no, self.type_name.clone())
    }
}

impl<R: Read> Iterator for ListItems<'_, R> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        while !self.done {
            let record = match self.records.next_record(&mut self.buf) {
                Ok(Some(record)) => record,
                Ok(None) => return None,
                Err(_) => {
                    self.done = true;
                    return Some(Item::ReadError);
                }
            };
            self.line_no += 1;
            if let Record::TooLong = record {
                return Some(self.bad());
            }
            let Some(line) = trim_record(&self.buf, self.zero) else {
                continue;
            };
            if !self.fixed_type
                && let Some(name) = tag_name(line)
            {
                name.clone_into(&mut self.type_name);
            }
            if !self.zero && line.contains(&0) {
                return Some(self.bad());
            }
            return Some(match parse_line(line, self.layout, self.accept) {
                Ok(entry) if self.is_stdin && entry.name == b"-" => self.bad(),
                Ok(entry) => Item::Verify(entry),
                Err(_) => self.bad(),
            });
        }
        None
    }
}

/// Prints the verdicts of one list, in list order, as GNU prints them, and counts them.
struct ListPrinter<'a> {
    config: &'a CheckConfig,
    /// The list's name in messages.
    shown: &'a Path,
    out: &'a mut dyn Write,
    err: ProgressStderr<'a>,
    progress: &'a Progress,
    tally: Tally,
    /// The line being written, reused.
    line: Vec<u8>,
    /// The algorithms verified so far (over every list), in the order first met.
    algorithms: &'a mut Vec<Algorithm>,
}

impl Sink<Verdict> for ListPrinter<'_> {
    type Error = io::Error;

    fn put(&mut self, verdict: Verdict) -> io::Result<()> {
        self.print(verdict)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl ListPrinter<'_> {
    fn print(&mut self, verdict: Verdict) -> io::Result<()> {
        match verdict {
            Verdict::Verified {
                name,
                algorithm,
                matched,
                bytes,
            } => self.print_verified(&name, algorithm, matched, bytes)?,
            Verdict::Missing { name, algorithm } => {
                self.tally.formatted_any = true;
                self.tally.missing += 1;
                if self.config.json {
                    json::write_check(self.out, &name, Some(algorithm), "missing", None)?;
                }
                self.progress.advance(0);
            }
            Verdict::Unreadable {
                name,
                algorithm,
                reason,
            } => self.print_unreadable(&name, algorithm, &reason)?,
            Verdict::Bad(n, type_name) => {
                self.tally.misformatted += 1;
                if self.config.verbosity == Verbosity::Warn {
                    self.out.flush()?;
                    let text = format!("{n}: improperly formatted {type_name} checksum line");
                    write_message(&mut self.err, self.shown, &text);
                }
                if self.config.json {
                    json::write_bad_line(self.out, self.shown, n)?;
                }
                self.progress.advance(0);
            }
            Verdict::ReadError => self.tally.read_error = true,
        }
        Ok(())
    }

    fn print_verified(
        &mut self,
        name: &[u8],
        algorithm: Algorithm,
        matched: bool,
        bytes: u64,
    ) -> io::Result<()> {
        if !self.algorithms.contains(&algorithm) {
            self.algorithms.push(algorithm);
        }
        let tally = &mut self.tally;
        tally.formatted_any = true;
        tally.bytes += bytes;
        if matched {
            tally.matched += 1;
        } else {
            tally.mismatched += 1;
        }
        let status = if matched { "OK" } else { "FAILED" };
        let shown = match self.config.verbosity {
            Verbosity::Status => false,
            Verbosity::Quiet => !matched,
            Verbosity::Normal | Verbosity::Warn => true,
        };
        if self.config.json {
            json::write_check(self.out, name, Some(algorithm), status, None)?;
        } else if shown {
            write_result(self.out, &mut self.line, name, status)?;
        }
        self.progress.advance(bytes);
        Ok(())
    }

    fn print_unreadable(
        &mut self,
        name: &[u8],
        algorithm: Algorithm,
        reason: &Reason,
    ) -> io::Result<()> {
        self.tally.formatted_any = true;
        self.tally.unreadable += 1;
        self.out.flush()?;
        // Like GNU, the reason goes to stderr even with --status.
        write_message(&mut self.err, Path::new(OsStr::from_bytes(name)), reason);
        if self.config.json {
            let message = Some(reason.to_string());
            json::write_check(self.out, name, Some(algorithm), "unreadable", message)?;
        } else if self.config.verbosity != Verbosity::Status {
            write_result(self.out, &mut self.line, name, "FAILED open or read")?;
        }
        self.progress.advance(0);
        Ok(())
    }
}

/// Hashes the file an entry names and compares digests.
fn verify(entry: Entry, ignore_missing: bool) -> Plan<Verdict> {
    let source = if entry.name == b"-" {
        Source::Stdin
    } else {
        Source::Path(PathBuf::from(OsString::from_vec(entry.name.clone())))
    };
    let algorithm = entry.algorithm;
    let then = move |hashed: Result<Hashing, Failure>| match hashed {
        Ok(Hashing::Hashed(hashed)) => Verdict::Verified {
            name: entry.name,
            algorithm,
            // An unmatchable digest (base64 in a form no digest has) is empty, and a computed
            // one never is: it fails, as GNU's comparison of encodings fails.
            matched: *hashed.digest.first() == entry.digest,
            bytes: hashed.bytes,
        },
        // Only files listed in `skip` are passed over, and only a recorded state is
        // unchanged; there are neither here.
        Ok(
            Hashing::Skipped
            | Hashing::Unchanged { .. }
            | Hashing::NotReached
            | Hashing::TooLong { .. },
        ) => Verdict::Missing {
            name: entry.name,
            algorithm,
        },
        Err(failure) => match failure.reason {
            Reason::Io(e) if ignore_missing && e.kind() == io::ErrorKind::NotFound => {
                Verdict::Missing {
                    name: entry.name,
                    algorithm,
                }
            }
            reason => Verdict::Unreadable {
                name: entry.name,
                algorithm,
                reason,
            },
        },
    };
    Plan::Hash {
        source,
        algorithm: Algorithms::one(algorithm),
        unless: None,
        then: Then::Own(Box::new(then)),
    }
}

/// Writes `<name>: <status>` with the name escaped as GNU 9.1 escapes it in check output.
fn write_result(
    out: &mut dyn Write,
    line: &mut Vec<u8>,
    name: &[u8],
    status: &str,
) -> io::Result<()> {
    line.clear();
    escape_check_name(line, name);
    line.extend_from_slice(b": ");
    line.extend_from_slice(status.as_bytes());
    line.push(b'\n');
    out.write_all(line)
}
