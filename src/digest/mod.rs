//! The algorithms sumpool offers, their digests, and one hasher over any set of them.
//!
//! Everything else stays algorithm-agnostic. The engine sees two things only: an
//! [`Algorithms`] value (one algorithm, or a few to compute in the same read; small and `Copy`)
//! and a [`Hasher`] made from it, fed with `update` and turned into [`Digests`] by `finalize`.
//! `format::line` writes a [`Digest`] with its algorithm's tag and encoding, `format::parse`
//! learns the algorithm of each line from its tag or, through a [`Selector`], from the shape of
//! its digest.
//!
//! The arithmetic is the well-kept crates', never ours: RustCrypto's `md-5`, `sha1`, `sha2`,
//! `sha3` and `blake2`, and the official `blake3`. Each picks its fastest code for the CPU at
//! run time; [`Algorithm::implementation`] says which, for `--version` and `-v`.
//!
//! BLAKE3 is the one algorithm that can spread a single input over several cores (its tree
//! hash). [`Hasher::update`] never does: it hashes on the calling thread, which is always
//! safe. [`Hasher::update_parallel`] spreads a large buffer over rayon's global pool, which
//! runs nothing else of sumpool's; its documentation says what the engine guarantees when it
//! calls it (faults of mapped memory caught on every thread), and [`Hasher::parallel_unit`]
//! tells the engine which hashers gain from it and from what buffer size.

use std::fmt;
use std::num::NonZeroU8;

use base64::Engine as _;

mod hasher;
mod selector;

pub use hasher::{Hasher, PARALLEL_UNIT};
pub use selector::{LengthError, Selector};

/// One algorithm, as chosen with `-a` (and `-l`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// MD5, as `md5sum`.
    Md5,
    /// SHA-1, as `sha1sum`.
    Sha1,
    /// SHA-224, as `sha224sum`.
    Sha224,
    /// SHA-256, as `sha256sum` (the default).
    #[default]
    Sha256,
    /// SHA-384, as `sha384sum`.
    Sha384,
    /// SHA-512, as `sha512sum`.
    Sha512,
    /// SHA3-224, as `cksum -a sha3 -l 224`.
    Sha3_224,
    /// SHA3-256, as `cksum -a sha3 -l 256`.
    Sha3_256,
    /// SHA3-384, as `cksum -a sha3 -l 384`.
    Sha3_384,
    /// SHA3-512, as `cksum -a sha3 -l 512`.
    Sha3_512,
    /// BLAKE2b with a digest of this many bytes, as `b2sum -l BITS` (512 bits by default).
    Blake2b(Blake2bLen),
    /// BLAKE3 (32-byte digests), as `b3sum`.
    Blake3,
}

/// The digest length of a BLAKE2b: 1 to 64 bytes (`-l` 8 to 512 bits, a multiple of 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Blake2bLen(NonZeroU8);

impl Blake2bLen {
    /// 64 bytes, the default and the longest.
    pub const MAX: Blake2bLen = Blake2bLen(NonZeroU8::new(64).unwrap());

    /// The length of `bytes` bytes, if it is from 1 to 64.
    pub fn from_bytes(bytes: usize) -> Option<Blake2bLen> {
        u8::try_from(bytes)
            .ok()
            .filter(|&b| b <= 64)
            .and_then(NonZeroU8::new)
            .map(Blake2bLen)
    }

    /// In bytes.
    pub fn bytes(self) -> usize {
        usize::from(self.0.get())
    }
}

impl Algorithm {
    /// One algorithm of each kind (BLAKE2b at its full length), in the order `--version`
    /// lists them.
    pub const ALL: [Algorithm; 12] = [
        Algorithm::Md5,
        Algorithm::Sha1,
        Algorithm::Sha224,
        Algorithm::Sha256,
        Algorithm::Sha384,
        Algorithm::Sha512,
        Algorithm::Sha3_224,
        Algorithm::Sha3_256,
        Algorithm::Sha3_384,
        Algorithm::Sha3_512,
        Algorithm::Blake2b(Blake2bLen::MAX),
        Algorithm::Blake3,
    ];

