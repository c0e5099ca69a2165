//! From the command-line inputs to an ordered stream of things to hash. Runs on the calling
//! thread, pulled by the feeder.
//!
//! Each input is taken in command-line order. `-` is standard input. A directory is walked
//! depth first with walkdir, the entries of each directory in byte order of their names, and
//! every regular file in it is yielded under the path as reached from the argument (what `find`
//! prints). Anything else named explicitly (a file, a symlink to one, a FIFO, a device) is
//! yielded as is, so `sumpool hash <(cmd)` works.
//!
//! The walk decides what is *not* hashed: symlinks met inside a walk (unless `--follow`),
//! FIFOs, sockets and devices met inside a walk (never opened: opening a FIFO can block
//! forever) and entries matching `--exclude` become `Entry::Skipped`; entries it cannot stat
//! or list become `Entry::Failed`. Both are values in the stream, in walk order, never
//! errors that stop it. `--max-depth` and `--one-file-system` bound how far it goes. Reading
//! file contents is left to the reader threads of `run`.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use walkdir::WalkDir;

use crate::engine::source::{DirHandle, FileId, OwnFiles, Source};
use crate::report::{Failure, Reason};

/// Names of sumpool's own temporary files (`-o` and `--update` on a file system without
/// `O_TMPFILE`): `.sumpool-XXXXXX.tmp`. The walk never hashes one: a file of that name is a
/// manifest being written, or one left by a run that was killed outright.
pub const TEMP_PREFIX: &str = ".sumpool-";
/// See [`TEMP_PREFIX`].
pub const TEMP_SUFFIX: &str = ".tmp";

/// Whether `name` (a base name) is one of sumpool's temporary file names: the prefix, six
/// letters or digits, the suffix.
pub(crate) fn is_temp_name(name: &[u8]) -> bool {
    let Some(rest) = name.strip_prefix(TEMP_PREFIX.as_bytes()) else {
        return false;
    };
    let Some(middle) = rest.strip_suffix(TEMP_SUFFIX.as_bytes()) else {
        return false;
    };
    middle.len() == 6 && middle.iter().all(u8::is_ascii_alphanumeric)
}

/// Why an entry met during a walk was not hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skip {
    /// A symlink, not followed without `--follow`.
    Symlink,
    /// A FIFO, socket or device file, never opened during a walk.
    Special,
    /// A file or directory matching `--exclude` (a directory counts once, for its subtree), or
    /// a file of another shard.
    Excluded,
}

/// One item of the walk, in output order.
#[derive(Debug)]
pub(crate) enum Entry {
    /// Something to hash.
    Hash(Source),
    /// Something that could not be reached.
    Failed(Failure),
    /// Something deliberately not hashed.
    Skipped(Skip),
    /// A temporary file of another sumpool run (a manifest being written, or left by a run
    /// killed outright): never hashed, and said so, since its name is all that tells it
    /// apart from a file of the tree.
    Unfinished(PathBuf),
}

/// How to walk.
#[derive(Debug, Clone, Default)]
pub struct WalkOptions {
    /// Follow symlinks met inside directories (`-L`). Symlinks named as inputs are always
    /// followed.
    pub follow_links: bool,
    /// Entries not to hash, and directories not to descend into.
    pub exclude: Option<Arc<Exclude>>,
    /// Deepest level to go, counted like `find -maxdepth`: 1 is the argument's own entries.
    pub max_depth: Option<usize>,
    /// Do not descend into directories on other file systems (`-x`).
    pub one_file_system: bool,
    /// Open directories so files are opened relative to them (off for a walk that only
    /// counts, so it does not take handles from the real one).
    pub dir_handles: bool,
    /// Only the files of this shard (`--shard K/N`).
    pub shard: Option<Shard>,
    /// Files that are this run's own (its temporary manifest, its checkpoints): skipped
    /// without a word when met under a temporary file's name.
    pub own: Arc<OwnFiles>,
}

/// One of N disjoint parts of a tree, chosen by a stable hash of each file's path relative to
/// the walked argument, so every machine and every run agrees on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which part, from 1 to `count`.
    pub index: u64,
    /// How many parts.
    pub count: u64,
}

impl Shard {
    /// Whether the file at `relative` (to the walked argument) is in this shard. The hash is
    /// the first 8 bytes of SHA-256 over the path's bytes: the same on every platform and in
    /// every version, unlike a hasher seeded per process.
    pub fn contains(&self, relative: &Path) -> bool {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(crate::format::line::path_bytes(relative));
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first) % self.count + 1 == self.index
    }
}

