//! What the engine reads: a [`Source`] (a path, a file in an open directory, or standard
//! input), the [`DirHandle`] a walk shares with the work in flight, and a file's identity
//! ([`FileId`]).
//!
//! These are the nouns `walk` produces and `read` and `lanes` consume; they live here, below
//! both, so that neither has to import the other. Nothing here reads file contents. Made on
//! the calling thread (the walk), used on readers.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustix::fs::{AtFlags, Mode, OFlags, Stat};

use crate::format::state::{FileState, Time};

/// The identity of a file (device and inode), to recognise it under any name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
}

impl FileId {
    /// The identity of an open file.
    pub fn of(file: &File) -> io::Result<FileId> {
        let stat = rustix::fs::fstat(file).map_err(io::Error::from)?;
        Ok(FileId {
            dev: stat.st_dev,
            ino: stat.st_ino,
        })
    }
}

/// The files a run writes (its manifest, and each checkpoint of it), never to be hashed
/// whatever they are called. Shared by the walk and the readers, and added to while the run
/// goes: a checkpoint's file is added before it takes the manifest's name.
#[derive(Debug, Default)]
pub struct OwnFiles(std::sync::RwLock<Vec<FileId>>);

impl OwnFiles {
    /// A set of `ids`.
    pub fn new(ids: Vec<FileId>) -> std::sync::Arc<OwnFiles> {
        std::sync::Arc::new(OwnFiles(std::sync::RwLock::new(ids)))
    }

    /// Adds `id`.
    pub fn add(&self, id: FileId) {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(id);
    }

    /// Whether `id` is one of them.
    pub fn contains(&self, id: &FileId) -> bool {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(id)
    }
}

/// One thing to hash.
#[derive(Debug, Clone)]
pub enum Source {
    /// A path to open: a regular file, or anything the user named explicitly (a FIFO, a device).
    Path(PathBuf),
    /// A file met during a walk: opened relative to its directory, which the walk holds open,
    /// so the kernel does not resolve the whole path again for every file.
    InDir {
        /// The path, as printed.
        path: PathBuf,
        /// The open directory that holds it.
        dir: Arc<DirHandle>,
        /// Its inode number, as the directory listing gave it (to read in inode order).
        ino: u64,
    },
    /// Standard input, printed as `-`.
    Stdin,
}

impl Source {
    /// The name this source is printed under.
    pub fn name(&self) -> &Path {
        match self {
            Source::Path(path) | Source::InDir { path, .. } => path,
            Source::Stdin => Path::new("-"),
        }
    }

    /// The status of the file this source names, following symlinks as opening it would,
    /// without opening it; `None` for standard input.
    pub fn stat(&self) -> Option<io::Result<Stat>> {
        let stat = match self {
            Source::Path(path) => rustix::fs::stat(path),
            Source::InDir { path, dir, .. } => {
                let name = path.file_name().unwrap_or(std::ffi::OsStr::new("."));
                rustix::fs::statat(&**dir, name, AtFlags::empty())
            }
            Source::Stdin => return None,
        };
        Some(stat.map_err(io::Error::from))
    }

    /// The inode number the directory listing gave, if the source came from a walk.
    pub fn ino(&self) -> Option<u64> {
        match self {
            Source::InDir { ino, .. } => Some(*ino),
            Source::Path(_) | Source::Stdin => None,
        }
    }

    /// The name this source is printed under, taken.
    pub fn into_name(self) -> PathBuf {
        match self {
            Source::Path(path) | Source::InDir { path, .. } => path,
            Source::Stdin => PathBuf::from("-"),
        }
    }
}

/// Most directory handles open at once: 256, or fewer under a low limit of open files
/// ([`limit_dir_handles`]). Each walked directory that holds files is opened once so its
/// files can be opened relative to it; handles are shared with the work in flight and closed
/// when it is done. Past this many (a window of work spread over many directories), files
/// are opened by full path instead, which is slower but needs no descriptor.
static MAX_DIR_HANDLES: AtomicUsize = AtomicUsize::new(256);

static OPEN_DIR_HANDLES: AtomicUsize = AtomicUsize::new(0);

/// Sets the most directory handles open at once (the device policy's share of the
/// descriptors the process may open).
pub(crate) fn limit_dir_handles(most: usize) {
    MAX_DIR_HANDLES.store(most, Ordering::Relaxed);
}

/// An open directory, used to open the files in it without resolving their whole path again.
#[derive(Debug)]
pub struct DirHandle(OwnedFd);

impl DirHandle {
    /// Opens `path` as a directory handle, unless too many are open already.
    pub(crate) fn open(path: &Path) -> Option<Arc<DirHandle>> {
        if OPEN_DIR_HANDLES.fetch_add(1, Ordering::Relaxed)
            >= MAX_DIR_HANDLES.load(Ordering::Relaxed)
        {
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

/// What a stat says of a file, as far as telling whether its bytes may have changed.
pub(crate) fn file_state(stat: &Stat) -> FileState {
    FileState {
        size: stat.st_size as u64,
        mtime: Time {
            secs: stat.st_mtime,
            nanos: stat.st_mtime_nsec as u32,
        },
        ctime: Time {
            secs: stat.st_ctime,
            nanos: stat.st_ctime_nsec as u32,
        },
        ino: stat.st_ino,
    }
}
