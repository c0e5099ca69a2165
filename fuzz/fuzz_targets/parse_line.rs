//! Fuzzes the checksum-line parser: no input may panic it, and every line it accepts must
//! survive a round trip through sumpool's own line formatter.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run parse_line` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sumpool::check::{Layout, parse_line, trim_record};
use sumpool::output::{LineFormat, LineStyle, format_line};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the list kind and the layout state the line is parsed in.
    let Some((&mode, rest)) = data.split_first() else { return };
    let zero = mode & 1 == 1;
    let mut layout = match (mode >> 1) % 3 {
        0 => Layout::Undecided,
        1 => Layout::Standard,
        _ => Layout::Reversed,
    };
    let Some(line) = trim_record(rest, zero) else { return };
    let Ok(entry) = parse_line(line, &mut layout) else { return };

    // What was accepted, written back as `hash` writes it and parsed again, is the same entry.
    // (An empty name, possible in BSD lines, cannot be written as an untagged line.)
    for style in [LineStyle::Gnu, LineStyle::Bsd] {
        if entry.name.is_empty() && style == LineStyle::Gnu {
            continue;
        }
        // A NUL-terminated record cannot carry a NUL; a newline record escapes what it must.
        if zero && entry.name.contains(&0) {
            continue;
        }
        let format = LineFormat { style, zero, tag: "SHA256" };
        let mut written = Vec::new();
        format_line(&mut written, &format, &entry.digest, &entry.name);
        let trimmed = trim_record(&written, zero).expect("a written line is never blank");
        let mut fresh = Layout::Undecided;
        let again = parse_line(trimmed, &mut fresh).expect("a written line parses");
        assert_eq!(again, entry);
    }
});