/// Compiled `--exclude` patterns.
///
/// As in fd, a pattern is matched against the path relative to the walked argument and
/// against the entry's base name, so `*.tmp` excludes temporary files at any depth, while
/// `build/*.o` only those directly in `build`. In the relative path, `*` does not cross `/`;
/// `**` does. A pattern that matches a directory prunes its whole subtree.
#[derive(Debug)]
pub struct Exclude {
    set: GlobSet,
}

impl Exclude {
    /// Compiles `patterns`; an invalid glob is an error naming it.
    pub fn new(patterns: &[String]) -> Result<Exclude, globset::Error> {
        let mut builder = GlobSetBuilder::new();
        for pattern in patterns {
            builder.add(GlobBuilder::new(pattern).literal_separator(true).build()?);
        }
        Ok(Exclude {
            set: builder.build()?,
        })
    }

    /// Whether the entry at `relative` (to the walked argument) is excluded.
    pub fn matches(&self, relative: &Path) -> bool {
        self.set.is_match(relative)
            || relative
                .file_name()
                .is_some_and(|name| self.set.is_match(name))
    }
}

/// Which paths a walk covers, decided from the names alone: under one of its inputs (a
/// leading `./` ignored on both sides), not excluded (the path, or a directory above it,
/// matches `--exclude`, as the walk prunes excluded directories), not deeper than
/// `--max-depth`, and in its shard. `audit` reports only the manifest lines in the scope as
/// missing, and `hash --update` keeps the lines outside it as they were.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    roots: Vec<Vec<u8>>,
    exclude: Option<Arc<Exclude>>,
    max_depth: Option<usize>,
    shard: Option<Shard>,
}

impl Scope {
    /// The scope of a walk of `inputs` with `options`.
    pub fn of(inputs: &[PathBuf], options: &WalkOptions) -> Scope {
        let mut scope = Scope {
            roots: Vec::new(),
            exclude: options.exclude.clone(),
            max_depth: options.max_depth,
            shard: options.shard,
        };
        for input in inputs {
            scope.add_root(input);
        }
        scope
    }

    /// Adds an input (as one more is read from `--files-from`).
    pub fn add_root(&mut self, input: &Path) {
        let mut root =
            crate::format::manifest::normalize(crate::format::line::path_bytes(input)).to_vec();
        while root.len() > 1 && root.ends_with(b"/") {
            root.pop();
        }
        if root == b"." {
            root.clear();
        }
        // Standard input has no path in a manifest.
        if input.as_os_str() != "-" && !self.roots.contains(&root) {
            self.roots.push(root);
        }
    }

    /// Whether a walk of this scope would reach `name` (a path as a manifest spells it).
    pub fn contains(&self, name: &[u8]) -> bool {
        let name = crate::format::manifest::normalize(name);
        self.roots.iter().any(|root| {
            let relative = if root.is_empty() {
                // `.` covers every relative name.
                (!name.starts_with(b"/")).then_some(name)
            } else if name == root.as_slice() {
                Some(&b""[..])
            } else {
                name.strip_prefix(root.as_slice())
                    .and_then(|rest| rest.strip_prefix(b"/"))
            };
            relative.is_some_and(|relative| self.reaches(name, relative))
        })
    }

    /// Whether the walk reaches `relative` (to its root; empty for the root itself, a file
    /// named as an input, whose full `name` the shard is decided by).
    fn reaches(&self, name: &[u8], relative: &[u8]) -> bool {
        let depth = relative.split(|&b| b == b'/').count();
        let too_deep = self
            .max_depth
            .is_some_and(|max| !relative.is_empty() && depth > max);
        let excluded = self.exclude.as_ref().is_some_and(|exclude| {
            let ends = relative
                .iter()
                .enumerate()
                .filter(|&(_, &b)| b == b'/')
                .map(|(i, _)| i);
            ends.chain([relative.len()])
                .filter(|&end| end > 0)
                .any(|end| exclude.matches(Path::new(OsStr::from_bytes(&relative[..end]))))
        });
        let shard_of = if relative.is_empty() { name } else { relative };
        let other_shard = self
            .shard
            .is_some_and(|shard| !shard.contains(Path::new(OsStr::from_bytes(shard_of))));
        !too_deep && !excluded && !other_shard
    }
}

/// One input of a run: a path, or a failure met while reading the list of inputs.
pub(crate) type Input = Result<PathBuf, Failure>;

