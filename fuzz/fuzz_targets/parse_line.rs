//! Fuzzes the checksum-line parser: no input may panic it, and every line it accepts must
//! survive a round trip through sumpool's own line formatter.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run parse_line` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sumpool::format::parse::{Layout, parse_line, trim_record};
use sumpool::digest::Algorithm;
use sumpool::format::line::{LineFormat, LineStyle, format_line};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the list kind, the layout state and the accepted algorithm.
    let Some((&mode, rest)) = data.split_first() else { return };
    let zero = mode & 1 == 1;
    let mut layout = match (mode >> 1) % 3 {
        0 => Layout::Undecided,
        1 => Layout::Standard,
        _ => Layout::Reversed,
    };
    let only = match (mode >> 3) % 5 {
        0 => None,
        n => Some(Algorithm::ALL[n as usize - 1]),
    };
    // A record ends at its first delimiter, as the list reader cuts it.
    let delim = if zero { b'\0' } else { b'\n' };
    let record = match rest.iter().position(|&b| b == delim) {
        Some(end) => &rest[..=end],
        None => rest,
    };
    let Some(line) = trim_record(record, zero) else { return };
    let Ok(entry) = parse_line(line, &mut layout, only) else { return };
    if let Some(only) = only {
        assert_eq!(entry.algorithm, only);
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
        let format = LineFormat { style, zero, tag: entry.algorithm.tag() };
        let mut written = Vec::new();
        format_line(&mut written, &format, entry.digest.as_bytes(), &entry.name);
        let trimmed = trim_record(&written, zero).expect("a written line is never blank");
        let mut fresh = Layout::Undecided;
        let again = parse_line(trimmed, &mut fresh, None).expect("a written line parses");
        assert_eq!(again, entry);
    }
});
