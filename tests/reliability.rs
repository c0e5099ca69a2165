//! Hostile trees, faults and malformed lists: nothing lost, no hang, no crash.
//!
//! Every command runs under the timeout in `util`, so a hang fails the test instead of
//! stalling it.

mod util;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, PermissionsExt, symlink};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use util::{Cmd, Run, pseudo_random, sha256_hex, temp_dir, write_file};

/// Parses sumpool's (GNU) output lines into (name, digest), undoing GNU escaping. Written
/// here, independently of sumpool's own parser.
fn parse_lines(stdout: &[u8]) -> Vec<(Vec<u8>, String)> {
    let mut out = Vec::new();
    for line in stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let (escaped, line) = match line.strip_prefix(b"\\") {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        assert!(
            line.len() > 66 && &line[64..66] == b"  ",
            "malformed line {line:?}"
        );
        let digest = String::from_utf8(line[..64].to_vec()).expect("hex digest");
        let mut name = Vec::new();
        let mut bytes = line[66..].iter();
        while let Some(&b) = bytes.next() {
            if escaped && b == b'\\' {
                match bytes.next() {
                    Some(b'n') => name.push(b'\n'),
                    Some(b'r') => name.push(b'\r'),
                    Some(b'\\') => name.push(b'\\'),
                    other => panic!("bad escape {other:?} in {line:?}"),
                }
            } else {
                name.push(b);
            }
        }
        out.push((name, digest));
    }
    out
}

/// The numbers of the `-v` summary line:
/// (hashed, skipped symlinks, skipped special, excluded, failed).
fn verbose_counts(run: &Run) -> (u64, u64, u64, u64, u64) {
    let text = run.stderr_text();
    let line = text
        .lines()
        .find(|l| l.contains(" hashed, "))
        .unwrap_or_else(|| panic!("no -v summary\n{}", run.describe()));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .filter(|w| !w.is_empty() && !w.contains('.'))
        .filter_map(|w| w.parse().ok())
        .collect();
    // hashed, bytes, symlinks, special, excluded, failed (time and rate hold a '.').
    assert_eq!(numbers.len(), 6, "unexpected -v line {line:?}");
    (numbers[0], numbers[2], numbers[3], numbers[4], numbers[5])
}

