//! Slow and stuck storage, through a FUSE passthrough that delays every open and read
//! (`benches/fuse_delay.py`) and can make the reads of chosen files hang, as a dead NFS
//! server or a stuck FUSE daemon does.
//!
//! - Lines finished before a stuck file reach a pipe while the run waits on it.
//! - SIGINT and SIGTERM end the run at once even then: the output ends with whole lines, and
//!   the process dies of the signal as soon as the kernel lets go of the stuck read.
//! - `--stall-timeout` reports each stuck file as timed out and finishes the rest, whatever
//!   the file's position in the walk and its size (hashed by its reader, read whole, or
//!   streamed in chunks).
//! - Through slow storage, the output is byte-identical to the digests of the sha2 crate at
//!   any number of readers and workers.
//!
//! Needs root, /dev/fuse, libfuse3 and the Python package mfusepy. CI installs them and sets
//! SUMPOOL_REQUIRE_FUSE=1, so there the tests fail rather than skip when one is missing.

mod util;

use std::fs;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use util::{
    Cmd, cached_bytes, drop_caches, is_root, pseudo_random, sha256_hex, sumpool_bin, temp_dir,
    write_file,
};

/// Whether the tests can run here; `Err` says why not.
fn can_run() -> Result<(), String> {
    if !is_root() {
        return Err("not root".into());
    }
    if !Path::new("/dev/fuse").exists() {
        return Err("no /dev/fuse".into());
    }
    let import = Cmd::new("python3").args(["-c", "import mfusepy"]).run();
    if import.code != Some(0) {
        return Err(format!(
            "python3 cannot import mfusepy (pip install mfusepy):\n{}",
            import.stderr_text()
        ));
    }
    Ok(())
}

/// `true` if the test may go on; `false` (after saying why) if it must skip.
fn fuse_available() -> bool {
    match can_run() {
        Ok(()) => true,
        Err(why) => {
            assert!(
                std::env::var_os("SUMPOOL_REQUIRE_FUSE").is_none(),
                "SUMPOOL_REQUIRE_FUSE is set, but the test cannot run: {why}"
            );
            eprintln!("skipped: {why}");
            false
        }
    }
}

/// The passthrough, mounted; released and unmounted when dropped (even by a failing test).
struct Fuse {
    daemon: Child,
    mnt: PathBuf,
    release: PathBuf,
}

impl Fuse {
    /// Serves `source` at `mnt` with `delay_ms` on every open and every read; reads of files
    /// matching a glob of `hang` never return until [`Fuse::release`].
    fn mount(source: &Path, mnt: &Path, delay_ms: u32, hang: &[&str]) -> Fuse {
        Fuse::mount_with(source, mnt, delay_ms, hang, &[])
    }

    /// [`Fuse::mount`], with more options of `fuse_delay.py`.
    fn mount_with(source: &Path, mnt: &Path, delay_ms: u32, hang: &[&str], more: &[&str]) -> Fuse {
        fs::create_dir_all(mnt).unwrap();
        let scratch = mnt.with_extension("control");
        fs::create_dir_all(&scratch).unwrap();
        let ready = scratch.join("ready");
        let release = scratch.join("release");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/fuse_delay.py");
        let mut command = Command::new("python3");
        command
            .arg(script)
            .arg(source)
            .arg(mnt)
            .args(["--open-ms", &delay_ms.to_string()])
            .args(["--read-ms", &delay_ms.to_string()])
            .arg("--release")
            .arg(&release)
            .arg("--ready")
            .arg(&ready)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for glob in hang {
            command.args(["--hang", glob]);
        }
        command.args(more);
        let daemon = command.spawn().expect("start fuse_delay.py");
        let fuse = Fuse {
            daemon,
            mnt: mnt.to_path_buf(),
            release,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ready.exists() {
            assert!(
                Instant::now() < deadline,
                "the FUSE passthrough did not mount"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        fuse
    }

    /// Lets every hung read fail, so that what waits on it can end.
    fn release(&self) {
        fs::write(&self.release, b"").unwrap();
    }
}

impl Drop for Fuse {
    fn drop(&mut self) {
        self.release();
        // libfuse unmounts on SIGTERM once no request is pending.
        let _ = Command::new("kill")
            .arg(self.daemon.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.daemon.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mnt)
            .stderr(Stdio::null())
            .status();
    }
}

/// A stream of a child read as it comes: the bytes so far, and whether it ended.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<(Vec<u8>, bool)>>);

impl Captured {
    fn follow(mut from: impl Read + Send + 'static) -> (Captured, JoinHandle<()>) {
        let captured = Captured::default();
        let into = captured.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => into.0.lock().unwrap().0.extend_from_slice(&buf[..n]),
                }
            }
            into.0.lock().unwrap().1 = true;
        });
        (captured, thread)
    }

    fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().0.clone()
    }

    fn ended(&self) -> bool {
        self.0.lock().unwrap().1
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }
}

