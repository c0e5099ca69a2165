//! `--format json`: one JSON object per line (JSON Lines) on stdout.
//!
//! `hash` writes one object per file (`"type":"file"`), one per failure (`"type":"failure"`)
//! and a final summary (`"type":"summary"`). `check` writes one object per listed file in list
//! order (`"type":"check"`, with `"status"` OK, FAILED, unreadable or missing), one per
//! improperly formatted line (`"type":"bad_line"`) and a final summary.
//!
//! Paths are bytes on Unix and JSON strings are Unicode, so a path is an object, as ripgrep's
//! JSON output does it: `{"text":"dir/name"}` when the path is valid UTF-8, and
//! `{"bytes":"<base64>"}` (standard alphabet, padded) when it is not. No path is ever made
//! lossy. Diagnostics still go to stderr as text; the exit status is the same as without
//! `--format json`.

use std::io::{self, Write};
use std::path::Path;

use base64::Engine as _;
use serde::Serialize;

use crate::digest::{Algorithm, Digest, Digests};
use crate::format::line::path_bytes;

/// A path, lossless: text when it is UTF-8, base64 bytes when it is not.
#[derive(Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JsonPath {
    /// The path as a UTF-8 string.
    Text(String),
    /// The path's bytes, base64-encoded.
    Bytes(String),
}

impl JsonPath {
    /// The JSON form of `bytes`.
    pub fn new(bytes: &[u8]) -> JsonPath {
        match std::str::from_utf8(bytes) {
            Ok(text) => JsonPath::Text(text.to_owned()),
            Err(_) => JsonPath::Bytes(base64::engine::general_purpose::STANDARD.encode(bytes)),
        }
    }

    /// The JSON form of `path`.
    pub fn of(path: &Path) -> JsonPath {
        JsonPath::new(path_bytes(path))
    }
}

/// Writes `value` as one line.
pub fn write_line(out: &mut dyn Write, value: &impl Serialize) -> io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(io::Error::other)?;
    line.push(b'\n');
    out.write_all(&line)
}

/// `{"type":"file",...}`: one hashed file, with `"algorithm"` and `"digest"` (hex); a run of
/// several algorithms gives `"digests"` instead, an object of hex digests by algorithm name,
/// in the order of `-a`.
pub fn write_file(
    out: &mut dyn Write,
    path: &Path,
    digests: &Digests,
    size: u64,
) -> io::Result<()> {
    #[derive(Serialize)]
    struct File {
        r#type: &'static str,
        path: JsonPath,
        #[serde(skip_serializing_if = "Option::is_none")]
        algorithm: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        digest: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        digests: Option<ByAlgorithm>,
        size: u64,
    }
    let single = digests.algorithms().is_single();
    let first = (digests.algorithms().first(), digests.first());
    write_line(
        out,
        &File {
            r#type: "file",
            path: JsonPath::of(path),
            algorithm: single.then(|| first.0.to_string()),
            digest: single.then(|| hex::encode(first.1.as_bytes())),
            digests: (!single).then(|| {
                ByAlgorithm(
                    digests
                        .iter()
                        .map(|(a, d)| (a.to_string(), hex::encode(d.as_bytes())))
                        .collect(),
                )
            }),
            size,
        },
    )
}

/// Hex digests by algorithm name, serialized as one JSON object in list order.
struct ByAlgorithm(Vec<(String, String)>);

impl Serialize for ByAlgorithm {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, digest) in &self.0 {
            map.serialize_entry(name, digest)?;
        }
        map.end()
    }
}

/// `{"type":"failure",...}`: one path that could not be hashed, the short and stable name of
/// the kind of failure (`report::Reason::kind`), and the message printed on stderr.
pub fn write_failure(
    out: &mut dyn Write,
    path: &Path,
    kind: &str,
    message: String,
) -> io::Result<()> {
    #[derive(Serialize)]
    struct FailureLine<'a> {
        r#type: &'static str,
        path: JsonPath,
        kind: &'a str,
        message: String,
    }
    write_line(
        out,
        &FailureLine {
            r#type: "failure",
            path: JsonPath::of(path),
            kind,
            message,
        },
    )
}

/// `{"type":"file",...,"status":...}`: one file of a manifest brought up to date (`hash
/// --update`), and why it was or was not read.
pub struct UpdatedFile<'a> {
    /// The name.
    pub path: &'a Path,
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The digest on its line.
    pub digest: &'a Digest,
    /// Its size.
    pub size: u64,
    /// `reused`, `new`, `modified`, `racy`, `without_state`, `scrubbed` or `corrupt`.
    pub status: &'a str,
    /// For a corrupt file, the digest its bytes have now.
    pub found: Option<&'a Digest>,
}