/// Failure messages on stderr: every line but the WARNING summary and the -v lines.
fn failure_lines(run: &Run) -> Vec<String> {
    run.stderr_text()
        .lines()
        .filter(|l| {
            !l.starts_with("sumpool: WARNING:")
                && !l.contains(" hashed, ")
                && !l.starts_with("sumpool: I/O: ")
                && !l.starts_with("sumpool: algorithms: ")
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn nothing_is_lost_while_another_thread_changes_the_tree() {
    let dir = temp_dir();
    let root = dir.path().join("tree");
    let staging = dir.path().join("staging");
    fs::create_dir_all(root.join("churn")).unwrap();
    fs::create_dir_all(&staging).unwrap();
    let mut stable = HashMap::new();
    for i in 0..400 {
        let name = format!("tree/s{}/f{i:04}", i % 8);
        let content = format!("stable {i}");
        write_file(dir.path(), name.as_bytes(), content.as_bytes());
        stable.insert(name.into_bytes(), sha256_hex(content.as_bytes()));
    }

    // The churn: files appear (renamed in whole from outside the tree), are renamed inside
    // it, and are deleted; directories come and go too. A churn file's content is always
    // "churn K" for the K in its name.
    let stop = Arc::new(AtomicBool::new(false));
    let churner = {
        let (stop, root, staging) = (Arc::clone(&stop), root.clone(), staging.clone());
        std::thread::spawn(move || {
            let mut k = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let staged = staging.join(format!("t{k}"));
                fs::write(&staged, format!("churn {k}")).unwrap();
                let _ = fs::rename(&staged, root.join(format!("churn/a{k}")));
                let _ = fs::rename(
                    root.join(format!("churn/a{k}")),
                    root.join(format!("churn/b{k}")),
                );
                if k >= 20 {
                    let _ = fs::remove_file(root.join(format!("churn/b{}", k - 20)));
                }
                let sub = root.join(format!("churn/dir{}", k % 5));
                if k.is_multiple_of(2) {
                    let _ = fs::create_dir(&sub);
                    let _ = fs::rename(staging.join("x"), sub.join("x"));
                } else {
                    let _ = fs::remove_dir(&sub);
                }
                k += 1;
            }
        })
    };

    let churn_digest = |name: &[u8]| -> Option<String> {
        let base = Path::new(OsStr::from_bytes(name)).file_name()?.to_str()?;
        let k: u64 = base.get(1..)?.parse().ok()?;
        Some(sha256_hex(format!("churn {k}").as_bytes()))
    };
    for _ in 0..8 {
        let run = Cmd::sumpool()
            .args(["hash", "-v", "-j", "2", "tree"])
            .dir(dir.path())
            .run();
        let lines = parse_lines(&run.stdout);
        let mut seen_stable = 0;
        for (name, digest) in &lines {
            if let Some(want) = stable.get(name) {
                assert_eq!(
                    digest,
                    want,
                    "wrong digest for a stable file\n{}",
                    run.describe()
                );
                seen_stable += 1;
            } else {
                let want = churn_digest(name)
                    .unwrap_or_else(|| panic!("unexpected name {name:?}\n{}", run.describe()));
                assert_eq!(
                    *digest,
                    want,
                    "wrong digest for a churn file\n{}",
                    run.describe()
                );
            }
        }
        assert_eq!(
            seen_stable,
            stable.len(),
            "a stable file is missing\n{}",
            run.describe()
        );
        let failures = failure_lines(&run);
        for failure in &failures {
            assert!(
                failure.starts_with("sumpool: tree/churn/")
                    && failure.ends_with("No such file or directory"),
                "only vanished churn entries may fail: {failure}\n{}",
                run.describe()
            );
        }
        let (hashed, _symlinks, _special, _excluded, failed) = verbose_counts(&run);
        assert_eq!(hashed as usize, lines.len(), "{}", run.describe());
        assert_eq!(failed as usize, failures.len(), "{}", run.describe());
        assert_eq!(
            run.code,
            Some(if failures.is_empty() { 0 } else { 1 }),
            "{}",
            run.describe()
        );
    }
    stop.store(true, Ordering::Relaxed);
    churner.join().unwrap();
}

/// Runs `hash -j1 --format json FILE` repeatedly while `writer` runs, alternately with the
/// file in a lane (read in chunks, `lanes`) and hashed alone (through memory maps). Every run
/// must either report the file as changed, or print a digest and size that `existed` accepts
/// as a state the file really had; each way must have caught a change at least once.
fn hash_while_writing(
    file: &Path,
    existed: impl Fn(&str, usize) -> bool,
    writer: impl FnMut() + Send + 'static,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = Arc::clone(&stop);
        let mut writer = writer;
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                writer();
            }
        })
    };
    let mut changed = [0, 0];
    for i in 0..30 {
        let lanes = ["4", "1"][i % 2];
        let run = Cmd::sumpool()
            .args(["hash", "-j", "1", "--format", "json", "--lanes", lanes])
            .arg(file)
            .run();
        let objects = util::json_lines(&run);
        match run.code {
            Some(0) => {
                assert_eq!(objects.len(), 2, "{}", run.describe());
                let digest = objects[0]["digest"].as_str().unwrap_or_default();
                let size = objects[0]["size"].as_u64().unwrap_or(u64::MAX) as usize;
                assert!(
                    existed(digest, size),
                    "digest of mixed content\n{}",
                    run.describe()
                );
            }
            Some(1) => {
                assert_eq!(objects[0]["type"], "failure", "{}", run.describe());
                run.stderr_has(": file changed while being read\n");
                changed[i % 2] += 1;
            }
            _ => panic!("unexpected result\n{}", run.describe()),
        }
    }
    stop.store(true, Ordering::Relaxed);
    thread.join().unwrap();
    assert!(
        changed[0] > 0 && changed[1] > 0,
        "no run overlapped a write (lanes, alone: {changed:?}): the test proved nothing"
    );
}

