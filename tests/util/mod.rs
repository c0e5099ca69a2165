//! Helpers for integration tests that drive the real `sumpool` binary.
//!
//! Every run is bounded by a timeout, and every failed expectation prints the command, its exit
//! code, stdout and stderr, so a red test says what happened (as ripgrep's `tests/util.rs`).

#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

/// Seconds any single command may run before the test calls it a hang.
pub const TIMEOUT_SECS: u32 = 60;

/// The binary under test.
pub fn sumpool_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sumpool"))
}

/// The finished run of one command.
pub struct Run {
    /// The command line, for messages.
    pub command: String,
    /// Exit code; `None` if killed by a signal.
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Run {
    /// Text describing the run, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "command: {}\nexit code: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command,
            self.code,
            String::from_utf8_lossy(&self.stdout),
            String::from_utf8_lossy(&self.stderr)
        )
    }

    /// Asserts the exit code and returns self for chaining.
    #[track_caller]
    pub fn code(&self, want: i32) -> &Run {
        assert_eq!(
            self.code,
            Some(want),
            "unexpected exit code\n{}",
            self.describe()
        );
        self
    }

    /// Asserts stdout bytes.
    #[track_caller]
    pub fn stdout_is(&self, want: &[u8]) -> &Run {
        assert!(
            self.stdout == want,
            "stdout differs\nwant:\n{}\n{}",
            String::from_utf8_lossy(want),
            self.describe()
        );
        self
    }

    /// Asserts stderr is empty.
    #[track_caller]
    pub fn stderr_empty(&self) -> &Run {
        assert!(
            self.stderr.is_empty(),
            "stderr not empty\n{}",
            self.describe()
        );
        self
    }

    /// Stderr as lossy text.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Asserts that stderr contains `needle`.
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Run {
        assert!(
            self.stderr_text().contains(needle),
            "stderr lacks {needle:?}\n{}",
            self.describe()
        );
        self
    }
}

/// A command under construction: program, args, directory, stdin.
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    dir: Option<PathBuf>,
    stdin: Option<Vec<u8>>,
    prefix: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
}

impl Cmd {
    /// A command running `program`.
    pub fn new(program: impl AsRef<OsStr>) -> Cmd {
        Cmd {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            dir: None,
            stdin: None,
            prefix: Vec::new(),
            env: Vec::new(),
        }
    }