/// Writes one [`UpdatedFile`].
pub fn write_updated(out: &mut dyn Write, file: &UpdatedFile<'_>) -> io::Result<()> {
    #[derive(Serialize)]
    struct Line<'a> {
        r#type: &'static str,
        path: JsonPath,
        algorithm: String,
        digest: String,
        size: u64,
        status: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        found: Option<String>,
    }
    write_line(
        out,
        &Line {
            r#type: "file",
            path: JsonPath::of(file.path),
            algorithm: file.algorithm.to_string(),
            digest: hex::encode(file.digest.as_bytes()),
            size: file.size,
            status: file.status,
            found: file.found.map(|d| hex::encode(d.as_bytes())),
        },
    )
}

/// The final object of a `hash` run; `U` holds the counts of `--update`.
#[derive(Debug, Serialize)]
pub struct HashSummary<U> {
    /// Files hashed.
    pub files: u64,
    /// Bytes hashed.
    pub bytes: u64,
    /// Paths that failed.
    pub failed: u64,
    /// Symlinks not followed.
    pub skipped_symlinks: u64,
    /// FIFOs, sockets and devices not opened.
    pub skipped_special: u64,
    /// Entries excluded by `--exclude` (and the manifest written with `-o`).
    pub excluded: u64,
    /// Wall time of the run.
    pub seconds: f64,
    /// With `--update`: why files were or were not read.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub update: Option<U>,
}

/// `{"type":"summary",...}` for `hash`.
pub fn write_hash_summary<U: Serialize>(
    out: &mut dyn Write,
    summary: &HashSummary<U>,
) -> io::Result<()> {
    #[derive(Serialize)]
    struct Line<'a, U> {
        r#type: &'static str,
        #[serde(flatten)]
        summary: &'a HashSummary<U>,
    }
    write_line(
        out,
        &Line {
            r#type: "summary",
            summary,
        },
    )
}

/// `{"type":"check",...}`: the verdict on one listed file.
pub fn write_check(
    out: &mut dyn Write,
    name: &[u8],
    algorithm: Option<Algorithm>,
    status: &str,
    message: Option<String>,
) -> io::Result<()> {
    #[derive(Serialize)]
    struct Check<'a> {
        r#type: &'static str,
        path: JsonPath,
        #[serde(skip_serializing_if = "Option::is_none")]
        algorithm: Option<String>,
        status: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    }
    write_line(
        out,
        &Check {
            r#type: "check",
            path: JsonPath::new(name),
            algorithm: algorithm.map(|a| a.to_string()),
            status,
            message,
        },
    )
}

/// `{"type":"bad_line",...}`: an improperly formatted line of a list.
pub fn write_bad_line(out: &mut dyn Write, list: &Path, line: u64) -> io::Result<()> {
    #[derive(Serialize)]
    struct BadLine {
        r#type: &'static str,
        list: JsonPath,
        line: u64,
    }
    write_line(
        out,
        &BadLine {
            r#type: "bad_line",
            list: JsonPath::of(list),
            line,
        },
    )
}

/// The final object of a `check` run.
#[derive(Debug, Default, Serialize)]
pub struct CheckSummary {
    /// Files that matched.
    pub ok: u64,
    /// Files that did not match.
    pub failed: u64,
    /// Files that could not be read.
    pub unreadable: u64,
    /// Files missing and ignored (`--ignore-missing`).
    pub missing: u64,
    /// Improperly formatted lines.
    pub improperly_formatted: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Wall time of the run.
    pub seconds: f64,
}

/// `{"type":"summary",...}` for `check`.
pub fn write_check_summary(out: &mut dyn Write, summary: &CheckSummary) -> io::Result<()> {
    #[derive(Serialize)]
    struct Line<'a> {
        r#type: &'static str,
        #[serde(flatten)]
        summary: &'a CheckSummary,
    }
    write_line(
        out,
        &Line {
            r#type: "summary",
            summary,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_lossless() {
        let text = serde_json::to_string(&JsonPath::new(b"a\"b")).unwrap();
        assert_eq!(text, r#"{"text":"a\"b"}"#);
        let bytes = serde_json::to_string(&JsonPath::new(b"\xff\xfe")).unwrap();
        assert_eq!(bytes, r#"{"bytes":"//4="}"#);
    }
}
