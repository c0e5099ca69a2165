//! `hash --update MANIFEST`: which files to read again, and what to record for each.
//!
//! The old manifest is read into a compact [`Manifest`] first. For each file the walk meets,
//! its line there (if any) and the state record bound to that line decide:
//!
//! - a record whose trust is `ok`, whose file is not picked for the scrub: a stat of the file
//!   (no open) is compared with it. Size, modification time, status-change time (both in
//!   nanoseconds) and inode all equal: the recorded digest is kept without reading a byte
//!   (*reused*). Anything else: the file is read (*modified*).
//! - no line: read (*new*); a line without a record, as in a plain `sha256sum` manifest: read
//!   once, and its state recorded (*without state*); a `racy` record: read (*racy*); a record
//!   picked for the scrub, or marked `corrupt` last time: read (*scrubbed*).
//!
//! A file read under a trusted record whose stat is still the recorded one, yet whose digest
//! differs, was not written by anyone: its bytes rotted (*corrupt*). Its recorded digest and
//! state are kept, marked `corrupt` so that the next run reads it again, and the run exits
//! with status 3.
//!
//! # Racy timestamps
//!
//! A stat vouches for the bytes only if every later write must change it. A write in the
//! same clock tick as the one the recorded time came from may not: a file system that keeps
//! whole seconds (FAT keeps even seconds, SMB and ext3 whole ones), or a write just after
//! the read, can leave the times exactly as recorded. So, as in git's "racy git" rule, a
//! file whose modification or status-change time is not at least [`RACY_MARGIN`] before the
//! start of the scan is recorded as `racy`, and read again next time. The start of the scan
//! is the earlier of the system clock and the time the file system stamps on the new
//! manifest's temporary file when it is created, so a file system whose clock (an NFS or SMB
//! server's) runs behind the local one does not make fresh files look old. Two seconds cover
//! FAT's two-second granularity, whole-second file systems, and the few milliseconds by
//! which the kernel's file timestamps lag its clock; a server clock running behind by more
//! than that on another file system than the manifest's is the one case it cannot see.
//!
//! A time recorded finer than the file system now gives it (a tree copied to FAT or SMB,
//! which keep whole seconds) is simply a different time: it never matches.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::digest::{Algorithm, Digest};
use crate::engine::read::Hashing;
use crate::engine::source::Source;
use crate::format::line::{LineFormat, format_line, path_bytes};
use crate::format::manifest::Manifest;
use crate::format::state::{FileState, StateRecord, Time, Trust, write_state};
use crate::report::Failure;

/// How far before the start of the scan a file's times must be for its state to be trusted.
/// See the module header for why two seconds.
pub const RACY_MARGIN: Duration = Duration::from_secs(2);

/// When the scan started, and what that makes of a file's times.
#[derive(Debug, Clone, Copy)]
pub struct Scan {
    /// Times at or after this (nanoseconds since the epoch) are racy.
    limit: i128,
    /// The start of the scan: when the digests read now are verified.
    now: Time,
}

impl Scan {
    /// A scan starting now, as the system clock and the file system of `probe` (a file just
    /// created) tell it: the earlier of the two.
    pub fn begin(probe: Option<Time>) -> Scan {
        let clock = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        let start = probe.map_or(clock, |t| t.as_nanos().min(clock));
        Scan {
            limit: start - RACY_MARGIN.as_nanos() as i128,
            now: Time {
                secs: start.div_euclid(1_000_000_000) as i64,
                nanos: start.rem_euclid(1_000_000_000) as u32,
            },
        }
    }

    /// A scan whose racy limit is `limit` and whose start is `now`, for tests.
    #[cfg(test)]
    pub fn at(limit: i128, now: Time) -> Scan {
        Scan { limit, now }
    }

    /// How far the state of a file read now vouches for its digest next time.
    pub fn trust(&self, state: &FileState) -> Trust {
        if state.mtime.as_nanos() >= self.limit || state.ctime.as_nanos() >= self.limit {
            Trust::Racy
        } else {
            Trust::Ok
        }
    }

    /// The record for a file whose digest was computed now, from its state before the read.
    fn record(&self, state: FileState) -> StateRecord {
        StateRecord {
            state,
            verified: self.now,
            trust: self.trust(&state),
        }
    }
}