    /// A command running sumpool.
    pub fn sumpool() -> Cmd {
        Cmd::new(sumpool_bin())
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I: IntoIterator<Item = A>, A: AsRef<OsStr>>(mut self, args: I) -> Cmd {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn dir(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.dir = Some(dir.as_ref().to_owned());
        self
    }

    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(data.into());
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Cmd {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Runs the command as the unprivileged user `nobody` (uid and gid 65534) when the tests
    /// run as root, so permission checks are real; as any other user it runs unchanged.
    pub fn unprivileged(mut self) -> Cmd {
        if is_root() {
            if Path::new(&self.program) == sumpool_bin() {
                self.program = shared_binary().into();
            }
            self.prefix = [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--",
            ]
            .iter()
            .map(OsString::from)
            .collect();
        }
        self
    }

    /// Runs to completion under the timeout.
    pub fn run(self) -> Run {
        let mut argv: Vec<OsString> = vec![format!("{TIMEOUT_SECS}").into()];
        argv.extend(self.prefix.iter().cloned());
        argv.push(self.program.clone());
        argv.extend(self.args.iter().cloned());
        let command = argv
            .iter()
            .map(|a| format!("{:?}", a))
            .collect::<Vec<_>>()
            .join(" ");
        let mut cmd = Command::new("timeout");
        cmd.args(&argv).env("LC_ALL", "C.UTF-8");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {command}: {e}"));
        if let Some(data) = self.stdin {
            let mut stdin = child.stdin.take().expect("piped stdin");
            std::thread::spawn(move || {
                let _ = stdin.write_all(&data);
            });
        }
        let output = child.wait_with_output().expect("wait for child");
        let run = Run {
            command,
            code: output.status.code(),
            stdout: output.stdout,
            stderr: output.stderr,
        };
        assert_ne!(
            run.code,
            Some(124),
            "command timed out (a hang)\n{}",
            run.describe()
        );
        run
    }
}

/// A copy of the binary that any user can execute, wherever the checkout lives (a clone under
/// /root is not reachable by `nobody`).
fn shared_binary() -> PathBuf {
    static COPY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        let dir = temp_dir().keep();
        let path = dir.join("sumpool");
        fs::copy(sumpool_bin(), &path).expect("copy binary");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod binary");
        path
    })
    .clone()
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A temporary directory that other users may enter (tests run the binary as `nobody`).
pub fn temp_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("sumpool-test-")
        .tempdir()
        .expect("temp dir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
    dir
}

/// Writes `data` to `dir/name`, creating parent directories; `name` is raw bytes.
pub fn write_file(dir: &Path, name: &[u8], data: &[u8]) -> PathBuf {
    let path = dir.join(OsStr::from_bytes(name));
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("create parent");
    }
    fs::write(&path, data).expect("write file");
    path
}

/// SHA-256 of `data`, lowercase hex, computed with the sha2 crate.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Deterministic pseudo-random bytes (xorshift), so tests need no RNG crate.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Runs the real GNU `sha256sum` with `args` in `dir`.
pub fn gnu_sha256sum<I: IntoIterator<Item = A>, A: AsRef<OsStr>>(dir: &Path, args: I) -> Run {
    Cmd::new("sha256sum").args(args).dir(dir).run()
}

/// Regular files under `root`, in the walk order sumpool promises: depth first, the entries of
/// each directory in byte order of their names. Written independently of sumpool's walk.
pub fn walk_order(root: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<_> = fs::read_dir(root)
        .expect("read_dir")
        .map(|e| e.expect("dir entry"))
        .collect();
    entries.sort_by(|a, b| a.file_name().as_bytes().cmp(b.file_name().as_bytes()));
    let mut files = Vec::new();
    for entry in entries {
        let kind = entry.file_type().expect("file type");
        let path = root.join(entry.file_name());
        if kind.is_dir() {
            files.extend(walk_order(&path));
        } else if kind.is_file() {
            files.push(path);
        }
    }
    files
}

/// Parses stdout as JSON Lines, one value per non-empty line.
pub fn json_lines(run: &Run) -> Vec<serde_json::Value> {
    run.stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap_or_else(|e| panic!("{e}: {}", run.describe())))
        .collect()
}

/// The stderr lines of `run`, with the program name `program` that starts a line replaced by
/// `PROG`: what two tools' messages are compared by.
pub fn stderr_lines(run: &Run, program: &str) -> Vec<String> {
    run.stderr_text()
        .lines()
        .map(|l| match l.strip_prefix(program) {
            Some(rest) => format!("PROG{rest}"),
            None => l.to_owned(),
        })
        .collect()
}

/// A small tree `data/{a,b}/f{1,2,3}` of distinct contents.
pub fn small_tree(dir: &Path) {
    for (i, sub) in ["a", "b"].iter().enumerate() {
        for k in 1..=3 {
            let name = format!("data/{sub}/f{k}");
            write_file(
                dir,
                name.as_bytes(),
                &pseudo_random(1000 + k * 10, (i * 3 + k) as u64),
            );
        }
    }
}

/// What `sha256sum` prints for `names` in `dir`, in that order.
pub fn reference(dir: &Path, names: &[&str]) -> Vec<u8> {
    let run = Cmd::new("sha256sum").args(names).dir(dir).run();
    run.code(0);
    run.stdout
}

pub fn skip_unless_root(what: &str) -> bool {
    if is_root() {
        return false;
    }
    eprintln!("skipped: {what} needs root");
    true
}

/// Drops the page cache (root): `sync`, then clean pages, dentries and inodes.
pub fn drop_caches() {
    Cmd::new("sync").run().code(0);
    fs::write("/proc/sys/vm/drop_caches", "3\n").expect("drop the page cache (root)");
}

/// Bytes of `paths` in the page cache, by `fincore` (util-linux).
pub fn cached_bytes(paths: &[PathBuf]) -> u64 {
    let out = Command::new("fincore")
        .args(["--bytes", "--noheadings", "--output", "RES"])
        .args(paths)
        .output()
        .expect("fincore (util-linux)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().parse::<u64>().expect("a byte count"))
        .sum()
}
