//! What a hostile or careless user tries: outputs onto devices, FIFOs and symlinks; signals
//! while the run is blocked where it cannot look; temporary files left by a killed run; a
//! README given to `--update`; parts of two splits given to `merge`; too few threads or
//! descriptors. Each test here failed on the build before the fix it guards.
//!
//! Tests that make device nodes (mknod) or drop privileges need root, as CI has; elsewhere
//! they say so and pass.

mod util;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use util::{Cmd, reference, skip_unless_root, small_tree, sumpool_bin, temp_dir, write_file};

/// Makes a device node (root only).
fn mknod(path: &Path, kind: libc::mode_t, major: u32, minor: u32) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path; mknod has no other preconditions.
    let made = unsafe { libc::mknod(c.as_ptr(), kind | 0o666, libc::makedev(major, minor)) };
    assert_eq!(made, 0, "mknod {}", path.display());
    // Past the umask, as `mknod -m 666` makes it.
    fs::set_permissions(path, fs::Permissions::from_mode(0o666)).unwrap();
}

#[test]
fn output_onto_a_device_writes_to_it_and_never_replaces_it() {
    if skip_unless_root("mknod") {
        return;
    }
    let dir = temp_dir();
    let d = dir.path();
    small_tree(d);
    // A private null device: a fast run without output, and still a device after.
    mknod(&d.join("mynull"), libc::S_IFCHR, 1, 3);
    Cmd::sumpool()
        .args(["hash", "-o", "mynull", "data"])
        .dir(d)
        .run()
        .code(0)
        .stderr_empty();
    let meta = fs::symlink_metadata(d.join("mynull")).unwrap();
    assert!(meta.file_type().is_char_device(), "{meta:?}");
    assert_eq!(meta.mode() & 0o777, 0o666);
    // A private full device: exactly what `> /dev/full` gives.
    mknod(&d.join("myfull"), libc::S_IFCHR, 1, 7);
    Cmd::sumpool()
        .args(["hash", "-o", "myfull", "data"])
        .dir(d)
        .run()
        .code(2)
        .stderr_has("sumpool: myfull: No space left on device\n");
    assert!(
        fs::symlink_metadata(d.join("myfull"))
            .unwrap()
            .file_type()
            .is_char_device()
    );
    // A block device is refused, untouched; so is a directory.
    mknod(&d.join("myblock"), libc::S_IFBLK, 7, 200);
    Cmd::sumpool()
        .args(["hash", "-o", "myblock", "data"])
        .dir(d)
        .run()
        .code(2)
        .stderr_has("sumpool: myblock: refusing to write a manifest onto a block device\n");
    assert!(
        fs::symlink_metadata(d.join("myblock"))
            .unwrap()
            .file_type()
            .is_block_device()
    );
    Cmd::sumpool()
        .args(["hash", "-o", "data", "data/a"])
        .dir(d)
        .run()
        .code(2)
        .stderr_has("sumpool: data: Is a directory\n");
    // --update needs a file to read and replace.
    Cmd::sumpool()
        .args(["hash", "--update", "mynull", "data"])
        .dir(d)
        .run()
        .code(2)
        .stderr_has("--update needs a regular file");
    let leftovers: Vec<_> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with(".sumpool-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn output_dash_is_standard_output() {
    let dir = temp_dir();
    let d = dir.path();
    small_tree(d);
    let want = reference(d, &["data/a/f1", "data/a/f2", "data/a/f3"]);
    Cmd::sumpool()
        .args(["hash", "-o", "-", "data/a"])
        .dir(d)
        .run()
        .code(0)
        .stdout_is(&want);
    assert!(!d.join("-").exists(), "a file named - was made");
    Cmd::sumpool()
        .args(["hash", "--update", "-", "data/a"])
        .dir(d)
        .run()
        .code(2)
        .stderr_has("--update needs a manifest file");
}

#[test]
fn output_through_a_symlink_replaces_its_target_and_keeps_the_link() {
    let dir = temp_dir();
    let d = dir.path();
    small_tree(d);
    fs::create_dir_all(d.join("releases/v2")).unwrap();
    fs::write(d.join("releases/v2/SHA256SUMS"), b"stale\n").unwrap();
    fs::set_permissions(
        d.join("releases/v2/SHA256SUMS"),
        fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    // A chain of two links, one relative, one absolute.
    std::os::unix::fs::symlink("releases/v2/SHA256SUMS", d.join("current")).unwrap();
    std::os::unix::fs::symlink(d.join("current"), d.join("SHA256SUMS")).unwrap();
    Cmd::sumpool()
        .args(["hash", "-o", "SHA256SUMS", "data"])
        .dir(d)
        .run()
        .code(0);
    for link in ["SHA256SUMS", "current"] {
        assert!(
            fs::symlink_metadata(d.join(link))
                .unwrap()
                .file_type()
                .is_symlink(),
            "{link} is no longer a link"
        );
    }
    let target = d.join("releases/v2/SHA256SUMS");
    let want = reference(
        d,
        &[
            "data/a/f1",
            "data/a/f2",
            "data/a/f3",
            "data/b/f1",
            "data/b/f2",
            "data/b/f3",
        ],
    );
    assert_eq!(fs::read(&target).unwrap(), want);
    assert_eq!(fs::metadata(&target).unwrap().mode() & 0o777, 0o640);
    Cmd::new("sha256sum")
        .args(["-c", "--strict", "SHA256SUMS"])
        .dir(d)
        .run()
        .code(0);
    // A dangling link makes its target, as `>` does.
    std::os::unix::fs::symlink("made/by/link", d.join("dangling")).unwrap();
    fs::create_dir_all(d.join("made/by")).unwrap();
    Cmd::sumpool()
        .args(["hash", "-o", "dangling", "data/a"])
        .dir(d)
        .run()
        .code(0);
    assert!(
        fs::symlink_metadata(d.join("dangling"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        fs::read(d.join("made/by/link")).unwrap(),
        reference(d, &["data/a/f1", "data/a/f2", "data/a/f3"])
    );
}

/// A sumpool run in the background, to signal.
struct Live {
    child: Child,
    command: String,
}

impl Live {
    fn start(args: &[&str], dir: &Path, stdout: Stdio) -> Live {
        let child = Command::new(sumpool_bin())
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sumpool");
        Live {
            child,
            command: format!("sumpool {}", args.join(" ")),
        }
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill on the pid of a child this process started and has not reaped.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    /// Waits for the end, at most `limit`; a process still there then is killed and the
    /// test fails: that is the hang under test.
    fn wait(&mut self, limit: Duration, what: &str) -> (ExitStatus, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, start.elapsed());
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("{}: still running {limit:?} after {what}", self.command);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut err, &mut text);
        }
        text
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Most time a signal may take to end a blocked run: the promise is a second; this leaves
/// room for a loaded machine, and the run it guards against never ends at all.
const SIGNAL_LIMIT: Duration = Duration::from_secs(5);

#[test]
fn a_signal_ends_a_run_blocked_opening_a_fifo_nobody_reads() {
    let dir = temp_dir();
    let d = dir.path();
    small_tree(d);
    let fifo = d.join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        let mut run = Live::start(&["hash", "-o", "fifo", "data"], d, Stdio::null());
        std::thread::sleep(Duration::from_millis(300));
        run.signal(signal);
        let (status, _) = run.wait(SIGNAL_LIMIT, "a signal");
        assert_eq!(
            status.signal(),
            Some(signal),
            "{status:?}: {}",
            run.stderr()
        );
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    }
    let leftovers: Vec<_> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with(".sumpool-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_signal_ends_a_run_blocked_writing_to_a_full_pipe() {
    let dir = temp_dir();
    let d = dir.path();
    // About 300 kB of output: far more than a pipe holds.
    for i in 0..3000 {
        write_file(
            d,
            format!("t/d{}/f{i:05}", i % 30).as_bytes(),
            &[i as u8; 8],
        );
    }
    // A pipe whose reader never reads: the read end stays open here.
    let mut fds = [0; 2];
    // SAFETY: pipe fills the two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the write end is handed to the child, which owns it from here on.
    let write_end =
        unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fds[1]) };
    let mut run = Live::start(&["hash", "-j", "2", "t"], d, Stdio::from(write_end));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(run.child.try_wait().unwrap().is_none(), "it did not block");
    run.signal(libc::SIGTERM);
    let (status, _) = run.wait(SIGNAL_LIMIT, "SIGTERM");
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{}", run.stderr());
    // SAFETY: closing the read end this test kept.
    unsafe {
        libc::close(fds[0]);
    }
}

/// Runs `hash -o data/SUMS data fifo` with a writer on `fifo` that never writes, so that the
/// run waits on it with the temporary manifest open, then sends `signal`.
fn signal_while_writing(d: &Path, signal: i32) -> ExitStatus {
    let fifo = d.join("fifo");
    if !fifo.exists() {
        assert!(
            Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
    }
    // A writer that holds the FIFO open and writes nothing.
    let mut holder = Command::new("sh")
        .args(["-c", "exec 3>fifo; sleep 30"])
        .current_dir(d)
        .spawn()
        .unwrap();
    let mut run = Live::start(
        &["hash", "-o", "data/SUMS", "data", "fifo"],
        d,
        Stdio::null(),
    );
    std::thread::sleep(Duration::from_millis(400));
    run.signal(signal);
    let (status, _) = run.wait(SIGNAL_LIMIT, "a signal");
    let _ = holder.kill();
    let _ = holder.wait();
    status
}

fn temporary_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            found.extend(temporary_files(&path));
        } else if entry.file_name().to_string_lossy().starts_with(".sumpool-") {
            found.push(path);
        }
    }
    found
}

