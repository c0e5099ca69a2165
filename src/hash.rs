//! Hashing a reader, a file or standard input, streaming in 1 MiB blocks.
//!
//! This is the only module that reads file contents. It owns the per-worker block buffer, the
//! "changed while being read" check and the conversion of I/O errors into [`Failure`] values.
//! It never prints: results go back to the caller, which hands them to the single printing
//! thread. Which files to hash is `walk`'s business, and on which thread is `pool`'s.

use std::cell::RefCell;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::report::{Failure, Reason};

/// Size of the blocks a file is read in; each worker thread owns one buffer of this size.
pub const BLOCK_SIZE: usize = 1 << 20;

/// Length of a SHA-256 digest in bytes.
pub const DIGEST_LEN: usize = 32;

/// A SHA-256 digest.
pub type Digest = [u8; DIGEST_LEN];

/// One thing to hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A path to open: a regular file, or anything the user named explicitly (a FIFO, a device).
    Path(PathBuf),
    /// Standard input, printed as `-`.
    Stdin,
}

impl Source {
    /// The name this source is printed under.
    pub fn name(&self) -> &Path {
        match self {
            Source::Path(path) => path,
            Source::Stdin => Path::new("-"),
        }
    }
}

/// A successfully hashed source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashed {
    /// The name to print.
    pub name: PathBuf,
    /// The SHA-256 of the whole content.
    pub digest: Digest,
    /// How many bytes were read.
    pub bytes: u64,
}

/// Hashes everything `reader` yields until end of input, in blocks of `buf.len()` bytes.
/// Returns the digest and the number of bytes read.
pub fn hash_reader(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<(Digest, u64)> {
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    loop {
        match reader.read(buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                total += n as u64;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
    }
    Ok((hasher.finalize().into(), total))
}

/// Hashes `source` with this thread's block buffer.
pub fn hash_source(source: Source) -> Result<Hashed, Failure> {
    with_block_buffer(|buf| match source {
        Source::Path(path) => hash_path(&path, buf)
            .map(|(digest, bytes)| Hashed {
                name: path.clone(),
                digest,
                bytes,
            })
            .map_err(|reason| Failure::new(path, reason)),
        Source::Stdin => hash_reader(&mut io::stdin().lock(), buf)
            .map(|(digest, bytes)| Hashed {
                name: PathBuf::from("-"),
                digest,
                bytes,
            })
            .map_err(|err| Failure::new("-", err)),
    })
}

/// Opens and hashes the file at `path`, and checks that it did not change meanwhile.
///
/// For regular files, the size and modification time from `fstat` before the first read and
/// after the last one must agree, or the digest mixes old and new content and is refused.
/// Files whose size reads as 0 but that have content (as in /proc) are read to the end like
/// any other; their size and time do not move, so they hash as `sha256sum` hashes them.
pub fn hash_path(path: &Path, buf: &mut [u8]) -> Result<(Digest, u64), Reason> {
    let mut file = File::open(path)?;
    let before = file.metadata()?;
    let (digest, bytes) = hash_reader(&mut file, buf)?;
    if before.is_file() && changed(&before, &file.metadata()?) {
        return Err(Reason::Changed);
    }
    Ok((digest, bytes))
}

fn changed(before: &Metadata, after: &Metadata) -> bool {
    (before.size(), before.mtime(), before.mtime_nsec())
        != (after.size(), after.mtime(), after.mtime_nsec())
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

    fn sha256(data: &[u8]) -> Digest {
        Sha256::digest(data).into()
    }

    #[test]
    fn published_vectors() {
        let mut buf = vec![0; 7];
        let (empty, n) = hash_reader(&mut &b""[..], &mut buf).unwrap();
        assert_eq!(n, 0);
        assert_eq!(
            hex::encode(empty),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let (abc, _) = hash_reader(&mut &b"abc"[..], &mut buf).unwrap();
        assert_eq!(
            hex::encode(abc),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn block_boundaries_do_not_change_the_digest() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for block in [1, 63, 64, 65, 4096, 20_000] {
            let (digest, n) = hash_reader(&mut &data[..], &mut vec![0; block]).unwrap();
            assert_eq!(
                (digest, n),
                (sha256(&data), data.len() as u64),
                "block {block}"
            );
        }
    }
}
