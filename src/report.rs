//! Failures, the run's tally, the summary line and the exit codes.
//!
//! A per-file problem becomes a [`Failure`] value at exactly one place (the walk for entries it
//! cannot read, the readers and workers of `engine::run` for files they cannot read or hash)
//! and travels to the single thread that prints, which records it here with [`Report::fail`].
//! That is the only way to write a failure message, and it also counts it, so a failure cannot
//! be shown without turning the exit code non-zero.
//!
//! Exit codes live here and nowhere else (as fd keeps them in `exit_codes.rs`).

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::format::line::path_bytes;
use crate::format::quote::quote_name;

/// The program name that starts every diagnostic.
pub const PROGRAM: &str = "sumpool";

/// Exit code: everything asked for was done and everything matched.
pub const EXIT_SUCCESS: u8 = 0;
/// Exit code: the run finished, but at least one file failed (could not be hashed, or in
/// `check` did not verify).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: usage error, or a fatal error that stopped the run (such as stdout that cannot
/// be written).
pub const EXIT_ERROR: u8 = 2;
/// Exit code: a file's bytes changed while its size, times and inode stayed as recorded
/// (`audit`, `hash --update`): silent corruption. It takes precedence over [`EXIT_FAILURE`],
/// so a job that checks for 3 learns of corruption even when other files failed too.
pub const EXIT_CORRUPT: u8 = 3;

/// What "corrupt" means, as `audit` and `hash --update` say it. No tool that goes by a
/// file's status can tell rot from a write that left the times alone: a second write
/// through a shared memory map to a page already dirty moves neither size nor times, and
/// neither does a tool that sets the times back. So the words say both.
pub const CORRUPT_MEANS: &str = "content changed while size, times and inode did not: bit rot, or a write that bypassed the times (a write through a shared memory map, or times set back)";

/// Why one path could not be hashed.
#[derive(Debug)]
pub enum Reason {
    /// An operating-system error while walking, opening or reading.
    Io(io::Error),
    /// The file's size or modification time changed between the start and the end of reading.
    Changed,
    /// The file made no progress for the stall timeout (`--stall-timeout`); the read was
    /// abandoned.
    TimedOut,
    /// Following symlinks led back to a directory that is already being walked.
    Loop {
        /// The directory the link leads back to.
        ancestor: PathBuf,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Io(err) => f.write_str(&io_reason(err)),
            Reason::Changed => f.write_str("file changed while being read"),
            Reason::TimedOut => f.write_str("timed out: no progress for the stall timeout"),
            Reason::Loop { ancestor } => write!(
                f,
                "filesystem loop: leads back to {}",
                String::from_utf8_lossy(&quote_name(path_bytes(ancestor)))
            ),
        }
    }
}

impl Reason {
    /// The short, stable name of this kind of failure, as JSON output gives it.
    pub fn kind(&self) -> &'static str {
        match self {
            Reason::Changed => "changed",
            Reason::TimedOut => "timed_out",
            Reason::Loop { .. } => "loop",
            Reason::Io(err) => match err.kind() {
                io::ErrorKind::NotFound => "not_found",
                io::ErrorKind::PermissionDenied => "permission_denied",
                _ if err.raw_os_error() == Some(libc::ENAMETOOLONG) => "name_too_long",
                _ => "io",
            },
        }
    }
}

impl From<io::Error> for Reason {
    fn from(err: io::Error) -> Reason {
        Reason::Io(err)
    }
}

/// The text GNU tools print for an OS error: `strerror` without Rust's ` (os error N)` suffix.
pub fn io_reason(err: &io::Error) -> String {
    let text = err.to_string();
    match err.raw_os_error() {
        Some(code) => {
            let suffix = format!(" (os error {code})");
            text.strip_suffix(&suffix)
                .map(str::to_owned)
                .unwrap_or(text)
        }
        None => text,
    }
}

/// One path that could not be hashed, and why.
#[derive(Debug)]
pub struct Failure {
    /// The path as the user would see it in the output.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: Reason,
}

