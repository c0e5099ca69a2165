//! The state record: what `hash --update` remembers of a file, in a comment line of the
//! manifest itself.
//!
//! A manifest written by `hash --update` is a plain checksum manifest in which each digest
//! line may be preceded by one state line:
//!
//! ```text
//! #sumpool-state v1 size=4096 mtime=1733011200.123456789 ctime=1733011200.123456789 ino=1234567 verified=1733011260.500000000 trust=ok check=5d1c0a7e8b2f4c19
//! 3b3d...e1a2  data/a.bin
//! ```
//!
//! It starts with `#`, so `sha256sum -c` (even with `--strict -w`) and `sumpool check` skip it
//! as a comment without a word. The fields are the file's size, its modification and status
//! change times (seconds and nanoseconds, as `stat` gives them), its inode number, when its
//! digest was last computed from its bytes (the start of that scan, in the same form), and
//! its trust:
//!
//! - `ok`: the times were safely before the scan that recorded them; an equal stat means the
//!   bytes were not written since, and a different digest then means corruption;
//! - `racy`: a time was too close to the scan to vouch for the bytes (see `cmd::hash`); the
//!   file is read again next time;
//! - `corrupt`: the last scan found the bytes changed under an unchanged stat, and kept the
//!   digest from before; the file is read again every time until it matches or is rewritten.
//!
//! `check` binds the record to the one line that follows it: it is XXH3-64 (xxHash 0.8, seed
//! 0; 16 hex digits, most significant first) of the record up to ` check=`, a newline, and the
//! digest line's exact bytes (without its line end). A record whose next line is not that
//! digest line (lines sorted, deleted or edited by hand, a record edited itself) binds to
//! nothing and is ignored: the file is read, never skipped on its strength. The check guards
//! against accidents, not against someone who means to forge a record (whoever can write the
//! manifest can write any digest in it), so a fast 64-bit hash does: a record binds to a line
//! it was not written for with a chance of 2^-64. Reading and writing one check per file, it
//! was a sixth of the time of an update of an unchanged tree with truncated SHA-256.
//!
//! This module only writes and reads these bytes; when a record may be trusted is the
//! caller's decision.

/// How every state line starts: a comment to checksum tools, and a versioned tag.
pub const PREFIX: &[u8] = b"#sumpool-state v1 ";

/// A point in time as `stat` gives it: seconds since the epoch and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time {
    /// Whole seconds (negative before 1970).
    pub secs: i64,
    /// Nanoseconds, 0 to 999,999,999.
    pub nanos: u32,
}

impl Time {
    /// This time as nanoseconds since the epoch.
    pub fn as_nanos(self) -> i128 {
        i128::from(self.secs) * 1_000_000_000 + i128::from(self.nanos)
    }
}

/// What a stat of a file says, as far as telling whether its bytes may have changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileState {
    /// Size in bytes.
    pub size: u64,
    /// Last modification of the contents.
    pub mtime: Time,
    /// Last change of the inode (contents, permissions, links, or a `touch -d`).
    pub ctime: Time,
    /// Inode number: a file replaced by another (a rename over it) has another.
    pub ino: u64,
}

/// How far a recorded state vouches for the digest beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// The times were safely in the past when recorded.
    Ok,
    /// A time was too close to the scan that recorded it.
    Racy,
    /// The bytes changed under an unchanged stat; the digest is the one from before.
    Corrupt,
}

impl Trust {
    /// Every trust.
    pub const ALL: [Trust; 3] = [Trust::Ok, Trust::Racy, Trust::Corrupt];

    fn word(self) -> &'static str {
        match self {
            Trust::Ok => "ok",
            Trust::Racy => "racy",
            Trust::Corrupt => "corrupt",
        }
    }

    fn from_word(word: &[u8]) -> Option<Trust> {
        match word {
            b"ok" => Some(Trust::Ok),
            b"racy" => Some(Trust::Racy),
            b"corrupt" => Some(Trust::Corrupt),
            _ => None,
        }
    }
}

/// One state record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateRecord {
    /// The file's stat when its digest was computed (before it was read).
    pub state: FileState,
    /// When the digest was last computed from the file's bytes: the start of that scan.
    pub verified: Time,
    /// How far the state vouches for the digest.
    pub trust: Trust,
}

