//! Checksum line formats, GNU escaping of names, and the one stdout writer.
//!
//! A line is exactly what the GNU tool of its algorithm prints (`md5sum`, `sha256sum`, `b2sum
//! -l N`, `cksum -a sha3 -l N --untagged`, and `b3sum` for BLAKE3): `<digest>  <name>\n`, or with
//! `--tag` the BSD form of GNU `cksum` and `b3sum --tag`, `SHA256 (<name>) = <digest>\n`. The
//! digest is lowercase hex, or with `--base64` padded base64 as `cksum --base64` writes it.
//! Names are bytes: everything is written raw except that a name holding a backslash, newline or
//! carriage return gets a `\` at the start of its line and those three bytes escaped (coreutils
//! `src/digest.c`; b3sum 1.8 escapes the same three). With `-z` lines end in NUL and nothing is
//! escaped, since NUL cannot occur in a name.
//!
//! This module formats and writes; it never decides what to print (that is the commands'),
//! and it does not parse lines back (that is `parse`, which uses [`unescape_name`]).

use std::borrow::Cow;
use std::io::{self, IsTerminal, Write};

use crate::digest::{Algorithm, Digest};

/// Which of the two line shapes the `*sum` tools print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineStyle {
    /// `<digest>  <name>`, the default of `sha256sum`, `md5sum`, `b2sum`, `b3sum`.
    Gnu,
    /// `SHA256 (<name>) = <digest>`, printed by `sha256sum --tag` and `cksum`.
    Bsd,
}

/// How a digest is written in a line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Encoding {
    /// Lowercase hex, as every `*sum` tool writes it.
    #[default]
    Hex,
    /// Padded base64, standard alphabet, as `cksum --base64` (coreutils 9.2 and later).
    Base64,
}

/// Everything that decides the bytes of one output line besides the algorithm, the digest
/// and the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineFormat {
    /// GNU or BSD shape.
    pub style: LineStyle,
    /// End lines with NUL instead of newline, and do not escape names.
    pub zero: bool,
    /// Hex or base64 digests.
    pub encoding: Encoding,
}

/// Whether GNU would escape this name: it holds a backslash, newline or carriage return.
pub fn needs_escape(name: &[u8]) -> bool {
    name.iter().any(|&b| matches!(b, b'\\' | b'\n' | b'\r'))
}

/// Escapes `\`, newline and carriage return as `\\`, `\n`, `\r`; other bytes are unchanged.
pub fn escape_name(name: &[u8]) -> Cow<'_, [u8]> {
    if !needs_escape(name) {
        return Cow::Borrowed(name);
    }
    let mut out = Vec::with_capacity(name.len() + 8);
    for &b in name {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
    Cow::Owned(out)
}

/// Reverses [`escape_name`]. Returns `None` for what GNU rejects: a backslash followed by
/// anything but `\`, `n` or `r`, a trailing lone backslash, or a NUL byte.
pub fn unescape_name(escaped: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(escaped.len());
    let mut bytes = escaped.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'\\' => match bytes.next()? {
                b'\\' => out.push(b'\\'),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                _ => return None,
            },
            0 => return None,
            _ => out.push(b),
        }
    }
    Some(out)
}

/// Appends `name` as GNU coreutils 9.1 writes it in `sha256sum -c` results. There 9.1 escapes
/// only names that hold a newline (a backslash or carriage return alone is written raw); such
/// a name gets a leading `\\` and all three bytes escaped, as in checksum lines. Scripts
/// compare these bytes, so the quirk is kept.
pub fn escape_check_name(line: &mut Vec<u8>, name: &[u8]) {
    if name.contains(&b'\n') {
        line.push(b'\\');
        line.extend_from_slice(&escape_name(name));
    } else {
        line.extend_from_slice(name);
    }
}

/// Appends one complete output line for the `algorithm` digest `digest` of `name` to `line`.
pub fn format_line(
    line: &mut Vec<u8>,
    format: &LineFormat,
    algorithm: Algorithm,
    digest: &Digest,
    name: &[u8],
) {
    let escape = !format.zero && needs_escape(name);
    let name = if escape {
        escape_name(name)
    } else {
        Cow::Borrowed(name)
    };
    if escape {
        line.push(b'\\');
    }
    match format.style {
        LineStyle::Gnu => {
            push_digest(line, format.encoding, digest);
            line.extend_from_slice(b"  ");
            line.extend_from_slice(&name);
        }
        LineStyle::Bsd => {
            algorithm.push_tag(line);
            line.extend_from_slice(b" (");
            line.extend_from_slice(&name);
            line.extend_from_slice(b") = ");
            push_digest(line, format.encoding, digest);
        }
    }
    line.push(if format.zero { b'\0' } else { b'\n' });
}

/// The bytes of a path, exactly as the operating system holds them.
pub fn path_bytes(path: &std::path::Path) -> &[u8] {
    std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str())
}

/// Appends `digest` in `encoding`.
fn push_digest(line: &mut Vec<u8>, encoding: Encoding, digest: &Digest) {
    match encoding {
        Encoding::Hex => digest.push_hex(line),
        Encoding::Base64 => digest.push_base64(line),
    }
}

/// Size of the block buffer in front of stdout when it is not a terminal.
const STDOUT_BUFFER: usize = 64 * 1024;