impl Failure {
    /// A failure of `path` for `reason`.
    pub fn new(path: impl Into<PathBuf>, reason: impl Into<Reason>) -> Failure {
        Failure {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// Writes the warning that ends a run that found `n` corrupt files (none for 0).
pub fn write_corrupt_warning(err: &mut dyn Write, n: u64) {
    if n == 0 {
        return;
    }
    let (files, are) = if n == 1 {
        ("file", "is")
    } else {
        ("files", "are")
    };
    let _ = writeln!(
        err,
        "{PROGRAM}: WARNING: {n} {files} {are} corrupt: {CORRUPT_MEANS}"
    );
}

/// Writes `sumpool: <quoted name>: <reason>` as one write, so lines from one run never mix.
pub fn write_message(err: &mut dyn Write, name: &Path, reason: &dyn fmt::Display) {
    let mut line = Vec::with_capacity(64);
    line.extend_from_slice(PROGRAM.as_bytes());
    line.extend_from_slice(b": ");
    line.extend_from_slice(&quote_name(path_bytes(name)));
    line.extend_from_slice(format!(": {reason}\n").as_bytes());
    // Nothing useful can be done when stderr itself cannot be written.
    let _ = err.write_all(&line);
}

/// What a run saw, kept by the one thread that prints.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Files hashed and printed.
    pub hashed: u64,
    /// Bytes read from the hashed files.
    pub bytes: u64,
    /// Paths that failed; each one was reported on stderr.
    pub failed: u64,
    /// Symlinks met during a walk and not followed.
    pub skipped_symlinks: u64,
    /// FIFOs, sockets and devices met during a walk and not opened.
    pub skipped_special: u64,
    /// Entries matching `--exclude` (a directory counts once), and the `-o` manifest.
    pub excluded: u64,
    /// Files found corrupt: their bytes changed under an unchanged, trusted stat.
    pub corrupt: u64,
    /// Output stopped early because the reader of stdout went away.
    pub output_closed: bool,
    /// The run was stopped by this signal; the output holds only whole lines.
    pub interrupted: Option<i32>,
}

impl Report {
    /// Reports `failure` on `err` and counts it.
    pub fn fail(&mut self, err: &mut dyn Write, failure: &Failure) {
        self.failed += 1;
        write_message(err, &failure.path, &failure.reason);
    }

    /// Prints the end-of-run summary on `err` if anything failed; a clean run prints nothing.
    pub fn write_summary(&self, err: &mut dyn Write) {
        if self.failed == 0 {
            return;
        }
        let total = self.failed + self.hashed;
        let files = if total == 1 { "file" } else { "files" };
        let line = format!(
            "{PROGRAM}: WARNING: {} of {total} {files} could not be hashed\n",
            self.failed
        );
        let _ = err.write_all(line.as_bytes());
    }

    /// Prints the `-v` summary: what was hashed, how fast, what was skipped and what failed.
    /// Every entry the walk met is in exactly one of these counts.
    pub fn write_verbose(&self, err: &mut dyn Write, elapsed: std::time::Duration) {
        let secs = elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            self.bytes as f64 / secs / 1e6
        } else {
            0.0
        };
        let plural =
            |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let line = format!(
            "{PROGRAM}: {} hashed, {} in {secs:.3} s ({rate:.1} MB/s); skipped {}, {}, {} excluded; {} failed\n",
            plural(self.hashed, "file", "files"),
            plural(self.bytes, "byte", "bytes"),
            plural(self.skipped_symlinks, "symlink", "symlinks"),
            plural(self.skipped_special, "special file", "special files"),
            self.excluded,
            self.failed,
        );
        let _ = err.write_all(line.as_bytes());
    }

    /// The exit code this run ends with.
    pub fn exit_code(&self) -> u8 {
        if self.corrupt > 0 {
            EXIT_CORRUPT
        } else if self.failed > 0 {
            EXIT_FAILURE
        } else {
            EXIT_SUCCESS
        }
    }
}

/// Whether any cause of `error` is a write into a pipe whose reader has gone: the run then
/// ends quietly, with the status it had so far (as ripgrep does).
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Converts one of the exit codes above into the process's exit code.
pub fn exit_code(code: u8) -> ExitCode {
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_distinct_and_documented_values() {
        assert_eq!(
            (EXIT_SUCCESS, EXIT_FAILURE, EXIT_ERROR, EXIT_CORRUPT),
            (0, 1, 2, 3)
        );
        let mut report = Report::default();
        assert_eq!(report.exit_code(), EXIT_SUCCESS);
        report.fail(&mut Vec::new(), &Failure::new("x", Reason::Changed));
        assert_eq!(report.exit_code(), EXIT_FAILURE);
        // Corruption outranks every other failure.
        report.corrupt = 1;
        assert_eq!(report.exit_code(), EXIT_CORRUPT);
    }

    #[test]
    fn io_reason_drops_the_os_error_suffix() {
        let err = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(io_reason(&err), "No such file or directory");
        let custom = io::Error::other("plain text");
        assert_eq!(io_reason(&custom), "plain text");
    }

    #[test]
    fn messages_and_summary() {
        let mut err = Vec::new();
        let mut report = Report {
            hashed: 9,
            ..Report::default()
        };
        report.fail(
            &mut err,
            &Failure::new("a b", io::Error::from_raw_os_error(libc::EACCES)),
        );
        report.write_summary(&mut err);
        assert_eq!(
            String::from_utf8_lossy(&err),
            "sumpool: 'a b': Permission denied\n\
             sumpool: WARNING: 1 of 10 files could not be hashed\n"
        );
    }
}
