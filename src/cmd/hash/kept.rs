//! `hash --update`: the lines of the old manifest that a run keeps without having looked at
//! their files, and where they go in the new manifest.
//!
//! An update never drops what it did not look at. A line of the old manifest whose file this
//! run did not read stays as it was, byte for byte, with its state line:
//!
//! - its file is outside the run's scope ([`Scope`]: another PATH, an `--exclude`d name,
//!   another shard, past `--max-depth`): *out of scope*. (`--prune` drops these instead, for
//!   a manifest that should describe exactly this run.)
//! - its file is in the scope, but could not be read (each such failure is reported and
//!   counted in the exit status), or was not reached while it is still there (on another
//!   file system with `-x`, under a directory that could not be listed): *unread*.
//!
//! Only the lines of files that are gone (no regular file at that path any more) are
//! dropped. Keeping unread lines matters beyond tidiness: an entry dropped by a run over part
//! of a tree would come back in the next full run as a new file, and its bytes, rotten or
//! not, would be recorded as the truth; kept with its state, the next scrub still tells
//! corruption from a write.
//!
//! Lines of unread files are written where the failure comes in the walk. Out-of-scope and
//! unreached lines are only known at the end: the new lines are then merged with them into a
//! second temporary file, in walk order (`format::entries::walk_order`), each group in its
//! own order. When no line is kept that way (the nightly update of a whole tree), the first
//! temporary file is the manifest and nothing is copied twice.
//!
//! A PATH spelled otherwise than the manifest spells it (`/abs/data` or `../x/data` for
//! `data`) would match none of its lines and list every file twice; such an update is
//! refused with the spelling to use ([`check_spelling`]). A leading `./` does not count.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::engine::walk::Scope;
use crate::format::entries::{EntryReader, walk_order};
use crate::format::manifest::{FileRange, Manifest, normalize};
use crate::format::quote::quote_name;

use super::update::{UpdateCounts, Updater};

/// What the end of an update keeps of the lines whose files it did not meet.
pub struct Leftovers {
    /// Entries to merge back in, in the old manifest's order.
    pub kept: Vec<usize>,
}

/// Sorts the entries of the old manifest that the run did not meet (`met[i]` false) into
/// kept and dropped, counting them in `counts`. A run whose time was up (`cut`) did not
/// look at the ones in its scope: every one stays, as at a checkpoint.
pub fn leftovers(
    updater: &Updater,
    met: &[bool],
    scope: &Scope,
    (prune, cut): (bool, bool),
    counts: &mut UpdateCounts,
) -> Leftovers {
    let manifest = updater.manifest();
    let mut kept = Vec::new();
    for (i, _) in met.iter().enumerate().filter(|(_, met)| !**met) {
        let name = manifest.name(i);
        if !scope.contains(name) {
            if prune {
                counts.pruned += 1;
            } else {
                counts.out_of_scope += 1;
                kept.push(i);
            }
        } else if cut {
            counts.not_reached += 1;
            kept.push(i);
        } else if still_there(name) {
            counts.unread += 1;
            kept.push(i);
        } else {
            counts.dropped += 1;
        }
    }
    kept.sort_by_key(|&i| manifest.span(i).map_or(0, |s| s.start));
    Leftovers { kept }
}

/// Whether `name` may still be a regular file: only a path that is gone (or is something
/// else now) lets its line be dropped. A stat that fails otherwise (a directory that cannot
/// be searched) says nothing, and the line is kept.
fn still_there(name: &[u8]) -> bool {
    match fs::symlink_metadata(Path::new(std::ffi::OsStr::from_bytes(name))) {
        Ok(meta) => meta.is_file(),
        Err(e) => !matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)),
    }
}

/// Where the new lines of an update are in its first temporary file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewLines {
    /// Bytes written so far.
    pub len: u64,
    /// Where the lines of the walk's second pass start, if it made one (a time-boxed run
    /// starts where the last one stopped, `resume`): those come first in walk order.
    pub wrapped_at: Option<u64>,
}