/// One file of the updated manifest: the line to write and why.
#[derive(Debug)]
pub struct Updated {
    /// The name, as the walk reached it.
    pub name: PathBuf,
    /// The digest written on its line.
    pub digest: Digest,
    /// The state line before it; `None` for what has no state (standard input, a FIFO).
    pub record: Option<StateRecord>,
    /// Bytes read now (0 when reused).
    pub bytes: u64,
    /// The file's size.
    pub size: u64,
    /// Why it was or was not read.
    pub status: Status,
    /// For a corrupt file, the digest its bytes have now.
    pub found: Option<Digest>,
    /// Its entry in the old manifest, or [`UNLISTED`].
    pub entry: u64,
}

impl Updated {
    /// Appends its lines in the manifest, in `format`, to `out`: the state line, then the
    /// digest line. `scratch` holds the digest line meanwhile (the state line is bound to its
    /// bytes). Made by the printing thread, straight into its output buffer, with both
    /// buffers reused from file to file: formatting on the reader that decided cost an
    /// allocation per file, freed on another thread (glibc then takes the allocating
    /// thread's arena lock, and the threads of an update of an unchanged tree queued on it).
    pub fn write_lines(
        &self,
        format: &LineFormat,
        algorithm: Algorithm,
        scratch: &mut Vec<u8>,
        out: &mut Vec<u8>,
    ) {
        scratch.clear();
        format_line(
            scratch,
            format,
            algorithm,
            &self.digest,
            path_bytes(&self.name),
        );
        let end = scratch.pop().unwrap_or(b'\n');
        if let Some(record) = &self.record {
            write_state(out, record, scratch, end);
        }
        out.extend_from_slice(scratch);
        out.push(end);
    }
}

/// What the old manifest says of one name.
#[derive(Debug, Clone, Copy)]
struct Known {
    digest: Digest,
    record: Option<StateRecord>,
    entry: u64,
}

/// The decisions of one `--update` run, shared by the workers.
pub struct Updater {
    manifest: Manifest,
    /// The old manifest file, open: the lines the update keeps are copied from it.
    old: Option<std::fs::File>,
    /// Entries picked for the scrub, by entry number.
    scrub: Vec<bool>,
    scan: Scan,
    /// The entry after the last one [`Updater::prepare`] found: the likely next one.
    next: AtomicUsize,
}

/// The tag of a file the old manifest does not list.
pub const UNLISTED: u64 = u64::MAX;

/// Decides, once a file is hashed (or found unchanged), what its line is.
struct Decision {
    known: Option<Known>,
    scan: Scan,
}

impl Updater {
    /// Decisions against `manifest` (read from the file `old`), scrubbing `percent` of what
    /// could be skipped.
    pub fn new(
        manifest: Manifest,
        old: Option<std::fs::File>,
        percent: f64,
        scan: Scan,
    ) -> Updater {
        let scrub = pick_scrub(&manifest, percent);
        Updater {
            manifest,
            old,
            scrub,
            scan,
            next: AtomicUsize::new(0),
        }
    }

    /// The stat under which `source` need not be read (if any), and the tag to decide its
    /// outcome with ([`Updater::decide`]): its entry in the old manifest, or [`UNLISTED`].
    /// The feeder calls it for every file, so it only looks the name up and reads the
    /// record; the rest is left to the reader that decides.
    pub fn prepare(&self, source: &Source) -> (Option<FileState>, u64) {
        let guess = self.next.load(Ordering::Relaxed);
        let Some(i) = self.manifest.find_from(path_bytes(source.name()), guess) else {
            return (None, UNLISTED);
        };
        self.next.store(i + 1, Ordering::Relaxed);
        let unless = match self.manifest.state(i) {
            Some(record) if record.trust == Trust::Ok && !self.scrub[i] => Some(record.state),
            _ => None,
        };
        (unless, i as u64)
    }

    /// The line for the file tagged `tag` by [`Updater::prepare`], from what became of it;
    /// `Ok(None)` for a file never to hash.
    pub fn decide(
        &self,
        tag: u64,
        result: Result<Hashing, Failure>,
    ) -> Result<Option<Updated>, Failure> {
        let known = usize::try_from(tag)
            .ok()
            .filter(|&i| i < self.manifest.len())
            .and_then(|i| {
                Some(Known {
                    digest: Digest::from_bytes(self.manifest.digest(i))?,
                    record: self.manifest.state(i),
                    entry: tag,
                })
            });
        let scan = self.scan;
        let mut decided = Decision { known, scan }.decide(result);
        if let Ok(Some(updated)) = &mut decided {
            respell(&mut updated.name, self.manifest.dotted());
        }
        decided
    }

