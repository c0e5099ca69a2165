//! Reading a manifest file in parts, cut at line boundaries (never between a state line and
//! its line), each part on whatever thread the caller runs its task on.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

use super::{Manifest, Part};
use crate::digest::Algorithm;
use crate::format::parse::Layout;
use crate::format::state;

/// Most parts a manifest file is cut into.
const MAX_PARTS: usize = 64;

/// A manifest file to be read in parts, one task per part. Make it with [`PartedRead::open`],
/// run every [`PartedRead::tasks`] (on as many threads as suit), and give the results to
/// [`PartedRead::assemble`].
pub struct PartedRead {
    file: File,
    /// Where each part starts; the last part ends at the end of the file.
    starts: Vec<u64>,
    len: u64,
    algorithm: Algorithm,
    zero: bool,
    /// Record where each line is ([`Manifest::span`]).
    spans: bool,
}

/// Reading one part of a manifest file.
pub struct PartTask<'a> {
    read: &'a PartedRead,
    index: usize,
}

impl PartTask<'_> {
    /// Reads the part, as if the layout were undecided at its start.
    pub fn read(self) -> io::Result<Part> {
        self.read.read_part(self.index, Layout::Undecided)
    }
}

impl PartedRead {
    /// Prepares to read `file` in up to `parts` parts of about equal size; with `spans`,
    /// recording where each line is.
    pub fn open(
        file: File,
        (algorithm, zero): (Algorithm, bool),
        parts: usize,
        spans: bool,
    ) -> io::Result<Self> {
        let len = file.metadata()?.len();
        let mut read = PartedRead {
            file,
            starts: vec![0],
            len,
            algorithm,
            zero,
            spans,
        };
        let parts = parts.clamp(1, MAX_PARTS) as u64;
        // Parts smaller than this are not worth a thread.
        let parts = parts.min(len / (1 << 20)).max(1);
        for k in 1..parts {
            let cut = read.cut_after(k * len / parts)?;
            if let Some(cut) = cut.filter(|&c| c > *read.starts.last().unwrap_or(&0) && c < len) {
                read.starts.push(cut);
            }
        }
        Ok(read)
    }

    /// One task per part.
    pub fn tasks(&self) -> Vec<PartTask<'_>> {
        (0..self.starts.len())
            .map(|index| PartTask { read: self, index })
            .collect()
    }

    fn read_part(&self, index: usize, layout: Layout) -> io::Result<Part> {
        let start = self.starts[index];
        let end = self.starts.get(index + 1).copied().unwrap_or(self.len);
        let range = FileRange {
            file: &self.file,
            at: start,
            end,
        };
        let spans = self.spans.then_some(start);
        Part::read(range, index, (self.algorithm, self.zero), layout, spans)
    }

    /// The manifest from every part, in order. GNU's layout rule runs across lines, so a part
    /// whose first untagged line decided otherwise than the part before it ended is read
    /// again, from that layout; the parts agree otherwise, and their lines read the same.
    pub fn assemble(self, parts: Vec<io::Result<Part>>) -> io::Result<Manifest> {
        let mut read = Vec::with_capacity(parts.len());
        let mut carry = Layout::Undecided;
        for (index, part) in parts.into_iter().enumerate() {
            let mut part = part?;
            let disagrees = carry != Layout::Undecided
                && part.first_layout != Layout::Undecided
                && part.first_layout != carry;
            if disagrees {
                part = self.read_part(index, carry)?;
            }
            if part.last_layout != Layout::Undecided {
                carry = part.last_layout;
            }
            read.push(part);
        }
        Ok(Manifest::from_parts(read, self.algorithm))
    }

    /// The offset just after the line end at or after `at` where a part may start: never
    /// between a state line and the line after it.
    fn cut_after(&self, at: u64) -> io::Result<Option<u64>> {
        let delim = if self.zero { b'\0' } else { b'\n' };
        // A window that starts a little before `at`, to see the line that ends after it.
        let from = at.saturating_sub(1024);
        let mut window = vec![0u8; 64 << 10];
        let n = read_full_at(&self.file, &mut window, from)?;
        let window = &window[..n];
        let skip = (at - from) as usize;
        let ends = window
            .iter()
            .enumerate()
            .skip(skip)
            .filter(|&(_, &b)| b == delim)
            .map(|(i, _)| i);
        for end in ends {
            // The line that this delimiter ends: a state line's next line goes with it.
            let begin = window[..end]
                .iter()
                .rposition(|&b| b == delim)
                .map_or(0, |i| i + 1);
            if begin == 0 && from > 0 {
                continue;
            }
            if !state::is_state_line(&window[begin..end]) {
                return Ok(Some(from + end as u64 + 1));
            }
        }
        Ok(None)
    }
}

/// Reads as much of `buf` as the file holds at `offset`.
fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// A byte range of a file, read with `pread`, so parts share one open file.
pub struct FileRange<'a> {
    pub file: &'a File,
    /// The next byte to read.
    pub at: u64,
    /// Where the range ends (exclusive).
    pub end: u64,
}

impl Read for FileRange<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = (self.end - self.at).min(buf.len() as u64) as usize;
        if left == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..left], self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}
