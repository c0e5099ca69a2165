//! A manifest read into memory, compactly, with the state records bound to its lines.
//!
//! `audit` compares a tree with it, and `hash --update` decides from it which files it may
//! skip. It is read once, as a stream: names go into one byte arena and digests into another,
//! each line costs a 16-byte entry (plus 56 bytes for its state record, once the manifest has
//! any), and the entries are sorted by name for lookups (binary search). About 110 MB for a
//! million lines of 44-byte names without state, 170 MB with state.
//!
//! A manifest in a file can be read in parts ([`PartedRead`]): cut at line boundaries (never
//! between a state line and its line), each part read on its own, the parts' arenas kept as
//! they are and only their entries merged. Reading and parsing is most of the time of an
//! update of an unchanged tree, and parts make it parallel; how the parts are run is the
//! caller's business.
//!
//! Lines are read as `check` reads them (`parse`), of one algorithm; lines of another, and
//! malformed lines, are counted as bad and left out. A state line ([`state`](super::state))
//! belongs to the digest line right after it, and only if it binds to that line's bytes; any
//! other line in between, or a line it was not written for, unbinds it. Of two lines for one
//! name, the later one counts. A leading `./` is ignored in names, as `audit` compares them.

use std::io::{self, Read};

use crate::digest::Algorithm;
use crate::format::parse::{Accept, Layout, parse_line_ref, trim_record};
use crate::format::records::{Record, RecordReader};
use crate::format::state::{self, FileState, Pending, StateRecord, Time, Trust};

mod parted;

pub use parted::{FileRange, PartTask, PartedRead};

/// One line of the manifest: which part it is in, and where its name, digest and state are.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The part (top 8 bits) and the name's offset in that part's arena.
    name: u64,
    name_len: u32,
    /// The line's number among the checksum lines of its part: where its digest is in the
    /// part's digest arena, and its state in the part's `states`.
    line: u32,
}

const PART_SHIFT: u32 = 56;

impl Entry {
    fn part(&self) -> usize {
        (self.name >> PART_SHIFT) as usize
    }
}

/// A state record, packed: 56 bytes instead of 80, which is 24 MB per million lines.
#[derive(Debug, Clone, Copy)]
struct Packed {
    size: u64,
    ino: u64,
    mtime: i64,
    ctime: i64,
    verified: i64,
    mtime_nanos: u32,
    ctime_nanos: u32,
    verified_nanos: u32,
    /// 0 for a line without a record, else 1 + the trust.
    trust: u8,
}

impl Packed {
    const NONE: Packed = Packed {
        size: 0,
        ino: 0,
        mtime: 0,
        ctime: 0,
        verified: 0,
        mtime_nanos: 0,
        ctime_nanos: 0,
        verified_nanos: 0,
        trust: 0,
    };

    fn pack(record: &StateRecord) -> Packed {
        let s = &record.state;
        Packed {
            size: s.size,
            ino: s.ino,
            mtime: s.mtime.secs,
            ctime: s.ctime.secs,
            verified: record.verified.secs,
            mtime_nanos: s.mtime.nanos,
            ctime_nanos: s.ctime.nanos,
            verified_nanos: record.verified.nanos,
            trust: 1 + Trust::ALL
                .iter()
                .position(|&t| t == record.trust)
                .unwrap_or(0) as u8,
        }
    }

    fn unpack(&self) -> Option<StateRecord> {
        let trust = *Trust::ALL.get(usize::from(self.trust).checked_sub(1)?)?;
        let time = |secs, nanos| Time { secs, nanos };
        Some(StateRecord {
            state: FileState {
                size: self.size,
                mtime: time(self.mtime, self.mtime_nanos),
                ctime: time(self.ctime, self.ctime_nanos),
                ino: self.ino,
            },
            verified: time(self.verified, self.verified_nanos),
            trust,
        })
    }
}

/// Where the bytes of one entry are in the manifest file: its state line (if bound) and its
/// checksum line, with their ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Offset of the first byte.
    pub start: u64,
    /// Length in bytes.
    pub len: u32,
}

