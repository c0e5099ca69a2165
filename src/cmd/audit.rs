//! `sumpool audit MANIFEST [PATH]...`: compare a tree with a manifest, and say what changed.
//!
//! `sha256sum -c` only looks at the files a manifest lists, so it cannot see files added to
//! a tree, and cannot tell a moved file from a lost one. `audit` walks and hashes the tree
//! (the same walk, pool, filters and failure rules as `hash`) and sorts every path into one of:
//! unchanged; changed (the digest differs); missing (listed, not on disk); new (on disk, not
//! listed); moved (a listed path that is gone, whose digest now appears at a path that is not
//! listed). A copy whose original is still in place is new, not moved.
//!
//! The manifest is read once, as a stream, into [`Listed`]: one byte arena of names, one of
//! digests, and two sorted index arrays, so a listed file costs its name, its digest and 28
//! bytes (about 110 MB for a million lines of 50-byte names and SHA-256 digests). The tree is
//! then streamed past it: a hashed file is looked up by name (binary search); one that is not
//! listed is looked up by digest, and counts as moved if a listed file with that digest is
//! missing from the disk right then. What remains unseen at the end is missing.
//!
//! Paths are compared as printed, with a leading `./` ignored on both sides; only the
//! manifest's lines under the walked PATHs (and not excluded) take part.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use crate::config::{AuditConfig, Config};
use crate::digest::{Algorithm, Digest};
use crate::engine::lanes::{HashJob, Plan};
use crate::engine::pool::{self, Completion};
use crate::engine::read::{HashOptions, Hashed};
use crate::engine::source::FileId;
use crate::engine::walk::{Entry, Exclude, Walk};
use crate::format::json::JsonPath;
use crate::format::line::path_bytes;
use crate::format::parse::{Layout, parse_line, trim_record};
use crate::format::quote::quote_name;
use crate::format::records::{Record, RecordReader};
use crate::progress::Progress;
use crate::report::{Failure, PROGRAM, Reason, Report};

/// What became of a listed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Not met (yet).
    No,
    /// Met in the tree.
    Yes,
    /// Gone, and found again under another name.
    MovedAway,
}

/// One listed file: where its name and digest are.
#[derive(Debug, Clone, Copy)]
struct ListedFile {
    name_start: u64,
    name_len: u32,
    digest: u32,
    seen: Seen,
}

/// The manifest, held compactly: names and digests in two arenas, entries sorted by name,
/// and an index of entries sorted by digest.
pub struct Listed {
    names: Vec<u8>,
    digests: Vec<u8>,
    digest_len: usize,
    files: Vec<ListedFile>,
    by_digest: Vec<u32>,
    /// Improperly formatted lines met while reading.
    bad_lines: u64,
}

/// `path` without any leading `./`.
fn normalize(mut path: &[u8]) -> &[u8] {
    while let Some(rest) = path.strip_prefix(b"./") {
        path = rest.strip_prefix(b"/").unwrap_or(rest);
        while let Some(rest) = path.strip_prefix(b"/") {
            path = rest;
        }
    }
    path
}

impl Listed {
    /// Reads a manifest of `algorithm` lines.
    pub fn read(reader: impl Read, algorithm: Algorithm, zero: bool) -> io::Result<Listed> {
        let mut listed = Listed {
            names: Vec::new(),
            digests: Vec::new(),
            digest_len: algorithm.digest_len(),
            files: Vec::new(),
            by_digest: Vec::new(),
            bad_lines: 0,
        };
        let mut records = RecordReader::new(reader, if zero { b'\0' } else { b'\n' });
        let mut layout = Layout::default();
        let mut buf = Vec::new();
        while let Some(record) = records.next_record(&mut buf)? {
            if record == Record::TooLong {
                listed.bad_lines += 1;
                continue;
            }
            let Some(line) = trim_record(&buf, zero) else {
                continue;
            };
            match parse_line(line, &mut layout, Some(algorithm)) {
                // As in `check`: no file name holds a NUL.
                Ok(entry) if entry.name.contains(&0) => listed.bad_lines += 1,
                Ok(entry) => {
                    let name = normalize(&entry.name);
                    listed.files.push(ListedFile {
                        name_start: listed.names.len() as u64,
                        name_len: name.len() as u32,
                        digest: listed.files.len() as u32,
                        seen: Seen::No,
                    });
                    listed.names.extend_from_slice(name);
                    listed.digests.extend_from_slice(entry.digest.as_bytes());
                }
                Err(_) => listed.bad_lines += 1,
            }
        }
        // Sorted by name for lookups; of two lines for one name, the later one counts (the
        // sort is stable, so it is the last of its run).
        let names = std::mem::take(&mut listed.names);
        listed
            .files
            .sort_by(|a, b| name_of(&names, a).cmp(name_of(&names, b)));
        listed.files.dedup_by(|later, earlier| {
            let same = name_of(&names, later) == name_of(&names, earlier);
            if same {
                *earlier = *later;
            }
            same
        });
        listed.names = names;
        listed.files.shrink_to_fit();
        let mut by_digest: Vec<u32> = (0..listed.files.len() as u32).collect();
        by_digest.sort_by(|&a, &b| {
            listed
                .digest_of(a as usize)
                .cmp(listed.digest_of(b as usize))
        });
        listed.by_digest = by_digest;
        Ok(listed)
    }