#[test]
fn signals_that_end_a_run_remove_its_temporary_file_and_a_kill_leaves_nothing_to_hash() {
    let dir = temp_dir();
    let d = dir.path();
    small_tree(d);
    for signal in [libc::SIGHUP, libc::SIGALRM, libc::SIGUSR1, libc::SIGTERM] {
        let status = signal_while_writing(d, signal);
        assert_eq!(status.signal(), Some(signal), "{status:?}");
        assert!(temporary_files(d).is_empty(), "{:?}", temporary_files(d));
        assert!(!d.join("data/SUMS").exists());
    }
    let status = signal_while_writing(d, libc::SIGKILL);
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    // Whatever a killed run left, the next manifest lists the tree's files and nothing else.
    fs::remove_file(d.join("fifo")).unwrap();
    Cmd::sumpool()
        .args(["hash", "-o", "data/SUMS", "data"])
        .dir(d)
        .run()
        .code(0);
    let want = reference(
        d,
        &[
            "data/a/f1",
            "data/a/f2",
            "data/a/f3",
            "data/b/f1",
            "data/b/f2",
            "data/b/f3",
        ],
    );
    assert_eq!(fs::read(d.join("data/SUMS")).unwrap(), want);
}

#[test]
fn leftover_temporary_files_are_never_hashed_and_are_cleaned_up() {
    let dir = temp_dir();
    let d = dir.path();
    small_tree(d);
    // As a run killed outright on a file system without O_TMPFILE leaves it.
    let stale = d.join("data/.sumpool-Ab12Cd.tmp");
    fs::write(&stale, b"half a manifest").unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let all = [
        "data/a/f1",
        "data/a/f2",
        "data/a/f3",
        "data/b/f1",
        "data/b/f2",
        "data/b/f3",
    ];
    // A plain run says so and does not hash it.
    Cmd::sumpool()
        .args(["hash", "data"])
        .dir(d)
        .run()
        .code(0)
        .stdout_is(&reference(d, &all))
        .stderr_has("sumpool: data/.sumpool-Ab12Cd.tmp: not hashed: a temporary file of sumpool");
    // A file that only looks like one (another length) is hashed as any file.
    write_file(d, b"data/.sumpool-notours.tmp", b"mine");
    let mine = Cmd::sumpool().args(["hash", "data"]).dir(d).run();
    assert!(
        String::from_utf8_lossy(&mine.stdout).contains("data/.sumpool-notours.tmp"),
        "{}",
        mine.describe()
    );
    fs::remove_file(d.join("data/.sumpool-notours.tmp")).unwrap();
    // A run writing into that directory removes it.
    Cmd::sumpool()
        .args(["hash", "-o", "data/SUMS", "data"])
        .dir(d)
        .run()
        .code(0);
    assert!(!stale.exists());
    assert_eq!(fs::read(d.join("data/SUMS")).unwrap(), reference(d, &all));
}