    /// Length of a digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Algorithm::Md5 => 16,
            Algorithm::Sha1 => 20,
            Algorithm::Sha224 | Algorithm::Sha3_224 => 28,
            Algorithm::Sha256 | Algorithm::Sha3_256 | Algorithm::Blake3 => 32,
            Algorithm::Sha384 | Algorithm::Sha3_384 => 48,
            Algorithm::Sha512 | Algorithm::Sha3_512 => 64,
            Algorithm::Blake2b(len) => len.bytes(),
        }
    }

    /// Length of a digest in hex digits.
    pub fn hex_len(self) -> usize {
        self.digest_len() * 2
    }

    /// Length of a digest in padded base64 (`cksum --base64`).
    pub fn base64_len(self) -> usize {
        self.digest_len().div_ceil(3) * 4
    }

    /// The SHA-2 algorithm of `bits` bits (`cksum -a sha2 -l BITS`).
    pub fn sha2(bits: u64) -> Option<Algorithm> {
        match bits {
            224 => Some(Algorithm::Sha224),
            256 => Some(Algorithm::Sha256),
            384 => Some(Algorithm::Sha384),
            512 => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    /// The SHA-3 algorithm of `bits` bits (`cksum -a sha3 -l BITS`).
    pub fn sha3(bits: u64) -> Option<Algorithm> {
        match bits {
            224 => Some(Algorithm::Sha3_224),
            256 => Some(Algorithm::Sha3_256),
            384 => Some(Algorithm::Sha3_384),
            512 => Some(Algorithm::Sha3_512),
            _ => None,
        }
    }

    /// The BLAKE2b of `bits` bits: a multiple of 8 from 8 to 512.
    pub fn blake2b(bits: u64) -> Option<Algorithm> {
        if !bits.is_multiple_of(8) {
            return None;
        }
        let bytes = usize::try_from(bits / 8).ok()?;
        Blake2bLen::from_bytes(bytes).map(Algorithm::Blake2b)
    }

    /// Appends the tag of BSD-style lines: the name GNU `cksum` (and `b3sum --tag`) writes
    /// before ` (NAME) = `. From coreutils `src/digest.c` (`output_file`, 9.8): SHA-2 is
    /// `SHA<bits>`, SHA-3 `SHA3-<bits>`, BLAKE2b `BLAKE2b`, or `BLAKE2b-<bits>` when shorter
    /// than 512 bits; b3sum writes `BLAKE3`.
    pub fn push_tag(self, out: &mut Vec<u8>) {
        let tag = match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha224 => "SHA224",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha384 => "SHA384",
            Algorithm::Sha512 => "SHA512",
            Algorithm::Sha3_224 => "SHA3-224",
            Algorithm::Sha3_256 => "SHA3-256",
            Algorithm::Sha3_384 => "SHA3-384",
            Algorithm::Sha3_512 => "SHA3-512",
            Algorithm::Blake2b(len) if len == Blake2bLen::MAX => "BLAKE2b",
            Algorithm::Blake2b(len) => {
                out.extend_from_slice(format!("BLAKE2b-{}", len.bytes() * 8).as_bytes());
                return;
            }
            Algorithm::Blake3 => "BLAKE3",
        };
        out.extend_from_slice(tag.as_bytes());
    }

    /// The tag of BSD-style lines, as a string (see [`Algorithm::push_tag`]).
    pub fn tag(self) -> String {
        let mut tag = Vec::with_capacity(12);
        self.push_tag(&mut tag);
        String::from_utf8_lossy(&tag).into_owned()
    }

    /// The names a BSD-style tag may start with, before any `-<bits>`: GNU cksum's
    /// `algorithm_tags` that sumpool reads, and b3sum's `BLAKE3`.
    pub const TAG_NAMES: [&'static str; 10] = [
        "MD5", "SHA1", "SHA224", "SHA256", "SHA384", "SHA512", "SHA2", "SHA3", "BLAKE2b", "BLAKE3",
    ];

    /// The algorithm a BSD-style tag names. `name` is the tag up to a `-`, a blank or a `(`
    /// (GNU's `algorithm_from_tag`), `bits` the number after a `-`, if any. SHA2, SHA3 and
    /// BLAKE2b take a length (512 bits without one, as `cksum -c` reads them); the others take
    /// none: GNU would also read `MD5-64` as a digest cut to 64 bits, sumpool never compares a
    /// truncated digest of a fixed-length algorithm.
    pub fn from_tag(name: &[u8], bits: Option<u64>) -> Option<Algorithm> {
        let fixed = match name {
            b"MD5" => Algorithm::Md5,
            b"SHA1" => Algorithm::Sha1,
            b"SHA224" => Algorithm::Sha224,
            b"SHA256" => Algorithm::Sha256,
            b"SHA384" => Algorithm::Sha384,
            b"SHA512" => Algorithm::Sha512,
            b"BLAKE3" => Algorithm::Blake3,
            b"SHA2" => return Algorithm::sha2(bits.unwrap_or(512)),
            b"SHA3" => return Algorithm::sha3(bits.unwrap_or(512)),
            b"BLAKE2b" => return Algorithm::blake2b(bits.unwrap_or(512)),
            _ => return None,
        };
        bits.is_none().then_some(fixed)
    }

    /// Which code runs this algorithm on this CPU, as the crate picks it at run time: for
    /// `--version` and `-v`. It mirrors each crate's dispatch (`cpufeatures` checks) and
    /// says what the crate would pick; it does not change what it picks.
    pub fn implementation(self) -> &'static str {
        match self {
            Algorithm::Md5 | Algorithm::Blake2b(_) => "portable",
            Algorithm::Sha1 | Algorithm::Sha224 | Algorithm::Sha256 => {
                if cpu::sha_extensions() {
                    "SHA extensions"
                } else {
                    "portable"
                }
            }
            Algorithm::Sha384 | Algorithm::Sha512 => cpu::sha512(),
            Algorithm::Sha3_224
            | Algorithm::Sha3_256
            | Algorithm::Sha3_384
            | Algorithm::Sha3_512 => cpu::sha3(),
            Algorithm::Blake3 => cpu::blake3(),
        }
    }
}