    fn name(&self, i: usize) -> &[u8] {
        name_of(&self.names, &self.files[i])
    }

    fn digest_of(&self, i: usize) -> &[u8] {
        let start = self.files[i].digest as usize * self.digest_len;
        &self.digests[start..start + self.digest_len]
    }

    fn find(&self, name: &[u8]) -> Option<usize> {
        self.files
            .binary_search_by(|f| name_of(&self.names, f).cmp(name))
            .ok()
    }

    /// The listed files whose digest is `digest`.
    fn with_digest<'a>(&'a self, digest: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
        let start = self
            .by_digest
            .partition_point(|&i| self.digest_of(i as usize) < digest);
        self.by_digest[start..]
            .iter()
            .map(|&i| i as usize)
            .take_while(move |&i| self.digest_of(i) == digest)
    }

    /// How many files the manifest lists.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether the manifest lists no file.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

fn name_of<'a>(names: &'a [u8], file: &ListedFile) -> &'a [u8] {
    let start = file.name_start as usize;
    &names[start..start + file.name_len as usize]
}

/// Which listed names the walk covers: under a walked argument, not excluded, within the
/// maximum depth.
struct Scope {
    roots: Vec<Vec<u8>>,
    exclude: Option<std::sync::Arc<Exclude>>,
    max_depth: Option<usize>,
}

impl Scope {
    /// The scope of the walk `audit` asks for.
    fn of(audit: &AuditConfig) -> Scope {
        Scope {
            roots: audit
                .inputs
                .iter()
                .map(|p| normalize(path_bytes(p)).trim_ascii_end().to_vec())
                .map(|mut root| {
                    while root.len() > 1 && root.ends_with(b"/") {
                        root.pop();
                    }
                    if root == b"." { Vec::new() } else { root }
                })
                .collect(),
            exclude: audit.walk.exclude.clone(),
            max_depth: audit.walk.max_depth,
        }
    }

    fn contains(&self, name: &[u8]) -> bool {
        self.roots.iter().any(|root| {
            let relative = if root.is_empty() {
                Some(name)
            } else if name == root.as_slice() {
                Some(&b""[..])
            } else {
                name.strip_prefix(root.as_slice())
                    .and_then(|rest| rest.strip_prefix(b"/"))
            };
            relative.is_some_and(|relative| {
                let depth = relative.split(|&b| b == b'/').count();
                let too_deep = self
                    .max_depth
                    .is_some_and(|max| !relative.is_empty() && depth > max);
                // Excluded if the path or a directory above it matches, as the walk prunes
                // excluded directories.
                let excluded = self.exclude.as_ref().is_some_and(|exclude| {
                    let ends = relative
                        .iter()
                        .enumerate()
                        .filter(|&(_, &b)| b == b'/')
                        .map(|(i, _)| i);
                    ends.chain([relative.len()])
                        .any(|end| exclude.matches(Path::new(OsStr::from_bytes(&relative[..end]))))
                });
                !too_deep && !excluded
            })
        })
    }
}

/// One difference between the tree and the manifest.
enum Difference {
    Changed {
        name: Vec<u8>,
        listed: Vec<u8>,
        found: Digest,
    },
    Moved {
        from: Vec<u8>,
        to: Vec<u8>,
        digest: Digest,
    },
    New {
        name: Vec<u8>,
        digest: Digest,
    },
    Missing {
        name: Vec<u8>,
        listed: Vec<u8>,
    },
}

