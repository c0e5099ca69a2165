//! The checksum-line parser: one line of a checksum list in, an [`Entry`] or a [`BadLine`] out.
//!
//! Pure and shared: `check` verifies what it parses, `audit` reads a manifest into its index,
//! `merge` orders lines by the names it finds. It follows GNU `sha256sum -c` (coreutils 9.1) and
//! `cksum -c` (coreutils 9.8, `src/digest.c`, `split_3`) rule for rule: the layouts it accepts,
//! the escapes, the BSD tag that names each line's algorithm (`MD5 (f) = `, `SHA3-256 (f) = `,
//! `BLAKE2b-256 (f) = `, `BLAKE3 (f) = `), digests in hex or padded base64 told line by line,
//! and the layout that the first untagged line fixes for a whole run ([`Layout`]). What a line
//! may be is the caller's [`Accept`]. The table below and the differential tests against the
//! real `sha256sum -c` and `cksum -c` (`tests/check.rs`, `tests/algorithms/`) pin it down;
//! `fuzz/` has a target for it.
//!
//! What a record is (a line or a NUL-terminated name, and its length limit) is `records`'s
//! business; what to do with a bad line (count it, warn, refuse the input) is the caller's.

use std::borrow::Cow;

use crate::digest::{Algorithm, Digest, Selector};

/// Which lines a reader takes: the tags it accepts, and how it reads an untagged digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accept {
    /// The algorithms a tagged line may name; `None` for any.
    pub tags: Option<Selector>,
    /// What an untagged line's digest is.
    pub untagged: Selector,
}

impl Accept {
    /// `check` without `-a`: a tagged line of any algorithm, and an untagged line of SHA-2
    /// told by its length (sumpool's rule since its first version, as `cksum -a sha2 -c`).
    pub const ANY: Accept = Accept {
        tags: None,
        untagged: Selector::Sha2,
    };

    /// `merge`, which only needs the names: any tag, and an untagged digest of any length
    /// (BLAKE2b's rule takes every length from 1 to 64 bytes, hex or base64).
    pub const NAMES: Accept = Accept {
        tags: None,
        untagged: Selector::Blake2b,
    };

    /// Lines of what `-a` selects only, tagged or not, as `cksum -a ALGORITHM -c` takes them.
    pub const fn only(selector: Selector) -> Accept {
        Accept {
            tags: Some(selector),
            untagged: selector,
        }
    }

    /// Lines of one algorithm only (a manifest for `audit` or `--update`).
    pub const fn exactly(algorithm: Algorithm) -> Accept {
        Accept::only(Selector::Exact(algorithm))
    }
}

/// One well-formed checksum line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The algorithm, from the line's tag or the shape of its digest.
    pub algorithm: Algorithm,
    /// The expected digest ([`Digest::UNMATCHABLE`] for base64 in a form no digest has).
    pub digest: Digest,
    /// The file name, unescaped, as bytes.
    pub name: Vec<u8>,
}

/// Why a line is improperly formatted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadLine {
    /// Nothing after the digest and its separator: no name.
    TooShort,
    /// The digest is not hex or base64 of the length of an accepted algorithm.
    BadDigest,
    /// Nothing follows the digest.
    NoSeparator,
    /// A line in the other untagged layout than the list's first untagged line.
    MixedLayout,
    /// A backslash escape other than `\\`, `\n`, `\r`, or a trailing backslash.
    BadEscape,
    /// A BSD line without `)`, `=`, or with something else than a digest after `=`.
    BadTag,
    /// A NUL byte inside a newline-terminated line.
    Nul,
    /// A record longer than [`MAX_RECORD`](crate::format::records::MAX_RECORD).
    TooLong,
    /// A line naming `-` in a list read from standard input.
    StdinName,
}