/// Appends the state line for `record`, bound to `digest_line` (the line that will follow,
/// without its line end), ending in `end` (newline, or NUL for `-z` manifests).
pub fn write_state(out: &mut Vec<u8>, record: &StateRecord, digest_line: &[u8], end: u8) {
    // Written by hand rather than with `format!`: an update of an unchanged tree writes one
    // of these per file, and formatting machinery was a tenth of its time.
    let start = out.len();
    let s = &record.state;
    out.extend_from_slice(PREFIX);
    out.extend_from_slice(b"size=");
    push_number(out, s.size);
    out.extend_from_slice(b" mtime=");
    push_time(out, s.mtime);
    out.extend_from_slice(b" ctime=");
    push_time(out, s.ctime);
    out.extend_from_slice(b" ino=");
    push_number(out, s.ino);
    out.extend_from_slice(b" verified=");
    push_time(out, record.verified);
    out.extend_from_slice(b" trust=");
    out.extend_from_slice(record.trust.word().as_bytes());
    let check = binding(&out[start..], digest_line);
    out.extend_from_slice(b" check=");
    let mut hex = [0u8; 16];
    // 16 hex digits for 8 bytes: the only length `encode_to_slice` asks for.
    if hex::encode_to_slice(check, &mut hex).is_ok() {
        out.extend_from_slice(&hex);
    }
    out.push(end);
}

/// Appends `n` in decimal.
fn push_number(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends `SECONDS.NNNNNNNNN`.
fn push_time(out: &mut Vec<u8>, time: Time) {
    if time.secs < 0 {
        out.push(b'-');
    }
    push_number(out, time.secs.unsigned_abs());
    out.push(b'.');
    let mut nanos = [b'0'; 9];
    let mut n = time.nanos;
    for digit in nanos.iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&nanos);
}

/// A state line read back, not yet bound to a digest line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    record: StateRecord,
    /// How much of the state line the binding covers: up to ` check=`.
    signed: usize,
    check: [u8; 8],
}

impl Pending {
    /// The record, if `digest_line` (the next line of the manifest, without its line end) is
    /// the one it was written for; `state_line` is the line this was parsed from.
    pub fn bind(&self, state_line: &[u8], digest_line: &[u8]) -> Option<StateRecord> {
        let signed = state_line.get(..self.signed)?;
        (binding(signed, digest_line) == self.check).then_some(self.record)
    }
}

/// Whether `line` is a state line (well-formed or not): it starts with [`PREFIX`].
pub fn is_state_line(line: &[u8]) -> bool {
    line.starts_with(PREFIX)
}

/// Parses a state line (without its line end; a trailing carriage return is tolerated).
/// `None` for anything malformed: such a record binds to nothing.
pub fn parse_state(line: &[u8]) -> Option<Pending> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let rest = line.strip_prefix(PREFIX)?;
    // ` check=` and 16 hex digits end the line.
    let at = rest.len().checked_sub(23)?;
    if &rest[at..at + 7] != b" check=" {
        return None;
    }
    let signed = PREFIX.len() + at;
    let check_hex = &rest[at + b" check=".len()..];
    let mut check = [0u8; 8];
    hex::decode_to_slice(check_hex, &mut check).ok()?;
    let mut fields = rest[..at].split(|&b| b == b' ');
    let mut field = |key: &[u8]| -> Option<&[u8]> {
        let word = fields.next()?;
        word.strip_prefix(key)?.strip_prefix(b"=")
    };
    let size = number(field(b"size")?)?;
    let mtime = time(field(b"mtime")?)?;
    let ctime = time(field(b"ctime")?)?;
    let ino = number(field(b"ino")?)?;
    let verified = time(field(b"verified")?)?;
    let trust = Trust::from_word(field(b"trust")?)?;
    if fields.next().is_some() {
        return None;
    }
    let record = StateRecord {
        state: FileState {
            size,
            mtime,
            ctime,
            ino,
        },
        verified,
        trust,
    };
    Some(Pending {
        record,
        signed,
        check,
    })
}

/// XXH3-64 of the signed part of a state line, a newline, and the digest line it belongs
/// to, most significant byte first.
fn binding(signed: &[u8], digest_line: &[u8]) -> [u8; 8] {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(signed);
    hasher.update(b"\n");
    hasher.update(digest_line);
    hasher.digest().to_be_bytes()
}

