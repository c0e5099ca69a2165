//! The hasher over a set of algorithms, and the crates that do the arithmetic.

use blake2::digest::block_api::{Buffer, UpdateCore, VariableOutputCore as _};
use sha2::Digest as _;

use super::{Algorithm, Algorithms, Blake2bLen, Digest, Digests};

/// A running hash of a set of algorithms: each byte fed once, to each of them.
pub struct Hasher {
    algorithms: Algorithms,
    first: State,
    /// The states after the first; empty (not allocated) for one algorithm.
    rest: Vec<State>,
}

/// Several algorithms take the input in pieces of this size, each piece through all of them
/// in turn while it is in the core's cache, rather than each algorithm through the whole of a
/// large buffer in turn.
const PIECE: usize = 64 << 10;

/// Below this, BLAKE3 hashes a buffer on the calling thread alone: splitting it over the pool
/// costs more than it gains (the blake3 crate's docs put the break-even near 128 KiB).
const BLAKE3_PARALLEL_MIN: usize = 128 << 10;

impl Hasher {
    /// A fresh hasher for `algorithms`.
    pub fn new(algorithms: Algorithms) -> Hasher {
        let mut states = algorithms.as_slice().iter().map(|&a| State::new(a));
        let first = states
            .next()
            .unwrap_or_else(|| State::new(algorithms.first()));
        Hasher {
            algorithms,
            first,
            rest: states.collect(),
        }
    }

    /// Feeds `data`. The engine calls it once per block or chunk (128 KiB to a few MiB), so
    /// the dispatch costs nothing measurable.
    pub fn update(&mut self, data: &[u8]) {
        if self.rest.is_empty() {
            self.first.update(data);
            return;
        }
        for piece in data.chunks(PIECE) {
            self.first.update(piece);
            for state in &mut self.rest {
                state.update(piece);
            }
        }
    }

    /// The digests of everything fed.
    pub fn finalize(self) -> Digests {
        Digests {
            algorithms: self.algorithms,
            first: self.first.finalize(),
            rest: self.rest.into_iter().map(State::finalize).collect(),
        }
    }
}

/// The running hash of one algorithm.
enum State {
    Md5(md5::Md5),
    Sha1(sha1::Sha1),
    Sha224(sha2::Sha224),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
    Sha3_224(sha3::Sha3_224),
    Sha3_256(sha3::Sha3_256),
    Sha3_384(sha3::Sha3_384),
    Sha3_512(sha3::Sha3_512),
    Blake2b(Box<Blake2b>),
    Blake3(Box<blake3::Hasher>),
}

impl State {
    fn new(algorithm: Algorithm) -> State {
        match algorithm {
            Algorithm::Md5 => State::Md5(md5::Md5::new()),
            Algorithm::Sha1 => State::Sha1(sha1::Sha1::new()),
            Algorithm::Sha224 => State::Sha224(sha2::Sha224::new()),
            Algorithm::Sha256 => State::Sha256(sha2::Sha256::new()),
            Algorithm::Sha384 => State::Sha384(sha2::Sha384::new()),
            Algorithm::Sha512 => State::Sha512(sha2::Sha512::new()),
            Algorithm::Sha3_224 => State::Sha3_224(sha3::Sha3_224::new()),
            Algorithm::Sha3_256 => State::Sha3_256(sha3::Sha3_256::new()),
            Algorithm::Sha3_384 => State::Sha3_384(sha3::Sha3_384::new()),
            Algorithm::Sha3_512 => State::Sha3_512(sha3::Sha3_512::new()),
            Algorithm::Blake2b(len) => State::Blake2b(Box::new(Blake2b::new(len))),
            Algorithm::Blake3 => State::Blake3(Box::new(blake3::Hasher::new())),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            State::Md5(h) => h.update(data),
            State::Sha1(h) => h.update(data),
            State::Sha224(h) => h.update(data),
            State::Sha256(h) => h.update(data),
            State::Sha384(h) => h.update(data),
            State::Sha512(h) => h.update(data),
            State::Sha3_224(h) => h.update(data),
            State::Sha3_256(h) => h.update(data),
            State::Sha3_384(h) => h.update(data),
            State::Sha3_512(h) => h.update(data),
            State::Blake2b(h) => h.update(data),
            // On a thread of a rayon pool, a large buffer is spread over the pool (see the
            // module's header); anywhere else (a reader thread) rayon would start its global
            // pool, so the buffer is hashed here, with the CPU's widest SIMD.
            State::Blake3(h) => {
                if data.len() >= BLAKE3_PARALLEL_MIN && rayon::current_thread_index().is_some() {
                    h.update_rayon(data);
                } else {
                    h.update(data);
                }
            }
        }
    }

    fn finalize(self) -> Digest {
        let digest = match self {
            State::Md5(h) => Digest::from_bytes(&h.finalize()),
            State::Sha1(h) => Digest::from_bytes(&h.finalize()),
            State::Sha224(h) => Digest::from_bytes(&h.finalize()),
            State::Sha256(h) => Digest::from_bytes(&h.finalize()),
            State::Sha384(h) => Digest::from_bytes(&h.finalize()),
            State::Sha512(h) => Digest::from_bytes(&h.finalize()),
            State::Sha3_224(h) => Digest::from_bytes(&h.finalize()),
            State::Sha3_256(h) => Digest::from_bytes(&h.finalize()),
            State::Sha3_384(h) => Digest::from_bytes(&h.finalize()),
            State::Sha3_512(h) => Digest::from_bytes(&h.finalize()),
            State::Blake2b(h) => h.finalize(),
            State::Blake3(h) => Digest::from_bytes(h.finalize().as_bytes()),
        };
        // Every digest fits in MAX_LEN bytes.
        digest.unwrap_or(Digest::UNMATCHABLE)
    }
}

/// BLAKE2b of a length chosen at run time: the blake2 crate's variable-output core and its
/// block buffer, which is what its fixed-length types wrap.
struct Blake2b {
    core: blake2::Blake2bVarCore,
    buffer: Buffer<blake2::Blake2bVarCore>,
    len: usize,
}

impl Blake2b {
    fn new(len: Blake2bLen) -> Blake2b {
        // What `VariableOutputCore::new` does once it has checked the length, which
        // `Blake2bLen` already holds to 1..=64 bytes.
        Blake2b {
            core: blake2::Blake2bVarCore::new_with_params(&[], &[], 0, len.bytes()),
            buffer: Buffer::<blake2::Blake2bVarCore>::default(),
            len: len.bytes(),
        }
    }

    fn update(&mut self, data: &[u8]) {
        let core = &mut self.core;
        self.buffer
            .digest_blocks(data, |blocks| core.update_blocks(blocks));
    }

    fn finalize(mut self) -> Option<Digest> {
        let mut out = blake2::digest::Output::<blake2::Blake2bVarCore>::default();
        self.core.finalize_variable_core(&mut self.buffer, &mut out);
        // The core fills 64 bytes; a shorter BLAKE2b is its first `len` (`TRUNC_SIDE` is
        // left), computed with that length in its parameter block.
        Digest::from_bytes(out.get(..self.len)?)
    }
}