impl fmt::Display for Algorithm {
    /// The name the command line and JSON use: `sha256`, `sha3-256`, `blake2b`, `blake2b-256`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Algorithm::Md5 => f.write_str("md5"),
            Algorithm::Sha1 => f.write_str("sha1"),
            Algorithm::Sha224 => f.write_str("sha224"),
            Algorithm::Sha256 => f.write_str("sha256"),
            Algorithm::Sha384 => f.write_str("sha384"),
            Algorithm::Sha512 => f.write_str("sha512"),
            Algorithm::Sha3_224 => f.write_str("sha3-224"),
            Algorithm::Sha3_256 => f.write_str("sha3-256"),
            Algorithm::Sha3_384 => f.write_str("sha3-384"),
            Algorithm::Sha3_512 => f.write_str("sha3-512"),
            Algorithm::Blake2b(len) if *len == Blake2bLen::MAX => f.write_str("blake2b"),
            Algorithm::Blake2b(len) => write!(f, "blake2b-{}", len.bytes() * 8),
            Algorithm::Blake3 => f.write_str("blake3"),
        }
    }
}

/// What the CPU offers, as the crates test it (`cpufeatures` caches the same checks).
mod cpu {
    /// SHA-NI with the SSE levels the sha1 and sha2 crates require, or ARMv8 SHA2.
    pub fn sha_extensions() -> bool {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        {
            std::arch::is_x86_feature_detected!("sha")
                && std::arch::is_x86_feature_detected!("sse2")
                && std::arch::is_x86_feature_detected!("ssse3")
                && std::arch::is_x86_feature_detected!("sse4.1")
        }
        #[cfg(target_arch = "aarch64")]
        {
            std::arch::is_aarch64_feature_detected!("sha2")
        }
        #[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64")))]
        {
            false
        }
    }

