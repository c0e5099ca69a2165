//! The outcome of hashing a source, and the checks that decide it: what every command gets
//! back from the engine ([`Hashing`]), the "changed while being read" comparison of two
//! statuses (`changed`), and [`hash_reader`], which hashes any reader in blocks (standard
//! input and FIFOs through the readers, benchmarks and tests). Pure functions and data: the
//! threads that call them are the readers and workers of `run`.

use std::io::{self, Read};
use std::path::PathBuf;

use rustix::fs::{FileType, Stat};

use crate::digest::{Algorithms, Digests, Hasher};
use crate::engine::source::{FileId, file_state};
use crate::format::state::FileState;
use crate::signals;

/// A block size for [`hash_reader`]: 1 MiB.
pub const BLOCK_SIZE: usize = 1 << 20;

/// What to hash with, and what never to hash.
#[derive(Debug, Clone, Default)]
pub struct HashOptions {
    /// The algorithm.
    pub algorithm: Algorithms,
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
    pub digest: Digests,
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
    /// It was not read: its stat was the one the caller recorded for it (the `unless` of
    /// the run's `Plan::Hash`).
    Unchanged {
        /// The name to print.
        name: PathBuf,
        /// Its stat, as recorded.
        state: FileState,
    },
    /// It is one of the files never to hash (the manifest being written).
    Skipped,
    /// It was not started: the run's time was up (`--max-duration`).
    NotReached,
    /// It was not started: at the run's rate (`--bwlimit`), its bytes take longer than its
    /// whole time box (`--max-duration`), so no run held to both ever reads it.
    TooLong {
        /// The name, for the warning.
        name: PathBuf,
        /// Its size.
        bytes: u64,
    },
}

/// Hashes everything `reader` yields until end of input, in blocks of `buf.len()` bytes.
/// Returns the digest and the number of bytes read.
pub fn hash_reader(
    algorithm: Algorithms,
    reader: &mut impl Read,
    buf: &mut [u8],
) -> io::Result<(Digests, u64)> {
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

/// The state of a regular file from its stat; `None` for anything else (a FIFO, a device),
/// whose stat says nothing of its bytes.
pub(crate) fn regular_state(stat: &Stat) -> Option<FileState> {
    (FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile).then(|| file_state(stat))
}

/// Whether a file's status after it was read says it changed since `before`: its size, or
/// its modification time to the nanosecond.
pub(crate) fn changed(before: &Stat, after: &Stat) -> bool {
    (before.st_size, before.st_mtime, before.st_mtime_nsec)
        != (after.st_size, after.st_mtime, after.st_mtime_nsec)
}

#[cfg(test)]
mod tests {
    use super::*;

    use sha2::Digest as _;

    fn sha256(data: &[u8]) -> Digests {
        Digests::from(<[u8; 32]>::from(sha2::Sha256::digest(data)))
    }

    #[test]
    fn published_vectors() {
        let mut buf = vec![0; 7];
        let (empty, n) = hash_reader(Algorithms::SHA256, &mut &b""[..], &mut buf).unwrap();
        assert_eq!(n, 0);
        assert_eq!(
            hex::encode(empty.first().as_bytes()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let (abc, _) = hash_reader(Algorithms::SHA256, &mut &b"abc"[..], &mut buf).unwrap();
        assert_eq!(
            hex::encode(abc.first().as_bytes()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn block_boundaries_do_not_change_the_digest() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for block in [1, 63, 64, 65, 4096, 20_000] {
            let (digest, n) =
                hash_reader(Algorithms::SHA256, &mut &data[..], &mut vec![0; block]).unwrap();
            assert_eq!(
                (digest, n),
                (sha256(&data), data.len() as u64),
                "block {block}"
            );
        }
    }
}
