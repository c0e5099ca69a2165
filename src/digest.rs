//! The SHA-2 algorithms sumpool offers, their digests, and one hasher type over all of them.
//!
//! Everything else stays algorithm-agnostic: `engine::read` feeds a [`Hasher`], `format::line`
//! writes a [`Digest`] and the algorithm's [`Algorithm::tag`], `format::parse` learns the algorithm
//! of each line from its tag or its digest length. The implementations are the sha2 crate's, which
//! use the CPU's SHA extensions when present.

use std::fmt;

use sha2::Digest as _;

/// A SHA-2 algorithm, as chosen with `-a`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// SHA-224, as `sha224sum`.
    Sha224,
    /// SHA-256, as `sha256sum` (the default).
    #[default]
    Sha256,
    /// SHA-384, as `sha384sum`.
    Sha384,
    /// SHA-512, as `sha512sum`.
    Sha512,
}

impl Algorithm {
    /// Every algorithm, shortest digest first.
    pub const ALL: [Algorithm; 4] = [
        Algorithm::Sha224,
        Algorithm::Sha256,
        Algorithm::Sha384,
        Algorithm::Sha512,
    ];

    /// The name in BSD-style lines: `SHA256`.
    pub fn tag(self) -> &'static str {
        match self {
            Algorithm::Sha224 => "SHA224",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha384 => "SHA384",
            Algorithm::Sha512 => "SHA512",
        }
    }

    /// Length of a digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Algorithm::Sha224 => 28,
            Algorithm::Sha256 => 32,
            Algorithm::Sha384 => 48,
            Algorithm::Sha512 => 64,
        }
    }

    /// Length of a digest in hex digits.
    pub fn hex_len(self) -> usize {
        self.digest_len() * 2
    }

    /// The algorithm whose hex digests have `hex_len` digits.
    pub fn from_hex_len(hex_len: usize) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.hex_len() == hex_len)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.tag().to_ascii_lowercase())
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
    /// The digest's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
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
}

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

/// A running hash of one of the algorithms.
#[derive(Clone)]
pub enum Hasher {
    /// SHA-224.
    Sha224(sha2::Sha224),
    /// SHA-256.
    Sha256(sha2::Sha256),
    /// SHA-384.
    Sha384(sha2::Sha384),
    /// SHA-512.
    Sha512(sha2::Sha512),
}

impl From<[u8; 32]> for Digest {
    /// A SHA-256 digest.
    fn from(bytes: [u8; 32]) -> Digest {
        let mut digest = Digest {
            bytes: [0; MAX_LEN],
            len: 32,
        };
        digest.bytes[..32].copy_from_slice(&bytes);
        digest
    }
}

impl Hasher {
    /// A fresh hasher for `algorithm`.
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha224 => Hasher::Sha224(sha2::Sha224::new()),
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    /// Feeds `data`. Called once per block (1 MiB), so the match costs nothing measurable.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha224(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The digest of everything fed.
    pub fn finalize(self) -> Digest {
        let digest = match self {
            Hasher::Sha224(h) => Digest::from_bytes(&h.finalize()),
            Hasher::Sha256(h) => Digest::from_bytes(&h.finalize()),
            Hasher::Sha384(h) => Digest::from_bytes(&h.finalize()),
            Hasher::Sha512(h) => Digest::from_bytes(&h.finalize()),
        };
        // Every SHA-2 digest fits in MAX_LEN bytes.
        digest.unwrap_or(Digest {
            bytes: [0; MAX_LEN],
            len: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_abc_vectors() {
        let want = [
            (
                Algorithm::Sha224,
                "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7",
            ),
            (
                Algorithm::Sha256,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                Algorithm::Sha384,
                "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed\
                 8086072ba1e7cc2358baeca134c825a7",
            ),
            (
                Algorithm::Sha512,
                "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
                 2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            ),
        ];
        for (algorithm, hex) in want {
            let mut hasher = Hasher::new(algorithm);
            hasher.update(b"abc");
            let digest = hasher.finalize();
            assert_eq!(format!("{digest:?}"), hex, "{algorithm}");
            assert_eq!(digest.as_bytes().len(), algorithm.digest_len());
            assert_eq!(
                Digest::from_hex(algorithm, hex.to_uppercase().as_bytes()),
                Some(digest)
            );
            assert_eq!(Algorithm::from_hex_len(hex.len()), Some(algorithm));
        }
    }
}