    /// The sha2 crate's SHA-512 path: AVX2 on x86, the SHA-512 instructions on ARMv8.
    pub fn sha512() -> &'static str {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        if std::arch::is_x86_feature_detected!("avx2") {
            return "AVX2";
        }
        #[cfg(target_arch = "aarch64")]
        if std::arch::is_aarch64_feature_detected!("sha3") {
            return "SHA-512 extensions";
        }
        "portable"
    }

    /// The keccak crate's path: the SHA-3 instructions on ARMv8, portable elsewhere.
    pub fn sha3() -> &'static str {
        #[cfg(target_arch = "aarch64")]
        if std::arch::is_aarch64_feature_detected!("sha3") {
            return "SHA-3 extensions";
        }
        "portable"
    }

    /// The blake3 crate's path on x86 (`platform.rs`): AVX-512 (F and VL), AVX2, SSE4.1,
    /// SSE2; portable elsewhere (its NEON code is a build option sumpool leaves off).
    pub fn blake3() -> &'static str {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                return "AVX-512";
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return "AVX2";
            }
            if std::arch::is_x86_feature_detected!("sse4.1") {
                return "SSE4.1";
            }
            if std::arch::is_x86_feature_detected!("sse2") {
                return "SSE2";
            }
        }
        "portable"
    }
}

/// Most algorithms computed in one read: one of each kind.
pub const MAX_ALGORITHMS: usize = Algorithm::ALL.len();

/// The algorithms of one run or one item, in the order their lines are printed: one, or a
/// few computed from the same read (`-a sha256,md5`). Small and `Copy`: it is all the engine
/// knows of what it computes.
#[derive(Clone, Copy, Eq)]
pub struct Algorithms {
    list: [Algorithm; MAX_ALGORITHMS],
    len: u8,
}

/// Why a list of algorithms cannot be computed together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListError {
    /// No algorithm at all.
    Empty,
    /// The same algorithm twice (its lines would be printed twice).
    Twice(Algorithm),
}

impl Algorithms {
    /// SHA-256 alone: the default, and the only set the multi-buffer SHA-256 lanes run.
    pub const SHA256: Algorithms = Algorithms::one(Algorithm::Sha256);

    /// One algorithm.
    pub const fn one(algorithm: Algorithm) -> Algorithms {
        Algorithms {
            list: [algorithm; MAX_ALGORITHMS],
            len: 1,
        }
    }

    /// These algorithms, in this order. Two of a kind (two BLAKE2b lengths included) are
    /// refused: there can only be one of each, so the list always fits.
    pub fn new(list: &[Algorithm]) -> Result<Algorithms, ListError> {
        let (&first, _) = list.split_first().ok_or(ListError::Empty)?;
        let mut set = Algorithms::one(first);
        set.len = 0;
        for &algorithm in list {
            let same_kind =
                |a: &Algorithm| std::mem::discriminant(a) == std::mem::discriminant(&algorithm);
            if set.as_slice().iter().any(same_kind) {
                return Err(ListError::Twice(algorithm));
            }
            // One of each kind fits: the check above leaves room.
            set.list[usize::from(set.len)] = algorithm;
            set.len += 1;
        }
        Ok(set)
    }

    /// The algorithms, in order.
    pub fn as_slice(&self) -> &[Algorithm] {
        &self.list[..usize::from(self.len)]
    }

    /// The first (for one algorithm, the only one).
    pub fn first(&self) -> Algorithm {
        self.list[0]
    }

    /// How many there are (at least one).
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Always false: there is at least one algorithm.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether there is exactly one.
    pub fn is_single(&self) -> bool {
        self.len == 1
    }
}

