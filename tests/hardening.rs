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

use util::{Cmd, is_root, pseudo_random, sha256_hex, sumpool_bin, temp_dir, write_file};

/// A small tree `data/{a,b}/f{1,2,3}` of distinct contents.
fn small_tree(dir: &Path) {
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
fn reference(dir: &Path, names: &[&str]) -> Vec<u8> {
    let run = Cmd::new("sha256sum").args(names).dir(dir).run();
    run.code(0);
    run.stdout
}

/// Makes a device node (root only).
fn mknod(path: &Path, kind: libc::mode_t, major: u32, minor: u32) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path; mknod has no other preconditions.
    let made = unsafe { libc::mknod(c.as_ptr(), kind | 0o666, libc::makedev(major, minor)) };
    assert_eq!(made, 0, "mknod {}", path.display());
    // Past the umask, as `mknod -m 666` makes it.
    fs::set_permissions(path, fs::Permissions::from_mode(0o666)).unwrap();
}

fn skip_unless_root(what: &str) -> bool {
    if is_root() {
        return false;
    }
    eprintln!("skipped: {what} needs root");
    true
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

#[test]
fn update_refuses_a_file_that_is_not_a_manifest() {
    let dir = temp_dir();
    let d = dir.path();
    small_tree(d);
    // A text that quotes a few checksum lines among its prose is still no manifest.
    let quoted = reference(d, &["data/a/f1"]);
    let mut notes = b"# Notes\n\nHow we verify releases:\n\n".to_vec();
    notes.extend_from_slice(&quoted);
    notes.extend_from_slice(b"\nThat is all.\n");
    fs::write(d.join("notes.md"), &notes).unwrap();
    let refused = Cmd::sumpool()
        .args(["hash", "--update", "notes.md", "data"])
        .dir(d)
        .run();
    refused
        .code(2)
        .stderr_has("sumpool: notes.md: not a sha256 manifest: 2 lines are neither");
    assert_eq!(fs::read(d.join("notes.md")).unwrap(), notes);
    // A manifest of another algorithm is not replaced by one of this algorithm.
    let sha512 = Cmd::new("sha512sum")
        .args(["data/a/f1"])
        .dir(d)
        .run()
        .stdout;
    fs::write(d.join("SHA512SUMS"), &sha512).unwrap();
    Cmd::sumpool()
        .args(["hash", "--update", "SHA512SUMS", "data"])
        .dir(d)
        .run()
        .code(2);
    assert_eq!(fs::read(d.join("SHA512SUMS")).unwrap(), sha512);
    // A new name, or an empty file, starts a manifest.
    fs::write(d.join("empty"), b"").unwrap();
    for name in ["empty", "new"] {
        Cmd::sumpool()
            .args(["hash", "--update", name, "data"])
            .dir(d)
            .run()
            .code(0);
        Cmd::new("sha256sum")
            .args(["-c", "--strict", "--quiet", name])
            .dir(d)
            .run()
            .code(0);
    }
}

/// The digest lines of a manifest (state lines left out), as text.
fn digest_lines(manifest: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(manifest)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The lines of a manifest for names under `prefix`, state lines included.
fn entries_under(manifest: &[u8], prefix: &str) -> Vec<String> {
    let lines: Vec<String> = String::from_utf8_lossy(manifest)
        .lines()
        .map(str::to_string)
        .collect();
    let mut kept = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !line.starts_with('#') && line.contains(&format!("  {prefix}")) {
            if i > 0 && lines[i - 1].starts_with('#') {
                kept.push(lines[i - 1].clone());
            }
            kept.push(line.clone());
        }
    }
    kept
}

#[test]
fn an_update_of_part_of_the_tree_keeps_the_rest_byte_for_byte() {
    let dir = temp_dir();
    let d = dir.path();
    small_tree(d);
    // Times safely in the past, so every line is trusted.
    let old = std::time::SystemTime::now() - Duration::from_secs(600);
    for f in util::walk_order(&d.join("data")) {
        fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let update = |args: &[&str]| {
        let run = Cmd::sumpool()
            .args(["hash", "--update", "M", "--format", "json"])
            .args(args)
            .dir(d)
            .run();
        run.code(0);
        run
    };
    update(&["data"]);
    let full = fs::read(d.join("M")).unwrap();
    let b_lines = entries_under(&full, "data/b/");
    assert_eq!(b_lines.len(), 6, "{}", String::from_utf8_lossy(&full));
    // Over a sub-path, with an exclude, with a shard: what was not looked at stays.
    for (args, b_untouched) in [
        (&["data/a"][..], true),
        (&["--exclude", "b", "data"], true),
        (&["--exclude", "f2", "data"], false),
        (&["--shard", "1/3", "data"], false),
        (&["--shard", "3/3", "data"], false),
    ] {
        let before = fs::read(d.join("M")).unwrap();
        let run = update(args);
        let now = fs::read(d.join("M")).unwrap();
        if b_untouched {
            // Not looked at: byte for byte, state lines included.
            assert_eq!(
                entries_under(&now, "data/b/"),
                entries_under(&before, "data/b/"),
                "{args:?}"
            );
        }
        assert_eq!(
            digest_lines(&now),
            digest_lines(&full),
            "{args:?}: lines lost or gained"
        );
        let summary = util::json_lines(&run).pop().unwrap();
        let kept = summary["out_of_scope"].as_u64().unwrap();
        assert!(kept > 0, "{args:?}: {summary}");
        assert_eq!(summary["dropped"], 0, "{args:?}");
    }
    assert_eq!(
        digest_lines(
            entries_under(&fs::read(d.join("M")).unwrap(), "data/b/")
                .join("\n")
                .as_bytes()
        ),
        digest_lines(b_lines.join("\n").as_bytes())
    );
    // Spelled with ./ it matches; spelled from the root it is refused; nothing doubles.
    update(&["./data/a"]);
    assert_eq!(
        digest_lines(&fs::read(d.join("M")).unwrap()),
        digest_lines(&full)
    );
    let absolute = d.join("data").display().to_string();
    Cmd::sumpool()
        .args(["hash", "--update", "M", &absolute])
        .dir(d)
        .run()
        .code(2)
        .stderr_has("the manifest names this data");
    assert_eq!(
        digest_lines(&fs::read(d.join("M")).unwrap()),
        digest_lines(&full)
    );
    // A file that is gone is dropped, and only that one.
    fs::remove_file(d.join("data/b/f2")).unwrap();
    let run = update(&["data/b"]);
    let summary = util::json_lines(&run).pop().unwrap();
    assert_eq!(summary["dropped"], 1, "{summary}");
    let now = digest_lines(&fs::read(d.join("M")).unwrap());
    assert_eq!(now.len(), 5);
    assert!(!now.iter().any(|l| l.ends_with("data/b/f2")));
    // --prune: the manifest describes exactly this run.
    let pruned = Cmd::sumpool()
        .args(["hash", "--update", "M", "--prune", "-v", "data/a"])
        .dir(d)
        .run();
    pruned.code(0).stderr_has("; 0 dropped (gone), 2 pruned\n");
    let now = digest_lines(&fs::read(d.join("M")).unwrap());
    assert_eq!(now.len(), 3);
    assert!(now.iter().all(|l| l.contains("  data/a/")));
}

#[test]
fn an_unreadable_file_keeps_its_old_line() {
    if skip_unless_root("a file root cannot read") {
        return;
    }
    let dir = temp_dir();
    let d = dir.path();
    small_tree(d);
    let update = || {
        Cmd::sumpool()
            .args(["hash", "--update", "M", "data"])
            .dir(d)
            .unprivileged()
            .run()
    };
    fs::set_permissions(d, fs::Permissions::from_mode(0o777)).unwrap();
    update().code(0);
    let before = fs::read(d.join("M")).unwrap();
    fs::set_permissions(d.join("data/b/f1"), fs::Permissions::from_mode(0o000)).unwrap();
    let run = update();
    run.code(1)
        .stderr_has("sumpool: data/b/f1: Permission denied\n");
    assert_eq!(
        entries_under(&fs::read(d.join("M")).unwrap(), "data/b/f1"),
        entries_under(&before, "data/b/f1")
    );
}

#[test]
fn merge_refuses_overlapping_stale_parts_and_names_missing_shards() {
    let dir = temp_dir();
    let d = dir.path();
    for i in 0..20 {
        write_file(
            d,
            format!("data/f{i:02}").as_bytes(),
            &pseudo_random(100, i),
        );
    }
    let shard = |k: u32, n: u32, out: &str| {
        Cmd::sumpool()
            .args(["hash", "--shard", &format!("{k}/{n}"), "-o", out, "data"])
            .dir(d)
            .run()
            .code(0);
    };
    for k in 1..=4 {
        shard(k, 4, &format!("part-old-{k}"));
    }
    for k in 1..=3 {
        shard(k, 3, &format!("part-{k}"));
    }
    let single = Cmd::sumpool().args(["hash", "data"]).dir(d).run().stdout;
    // A complete set merges to the single run's bytes.
    Cmd::sumpool()
        .args(["merge", "part-3", "part-1", "part-2"])
        .dir(d)
        .run()
        .code(0)
        .stdout_is(&single);
    // Stale parts of another split beside the new ones.
    let mixed = Cmd::sumpool()
        .args([
            "merge",
            "part-old-1",
            "part-old-2",
            "part-old-3",
            "part-old-4",
            "part-1",
            "part-2",
            "part-3",
        ])
        .dir(d)
        .run();
    mixed.code(1).stderr_has("parts of different splits");
    // Without their shard lines, the overlap itself is named, with both inputs.
    for k in 1..=4 {
        let name = format!("part-old-{k}");
        let text = fs::read_to_string(d.join(&name)).unwrap();
        let body: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
        fs::write(d.join(format!("bare-old-{k}")), body).unwrap();
    }
    let overlap = Cmd::sumpool()
        .args([
            "merge",
            "bare-old-1",
            "bare-old-2",
            "bare-old-3",
            "bare-old-4",
            "part-1",
        ])
        .dir(d)
        .run();
    overlap.code(1).stderr_has("both list");
    let text = overlap.stderr_text();
    assert!(
        text.contains("part-1") && text.contains("bare-old-"),
        "{text}"
    );
    // A shard missing, or given twice.
    Cmd::sumpool()
        .args(["merge", "part-1", "part-3"])
        .dir(d)
        .run()
        .code(1)
        .stderr_has("missing shard 2/3");
    Cmd::sumpool()
        .args(["merge", "part-1", "part-2", "part-2", "part-3"])
        .dir(d)
        .run()
        .code(1)
        .stderr_has("shard 2/3 is given twice: part-2 and part-2");
    // A line per algorithm for each file is no overlap; the same lines twice are.
    let multi = |k: u32, out: &str| {
        Cmd::sumpool()
            .args([
                "hash",
                "-a",
                "sha256,md5",
                "--shard",
                &format!("{k}/2"),
                "-o",
                out,
                "data",
            ])
            .dir(d)
            .run()
            .code(0);
    };
    multi(1, "multi-1");
    multi(2, "multi-2");
    let single = Cmd::sumpool()
        .args(["hash", "-a", "sha256,md5", "data"])
        .dir(d)
        .run()
        .stdout;
    Cmd::sumpool()
        .args(["merge", "multi-2", "multi-1"])
        .dir(d)
        .run()
        .code(0)
        .stdout_is(&single);
    let text = fs::read_to_string(d.join("multi-1")).unwrap();
    let body: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    fs::write(d.join("multi-bare"), body).unwrap();
    Cmd::sumpool()
        .args(["merge", "multi-bare", "multi-1", "multi-2"])
        .dir(d)
        .run()
        .code(1)
        .stderr_has("both list");
}

#[test]
fn a_write_through_a_shared_map_is_described_truthfully() {
    let dir = temp_dir();
    let d = dir.path();
    let file = write_file(d, b"data/mapped", &pseudo_random(8192, 3));
    let f = fs::File::options()
        .read(true)
        .write(true)
        .open(&file)
        .unwrap();
    // SAFETY: a shared writable mapping of a file this test owns, 8192 bytes long, unmapped
    // at the end of the test, before the file is closed.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            8192,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            std::os::fd::AsRawFd::as_raw_fd(&f),
            0,
        )
    };
    assert_ne!(map, libc::MAP_FAILED);
    // The first write through the map dirties the page and stamps the times; the update
    // records them once they are old enough to be trusted (two seconds).
    // SAFETY: within the mapping.
    unsafe { *(map as *mut u8) ^= 0xff };
    std::thread::sleep(Duration::from_millis(2500));
    Cmd::sumpool()
        .args(["hash", "--update", "M", "data"])
        .dir(d)
        .run()
        .code(0);
    // A second write to the page, still dirty, moves neither size nor times.
    let before = fs::metadata(&file).unwrap();
    // SAFETY: within the mapping.
    unsafe { *(map as *mut u8).add(100) ^= 0xff };
    let after = fs::metadata(&file).unwrap();
    let moved = (
        after.mtime(),
        after.mtime_nsec(),
        after.ctime(),
        after.ctime_nsec(),
    ) != (
        before.mtime(),
        before.mtime_nsec(),
        before.ctime(),
        before.ctime_nsec(),
    );
    let audit = Cmd::sumpool().args(["audit", "M", "data"]).dir(d).run();
    // SAFETY: unmapping the mapping made above.
    unsafe { libc::munmap(map, 8192) };
    if moved {
        // This kernel stamped the second write too (the page was written back between):
        // then it is a plain modification, and the case cannot be made here.
        eprintln!("skipped: the kernel moved the times of the second mapped write");
        return;
    }
    audit.code(3);
    assert!(
        audit
            .stderr_text()
            .contains("bit rot, or a write that bypassed the times"),
        "{}",
        audit.describe()
    );
}

