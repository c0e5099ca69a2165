//! Quoting of file names in diagnostics, the way GNU coreutils quotes them.
//!
//! GNU tools print a file name in an error message through gnulib's `quotef`: the shell-escape
//! quoting style with `:` added to the characters that force quotes. A name that a shell would
//! read back unchanged is printed raw; anything else is put in single quotes, control bytes and
//! invalid UTF-8 are written as `$'\n'`-style escapes, and a name whose only problem is an
//! apostrophe is put in double quotes. sumpool's messages match byte for byte, so that `check`'s
//! stderr is the same as `sha256sum -c`'s and a name in a message can be pasted into a shell.
//!
//! This module owns only that quoting; where the messages go is `report`'s job, and the escaping
//! of names inside checksum lines (a different rule) is `line`'s.
//!
//! The rules follow the behaviour of coreutils 9.1 in a UTF-8 locale. Printability of a decoded
//! character is approximated: control characters, the line and paragraph separators and the
//! Unicode noncharacters are unprintable; everything else that decodes is printed raw.

use std::borrow::Cow;

/// Quotes `name` for a diagnostic the way GNU `quotef` does in a UTF-8 locale.
pub fn quote_name(name: &[u8]) -> Cow<'_, [u8]> {
    if !name.is_empty() && !needs_quotes(name) {
        return Cow::Borrowed(name);
    }
    let pieces = split_pieces(name);
    // An apostrophe is common in real names ("it's"); GNU then prefers double quotes, but only
    // when nothing in the name means something different inside C double quotes.
    if name.contains(&b'\'')
        && pieces
            .iter()
            .enumerate()
            .all(|(i, p)| fits_double_quotes(name, i, p))
    {
        let mut out = Vec::with_capacity(name.len() + 2);
        out.push(b'"');
        out.extend_from_slice(name);
        out.push(b'"');
        return Cow::Owned(out);
    }
    Cow::Owned(single_quote(&pieces))
}

/// One unit of a name: a decoded character (its bytes) or a byte that is not valid UTF-8.
#[derive(Clone, Copy)]
enum Piece<'a> {
    /// A valid UTF-8 sequence and whether GNU would consider it printable.
    Char(&'a [u8], bool),
    /// A byte that does not start a valid UTF-8 sequence here.
    Invalid(u8),
}

fn split_pieces(name: &[u8]) -> Vec<Piece<'_>> {
    let mut pieces = Vec::with_capacity(name.len());
    let mut rest = name;
    while !rest.is_empty() {
        let valid = match std::str::from_utf8(rest) {
            Ok(s) => s,
            // The first `valid_up_to` bytes are valid UTF-8 by definition, so this cannot fail.
            Err(e) => std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap_or_default(),
        };
        for (start, c) in valid.char_indices() {
            let bytes = &valid.as_bytes()[start..start + c.len_utf8()];
            pieces.push(Piece::Char(bytes, is_printable(c)));
        }
        rest = &rest[valid.len()..];
        if let Some((&bad, tail)) = rest.split_first() {
            pieces.push(Piece::Invalid(bad));
            rest = tail;
        }
    }
    pieces
}

fn is_printable(c: char) -> bool {
    let cp = c as u32;
    let noncharacter = (0xFDD0..=0xFDEF).contains(&cp) || (cp & 0xFFFE) == 0xFFFE;
    !(c.is_control() || c == '\u{2028}' || c == '\u{2029}' || noncharacter)
}

/// Bytes that are special to a POSIX shell anywhere in a word.
fn is_shell_special(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'!'
            | b'"'
            | b'$'
            | b'&'
            | b'('
            | b')'
            | b'*'
            | b';'
            | b'<'
            | b'='
            | b'>'
            | b'['
            | b'^'
            | b'`'
            | b'|'
            | b'?'
            | b'\\'
            | b'\''
            // `quotef` adds ':' so that "name: reason" cannot be misread.
            | b':'
    )
}

fn needs_quotes(name: &[u8]) -> bool {
    if name == b"{" || name == b"}" || name.starts_with(b"#") || name.starts_with(b"~") {
        return true;
    }
    // Fast path: plain ASCII names are the common case.
    if name.iter().all(|&b| b.is_ascii_graphic() || b == b' ') {
        return name.iter().any(|&b| is_shell_special(b));
    }
    split_pieces(name).iter().any(|p| match *p {
        Piece::Invalid(_) | Piece::Char(_, false) => true,
        Piece::Char(bytes, true) => bytes.len() == 1 && is_shell_special(bytes[0]),
    })
}