    /// The old manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The bytes of entry `i` in the old manifest file (its state line and its line),
    /// appended to `out`.
    pub fn copy_entry(&self, i: usize, out: &mut Vec<u8>) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let (Some(old), Some(span)) = (&self.old, self.manifest.span(i)) else {
            return Err(std::io::Error::other(
                "the old manifest's line is not at hand",
            ));
        };
        let from = out.len();
        out.resize(from + span.len as usize, 0);
        old.read_exact_at(&mut out[from..], span.start)
    }

    /// How many files are picked for the scrub.
    pub fn scrub_picked(&self) -> usize {
        self.scrub.iter().filter(|&&s| s).count()
    }
}

impl Decision {
    /// The line for the file, from what became of it; `Ok(None)` for a file never to hash.
    fn decide(self, result: Result<Hashing, Failure>) -> Result<Option<Updated>, Failure> {
        let hashed = match result? {
            // Not started: the caller keeps the old line.
            Hashing::Skipped | Hashing::NotReached | Hashing::TooLong { .. } => return Ok(None),
            Hashing::Unchanged { name, state } => {
                // Only a trusted record makes the engine skip a file, so `known` holds it.
                let Some(known) = self.known else {
                    let unknown = std::io::Error::other("no recorded digest for an unread file");
                    return Err(Failure::new(name, unknown));
                };
                return Ok(Some(Updated {
                    name,
                    digest: known.digest,
                    record: known.record,
                    bytes: 0,
                    size: state.size,
                    status: Status::Reused,
                    found: None,
                    entry: known.entry,
                }));
            }
            Hashing::Hashed(hashed) => hashed,
        };
        // An update keeps a manifest of one algorithm: the run's only digest.
        let digest = *hashed.digest.first();
        let mut updated = Updated {
            record: hashed.state.map(|state| self.scan.record(state)),
            size: hashed.state.map_or(hashed.bytes, |s| s.size),
            name: hashed.name,
            digest,
            bytes: hashed.bytes,
            status: Status::New,
            found: None,
            entry: UNLISTED,
        };
        let Some(known) = self.known else {
            return Ok(Some(updated));
        };
        updated.entry = known.entry;
        let Some(record) = known.record else {
            updated.status = Status::Stateless;
            return Ok(Some(updated));
        };
        let trusted = record.trust != Trust::Racy;
        let same_stat = hashed.state == Some(record.state);
        updated.status = match (trusted, same_stat, digest == known.digest) {
            (false, _, _) => Status::Racy,
            (true, false, _) => Status::Modified,
            (true, true, true) => Status::Scrubbed,
            (true, true, false) => {
                // Nobody wrote it, and its bytes are not the ones recorded: keep the old
                // digest, and read it again next time.
                updated.found = Some(updated.digest);
                updated.digest = known.digest;
                updated.record = Some(StateRecord {
                    trust: Trust::Corrupt,
                    ..record
                });
                Status::Corrupt
            }
        };
        Ok(Some(updated))
    }
}

/// Spells a relative `name` as the manifest spells its names (`dotted`: with a leading
/// `./`, or without), so that a run over `./data` of a manifest written by a run over `data`
/// (or the other way round) keeps its lines as they were, and adds new ones alike.
fn respell(name: &mut PathBuf, dotted: Option<bool>) {
    use std::os::unix::ffi::OsStrExt;
    let bytes = name.as_os_str().as_bytes();
    let respelled = match dotted {
        Some(false) if bytes.starts_with(b"./") => {
            crate::format::manifest::normalize(bytes).to_vec()
        }
        Some(true) if !bytes.starts_with(b"./") && !bytes.starts_with(b"/") => {
            [&b"./"[..], bytes].concat()
        }
        _ => return,
    };
    *name = PathBuf::from(std::ffi::OsStr::from_bytes(&respelled));
}