impl PartialEq for Algorithms {
    /// The same algorithms in the same order (the unused slots do not count).
    fn eq(&self, other: &Algorithms) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl std::hash::Hash for Algorithms {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl Default for Algorithms {
    fn default() -> Algorithms {
        Algorithms::SHA256
    }
}

impl fmt::Debug for Algorithms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl fmt::Display for Algorithms {
    /// The names, joined by commas, as `-a` takes them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, algorithm) in self.as_slice().iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{algorithm}")?;
        }
        Ok(())
    }
}

/// Longest digest of any algorithm, in bytes.
pub const MAX_LEN: usize = 64;

/// A digest of any of the algorithms: up to 64 bytes, kept inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    bytes: [u8; MAX_LEN],
    len: u8,
}

impl Digest {
    /// A digest that no content has (it is empty): what a line whose base64 is not in the
    /// canonical form expects. GNU compares the encodings, so such a line FAILS rather than
    /// being improperly formatted, and sumpool must not report it OK whatever the bytes.
    pub const UNMATCHABLE: Digest = Digest {
        bytes: [0; MAX_LEN],
        len: 0,
    };

    /// The digest's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// Whether this is [`Digest::UNMATCHABLE`].
    pub fn is_unmatchable(&self) -> bool {
        self.len == 0
    }

    /// A digest holding `bytes` (at most 64 of them).
    pub fn from_bytes(bytes: &[u8]) -> Option<Digest> {
        if bytes.len() > MAX_LEN {
            return None;
        }
        let mut digest = Digest {
            bytes: [0; MAX_LEN],
            len: bytes.len() as u8,
        };
        digest.bytes[..bytes.len()].copy_from_slice(bytes);
        Some(digest)
    }

    /// Parses a digest of `algorithm` written in hex (either case) or padded base64.
    pub fn from_text(algorithm: Algorithm, text: &[u8]) -> Option<Digest> {
        if text.len() == algorithm.hex_len() && text.iter().all(u8::is_ascii_hexdigit) {
            Digest::from_hex(algorithm, text)
        } else {
            Digest::from_base64(algorithm, text)
        }
    }

    /// Parses hex digits, either case, as a digest of `algorithm`.
    pub fn from_hex(algorithm: Algorithm, hex: &[u8]) -> Option<Digest> {
        if hex.len() != algorithm.hex_len() {
            return None;
        }
        let mut digest = Digest {
            bytes: [0; MAX_LEN],
            len: algorithm.digest_len() as u8,
        };
        // By table rather than with the hex crate: reading a manifest decodes one digest per
        // line, and this was a third of the time of reading a large one.
        for (byte, pair) in digest.bytes.iter_mut().zip(hex.chunks_exact(2)) {
            let (high, low) = (HEX_VALUE[pair[0] as usize], HEX_VALUE[pair[1] as usize]);
            if high > 15 || low > 15 {
                return None;
            }
            *byte = (high << 4) | low;
        }
        Some(digest)
    }

    /// Parses padded base64 (standard alphabet) as a digest of `algorithm`, by GNU's rule
    /// (coreutils 9.8 `valid_digits`, `b64_equal`): the length of the encoding of the digest,
    /// base64 letters, then exactly the `=` padding that length calls for. Text of that shape
    /// whose last letter carries bits the digest does not have is not how any digest encodes:
    /// GNU compares it with the digest's encoding and it never matches, so it reads as
    /// [`Digest::UNMATCHABLE`].
    pub fn from_base64(algorithm: Algorithm, text: &[u8]) -> Option<Digest> {
        let len = algorithm.digest_len();
        if text.len() != algorithm.base64_len() {
            return None;
        }
        let padding = (3 - len % 3) % 3;
        let (letters, pad) = text.split_at(text.len() - padding);
        let is_letter = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
        if !letters.iter().all(is_letter) || !pad.iter().all(|&b| b == b'=') {
            return None;
        }
        let mut bytes = [0u8; MAX_LEN + 2];
        match BASE64_LENIENT.decode_slice(text, &mut bytes) {
            Ok(n) if n == len => {}
            _ => return None,
        }
        let digest = Digest::from_bytes(&bytes[..len])?;
        let mut canonical = Vec::with_capacity(text.len());
        digest.push_base64(&mut canonical);
        Some(if canonical == text {
            digest
        } else {
            Digest::UNMATCHABLE
        })
    }