#[test]
fn a_file_rewritten_while_read_is_reported_changed_never_mixed() {
    let dir = temp_dir();
    let size = 24 << 20;
    // Two versions that differ in one page: every state the file passes through is one of
    // them, so any other digest would be content that never existed.
    let a = pseudo_random(size, 1);
    let mut b = a.clone();
    let page = 12 << 20;
    b[page..page + 4096].copy_from_slice(&pseudo_random(4096, 2));
    let path = write_file(dir.path(), b"big", &a);
    let allowed = [sha256_hex(&a), sha256_hex(&b)];
    let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
    let (page_a, page_b) = (a[page..page + 4096].to_vec(), b[page..page + 4096].to_vec());
    let mut turn = false;
    let existed = move |digest: &str, n: usize| n == size && allowed.iter().any(|d| d == digest);
    hash_while_writing(&path, existed, move || {
        turn = !turn;
        let data = if turn { &page_b } else { &page_a };
        file.write_at(data, page as u64).unwrap();
    });
}

#[test]
fn a_file_truncated_and_appended_while_read_is_reported_changed() {
    let dir = temp_dir();
    let size = 24 << 20;
    let full = pseudo_random(size, 3);
    let path = write_file(dir.path(), b"big", &full);
    let third = size / 3;
    // The file is cut to a third, then grows back. While it grows its size passes through
    // any number of bytes (the kernel copies a write piece by piece), and each prefix of the
    // full content of at least a third is a state it really had; any other digest, or a
    // prefix hashed under another length, would be mixed content.
    let existed = {
        let full = full.clone();
        move |digest: &str, n: usize| {
            (third..=size).contains(&n) && sha256_hex(&full[..n]) == digest
        }
    };
    let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
    hash_while_writing(&path, existed, move || {
        file.set_len(third as u64).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        file.write_all_at(&full[third..], third as u64).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    });
}

#[test]
fn special_files_and_loops_in_a_walk_never_hang_and_are_counted() {
    let dir = temp_dir();
    let tree = dir.path().join("tree");
    write_file(&tree, b"a", b"a");
    assert!(
        Command::new("mkfifo")
            .arg(tree.join("fifo"))
            .status()
            .unwrap()
            .success()
    );
    let _socket = std::os::unix::net::UnixListener::bind(tree.join("socket")).unwrap();
    // A character device, where the system allows creating one (root, no device cgroup).
    let device = std::ffi::CString::new(tree.join("null").as_os_str().as_bytes()).unwrap();
    // SAFETY: mknod with a valid NUL-terminated path; failure is checked.
    let made_device =
        unsafe { libc::mknod(device.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) } == 0;
    symlink(".", tree.join("loop")).unwrap();
    symlink("a", tree.join("link")).unwrap();
    write_file(&tree, b"sub/b", b"b");
    fs::create_dir(tree.join("sub/locked")).unwrap();
    write_file(&tree, b"sub/locked/c", b"c");
    fs::set_permissions(tree.join("sub/locked"), fs::Permissions::from_mode(0o000)).unwrap();
    write_file(&tree, b"z", b"z");

    let run = Cmd::sumpool()
        .args(["hash", "-v", "tree"])
        .dir(dir.path())
        .unprivileged()
        .run();
    run.code(1);
    let names: Vec<Vec<u8>> = parse_lines(&run.stdout)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        vec![
            b"tree/a".to_vec(),
            b"tree/sub/b".to_vec(),
            b"tree/z".to_vec()
        ]
    );
    assert_eq!(
        failure_lines(&run),
        vec!["sumpool: tree/sub/locked: Permission denied"]
    );
    let special = if made_device { 3 } else { 2 };
    assert_eq!(
        verbose_counts(&run),
        (3, 2, special, 0, 1),
        "{}",
        run.describe()
    );

    let follow = Cmd::sumpool()
        .args(["hash", "-v", "-L", "tree"])
        .dir(dir.path())
        .unprivileged()
        .run();
    follow
        .code(1)
        .stderr_has("sumpool: tree/loop: filesystem loop");
    let names: Vec<Vec<u8>> = parse_lines(&follow.stdout)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(
        names.contains(&b"tree/link".to_vec()),
        "{}",
        follow.describe()
    );
}

/// Creates `depth` nested directories of `component`-byte names under `root` (going through
/// open directories, since the full path soon exceeds PATH_MAX) and a file `f` in each of
/// the last `files_from_depth..` levels. Returns nothing; the tree is checked through sumpool.
fn make_deep_tree(root: &Path, depth: usize, component: usize, files_from_depth: usize) {
    use rustix::fs::{Mode, OFlags};
    let mut dir =
        rustix::fs::open(root, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).unwrap();
    let name = "d".repeat(component);
    for level in 0..depth {
        rustix::fs::mkdirat(&dir, name.as_str(), Mode::from_raw_mode(0o755)).unwrap();
        dir = rustix::fs::openat(
            &dir,
            name.as_str(),
            OFlags::DIRECTORY | OFlags::RDONLY,
            Mode::empty(),
        )
        .unwrap();
        if level >= files_from_depth {
            let fd = rustix::fs::openat(
                &dir,
                "f",
                OFlags::CREATE | OFlags::WRONLY,
                Mode::from_raw_mode(0o644),
            )
            .unwrap();
            rustix::io::write(&fd, format!("level {level}").as_bytes()).unwrap();
        }
    }
}

