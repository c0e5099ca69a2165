//! Hashing a reader, a file or standard input, one at a time.
//!
//! This module and `lanes` (which hashes several files at once on one worker, and hands every
//! file it does not take back to this module) are the only ones that read file contents. It
//! owns opening a source, the per-worker block buffer, the "changed while being read" check
//! and the conversion of I/O errors into [`Failure`] values.
//! It never prints: results go back to the caller, which hands them to the single printing
//! thread. Which files to hash is `walk`'s business, and on which thread is `pool`'s.
//!
//! Regular files of at least [`MAP_MIN`] bytes are hashed through memory maps (`mapped`);
//! everything else is read in blocks of [`BLOCK_SIZE`] bytes into a buffer each worker thread
//! reuses. Either way no file is ever held whole in memory.

use std::cell::RefCell;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, OFlags, Stat};

use crate::digest::{Algorithm, Digest, Hasher};
use crate::engine::mapped::hash_mapped;
use crate::engine::source::{DirHandle, FileId, Source, file_state};
use crate::format::state::FileState;
use crate::report::{Failure, Reason};
use crate::signals;

/// Size of the blocks a file is read in; each worker thread owns one buffer of this size.
pub const BLOCK_SIZE: usize = 1 << 20;

/// Regular files at least this large are hashed through memory maps instead of `read`. Below
/// it, setting up and tearing down a map costs more than the copy it saves. Measured on 2
/// cores, warm cache, maps against reads: trees of 1 MiB files 4% faster, of 384 and 640 KiB
/// files 4% faster, of 64 and 160 KiB files 10% slower; the break-even lies in between.
pub const MAP_MIN: u64 = 256 << 10;

/// What to hash with, and what never to hash.
#[derive(Debug, Clone, Default)]
pub struct HashOptions {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Files that must not be hashed whatever they are called: the manifest being written
    /// with `-o`, which may lie inside the walked tree.
    pub skip: Vec<FileId>,
}

/// A successfully hashed source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashed {
    /// The name to print.
    pub name: PathBuf,
    /// The digest of the whole content.
    pub digest: Digest,
    /// How many bytes were read.
    pub bytes: u64,
    /// The file's stat before it was read (regular files only).
    pub state: Option<FileState>,
}

/// What became of a source the caller asked to hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hashing {
    /// It was read and hashed.
    Hashed(Hashed),
    /// It was not read: its stat was the one the caller recorded for it (see
    /// [`Plan::Hash`](super::lanes::Plan)).
    Unchanged {
        /// The name to print.
        name: PathBuf,
        /// Its stat, as recorded.
        state: FileState,
    },
    /// It is one of the files never to hash (the manifest being written).
    Skipped,
}

/// The digest of one opened source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digested {
    /// The digest of the whole content.
    pub digest: Digest,
    /// How many bytes were read.
    pub bytes: u64,
    /// The file's stat before it was read (regular files only).
    pub state: Option<FileState>,
}

/// Hashes everything `reader` yields until end of input, in blocks of `buf.len()` bytes.
/// Returns the digest and the number of bytes read.
pub fn hash_reader(
    algorithm: Algorithm,
    reader: &mut impl Read,
    buf: &mut [u8],
) -> io::Result<(Digest, u64)> {
    let mut hasher = Hasher::new(algorithm);
    let total = feed(reader, buf, &mut hasher, 0)?;
    Ok((hasher.finalize(), total))
}

/// Reads `reader` to its end into `hasher`; `total` bytes were already fed. Returns the total.
fn feed(
    reader: &mut impl Read,
    buf: &mut [u8],
    hasher: &mut Hasher,
    mut total: u64,
) -> io::Result<u64> {
    loop {
        // A stop request abandons the file at the next block (and a read blocked on a FIFO
        // or a terminal returns EINTR, so it comes back here).
        if signals::stop_requested().is_some() {
            return Err(io::ErrorKind::Interrupted.into());
        }
        match reader.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                hasher.update(&buf[..n]);
                total += n as u64;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
    }
}