/// sumpool running with its output in pipes, read as it comes.
struct Live {
    child: Child,
    stdout: Captured,
    stderr: Captured,
}

impl Live {
    fn start(args: &[&str], dir: &Path) -> Live {
        let mut child = Command::new(sumpool_bin())
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sumpool");
        let (stdout, _) = Captured::follow(child.stdout.take().unwrap());
        let (stderr, _) = Captured::follow(child.stderr.take().unwrap());
        Live {
            child,
            stdout,
            stderr,
        }
    }

    fn describe(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout.text(),
            self.stderr.text()
        )
    }

    /// Waits until `done` holds, at most `limit`; how long it took.
    fn wait_for(&self, limit: Duration, what: &str, done: impl Fn(&Live) -> bool) -> Duration {
        let start = Instant::now();
        while !done(self) {
            assert!(
                start.elapsed() < limit,
                "{what}: not within {limit:?}\n{}",
                self.describe()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        start.elapsed()
    }

    /// Waits for the process to end (the stuck reads released first), at most `limit`.
    fn exit(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "sumpool did not exit\n{}",
                self.describe()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The files of a test tree: name and content.
fn tree_files(names: &[(&str, usize)]) -> Vec<(String, Vec<u8>)> {
    names
        .iter()
        .enumerate()
        .map(|(i, (name, len))| (name.to_string(), pseudo_random(*len, 1000 + i as u64)))
        .collect()
}

/// `{digest}  {prefix}/{name}\n` for each file, computed with sha2.
fn expected_lines<'a>(prefix: &str, files: impl Iterator<Item = &'a (String, Vec<u8>)>) -> String {
    files
        .map(|(name, data)| format!("{}  {prefix}/{name}\n", sha256_hex(data)))
        .collect()
}

/// Sizes that take every path through the readers: hashed by the reader (under 1 KiB), read
/// whole (up to 1 MiB), streamed in chunks (larger).
const SHAPES: [usize; 6] = [0, 100, 1023, 16 << 10, 1 << 20, (3 << 20) + 17];

#[test]
fn a_stuck_read_holds_back_neither_the_lines_before_it_nor_a_signal() {
    if !fuse_available() {
        return;
    }
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let dir = temp_dir();
        let d = dir.path();
        // 80 files of every shape; the 41st one's reads hang.
        let names: Vec<(String, usize)> = (0..80)
            .map(|i| (format!("f{i:03}"), SHAPES[i % SHAPES.len()]))
            .collect();
        let named: Vec<(&str, usize)> = names.iter().map(|(n, l)| (n.as_str(), *l)).collect();
        let files = tree_files(&named);
        for (name, data) in &files {
            write_file(&d.join("src"), name.as_bytes(), data);
        }
        let fuse = Fuse::mount(&d.join("src"), &d.join("mnt"), 1, &["f040"]);
        let before = expected_lines("mnt", files[..40].iter());

        let mut live = Live::start(&["hash", "mnt"], d);
        // The lines before the stuck file reach the pipe while the run waits on it.
        live.wait_for(
            Duration::from_secs(20),
            "lines before the stuck file",
            |live| live.stdout.bytes().len() >= before.len(),
        );
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(live.stdout.text(), before, "{}", live.describe());

        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(live.child.id() as i32, signal) };
        let took = live.wait_for(Duration::from_secs(5), "the end of the output", |live| {
            live.stdout.ended() && live.stderr.ended()
        });
        eprintln!("signal {signal}: output ended {took:?} after it");
        assert_eq!(live.stdout.text(), before, "{}", live.describe());

        // The process itself ends once the kernel lets go of the stuck read.
        fuse.release();
        let status = live.exit(Duration::from_secs(20));
        assert_eq!(
            status.signal(),
            Some(signal),
            "{status:?}\n{}",
            live.describe()
        );
    }
}

