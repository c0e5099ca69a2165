//! Fuzzes the checksum-line parser: no input may panic it, and every line it accepts must
//! survive a round trip through sumpool's own line formatter.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run parse_line` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sumpool::digest::{Algorithm, Selector};
use sumpool::format::line::{Encoding, LineFormat, LineStyle, format_line};
use sumpool::format::parse::{Accept, Layout, parse_line, trim_record};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the list kind, the layout state and the accepted algorithm.
    let Some((&mode, rest)) = data.split_first() else { return };
    let zero = mode & 1 == 1;
    let mut layout = match (mode >> 1) % 3 {
        0 => Layout::Undecided,
        1 => Layout::Standard,
        _ => Layout::Reversed,
    };
    let accept = match (mode >> 3) % 17 {
        0 => Accept::ANY,
        1 => Accept::NAMES,
        2 => Accept::only(Selector::Sha2),
        3 => Accept::only(Selector::Sha3),
        4 => Accept::only(Selector::Blake2b),
        n => Accept::exactly(Algorithm::ALL[n as usize - 5]),
    };
    // A record ends at its first delimiter, as the list reader cuts it.
    let delim = if zero { b'\0' } else { b'\n' };
    let record = match rest.iter().position(|&b| b == delim) {
        Some(end) => &rest[..=end],
        None => rest,
    };
    let Some(line) = trim_record(record, zero) else { return };
    let Ok(entry) = parse_line(line, &mut layout, accept) else { return };
    if let Some(tags) = accept.tags {
        assert!(tags.accepts(entry.algorithm));
    }
    // Base64 with spare bits set reads as a digest that matches nothing, and has no bytes to
    // write back.
    if entry.digest.is_unmatchable() {
        return;
    }
    assert_eq!(entry.digest.as_bytes().len(), entry.algorithm.digest_len());
    // `check` refuses lines holding NUL before parsing them; no file name holds one.
    if entry.name.contains(&0) {
        return;
    }

    // What was accepted, written back as `hash` writes it and parsed again, is the same entry.
    // (An empty name, possible in BSD lines, cannot be written as an untagged line.)
    for style in [LineStyle::Gnu, LineStyle::Bsd] {
        if entry.name.is_empty() && style == LineStyle::Gnu {
            continue;
        }
        for encoding in [Encoding::Hex, Encoding::Base64] {
            let format = LineFormat { style, zero, encoding };
            let mut written = Vec::new();
            format_line(&mut written, &format, entry.algorithm, &entry.digest, &entry.name);
            let trimmed = trim_record(&written, zero).expect("a written line is never blank");
            let mut fresh = Layout::Undecided;
            // An untagged line is read with `-a`, as `check -a` reads it.
            let again = parse_line(trimmed, &mut fresh, Accept::exactly(entry.algorithm))
                .expect("a written line parses");
            assert_eq!(again, entry);
        }
    }
});