/// The untagged layout of a list, decided by its first untagged line (GNU's `bsd_reversed`).
///
/// `<hex>  <name>` (two spaces, or space and `*`) is the GNU layout; `<hex> <name>` (one
/// space) is what BSD `md5 -r` prints. GNU refuses to mix them in one run, so that a file
/// renamed with a leading space cannot make a line mean something else; once reversed, a GNU
/// looking line is read as reversed (its name starts with the space or `*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Layout {
    /// No untagged line seen yet.
    #[default]
    Undecided,
    /// `<hex>  <name>` or `<hex> *<name>`.
    Standard,
    /// `<hex> <name>`.
    Reversed,
}

fn is_white(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn unescape_if(name: &[u8], escaped: bool) -> Result<Cow<'_, [u8]>, BadLine> {
    if escaped {
        let name = super::line::unescape_name(name).ok_or(BadLine::BadEscape)?;
        Ok(Cow::Owned(name))
    } else {
        Ok(Cow::Borrowed(name))
    }
}

/// A well-formed checksum line, with its name borrowed from the line when it needed no
/// unescaping: what [`parse_line_ref`] gives, for readers of long manifests that keep only
/// the bytes of each name and should not allocate it first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// The algorithm, from the line's tag or the shape of its digest.
    pub algorithm: Algorithm,
    /// The expected digest.
    pub digest: Digest,
    /// The file name, unescaped, as bytes.
    pub name: Cow<'a, [u8]>,
}

/// Parses one line of a checksum list, already stripped of its terminator (and, for newline
/// lists, of one trailing carriage return). `layout` carries GNU's layout rule from line to
/// line and from list to list; it is updated as GNU updates it, even for a line that is then
/// rejected. `accept` says which lines may be: a tagged line of an algorithm it does not take,
/// or an untagged digest of another shape, is improperly formatted, as `cksum -a md5 -c` finds
/// a `SHA256 (f) = ` line.
pub fn parse_line(line: &[u8], layout: &mut Layout, accept: Accept) -> Result<Entry, BadLine> {
    parse_line_ref(line, layout, accept).map(|entry| Entry {
        algorithm: entry.algorithm,
        digest: entry.digest,
        name: entry.name.into_owned(),
    })
}

/// [`parse_line`], with the name borrowed from `line` when it is not escaped.
pub fn parse_line_ref<'a>(
    line: &'a [u8],
    layout: &mut Layout,
    accept: Accept,
) -> Result<EntryRef<'a>, BadLine> {
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut i = line.iter().take_while(|&&b| is_white(b)).count();
    let escaped = at(i) == b'\\';
    if escaped {
        i += 1;
    }

    if let Some(tag) = read_tag(&line[i..]) {
        if !accept.tags.is_none_or(|s| s.accepts(tag.algorithm)) {
            return Err(BadLine::BadDigest);
        }
        return parse_tagged(&line[i + tag.len..], escaped, tag.algorithm);
    }

    // Untagged: `<digest><white><name>`. The digest is split off from the left, at the first
    // white byte, because every byte after the separator belongs to the name: names may hold
    // spaces, tabs, even a leading space, and only the digest has a known shape.
    let start = i;
    let field = line[start..].iter().take_while(|&&b| !is_white(b)).count();
    i = start + field;
    if i == line.len() {
        return Err(BadLine::NoSeparator);
    }
    let (algorithm, digest) = accept
        .untagged
        .read_untagged(&line[start..i])
        .ok_or(BadLine::BadDigest)?;
    i += 1;
    // A name of at least one byte (sha256sum's shortest line is the digest, a blank, and one
    // byte of name).
    if i == line.len() {
        return Err(BadLine::TooShort);
    }

    let reversed = line.len() - i == 1 || (at(i) != b' ' && at(i) != b'*');
    if reversed {
        if *layout == Layout::Standard {
            return Err(BadLine::MixedLayout);
        }
        *layout = Layout::Reversed;
    } else if *layout != Layout::Reversed {
        *layout = Layout::Standard;
        i += 1;
    }
    let name = unescape_if(&line[i..], escaped)?;
    Ok(EntryRef {
        algorithm,
        digest,
        name,
    })
}