/// A source, opened.
#[derive(Debug)]
pub enum Opened {
    /// A file, with its status before anything was read from it.
    File(File, Stat),
    /// Standard input.
    Stdin,
    /// One of the files never to hash.
    Skipped,
}

/// Opens `source` for hashing, unless it is one of the files in `skip`.
pub fn open_source(source: &Source, skip: &[FileId]) -> Result<Opened, Reason> {
    let file = match source {
        Source::Path(path) => File::open(path)?,
        Source::InDir { path, dir } => open_in(dir, path)?,
        Source::Stdin => return Ok(Opened::Stdin),
    };
    let stat = fstat(&file)?;
    let id = FileId {
        dev: stat.st_dev,
        ino: stat.st_ino,
    };
    if skip.contains(&id) {
        return Ok(Opened::Skipped);
    }
    Ok(Opened::File(file, stat))
}

/// Hashes an opened source with this thread's block buffer; `None` if it was skipped.
pub fn hash_opened(opened: Opened, algorithm: Algorithm) -> Result<Option<Digested>, Reason> {
    with_block_buffer(|buf| match opened {
        Opened::File(file, before) => {
            let state = regular_state(&before);
            let (digest, bytes) = hash_file(file, before, buf, algorithm)?;
            Ok(Some(Digested {
                digest,
                bytes,
                state,
            }))
        }
        Opened::Stdin => {
            let (digest, bytes) = hash_reader(algorithm, &mut io::stdin().lock(), buf)?;
            Ok(Some(Digested {
                digest,
                bytes,
                state: None,
            }))
        }
        Opened::Skipped => Ok(None),
    })
}

/// The state of a regular file from its stat; `None` for anything else (a FIFO, a device),
/// whose stat says nothing of its bytes.
pub fn regular_state(stat: &Stat) -> Option<FileState> {
    (FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile).then(|| file_state(stat))
}

/// The result of hashing `source`, named as it is printed.
pub fn outcome(
    source: Source,
    result: Result<Option<Digested>, Reason>,
) -> Result<Hashing, Failure> {
    match result {
        Ok(Some(digested)) => Ok(Hashing::Hashed(Hashed {
            name: source.into_name(),
            digest: digested.digest,
            bytes: digested.bytes,
            state: digested.state,
        })),
        Ok(None) => Ok(Hashing::Skipped),
        Err(reason) => Err(Failure::new(source.into_name(), reason)),
    }
}

/// Opens the file named by the last component of `path` inside `dir`.
fn open_in(dir: &DirHandle, path: &Path) -> Result<File, Reason> {
    let name = path.file_name().unwrap_or(OsStr::new("."));
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = rustix::fs::openat(dir, name.as_bytes(), flags, rustix::fs::Mode::empty())
        .map_err(io::Error::from)?;
    Ok(File::from(fd))
}

/// Opens and hashes the file at `path` with `algorithm`, and checks that it did not change
/// meanwhile.
pub fn hash_path(
    algorithm: Algorithm,
    path: &Path,
    buf: &mut [u8],
) -> Result<(Digest, u64), Reason> {
    let file = File::open(path)?;
    let before = fstat(&file)?;
    hash_file(file, before, buf, algorithm)
}

