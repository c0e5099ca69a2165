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

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::config::{CheckConfig, Verbosity};
use crate::hash::{DIGEST_LEN, Digest, Source, hash_source};
use crate::output::escape_check_name;
use crate::pool::{self, Tuning};
use crate::report::{PROGRAM, Reason, write_message};

/// Length of a SHA-256 digest in hex.
pub const HEX_LEN: usize = DIGEST_LEN * 2;

/// The algorithm tag of BSD-style lines.
const TAG: &[u8] = b"SHA256";

/// Longest record read from a list: far beyond any usable line (a name cannot be opened past
/// PATH_MAX, 4096 bytes), small enough that a hostile list cannot exhaust memory.
pub const MAX_RECORD: usize = 1 << 20;

/// One well-formed checksum line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
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
    /// The digest is not exactly 64 hex digits.
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
    /// A record longer than [`MAX_RECORD`].
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

/// Decodes exactly 64 hex digits, either case.
fn parse_digest(hex: &[u8]) -> Result<Digest, BadLine> {
    let mut digest = [0u8; DIGEST_LEN];
    if hex.len() != HEX_LEN {
        return Err(BadLine::BadDigest);
    }
    hex::decode_to_slice(hex, &mut digest).map_err(|_| BadLine::BadDigest)?;
    Ok(digest)
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
pub fn parse_line(line: &[u8], layout: &mut Layout) -> Result<Entry, BadLine> {
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut i = line.iter().take_while(|&&b| is_white(b)).count();
    let escaped = at(i) == b'\\';
    if escaped {
        i += 1;
    }

    if line[i..].starts_with(TAG) {
        i += TAG.len();
        if at(i) == b' ' {
            i += 1;
        }
        if at(i) != b'(' {
            return Err(BadLine::BadTag);
        }
        return parse_tagged(&line[i + 1..], escaped);
    }

    // Untagged: `<hex><white><name>`. The digest is split off from the left, at the first
    // white byte, because every byte after the separator belongs to the name: names may hold
    // spaces, tabs, even a leading space, and only the digest has a known shape.
    let min_len = HEX_LEN + 2 + usize::from(at(i) == b'\\');
    if line.len() - i < min_len {
        return Err(BadLine::TooShort);
    }
    let start = i;
    while i < line.len() && !is_white(line[i]) {
        i += 1;
    }
    if i == line.len() {
        return Err(BadLine::NoSeparator);
    }
    let digest = parse_digest(&line[start..i])?;
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
    Ok(Entry { digest, name })
}

/// The part of a BSD line after `SHA256 (`: `<name>) = <hex>`. The name is split off from the
/// right, at the last `)`, because the name may itself hold `)` and `=`, while the digest
/// after it cannot.
fn parse_tagged(rest: &[u8], escaped: bool) -> Result<Entry, BadLine> {
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
    let digest = parse_digest(&rest[i..])?;
    Ok(Entry { digest, name })
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

/// Reads delimiter-terminated records of at most [`MAX_RECORD`] bytes.
struct RecordReader<R> {
    reader: R,
    delim: u8,
}

/// One record from a list.
enum Record {
    /// A complete record, including its delimiter if it had one.
    Complete,
    /// A record longer than the limit; the rest of it was skipped.
    TooLong,
}

impl<R: BufRead> RecordReader<R> {
    fn next_record(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<Record>> {
        buf.clear();
        let limit = MAX_RECORD as u64 + 1;
        let n = (&mut self.reader).take(limit).read_until(self.delim, buf)?;
        if n == 0 {
            return Ok(None);
        }
        if buf.len() <= MAX_RECORD || buf.last() == Some(&self.delim) {
            return Ok(Some(Record::Complete));
        }
        // Skip to the end of the oversized record without keeping it.
        loop {
            let chunk = self.reader.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            match chunk.iter().position(|&b| b == self.delim) {
                Some(pos) => {
                    self.reader.consume(pos + 1);
                    break;
                }
                None => {
                    let len = chunk.len();
                    self.reader.consume(len);
                }
            }
        }
        buf.clear();
        Ok(Some(Record::TooLong))
    }
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
    Verified { name: Vec<u8>, matched: bool },
    /// The file does not exist and `--ignore-missing` is on.
    Missing,
    /// The file could not be opened or read.
    Unreadable { name: Vec<u8>, reason: Reason },
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
    matched_any: bool,
    formatted_any: bool,
}

/// How a `check` run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOutcome {
    /// Every list was read; `true` when every one verified completely (GNU's status 0).
    Checked(bool),
    /// A signal stopped the run; the output holds only whole lines.
    Interrupted(i32),
}

/// Verifies every list in `config`, writing results to `out` and diagnostics to `err`.
pub fn run_check(
    config: &CheckConfig,
    pool: &rayon::ThreadPool,
    tuning: Tuning,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<CheckOutcome> {
    // GNU keeps the untagged layout across all the lists of one run.
    let mut layout = Layout::default();
    let mut all_ok = true;
    let stdin = [PathBuf::from("-")];
    let lists = if config.lists.is_empty() {
        &stdin[..]
    } else {
        &config.lists[..]
    };
    for list in lists {
        let is_stdin = list.as_os_str() == "-";
        let reader: Box<dyn Read> = if is_stdin {
            Box::new(io::stdin())
        } else {
            match File::open(list) {
                Ok(file) => Box::new(file),
                Err(e) => {
                    out.flush()?;
                    write_message(err, list, &crate::report::io_reason(&e));
                    all_ok = false;
                    continue;
                }
            }
        };
        let source = ListSource {
            reader,
            is_stdin,
            name: list,
        };
        match check_list(config, pool, tuning, source, &mut layout, out, err)? {
            CheckOutcome::Checked(ok) => all_ok &= ok,
            interrupted @ CheckOutcome::Interrupted(_) => return Ok(interrupted),
        }
    }
    Ok(CheckOutcome::Checked(all_ok))
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

fn check_list(
    config: &CheckConfig,
    pool: &rayon::ThreadPool,
    tuning: Tuning,
    source: ListSource<'_>,
    layout: &mut Layout,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<CheckOutcome> {
    let shown = source.shown().to_path_buf();
    let shown = shown.as_path();
    let is_stdin = source.is_stdin;
    let zero = config.zero;
    let mut records = RecordReader {
        reader: BufReader::with_capacity(64 * 1024, source.reader),
        delim: if zero { b'\0' } else { b'\n' },
    };
    let mut line_no = 0u64;
    let mut buf = Vec::new();
    let mut done = false;
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
            return Some(match parse_line(line, layout) {
                Ok(entry) if is_stdin && entry.name == b"-" => Item::Bad(line_no),
                Ok(entry) => Item::Verify(entry),
                Err(_) => Item::Bad(line_no),
            });
        }
        None
    });

    let ignore_missing = config.ignore_missing;
    let work = |item: Item| match item {
        Item::Verify(entry) => verify(entry, ignore_missing),
        Item::Bad(n) => Verdict::Bad(n),
        Item::ReadError => Verdict::ReadError,
    };

    let verbosity = config.verbosity;
    let mut tally = Tally::default();
    let mut read_error = false;
    let mut line = Vec::with_capacity(256);
    let completion = pool::run_ordered(pool, tuning, items, work, |verdict| {
        match verdict {
            Verdict::Verified { name, matched } => {
                tally.formatted_any = true;
                if matched {
                    tally.matched_any = true;
                } else {
                    tally.mismatched += 1;
                }
                let show = match verbosity {
                    Verbosity::Status => false,
                    Verbosity::Quiet => !matched,
                    Verbosity::Normal | Verbosity::Warn => true,
                };
                if show {
                    write_result(out, &mut line, &name, if matched { "OK" } else { "FAILED" })?;
                }
            }
            Verdict::Missing => tally.formatted_any = true,
            Verdict::Unreadable { name, reason } => {
                tally.formatted_any = true;
                tally.unreadable += 1;
                out.flush()?;
                // Like GNU, the reason goes to stderr even with --status.
                write_message(err, Path::new(OsStr::from_bytes(&name)), &reason);
                if verbosity != Verbosity::Status {
                    write_result(out, &mut line, &name, "FAILED open or read")?;
                }
            }
            Verdict::Bad(n) => {
                tally.misformatted += 1;
                if verbosity == Verbosity::Warn {
                    out.flush()?;
                    let text = format!("{n}: improperly formatted SHA256 checksum line");
                    write_message(err, shown, &text);
                }
            }
            Verdict::ReadError => read_error = true,
        }
        Ok::<(), io::Error>(())
    })?;
    out.flush()?;
    if let pool::Completion::Interrupted(signal) = completion {
        return Ok(CheckOutcome::Interrupted(signal));
    }

    if read_error {
        write_message(err, shown, &"read error");
        return Ok(CheckOutcome::Checked(false));
    }
    if !tally.formatted_any {
        write_message(err, shown, &"no properly formatted checksum lines found");
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
                let _ = writeln!(err, "{PROGRAM}: WARNING: {n} {noun} {what}");
            }
        }
        if config.ignore_missing && !tally.matched_any {
            write_message(err, shown, &"no file was verified");
        }
    }
    Ok(CheckOutcome::Checked(
        tally.matched_any
            && tally.mismatched == 0
            && tally.unreadable == 0
            && (!config.strict || tally.misformatted == 0),
    ))
}

