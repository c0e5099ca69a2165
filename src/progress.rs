//! The progress bar on stderr: files and bytes done, throughput, and an ETA once the totals
//! are known.
//!
//! Shown by default only when it helps a person and cannot hurt a script: stderr is a
//! terminal, and stdout is not that terminal too (lines scrolling past would tear the bar, and
//! there a bar tells nothing the lines do not). `--progress` forces it, even into a pipe;
//! `--no-progress` turns it off. It never writes to stdout.
//!
//! The totals come from a second, counting walk on a thread of its own (the walk can count
//! ahead of the hashing); until it is done the bar shows a spinner, then a bar with an ETA.
//! When the run ends, or stops on SIGINT/SIGTERM, the bar is cleared from the terminal, and
//! a message printed while it is shown goes through [`Progress::stderr`] so that the bar
//! does not overwrite it. If the user insists with a second signal, the signal handler clears
//! the line itself before the process dies (`signals`), so no stale bar is left either way.

use std::io::{self, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle, TermLike};

/// When to show the bar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProgressMode {
    /// When stderr is a terminal and stdout does not print to it too.
    #[default]
    Auto,
    /// Always (`--progress`).
    Always,
    /// Never (`--no-progress`).
    Never,
}

/// What a run will have to do, as counted ahead by another thread.
#[derive(Debug, Default)]
pub struct Totals {
    /// Files (or checksum lines) counted so far.
    pub files: AtomicU64,
    /// Bytes counted so far; 0 when sizes are not counted.
    pub bytes: AtomicU64,
    /// The count is complete.
    pub done: AtomicBool,
}

/// Work that counts the totals ahead of the run, on a thread of its own.
pub type Counter = Box<dyn FnOnce(&Totals) + Send>;

/// What has been done, read by the bar's template at every redraw (so the numbers on screen
/// are never stale, even while the run waits on a slow input).
#[derive(Debug, Default)]
struct Done {
    files: AtomicU64,
    bytes: AtomicU64,
}

/// The bar, or nothing when it is not shown.
pub struct Progress {
    bar: Option<ProgressBar>,
    totals: Arc<Totals>,
    done: Arc<Done>,
    /// Whether the bar's position counts bytes (hash) or files (check).
    by_bytes: bool,
}

impl Progress {
    /// A bar that is not shown.
    pub fn hidden() -> Progress {
        Progress {
            bar: None,
            totals: Arc::new(Totals::default()),
            done: Arc::new(Done::default()),
            by_bytes: true,
        }
    }

    /// Starts the bar if `mode` asks for it. `stdout_shares_terminal` tells whether stdout
    /// carries output to a terminal. `count` runs on a thread of its own and fills the
    /// totals; `by_bytes` says whether the bar measures bytes (with a byte count) or files.
    pub fn start(
        mode: ProgressMode,
        stdout_shares_terminal: bool,
        by_bytes: bool,
        count: Option<Counter>,
    ) -> Progress {
        let show = match mode {
            ProgressMode::Never => false,
            ProgressMode::Always => true,
            ProgressMode::Auto => io::stderr().is_terminal() && !stdout_shares_terminal,
        };
        let mut progress = Progress::hidden();
        progress.by_bytes = by_bytes;
        if !show {
            return progress;
        }
        // Drawn through our own terminal adapter: indicatif's would hide itself off a
        // terminal (where --progress asked for it anyway), and would use the full width.
        let hz = if io::stderr().is_terminal() { 10 } else { 2 };
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(StderrTerm), hz);
        let bar = ProgressBar::with_draw_target(None, target);
        let (done, totals) = (Arc::clone(&progress.done), Arc::clone(&progress.totals));
        bar.set_style(style(by_bytes, false, &done, &totals));
        // Drawn once now, from this thread: the ticker's first draw waits for its thread to be
        // scheduled, and a short run on a busy machine could end before that, so a bar that
        // was asked for would never appear at all.
        bar.tick();
        bar.enable_steady_tick(Duration::from_millis(200));
        crate::signals::set_bar_active(true);
        if let Some(count) = count {
            let bar = bar.clone();
            std::thread::spawn(move || {
                count(&totals);
                totals.done.store(true, Ordering::Release);
                // The totals are known: from a spinner to a bar with an ETA.
                let total = if by_bytes {
                    &totals.bytes
                } else {
                    &totals.files
                };
                bar.set_length(total.load(Ordering::Relaxed));
                bar.set_style(style(by_bytes, true, &done, &totals));
            });
        }
        progress.bar = Some(bar);
        progress
    }

    /// Records one file done, of `bytes` bytes.
    pub fn advance(&self, bytes: u64) {
        let Some(bar) = &self.bar else { return };
        self.done.files.fetch_add(1, Ordering::Relaxed);
        self.done.bytes.fetch_add(bytes, Ordering::Relaxed);
        bar.inc(if self.by_bytes { bytes } else { 1 });
    }

    /// Where messages go: around the bar when it is shown (each write clears it, writes to
    /// stderr and redraws it), else to `fallback`.
    pub fn stderr<'a>(&self, fallback: &'a mut dyn Write) -> ProgressStderr<'a> {
        ProgressStderr {
            bar: self.bar.clone(),
            fallback,
        }
    }

    /// Whether the bar is shown.
    pub fn is_shown(&self) -> bool {
        self.bar.is_some()
    }

    /// Removes the bar from the terminal.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            crate::signals::set_bar_active(false);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The bar's look: a spinner until the totals are known, then a bar with an ETA. The