/// A BSD tag at the start of a line: its algorithm, and how many bytes it takes up to and
/// with the `(` after it.
struct Tag {
    algorithm: Algorithm,
    len: usize,
}

/// The tag `rest` starts with, if it is one: a name up to a `-`, a blank or a `(` (GNU's
/// `algorithm_from_tag`), a length after a `-` for the algorithms that take one, one optional
/// space (BSD `MD5 (f) = ` and OpenSSL `MD5(f)= ` both), then `(`. Anything else is not a tag,
/// and the line is read as untagged: a base64 digest may well start with `SHA1` (coreutils 9.8
/// falls back the same way).
fn read_tag(rest: &[u8]) -> Option<Tag> {
    let name_len = rest
        .iter()
        .take_while(|&&b| !is_white(b) && b != b'-' && b != b'(')
        .count();
    let mut i = name_len;
    let bits = if rest.get(i) == Some(&b'-') {
        let digits = rest[i + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let text = std::str::from_utf8(&rest[i + 1..i + 1 + digits]).ok()?;
        i += 1 + digits;
        Some(text.parse::<u64>().ok()?)
    } else {
        None
    };
    let algorithm = Algorithm::from_tag(&rest[..name_len], bits)?;
    if rest.get(i) == Some(&b' ') {
        i += 1;
    }
    (rest.get(i) == Some(&b'(')).then_some(Tag {
        algorithm,
        len: i + 1,
    })
}

/// The part of a BSD line after `SHA256 (`: `<name>) = <digest>`. The name is split off from
/// the right, at the last `)`, because the name may itself hold `)` and `=`, while the digest
/// after it cannot.
fn parse_tagged(rest: &[u8], escaped: bool, algorithm: Algorithm) -> Result<EntryRef<'_>, BadLine> {
    let close = rest
        .iter()
        .rposition(|&b| b == b')')
        .ok_or(BadLine::BadTag)?;
    let name = unescape_if(&rest[..close], escaped)?;
    let mut i = close + 1;
    while i < rest.len() && is_white(rest[i]) {
        i += 1;
    }
    if rest.get(i) != Some(&b'=') {
        return Err(BadLine::BadTag);
    }
    i += 1;
    while i < rest.len() && is_white(rest[i]) {
        i += 1;
    }
    let digest = Digest::from_text(algorithm, &rest[i..]).ok_or(BadLine::BadDigest)?;
    Ok(EntryRef {
        algorithm,
        digest,
        name,
    })
}

/// The tag name a line starts with, if it is one (`MD5`, `SHA3`, `BLAKE2b`...), whatever
/// follows it: from such a line on, `cksum -c` without `-a` names that digest type in its
/// warnings about improperly formatted lines, this one included (coreutils 9.8 `split_3` sets
/// its algorithm from the tag before it reads the rest).
pub fn tag_name(line: &[u8]) -> Option<&'static str> {
    let start = line.iter().take_while(|&&b| is_white(b)).count();
    let start = start + usize::from(line.get(start) == Some(&b'\\'));
    let rest = &line[start..];
    let name_len = rest
        .iter()
        .take_while(|&&b| !is_white(b) && b != b'-' && b != b'(')
        .count();
    Algorithm::TAG_NAMES
        .into_iter()
        .find(|name| name.as_bytes() == &rest[..name_len])
}