/// Hashes the file an entry names and compares digests.
fn verify(entry: Entry, ignore_missing: bool) -> Verdict {
    let source = if entry.name == b"-" {
        Source::Stdin
    } else {
        Source::Path(PathBuf::from(OsString::from_vec(entry.name.clone())))
    };
    match hash_source(source) {
        Ok(hashed) => Verdict::Verified {
            name: entry.name,
            matched: hashed.digest == entry.digest,
        },
        Err(failure) => match failure.reason {
            Reason::Io(e) if ignore_missing && e.kind() == io::ErrorKind::NotFound => {
                Verdict::Missing
            }
            reason => Verdict::Unreadable {
                name: entry.name,
                reason,
            },
        },
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
        let mut d = [0u8; DIGEST_LEN];
        hex::decode_to_slice(HEX, &mut d).unwrap();
        d
    }

    fn parse(line: &str, layout: Layout) -> (Result<Vec<u8>, BadLine>, Layout) {
        let mut layout = layout;
        let result = parse_line(line.as_bytes(), &mut layout).map(|e| {
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

    #[test]
    fn records_longer_than_the_limit_are_skipped_whole() {
        let mut data = vec![b'x'; MAX_RECORD * 3];
        data.extend_from_slice(b"\nnext\n");
        let mut reader = RecordReader {
            reader: BufReader::new(&data[..]),
            delim: b'\n',
        };
        let mut buf = Vec::new();
        assert!(matches!(
            reader.next_record(&mut buf).unwrap(),
            Some(Record::TooLong)
        ));
        assert!(buf.capacity() <= 2 * MAX_RECORD + 64);
        assert!(matches!(
            reader.next_record(&mut buf).unwrap(),
            Some(Record::Complete)
        ));
        assert_eq!(buf, b"next\n");
        assert!(reader.next_record(&mut buf).unwrap().is_none());
    }

    proptest! {
        #[test]
        fn any_name_written_by_hash_parses_back(
            name in proptest::collection::vec(1u8..=255, 1..80),
            digest in proptest::array::uniform32(any::<u8>()),
            bsd in any::<bool>(),
            zero in any::<bool>(),
        ) {
            let style = if bsd { LineStyle::Bsd } else { LineStyle::Gnu };
            let format = LineFormat { style, zero, tag: "SHA256" };
            let mut line = Vec::new();
            format_line(&mut line, &format, &digest, &name);
            let content = trim_record(&line, zero);
            // A -z record keeps every byte; a newline record loses one trailing CR, which
            // escaping guarantees is never part of the name.
            let mut layout = Layout::Undecided;
            let entry = parse_line(content.unwrap(), &mut layout).unwrap();
            prop_assert_eq!(entry.name, name);
            prop_assert_eq!(entry.digest, digest);
        }
    }
}
