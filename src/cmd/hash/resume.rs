//! Where a time-boxed update starts (`--max-duration`): where the last one stopped, so that
//! nightly runs cut short by their time still read the whole tree over successive nights.
//! Runs on the calling thread, which pulls the walk.
//!
//! Every file an update reads gets that run's start as its verification time (its state
//! line, `format::state`); the lines of the last run are those of the latest time. The last
//! run read the tree from where it started to where its time ended, so they lie in one
//! stretch of the manifest (going round from its end to its start), and the longest gap
//! between two of them is the part it did not reach. The run after starts at the first line
//! of that gap ([`resume_point`]), and walks the tree in two passes: from there to the end,
//! then from the start up to there ([`Rotated`]). With `--scrub 100` that is the files
//! verified longest ago first. The manifest is still written in walk order: the lines of the
//! second pass come first (`kept::NewLines`).
//!
//! Without a recorded time to go by (a manifest without state lines, or one whose last run
//! read everything), the run starts at the start.

use std::path::Path;

use crate::engine::walk::{Entry, Walk};
use crate::format::entries::walk_order;
use crate::format::manifest::{Manifest, normalize};
use crate::report::Failure;

/// What a time-boxed update feeds the engine: the walk's entries, and the point where its
/// second pass begins.
pub enum Item {
    Entry(Entry),
    /// The first pass ended: what follows comes first in walk order.
    Wrapped,
}

/// The name of the line a run should start at, or `None` for the start.
pub fn resume_point(manifest: &Manifest) -> Option<Vec<u8>> {
    let mut order: Vec<usize> = (0..manifest.len()).collect();
    order.sort_by_key(|&i| manifest.span(i).map_or(0, |s| s.start));
    let verified: Vec<_> = order
        .iter()
        .map(|&i| manifest.state(i).map(|r| r.verified))
        .collect();
    let latest = verified.iter().flatten().max()?;
    let last_run: Vec<usize> = (0..order.len())
        .filter(|&k| verified[k].as_ref() == Some(latest))
        .collect();
    // The longest gap between two lines of the last run, going round; on a tie, the one
    // that goes round (a run that read everything leaves the start as the place to begin).
    let n = order.len();
    let (first, last) = (*last_run.first()?, *last_run.last()?);
    let mut best = (n - last + first, last);
    for pair in last_run.windows(2) {
        let gap = pair[1] - pair[0];
        if gap > best.0 {
            best = (gap, pair[0]);
        }
    }
    let start = (best.1 + 1) % n;
    (start != 0 && best.0 > 1).then(|| manifest.name(order[start]).to_vec())
}

/// The name an entry is printed under, if it has one.
fn name_of(entry: &Entry) -> Option<&Path> {
    match entry {
        Entry::Hash(source) => Some(source.name()),
        Entry::Failed(failure) => Some(&failure.path),
        Entry::Unfinished(path) => Some(path),
        Entry::Skipped(_) => None,
    }
}

/// Whether `entry` is at `start` or past it, in walk order.
fn from_start(entry: &Entry, start: &[u8]) -> bool {
    name_of(entry).is_some_and(|name| {
        let name = crate::format::line::path_bytes(name);
        walk_order(normalize(name), start).is_ge()
    })
}

/// The walk in two passes: from the first entry at `start` or past it to the end, then
/// [`Item::Wrapped`], then from the first entry to the one before that. `first` is the first
/// pass's walk; `walk` makes the second's (the inputs are read again).
pub struct Rotated<F> {
    walk: F,
    start: Vec<u8>,
    first: Option<Walk>,
    second: Option<Walk>,
    /// The first pass reached `start`.
    started: bool,
    pass: u8,
}

impl<F: FnMut() -> Result<Walk, Failure>> Rotated<F> {
    pub fn new(first: Walk, walk: F, start: Vec<u8>) -> Rotated<F> {
        Rotated {
            walk,
            start,
            first: Some(first),
            second: None,
            started: false,
            pass: 1,
        }
    }
}

impl<F: FnMut() -> Result<Walk, Failure>> Iterator for Rotated<F> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            match self.pass {
                1 => {
                    let Some(entry) = self.first.as_mut().and_then(Iterator::next) else {
                        self.first = None;
                        self.pass = 2;
                        return Some(Item::Wrapped);
                    };
                    // Before the start, the second pass has it.
                    if !self.started && !from_start(&entry, &self.start) {
                        continue;
                    }
                    self.started = true;
                    return Some(Item::Entry(entry));
                }
                2 => {
                    if self.second.is_none() {
                        match (self.walk)() {
                            Ok(walk) => self.second = Some(walk),
                            Err(failure) => {
                                self.pass = 3;
                                return Some(Item::Entry(Entry::Failed(failure)));
                            }
                        }
                    }
                    let entry = self.second.as_mut().and_then(Iterator::next);
                    match entry {
                        Some(entry) if !from_start(&entry, &self.start) => {
                            return Some(Item::Entry(entry));
                        }
                        // At the start: the first pass had it, and all that follows.
                        _ => {
                            self.second = None;
                            self.pass = 3;
                        }
                    }
                }
                _ => return None,
            }
        }
    }
}