#[test]
fn awkward_names_and_paths_past_path_max_are_hashed_or_reported_and_round_trip() {
    let dir = temp_dir();
    let tree = dir.path().join("tree");
    let long_name = vec![b'n'; 255];
    let names: Vec<&[u8]> = vec![
        b"bad\xff\xfeutf8",
        b"new\nline",
        b"carriage\rreturn",
        b"back\\slash",
        b"-leading-dash",
        b" leading space",
        b"trailing space ",
        &long_name,
    ];
    for (i, name) in names.iter().enumerate() {
        write_file(&tree, name, &pseudo_random(i * 100, i as u64));
    }
    // 22 levels of 200 bytes: the paths cross 4096 bytes around level 19.
    make_deep_tree(&tree, 22, 200, 16);

    let run = Cmd::sumpool().args(["hash", "tree"]).dir(dir.path()).run();
    run.code(1).stderr_has("File name too long");
    assert!(
        !run.stderr_text().contains("panicked"),
        "{}",
        run.describe()
    );
    let lines = parse_lines(&run.stdout);
    for name in &names {
        let full = [b"tree/".as_slice(), name].concat();
        assert!(
            lines.iter().any(|(n, _)| *n == full),
            "{:?} missing\n{}",
            String::from_utf8_lossy(name),
            run.describe()
        );
    }
    // Deep files are either printed (and then openable by name) or reported.
    let deep_printed = lines.iter().filter(|(n, _)| n.ends_with(b"/f")).count();
    assert!(deep_printed >= 1, "{}", run.describe());
    assert!(lines.iter().all(|(n, _)| n.len() < 4096));

    fs::write(dir.path().join("SUMS"), &run.stdout).unwrap();
    let check = Cmd::sumpool().args(["check", "SUMS"]).dir(dir.path()).run();
    check.code(0).stderr_empty();
    let gnu = Cmd::new("sha256sum")
        .args(["-c", "SUMS"])
        .dir(dir.path())
        .run();
    gnu.code(0);
}

#[test]
fn read_errors_are_reported_per_file() {
    let dir = temp_dir();
    write_file(dir.path(), b"good", b"good");
    let run = Cmd::sumpool()
        .args(["hash", "/proc/self/mem", "good"])
        .dir(dir.path())
        .run();
    run.code(1)
        .stdout_is(format!("{}  good\n", sha256_hex(b"good")).as_bytes());
    assert_eq!(
        run.stderr_text(),
        "sumpool: /proc/self/mem: Input/output error\n\
         sumpool: WARNING: 1 of 2 files could not be hashed\n"
    );
}

/// Starts `hash` on a large tree into a pipe, reads a little, sends `signal`, then reads to
/// the end: the output must be whole lines, and the process must end by that signal.
fn interrupt_mid_run(signal: i32) {
    let dir = temp_dir();
    for i in 0..6000u32 {
        write_file(
            dir.path(),
            format!("t/d{}/file-with-a-longish-name-{i:05}", i % 30).as_bytes(),
            &i.to_le_bytes(),
        );
    }
    let mut child = Command::new(util::sumpool_bin())
        .args(["hash", "-j", "2", "t"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut output = vec![0u8; 5000];
    stdout.read_exact(&mut output).unwrap();
    // The pipe is full now and sumpool is blocked writing a block of lines.
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, signal) };
    stdout.read_to_end(&mut output).unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(
        status.signal(),
        Some(signal),
        "status {status:?}, stderr {stderr}"
    );
    assert!(stderr.is_empty(), "{stderr}");
    assert!(
        output.len() < 6000 * 100,
        "the signal came too late to test anything"
    );
    assert_eq!(output.last(), Some(&b'\n'), "half a line at the end");
    let lines = parse_lines(&output);
    for (name, digest) in lines {
        let i: u32 = String::from_utf8_lossy(&name)
            .rsplit('-')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(digest, sha256_hex(&i.to_le_bytes()));
    }
}