    /// Appends the lowercase hex form, as every `*sum` tool writes it.
    pub fn push_hex(&self, out: &mut Vec<u8>) {
        let mut hex = [0u8; MAX_LEN * 2];
        let hex = &mut hex[..self.as_bytes().len() * 2];
        // The slice is exactly twice the digest length, which is all `encode_to_slice` requires.
        if hex::encode_to_slice(self.as_bytes(), hex).is_ok() {
            out.extend_from_slice(hex);
        }
    }

    /// Appends the padded base64 form (standard alphabet), as `cksum --base64` writes it.
    pub fn push_base64(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + self.as_bytes().len().div_ceil(3) * 4, 0);
        let written = base64::engine::general_purpose::STANDARD
            .encode_slice(self.as_bytes(), &mut out[start..])
            .unwrap_or(0);
        out.truncate(start + written);
    }
}

/// Standard base64 that accepts a last letter with bits to spare, so that `from_base64` can
/// tell a non-canonical encoding (a FAILED line) from text that is not base64 at all.
const BASE64_LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireCanonical),
);

/// The value of each byte as a hex digit, either case; 0xff for anything else.
const HEX_VALUE: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.as_bytes()))
    }
}

/// The digests of one input: one per algorithm of its [`Algorithms`], in the same order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    /// The algorithm of `first`.
    algorithm: Algorithm,
    first: Digest,
    /// With several algorithms, all of them and the digests after the first; `None` (nothing
    /// allocated, and a result that stays small on its way to the printing thread) for one.
    more: Option<Box<More>>,
}

/// The algorithms and digests after the first of a [`Digests`] of several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct More {
    algorithms: Algorithms,
    rest: Vec<Digest>,
}

impl Digests {
    /// The digests of `algorithms`, in order (as many as there are algorithms).
    pub(crate) fn new(algorithms: Algorithms, first: Digest, rest: Vec<Digest>) -> Digests {
        Digests {
            algorithm: algorithms.first(),
            first,
            more: (!rest.is_empty()).then(|| Box::new(More { algorithms, rest })),
        }
    }

    /// The algorithms, in order.
    pub fn algorithms(&self) -> Algorithms {
        self.more
            .as_ref()
            .map_or(Algorithms::one(self.algorithm), |more| more.algorithms)
    }

    /// The first digest (for one algorithm, the only one).
    pub fn first(&self) -> &Digest {
        &self.first
    }

    /// Each algorithm with its digest, in order.
    pub fn iter(&self) -> impl Iterator<Item = (Algorithm, &Digest)> {
        let rest = self.more.as_ref().map_or(&[][..], |more| &more.rest[..]);
        let algorithms = self
            .more
            .as_ref()
            .map_or(&[][..], |more| &more.algorithms.as_slice()[1..]);
        std::iter::once((self.algorithm, &self.first)).chain(algorithms.iter().copied().zip(rest))
    }
}

impl From<[u8; 32]> for Digests {
    /// A SHA-256 digest (of SHA-256 alone), as the multi-buffer lanes compute it.
    fn from(bytes: [u8; 32]) -> Digests {
        let mut first = Digest {
            bytes: [0; MAX_LEN],
            len: 32,
        };
        first.bytes[..32].copy_from_slice(&bytes);
        Digests {
            algorithm: Algorithm::Sha256,
            first,
            more: None,
        }
    }
}

#[cfg(test)]
mod tests;