/// Counts of an audit, for the summary.
#[derive(Debug, Default, Serialize)]
struct Counts {
    unchanged: u64,
    changed: u64,
    moved: u64,
    new: u64,
    missing: u64,
    failed: u64,
    improperly_formatted: u64,
    seconds: f64,
}

impl Counts {
    fn differences(&self) -> u64 {
        self.changed + self.moved + self.new + self.missing
    }
}

/// Runs `sumpool audit`.
pub fn run(
    config: &Config,
    audit: &AuditConfig,
    pool: &rayon::ThreadPool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let manifest_name = audit.manifest.display().to_string();
    let (listed, skip) = read_manifest(audit).with_context(|| manifest_name.clone())?;
    let mut audited = Audited {
        counts: Counts {
            improperly_formatted: listed.bad_lines,
            ..Counts::default()
        },
        listed,
        differences: Vec::new(),
        report: Report::default(),
        json: audit.json,
    };
    let progress = Progress::start(audit.progress, false, true, None);
    let completion = {
        let options = HashOptions {
            algorithm: audit.algorithm,
            skip,
        };
        let err = &mut progress.stderr(err);
        let mut sink = |result| audited.record(result, out, err, &progress);
        compare_tree(config, audit, &options, pool, &mut sink)
    };
    drop(progress);
    let mut report = std::mem::take(&mut audited.report);
    match completion {
        Ok(Completion::Finished) => {}
        Ok(Completion::Interrupted(signal)) => {
            report.interrupted = Some(signal);
            return Ok(report);
        }
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            report.output_closed = true;
            return Ok(report);
        }
        Err(e) => return Err(e).context("standard output"),
    }
    audited.counts.seconds = started.elapsed().as_secs_f64();
    audited
        .write_results(out, &Scope::of(audit))
        .context("standard output")?;
    let counts = &audited.counts;
    if counts.improperly_formatted > 0 {
        let n = counts.improperly_formatted;
        let lines = if n == 1 { "line is" } else { "lines are" };
        let _ = writeln!(
            err,
            "{PROGRAM}: WARNING: {n} {lines} improperly formatted in {manifest_name}"
        );
    }
    report.hashed = counts.unchanged + counts.changed + counts.moved + counts.new;
    // Differences and bad lines make the exit status 1, like failures do.
    if counts.differences() > 0 || counts.improperly_formatted > 0 {
        report.failed += 1;
    }
    Ok(report)
}

/// Reads the manifest into a [`Listed`]; also returns the manifest file's identity, so that
/// the walk does not audit it (it often lies in the tree it describes).
fn read_manifest(audit: &AuditConfig) -> io::Result<(Listed, Vec<FileId>)> {
    let mut skip = Vec::new();
    let reader: Box<dyn Read> = if audit.manifest.as_os_str() == "-" {
        Box::new(io::stdin())
    } else {
        let file = File::open(&audit.manifest)?;
        skip.extend(FileId::of(&file));
        Box::new(file)
    };
    Ok((Listed::read(reader, audit.algorithm, audit.zero)?, skip))
}

/// Walks and hashes the tree, handing each result to `sink` in walk order.
fn compare_tree(
    config: &Config,
    audit: &AuditConfig,
    options: &HashOptions,
    pool: &rayon::ThreadPool,
    sink: &mut dyn FnMut(Result<Option<Hashed>, Failure>) -> io::Result<()>,
) -> io::Result<Completion> {
    let walk = Walk::new(audit.inputs.clone().into_iter().map(Ok), audit.walk.clone());
    let plan = |entry: Entry| match entry {
        Entry::Hash(source) => Plan::Hash {
            source,
            algorithm: options.algorithm,
            then: Box::new(|hashed| hashed),
        },
        Entry::Failed(failure) => Plan::Done(Err(failure)),
        Entry::Skipped(_) => Plan::Done(Ok(None)),
    };
    let work = HashJob::new(plan, &options.skip, config.tuning.lanes);
    pool::run_ordered(pool, config.tuning, walk, work, sink)
}

/// What an audit has found so far, kept by the thread that prints.
struct Audited {
    listed: Listed,
    counts: Counts,
    /// Changed, moved and new files, held for grouping (human output only).
    differences: Vec<Difference>,
    report: Report,
    json: bool,
}