/// Picks `percent` of the entries that could be skipped (those with a trusted record) to be
/// read anyway: the ones verified longest ago, ties broken by name, so that repeated runs
/// go round the whole tree. Rounded up, so that `--scrub 10` covers everything in ten runs.
fn pick_scrub(manifest: &Manifest, percent: f64) -> Vec<bool> {
    let mut picked = vec![false; manifest.len()];
    let mut candidates: Vec<(Time, u32)> = (0..manifest.len())
        .filter_map(|i| {
            let record = manifest.state(i)?;
            (record.trust == Trust::Ok).then_some((record.verified, i as u32))
        })
        .collect();
    let count = ((candidates.len() as f64) * percent / 100.0).ceil() as usize;
    let count = count.min(candidates.len());
    if count > 0 {
        candidates.select_nth_unstable(count - 1);
        for &(_, i) in &candidates[..count] {
            picked[i as usize] = true;
        }
    }
    picked
}

pub use super::counts::{Status, UpdateCounts};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digests;
    use crate::engine::read::Hashed;

    const SECOND: i128 = 1_000_000_000;

    fn state(secs: i64, ino: u64) -> FileState {
        let t = Time { secs, nanos: 500 };
        FileState {
            size: 10,
            mtime: t,
            ctime: t,
            ino,
        }
    }

    #[test]
    fn times_close_to_the_scan_are_racy() {
        let scan = Scan::begin(None);
        let start = scan.limit + RACY_MARGIN.as_nanos() as i128;
        let at = |nanos: i128| Time {
            secs: nanos.div_euclid(SECOND) as i64,
            nanos: nanos.rem_euclid(SECOND) as u32,
        };
        let with = |m: i128, c: i128| FileState {
            size: 1,
            mtime: at(m),
            ctime: at(c),
            ino: 1,
        };
        let old = start - 10 * SECOND;
        assert_eq!(scan.trust(&with(old, old)), Trust::Ok);
        assert_eq!(scan.trust(&with(old, start - 1)), Trust::Racy);
        assert_eq!(scan.trust(&with(start - 1, old)), Trust::Racy);
        let edge = start - RACY_MARGIN.as_nanos() as i128;
        assert_eq!(scan.trust(&with(edge - 1, edge - 1)), Trust::Ok);
        assert_eq!(scan.trust(&with(edge, old)), Trust::Racy);
        // The file system's clock, when it is behind, moves the limit back.
        let probe = Scan::begin(Some(at(start - 60 * SECOND)));
        assert_eq!(probe.trust(&with(start - 30 * SECOND, old)), Trust::Racy);
    }

    /// A manifest of `n` stated lines `f0`, `f1`... verified at `verified(i)`.
    fn manifest(n: usize, verified: impl Fn(usize) -> i64, trust: Trust) -> Manifest {
        let mut text = Vec::new();
        for i in 0..n {
            let line = format!("{}  f{i}", "ab".repeat(32));
            let record = StateRecord {
                state: state(1000, i as u64),
                verified: Time {
                    secs: verified(i),
                    nanos: 0,
                },
                trust,
            };
            write_state(&mut text, &record, line.as_bytes(), b'\n');
            text.extend_from_slice(line.as_bytes());
            text.push(b'\n');
        }
        Manifest::read(&text[..], Algorithm::Sha256, false).unwrap()
    }

    #[test]
    fn the_scrub_picks_the_oldest_share_rounded_up_and_goes_round() {
        let m = manifest(25, |i| if i < 5 { 100 } else { 50 + i as i64 }, Trust::Ok);
        let picked = |p: f64| -> Vec<usize> {
            let picks = pick_scrub(&m, p);
            (0..m.len())
                .filter(|&i| picks[i])
                .map(|i| {
                    let name = String::from_utf8(m.name(i).to_vec()).unwrap();
                    name[1..].parse().unwrap()
                })
                .collect()
        };
        assert!(picked(0.0).is_empty());
        assert_eq!(picked(100.0).len(), 25);
        // 10% of 25 is 2.5: three files, verified longest ago (f5, f6, f7).
        let mut ten = picked(10.0);
        ten.sort();
        assert_eq!(ten, vec![5, 6, 7]);
        // Racy records are read anyway: they are not candidates.
        assert!(
            pick_scrub(&manifest(4, |_| 1, Trust::Racy), 100.0)
                .iter()
                .all(|p| !p)
        );
    }

    #[test]
    fn ten_runs_of_a_tenth_read_every_file() {
        // Each run reads its picks and records them verified now; after ten runs every file
        // was read once.
        let mut verified: Vec<i64> = vec![0; 37];
        let mut read = vec![0; 37];
        for run in 1..=10 {
            let m = manifest(37, |i| verified[i], Trust::Ok);
            let picks = pick_scrub(&m, 10.0);
            for (entry, &pick) in picks.iter().enumerate() {
                if pick {
                    let name = String::from_utf8(m.name(entry).to_vec()).unwrap();
                    let i: usize = name[1..].parse().unwrap();
                    verified[i] = run;
                    read[i] += 1;
                }
            }
        }
        assert!(read.iter().all(|&n| n >= 1), "{read:?}");
    }

    fn hashed(digest: u8, state: Option<FileState>) -> Result<Hashing, Failure> {
        Ok(Hashing::Hashed(Hashed {
            name: PathBuf::from("f"),
            digest: Digests::from([digest; 32]),
            bytes: 10,
            state,
        }))
    }

    fn decide(record: Option<StateRecord>, result: Result<Hashing, Failure>) -> Updated {
        let known = Known {
            digest: Digest::from_bytes(&[1; 32]).unwrap(),
            record,
            entry: 0,
        };
        let scan = Scan::at(
            5000 * SECOND,
            Time {
                secs: 6000,
                nanos: 0,
            },
        );
        Decision {
            known: Some(known),
            scan,
        }
        .decide(result)
        .unwrap()
        .unwrap()
    }

    #[test]
    fn names_are_spelled_as_the_manifest_spells_them() {
        let spelled = |name: &str, dotted| {
            let mut path = PathBuf::from(name);
            respell(&mut path, dotted);
            path.display().to_string()
        };
        assert_eq!(spelled("./data/a", Some(false)), "data/a");
        assert_eq!(spelled("././data/a", Some(false)), "data/a");
        assert_eq!(spelled("data/a", Some(true)), "./data/a");
        assert_eq!(spelled("/abs/a", Some(true)), "/abs/a");
        assert_eq!(spelled("./data/a", None), "./data/a");
        assert_eq!(spelled("data/a", Some(false)), "data/a");
    }

    #[test]
    fn decisions() {
        let old = state(1000, 7);
        let ok = StateRecord {
            state: old,
            verified: Time {
                secs: 2000,
                nanos: 0,
            },
            trust: Trust::Ok,
        };
        // Same stat, same digest (the scrub): verified now, trusted.
        let same = decide(Some(ok), hashed(1, Some(old)));
        assert_eq!(same.status, Status::Scrubbed);
        assert_eq!(same.record.unwrap().verified.secs, 6000);
        assert_eq!(same.record.unwrap().trust, Trust::Ok);
        // Same stat, another digest: corrupt; the old digest and state are kept.
        let rotten = decide(Some(ok), hashed(2, Some(old)));
        assert_eq!(rotten.status, Status::Corrupt);
        assert_eq!(rotten.digest.as_bytes(), &[1; 32]);
        assert_eq!(rotten.found.unwrap().as_bytes(), &[2; 32]);
        let kept = rotten.record.unwrap();
        assert_eq!(
            (kept.state, kept.verified.secs, kept.trust),
            (old, 2000, Trust::Corrupt)
        );
        // Marked corrupt last time, still corrupt: corrupt again.
        let again = StateRecord {
            trust: Trust::Corrupt,
            ..ok
        };
        assert_eq!(
            decide(Some(again), hashed(2, Some(old))).status,
            Status::Corrupt
        );
        // Another inode (a rename over it), another digest: modified, the new digest.
        let replaced = decide(Some(ok), hashed(2, Some(state(1000, 8))));
        assert_eq!(replaced.status, Status::Modified);
        assert_eq!(replaced.digest.as_bytes(), &[2; 32]);
        // A racy record never makes a file corrupt.
        let racy = StateRecord {
            trust: Trust::Racy,
            ..ok
        };
        let reread = decide(Some(racy), hashed(2, Some(old)));
        assert_eq!(reread.status, Status::Racy);
        assert_eq!(reread.digest.as_bytes(), &[2; 32]);
        // A line without state: hashed once, state added.
        let plain = decide(None, hashed(1, Some(old)));
        assert_eq!(plain.status, Status::Stateless);
        assert!(plain.record.is_some());
        // Reused: the recorded digest and record, unread.
        let unchanged = Ok(Hashing::Unchanged {
            name: PathBuf::from("f"),
            state: old,
        });
        let reused = decide(Some(ok), unchanged);
        assert_eq!((reused.status, reused.bytes), (Status::Reused, 0));
        assert_eq!(reused.record, Some(ok));
    }
}