/// `{files}` key shows files done (and the total once known), `{done_bytes}` bytes done.
fn style(
    by_bytes: bool,
    with_total: bool,
    done: &Arc<Done>,
    totals: &Arc<Totals>,
) -> ProgressStyle {
    let template = match (by_bytes, with_total) {
        (true, false) => "{spinner} {files}, {bytes} ({binary_bytes_per_sec}), {elapsed}",
        (true, true) => {
            "{spinner} {files} [{wide_bar}] {bytes}/{total_bytes} ({binary_bytes_per_sec}), ETA {eta}"
        }
        (false, false) => "{spinner} {files}, {done_bytes} ({per_sec}), {elapsed}",
        (false, true) => "{spinner} {files}, {done_bytes} [{wide_bar}] ({per_sec}), ETA {eta}",
    };
    let (done_files, totals) = (Arc::clone(done), Arc::clone(totals));
    let files = move |_: &ProgressState, out: &mut dyn std::fmt::Write| {
        let files = done_files.files.load(Ordering::Relaxed);
        let _ = if totals.done.load(Ordering::Acquire) {
            write!(
                out,
                "{files}/{} files",
                totals.files.load(Ordering::Relaxed)
            )
        } else {
            write!(out, "{files} files")
        };
    };
    let done = Arc::clone(done);
    let done_bytes = move |_: &ProgressState, out: &mut dyn std::fmt::Write| {
        let _ = write!(
            out,
            "{}",
            indicatif::HumanBytes(done.bytes.load(Ordering::Relaxed))
        );
    };
    ProgressStyle::with_template(template)
        .map(|style| {
            style
                .progress_chars("=> ")
                .with_key("files", files)
                .with_key("done_bytes", done_bytes)
        })
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// stderr as indicatif's terminal: each redraw rewrites the line with a carriage return and
/// an erase-line sequence.
///
/// The bar is kept a few columns short of the terminal's width. A line that fills the last
/// column leaves the cursor waiting to wrap, so the `^C` the terminal echoes on Ctrl-C would
/// land on the next line, and erasing "the current line" would then leave the bar behind.
#[derive(Debug)]
struct StderrTerm;

/// Columns left free at the end of the bar's line.
const WIDTH_RESERVE: u16 = 4;

impl TermLike for StderrTerm {
    fn width(&self) -> u16 {
        let columns = rustix::termios::tcgetwinsize(io::stderr()).map_or(0, |size| size.ws_col);
        if columns == 0 {
            100
        } else {
            columns.saturating_sub(WIDTH_RESERVE).max(20)
        }
    }
    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        move_cursor(n, 'A')
    }
    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        move_cursor(n, 'B')
    }
    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        move_cursor(n, 'C')
    }
    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        move_cursor(n, 'D')
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        writeln!(io::stderr(), "{s}")
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        io::stderr().write_all(s.as_bytes())
    }
    fn clear_line(&self) -> io::Result<()> {
        io::stderr().write_all(b"\r\x1b[2K")
    }
    fn flush(&self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// Moves the cursor `n` cells in the direction of the CSI `letter` (A up, B down, C right,
/// D left); nothing for 0, which the sequence would read as 1.
fn move_cursor(n: usize, letter: char) -> io::Result<()> {
    if n == 0 {
        Ok(())
    } else {
        write!(io::stderr(), "\x1b[{n}{letter}")
    }
}

/// stderr for messages while the bar may be shown (see [`Progress::stderr`]). Messages are
/// written whole, in one call each, by `report`.
pub struct ProgressStderr<'a> {
    bar: Option<ProgressBar>,
    fallback: &'a mut dyn Write,
}

impl Write for ProgressStderr<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &self.bar {
            Some(bar) => bar
                .suspend(|| io::stderr().write_all(buf))
                .map(|()| buf.len()),
            None => self.fallback.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &self.bar {
            Some(_) => io::stderr().flush(),
            None => self.fallback.flush(),
        }
    }
}