/// The lines of one part of a manifest.
#[derive(Debug, Default)]
pub struct Part {
    names: Vec<u8>,
    digests: Vec<u8>,
    /// The state of each line, by line number; empty while no line has had one.
    states: Vec<Packed>,
    /// Where each line's bytes are, by line number (only when asked for: `hash --update`
    /// copies the lines it keeps from the old manifest).
    spans: Vec<Span>,
    entries: Vec<Entry>,
    bad_lines: u64,
    /// Comment lines of sumpool's own (state lines, the shard line).
    own_comments: u64,
    /// Lines whose name starts with `./`.
    dotted: u64,
    /// The untagged layout fixed by the part's first untagged line, if read from an undecided
    /// one, and the layout at its end.
    first_layout: Layout,
    last_layout: Layout,
}

impl Part {
    /// Reads every line of `reader` as part number `index`, starting with `layout`; with
    /// `spans`, records where each line is, `base` being the offset of the part in the file.
    fn read(
        reader: impl Read,
        index: usize,
        (algorithm, zero): (Algorithm, bool),
        mut layout: Layout,
        spans: Option<u64>,
    ) -> io::Result<Part> {
        let mut part = Part::default();
        let mut records = RecordReader::new(reader, if zero { b'\0' } else { b'\n' });
        let mut buf = Vec::new();
        // The state line just read, waiting for the line it was written for, and where it
        // started.
        let mut pending: Option<Pending> = None;
        let mut state_line = Vec::new();
        let mut state_at = 0;
        loop {
            let at = records.position();
            let Some(record) = records.next_record(&mut buf)? else {
                break;
            };
            let waiting = pending.take();
            if record == Record::TooLong {
                part.bad_lines += 1;
                continue;
            }
            let content = buf.strip_suffix(if zero { b"\0" } else { b"\n" });
            let content = content.unwrap_or(&buf);
            if state::is_state_line(content) {
                pending = state::parse_state(content);
                state_line.clear();
                state_line.extend_from_slice(content);
                state_at = at;
                part.own_comments += 1;
                continue;
            }
            let Some(line) = trim_record(&buf, zero) else {
                if crate::format::entries::parse_shard_line(content).is_some() {
                    part.own_comments += 1;
                }
                continue;
            };
            let before = layout;
            match parse_line_ref(line, &mut layout, Accept::exactly(algorithm)) {
                // As in `check`: no file name holds a NUL. A digest in base64 that is not
                // how any digest encodes has no bytes to keep: the line is bad.
                Ok(entry) if entry.name.contains(&0) || entry.digest.is_unmatchable() => {
                    part.bad_lines += 1
                }
                Ok(entry) => {
                    let state = waiting.and_then(|p| p.bind(&state_line, line));
                    if let Some(base) = spans {
                        let start = if state.is_some() { state_at } else { at };
                        part.spans.push(Span {
                            start: base + start,
                            len: (records.position() - start) as u32,
                        });
                    }
                    let name = normalize(&entry.name);
                    part.dotted += u64::from(name.len() != entry.name.len());
                    part.push(index, name, entry.digest.as_bytes(), state);
                }
                Err(_) => part.bad_lines += 1,
            }
            if before == Layout::Undecided && part.first_layout == Layout::Undecided {
                part.first_layout = layout;
            }
        }
        part.last_layout = layout;
        Ok(part)
    }

    fn push(&mut self, index: usize, name: &[u8], digest: &[u8], state: Option<StateRecord>) {
        let line = self.entries.len();
        if let Some(record) = state {
            self.states.resize(line, Packed::NONE);
            self.states.push(Packed::pack(&record));
        }
        self.entries.push(Entry {
            name: ((index as u64) << PART_SHIFT) | self.names.len() as u64,
            name_len: name.len() as u32,
            line: line as u32,
        });
        self.names.extend_from_slice(name);
        self.digests.extend_from_slice(digest);
    }
}

/// The manifest, in memory; entries are numbered `0..len()` in name order.
pub struct Manifest {
    parts: Vec<Part>,
    digest_len: usize,
    /// Every part's entries, sorted by name.
    entries: Vec<Entry>,
    /// Entries in digest order, once [`Manifest::index_digests`] was called.
    by_digest: Vec<u32>,
    /// An open-addressing hash table of entry numbers + 1 (0 is free), by name: a lookup is
    /// one hash and about one comparison, where a binary search took twenty.
    by_name: Vec<u32>,
    /// Improperly formatted lines, and lines of another algorithm.
    bad_lines: u64,
    /// Comment lines of sumpool's own (state lines, shard lines).
    own_comments: u64,
    /// Lines whose name started with `./` (names are kept without it).
    dotted: u64,
}