#[test]
fn a_thread_that_cannot_start_ends_the_run_with_status_2_never_a_hang() {
    if skip_unless_root("setpriv and prlimit as another user") {
        return;
    }
    let dir = temp_dir();
    let d = dir.path();
    small_tree(d);
    fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
    let want = Cmd::sumpool().args(["hash", "data"]).dir(d).run().stdout;
    let mut failed = 0;
    // Threads of the user `nobody` at most: from too few for the pool to enough for all.
    for nproc in 1..=12 {
        for command in [
            &["hash", "-j", "1", "--io-threads", "2", "data"][..],
            &["hash", "data"],
        ] {
            let run = Cmd::new("prlimit")
                .arg(format!("--nproc={nproc}"))
                .arg("--")
                .arg(sumpool_bin())
                .args(command)
                .dir(d)
                .unprivileged()
                .run();
            match run.code {
                Some(0) => assert_eq!(run.stdout, want, "{}", run.describe()),
                Some(2) => {
                    run.stderr_has("cannot start");
                    failed += 1;
                }
                _ => panic!("neither done nor a clear failure\n{}", run.describe()),
            }
        }
    }
    assert!(
        failed > 0,
        "no limit was low enough: the test proved nothing"
    );
}

#[test]
fn low_limits_of_open_files_still_hash_every_file() {
    let dir = temp_dir();
    let d = dir.path();
    for k in 0..500 {
        for f in 0..4 {
            let data = pseudo_random(2000 + f * 7, (k * 4 + f) as u64);
            write_file(d, format!("t/d{k:03}/f{f}").as_bytes(), &data);
        }
    }
    // A few large files too (streamed in chunks, each holding a descriptor a while).
    for i in 0..6 {
        write_file(
            d,
            format!("t/large{i}").as_bytes(),
            &pseudo_random(3 << 20, 90 + i),
        );
    }
    let files: Vec<String> = util::walk_order(&d.join("t"))
        .iter()
        .map(|p| p.strip_prefix(d).unwrap().display().to_string())
        .collect();
    let mut want = Vec::new();
    for name in &files {
        want.extend_from_slice(
            format!("{}  {name}\n", sha256_hex(&fs::read(d.join(name)).unwrap())).as_bytes(),
        );
    }
    for limit in [128, 64, 32, 16] {
        let run = Cmd::new("prlimit")
            .arg(format!("--nofile={limit}"))
            .arg("--")
            .arg(sumpool_bin())
            .args(["hash", "t"])
            .dir(d)
            .run();
        run.code(0).stderr_empty();
        assert!(run.stdout == want, "limit {limit}: output differs");
    }
    fs::write(d.join("SUMS"), &want).unwrap();
    for args in [
        &["check", "--quiet", "SUMS"][..],
        &["hash", "--update", "UPD", "t"],
    ] {
        Cmd::new("prlimit")
            .arg("--nofile=32")
            .arg("--")
            .arg(sumpool_bin())
            .args(args)
            .dir(d)
            .run()
            .code(0)
            .stderr_empty();
    }
}