#[test]
fn a_statfs_that_never_returns_holds_back_neither_other_files_nor_a_signal() {
    if !fuse_available() {
        return;
    }
    // The device policy's statfs, on the calling thread before the run starts, is the one
    // a run asks (mapping was decided by a statfs per large file, under a lock, once; files
    // are read, not mapped, now).
    for (hang_after, first_lines) in [(0, 0)] {
        let dir = temp_dir();
        let d = dir.path();
        // Small files, then a large one (whose file system is asked whether it may be
        // mapped), then more small ones.
        let mut named: Vec<(String, usize)> = (0..10).map(|i| (format!("a{i:02}"), 500)).collect();
        named.push(("m-large".into(), (3 << 20) + 5));
        named.extend((0..10).map(|i| (format!("z{i:02}"), 500)));
        let named: Vec<(&str, usize)> = named.iter().map(|(n, l)| (n.as_str(), *l)).collect();
        let files = tree_files(&named);
        for (name, data) in &files {
            write_file(&d.join("src"), name.as_bytes(), data);
        }
        let after = hang_after.to_string();
        let fuse = Fuse::mount_with(
            &d.join("src"),
            &d.join("mnt"),
            0,
            &[],
            &["--hang-statfs-after", &after],
        );
        let mut live = Live::start(&["hash", "--io-threads", "4", "mnt"], d);
        let before = expected_lines("mnt", files[..first_lines].iter());
        live.wait_for(Duration::from_secs(20), "the lines before", |live| {
            live.stdout.bytes().len() >= before.len()
        });
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(live.stdout.text(), before, "{}", live.describe());
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(live.child.id() as i32, libc::SIGINT) };
        // A thread in a FUSE request its daemon holds cannot be killed (the kernel waits
        // it out), so the process lives on; its output must end at once all the same.
        let took = live.wait_for(Duration::from_secs(5), "the end of the output", |live| {
            live.stdout.ended() && live.stderr.ended()
        });
        eprintln!("hang after {hang_after}: output ended {took:?} after SIGINT");
        assert_eq!(live.stdout.text(), before, "{}", live.describe());
        fuse.release();
        let status = live.exit(Duration::from_secs(20));
        assert_eq!(
            status.signal(),
            Some(libc::SIGINT),
            "{status:?}\n{}",
            live.describe()
        );
        drop(fuse);
    }
}

#[test]
fn stall_timeout_reports_stuck_files_wherever_they_are_and_finishes_the_rest() {
    if !fuse_available() {
        return;
    }
    let dir = temp_dir();
    let d = dir.path();
    // Stuck files first, in the middle and last in walk order, one of each way a reader
    // treats a file; and files of every shape between them.
    let mut named: Vec<(String, usize)> = vec![
        ("a-stuck-tiny".into(), 100),
        ("m-stuck-large".into(), (3 << 20) + 17),
        ("z-stuck-whole".into(), 16 << 10),
    ];
    for i in 0..36 {
        let prefix = ["b", "n", "y"][i % 3];
        named.push((format!("{prefix}-{i:02}"), SHAPES[i % SHAPES.len()]));
    }
    named.sort();
    let refs: Vec<(&str, usize)> = named.iter().map(|(n, l)| (n.as_str(), *l)).collect();
    let files = tree_files(&refs);
    for (name, data) in &files {
        write_file(&d.join("src"), name.as_bytes(), data);
    }
    let fine = expected_lines("mnt", files.iter().filter(|(n, _)| !n.contains("stuck")));

    for readers in ["1", "2", "64"] {
        let mnt = d.join(format!("mnt-{readers}"));
        let fuse = Fuse::mount(&d.join("src"), &mnt, 1, &["*stuck*"]);
        let name = mnt.file_name().unwrap().to_string_lossy().into_owned();
        let args = [
            "hash",
            "--stall-timeout",
            "0.5",
            "--io-threads",
            readers,
            &name,
        ];
        let mut live = Live::start(&args, d);
        live.wait_for(Duration::from_secs(30), "the end of the output", |live| {
            live.stdout.ended() && live.stderr.ended()
        });
        let want = fine.replace("  mnt/", &format!("  {name}/"));
        assert_eq!(live.stdout.text(), want, "--io-threads {readers}");
        let stderr = live.stderr.text();
        for stuck in ["a-stuck-tiny", "m-stuck-large", "z-stuck-whole"] {
            let line =
                format!("sumpool: {name}/{stuck}: timed out: no progress for the stall timeout\n");
            assert!(
                stderr.contains(&line),
                "--io-threads {readers}: {line}\n{stderr}"
            );
        }
        assert!(
            stderr.contains("3 of 39 files could not be hashed"),
            "--io-threads {readers}:\n{stderr}"
        );
        fuse.release();
        let status = live.exit(Duration::from_secs(20));
        assert_eq!(
            status.code(),
            Some(1),
            "--io-threads {readers}\n{}",
            live.describe()
        );
    }
}