#[test]
fn the_directory_is_synced_after_the_rename() {
    if Cmd::new("strace").arg("-V").run().code != Some(0) {
        assert!(
            std::env::var_os("SUMPOOL_REQUIRE_STRACE").is_none(),
            "SUMPOOL_REQUIRE_STRACE is set, but strace is missing"
        );
        eprintln!("skipped: no strace");
        return;
    }
    let dir = temp_dir();
    let d = dir.path();
    small_tree(d);
    for args in [&["-o", "SUMS", "data"][..], &["--update", "UPD", "data"]] {
        let run = Cmd::new("strace")
            .args([
                "-f",
                "-qq",
                "-e",
                "trace=openat,renameat,renameat2,rename,fsync",
                "-o",
                "trace",
            ])
            .arg(sumpool_bin())
            .arg("hash")
            .args(args)
            .dir(d)
            .run();
        run.code(0);
        let trace = fs::read_to_string(d.join("trace")).unwrap();
        // The rename into the directory's descriptor, then a sync of that descriptor.
        let lines: Vec<&str> = trace.lines().collect();
        let renamed = lines
            .iter()
            .position(|l| l.contains("rename") && l.contains(&format!("\"{}\"", args[1])))
            .unwrap_or_else(|| panic!("no rename:\n{trace}"));
        let dir_fd = lines[renamed]
            .split("rename")
            .nth(1)
            .and_then(|rest| rest.split(['(', ',']).nth(1))
            .map(|fd| fd.trim().to_string())
            .unwrap_or_else(|| panic!("no directory descriptor in {}", lines[renamed]));
        let synced = lines[renamed..]
            .iter()
            .any(|l| l.contains(&format!("fsync({dir_fd})")));
        assert!(
            synced,
            "the directory is not synced after the rename:\n{trace}"
        );
    }
}
