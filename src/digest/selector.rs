//! Reading what `-a` names: one algorithm, or a family whose lines say their length, and the
//! digest of an untagged line, told hex or base64 by its shape.

use super::{Algorithm, Blake2bLen, Digest};

/// What `-a` names when reading lines: one algorithm, or a family whose lines say their
/// length (by a tag like `SHA3-256`, or by the length of an untagged digest), as `cksum -c`
/// reads them with `-a sha2`, `-a sha3` or `-a blake2b` and no `-l`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selector {
    /// This algorithm only.
    Exact(Algorithm),
    /// SHA-224, SHA-256, SHA-384 or SHA-512.
    Sha2,
    /// SHA3-224, SHA3-256, SHA3-384 or SHA3-512.
    Sha3,
    /// BLAKE2b of any length.
    Blake2b,
}

/// Why `-l` does not go with an algorithm. The messages are GNU cksum's (coreutils 9.8,
/// `src/digest.c`, `main`); `cli` words them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthError {
    /// `-l` given, and no algorithm named takes one.
    NotSupported,
    /// `-a sha2` or `-a sha3` without `-l`, where a definite algorithm is needed.
    Required(&'static str),
    /// A BLAKE2b length that is not a multiple of 8.
    NotMultipleOf8,
    /// A BLAKE2b length over 512 bits.
    TooLong,
    /// A SHA-2 or SHA-3 length other than 224, 256, 384 or 512; the family's GNU name.
    NotSha(&'static str),
}

impl Selector {
    /// The names `-a` takes, in the order help and errors list them.
    pub const NAMES: [&'static str; 14] = [
        "md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha2", "sha3", "sha3-224",
        "sha3-256", "sha3-384", "sha3-512", "blake2b", "blake3",
    ];

    /// What `-a NAME` names (exact spelling, as GNU's `XARGMATCH_EXACT`).
    pub fn from_name(name: &str) -> Option<Selector> {
        Some(match name {
            "sha2" => Selector::Sha2,
            "sha3" => Selector::Sha3,
            "blake2b" => Selector::Blake2b,
            _ => Selector::Exact(
                Algorithm::ALL
                    .into_iter()
                    .find(|a| a.to_string() == name && !matches!(a, Algorithm::Blake2b(_)))?,
            ),
        })
    }

    /// Whether `-l` applies to it.
    pub fn takes_length(self) -> bool {
        !matches!(self, Selector::Exact(_))
    }

    /// This family at `bits` (`-l`); 0 is BLAKE2b's default of 512, as `b2sum -l 0`.
    pub fn with_length(self, bits: u64) -> Result<Algorithm, LengthError> {
        match self {
            Selector::Exact(_) => Err(LengthError::NotSupported),
            Selector::Sha2 => Algorithm::sha2(bits).ok_or(LengthError::NotSha("SHA2")),
            Selector::Sha3 => Algorithm::sha3(bits).ok_or(LengthError::NotSha("SHA3")),
            Selector::Blake2b if bits > 512 => Err(LengthError::TooLong),
            Selector::Blake2b if !bits.is_multiple_of(8) => Err(LengthError::NotMultipleOf8),
            Selector::Blake2b => Ok(Algorithm::blake2b(if bits == 0 { 512 } else { bits })
                .unwrap_or(Algorithm::Blake2b(Blake2bLen::MAX))),
        }
    }

    /// The one algorithm to hash with, when no `-l` was given: BLAKE2b is 512 bits; SHA2 and
    /// SHA3 need a length.
    pub fn exact(self) -> Result<Algorithm, LengthError> {
        match self {
            Selector::Exact(algorithm) => Ok(algorithm),
            Selector::Sha2 => Err(LengthError::Required("sha2")),
            Selector::Sha3 => Err(LengthError::Required("sha3")),
            Selector::Blake2b => Ok(Algorithm::Blake2b(Blake2bLen::MAX)),
        }
    }

    /// Whether a line of `algorithm` is one of these.
    pub fn accepts(self, algorithm: Algorithm) -> bool {
        match self {
            Selector::Exact(exact) => exact == algorithm,
            Selector::Sha2 => matches!(
                algorithm,
                Algorithm::Sha224 | Algorithm::Sha256 | Algorithm::Sha384 | Algorithm::Sha512
            ),
            Selector::Sha3 => matches!(
                algorithm,
                Algorithm::Sha3_224
                    | Algorithm::Sha3_256
                    | Algorithm::Sha3_384
                    | Algorithm::Sha3_512
            ),
            Selector::Blake2b => matches!(algorithm, Algorithm::Blake2b(_)),
        }
    }

    /// The name GNU gives the digest type in `check` warnings ("improperly formatted SHA3
    /// checksum line"): its tag, or the family's (`SHA2`, `SHA3`, `BLAKE2b`).
    pub fn type_name(self) -> String {
        match self {
            Selector::Exact(Algorithm::Sha3_224)
            | Selector::Exact(Algorithm::Sha3_256)
            | Selector::Exact(Algorithm::Sha3_384)
            | Selector::Exact(Algorithm::Sha3_512)
            | Selector::Sha3 => "SHA3".to_owned(),
            Selector::Exact(Algorithm::Blake2b(_)) | Selector::Blake2b => "BLAKE2b".to_owned(),
            Selector::Sha2 => "SHA2".to_owned(),
            Selector::Exact(algorithm) => algorithm.tag(),
        }
    }

    /// Reads the digest field of an untagged line (everything before the first blank): the
    /// algorithm it is of and its value, or `None` if it is not a digest of these algorithms.
    ///
    /// The field is hex or padded base64, told by its shape (coreutils 9.8 `split_3`): for one
    /// algorithm, its hex or base64 length; for SHA2 and SHA3, hex of 56, 64, 96 or 128 digits,
    /// else base64 of one of those sizes; for BLAKE2b, any even number of hex digits up to
    /// 128, else base64 whose length and padding fit a digest of 1 to 64 bytes. A field that is
    /// all hex digits is hex (64 hex digits are SHA-256, not base64 SHA-384).
    pub fn read_untagged(self, field: &[u8]) -> Option<(Algorithm, Digest)> {
        let all_hex = !field.is_empty() && field.iter().all(u8::is_ascii_hexdigit);
        let candidates: &[Algorithm] = match self {
            Selector::Exact(ref exact) => std::slice::from_ref(exact),
            Selector::Sha2 => &[
                Algorithm::Sha224,
                Algorithm::Sha256,
                Algorithm::Sha384,
                Algorithm::Sha512,
            ],
            Selector::Sha3 => &[
                Algorithm::Sha3_224,
                Algorithm::Sha3_256,
                Algorithm::Sha3_384,
                Algorithm::Sha3_512,
            ],
            Selector::Blake2b => {
                let algorithm = if all_hex && field.len().is_multiple_of(2) {
                    Algorithm::blake2b(field.len() as u64 * 4)?
                } else {
                    Algorithm::Blake2b(blake2b_len_of_base64(field)?)
                };
                return Some((algorithm, Digest::from_text(algorithm, field)?));
            }
        };
        if all_hex && let Some(&a) = candidates.iter().find(|a| a.hex_len() == field.len()) {
            return Some((a, Digest::from_hex(a, field)?));
        }
        let &a = candidates.iter().find(|a| a.base64_len() == field.len())?;
        Some((a, Digest::from_base64(a, field)?))
    }
}

/// The BLAKE2b length whose padded base64 is `field`: its length and its `=` padding fit
/// exactly one number of bytes.
fn blake2b_len_of_base64(field: &[u8]) -> Option<Blake2bLen> {
    let padding = field.iter().rev().take_while(|&&b| b == b'=').count();
    if !field.len().is_multiple_of(4) || padding > 2 {
        return None;
    }
    let bytes = field.len() / 4 * 3 - padding;
    Blake2bLen::from_bytes(bytes)
}