/// Hashes an open file, and checks that it did not change while it was read.
///
/// For regular files, the size and modification time from `fstat` before the first read and
/// after the last one must agree, or the digest may mix old and new content and is refused.
/// Files whose size reads as 0 but that have content (as in /proc) are read to the end like
/// any other; their size and time do not move, so they hash as `sha256sum` hashes them.
fn hash_file(
    mut file: File,
    before: Stat,
    buf: &mut [u8],
    algorithm: Algorithm,
) -> Result<(Digest, u64), Reason> {
    let regular = FileType::from_raw_mode(before.st_mode) == FileType::RegularFile;
    let size = before.st_size as u64;
    let mut hasher = Hasher::new(algorithm);
    let total = if regular && size >= MAP_MIN {
        // Bytes appended after the size was taken are not read: the size check below reports
        // the file as changed, so they could not make the digest right anyway.
        hash_mapped(&file, size, &mut hasher)?;
        size
    } else {
        let first = loop {
            match file.read(buf) {
                Ok(n) => break n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {
                    if signals::stop_requested().is_some() {
                        return Err(err.into());
                    }
                }
                Err(err) => return Err(err.into()),
            }
        };
        hasher.update(&buf[..first]);
        // A read of 0 bytes is the end. A regular file read whole in one call needs no second
        // read to see its end: if it grew meanwhile, the size check below says so.
        if first == 0 || (regular && first as u64 == size) {
            first as u64
        } else {
            feed(&mut file, buf, &mut hasher, first as u64)?
        }
    };
    // Fewer bytes than its size: it shrank while being read (and may have grown back within
    // one timestamp tick, so the status check alone could miss it).
    if regular && (total < size || changed(&before, &fstat(&file)?)) {
        return Err(Reason::Changed);
    }
    Ok((hasher.finalize(), total))
}

/// The status of an open file.
pub fn fstat(file: &File) -> io::Result<Stat> {
    rustix::fs::fstat(file).map_err(io::Error::from)
}

/// Whether a file's status after it was read says it changed since `before`.
pub fn changed(before: &Stat, after: &Stat) -> bool {
    (before.st_size, before.st_mtime, before.st_mtime_nsec)
        != (after.st_size, after.st_mtime, after.st_mtime_nsec)
}

thread_local! {
    /// One block buffer per worker thread, reused for every file that thread hashes.
    static BLOCK: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn with_block_buffer<T>(f: impl FnOnce(&mut [u8]) -> T) -> T {
    BLOCK.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() != BLOCK_SIZE {
                buf.resize(BLOCK_SIZE, 0);
            }
            f(&mut buf)
        }
        // Only reachable if `f` re-entered this function on the same thread; stay correct
        // with a temporary buffer rather than panic.
        Err(_) => f(&mut vec![0; BLOCK_SIZE]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use sha2::Digest as _;

    fn sha256(data: &[u8]) -> Digest {
        Digest::from_bytes(&sha2::Sha256::digest(data)).unwrap()
    }

    #[test]
    fn published_vectors() {
        let mut buf = vec![0; 7];
        let (empty, n) = hash_reader(Algorithm::Sha256, &mut &b""[..], &mut buf).unwrap();
        assert_eq!(n, 0);
        assert_eq!(
            hex::encode(empty.as_bytes()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let (abc, _) = hash_reader(Algorithm::Sha256, &mut &b"abc"[..], &mut buf).unwrap();
        assert_eq!(
            hex::encode(abc.as_bytes()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn block_boundaries_do_not_change_the_digest() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for block in [1, 63, 64, 65, 4096, 20_000] {
            let (digest, n) =
                hash_reader(Algorithm::Sha256, &mut &data[..], &mut vec![0; block]).unwrap();
            assert_eq!(
                (digest, n),
                (sha256(&data), data.len() as u64),
                "block {block}"
            );
        }
    }

    #[test]
    fn files_on_both_sides_of_the_map_threshold_hash_correctly() {
        let dir = tempfile::tempdir().unwrap();
        let mut buf = vec![0; BLOCK_SIZE];
        let window = crate::engine::mapped::WINDOW as u64;
        for size in [
            0,
            1,
            MAP_MIN - 1,
            MAP_MIN,
            MAP_MIN + 1,
            window,
            window + 4097,
            3 * window,
        ] {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let path = dir.path().join(format!("f{size}"));
            std::fs::write(&path, &data).unwrap();
            let (digest, n) = hash_path(Algorithm::Sha256, &path, &mut buf).unwrap();
            assert_eq!((digest, n), (sha256(&data), size), "size {size}");
        }
    }
}