/// `path` without any leading `./`.
pub fn normalize(mut path: &[u8]) -> &[u8] {
    while let Some(rest) = path.strip_prefix(b"./") {
        path = rest.strip_prefix(b"/").unwrap_or(rest);
        while let Some(rest) = path.strip_prefix(b"/") {
            path = rest;
        }
    }
    path
}

impl Manifest {
    /// A manifest without a line, of `algorithm`.
    pub fn empty(algorithm: Algorithm) -> Manifest {
        Manifest::from_parts(Vec::new(), algorithm)
    }

    /// Reads a manifest of `algorithm` lines, NUL-terminated with `zero`, as one stream.
    pub fn read(reader: impl Read, algorithm: Algorithm, zero: bool) -> io::Result<Manifest> {
        let part = Part::read(reader, 0, (algorithm, zero), Layout::Undecided, None)?;
        Ok(Manifest::from_parts(vec![part], algorithm))
    }

    /// The manifest of `parts`, in line order: their entries merged and sorted by name. Of
    /// two lines for one name, the later one counts (the sort is stable, so it is the last
    /// of its run).
    fn from_parts(mut parts: Vec<Part>, algorithm: Algorithm) -> Manifest {
        let total = parts.iter().map(|p| p.entries.len()).sum();
        let mut entries = Vec::with_capacity(total);
        let (mut bad_lines, mut own_comments, mut dotted) = (0, 0, 0);
        for part in &mut parts {
            entries.append(&mut part.entries);
            part.entries = Vec::new();
            part.names.shrink_to_fit();
            part.digests.shrink_to_fit();
            part.states.shrink_to_fit();
            bad_lines += part.bad_lines;
            own_comments += part.own_comments;
            dotted += part.dotted;
        }
        let name = |e: &Entry| name_of(&parts, e);
        entries.sort_by(|a, b| name(a).cmp(name(b)));
        entries.dedup_by(|later, earlier| {
            let same = name(later) == name(earlier);
            if same {
                *earlier = *later;
            }
            same
        });
        entries.shrink_to_fit();
        let mut manifest = Manifest {
            parts,
            digest_len: algorithm.digest_len(),
            entries,
            by_digest: Vec::new(),
            by_name: Vec::new(),
            bad_lines,
            own_comments,
            dotted,
        };
        manifest.index_names();
        manifest
    }