/// The content of a record that should be parsed, or `None` for comments and blank lines.
/// Newline lists lose their `\n` and one `\r` (CRLF files); NUL lists keep every byte.
pub fn trim_record(record: &[u8], zero: bool) -> Option<&[u8]> {
    if record.first() == Some(&b'#') {
        return None;
    }
    let delim = if zero { b'\0' } else { b'\n' };
    let mut line = record.strip_suffix(&[delim]).unwrap_or(record);
    if !zero {
        line = line.strip_suffix(b"\r").unwrap_or(line);
    }
    (!line.is_empty()).then_some(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::line::{Encoding, LineFormat, LineStyle, format_line};
    use proptest::prelude::*;

    const HEX: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn digest() -> Digest {
        Digest::from_hex(Algorithm::Sha256, HEX.as_bytes()).unwrap()
    }

    fn parse(line: &str, layout: Layout) -> (Result<Vec<u8>, BadLine>, Layout) {
        let mut layout = layout;
        let result = parse_line(
            line.as_bytes(),
            &mut layout,
            Accept::exactly(Algorithm::Sha256),
        )
        .map(|e| {
            assert_eq!(e.digest, digest());
            e.name
        });
        (result, layout)
    }

    // Long: one row per rule of GNU's parser; the table reads best whole.
    #[test]
    fn parse_line_table() {
        use BadLine::*;
        use Layout::*;
        let upper = HEX.to_uppercase();
        type Case = (String, Layout, Result<&'static [u8], BadLine>, Layout);
        let cases: Vec<Case> = vec![
            (format!("{HEX}  a"), Undecided, Ok(b"a"), Standard),
            (format!("{HEX} *a"), Undecided, Ok(b"a"), Standard),
            (format!("  \t{HEX}  a"), Undecided, Ok(b"a"), Standard),
            (format!("{upper}  a"), Undecided, Ok(b"a"), Standard),
            (format!("{HEX}  a b  "), Undecided, Ok(b"a b  "), Standard),
            (format!("{HEX}   lead"), Undecided, Ok(b" lead"), Standard),
            (format!("{HEX}  *a"), Undecided, Ok(b"*a"), Standard),
            // One space: the BSD `md5 -r` layout, which then sticks.
            (format!("{HEX} a"), Undecided, Ok(b"a"), Reversed),
            (format!("{HEX}\ta"), Undecided, Ok(b"a"), Reversed),
            (format!("{HEX}  a"), Reversed, Ok(b" a"), Reversed),
            (format!("{HEX} a"), Standard, Err(MixedLayout), Standard),
            // Hex plus two spaces is a reversed line naming " ".
            (format!("{HEX}  "), Undecided, Ok(b" "), Reversed),
            (format!("{HEX} "), Undecided, Err(TooShort), Undecided),
            (HEX.to_string(), Undecided, Err(NoSeparator), Undecided),
            (format!("{HEX}0  a"), Undecided, Err(BadDigest), Undecided),
            // The digest field runs to the end of the line: nothing separates a name.
            (format!("{HEX}ab"), Undecided, Err(NoSeparator), Undecided),
            (format!("\\{HEX}  "), Undecided, Ok(b" "), Reversed),
            (format!("\\{HEX} "), Undecided, Err(TooShort), Undecided),
            (
                format!("{}  a", &HEX[1..]),
                Undecided,
                Err(BadDigest),
                Undecided,
            ),
            (
                format!("{}g  abc", &HEX[1..]),
                Undecided,
                Err(BadDigest),
                Undecided,
            ),
            (
                format!("\\{HEX}  a\\\\b\\nc\\rd"),
                Undecided,
                Ok(b"a\\b\nc\rd"),
                Standard,
            ),
            (
                format!("\\{HEX}  a\\tb"),
                Undecided,
                Err(BadEscape),
                Standard,
            ),
            (format!("\\{HEX}  a\\"), Undecided, Err(BadEscape), Standard),
            // Without the leading backslash, backslashes are literal.
            (format!("{HEX}  a\\nb"), Undecided, Ok(b"a\\nb"), Standard),
            (
                format!("SHA256 (a) = {HEX}"),
                Undecided,
                Ok(b"a"),
                Undecided,
            ),
            (format!("SHA256(a)= {upper}"), Standard, Ok(b"a"), Standard),
            (
                format!("SHA256 (a) \t=\t {HEX}"),
                Undecided,
                Ok(b"a"),
                Undecided,
            ),
            (
                format!("SHA256 (x) = y) = {HEX}"),
                Undecided,
                Ok(b"x) = y"),
                Undecided,
            ),
            (format!("SHA256 () = {HEX}"), Undecided, Ok(b""), Undecided),
            (
                format!("\\SHA256 (a\\nb) = {HEX}"),
                Undecided,
                Ok(b"a\nb"),
                Undecided,
            ),
            (
                format!("SHA256 (a) = {HEX} "),
                Undecided,
                Err(BadDigest),
                Undecided,
            ),
            // Not a tag (two spaces before the name): read as untagged, `SHA256` is no digest.
            (
                format!("SHA256  (a) = {HEX}"),
                Undecided,
                Err(BadDigest),
                Undecided,
            ),
            (
                format!("SHA256 (a = {HEX}"),
                Undecided,
                Err(BadTag),
                Undecided,
            ),
            (
                format!("SHA256 (a) {HEX}"),
                Undecided,
                Err(BadTag),
                Undecided,
            ),
            (
                format!("SHA512 (a) = {HEX}"),
                Undecided,
                Err(BadDigest),
                Undecided,
            ),
            (
                format!("sha256 (a) = {HEX}"),
                Undecided,
                Err(BadDigest),
                Undecided,
            ),
        ];
        for (line, before, want, after) in cases {
            let (got, layout) = parse(&line, before);
            assert_eq!(got.as_deref().map_err(|e| *e), want, "line {line:?}");
            assert_eq!(layout, after, "layout after {line:?}");
        }
    }

    #[test]
    fn without_an_algorithm_each_line_brings_its_own() {
        let hex = |n: usize| "ab".repeat(n / 2);
        let cases = [
            (format!("{}  a", hex(56)), Some(Algorithm::Sha224)),
            (format!("{}  a", hex(64)), Some(Algorithm::Sha256)),
            (format!("{}  a", hex(96)), Some(Algorithm::Sha384)),
            (format!("{}  a", hex(128)), Some(Algorithm::Sha512)),
            (format!("SHA384 (a) = {}", hex(96)), Some(Algorithm::Sha384)),
            (format!("SHA224(a)= {}", hex(56)), Some(Algorithm::Sha224)),
            // A tag and a digest of another algorithm's length do not go together.
            (format!("SHA512 (a) = {}", hex(64)), None),
            // Untagged, only SHA-2 is told by its length: 40 hex digits (SHA-1) or 32 (MD5)
            // need `-a`.
            (format!("{}  a", hex(40)), None),
            (format!("{}  a", hex(32)), None),
            // Tagged, any algorithm (the tags of cksum 9.8 and b3sum --tag).
            (format!("MD5 (a) = {}", hex(32)), Some(Algorithm::Md5)),
            (format!("SHA1 (a) = {}", hex(40)), Some(Algorithm::Sha1)),
            (
                format!("SHA3-256 (a) = {}", hex(64)),
                Some(Algorithm::Sha3_256),
            ),
            (
                format!("SHA3 (a) = {}", hex(128)),
                Some(Algorithm::Sha3_512),
            ),
            (
                format!("SHA2-384 (a) = {}", hex(96)),
                Some(Algorithm::Sha384),
            ),
            (
                format!("BLAKE2b (a) = {}", hex(128)),
                Algorithm::blake2b(512),
            ),
            (
                format!("BLAKE2b-256 (a) = {}", hex(64)),
                Algorithm::blake2b(256),
            ),
            (format!("BLAKE2b-8 (a) = {}", hex(2)), Algorithm::blake2b(8)),
            (format!("BLAKE3 (a) = {}", hex(64)), Some(Algorithm::Blake3)),
            // Lengths a tag does not take: SHA-3 has four, BLAKE2b whole bytes up to 512 bits,
            // and the fixed-length algorithms none (GNU would read `MD5-64` as truncated).
            (format!("SHA3-248 (a) = {}", hex(62)), None),
            (format!("BLAKE2b-12 (a) = {}", hex(2)), None),
            (format!("BLAKE2b-520 (a) = {}", hex(130)), None),
            (format!("BLAKE2b-0 (a) = {}", hex(2)), None),
            (format!("MD5-64 (a) = {}", hex(16)), None),
            (format!("BLAKE3-256 (a) = {}", hex(64)), None),
            // Base64, told line by line: 44 letters are a SHA-256, 88 a SHA-512.
            (
                "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=  a".to_owned(),
                Some(Algorithm::Sha256),
            ),
            (
                "SHA1 (a) = q6urq6urq6urq6urq6urq6urq6s=".to_owned(),
                Some(Algorithm::Sha1),
            ),
            (
                "BLAKE2b-256 (a) = q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=".to_owned(),
                Algorithm::blake2b(256),
            ),
        ];
        for (line, want) in cases {
            let mut layout = Layout::Undecided;
            let got = parse_line(line.as_bytes(), &mut layout, Accept::ANY).ok();
            assert_eq!(got.as_ref().map(|e| e.algorithm), want, "line {line:?}");
            if let Some(entry) = got {
                assert_eq!(entry.name, b"a");
                assert_eq!(
                    entry.digest.as_bytes(),
                    &vec![0xab; entry.algorithm.digest_len()][..]
                );
            }
        }
    }

    #[test]
    fn trim_record_rules() {
        assert_eq!(trim_record(b"# comment\n", false), None);
        assert_eq!(trim_record(b"\r\n", false), None);
        assert_eq!(trim_record(b"x\r\r\n", false), Some(&b"x\r"[..]));
        assert_eq!(trim_record(b"x", false), Some(&b"x"[..]));
        assert_eq!(trim_record(b"x\r\n\0", true), Some(&b"x\r\n"[..]));
        assert_eq!(trim_record(b"\0", true), None);
    }

    proptest! {
        #[test]
        fn any_name_written_by_hash_parses_back(
            name in proptest::collection::vec(1u8..=255, 1..80),
            algorithm in proptest::sample::select(Algorithm::ALL.to_vec()),
            blake2b_bits in (1u64..=64).prop_map(|bytes| bytes * 8),
            bytes in proptest::collection::vec(any::<u8>(), 64),
            bsd in any::<bool>(),
            zero in any::<bool>(),
            base64 in any::<bool>(),
        ) {
            // Every BLAKE2b length, not only 512 bits.
            let algorithm = match algorithm {
                Algorithm::Blake2b(_) => Algorithm::blake2b(blake2b_bits).unwrap(),
                other => other,
            };
            let digest = Digest::from_bytes(&bytes[..algorithm.digest_len()]).unwrap();
            let style = if bsd { LineStyle::Bsd } else { LineStyle::Gnu };
            let encoding = if base64 { Encoding::Base64 } else { Encoding::Hex };
            let format = LineFormat { style, zero, encoding };
            let mut line = Vec::new();
            format_line(&mut line, &format, algorithm, &digest, &name);
            let content = trim_record(&line, zero);
            // A -z record keeps every byte; a newline record loses one trailing CR, which
            // escaping guarantees is never part of the name. A tagged line brings its
            // algorithm; an untagged one is read with `-a`.
            let accept = if bsd { Accept::ANY } else { Accept::exactly(algorithm) };
            let mut layout = Layout::Undecided;
            let entry = parse_line(content.unwrap(), &mut layout, accept).unwrap();
            prop_assert_eq!(entry.name, name);
            prop_assert_eq!(entry.digest.as_bytes(), digest.as_bytes());
            prop_assert_eq!(entry.algorithm, algorithm);
        }
    }
}
