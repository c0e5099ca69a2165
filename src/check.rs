//! `sumpool check`: read checksum lists and verify the files they name, as `sha256sum -c`.
//!
//! Two halves. [`parse_line`] is pure: one line in, an [`Entry`] or a [`BadLine`] out, following
//! GNU coreutils 9.1 rule for rule (table-tested below and differential-tested against the real
//! `sha256sum -c` in `tests/check.rs`). [`run_check`] streams each list through the same pool
//! as `hash`, verifies the named files and prints results, warnings and the exit status the way
//! GNU does. Hashing itself is `hash`'s job; quoting and escaping of names is `quote`'s and
//! `output`'s.
//!
//! Lists are read record by record and never held whole: memory is one record (at most
//! [`MAX_RECORD`] bytes; a longer record is skipped in pieces and counted as improperly
//! formatted) plus the pool's bounded window of entries in flight.
//!
//! [`MAX_RECORD`]: crate::records::MAX_RECORD

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use std::io::IsTerminal;
use std::time::Instant;

use crate::config::{CheckConfig, Verbosity};
use crate::digest::{Algorithm, Digest};
use crate::hash::{Hashed, Source};
use crate::json;
use crate::lanes::{HashJob, Plan};
use crate::output::escape_check_name;
use crate::pool::{self, Tuning};
use crate::progress::{Counter, Progress, Totals};
use crate::records::{Record, RecordReader};
use crate::report::{Failure, PROGRAM, Reason, write_message};

/// One well-formed checksum line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The algorithm, from the line's tag or the length of its digest.
    pub algorithm: Algorithm,
    /// The expected digest.
    pub digest: Digest,
    /// The file name, unescaped, as bytes.
    pub name: Vec<u8>,
}

/// Why a line is improperly formatted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadLine {
    /// Shorter than a digest, a separator and a one-byte name.
    TooShort,
    /// The digest is not hex digits of the length of an accepted algorithm.
    BadDigest,
    /// Nothing follows the digest.
    NoSeparator,
    /// A line in the other untagged layout than the list's first untagged line.
    MixedLayout,
    /// A backslash escape other than `\\`, `\n`, `\r`, or a trailing backslash.
    BadEscape,
    /// A BSD line without `)`, `=`, or with something else than a digest after `=`.
    BadTag,
    /// A NUL byte inside a newline-terminated line.
    Nul,
    /// A record longer than [`MAX_RECORD`](crate::records::MAX_RECORD).
    TooLong,
    /// A line naming `-` in a list read from standard input.
    StdinName,
}

/// The untagged layout of a list, decided by its first untagged line (GNU's `bsd_reversed`).
///
/// `<hex>  <name>` (two spaces, or space and `*`) is the GNU layout; `<hex> <name>` (one
/// space) is what BSD `md5 -r` prints. GNU refuses to mix them in one run, so that a file
/// renamed with a leading space cannot make a line mean something else; once reversed, a GNU
/// looking line is read as reversed (its name starts with the space or `*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Layout {
    /// No untagged line seen yet.
    #[default]
    Undecided,
    /// `<hex>  <name>` or `<hex> *<name>`.
    Standard,
    /// `<hex> <name>`.
    Reversed,
}