/// Whether this piece may stand unescaped between C double quotes, by GNU's rule.
fn fits_double_quotes(name: &[u8], index: usize, piece: &Piece<'_>) -> bool {
    match *piece {
        Piece::Invalid(_) | Piece::Char(_, false) => false,
        Piece::Char(bytes, true) if bytes.len() > 1 => true,
        Piece::Char(bytes, true) => match bytes[0] {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => true,
            b'%' | b'+' | b',' | b'-' | b'.' | b'/' | b':' | b']' | b'_' | b' ' | b'\'' | b'@' => {
                true
            }
            // These are only special, and so only "compatible", where the shell cares.
            b'#' | b'~' => index == 0,
            b'{' | b'}' => name.len() == 1,
            _ => false,
        },
    }
}

fn single_quote(pieces: &[Piece<'_>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pieces.len() * 2 + 2);
    out.push(b'\'');
    // True while inside a `$'...'` escape section.
    let mut in_escape = false;
    for piece in pieces {
        let escape: Option<&[u8]> = match *piece {
            Piece::Invalid(b) => {
                push_octal_escape(&mut out, &mut in_escape, b);
                continue;
            }
            Piece::Char(bytes, false) => match bytes {
                b"\x07" => Some(b"a"),
                b"\x08" => Some(b"b"),
                b"\x0c" => Some(b"f"),
                b"\n" => Some(b"n"),
                b"\r" => Some(b"r"),
                b"\t" => Some(b"t"),
                b"\x0b" => Some(b"v"),
                _ => {
                    for &b in bytes {
                        push_octal_escape(&mut out, &mut in_escape, b);
                    }
                    continue;
                }
            },
            Piece::Char(_, true) => None,
        };
        match (escape, *piece) {
            (Some(letter), _) => {
                open_escape(&mut out, &mut in_escape);
                out.push(b'\\');
                out.extend_from_slice(letter);
            }
            (None, Piece::Char(b"'", _)) => {
                // Close the quotes, write an escaped apostrophe, reopen.
                out.extend_from_slice(b"'\\''");
                in_escape = false;
            }
            (None, Piece::Char(bytes, _)) => {
                close_escape(&mut out, &mut in_escape);
                out.extend_from_slice(bytes);
            }
            (None, Piece::Invalid(_)) => {}
        }
    }
    out.push(b'\'');
    out
}

fn open_escape(out: &mut Vec<u8>, in_escape: &mut bool) {
    if !*in_escape {
        out.extend_from_slice(b"'$'");
        *in_escape = true;
    }
}

fn close_escape(out: &mut Vec<u8>, in_escape: &mut bool) {
    if *in_escape {
        out.extend_from_slice(b"''");
        *in_escape = false;
    }
}

fn push_octal_escape(out: &mut Vec<u8>, in_escape: &mut bool, b: u8) {
    open_escape(out, in_escape);
    out.extend_from_slice(&[
        b'\\',
        b'0' + (b >> 6),
        b'0' + ((b >> 3) & 7),
        b'0' + (b & 7),
    ]);
}

#[cfg(test)]
mod tests {
    use super::quote_name;

    fn q(name: &[u8]) -> String {
        String::from_utf8_lossy(&quote_name(name)).into_owned()
    }

    // Expected values were read off GNU coreutils 9.1 `sha256sum -- NAME` error messages; the
    // integration tests also compare against the installed sha256sum directly.
    #[test]
    fn table() {
        let cases: &[(&[u8], &str)] = &[
            (b"plain", "plain"),
            (b"a b", "'a b'"),
            (b"it's", "\"it's\""),
            (b"a\\b", "'a\\b'"),
            (b"nl\nx", "'nl'$'\\n''x'"),
            (b"cr\rx", "'cr'$'\\r''x'"),
            (b"\xff\xfe", "''$'\\377\\376'"),
            ("é".as_bytes(), "é"),
            (b"a:b", "'a:b'"),
            (b"~home", "'~home'"),
            (b"x~", "x~"),
            (b"#h", "'#h'"),
            (b"a#", "a#"),
            (b"{", "'{'"),
            (b"a,b", "a,b"),
            (b"\x7f", "''$'\\177'"),
            (b"a'b\"c", "'a'\\''b\"c'"),
            (b"it's#", "'it'\\''s#'"),
            (b"#it's", "\"#it's\""),
            (b"{'", "'{'\\'''"),
            (b"", "''"),
            (b"end\n", "'end'$'\\n'"),
        ];
        for (name, want) in cases {
            assert_eq!(q(name), *want, "name {:?}", String::from_utf8_lossy(name));
        }
    }
}