    /// Fills the hash table of names, at most half full.
    fn index_names(&mut self) {
        let slots = (self.entries.len() * 2).next_power_of_two().max(16);
        let mut table = vec![0u32; slots];
        let mask = slots - 1;
        for i in 0..self.entries.len() {
            let mut slot = name_hash(self.name(i)) as usize & mask;
            while table[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            table[slot] = i as u32 + 1;
        }
        self.by_name = table;
    }

    /// Builds the index by digest that [`Manifest::with_digest`] needs.
    pub fn index_digests(&mut self) {
        let mut by_digest: Vec<u32> = (0..self.entries.len() as u32).collect();
        by_digest.sort_by(|&a, &b| self.digest(a as usize).cmp(self.digest(b as usize)));
        self.by_digest = by_digest;
    }

    /// The name of entry `i` (without a leading `./`).
    pub fn name(&self, i: usize) -> &[u8] {
        name_of(&self.parts, &self.entries[i])
    }

    /// The digest of entry `i`.
    pub fn digest(&self, i: usize) -> &[u8] {
        let entry = &self.entries[i];
        let start = entry.line as usize * self.digest_len;
        &self.parts[entry.part()].digests[start..start + self.digest_len]
    }

    /// The state record bound to entry `i`'s line, if it had one.
    pub fn state(&self, i: usize) -> Option<StateRecord> {
        let entry = &self.entries[i];
        self.parts[entry.part()]
            .states
            .get(entry.line as usize)?
            .unpack()
    }

    /// The entry for `name` (a leading `./` is ignored).
    pub fn find(&self, name: &[u8]) -> Option<usize> {
        let name = normalize(name);
        let mask = self.by_name.len().checked_sub(1)?;
        let mut slot = name_hash(name) as usize & mask;
        loop {
            let entry = (*self.by_name.get(slot)? as usize).checked_sub(1)?;
            if self.name(entry) == name {
                return Some(entry);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// The entry for `name`, trying entry `guess` first: a walk meets names mostly in the
    /// manifest's order, so the entry after the last one found is usually the next one, and
    /// comparing it (memory read in order) costs less than a lookup in the table (three
    /// reads at random places).
    pub fn find_from(&self, name: &[u8], guess: usize) -> Option<usize> {
        if let Some(entry) = self.entries.get(guess)
            && name_of(&self.parts, entry) == normalize(name)
        {
            return Some(guess);
        }
        self.find(name)
    }

    /// The entries whose digest is `digest` (after [`Manifest::index_digests`]).
    pub fn with_digest<'a>(&'a self, digest: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
        let start = self
            .by_digest
            .partition_point(|&i| self.digest(i as usize) < digest);
        self.by_digest[start..]
            .iter()
            .map(|&i| i as usize)
            .take_while(move |&i| self.digest(i) == digest)
    }

    /// How many files the manifest lists.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the manifest lists no file.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether any line has a state record.
    pub fn has_state(&self) -> bool {
        self.parts.iter().any(|p| !p.states.is_empty())
    }

    /// Improperly formatted lines, and lines of another algorithm, that were left out.
    pub fn bad_lines(&self) -> u64 {
        self.bad_lines
    }

    /// Whether a file of `len` bytes that read as this manifest is one that `hash --update`
    /// may replace: every line of it is a checksum line of the manifest's algorithm, a
    /// comment or blank, and it is empty, holds a checksum line, or holds sumpool's own
    /// comment lines (a shard manifest of no file). A README given by mistake (even one that
    /// quotes a few checksum lines), a manifest of another algorithm, or one with a damaged
    /// line is not: replacing it would drop lines no run looked at.
    pub fn is_manifest(&self, len: u64) -> bool {
        self.bad_lines == 0 && (len == 0 || !self.entries.is_empty() || self.own_comments > 0)
    }

    /// How the manifest spells its relative names: `Some(true)` if every line starts with
    /// `./` (as a run over `.` writes them), `Some(false)` if none does, `None` if both
    /// are found or there is no line.
    pub fn dotted(&self) -> Option<bool> {
        let lines = self.entries.len() as u64;
        match self.dotted {
            _ if lines == 0 => None,
            0 => Some(false),
            n if n >= lines => Some(true),
            _ => None,
        }
    }

    /// Where the bytes of entry `i` are in the file (when read with spans).
    pub fn span(&self, i: usize) -> Option<Span> {
        let entry = &self.entries[i];
        self.parts[entry.part()]
            .spans
            .get(entry.line as usize)
            .copied()
    }
}

fn name_hash(name: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(name)
}

fn name_of<'a>(parts: &'a [Part], entry: &Entry) -> &'a [u8] {
    let start = (entry.name & ((1 << PART_SHIFT) - 1)) as usize;
    &parts[entry.part()].names[start..start + entry.name_len as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::state::write_state;

    #[test]
    fn normalize_drops_leading_dot_slashes() {
        assert_eq!(normalize(b"./a/b"), b"a/b");
        assert_eq!(normalize(b"././a"), b"a");
        assert_eq!(normalize(b".//a"), b"a");
        assert_eq!(normalize(b"a/./b"), b"a/./b");
        assert_eq!(normalize(b".hidden"), b".hidden");
    }

    #[test]
    fn listed_files_are_found_by_name_and_digest() {
        let hex_a = "a".repeat(64);
        let hex_b = "b".repeat(64);
        let text = format!("{hex_a}  ./x\n{hex_b}  y\njunk\n{hex_a}  z\n{hex_b}  x\n");
        let mut manifest = Manifest::read(text.as_bytes(), Algorithm::Sha256, false).unwrap();
        manifest.index_digests();
        assert_eq!(manifest.len(), 3);
        assert_eq!(manifest.bad_lines(), 1);
        // The later line for x wins.
        let x = manifest.find(b"./x").unwrap();
        assert_eq!(manifest.digest(x), &[0xbb; 32][..]);
        let with_a: Vec<&[u8]> = manifest
            .with_digest(&[0xaa; 32])
            .map(|i| manifest.name(i))
            .collect();
        assert_eq!(with_a, vec![&b"z"[..]]);
        assert!(!manifest.has_state());
    }

    #[test]
    fn a_guess_is_taken_only_when_its_name_is_the_one_asked_for() {
        let hex = "a".repeat(64);
        let text = format!("{hex}  b\n{hex}  a\n{hex}  ./c\n");
        let manifest = Manifest::read(text.as_bytes(), Algorithm::Sha256, false).unwrap();
        let (a, b, c) = (
            manifest.find(b"a").unwrap(),
            manifest.find(b"b").unwrap(),
            manifest.find(b"c").unwrap(),
        );
        // Every guess, right, wrong or past the end, finds the same entry as a lookup.
        for guess in [0, 1, 2, 3, usize::MAX] {
            assert_eq!(manifest.find_from(b"a", guess), Some(a));
            assert_eq!(manifest.find_from(b"./b", guess), Some(b));
            assert_eq!(manifest.find_from(b"c", guess), Some(c));
            assert_eq!(manifest.find_from(b"d", guess), None);
            assert_eq!(manifest.find_from(b"", guess), None);
        }
    }

    fn record(size: u64) -> StateRecord {
        let t = Time {
            secs: 1_700_000_000,
            nanos: 1,
        };
        StateRecord {
            state: FileState {
                size,
                mtime: t,
                ctime: t,
                ino: 7,
            },
            verified: Time {
                secs: 1_700_000_100,
                nanos: 0,
            },
            trust: Trust::Ok,
        }
    }

    /// A state line for `digest_line`, then the line, as `hash --update` writes them.
    fn stated(out: &mut Vec<u8>, size: u64, digest_line: &str) {
        write_state(out, &record(size), digest_line.as_bytes(), b'\n');
        out.extend_from_slice(digest_line.as_bytes());
        out.push(b'\n');
    }

    #[test]
    fn state_records_bind_only_to_the_line_they_were_written_for() {
        let hex = "c".repeat(64);
        let (a, b, c) = (
            format!("{hex}  a"),
            format!("{hex}  b"),
            format!("{hex}  c"),
        );
        let mut text = Vec::new();
        stated(&mut text, 1, &a);
        stated(&mut text, 2, &b);
        let manifest = Manifest::read(&text[..], Algorithm::Sha256, false).unwrap();
        let state = |name: &[u8]| manifest.state(manifest.find(name).unwrap());
        assert_eq!(state(b"a"), Some(record(1)));
        assert_eq!(state(b"b"), Some(record(2)));

        // Sorted (state lines first), a line deleted, a comment or blank line in between,
        // a record in front of another file's line: nothing binds where it should not.
        let mut lines: Vec<&[u8]> = text
            .split(|&x| x == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        lines.sort();
        let sorted = lines.join(&b'\n');
        let manifest = Manifest::read(&sorted[..], Algorithm::Sha256, false).unwrap();
        assert_eq!(manifest.len(), 2);
        assert!(!manifest.has_state());

        let mut swapped = Vec::new();
        write_state(&mut swapped, &record(1), a.as_bytes(), b'\n');
        swapped.extend_from_slice(format!("{c}\n# note\n").as_bytes());
        write_state(&mut swapped, &record(2), b.as_bytes(), b'\n');
        swapped.extend_from_slice(format!("\n{b}\n").as_bytes());
        let manifest = Manifest::read(&swapped[..], Algorithm::Sha256, false).unwrap();
        assert_eq!(manifest.len(), 2);
        assert!(!manifest.has_state());
    }

    #[test]
    fn nul_manifests_bind_too() {
        let hex = "d".repeat(64);
        let line = format!("{hex}  a\nb");
        let mut text = Vec::new();
        write_state(&mut text, &record(3), line.as_bytes(), b'\0');
        text.extend_from_slice(line.as_bytes());
        text.push(b'\0');
        let manifest = Manifest::read(&text[..], Algorithm::Sha256, true).unwrap();
        assert_eq!(
            manifest.state(manifest.find(b"a\nb").unwrap()),
            Some(record(3))
        );
    }
}
