//! A manifest read entry by entry, as bytes to copy: each checksum line together with the
//! state line written for it, and the name it holds.
//!
//! `merge` puts shard manifests back together this way, and `hash --update` puts the lines
//! it keeps from the old manifest back among the new ones: both copy lines byte for byte and
//! only need each line's name to know where it goes. A state line travels with the checksum
//! line right after it; other comments and blank lines are left out, except the shard line
//! ([`shard_line`]), which is read into [`EntryReader::shard`].
//!
//! Also here: the order of a walk ([`walk_order`]), by which such entries are merged.

use std::cmp::Ordering;
use std::io::{self, Read};

use crate::digest::Algorithm;
use crate::format::parse::{Accept, Layout, parse_line, trim_record};
use crate::format::records::{Record, RecordReader};
use crate::format::state;

/// Compares two paths (as bytes) in walk order: component by component, each by its bytes.
/// (Comparing whole paths as strings would not do: `a-b` sorts before `a/x`, but a walk
/// visits `a/x` first.)
pub fn walk_order(a: &[u8], b: &[u8]) -> Ordering {
    a.split(|&c| c == b'/').cmp(b.split(|&c| c == b'/'))
}

/// How the first line of a shard manifest (`hash --shard K/N`) starts. A comment, which
/// `sha256sum -c` and `sumpool check` skip; `merge` reads it to tell missing or doubled
/// shards.
const SHARD_LINE: &[u8] = b"# sumpool shard ";

/// The comment line naming shard `index` of `count`, ended by `end`.
pub fn shard_line(index: u64, count: u64, end: u8) -> Vec<u8> {
    let mut line = SHARD_LINE.to_vec();
    line.extend_from_slice(format!("{index}/{count}").as_bytes());
    line.push(end);
    line
}

/// The shard a comment line names (without its end), if it is a shard line.
pub fn parse_shard_line(line: &[u8]) -> Option<(u64, u64)> {
    let rest = std::str::from_utf8(line.strip_prefix(SHARD_LINE)?).ok()?;
    let (index, count) = rest.trim_end_matches('\r').split_once('/')?;
    let (index, count) = (index.parse().ok()?, count.parse().ok()?);
    (index >= 1 && index <= count).then_some((index, count))
}

/// One checksum line and the state line before it, as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// The state line (if any) and the checksum line, each with its end.
    pub bytes: Vec<u8>,
    /// The file name the checksum line holds, unescaped.
    pub name: Vec<u8>,
    /// Its algorithm (a file has a line per algorithm in a manifest of several).
    pub algorithm: Algorithm,
}

/// A line that is not part of a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadEntry {
    /// Line `n` is longer than any checksum line can be.
    TooLong(u64),
    /// Line `n` is not a checksum line.
    NotChecksum(u64),
}

/// Reads a manifest entry by entry.
pub struct EntryReader<R> {
    records: RecordReader<R>,
    layout: Layout,
    zero: bool,
    /// Lines read so far.
    pub line_no: u64,
    /// The shard its shard line names, once read.
    pub shard: Option<(u64, u64)>,
    buf: Vec<u8>,
}

impl<R: Read> EntryReader<R> {
    /// Entries of `reader`, whose lines end in NUL with `zero`.
    pub fn new(reader: R, zero: bool) -> EntryReader<R> {
        EntryReader {
            records: RecordReader::new(reader, if zero { b'\0' } else { b'\n' }),
            layout: Layout::default(),
            zero,
            line_no: 0,
            shard: None,
            buf: Vec::new(),
        }
    }

    /// The next entry; `None` at the end.
    pub fn next_entry(&mut self) -> io::Result<Result<Option<RawEntry>, BadEntry>> {
        let delim = if self.zero { b'\0' } else { b'\n' };
        // A state line, kept if the next line is a checksum line.
        let mut state: Option<Vec<u8>> = None;
        loop {
            let Some(record) = self.records.next_record(&mut self.buf)? else {
                return Ok(Ok(None));
            };
            self.line_no += 1;
            if record == Record::TooLong {
                return Ok(Err(BadEntry::TooLong(self.line_no)));
            }
            let held = state.take();
            let content = self.buf.strip_suffix(&[delim]).unwrap_or(&self.buf);
            if state::is_state_line(content) {
                let mut line = content.to_vec();
                line.push(delim);
                state = Some(line);
                continue;
            }
            if let Some(shard) = parse_shard_line(content) {
                self.shard.get_or_insert(shard);
                continue;
            }
            let Some(line) = trim_record(&self.buf, self.zero) else {
                continue;
            };
            // Any algorithm: a merge needs the names only.
            let Ok(entry) = parse_line(line, &mut self.layout, Accept::NAMES) else {
                return Ok(Err(BadEntry::NotChecksum(self.line_no)));
            };
            let mut bytes = held.unwrap_or_default();
            bytes.extend_from_slice(line);
            bytes.push(delim);
            return Ok(Ok(Some(RawEntry {
                bytes,
                name: entry.name,
                algorithm: entry.algorithm,
            })));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_order_is_component_order() {
        let mut paths: Vec<&[u8]> = vec![b"t/a-b", b"t/a/x", b"t/a/y/z", b"t/a.c", b"t/B", b"t/a"];
        paths.sort_by(|a, b| walk_order(a, b));
        let want: Vec<&[u8]> = vec![b"t/B", b"t/a", b"t/a/x", b"t/a/y/z", b"t/a-b", b"t/a.c"];
        assert_eq!(paths, want);
    }

    #[test]
    fn shard_lines_round_trip_and_reject_nonsense() {
        let line = shard_line(3, 8, b'\n');
        assert_eq!(parse_shard_line(&line[..line.len() - 1]), Some((3, 8)));
        for bad in [
            &b"# sumpool shard 0/8"[..],
            b"# sumpool shard 9/8",
            b"# sumpool shard x/8",
            b"# sumpool shard 1",
            b"# something else",
        ] {
            assert_eq!(parse_shard_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn state_lines_travel_with_their_line_and_comments_are_left_out() {
        use crate::format::state::{FileState, StateRecord, Time, Trust, write_state};
        let hex = "a".repeat(64);
        let x = format!("{hex}  x");
        let t = Time { secs: 5, nanos: 6 };
        let record = StateRecord {
            state: FileState {
                size: 1,
                mtime: t,
                ctime: t,
                ino: 2,
            },
            verified: t,
            trust: Trust::Ok,
        };
        let mut stated = Vec::new();
        write_state(&mut stated, &record, x.as_bytes(), b'\n');
        stated.extend_from_slice(format!("{x}\n").as_bytes());
        let mut text = b"# sumpool shard 2/3\n".to_vec();
        text.extend_from_slice(&stated);
        text.extend_from_slice(format!("# note\n\n{hex}  y\n").as_bytes());
        let mut reader = EntryReader::new(&text[..], false);
        let first = reader.next_entry().unwrap().unwrap().unwrap();
        assert_eq!(reader.shard, Some((2, 3)));
        assert_eq!(first.name, b"x");
        assert_eq!(first.bytes, stated);
        let second = reader.next_entry().unwrap().unwrap().unwrap();
        assert_eq!(second.bytes, format!("{hex}  y\n").as_bytes());
        assert_eq!(reader.next_entry().unwrap(), Ok(None));
        let mut bad = EntryReader::new(&b"junk\n"[..], false);
        assert_eq!(bad.next_entry().unwrap(), Err(BadEntry::NotChecksum(1)));
    }
}