#[test]
fn sigint_mid_run_leaves_whole_lines() {
    interrupt_mid_run(libc::SIGINT);
}

#[test]
fn sigterm_mid_run_leaves_whole_lines() {
    interrupt_mid_run(libc::SIGTERM);
}

/// `check -w LIST` under a data-segment limit of 64 MiB: a list that made sumpool hold a
/// long line or the whole list would make it fail to allocate and abort.
fn check_bounded(dir: &Path, list: &str) -> Run {
    Cmd::new("prlimit")
        .arg(format!("--data={}", 64 << 20))
        .arg("--")
        .arg(util::sumpool_bin())
        .args(["check", "-w", list])
        .dir(dir)
        .run()
}

#[test]
fn malformed_lists_are_improperly_formatted_in_bounded_memory() {
    let dir = temp_dir();
    let hex = sha256_hex(b"x");
    write_file(dir.path(), b"x", b"x");
    let valid = format!("{hex}  x\n");
    let mut lists: Vec<(&str, Vec<u8>)> = vec![
        ("junk", pseudo_random(4 << 20, 9)),
        (
            "nuls",
            [
                format!("{hex}  x\0y\n").as_bytes(),
                b"\0\0\0\n",
                &[0u8; 1000],
            ]
            .concat(),
        ),
        ("truncated", valid.as_bytes()[..40].repeat(1000)),
        (
            "digest-only",
            format!("{hex}\n{hex} \n\\{hex}\n").repeat(100).into_bytes(),
        ),
    ];
    let mut one_line = vec![b'a'; 100 << 20];
    one_line.push(b'\n');
    lists.push(("one-100MB-line", one_line));
    for (name, data) in &lists {
        fs::write(dir.path().join(name), data).unwrap();
    }
    // A 1 GiB list of random bytes, written in 1 MiB pieces.
    {
        let mut big = fs::File::create(dir.path().join("garbage-1GiB")).unwrap();
        let piece = pseudo_random(1 << 20, 11);
        for i in 0..1024u32 {
            let mut piece = piece.clone();
            piece[..4].copy_from_slice(&i.to_le_bytes());
            big.write_all(&piece).unwrap();
        }
    }
    let names: Vec<&str> = lists
        .iter()
        .map(|(n, _)| *n)
        .chain(["garbage-1GiB"])
        .collect();
    for name in names {
        let run = check_bounded(dir.path(), name);
        assert!(
            !run.stderr_text().contains("panicked"),
            "{}",
            run.describe()
        );
        run.code(1).stderr_has(&format!(
            "sumpool: {name}: no properly formatted checksum lines found\n"
        ));
        assert!(run.stdout.is_empty(), "{}", run.describe());
    }

    // A valid line after a 100 MB one is still checked.
    let mut mixed = vec![b'b'; 100 << 20];
    mixed.push(b'\n');
    mixed.extend_from_slice(valid.as_bytes());
    fs::write(dir.path().join("mixed"), mixed).unwrap();
    let run = check_bounded(dir.path(), "mixed");
    run.code(0)
        .stdout_is(b"x: OK\n")
        .stderr_has("sumpool: mixed: 1: improperly formatted SHA256 checksum line\n");
}

#[test]
fn permission_faults_in_check_are_real_as_an_unprivileged_user() {
    let dir = temp_dir();
    let secret = write_file(dir.path(), b"secret", b"s");
    write_file(dir.path(), b"open", b"o");
    let list = format!("{}  secret\n{}  open\n", sha256_hex(b"s"), sha256_hex(b"o"));
    let list_path = write_file(dir.path(), b"SUMS", list.as_bytes());
    let locked = write_file(dir.path(), b"LOCKED", list.as_bytes());
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    assert!(list_path.exists());

    let run = Cmd::sumpool()
        .args(["check", "SUMS", "LOCKED"])
        .dir(dir.path())
        .unprivileged()
        .run();
    run.code(1)
        .stdout_is(b"secret: FAILED open or read\nopen: OK\n");
    assert_eq!(
        run.stderr_text(),
        "sumpool: secret: Permission denied\n\
         sumpool: WARNING: 1 listed file could not be read\n\
         sumpool: LOCKED: Permission denied\n"
    );
}