impl Audited {
    /// Sorts one result of the walk: a hashed file into its class, a failure reported.
    fn record(
        &mut self,
        result: Result<Option<Hashed>, Failure>,
        out: &mut dyn Write,
        err: &mut dyn Write,
        progress: &Progress,
    ) -> io::Result<()> {
        match result {
            Ok(Some(hashed)) => {
                progress.advance(hashed.bytes);
                let difference = classify(&mut self.listed, &hashed, &mut self.counts);
                if let Some(difference) = difference {
                    if self.json {
                        write_json(out, &difference)?;
                    } else {
                        self.differences.push(difference);
                    }
                }
            }
            Ok(None) => {}
            Err(failure) => {
                progress.advance(0);
                out.flush()?;
                self.report.fail(err, &failure);
                self.counts.failed += 1;
                // A file that is there but cannot be read is not missing.
                let gone =
                    matches!(&failure.reason, Reason::Io(e) if e.kind() == io::ErrorKind::NotFound);
                let listed_at = self.listed.find(normalize(path_bytes(&failure.path)));
                if let (false, Some(i)) = (gone, listed_at) {
                    self.listed.files[i].seen = Seen::Yes;
                }
            }
        }
        Ok(())
    }

    /// Writes what the walk left to say: the held differences, grouped (changed, moved, new),
    /// then what the walk covered and never met, which is missing, straight from the
    /// manifest (it is often the largest group, and is not copied), then the summary.
    fn write_results(&mut self, out: &mut dyn Write, scope: &Scope) -> io::Result<()> {
        let listed = &self.listed;
        if !self.json {
            write_human(out, &self.differences)?;
        }
        for i in 0..listed.len() {
            if listed.files[i].seen == Seen::No && scope.contains(listed.name(i)) {
                self.counts.missing += 1;
                if self.json {
                    let missing = Difference::Missing {
                        name: listed.name(i).to_vec(),
                        listed: listed.digest_of(i).to_vec(),
                    };
                    write_json(out, &missing)?;
                } else {
                    write_missing(out, listed.name(i))?;
                }
            }
        }
        if self.json {
            write_summary_json(out, &self.counts)?;
        } else {
            write_summary(out, &self.counts)?;
        }
        out.flush()
    }
}

/// Sorts one hashed file into unchanged, changed, moved or new.
fn classify(listed: &mut Listed, hashed: &Hashed, counts: &mut Counts) -> Option<Difference> {
    let name = normalize(path_bytes(&hashed.name));
    if let Some(i) = listed.find(name) {
        listed.files[i].seen = Seen::Yes;
        if listed.digest_of(i) == hashed.digest.as_bytes() {
            counts.unchanged += 1;
            return None;
        }
        counts.changed += 1;
        return Some(Difference::Changed {
            name: name.to_vec(),
            listed: listed.digest_of(i).to_vec(),
            found: hashed.digest,
        });
    }
    // Not listed: moved here, if a listed file with this content is gone from the disk.
    let gone = listed.with_digest(hashed.digest.as_bytes()).find(|&i| {
        listed.files[i].seen == Seen::No
            && fs::symlink_metadata(Path::new(OsStr::from_bytes(listed.name(i))))
                .is_err_and(|e| e.kind() == io::ErrorKind::NotFound)
    });
    match gone {
        Some(i) => {
            listed.files[i].seen = Seen::MovedAway;
            counts.moved += 1;
            Some(Difference::Moved {
                from: listed.name(i).to_vec(),
                to: name.to_vec(),
                digest: hashed.digest,
            })
        }
        None => {
            counts.new += 1;
            Some(Difference::New {
                name: name.to_vec(),
                digest: hashed.digest,
            })
        }
    }
}

/// Writes the held differences, grouped: changed, then moved, then new.
fn write_human(out: &mut dyn Write, differences: &[Difference]) -> io::Result<()> {
    type Member = fn(&Difference) -> bool;
    let groups: [(&str, Member); 3] = [
        ("changed", |d| matches!(d, Difference::Changed { .. })),
        ("moved", |d| matches!(d, Difference::Moved { .. })),
        ("new", |d| matches!(d, Difference::New { .. })),
    ];
    for (label, member) in groups {
        for difference in differences.iter().filter(|d| member(d)) {
            let mut line = format!("{label:<8} ").into_bytes();
            match difference {
                Difference::Changed { name, .. }
                | Difference::New { name, .. }
                | Difference::Missing { name, .. } => line.extend_from_slice(&quote_name(name)),
                Difference::Moved { from, to, .. } => {
                    line.extend_from_slice(&quote_name(from));
                    line.extend_from_slice(b" -> ");
                    line.extend_from_slice(&quote_name(to));
                }
            }
            line.push(b'\n');
            out.write_all(&line)?;
        }
    }
    Ok(())
}