impl NewLines {
    /// The byte ranges of the lines, in walk order.
    fn ranges(&self) -> [(u64, u64); 2] {
        match self.wrapped_at {
            Some(at) => [(at.min(self.len), self.len), (0, at.min(self.len))],
            None => [(0, self.len), (self.len, self.len)],
        }
    }
}

/// Writes the manifest of the new lines in `new` (the first temporary file) and the kept
/// old entries merged, in walk order, to `out`.
pub fn merge(
    new: &File,
    written: NewLines,
    kept: &[usize],
    updater: &Updater,
    zero: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    let [(a, b), (c, d)] = written.ranges();
    let range = |at, end| FileRange { file: new, at, end };
    let mut lines = EntryReader::new(range(a, b).chain(range(c, d)), zero);
    let manifest = updater.manifest();
    let mut next_new = read_entry(&mut lines)?;
    let mut buf = Vec::new();
    for &i in kept {
        let old_name = manifest.name(i);
        while let Some(entry) = &next_new
            && walk_order(normalize(&entry.name), old_name).is_lt()
        {
            out.write_all(&entry.bytes)?;
            next_new = read_entry(&mut lines)?;
        }
        buf.clear();
        updater.copy_entry(i, &mut buf)?;
        out.write_all(&buf)?;
    }
    while let Some(entry) = next_new {
        out.write_all(&entry.bytes)?;
        next_new = read_entry(&mut lines)?;
    }
    out.flush()
}

/// The next entry of the new lines (which sumpool just wrote: every line is a checksum line).
fn read_entry<R: Read>(
    lines: &mut EntryReader<R>,
) -> io::Result<Option<crate::format::entries::RawEntry>> {
    lines
        .next_entry()?
        .map_err(|_| io::Error::other("a line just written is not a checksum line"))
}

/// Most directories of the manifest looked at for another spelling of an input.
const SPELLINGS_MAX: usize = 256;

/// Refuses an update whose PATH names a directory (or file) of the manifest under another
/// spelling: none of its lines would match, and every file would be listed twice.
pub fn check_spelling(manifest: &Manifest, inputs: &[PathBuf]) -> anyhow::Result<()> {
    if manifest.is_empty() {
        return Ok(());
    }
    for input in inputs.iter().filter(|i| i.as_os_str() != "-") {
        let root = Scope::of(std::slice::from_ref(input), &Default::default());
        if (0..manifest.len()).any(|i| root.contains(manifest.name(i))) {
            continue;
        }
        let Ok(real) = fs::canonicalize(input) else {
            continue;
        };
        let Some(last) = real.file_name().map(|n| n.as_bytes().to_vec()) else {
            continue;
        };
        let mut seen = BTreeSet::new();
        for i in 0..manifest.len() {
            for prefix in prefixes(manifest.name(i)) {
                let ends_with_last = prefix.rsplit(|&b| b == b'/').next() == Some(&last[..]);
                if !ends_with_last || !seen.insert(prefix.to_vec()) {
                    continue;
                }
                let spelled = Path::new(std::ffi::OsStr::from_bytes(prefix));
                if fs::canonicalize(spelled).is_ok_and(|p| p == real) {
                    bail!(
                        "{}: the manifest names this {}; give the path as the manifest does, or its files would be listed twice",
                        input.display(),
                        String::from_utf8_lossy(&quote_name(prefix))
                    );
                }
                if seen.len() >= SPELLINGS_MAX {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// `a/b/c` gives `a/b/c`, `a/b`, `a`: the name and the directories above it.
fn prefixes(name: &[u8]) -> impl Iterator<Item = &[u8]> {
    let ends = name
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'/' && i > 0)
        .map(|(i, _)| i);
    std::iter::once(name).chain(ends.map(|end| &name[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_the_name_and_its_directories() {
        let all: Vec<&[u8]> = prefixes(b"a/b/c").collect();
        assert_eq!(all, vec![&b"a/b/c"[..], b"a", b"a/b"]);
        let abs: Vec<&[u8]> = prefixes(b"/x/y").collect();
        assert_eq!(abs, vec![&b"/x/y"[..], b"/x"]);
    }
}