/// A decimal number without sign, leading `+` or leading zeros beyond a single `0`.
fn number(text: &[u8]) -> Option<u64> {
    if text.is_empty() || (text.len() > 1 && text[0] == b'0') {
        return None;
    }
    text.iter().try_fold(0u64, |n, &b| {
        let digit = b.checked_sub(b'0').filter(|&d| d < 10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// A decimal number with an optional `-` (never `-0`).
fn signed_number(text: &[u8]) -> Option<i64> {
    match text.strip_prefix(b"-") {
        Some(digits) => match number(digits)? {
            0 => None,
            n => 0i64.checked_sub_unsigned(n),
        },
        None => i64::try_from(number(text)?).ok(),
    }
}

/// `SECONDS.NNNNNNNNN`, exactly nine digits of nanoseconds.
fn time(text: &[u8]) -> Option<Time> {
    let dot = text.iter().position(|&b| b == b'.')?;
    let (secs, nanos) = (&text[..dot], &text[dot + 1..]);
    if nanos.len() != 9 || !nanos.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let nanos = nanos
        .iter()
        .fold(0u32, |n, &b| n * 10 + u32::from(b - b'0'));
    Some(Time {
        secs: signed_number(secs)?,
        nanos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record() -> StateRecord {
        StateRecord {
            state: FileState {
                size: 4096,
                mtime: Time {
                    secs: 1_733_011_200,
                    nanos: 123_456_789,
                },
                ctime: Time {
                    secs: 1_733_011_201,
                    nanos: 5,
                },
                ino: 1_234_567,
            },
            verified: Time {
                secs: 1_733_011_260,
                nanos: 500_000_000,
            },
            trust: Trust::Ok,
        }
    }

    fn line(record: &StateRecord, digest_line: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_state(&mut out, record, digest_line, b'\n');
        assert_eq!(out.pop(), Some(b'\n'));
        out
    }

    #[test]
    fn the_line_reads_as_documented() {
        let text = String::from_utf8(line(&record(), b"digest line")).unwrap();
        let (fields, check) = text.split_once(" check=").unwrap();
        assert_eq!(
            fields,
            "#sumpool-state v1 size=4096 mtime=1733011200.123456789 \
             ctime=1733011201.000000005 ino=1234567 verified=1733011260.500000000 trust=ok"
        );
        assert_eq!(check.len(), 16);
        // The check is XXH3-64 of the fields, a newline and the digest line.
        let whole = xxhash_rust::xxh3::xxh3_64(format!("{fields}\ndigest line").as_bytes());
        assert_eq!(check, format!("{whole:016x}"));
    }

    #[test]
    fn a_record_binds_only_to_its_own_line() {
        let record = record();
        let written = line(&record, b"aaaa  data/a");
        let pending = parse_state(&written).unwrap();
        let bind = |line: &[u8]| pending.bind(&written, line);
        assert_eq!(bind(b"aaaa  data/a"), Some(record));
        assert_eq!(bind(b"aaaa  data/b"), None);
        assert_eq!(bind(b"aaab  data/a"), None);
        assert_eq!(bind(b""), None);
        // A CRLF copy of the manifest still binds.
        let mut crlf = written.clone();
        crlf.push(b'\r');
        let pending = parse_state(&crlf).unwrap();
        assert_eq!(pending.bind(&crlf, b"aaaa  data/a"), Some(record));
    }

    #[test]
    fn any_edit_of_the_record_unbinds_it() {
        let written = line(&record(), b"x  y");
        for i in PREFIX.len()..written.len() {
            for replacement in [b'0', b'9', b' ', b'x'] {
                if written[i] == replacement {
                    continue;
                }
                let mut edited = written.clone();
                edited[i] = replacement;
                let bound = parse_state(&edited).and_then(|p| p.bind(&edited, b"x  y"));
                assert_eq!(bound, None, "{}", String::from_utf8_lossy(&edited));
            }
        }
    }

    #[test]
    fn malformed_records_are_refused() {
        let good = String::from_utf8(line(&record(), b"l")).unwrap();
        let bad = [
            good.replace("size=4096", "size=04096"),
            good.replace("size=4096", "size=+4096"),
            good.replace("size=4096", "size="),
            good.replace(".123456789", ".12345678"),
            good.replace("trust=ok", "trust=maybe"),
            good.replace(" ino=", " inode="),
            good.replace(" check=", " check=zz"),
            good.replace("#sumpool-state v1", "#sumpool-state v2"),
            format!("{good} extra"),
            String::new(),
        ];
        for text in bad {
            assert_eq!(parse_state(text.as_bytes()), None, "{text}");
        }
    }

    proptest! {
        #[test]
        fn every_record_round_trips(
            size in any::<u64>(), msecs in any::<i64>(), mnanos in 0u32..1_000_000_000,
            csecs in any::<i64>(), cnanos in 0u32..1_000_000_000, ino in any::<u64>(),
            vsecs in any::<i64>(), vnanos in 0u32..1_000_000_000, trust in 0u8..3,
            digest_line in proptest::collection::vec(1u8..=255, 0..100),
        ) {
            let record = StateRecord {
                state: FileState {
                    size,
                    mtime: Time { secs: msecs, nanos: mnanos },
                    ctime: Time { secs: csecs, nanos: cnanos },
                    ino,
                },
                verified: Time { secs: vsecs, nanos: vnanos },
                trust: [Trust::Ok, Trust::Racy, Trust::Corrupt][trust as usize],
            };
            let written = line(&record, &digest_line);
            prop_assert!(is_state_line(&written));
            let pending = parse_state(&written).unwrap();
            prop_assert_eq!(pending.bind(&written, &digest_line), Some(record));
        }
    }
}