fn is_white(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Decodes the hex digest of `algorithm`, either case.
fn parse_digest(algorithm: Algorithm, hex: &[u8]) -> Result<Digest, BadLine> {
    Digest::from_hex(algorithm, hex).ok_or(BadLine::BadDigest)
}

fn unescape_if(name: &[u8], escaped: bool) -> Result<Vec<u8>, BadLine> {
    if escaped {
        crate::output::unescape_name(name).ok_or(BadLine::BadEscape)
    } else {
        Ok(name.to_vec())
    }
}

/// Parses one line of a checksum list, already stripped of its terminator (and, for newline
/// lists, of one trailing carriage return). `layout` carries GNU's layout rule from line to
/// line and from list to list; it is updated as GNU updates it, even for a line that is then
/// rejected.
///
/// With `only`, the line must be of that algorithm, exactly as `sha256sum -c` (or
/// `sha512sum -c`...) requires. Without, the algorithm comes from the line: from its BSD tag,
/// or from the length of an untagged digest (56, 64, 96 or 128 hex digits), so one list may
/// mix algorithms.
pub fn parse_line(
    line: &[u8],
    layout: &mut Layout,
    only: Option<Algorithm>,
) -> Result<Entry, BadLine> {
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut i = line.iter().take_while(|&&b| is_white(b)).count();
    let escaped = at(i) == b'\\';
    if escaped {
        i += 1;
    }

    let candidates: &[Algorithm] = match &only {
        Some(algorithm) => std::slice::from_ref(algorithm),
        None => &Algorithm::ALL,
    };
    if let Some(&algorithm) = candidates
        .iter()
        .find(|a| line[i..].starts_with(a.tag().as_bytes()))
    {
        i += algorithm.tag().len();
        if at(i) == b' ' {
            i += 1;
        }
        if at(i) != b'(' {
            return Err(BadLine::BadTag);
        }
        return parse_tagged(&line[i + 1..], escaped, algorithm);
    }

    // Untagged: `<hex><white><name>`. The digest is split off from the left, at the first
    // white byte, because every byte after the separator belongs to the name: names may hold
    // spaces, tabs, even a leading space, and only the digest has a known shape.
    let start = i;
    let field = line[start..].iter().take_while(|&&b| !is_white(b)).count();
    let algorithm = only
        .or_else(|| Algorithm::from_hex_len(field))
        .ok_or(BadLine::BadDigest)?;
    let min_len = algorithm.hex_len() + 2 + usize::from(at(start) == b'\\');
    if line.len() - start < min_len {
        return Err(BadLine::TooShort);
    }
    i = start + field;
    if i == line.len() {
        return Err(BadLine::NoSeparator);
    }
    let digest = parse_digest(algorithm, &line[start..i])?;
    i += 1;

    let reversed = line.len() - i == 1 || (at(i) != b' ' && at(i) != b'*');
    if reversed {
        if *layout == Layout::Standard {
            return Err(BadLine::MixedLayout);
        }
        *layout = Layout::Reversed;
    } else if *layout != Layout::Reversed {
        *layout = Layout::Standard;
        i += 1;
    }
    let name = unescape_if(&line[i..], escaped)?;
    Ok(Entry {
        algorithm,
        digest,
        name,
    })
}

/// The part of a BSD line after `SHA256 (`: `<name>) = <hex>`. The name is split off from the
/// right, at the last `)`, because the name may itself hold `)` and `=`, while the digest
/// after it cannot.
fn parse_tagged(rest: &[u8], escaped: bool, algorithm: Algorithm) -> Result<Entry, BadLine> {
    let close = rest
        .iter()
        .rposition(|&b| b == b')')
        .ok_or(BadLine::BadTag)?;
    let name = unescape_if(&rest[..close], escaped)?;
    let mut i = close + 1;
    while i < rest.len() && is_white(rest[i]) {
        i += 1;
    }
    if rest.get(i) != Some(&b'=') {
        return Err(BadLine::BadTag);
    }
    i += 1;
    while i < rest.len() && is_white(rest[i]) {
        i += 1;
    }
    let digest = parse_digest(algorithm, &rest[i..])?;
    Ok(Entry {
        algorithm,
        digest,
        name,
    })
}

/// The content of a record that should be parsed, or `None` for comments and blank lines.
/// Newline lists lose their `\n` and one `\r` (CRLF files); NUL lists keep every byte.
pub fn trim_record(record: &[u8], zero: bool) -> Option<&[u8]> {
    if record.first() == Some(&b'#') {
        return None;
    }
    let delim = if zero { b'\0' } else { b'\n' };
    let mut line = record.strip_suffix(&[delim]).unwrap_or(record);
    if !zero {
        line = line.strip_suffix(b"\r").unwrap_or(line);
    }
    (!line.is_empty()).then_some(line)
}

/// What the feeder hands to the workers for one record.
enum Item {
    /// A well-formed line to verify.
    Verify(Entry),
    /// An improperly formatted line, by line number.
    Bad(u64),
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
    Bad(u64),
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
    reader: Box<dyn Read>,
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
    pool: &'a rayon::ThreadPool,
    tuning: Tuning,
    /// GNU keeps the untagged layout across all the lists of one run.
    layout: Layout,
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    progress: Progress,
    /// Totals over all lists, for `-v` and the JSON summary.
    total: json::CheckSummary,
}

/// Verifies every list in `config`, writing results to `out` and diagnostics to `err`.
pub fn run_check(
    config: &CheckConfig,
    pool: &rayon::ThreadPool,
    tuning: Tuning,
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
        pool,
        tuning,
        layout: Layout::default(),
        out,
        err,
        progress,
        total: json::CheckSummary::default(),
    };
    let mut all_ok = true;
    for list in lists {
        let is_stdin = list.as_os_str() == "-";
        let reader: Box<dyn Read> = if is_stdin {
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

    fn write_verbose(&mut self) {
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

    fn check_list(&mut self, source: ListSource<'_>) -> io::Result<CheckOutcome> {
        let config = self.config;
        let shown = source.shown().to_path_buf();
        let is_stdin = source.is_stdin;
        let zero = config.zero;
        let mut records = RecordReader::new(source.reader, if zero { b'\0' } else { b'\n' });
        let mut line_no = 0u64;
        let mut buf = Vec::new();
        let mut done = false;
        let layout = &mut self.layout;
        let items = std::iter::from_fn(|| {
            while !done {
                let record = match records.next_record(&mut buf) {
                    Ok(Some(record)) => record,
                    Ok(None) => return None,
                    Err(_) => {
                        done = true;
                        return Some(Item::ReadError);
                    }
                };
                line_no += 1;
                if let Record::TooLong = record {
                    return Some(Item::Bad(line_no));
                }
                let Some(line) = trim_record(&buf, zero) else {
                    continue;
                };
                if !zero && line.contains(&0) {
                    return Some(Item::Bad(line_no));
                }
                return Some(match parse_line(line, layout, config.algorithm) {
                    Ok(entry) if is_stdin && entry.name == b"-" => Item::Bad(line_no),
                    Ok(entry) => Item::Verify(entry),
                    Err(_) => Item::Bad(line_no),
                });
            }
            None
        });

        let ignore_missing = config.ignore_missing;
        let plan = |item: Item| match item {
            Item::Verify(entry) => verify(entry, ignore_missing),
            Item::Bad(n) => Plan::Done(Verdict::Bad(n)),
            Item::ReadError => Plan::Done(Verdict::ReadError),
        };
        let work = HashJob::new(plan, &[], self.tuning.lanes);

        let verbosity = config.verbosity;
        let mut tally = Tally::default();
        let mut read_error = false;
        let mut line = Vec::with_capacity(256);
        let (pool, tuning) = (self.pool, self.tuning);
        let out = &mut *self.out;
        let progress = &mut self.progress;
        let err = &mut progress.stderr(&mut *self.err);
        let completion = pool::run_ordered(pool, tuning, items, work, |verdict| {
            match verdict {
                Verdict::Verified {
                    name,
                    algorithm,
                    matched,
                    bytes,
                } => {
                    tally.formatted_any = true;
                    tally.bytes += bytes;
                    if matched {
                        tally.matched += 1;
                    } else {
                        tally.mismatched += 1;
                    }
                    let status = if matched { "OK" } else { "FAILED" };
                    if config.json {
                        json::write_check(out, &name, Some(algorithm), status, None)?;
                    } else if match verbosity {
                        Verbosity::Status => false,
                        Verbosity::Quiet => !matched,
                        Verbosity::Normal | Verbosity::Warn => true,
                    } {
                        write_result(out, &mut line, &name, status)?;
                    }
                    progress.advance(bytes);
                }
                Verdict::Missing { name, algorithm } => {
                    tally.formatted_any = true;
                    tally.missing += 1;
                    if config.json {
                        json::write_check(out, &name, Some(algorithm), "missing", None)?;
                    }
                    progress.advance(0);
                }
                Verdict::Unreadable {
                    name,
                    algorithm,
                    reason,
                } => {
                    tally.formatted_any = true;
                    tally.unreadable += 1;
                    out.flush()?;
                    // Like GNU, the reason goes to stderr even with --status.
                    write_message(err, Path::new(OsStr::from_bytes(&name)), &reason);
                    if config.json {
                        let message = Some(reason.to_string());
                        json::write_check(out, &name, Some(algorithm), "unreadable", message)?;
                    } else if verbosity != Verbosity::Status {
                        write_result(out, &mut line, &name, "FAILED open or read")?;
                    }
                    progress.advance(0);
                }
                Verdict::Bad(n) => {
                    tally.misformatted += 1;
                    if verbosity == Verbosity::Warn {
                        out.flush()?;
                        let tag = config.algorithm.unwrap_or_default().tag();
                        let text = format!("{n}: improperly formatted {tag} checksum line");
                        write_message(err, &shown, &text);
                    }
                    if config.json {
                        json::write_bad_line(out, &shown, n)?;
                    }
                    progress.advance(0);
                }
                Verdict::ReadError => read_error = true,
            }
            Ok::<(), io::Error>(())
        })?;
        self.out.flush()?;
        if let pool::Completion::Interrupted(signal) = completion {
            return Ok(CheckOutcome::Interrupted(signal));
        }

        self.total.ok += tally.matched;
        self.total.failed += tally.mismatched;
        self.total.unreadable += tally.unreadable;
        self.total.missing += tally.missing;
        self.total.improperly_formatted += tally.misformatted;
        self.total.bytes += tally.bytes;

        if read_error {
            self.message(&shown, &"read error");
            return Ok(CheckOutcome::Checked(false));
        }
        if !tally.formatted_any {
            self.message(&shown, &"no properly formatted checksum lines found");
            return Ok(CheckOutcome::Checked(false));
        }
        if verbosity != Verbosity::Status {
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
                self.message(&shown, &"no file was verified");
            }
        }
        Ok(CheckOutcome::Checked(
            tally.matched > 0
                && tally.mismatched == 0
                && tally.unreadable == 0
                && (!config.strict || tally.misformatted == 0),
        ))
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
    let then = move |hashed: Result<Option<Hashed>, Failure>| match hashed {
        Ok(Some(hashed)) => Verdict::Verified {
            name: entry.name,
            algorithm,
            matched: hashed.digest == entry.digest,
            bytes: hashed.bytes,
        },
        // Only files listed in `skip` are passed over, and there are none here.
        Ok(None) => Verdict::Missing {
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
        algorithm,
        then: Box::new(then),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{LineFormat, LineStyle, format_line};
    use proptest::prelude::*;

    const HEX: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn digest() -> Digest {
        Digest::from_hex(Algorithm::Sha256, HEX.as_bytes()).unwrap()
    }

    fn parse(line: &str, layout: Layout) -> (Result<Vec<u8>, BadLine>, Layout) {
        let mut layout = layout;
        let result = parse_line(line.as_bytes(), &mut layout, Some(Algorithm::Sha256)).map(|e| {
            assert_eq!(e.digest, digest());
            e.name
        });
        (result, layout)
    }

    #[test]
    fn parse_line_table() {
        use BadLine::*;
        use Layout::*;
        let upper = HEX.to_uppercase();
        type Case = (String, Layout, Result<&'static [u8], BadLine>, Layout);
        let cases: Vec<Case> = vec![
            (format!("{HEX}  a"), Undecided, Ok(b"a"), Standard),
            (format!("{HEX} *a"), Undecided, Ok(b"a"), Standard),
            (format!("  \t{HEX}  a"), Undecided, Ok(b"a"), Standard),
            (format!("{upper}  a"), Undecided, Ok(b"a"), Standard),
            (format!("{HEX}  a b  "), Undecided, Ok(b"a b  "), Standard),
            (format!("{HEX}   lead"), Undecided, Ok(b" lead"), Standard),
            (format!("{HEX}  *a"), Undecided, Ok(b"*a"), Standard),
            // One space: the BSD `md5 -r` layout, which then sticks.
            (format!("{HEX} a"), Undecided, Ok(b"a"), Reversed),
            (format!("{HEX}\ta"), Undecided, Ok(b"a"), Reversed),
            (format!("{HEX}  a"), Reversed, Ok(b" a"), Reversed),
            (format!("{HEX} a"), Standard, Err(MixedLayout), Standard),
            // Hex plus two spaces is a reversed line naming " ".
            (format!("{HEX}  "), Undecided, Ok(b" "), Reversed),
            (format!("{HEX} "), Undecided, Err(TooShort), Undecided),
            (HEX.to_string(), Undecided, Err(TooShort), Undecided),
            (format!("{HEX}0  a"), Undecided, Err(BadDigest), Undecided),
            (
                format!("{}  a", &HEX[1..]),
                Undecided,
                Err(BadDigest),
                Undecided,
            ),
            (
                format!("{}g  abc", &HEX[1..]),
                Undecided,
                Err(BadDigest),
                Undecided,
            ),
            (
                format!("\\{HEX}  a\\\\b\\nc\\rd"),
                Undecided,
                Ok(b"a\\b\nc\rd"),
                Standard,
            ),
            (
                format!("\\{HEX}  a\\tb"),
                Undecided,
                Err(BadEscape),
                Standard,
            ),
            (format!("\\{HEX}  a\\"), Undecided, Err(BadEscape), Standard),
            // Without the leading backslash, backslashes are literal.
            (format!("{HEX}  a\\nb"), Undecided, Ok(b"a\\nb"), Standard),
            (
                format!("SHA256 (a) = {HEX}"),
                Undecided,
                Ok(b"a"),
                Undecided,
            ),
            (format!("SHA256(a)= {upper}"), Standard, Ok(b"a"), Standard),
            (
                format!("SHA256 (a) \t=\t {HEX}"),
                Undecided,
                Ok(b"a"),
                Undecided,
            ),
            (
                format!("SHA256 (x) = y) = {HEX}"),
                Undecided,
                Ok(b"x) = y"),
                Undecided,
            ),
            (format!("SHA256 () = {HEX}"), Undecided, Ok(b""), Undecided),
            (
                format!("\\SHA256 (a\\nb) = {HEX}"),
                Undecided,
                Ok(b"a\nb"),
                Undecided,
            ),
            (
                format!("SHA256 (a) = {HEX} "),
                Undecided,
                Err(BadDigest),
                Undecided,
            ),
            (
                format!("SHA256  (a) = {HEX}"),
                Undecided,
                Err(BadTag),
                Undecided,
            ),
            (
                format!("SHA256 (a = {HEX}"),
                Undecided,
                Err(BadTag),
                Undecided,
            ),
            (
                format!("SHA256 (a) {HEX}"),
                Undecided,
                Err(BadTag),
                Undecided,
            ),
            (
                format!("SHA512 (a) = {HEX}"),
                Undecided,
                Err(BadDigest),
                Undecided,
            ),
            (
                format!("sha256 (a) = {HEX}"),
                Undecided,
                Err(BadDigest),
                Undecided,
            ),
        ];
        for (line, before, want, after) in cases {
            let (got, layout) = parse(&line, before);
            assert_eq!(got.as_deref().map_err(|e| *e), want, "line {line:?}");
            assert_eq!(layout, after, "layout after {line:?}");
        }
    }

    #[test]
    fn trim_record_rules() {
        assert_eq!(trim_record(b"# comment\n", false), None);
        assert_eq!(trim_record(b"\r\n", false), None);
        assert_eq!(trim_record(b"x\r\r\n", false), Some(&b"x\r"[..]));
        assert_eq!(trim_record(b"x", false), Some(&b"x"[..]));
        assert_eq!(trim_record(b"x\r\n\0", true), Some(&b"x\r\n"[..]));
        assert_eq!(trim_record(b"\0", true), None);
    }

    proptest! {
        #[test]
        fn any_name_written_by_hash_parses_back(
            name in proptest::collection::vec(1u8..=255, 1..80),
            algorithm in proptest::sample::select(Algorithm::ALL.to_vec()),
            bytes in proptest::collection::vec(any::<u8>(), 64),
            bsd in any::<bool>(),
            zero in any::<bool>(),
        ) {
            let digest = Digest::from_bytes(&bytes[..algorithm.digest_len()]).unwrap();
            let style = if bsd { LineStyle::Bsd } else { LineStyle::Gnu };
            let format = LineFormat { style, zero, tag: algorithm.tag() };
            let mut line = Vec::new();
            format_line(&mut line, &format, digest.as_bytes(), &name);
            let content = trim_record(&line, zero);
            // A -z record keeps every byte; a newline record loses one trailing CR, which
            // escaping guarantees is never part of the name.
            let mut layout = Layout::Undecided;
            let entry = parse_line(content.unwrap(), &mut layout, None).unwrap();
            prop_assert_eq!(entry.name, name);
            prop_assert_eq!(entry.digest.as_bytes(), digest.as_bytes());
            prop_assert_eq!(entry.algorithm, algorithm);
        }
    }
}
