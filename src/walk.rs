//! From the command-line inputs to an ordered stream of things to hash.
//!
//! Each input is taken in command-line order. `-` is standard input. A directory is walked
//! depth first with walkdir, the entries of each directory in byte order of their names, and
//! every regular file in it is yielded under the path as reached from the argument (what `find`
//! prints). Anything else named explicitly (a file, a symlink to one, a FIFO, a device) is
//! yielded as is, so `sumpool hash <(cmd)` works.
//!
//! The walk decides what is *not* hashed: symlinks met inside a walk (unless `--follow`) and
//! FIFOs, sockets and devices met inside a walk (never opened: opening a FIFO can block
//! forever) become [`Entry::Skipped`]; entries it cannot stat or list become
//! [`Entry::Failed`]. Both are values in the stream, in walk order, never errors that stop it.
//! Reading file contents is left to `hash`.

use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustix::fs::{Mode, OFlags};
use walkdir::WalkDir;

use crate::hash::Source;
use crate::report::{Failure, Reason};

/// Why an entry met during a walk was not hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// A symlink, not followed without `--follow`.
    Symlink,
    /// A FIFO, socket or device file, never opened during a walk.
    Special,
}

/// One item of the walk, in output order.
#[derive(Debug)]
pub enum Entry {
    /// Something to hash.
    Hash(Source),
    /// Something that could not be reached.
    Failed(Failure),
    /// Something deliberately not hashed.
    Skipped(Skip),
}

/// How to walk.
#[derive(Debug, Clone, Copy, Default)]
pub struct WalkOptions {
    /// Follow symlinks met inside directories (`-L`). Symlinks named as inputs are always
    /// followed.
    pub follow_links: bool,
}

/// Longest path, in bytes with its terminating NUL, that the kernel opens by name.
const PATH_MAX: usize = libc::PATH_MAX as usize;

/// Most directory handles open at once. Each walked directory that holds files is opened once
/// so its files can be opened relative to it; handles are shared with the work in flight and
/// closed when it is done. Past this many (a window of work spread over many directories),
/// files are opened by full path instead, which is slower but needs no descriptor.
const MAX_DIR_HANDLES: usize = 256;

static OPEN_DIR_HANDLES: AtomicUsize = AtomicUsize::new(0);

/// An open directory, used to open the files in it without resolving their whole path again.
#[derive(Debug)]
pub struct DirHandle(OwnedFd);

impl DirHandle {
    /// Opens `path` as a directory handle, unless too many are open already.
    fn open(path: &Path) -> Option<Arc<DirHandle>> {
        if OPEN_DIR_HANDLES.fetch_add(1, Ordering::Relaxed) >= MAX_DIR_HANDLES {
            OPEN_DIR_HANDLES.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        match rustix::fs::open(path, flags, Mode::empty()) {
            Ok(fd) => Some(Arc::new(DirHandle(fd))),
            Err(_) => {
                OPEN_DIR_HANDLES.fetch_sub(1, Ordering::Relaxed);
                None
            }
        }
    }
}

impl Drop for DirHandle {
    fn drop(&mut self) {
        OPEN_DIR_HANDLES.fetch_sub(1, Ordering::Relaxed);
    }
}

impl AsFd for DirHandle {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// The directory being walked at one depth, and its handle once a file in it needed one.
struct OpenDir {
    /// Whether opening was tried (it is tried once, lazily).
    tried: bool,
    handle: Option<Arc<DirHandle>>,
}

/// The stream of entries for a list of inputs. Holds one walkdir iterator at a time, so memory
/// is bounded by the depth of the tree and the size of the largest directory, never by the
/// number of files.
pub struct Walk {
    inputs: std::vec::IntoIter<PathBuf>,
    current: Option<walkdir::IntoIter>,
    options: WalkOptions,
    /// The directories on the way down to the current entry, by depth.
    dirs: Vec<OpenDir>,
}

impl Walk {
    /// Walks `inputs` in order; an empty list means standard input, as for `sha256sum`.
    pub fn new(inputs: Vec<PathBuf>, options: WalkOptions) -> Walk {
        let inputs = if inputs.is_empty() {
            vec![PathBuf::from("-")]
        } else {
            inputs
        };
        Walk {
            inputs: inputs.into_iter(),
            current: None,
            options,
            dirs: Vec::new(),
        }
    }

    /// Classifies one input named on the command line, starting a directory walk if needed.
    fn start_input(&mut self, input: PathBuf) -> Option<Entry> {
        if input.as_os_str() == "-" {
            return Some(Entry::Hash(Source::Stdin));
        }
        // `metadata` follows symlinks: a link named on the command line counts as its target.
        match fs::metadata(&input) {
            Err(err) => Some(Entry::Failed(Failure::new(input, err))),
            Ok(meta) if meta.is_dir() => {
                let walker = WalkDir::new(&input)
                    .follow_links(self.options.follow_links)
                    .follow_root_links(true)
                    .min_depth(1)
                    // Siblings share their parent's path, so comparing whole paths byte by
                    // byte orders them by name; it avoids re-parsing both paths into
                    // components at every comparison, as comparing `file_name()`s does.
                    .sort_by(|a, b| a.path().as_os_str().cmp(b.path().as_os_str()));
                self.current = Some(walker.into_iter());
                self.dirs.clear();
                self.dirs.push(OpenDir {
                    tried: false,
                    handle: None,
                });
                None
            }
            Ok(_) => Some(Entry::Hash(Source::Path(input))),
        }
    }
}

impl Walk {
    /// The handle of the directory holding the file at `path`, found at `depth`, opening it
    /// on first use.
    fn parent_handle(&mut self, depth: usize, path: &Path) -> Option<Arc<DirHandle>> {
        let slot = self.dirs.get_mut(depth.checked_sub(1)?)?;
        if !slot.tried {
            slot.tried = true;
            slot.handle = path.parent().and_then(DirHandle::open);
        }
        slot.handle.clone()
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
                        if kind.is_dir() {
                            // Entries deeper than this directory's parent are done with.
                            self.dirs.truncate(depth);
                            self.dirs.push(OpenDir {
                                tried: false,
                                handle: None,
                            });
                            continue;
                        }
                        return Some(if kind.is_file() {
                            let path = entry.into_path();
                            if path.as_os_str().len() >= PATH_MAX {
                                // Reachable here through an open directory, but no tool that
                                // opens by name (sha256sum -c, sumpool check) could verify the
                                // line: report it instead of printing it.
                                let too_long = io::Error::from_raw_os_error(libc::ENAMETOOLONG);
                                return Some(Entry::Failed(Failure::new(path, too_long)));
                            }
                            match self.parent_handle(depth, &path) {
                                Some(dir) => Entry::Hash(Source::InDir { path, dir }),
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
            let input = self.inputs.next()?;
            if let Some(entry) = self.start_input(input) {
                return Some(entry);
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