/// The buffered writer for stdout: line-buffered on a terminal, so a person sees each file as
/// it is done; block-buffered into pipes and files, where throughput matters (as ripgrep does).
pub fn stdout_writer() -> Box<dyn Write> {
    let stdout = io::stdout();
    if stdout.is_terminal() {
        Box::new(io::LineWriter::new(stdout.lock()))
    } else {
        Box::new(io::BufWriter::with_capacity(STDOUT_BUFFER, stdout.lock()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GNU: LineFormat = LineFormat {
        style: LineStyle::Gnu,
        zero: false,
        encoding: Encoding::Hex,
    };

    fn line(format: &LineFormat, name: &[u8]) -> Vec<u8> {
        line_of(format, Algorithm::Sha256, &[0xab; 32], name)
    }

    fn line_of(format: &LineFormat, algorithm: Algorithm, bytes: &[u8], name: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let digest = Digest::from_bytes(bytes).unwrap();
        format_line(&mut out, format, algorithm, &digest, name);
        out
    }

    /// The tags and encodings of GNU cksum 9.8 and b3sum 1.8: the expected lines are
    /// written out here, from their sources, not from sumpool.
    #[test]
    fn tags_and_base64() {
        let bsd = LineFormat {
            style: LineStyle::Bsd,
            ..GNU
        };
        let b64 = LineFormat {
            encoding: Encoding::Base64,
            ..bsd
        };
        let gnu64 = LineFormat {
            encoding: Encoding::Base64,
            ..GNU
        };
        let blake2b_256 = Algorithm::blake2b(256).unwrap();
        let cases: [(LineFormat, Algorithm, &[u8], &str); 8] = [
            (
                bsd,
                Algorithm::Md5,
                &[0; 16],
                "MD5 (f) = 00000000000000000000000000000000\n",
            ),
            (
                bsd,
                Algorithm::Sha1,
                &[1; 20],
                "SHA1 (f) = 0101010101010101010101010101010101010101\n",
            ),
            (
                bsd,
                blake2b_256,
                &[2; 32],
                &format!("BLAKE2b-256 (f) = {}\n", "02".repeat(32)),
            ),
            (
                bsd,
                Algorithm::blake2b(512).unwrap(),
                &[3; 64],
                &format!("BLAKE2b (f) = {}\n", "03".repeat(64)),
            ),
            (
                bsd,
                Algorithm::Sha3_384,
                &[4; 48],
                &format!("SHA3-384 (f) = {}\n", "04".repeat(48)),
            ),
            (
                bsd,
                Algorithm::Blake3,
                &[5; 32],
                &format!("BLAKE3 (f) = {}\n", "05".repeat(32)),
            ),
            // 16 bytes: 24 letters with two `=`; 20 bytes: 28 with one.
            (
                b64,
                Algorithm::Md5,
                &[0xff; 16],
                "MD5 (f) = /////////////////////w==\n",
            ),
            (
                gnu64,
                Algorithm::Sha1,
                &[0; 20],
                "AAAAAAAAAAAAAAAAAAAAAAAAAAA=  f\n",
            ),
        ];
        for (format, algorithm, bytes, want) in cases {
            let got = line_of(&format, algorithm, bytes, b"f");
            assert_eq!(String::from_utf8(got).unwrap(), want, "{algorithm}");
        }
    }

    #[test]
    fn gnu_lines() {
        let hex = "ab".repeat(32);
        assert_eq!(line(&GNU, b"a b"), format!("{hex}  a b\n").into_bytes());
        assert_eq!(
            line(&GNU, b"a\\b"),
            format!("\\{hex}  a\\\\b\n").into_bytes()
        );
        assert_eq!(
            line(&GNU, b"n\nr\r"),
            format!("\\{hex}  n\\nr\\r\n").into_bytes()
        );
        assert_eq!(
            line(&GNU, b"\xff"),
            [format!("{hex}  ").as_bytes(), b"\xff\n"].concat()
        );
    }

    #[test]
    fn bsd_and_zero_lines() {
        let hex = "ab".repeat(32);
        let bsd = LineFormat {
            style: LineStyle::Bsd,
            ..GNU
        };
        assert_eq!(
            line(&bsd, b"x\ny"),
            format!("\\SHA256 (x\\ny) = {hex}\n").into_bytes()
        );
        let zero = LineFormat { zero: true, ..GNU };
        assert_eq!(line(&zero, b"x\\y"), format!("{hex}  x\\y\0").into_bytes());
    }

    #[test]
    fn unescape_rejects_what_gnu_rejects() {
        assert_eq!(unescape_name(b"a\\\\b\\n\\r"), Some(b"a\\b\n\r".to_vec()));
        assert_eq!(unescape_name(b"a\\t"), None);
        assert_eq!(unescape_name(b"a\\"), None);
        assert_eq!(unescape_name(b"a\0"), None);
    }

    proptest! {
        #[test]
        fn escape_round_trips(name in proptest::collection::vec(1u8..=255, 0..64)) {
            let escaped = escape_name(&name);
            prop_assert!(!escaped.contains(&b'\n') && !escaped.contains(&b'\r'));
            prop_assert_eq!(unescape_name(&escaped), Some(name));
        }
    }
}