#[test]
fn slow_storage_gives_the_digests_of_sha2_at_any_number_of_readers_and_workers() {
    if !fuse_available() {
        return;
    }
    let dir = temp_dir();
    let d = dir.path();
    let names: Vec<(String, usize)> = (0..60)
        .map(|i| {
            (
                format!("d{}/f{i:02}", i % 4),
                SHAPES[i % SHAPES.len()] + i % 3,
            )
        })
        .collect();
    let refs: Vec<(&str, usize)> = names.iter().map(|(n, l)| (n.as_str(), *l)).collect();
    let mut files = tree_files(&refs);
    for (name, data) in &files {
        write_file(&d.join("src"), name.as_bytes(), data);
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let _fuse = Fuse::mount(&d.join("src"), &d.join("mnt"), 3, &[]);
    let want = expected_lines("mnt", files.iter());
    for (jobs, readers) in [("1", "1"), ("2", "1"), ("1", "8"), ("2", "64")] {
        let run = Cmd::sumpool()
            .args(["hash", "-j", jobs, "--io-threads", readers, "mnt"])
            .dir(d)
            .run();
        run.code(0).stderr_empty();
        assert_eq!(
            String::from_utf8_lossy(&run.stdout),
            want,
            "-j {jobs} --io-threads {readers}"
        );
    }
    // The policy names the file system it chose for.
    let verbose = Cmd::sumpool().args(["hash", "-v", "mnt"]).dir(d).run();
    verbose
        .code(0)
        .stderr_has("sumpool: I/O: ")
        .stderr_has("FUSE");
}

/// `--nocache` where reads cannot ask the kernel to drop what they bring in (FUSE has no
/// `RWF_DONTCACHE`): sumpool learns which pages were cached and drops the others itself.
#[test]
fn nocache_on_storage_without_dontcache_drops_only_what_the_run_brought_in() {
    if !fuse_available() {
        return;
    }
    let dir = temp_dir();
    let d = dir.path();
    let mut names = Vec::new();
    for (i, size) in [3000, 200_000, 1 << 20, 3 << 20, 9 << 20]
        .iter()
        .cycle()
        .take(20)
        .enumerate()
    {
        let name = format!("f{i:02}");
        write_file(
            &d.join("src"),
            name.as_bytes(),
            &pseudo_random(*size, i as u64),
        );
        names.push(name);
    }
    let _fuse = Fuse::mount_with(&d.join("src"), &d.join("mnt"), 0, &[], &["--kernel-cache"]);
    let files: Vec<PathBuf> = names.iter().map(|n| d.join("mnt").join(n)).collect();
    let total: u64 = files.iter().map(|f| fs::metadata(f).unwrap().len()).sum();
    // The measure can fail: without --nocache, what is read stays cached.
    drop_caches();
    Cmd::sumpool().args(["hash", "mnt"]).dir(d).run().code(0);
    assert!(
        cached_bytes(&files) * 2 > total,
        "FUSE pages are not cached here"
    );
    drop_caches();
    Cmd::sumpool()
        .args(["hash", "--nocache", "mnt"])
        .dir(d)
        .run()
        .code(0);
    let left = cached_bytes(&files);
    assert!(left * 50 <= total, "{left} of {total} bytes still cached");
    drop_caches();
    let warm: Vec<PathBuf> = files.iter().step_by(2).cloned().collect();
    for f in &warm {
        fs::read(f).unwrap();
    }
    let before = cached_bytes(&warm);
    Cmd::sumpool()
        .args(["hash", "--nocache", "mnt"])
        .dir(d)
        .run()
        .code(0);
    let after = cached_bytes(&warm);
    assert!(after * 100 >= before * 98, "{after} of {before} bytes kept");
}