fn write_missing(out: &mut dyn Write, name: &[u8]) -> io::Result<()> {
    let mut line = b"missing  ".to_vec();
    line.extend_from_slice(&quote_name(name));
    line.push(b'\n');
    out.write_all(&line)
}

/// The one-line count summary of the human output.
fn write_summary(out: &mut dyn Write, counts: &Counts) -> io::Result<()> {
    let summary = if counts.differences() == 0 {
        format!("no differences: {} unchanged", counts.unchanged)
    } else {
        format!(
            "{} differences: {} changed, {} moved, {} new, {} missing; {} unchanged",
            counts.differences(),
            counts.changed,
            counts.moved,
            counts.new,
            counts.missing,
            counts.unchanged
        )
    };
    let failed = if counts.failed > 0 {
        format!("; {} could not be read", counts.failed)
    } else {
        String::new()
    };
    writeln!(out, "{summary}{failed}")
}

fn write_json(out: &mut dyn Write, difference: &Difference) -> io::Result<()> {
    #[derive(Serialize)]
    struct Line {
        r#type: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<JsonPath>,
        #[serde(skip_serializing_if = "Option::is_none")]
        from: Option<JsonPath>,
        #[serde(skip_serializing_if = "Option::is_none")]
        to: Option<JsonPath>,
        #[serde(skip_serializing_if = "Option::is_none")]
        listed: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        found: Option<String>,
    }
    let none = || Line {
        r#type: "",
        path: None,
        from: None,
        to: None,
        listed: None,
        found: None,
    };
    let line = match difference {
        Difference::Changed {
            name,
            listed,
            found,
        } => Line {
            r#type: "changed",
            path: Some(JsonPath::new(name)),
            listed: Some(hex::encode(listed)),
            found: Some(hex::encode(found.as_bytes())),
            ..none()
        },
        Difference::Moved { from, to, digest } => Line {
            r#type: "moved",
            from: Some(JsonPath::new(from)),
            to: Some(JsonPath::new(to)),
            found: Some(hex::encode(digest.as_bytes())),
            ..none()
        },
        Difference::New { name, digest } => Line {
            r#type: "new",
            path: Some(JsonPath::new(name)),
            found: Some(hex::encode(digest.as_bytes())),
            ..none()
        },
        Difference::Missing { name, listed } => Line {
            r#type: "missing",
            path: Some(JsonPath::new(name)),
            listed: Some(hex::encode(listed)),
            ..none()
        },
    };
    let mut bytes = serde_json::to_vec(&line).map_err(io::Error::other)?;
    bytes.push(b'\n');
    out.write_all(&bytes)
}

fn write_summary_json(out: &mut dyn Write, counts: &Counts) -> io::Result<()> {
    #[derive(Serialize)]
    struct Line<'a> {
        r#type: &'static str,
        #[serde(flatten)]
        counts: &'a Counts,
    }
    let mut bytes = serde_json::to_vec(&Line {
        r#type: "summary",
        counts,
    })
    .map_err(io::Error::other)?;
    bytes.push(b'\n');
    out.write_all(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let manifest = format!("{hex_a}  ./x\n{hex_b}  y\njunk\n{hex_a}  z\n{hex_b}  x\n");
        let listed = Listed::read(manifest.as_bytes(), Algorithm::Sha256, false).unwrap();
        assert_eq!(listed.len(), 3);
        assert_eq!(listed.bad_lines, 1);
        // The later line for x wins.
        let x = listed.find(b"x").unwrap();
        assert_eq!(listed.digest_of(x), &[0xbb; 32][..]);
        let with_a: Vec<&[u8]> = listed
            .with_digest(&[0xaa; 32])
            .map(|i| listed.name(i))
            .collect();
        assert_eq!(with_a, vec![&b"z"[..]]);
    }
}