/// Longest path, in bytes with its terminating NUL, that the kernel opens by name.
const PATH_MAX: usize = libc::PATH_MAX as usize;

/// The directory being walked at one depth, and its handle once a file in it needed one.
struct OpenDir {
    /// Whether opening was tried (it is tried once, lazily).
    tried: bool,
    handle: Option<Arc<DirHandle>>,
}

/// The stream of entries for a stream of inputs. Holds one walkdir iterator at a time, so
/// memory is bounded by the depth of the tree and the size of the largest directory, never by
/// the number of files.
pub(crate) struct Walk {
    inputs: Box<dyn Iterator<Item = Input> + Send>,
    current: Option<walkdir::IntoIter>,
    /// The argument being walked, to make paths relative for `--exclude`.
    root: PathBuf,
    options: WalkOptions,
    /// The directories on the way down to the current entry, by depth.
    dirs: Vec<OpenDir>,
}

impl Walk {
    /// Walks `inputs` in order.
    pub fn new(inputs: impl Iterator<Item = Input> + Send + 'static, options: WalkOptions) -> Walk {
        Walk {
            inputs: Box::new(inputs),
            current: None,
            root: PathBuf::new(),
            options,
            dirs: Vec::new(),
        }
    }

    /// Classifies one input named on the command line, starting a directory walk if needed.
    fn start_input(&mut self, input: PathBuf) -> Option<Entry> {
        if input.as_os_str() == "-" {
            // Standard input has no path: it belongs to the first shard.
            if self.options.shard.is_some_and(|shard| shard.index != 1) {
                return Some(Entry::Skipped(Skip::Excluded));
            }
            return Some(Entry::Hash(Source::Stdin));
        }
        // `metadata` follows symlinks: a link named on the command line counts as its target.
        match fs::metadata(&input) {
            Err(err) => Some(Entry::Failed(Failure::new(input, err))),
            Ok(meta) if meta.is_dir() => {
                let walker = WalkDir::new(&input)
                    .follow_links(self.options.follow_links)
                    .follow_root_links(true)
                    .same_file_system(self.options.one_file_system)
                    .max_depth(self.options.max_depth.unwrap_or(usize::MAX))
                    .min_depth(1)
                    // Siblings share their parent's path, so comparing whole paths byte by
                    // byte orders them by name; it avoids re-parsing both paths into
                    // components at every comparison, as comparing `file_name()`s does.
                    .sort_by(|a, b| a.path().as_os_str().cmp(b.path().as_os_str()));
                self.current = Some(walker.into_iter());
                self.root = input;
                self.dirs.clear();
                self.dirs.push(OpenDir {
                    tried: false,
                    handle: None,
                });
                None
            }
            Ok(_)
                if self
                    .options
                    .shard
                    .is_some_and(|shard| !shard.contains(&input)) =>
            {
                Some(Entry::Skipped(Skip::Excluded))
            }
            Ok(_) => Some(Entry::Hash(Source::Path(input))),
        }
    }
}

impl Walk {
    /// The handle of the directory holding the file at `path`, found at `depth`, opening it
    /// on first use.
    fn parent_handle(&mut self, depth: usize, path: &Path) -> Option<Arc<DirHandle>> {
        if !self.options.dir_handles {
            return None;
        }
        let slot = self.dirs.get_mut(depth.checked_sub(1)?)?;
        if !slot.tried {
            slot.tried = true;
            slot.handle = path.parent().and_then(DirHandle::open);
        }
        slot.handle.clone()
    }
}

impl Walk {
    /// What a file with a temporary file's name is: this run's own (skipped), or another's.
    fn temp_entry(&self, entry: walkdir::DirEntry) -> Entry {
        let own = entry.metadata().is_ok_and(|meta| {
            use std::os::unix::fs::MetadataExt;
            let id = FileId {
                dev: meta.dev(),
                ino: meta.ino(),
            };
            self.options.own.contains(&id)
        });
        if own {
            Entry::Skipped(Skip::Excluded)
        } else {
            Entry::Unfinished(entry.into_path())
        }
    }
}

