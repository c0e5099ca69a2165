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

/// The smallest buffer worth spreading over a pool: BLAKE3 over 2 cores (the `blake3_units`
/// group of `benches/hashing.rs`) gained nothing from 128 KiB pieces, 1.5 x from 1 MiB, 1.8 x
/// from 8 MiB and 2.0 x from the whole input at once.
pub const PARALLEL_UNIT: usize = 1 << 20;

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

    /// Feeds `data`, on the calling thread (with the CPU's widest SIMD). The engine calls it
    /// once per block or chunk (128 KiB to a few MiB), so the dispatch costs nothing
    /// measurable.
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

    /// Whether [`Hasher::update_parallel`] can spread one buffer over several cores, and from
    /// what size on: BLAKE3 alone (its tree hash splits anywhere), with buffers of
    /// [`PARALLEL_UNIT`] or more. `None` for every other set: the others are sequential, and
    /// several algorithms at once already keep a core busy.
    pub fn parallel_unit(&self) -> Option<usize> {
        (self.rest.is_empty() && matches!(self.first, State::Blake3(_))).then_some(PARALLEL_UNIT)
    }

    /// Feeds `data` as [`Hasher::update`] does, except that BLAKE3 alone spreads a buffer
    /// of [`PARALLEL_UNIT`] or more over several threads (the blake3 crate's
    /// `update_rayon`, on rayon's global pool when called off any pool). The engine calls
    /// it from a worker that has one file and other workers idle; rayon's global pool runs
    /// nothing else of sumpool's, so no thread that waits on a half can pick up unrelated
    /// work, and the memory it reads is guarded for every thread (`engine::mapped`).
    pub fn update_parallel(&mut self, data: &[u8]) {
        match &mut self.first {
            State::Blake3(h) if self.rest.is_empty() && data.len() >= PARALLEL_UNIT => {
                h.update_rayon(data);
            }
            _ => self.update(data),
        }
    }

    /// The digests of everything fed.
    pub fn finalize(self) -> Digests {
        let first = self.first.finalize();
        let rest = self.rest.into_iter().map(State::finalize).collect();
        Digests::new(self.algorithms, first, rest)
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
    // Boxed, as the BLAKE states: a Keccak state and its buffer are 350 bytes, and the
    // hasher of a tiny file is made on the stack of a reader, once per file.
    Sha3_224(Box<sha3::Sha3_224>),
    Sha3_256(Box<sha3::Sha3_256>),
    Sha3_384(Box<sha3::Sha3_384>),
    Sha3_512(Box<sha3::Sha3_512>),
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
            Algorithm::Sha3_224 => State::Sha3_224(Box::default()),
            Algorithm::Sha3_256 => State::Sha3_256(Box::default()),
            Algorithm::Sha3_384 => State::Sha3_384(Box::default()),
            Algorithm::Sha3_512 => State::Sha3_512(Box::default()),
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
            State::Blake3(h) => {
                h.update(data);
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