impl Iterator for Walk {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        loop {
            if let Some(walker) = &mut self.current {
                match walker.next() {
                    Some(Ok(entry)) => {
                        let kind = entry.file_type();
                        let depth = entry.depth();
                        // Only with --exclude or --shard: parsing the path costs on tiny files.
                        let relative = (self.options.exclude.is_some()
                            || self.options.shard.is_some())
                        .then(|| {
                            entry
                                .path()
                                .strip_prefix(&self.root)
                                .unwrap_or(entry.path())
                        });
                        let excluded = match (&self.options.exclude, relative) {
                            (Some(exclude), Some(relative)) => exclude.matches(relative),
                            _ => false,
                        };
                        if excluded {
                            if kind.is_dir() {
                                walker.skip_current_dir();
                            }
                            return Some(Entry::Skipped(Skip::Excluded));
                        }
                        if kind.is_dir() {
                            // Entries deeper than this directory's parent are done with.
                            self.dirs.truncate(depth);
                            self.dirs.push(OpenDir {
                                tried: false,
                                handle: None,
                            });
                            continue;
                        }
                        let other_shard = match (self.options.shard, relative) {
                            (Some(shard), Some(relative)) => !shard.contains(relative),
                            _ => false,
                        };
                        if other_shard {
                            return Some(Entry::Skipped(Skip::Excluded));
                        }
                        if kind.is_file() && is_temp_name(entry.file_name().as_encoded_bytes()) {
                            return Some(self.temp_entry(entry));
                        }
                        return Some(if kind.is_file() {
                            let ino = walkdir::DirEntryExt::ino(&entry);
                            let path = entry.into_path();
                            if path.as_os_str().len() >= PATH_MAX {
                                // Reachable here through an open directory, but no tool that
                                // opens by name (sha256sum -c, sumpool check) could verify the
                                // line: report it instead of printing it.
                                let too_long = io::Error::from_raw_os_error(libc::ENAMETOOLONG);
                                return Some(Entry::Failed(Failure::new(path, too_long)));
                            }
                            match self.parent_handle(depth, &path) {
                                Some(dir) => Entry::Hash(Source::InDir { path, dir, ino }),
                                None => Entry::Hash(Source::Path(path)),
                            }
                        } else if kind.is_symlink() {
                            Entry::Skipped(Skip::Symlink)
                        } else {
                            Entry::Skipped(Skip::Special)
                        });
                    }
                    Some(Err(err)) => return Some(Entry::Failed(walk_failure(err))),
                    None => self.current = None,
                }
            }
            match self.inputs.next()? {
                Ok(input) => {
                    if let Some(entry) = self.start_input(input) {
                        return Some(entry);
                    }
                }
                Err(failure) => return Some(Entry::Failed(failure)),
            }
        }
    }
}

/// Turns a walkdir error into a failure of the path it happened on.
fn walk_failure(err: walkdir::Error) -> Failure {
    let path = err.path().map(Path::to_path_buf).unwrap_or_default();
    if let Some(ancestor) = err.loop_ancestor() {
        let ancestor = ancestor.to_path_buf();
        return Failure::new(path, Reason::Loop { ancestor });
    }
    let io_err = err
        .into_io_error()
        .unwrap_or_else(|| io::Error::other("unreadable directory entry"));
    Failure::new(path, io_err)
}

/// The inputs listed in `list` (`-` for standard input), one per line, or one per NUL-ended
/// record with `null` (as `find -print0` writes them). Read as a stream, record by record.
/// Empty records are ignored; a line keeps every byte but its newline, so names with spaces,
/// tabs or a carriage return at the end come through unchanged.
pub(crate) fn list_inputs(
    list: &Path,
    null: bool,
) -> io::Result<impl Iterator<Item = Input> + Send + 'static> {
    let reader: Box<dyn io::Read + Send> = if list.as_os_str() == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(fs::File::open(list)?)
    };
    let delim = if null { b'\0' } else { b'\n' };
    let mut records = crate::format::records::RecordReader::new(reader, delim);
    let list = list.to_path_buf();
    let mut buf = Vec::new();
    let mut done = false;
    Ok(std::iter::from_fn(move || {
        while !done {
            match records.next_record(&mut buf) {
                Ok(None) => return None,
                Ok(Some(crate::format::records::Record::TooLong)) => {
                    let too_long = io::Error::from_raw_os_error(libc::ENAMETOOLONG);
                    return Some(Err(Failure::new(list.clone(), too_long)));
                }
                Ok(Some(crate::format::records::Record::Complete)) => {
                    let name = buf.strip_suffix(&[delim]).unwrap_or(&buf);
                    if !name.is_empty() {
                        let name =
                            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name);
                        return Some(Ok(PathBuf::from(name)));
                    }
                }
                Err(err) => {
                    done = true;
                    return Some(Err(Failure::new(list.clone(), err)));
                }
            }
        }
        None
    }))
}
